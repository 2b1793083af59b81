"""``minisplit prune``: grow a small CNN by splitting, against pruning a wide one and the
width family, at matched sizes.

Every run starts from (or is matched to) the same :func:`minisplit.small_cnn` on a built-in
image data set and trains with the same optimiser, mini-batches and step budget: splitting
grows the conv layers to the budget; the references (:data:`minisplit.growth.REFERENCES`)
train the width-multiplier family from scratch at each size splitting passed through, or a
wide network pruned to those sizes, by L1 norms (Li et al., 2017) or by batch-norm scales
(network slimming, Liu et al., 2017). Outputs: a progress line, tables of test accuracy,
parameters and FLOPs by size, accuracy against parameters and against FLOPs, the gamma
histograms of the Bn-prune network before pruning, the L1 sensitivity curves, JSON and
``report.html`` (the same page writer as ``grow``), written as a set (docs/cli.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys

from minisplit import GrowthConfig, compare, datasets, growth, pruning, small_cnn
from minisplit.cli._args import add_jobs, fail, name_list, positive_int
from minisplit.cli._output import run_comparison, training_count
from minisplit.cli.grow import Progress, size_table
from minisplit.growth.comparison import (
    SENSITIVITY_RATIOS,
    SENSITIVITY_SAMPLES,
    SLIMMING_L1,
    WIDE_FACTOR,
    wide_network,
)
from minisplit.report import Page

#: The strategies and references ``prune`` can compare (those that grow a softplus CNN), and
#: its default set.
STRATEGY_NAMES = ("splitting", "random_split", "net2net", "new_neurons", "fixed", "scratch",
                  "width", "l1_prune", "bn_prune")
DEFAULT_STRATEGIES = ("splitting", "l1_prune", "bn_prune", "width", "fixed")
#: The image data sets the small CNN is grown on.
TASKS = ("digits", "fashion_mnist")
#: The printed cost tables: how each is headed.
COSTS = {"params": "parameters", "flops": "FLOPs (multiply-adds per sample)"}


def starting_network(data, widths, seed):
    """The small CNN of ``widths`` channels per conv for ``data``'s images and classes."""
    return small_cnn(n_classes=data.n_classes, input_shape=data.X_train.shape[1:],
                     width=widths, seed=seed)


def config_of(args) -> GrowthConfig:
    """The fraction rule on the splitting indices, full rounds of Adam on mini-batches, the
    budget in neurons of the conv layers."""
    return GrowthConfig(
        selection="fraction", fraction=args.fraction, eps=args.eps, budget_kind="neurons",
        budget=args.budget, max_rounds=args.budget, steps_per_round=args.steps, lr=args.lr,
        batch_size=args.batch_size, plateau_window=None,
    )


def add_arguments(parser):
    add = parser.add_argument
    add("--task", choices=TASKS, default="digits",
        help="built-in image data set: digits (8 x 8, 1348 training and 449 test images) or "
        "fashion_mnist (14 x 14, 6000 and 1000) (default: digits)")
    add("--strategies", type=name_list(STRATEGY_NAMES), default=list(DEFAULT_STRATEGIES),
        metavar="LIST",
        help=f"comma-separated, from {', '.join(STRATEGY_NAMES)} (default: "
        f"{','.join(DEFAULT_STRATEGIES)}); fixed, scratch, width, l1_prune and bn_prune "
        "need splitting")
    add("--seeds", type=positive_int, default=2, metavar="N",
        help="run every strategy with seeds 0..N-1; tables show the median (default: 2)")
    add("--start", type=_widths, default=[4, 4], metavar="W1,W2",
        help="channels of each conv layer of the starting network (default: 4,4)")
    add("--budget", type=positive_int, default=16, metavar="N",
        help="grow to this many channels in all the conv layers (default: 16); the pruning "
        f"references start from {WIDE_FACTOR} times as many")
    add("--steps", type=positive_int, default=50, metavar="N",
        help="Adam steps per round, and of each fine-tuning after pruning (default: 50)")
    add("--batch-size", type=positive_int, default=64, metavar="B",
        help="mini-batch size (default: 64)")
    add("--lr", type=float, default=0.01, help="Adam learning rate (default: 0.01)")
    add("--eps", type=float, default=0.1, help="split step (default: 0.1)")
    add("--fraction", type=float, default=0.5,
        help="share of all channels grown per round, most negative splitting index first "
        "(default: 0.5)")
    add("--samples", type=positive_int, default=None, metavar="N",
        help="train on the first N images of the (shuffled) training part; the test part "
        "stays whole (default: all)")
    add("--out", default="minisplit-prune", metavar="DIR",
        help="folder for the figures, JSON, tables and report (default: ./minisplit-prune)")
    add_jobs(parser)
    add("--quiet", action="store_true", help="no progress line on stderr")




def _widths(text) -> list[int]:
    try:
        widths = [int(w) for w in text.split(",")]
    except ValueError:
        widths = []
    if not widths or min(widths) <= 0:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated positive channel counts, one per conv layer, got "
            f"{text!r}")
    return widths


def run(args) -> int:
    """Grow the small CNN every way, print the tables, write the output folder."""
    if args.budget <= sum(args.start):
        fail("prune", f"--budget must be larger than the starting channels in all "
             f"({sum(args.start)}), got {args.budget}")
    return run_comparison("prune", args, config_of, _grow_and_write)


def _grow_and_write(args, config, out) -> int:
    data = datasets.load(args.task, seed=0, images=True)
    n_train = len(data.X_train)
    if args.samples is not None and args.samples < n_train:
        data = dataclasses.replace(data, X_train=data.X_train[:args.samples],
                                   y_train=data.y_train[:args.samples])
    make_net = functools.partial(starting_network, data, args.start)  # pickles, for --jobs
    print(f"Growing a small CNN on {args.task} ({training_count(data, n_train)}, "
          f"{len(data.X_test)} test images) from conv widths {_shown(args.start)} to "
          f"{args.budget} channels in all, by {', '.join(args.strategies)}; "
          f"seed{'s 0..' if args.seeds > 1 else ' '}{args.seeds - 1}.", flush=True)
    progress = None if args.quiet else Progress(args.strategies, args.seeds, sys.stderr)
    with growth.process_pool(args.jobs) as executor:
        comparison = compare(data, make_net, config, args.strategies, range(args.seeds),
                             progress, executor=executor)
    if progress is not None:
        progress.close()
    tables = _tables(comparison)
    print("\n" + tables + "\n")
    if not args.quiet and {"l1_prune", "bn_prune"} & set(args.strategies):
        print("Retraining seed 0's wide networks for the gamma and sensitivity figures",
              file=sys.stderr, flush=True)
    wide = wide_networks(comparison, data, config, make_net)
    figures = _figures(comparison, data, wide)
    page = _page(args, data, config, comparison, wide, figures)
    page.section("The tables as printed").preformatted(tables)
    return out.save(lambda folder: _write(folder, comparison, tables, figures, page))


def _shown(widths) -> str:
    return ",".join(map(str, widths))


def cost_table(comparison, kind) -> str:
    """The median ``kind`` ("params" or "flops") of the networks at each size: one row per
    size (neurons of the grown layers), one column per strategy (:meth:`Comparison.size_of`)."""
    table = comparison.size_of(kind)
    names = list(table)
    width = max(10, *(len(m) for m in names))
    lines = [f"{'neurons':>7}  " + "  ".join(f"{m:>{width}}" for m in names)]
    for size in sorted({size for cells in table.values() for size in cells}):
        cells = [f"{table[m][size]:>{width}.6g}" if size in table[m] else "-".rjust(width)
                 for m in names]
        lines.append(f"{size:>7}  " + "  ".join(cells))
    return "\n".join(lines)


def _tables(comparison) -> str:
    parts = ["test accuracy after each round, median over seeds (channels of the conv "
             "layers = rows):\n" + size_table(comparison, "test_accuracy")]
    parts += [f"{title} of those networks, median over seeds:\n" + cost_table(comparison, kind)
              for kind, title in COSTS.items()]
    wide = _wide_rows(comparison)
    if wide:
        parts.append("the wide networks the pruning references started from, before pruning:\n"
                     + "\n".join(f"{name:>10}  seed {seed}  widths {_shown(w)}  params {p}  "
                                 f"flops {f}  test accuracy {a:.4g}"
                                 for name, seed, w, p, f, a in wide))
    return "\n\n".join(parts)


def _wide_rows(comparison) -> list:
    """(name, seed, widths, params, flops, test accuracy) of every pruning run's wide network,
    from the histories."""
    return [(name, seed, h.meta["wide"]["neurons"], h.meta["wide"]["params"],
             h.meta["wide"]["flops"], h.meta["wide"]["test_accuracy"])
            for name, runs in comparison.histories.items()
            for seed, h in zip(comparison.seeds, runs) if "wide" in h.meta]


def wide_networks(comparison, data, config, make_net) -> dict:
    """``{name: GrowthResult}``: the trained wide network of the first seed's l1_prune and
    bn_prune runs (those that were made).

    The comparison keeps only the pruned networks, so each wide network is trained again by
    :func:`minisplit.growth.comparison.wide_network`, the function the reference itself
    calls, with the same seed and config: its test accuracy equals the one the reference
    recorded (the report says whether it does).
    """
    seed, out = comparison.seeds[0], {}
    parts = (data.X_train, data.y_train, data.X_test, data.y_test)
    for name in ("l1_prune", "bn_prune"):
        if name not in comparison.histories:
            continue
        grown = comparison.histories["splitting"][0]  # a reference runs after splitting
        run = dataclasses.replace(config, seed=seed, strategy="splitting")
        out[name] = wide_network(name, grown, make_net(seed), parts, run)
    return out


def _thresholds(comparison, trained) -> list:
    """(size, channels kept, |gamma| threshold) of Bn-prune's global plan at every size of
    the first seed's splitting run (more kept than the size where the guard kept a layer's
    last channel)."""
    layers = comparison.histories["splitting"][0].meta["layers"]
    n_wide = sum(trained.layers[i].n_neurons for i in layers)
    rows = []
    for r in comparison.histories["splitting"][0].rounds:
        plan = pruning.bn_plan(trained, 1.0 - r.n_neurons / n_wide, "global", layers)
        rows.append((r.n_neurons, plan.n_units - plan.n_removed, plan.threshold))
    return rows


def _sensitivity(comparison, data, trained):
    """The L1 sensitivity curves the l1_prune reference read its ratios from."""
    layers = comparison.histories["splitting"][0].meta["layers"]
    judged = trained.copy().set_mode("eval")
    return pruning.sensitivity(judged, data.X_train[:SENSITIVITY_SAMPLES],
                               data.y_train[:SENSITIVITY_SAMPLES], layers, SENSITIVITY_RATIOS,
                               "l1")


def _figures(comparison, data, wide) -> dict:
    """``{file name: (draw, caption)}``, ``draw(path or None) -> Figure``: the accuracy
    against cost, and the insides of the pruning references that were run."""
    from minisplit import plots

    figures = {
        f"accuracy_{x}.png": (
            functools.partial(plots.plot_by_size, comparison, metric="test_accuracy", x=x,
                              title=f"{data.name}: test accuracy against {COSTS[x]}"),
            f"test accuracy against {COSTS[x]}: median over seeds, band the quartiles")
        for x in COSTS
    }
    seed = comparison.seeds[0]
    if "bn_prune" in wide:
        trained = wide["bn_prune"].net
        final = _thresholds(comparison, trained)[-1][2]
        figures["gamma.png"] = (
            functools.partial(plots.plot_gamma_histogram, trained, threshold=final,
                              title=f"Bn-prune's wide network before pruning (seed {seed})"),
            "|gamma| of each batch-normalised conv layer after training with the sparsity "
            "penalty; the dashed line is the global threshold that prunes it to splitting's "
            "final size")
    if "l1_prune" in wide:
        curves = _sensitivity(comparison, data, wide["l1_prune"].net)
        figures["sensitivity.png"] = (
            functools.partial(plots.plot_sensitivity, curves,
                              title=f"L1-prune's wide network, one layer at a time (seed {seed})"),
            "training accuracy with each conv layer L1-pruned alone at each ratio, no "
            "retraining: the curves L1-prune reads its per-layer ratios from")
    return figures


def _write(out, comparison, tables, figures, page) -> None:
    comparison.save(out / "comparison.json")
    (out / "table.txt").write_text(tables + "\n", encoding="utf-8")
    for name, (draw, _) in figures.items():
        draw(path=out / name)
    page.save(out / "report.html")


def _page(args, data, config, comparison, wide, figures) -> Page:
    page = Page(
        "Growing a small CNN by splitting, against pruning a wide one",
        f"A small CNN on {data.name}, grown by splitting its conv channels, against "
        "networks of the same sizes trained from scratch or pruned from a wide network. "
        "Every number on this page was computed by this run.",
    )
    _how(page.section("1. What was compared, and how"), args, data, comparison)
    section = page.section("2. Accuracy against parameters and FLOPs")
    section.paragraph(
        "At the same number of channels the runs differ in parameters and FLOPs: splitting "
        "grows the layers whose channels have the most negative splitting indices, the "
        "width family scales every layer alike, L1-prune cuts each layer by its own ratio "
        "and Bn-prune cuts on one threshold over all layers. So each point is drawn at the "
        "median cost of its networks.")
    for name in ("accuracy_params.png", "accuracy_flops.png"):
        draw, caption = figures[name]
        section.figure(draw(), caption)
    if wide:
        _inside(page.section("3. Inside the pruning references"), comparison, wide, figures)
    _verdict(page.section(f"{4 if wide else 3}. Verdict"), comparison)
    page.section(f"{5 if wide else 4}. Settings").table(["setting", "value"],
                                                        _settings(args, data, config,
                                                                  comparison))
    return page


def _how(section, args, data, comparison) -> None:
    steps = ", ".join(sorted({str(h.total_steps) for h in comparison.histories.get(
        "splitting", ())}))
    section.paragraph(
        f"Every run trains with Adam (learning rate {args.lr:g}) on mini-batches of "
        f"{args.batch_size} of the same {len(data.X_train)} training images"
        + (" (only the first ones: --samples)" if args.samples is not None else "")
        + f" and is measured on the same {len(data.X_test)} test images. Splitting starts "
        f"from conv widths "
        f"{_shown(args.start)} and grows by {args.steps} steps per round until its conv layers "
        f"hold {args.budget} channels in all" + (f", {steps} steps in all (T)" if steps else "")
        + "; the references are matched to the sizes it passed through and to T:")
    section.items(f"{name}: {_summary(name)}" for name in args.strategies)
    rows = _wide_rows(comparison)
    if rows:
        section.paragraph(
            f"The pruning references start from the starting architecture at {WIDE_FACTOR} "
            "times splitting's final number of channels, in uniform widths, trained T steps "
            "(Bn-prune's with gamma initialised to 0.5 and the penalty "
            f"{SLIMMING_L1:g} sum |gamma|); each pruned network is then fine-tuned "
            f"{args.steps} steps. The wide networks before pruning:")
        section.table(["reference", "seed", "widths", "params", "FLOPs", "test accuracy"],
                      [[n, s, _shown(w), p, f, a] for n, s, w, p, f, a in rows])


def _summary(name) -> str:
    record = growth.REFERENCES.get(name) or growth.STRATEGIES[name]
    return record.summary


def _inside(section, comparison, wide, figures) -> None:
    recorded = {name: comparison.histories[name][0].meta["wide"]["test_accuracy"]
                for name in wide}
    again = {name: result.history.rounds[0].test_accuracy for name, result in wide.items()}
    section.paragraph(
        "The comparison keeps only the pruned networks, so seed "
        f"{comparison.seeds[0]}'s wide networks were trained again exactly as the references "
        "did. " + " ".join(
            f"{name}: test accuracy {again[name]:.4g} again, {recorded[name]:.4g} in the "
            "comparison (" + ("the same network" if again[name] == recorded[name] else
                              "NOT the same network: the figures below are of another one")
            + ")." for name in wide))
    if "gamma.png" in figures:
        draw, caption = figures["gamma.png"]
        section.figure(draw(), caption)
        section.paragraph("Bn-prune's global |gamma| threshold at each size:")
        section.table(["size", "channels kept", "|gamma| threshold"],
                      [[n, f, "-" if t is None else t]
                       for n, f, t in _thresholds(comparison, wide["bn_prune"].net)])
    if "sensitivity.png" in figures:
        draw, caption = figures["sensitivity.png"]
        section.figure(draw(), caption)


def _verdict(section, comparison) -> None:
    if "splitting" not in comparison.histories:
        section.paragraph("Splitting was not run: nothing to compare it with.")
        return
    lines = []
    for name, st in comparison.standing("test_accuracy").items():
        k, n = len(st.at_least_as_good), len(st.matched)
        lines.append(f"splitting's median test accuracy was at least as good as {name}'s at "
                     f"{k} of {n} matched sizes.")
    section.items(lines)
    rows = _best_by_size(comparison)
    wins = sum(1 for row in rows if "splitting" in row[1].split(", "))
    section.paragraph(
        f"The best median test accuracy at each size every seed of two runs or more reached "
        f"(splitting's was the best, or tied, at {wins} of {len(rows)}):")
    section.table(["channels", "best", "its median", "splitting's median"], rows)


def _best_by_size(comparison) -> list:
    """[size, best names, best median, splitting's median] at every size (the start
    excepted) where at least two runs have every seed."""
    table = comparison.by_size("test_accuracy")
    start = {h.rounds[0].n_neurons for h in comparison.histories["splitting"]}
    rows = []
    for size in sorted({n for cells in table.values() for n in cells} - start):
        medians = {name: cells[size].median for name, cells in table.items()
                   if size in cells and cells[size].every_seed}
        if len(medians) < 2:
            continue
        best = max(medians.values())
        rows.append([size, ", ".join(n for n, m in medians.items() if m == best), best,
                     medians.get("splitting", "-")])
    return rows


def _settings(args, data, config, comparison) -> list:
    rows = [["task", f"{data.name} ({len(data.X_train)} training, {len(data.X_test)} test "
             f"images {'x'.join(map(str, data.X_train.shape[1:]))})"],
            ["starting network", f"small_cnn, conv widths {_shown(args.start)}, softplus, "
             "batch norm"],
            ["--samples", "all" if args.samples is None else str(args.samples)],
            ["seeds", ", ".join(map(str, comparison.seeds))],
            ["strategies", ", ".join(args.strategies)],
            ["WIDE_FACTOR", str(WIDE_FACTOR)], ["SLIMMING_L1", f"{SLIMMING_L1:g}"]]
    return rows + [[f"GrowthConfig.{k}", repr(v)] for k, v in config.to_dict().items()
                   if k not in ("strategy", "seed")]
