"""Figures of growth runs, drawn from a History or a Comparison alone (and of pruning, from a
Sensitivity record or the gamma of a network's batch-normalised layers).

Every function builds a :class:`matplotlib.figure.Figure` on the Agg canvas
(no pyplot, no global state, no display needed), saves it to ``path`` when one
is given (the format follows the file extension) and returns it.
"""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from minisplit._checks import check_bool, check_choice, check_int, check_real, check_type
from minisplit.growth.comparison import METRICS, Comparison
from minisplit.growth.history import History
from minisplit.network import Network
from minisplit.pruning import Sensitivity, bn_layers


def _figure(width=6.4, height=4.0):
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _finish(fig, path):
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def plot_training(history, path=None, title=None) -> Figure:
    """Training loss against optimiser steps, with every surgery marked.

    Each recorded mini-batch loss is a point of the curve; a dashed vertical
    line marks the step at which a round's surgery happened, and a dot on it
    the full-batch training loss right after that surgery.

    Parameters
    ----------
    history : History
    path : str or os.PathLike or None
        Where to save (e.g. ``"loss.png"``); None: do not save.
    title : str or None

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import minisplit as ms
    >>> X, y = ms.datasets.rbf_teacher(n=16, seed=0)
    >>> h = ms.grow(ms.mlp([1, 2, 1], seed=0), X, y, ms.GrowthConfig(budget=3)).history
    >>> plot_training(h).axes[0].get_xlabel()
    'optimiser step'
    """
    check_type(history, "history", History)
    fig, ax = _figure()
    steps, losses = history.step_losses()
    ax.plot(steps, losses, lw=1.0, color="C0", label="training loss (mini-batch)")
    surgeries = [r for r in history.rounds if r.surgery is not None]
    for i, (step, r) in enumerate(zip(history.split_steps(), surgeries)):
        label = f"{r.surgery} (+{r.n_added} neurons)" if i == 0 else None
        ax.axvline(step, color="C3", ls="--", lw=0.8, label=label)
        if r.loss_after_split is not None:
            ax.plot([step], [r.loss_after_split], "o", color="C3", ms=3)
    if losses.size and np.all(losses > 0):
        ax.set_yscale("log")
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("loss")
    ax.set_title(title or f"growth by {history.meta.get('strategy', '?')}")
    ax.legend(loc="upper right", fontsize="small")
    return _finish(fig, path)


def plot_comparison(comparison, path=None, metric="test_loss", title=None) -> Figure:
    """A metric against the number of neurons, one colour per strategy, one line per seed.

    Every point is the end of a round (its network size and its metric), so a
    line shows how a strategy trades size for quality as it grows; the "fixed"
    baseline is a single point per seed.

    Parameters
    ----------
    comparison : Comparison
    path : str or os.PathLike or None
    metric : {"train_loss", "test_loss", "train_accuracy", "test_accuracy"}
    title : str or None

    Returns
    -------
    matplotlib.figure.Figure
    """
    check_type(comparison, "comparison", Comparison)
    check_choice(metric, "metric", METRICS)
    fig, ax = _figure()
    positive = True
    for colour, (strategy, runs) in enumerate(comparison.histories.items()):
        for seed_index, h in enumerate(runs):
            pairs = [(r.n_neurons, getattr(r, metric)) for r in h.rounds
                     if getattr(r, metric) is not None]
            if not pairs:
                continue
            x, y = np.array(pairs, dtype=np.float64).T
            positive &= bool(np.all(y > 0))
            label = strategy if seed_index == 0 else None
            ax.plot(x, y, "o-", color=f"C{colour}", lw=1.0, ms=3, alpha=0.8, label=label)
    if positive and metric.endswith("loss"):
        ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("neurons in the grown layers")
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_title(title or f"{comparison.dataset}: {metric.replace('_', ' ')} against size")
    if ax.lines:
        ax.legend(fontsize="small")
    return _finish(fig, path)


def plot_spectrum(history, path=None, title=None) -> Figure:
    """The splitting indices of every neuron at every round, one colour per layer.

    Round r shows the indices the round-r selection looked at (lambda_min, or
    lambda_max for a signed split, drawn hollow); the last column is the
    spectrum that stopped the run, if any. Points below the zero line are
    neurons whose split lowers the loss. The vertical axis is symmetric-log
    (linear within 1e-4 of the largest |index|), as indices span many orders
    of magnitude.

    Parameters
    ----------
    history : History
    path : str or os.PathLike or None
    title : str or None

    Returns
    -------
    matplotlib.figure.Figure
    """
    check_type(history, "history", History)
    fig, ax = _figure()
    columns = [(r.round, r.spectrum) for r in history.rounds]
    stop = history.meta.get("stop_spectrum")
    if stop is not None:
        columns.append((len(history.rounds), stop))
    layers = history.meta.get("layers", [])
    largest = 0.0
    for round_index, spectrum in columns:
        if spectrum is None:
            continue
        hollow = spectrum.get("kind") == "max"
        for j, values in enumerate(spectrum["values"]):
            values = np.asarray(values, dtype=np.float64)
            if values.size == 0:
                continue
            largest = max(largest, float(np.max(np.abs(values))))
            x = np.full(values.size, float(round_index)) + 0.08 * (j - (len(layers) - 1) / 2)
            face = "none" if hollow else f"C{j}"
            label = f"layer {layers[j]}" if j < len(layers) else f"layer #{j}"
            ax.scatter(x, values, s=14, facecolors=face, edgecolors=f"C{j}", label=label)
    ax.axhline(0.0, color="k", lw=0.8)
    # linear within 1e-4 of the largest index, logarithmic beyond
    ax.set_yscale("symlog", linthresh=largest * 1e-4 if largest > 0 else 1.0)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    if unique:
        ax.legend(unique.values(), unique.keys(), fontsize="small")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("round")
    ax.set_ylabel("splitting index")
    ax.set_title(title or "splitting indices per round")
    return _finish(fig, path)


#: The x axes :func:`plot_by_size` can draw against, with their labels.
SIZE_AXES = {"neurons": "neurons in the grown layers", "params": "parameters",
             "flops": "multiply-adds per sample"}


def plot_by_size(comparison, path=None, metric="test_loss", title=None, x="neurons") -> Figure:
    """A metric against size: the median over seeds and its interquartile band, per strategy.

    The numbers are :meth:`Comparison.by_size`'s: at each size, the seeds whose run trained
    there; a size some seeds never reached is drawn hollow. Reference runs at one size
    ("fixed") are single points with a bar from the first to the third quartile. With
    ``x="params"`` or ``"flops"`` each size is drawn at the median cost of its networks
    (:meth:`Comparison.size_of`): accuracy against parameters or multiply-adds.

    Parameters
    ----------
    comparison : Comparison
    path : str or os.PathLike or None
    metric : {"train_loss", "test_loss", "train_accuracy", "test_accuracy"}
    title : str or None
    x : {"neurons", "params", "flops"}

    Returns
    -------
    matplotlib.figure.Figure
    """
    check_type(comparison, "comparison", Comparison)
    check_choice(metric, "metric", METRICS)
    check_choice(x, "x", tuple(SIZE_AXES))
    fig, ax = _figure()
    table, positive = comparison.by_size(metric), True
    cost = comparison.size_of(x)
    for colour, (name, cells) in enumerate(table.items()):
        if not cells:
            continue
        sizes = np.array([cost[name][s] for s in sorted(cells)], dtype=np.float64)
        median = np.array([cells[s].median for s in sorted(cells)])
        q1 = np.array([cells[s].q1 for s in sorted(cells)])
        q3 = np.array([cells[s].q3 for s in sorted(cells)])
        full = np.array([cells[s].every_seed for s in sorted(cells)])
        positive &= bool(np.all(q1 > 0))
        c = f"C{colour}"
        if sizes.size == 1:
            ax.errorbar(sizes, median, yerr=[median - q1, q3 - median], fmt="s", color=c,
                        ms=5, capsize=3, label=name)
            continue
        ax.fill_between(sizes, q1, q3, color=c, alpha=0.18, lw=0)
        ax.plot(sizes, median, "-", color=c, lw=1.3, label=name)
        ax.plot(sizes[full], median[full], "o", color=c, ms=3.5)
        ax.plot(sizes[~full], median[~full], "o", mfc="none", color=c, ms=3.5)
    if positive and metric.endswith("loss"):
        ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(SIZE_AXES[x])
    ax.set_ylabel(f"{metric.replace('_', ' ')} (median, band: quartiles)")
    ax.set_title(title or f"{comparison.dataset}: {metric.replace('_', ' ')} against "
                 f"{SIZE_AXES[x].split(' in ')[0]}")
    if ax.lines:
        ax.legend(fontsize="small")
    return _finish(fig, path)


def plot_sensitivity(result, path=None, title=None) -> Figure:
    """Pruning sensitivity: the metric against the ratio pruned, one curve per layer.

    Each curve is one layer pruned alone, without retraining (:func:`minisplit.pruning.
    sensitivity`); the dashed line is the unpruned network. A flat curve is a layer that
    can be pruned hard, a steep one a sensitive layer.

    Parameters
    ----------
    result : Sensitivity
    path : str or os.PathLike or None
    title : str or None

    Returns
    -------
    matplotlib.figure.Figure
    """
    check_type(result, "result", Sensitivity)
    fig, ax = _figure()
    for colour, (layer, curve) in enumerate(result.curves.items()):
        ax.plot(result.ratios, curve, "o-", color=f"C{colour}", ms=4, lw=1.3,
                label=f"layer {layer} ({result.n_units[layer]} units)")
    ax.axhline(result.baseline, color="k", ls="--", lw=0.8, label="unpruned")
    ax.set_xlabel(f"fraction of the layer's units pruned ({result.criterion})")
    ax.set_ylabel(f"validation {result.metric}")
    ax.set_title(title or "pruning sensitivity, one layer at a time, no retraining")
    ax.legend(fontsize="small")
    return _finish(fig, path)


def plot_gamma_histogram(net, path=None, threshold=None, absolute=True, bins=20,
                         title=None) -> Figure:
    """Histograms of the batch-norm scales gamma, one outline per batch-normalised layer.

    Drawn before Bn-prune (docs/pruning.md): after training with the sparsity penalty most
    |gamma| sit near 0 and a few stay large; the global threshold (``BnPlan.threshold``),
    when given, is a dashed vertical line, and the units at or left of it are the ones
    removed. All layers share the bins, so the outlines compare directly.

    Parameters
    ----------
    net : Network
        With at least one batch-normalised layer (its trunk's, :func:`minisplit.pruning.
        bn_layers`).
    path : str or os.PathLike or None
    threshold : float or None
        A |gamma| to mark (only with ``absolute``).
    absolute : bool
        True: |gamma| on [0, max |gamma|] (what Bn-prune ranks); False: signed gamma.
    bins : int
        >= 1 equal bins over the range of all layers' values.
    title : str or None

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import minisplit as ms
    >>> fig = plot_gamma_histogram(ms.testnets.conv_bn()[0], threshold=1.0)
    >>> [patch.get_label() for patch in fig.axes[0].patches]
    ['layer 0 (3 channels)', 'layer 1 (2 channels)']
    """
    check_type(net, "net", Network)
    absolute = check_bool(absolute, "absolute")
    bins = check_int(bins, "bins", low=1)
    layers = bn_layers(net)
    if not layers:
        raise ValueError("net must have a batch-normalised layer (batch_norm=True), got none")
    if threshold is not None:
        if not absolute:
            raise ValueError("threshold must be None with absolute=False (it is a |gamma|), "
                             f"got {threshold!r}")
        threshold = check_real(threshold, "threshold", low=0)
    values = {layer: np.abs(net.layers[layer].gamma) if absolute else net.layers[layer].gamma
              for layer in layers}
    pooled = np.concatenate(list(values.values()))
    low, high = (0.0, float(pooled.max())) if absolute else (float(pooled.min()),
                                                             float(pooled.max()))
    if high <= low:  # every value equal: a unit-wide range around it
        low, high = (0.0, 1.0) if absolute and high == 0 else (low - 0.5, high + 0.5)
    edges = np.linspace(low, high, bins + 1)  # (bins + 1,)
    fig, ax = _figure()
    for colour, (layer, v) in enumerate(values.items()):
        counts, _ = np.histogram(v, bins=edges)
        ax.stairs(counts, edges, color=f"C{colour}", lw=1.4,
                  label=f"layer {layer} ({v.size} channels)")
    if threshold is not None:
        ax.axvline(threshold, color="k", ls="--", lw=0.9, label=f"threshold {threshold:.3g}")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("|gamma|" if absolute else "gamma")
    ax.set_ylabel("channels")
    ax.set_title(title or "batch-norm scales per layer")
    ax.legend(fontsize="small")
    return _finish(fig, path)


def plot_split_plane(s, t, L, path=None, title=None) -> Figure:
    """The loss of the two-copy network over offsets (s, t): :func:`landscapes.split_plane`.

    The diagonal s = t is the small network moving along v (a valley through its minimum);
    the anti-diagonal s = -t is the split along v (downhill when the splitting index is
    negative): a minimum of the small network is a saddle of the split one.
    """
    s, t, L = np.asarray(s), np.asarray(t), np.asarray(L)
    fig, ax = _figure(5.6, 4.6)
    contours = ax.contourf(s, t, L.T, 30, cmap="viridis")
    fig.colorbar(contours, ax=ax, label="loss")
    ax.plot(s, s, "w--", lw=1.2, label="s = t: the small network")
    ax.plot(s, -s, "r--", lw=1.2, label="s = -t: the split along v_min")
    ax.plot(0, 0, "wo", ms=5)
    ax.set_xlabel("offset s of copy 1")
    ax.set_ylabel("offset t of copy 2")
    ax.set_title(title or "a minimum of the small network is a saddle of the split one")
    ax.legend(loc="lower left", fontsize="small")
    return _finish(fig, path)


def plot_eps_law(eps, actual, predicted, path=None, title=None) -> Figure:
    """|loss change| of a split against eps, measured and predicted ((eps^2/2) lambda), log-log."""
    eps, actual, predicted = (np.asarray(a, dtype=np.float64) for a in (eps, actual, predicted))
    fig, ax = _figure(5.6, 4.0)
    ax.loglog(eps, np.abs(predicted), "-", color="C0", label="predicted (eps^2/2) |lambda_min|")
    ax.loglog(eps, np.abs(actual), "o", color="C3", ms=5, label="measured |change of the loss|")
    ax.set_xlabel("eps")
    ax.set_ylabel("|loss change|")
    ax.set_title(title or "the eps^2 law of a split")
    ax.legend(fontsize="small")
    return _finish(fig, path)


def _image(values):
    """A flat image as a square array (the digits: 64 -> 8 x 8)."""
    values = np.asarray(values, dtype=np.float64)
    side = int(round(np.sqrt(values.size)))
    return values.reshape(side, side) if side * side == values.size else values[None, :]


def plot_family_tree(splits, path=None, title=None, max_rows=8) -> Figure:
    """The splits of a prototype growth run: parent, split direction, the two children.

    One row per split (:func:`minisplit.prototypes.family_tree`), oldest first: the
    parent prototype's image before the split (labelled with its splitting index), the
    split direction drawn as an image on its own symmetric colour scale (how the image
    changes along v), and the two children's images after the round's training, each
    labelled with the class it votes for.
    """
    splits = list(splits)[:max_rows]
    rows = max(1, len(splits))
    fig = Figure(figsize=(6.4, 1.55 * rows + 0.5), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 4, squeeze=False)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    if not splits:
        axes[0, 0].set_title("no split was made")
    for row, split in zip(axes, splits):
        row[0].imshow(_image(split.parent_image), cmap="gray_r", vmin=0, vmax=1)
        row[0].set_title(f"round {split.round}: p{split.parent}\nlambda_min {split.index:.3g}",
                         fontsize=7)
        v = _image(split.direction_image)
        scale = float(np.max(np.abs(v))) or 1.0
        row[1].imshow(v, cmap="RdBu_r", vmin=-scale, vmax=scale)
        row[1].set_title("along v_min", fontsize=7)
        for ax, child, image, vote in zip(row[2:], split.children, split.child_images,
                                          split.votes):
            ax.imshow(_image(image), cmap="gray_r", vmin=0, vmax=1)
            ax.set_title(f"p{child}: votes {vote}", fontsize=7)
    fig.suptitle(title or "the split family tree", fontsize=9)
    return _finish(fig, path)
