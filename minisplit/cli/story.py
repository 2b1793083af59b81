"""The one page of ``minisplit grow`` (``report.html``): the story of splitting, in this run's
numbers.

Sections, in the order of the story: (1) the escape from a local minimum, on the two-bumps
toy, certified by the exact Hessian; (2) the eps^2 law, measured on the first split of this
run; (3) growth against every other strategy at matched sizes (median and quartile band over
seeds); (4) the splitting indices round by round; (5) the verdict, counted by code from the
numbers above, and the run's settings. Every number on the page is computed here, from the
run's histories or by re-running a piece of it; none is typed in.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from minisplit import landscapes, plots, splitting_indices, train
from minisplit.network import flatten
from minisplit.optim import LBFGS
from minisplit.report import Page
from minisplit.splitting import split

#: The eps of the measured eps^2 law (a geometric grid).
EPS_GRID = tuple(float(e) for e in np.geomspace(1e-3, 0.3, 8))


def build_page(comparison, data, config, make_net, settings) -> Page:
    """The report of one ``grow`` run.

    Parameters
    ----------
    comparison : Comparison
        The run's result (splitting first when it was run).
    data : Dataset
    config : GrowthConfig
        The settings every strategy ran with (strategy and seed replaced per run).
    make_net : callable
        ``seed -> Network``, the starting network.
    settings : list of (str, str)
        The command's options, shown with the verdict.
    """
    page = Page(
        f"Growing a network by splitting: {data.name}",
        "What minisplit grow measured in this run: why splitting can escape where gradient "
        "descent stops, how well the second-order prediction of a split holds, and how "
        "splitting compares with the other ways of growing at matched sizes.",
    )
    _escape(page.section("1. A local minimum that splitting escapes"))
    splitting = "splitting" in comparison.histories
    if splitting:
        _eps_law(page.section("2. The eps² law on this run's first split"), comparison, data,
                 config, make_net)
    _growth(page.section("3. Growth at matched sizes"), comparison, data.task)
    if splitting:
        first = comparison.histories["splitting"][0]
        section = page.section("4. Splitting indices, round by round")
        section.paragraph(
            "Every neuron's splitting index (the smallest eigenvalue of its splitting matrix) "
            f"at every round of seed {comparison.seeds[0]}'s splitting run. Points below zero "
            "are neurons whose split lowers the loss; the most negative are the ones chosen."
        )
        section.figure(plots.plot_spectrum(first), "splitting indices per round")
    _verdict(page.section("5. Verdict and settings"), comparison, data.task, settings)
    return page


# ---- 1. the escape --------------------------------------------------------------------------


def _escape(section) -> None:
    net, X, y = landscapes.two_bumps(seed=0)
    result = train(net, X, y, LBFGS(grad_tol=1e-10), steps=1000)
    small = result.net
    loss, grads = small.loss_and_grad(X, y)
    eigenvalues = np.linalg.eigvalsh(small.hessian(X, y))
    lam, V = splitting_indices(small, X, y, layer=0)
    section.paragraph(
        "One Gaussian neuron (an RBF layer of width 1 and a linear output) fits two "
        "overlapping bumps. Full-batch L-BFGS takes it to a stationary point: "
        f"gradient norm {np.linalg.norm(flatten(grads)):.1e}, loss {loss:.6f}, centre "
        f"{small.layers[0].centers.item():.2e}."
    )
    certified = bool(np.all(eigenvalues >= 0))
    section.paragraph(
        "The exact Hessian there (3 parameters: the centre, the output weight and bias) has "
        f"the eigenvalues {', '.join(f'{e:.4g}' for e in eigenvalues)}: "
        + ("all positive, so this is a strict local minimum of the one-neuron network."
           if certified else "not all >= 0, so this point is not certified as a minimum.")
    )
    section.paragraph(
        f"Its splitting index is {lam[0]:.4g} < 0: replaced by two copies moving apart along "
        "v_min, the neuron's loss goes down. The picture below is the loss of the two-copy "
        "network as each copy moves along v_min: along the diagonal (both together: the "
        "small network) the point is a minimum, along the anti-diagonal (the split) it is a "
        "maximum. The minimum of the small network is a saddle of the large one."
        if lam[0] < 0 else f"Its splitting index is {lam[0]:.4g} >= 0: no split escapes here."
    )
    s = np.linspace(-1.5, 1.5, 41)
    L = landscapes.split_plane(small, X, y, 0, 0, V[0], s, s)
    section.figure(plots.plot_split_plane(s, s, L), "the loss over the offsets of the two copies")


# ---- 2. the eps^2 law ------------------------------------------------------------------------


def _round_zero(comparison, data, config, make_net):
    """Seed 0's splitting network after round 0, re-trained exactly as the growth loop did."""
    seed = comparison.seeds[0]
    run = dataclasses.replace(config, seed=seed, strategy="splitting")
    result = train(make_net(seed), data.X_train, data.y_train, run.make_optimizer(),
                   run.steps_per_round, run.batch_size, np.random.default_rng(seed),
                   run.plateau())
    return result.net


def _eps_law(section, comparison, data, config, make_net) -> None:
    history = comparison.histories["splitting"][0]
    if len(history.rounds) < 2:
        section.paragraph(
            f"Seed {comparison.seeds[0]}'s splitting run made no split (it stopped: "
            f"{history.meta.get('stop_reason')}), so there is no split to measure."
        )
        return
    X, y = data.X_train, data.y_train
    net = _round_zero(comparison, data, config, make_net)
    same = float(net.loss(X, y)) == history.rounds[0].train_loss
    first = history.rounds[1]
    pairs = {i: splitting_indices(net, X, y, i) for i in history.meta["layers"]}
    layer = min(pairs, key=lambda i: float(np.min(pairs[i][0])))  # the most negative index
    values, vectors = pairs[layer]
    neuron = int(np.argmin(values))
    L0 = float(net.loss(X, y))
    actual = [float(split(net, layer, [neuron], vectors[neuron:neuron + 1], e).loss(X, y)) - L0
              for e in EPS_GRID]
    predicted = [0.5 * e * e * float(values[neuron]) for e in EPS_GRID]
    section.paragraph(
        f"The network of seed {comparison.seeds[0]}'s splitting run at the end of round 0, "
        "re-trained here exactly as the growth loop trained it "
        + ("(its training loss is the history's to the last bit)" if same else
           "(WARNING: its loss differs from the history's; the numbers below describe the "
           "re-trained network)")
        + f": neuron {neuron} of layer {layer}, the one with the most negative splitting "
        f"index, {values[neuron]:.4g}. Splitting it into theta ± eps v_min changes the "
        "training loss by (eps²/2) lambda_min + O(eps⁴):"
    )
    rows = [[f"{e:.3g}", a, p, a / p if p else float("nan")]
            for e, a, p in zip(EPS_GRID, actual, predicted)]
    section.table(["eps", "measured change", "predicted (eps²/2) lambda", "ratio"], rows)
    section.figure(plots.plot_eps_law(EPS_GRID, actual, predicted),
                   "measured and predicted loss change of the split, against eps")
    section.paragraph(
        f"In the run itself (eps = {first.eps:g}, {first.n_added} neuron(s) split in round 1) "
        f"the loss changed by {first.actual_change:.4g} against a prediction of "
        f"{first.predicted_change:.4g}; after {config.early_steps} steps of training the loss "
        f"was {first.early_loss:.4g} (plateau before: {first.loss_before:.4g})."
        if first.predicted_change is not None and first.early_loss is not None else
        "The run's first surgery recorded no prediction."
    )


# ---- 3. growth, and 5. the verdict ---------------------------------------------------------


def _test_metric(task) -> str:
    return "test_accuracy" if task == "classification" else "test_loss"


def _growth(section, comparison, task) -> None:
    section.paragraph(
        "Every strategy grew the same starting networks with the same settings and the same "
        "selection rule, so they pass through the same sizes (GradMax adds at most as many "
        "neurons per round as the reader has outputs). A line is the median over seeds of the "
        "metric at the end of the round trained at each size, the band the first to third "
        "quartile; a hollow point is a size only some seeds reached. 'fixed' and 'scratch' "
        "train each size from a fresh start for as many steps as splitting had taken."
    )
    section.figure(plots.plot_by_size(comparison, metric="train_loss"), "training loss by size")
    metric = _test_metric(task)
    section.figure(plots.plot_by_size(comparison, metric=metric),
                   f"{metric.replace('_', ' ')} by size")


def _verdict(section, comparison, task, settings) -> None:
    if "splitting" not in comparison.histories:
        section.paragraph("Splitting was not among the strategies run: no verdict.")
    else:
        metric = _test_metric(task)
        train_standing = comparison.standing("train_loss")
        test_standing = comparison.standing(metric)
        section.paragraph(
            "For each other run: at how many matched sizes (every seed of both there, the "
            "starting size excepted) splitting's median was at least as good, on the training "
            f"loss and on the {metric.replace('_', ' ')}."
        )
        rows = []
        for name, st in train_standing.items():
            te = test_standing[name]
            rows.append([name, f"{len(st.at_least_as_good)} of {len(st.matched)}",
                         f"{len(te.at_least_as_good)} of {len(te.matched)}",
                         ", ".join(map(str, st.worse)) or "-"])
        section.table(["run", "train loss: splitting at least as good",
                       f"{metric.replace('_', ' ')}: splitting at least as good",
                       "sizes where splitting's training loss was worse"], rows)
        section.items(_verdict_lines(train_standing, test_standing, metric))
    section.paragraph(f"Seeds: {', '.join(map(str, comparison.seeds))}. Settings:")
    section.table(["setting", "value"], settings)


def _verdict_lines(train_standing, test_standing, metric) -> list[str]:
    lines = []
    for name, st in train_standing.items():
        te = test_standing[name]
        if not st.matched:
            lines.append(f"{name}: no matched size to compare.")
            continue
        k, n = len(st.at_least_as_good), len(st.matched)
        where = "at every matched size" if k == n else (
            "at no matched size" if k == 0 else f"at {k} of {n} matched sizes")
        lines.append(
            f"{name}: splitting's median training loss was at least as good {where}; on the "
            f"{metric.replace('_', ' ')}, at {len(te.at_least_as_good)} of {len(te.matched)}."
        )
    return lines
