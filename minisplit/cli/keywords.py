"""``minisplit keywords``: grow a narrow DS-CNN for keyword spotting by splitting, against
fixed DS-CNNs of matched widths and the other growth strategies.

Every run starts from (or is matched to) the same narrow :func:`minisplit.dscnn` (Hello
Edge's depthwise-separable CNN) on the shipped spoken keywords (49 x 10 MFCC images, 12
classes, the test voices never heard in training) and trains with the same optimiser,
mini-batches and step budget: the growth strategies grow the first conv and every pointwise
conv to the neuron budget; "width" trains the starting architecture at uniform widths
matched to each size splitting passed through, from scratch (the fixed DS-CNNs of matched
widths); "fixed" and "scratch" train splitting's architectures from scratch. Outputs: a
progress line, a Hello-Edge-style table (widths, parameters, multiply-adds per clip, test
accuracy median [min, max] over seeds), accuracy against multiply-adds, the confusion matrix
of seed 0's grown network, an MFCC image of each class, JSON and ``report.html`` (the same
page writer as ``grow``), written as a set (docs/cli.md).
"""

from __future__ import annotations

import dataclasses
import functools
import sys

import numpy as np

from minisplit import GrowthConfig, compare, count_flops, datasets, dscnn, growth
from minisplit.cli._args import add_jobs, fail, name_list, positive_int
from minisplit.cli._output import run_comparison, training_count
from minisplit.cli.grow import Progress, size_table
from minisplit.growth.comparison import SizeCell
from minisplit.report import Page

#: The strategies and references ``keywords`` can compare, and its default set.
STRATEGY_NAMES = ("splitting", "random_split", "net2net", "new_neurons", "width", "fixed",
                  "scratch")
DEFAULT_STRATEGIES = ("splitting", "new_neurons", "width", "fixed")
#: Hello Edge's DS-CNN S (Zhang et al., 2017): the table's reference point, sized here.
HELLO_EDGE_S = {"width": 64, "n_blocks": 4}


def starting_network(widths, n_blocks, seed):
    """The DS-CNN of ``widths`` (first conv, then each pointwise conv) for the keywords."""
    return dscnn(width=widths, n_blocks=n_blocks, seed=seed)


def config_of(args) -> GrowthConfig:
    """The fraction rule on the splitting indices, full rounds of Adam on mini-batches, the
    budget in neurons of the grown layers (the first conv and the pointwise convs)."""
    return GrowthConfig(
        selection="fraction", fraction=args.fraction, eps=args.eps, budget_kind="neurons",
        budget=args.budget, max_rounds=args.budget, steps_per_round=args.steps, lr=args.lr,
        batch_size=args.batch_size, plateau_window=None,
    )


def add_arguments(parser):
    add = parser.add_argument
    add("--strategies", type=name_list(STRATEGY_NAMES), default=list(DEFAULT_STRATEGIES),
        metavar="LIST",
        help=f"comma-separated, from {', '.join(STRATEGY_NAMES)} (default: "
        f"{','.join(DEFAULT_STRATEGIES)}); width, fixed and scratch need splitting")
    add("--seeds", type=positive_int, default=1, metavar="N",
        help="run every strategy with seeds 0..N-1; tables show the median (default: 1)")
    add("--start", type=positive_int, default=4, metavar="W",
        help="channels of every conv of the starting DS-CNN (default: 4)")
    add("--blocks", type=positive_int, default=2, metavar="N",
        help="depthwise-separable blocks (default: 2; Hello Edge's S model has 4)")
    add("--budget", type=positive_int, default=24, metavar="N",
        help="grow to this many channels in the first conv and the pointwise convs together "
        "(default: 24)")
    add("--steps", type=positive_int, default=80, metavar="N",
        help="Adam steps per round (default: 80)")
    add("--batch-size", type=positive_int, default=32, metavar="B",
        help="mini-batch size (default: 32)")
    add("--lr", type=float, default=0.01, help="Adam learning rate (default: 0.01)")
    add("--eps", type=float, default=0.1, help="split step (default: 0.1)")
    add("--fraction", type=float, default=0.5,
        help="share of all channels grown per round, most negative splitting index first "
        "(default: 0.5)")
    add("--train-subset", type=positive_int, default=400, metavar="N",
        help="train on the first N of the 2400 (shuffled) training clips; the 600 test clips "
        "stay whole (default: 400, for a quick run)")
    add("--out", default="minisplit-keywords", metavar="DIR",
        help="folder for the figures, JSON, tables and report (default: ./minisplit-keywords)")
    add_jobs(parser)
    add("--quiet", action="store_true", help="no progress line on stderr")




def run(args) -> int:
    """Grow the DS-CNN every way, print the tables, write the output folder."""
    start = args.start * (args.blocks + 1)
    if args.budget <= start:
        fail("keywords", f"--budget must be larger than the starting channels in all "
             f"({args.start} x {args.blocks + 1} convs = {start}), got {args.budget}")
    return run_comparison("keywords", args, config_of, _grow_and_write)


def _grow_and_write(args, config, out) -> int:
    data = datasets.load("keywords", seed=0, images=True)
    n_train = len(data.X_train)
    data = dataclasses.replace(data, X_train=data.X_train[:args.train_subset],
                               y_train=data.y_train[:args.train_subset])
    widths = [args.start] * (args.blocks + 1)
    make_net = functools.partial(starting_network, widths, args.blocks)  # pickles, for --jobs
    print(f"Growing a DS-CNN ({args.blocks} blocks) on the spoken keywords "
          f"({training_count(data, n_train)}, {len(data.X_test)} test clips of unheard voices) "
          f"from "
          f"width {args.start} to {args.budget} channels in all, by "
          f"{', '.join(args.strategies)}; seed{'s 0..' if args.seeds > 1 else ' '}"
          f"{args.seeds - 1}.", flush=True)
    progress = None if args.quiet else Progress(args.strategies, args.seeds, sys.stderr)
    with growth.process_pool(args.jobs) as executor:
        comparison = compare(data, make_net, config, args.strategies, range(args.seeds),
                             progress, executor=executor)
    if progress is not None:
        progress.close()
    reference = hello_edge_s(data.X_test[:1])
    tables = _tables(comparison, reference)
    print("\n" + tables + "\n")
    figures = _figures(comparison, data)
    page = _page(args, data, config, comparison, reference, figures)
    page.section("The tables as printed").preformatted(tables)
    return out.save(lambda folder: _write(folder, comparison, tables, figures, page))


# ---- the Hello-Edge-style table ------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Row:
    """One line of the Hello-Edge-style table: a run at one size, over the seeds.

    ``widths``: the distinct channel counts of the grown layers (first conv, then each
    pointwise conv) the seeds' networks had at that size; ``params`` and ``flops`` (multiply-
    adds per clip) their medians (:meth:`Comparison.size_of`); ``accuracy`` the test
    accuracy over those seeds (:meth:`Comparison.by_size`).
    """

    strategy: str
    neurons: int
    widths: tuple
    params: float
    flops: float
    accuracy: SizeCell


def table_rows(comparison) -> list[Row]:
    """Every (run, size) of ``comparison`` as a :class:`Row`, runs in the comparison's order,
    sizes ascending."""
    accuracy = comparison.by_size("test_accuracy")
    params, flops = comparison.size_of("params"), comparison.size_of("flops")
    rows = []
    for name, cells in accuracy.items():
        widths = {}  # size -> distinct widths over seeds, in seed order
        for history in comparison.histories[name]:
            last = {r.n_neurons: tuple(r.neurons) for r in history.rounds}
            for size, w in last.items():
                widths.setdefault(size, []).append(w)
        rows += [Row(name, size, tuple(dict.fromkeys(widths[size])), params[name][size],
                     flops[name][size], cell) for size, cell in cells.items()]
    return rows


def hello_edge_s(X) -> dict:
    """Width, blocks, parameters and multiply-adds per clip of Hello Edge's S model, counted
    on the network :func:`minisplit.dscnn` builds (not trained: the table's reference point)."""
    net = dscnn(**HELLO_EDGE_S, seed=0)
    return {**HELLO_EDGE_S, "params": int(net.n_params), "flops": int(count_flops(net, X))}


def shown_widths(widths) -> str:
    """``(4, 6, 4)`` and ``(6, 4, 4)`` as ``"4,6,4 / 6,4,4"``."""
    return " / ".join(",".join(map(str, w)) for w in widths)


def shown_accuracy(cell) -> str:
    """``median [min, max]``, with ``(k/n seeds)`` when not every seed trained at the size."""
    mark = "" if cell.every_seed else f" ({cell.count}/{cell.n_seeds} seeds)"
    return f"{cell.median:.3f} [{cell.low:.3f}, {cell.high:.3f}]{mark}"


TABLE_HEADER = ("run", "channels", "widths", "params", "mult-adds", "test accuracy")


def hello_edge_table(comparison, reference) -> str:
    """The Hello-Edge-style table as text: one line per (run, size), then the S model's."""
    cells = [[r.strategy, str(r.neurons), shown_widths(r.widths), f"{r.params:.0f}",
              f"{r.flops:.0f}", shown_accuracy(r.accuracy)] for r in table_rows(comparison)]
    cells.append([f"DS-CNN S ({reference['n_blocks']} blocks)", str(reference["width"] * (
        reference["n_blocks"] + 1)), f"{reference['width']} each", str(reference["params"]),
        str(reference["flops"]), "not trained here"])
    sizes = [max(len(h), *(len(c[j]) for c in cells)) for j, h in enumerate(TABLE_HEADER)]
    lines = ["  ".join(h.ljust(n) if j in (0, 2) else h.rjust(n)
                       for j, (h, n) in enumerate(zip(TABLE_HEADER, sizes)))]
    lines += ["  ".join(c.ljust(n) if j in (0, 2) else c.rjust(n)
                        for j, (c, n) in enumerate(zip(row, sizes))) for row in cells]
    return "\n".join(lines)


def _tables(comparison, reference) -> str:
    seeds = ", ".join(map(str, comparison.seeds))
    return "\n\n".join([
        f"Hello-Edge-style table: test accuracy median [min, max] over seeds {seeds}, "
        "parameters and multiply-adds per clip (medians) of the networks at each size:\n"
        + hello_edge_table(comparison, reference),
        "test accuracy after each round, median over seeds (channels of the grown layers = "
        "rows):\n" + size_table(comparison, "test_accuracy"),
        "training loss after each round, median over seeds:\n"
        + size_table(comparison, "train_loss"),
    ])


# ---- figures -------------------------------------------------------------------------------


def _canvas(width, height, rows=1, cols=1, **margins):
    """A Figure on the Agg canvas with a grid of axes, placed by ``margins`` (fractions, as
    ``subplots_adjust``): a fixed layout, drawn in a fraction of a constrained one's time."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    fig.subplots_adjust(**margins)
    return fig, fig.subplots(rows, cols, squeeze=False)


def confusion(net, X, y, n_classes) -> np.ndarray:
    """``C[i, j]``: how many clips of class i ``net`` (in eval mode) puts in class j."""
    predicted = np.argmax(net.copy().set_mode("eval").forward(X), axis=1)  # (N,)
    C = np.zeros((n_classes, n_classes), dtype=np.int64)  # (true, predicted)
    np.add.at(C, (y, predicted), 1)
    return C


def plot_confusion(C, class_names, path=None, title=None):
    """The confusion matrix ``C`` (true class = rows), coloured by each row's share, the
    counts written in the cells."""
    fig, axes = _canvas(6.4, 5.6, left=0.17, right=0.84, bottom=0.18, top=0.93)
    ax = axes[0, 0]
    share = C / np.maximum(C.sum(axis=1, keepdims=True), 1)  # (k, k), rows sum to 1
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i, j in zip(*np.nonzero(C)):
        ax.text(j, i, str(C[i, j]), ha="center", va="center", fontsize=7,
                color="white" if share[i, j] > 0.5 else "black")
    ticks = np.arange(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(ticks, class_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or "confusion matrix")
    fig.colorbar(image, cax=fig.add_axes([0.86, 0.18, 0.025, 0.75]),
                 label="share of the true class's clips")
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def plot_mfcc(data, path=None):
    """The first test clip of each class as an MFCC image (frames across, coefficients up),
    each coefficient standardised by its mean and deviation over the training clips."""
    fig, axes = _canvas(10, 5.6, 3, 4, left=0.06, right=0.86, bottom=0.09, top=0.94,
                        hspace=0.45, wspace=0.15)
    mean = data.X_train[:, 0].mean(axis=(0, 1))  # (10,) per coefficient
    std = data.X_train[:, 0].std(axis=(0, 1))  # (10,)
    image = None
    for label, ax in enumerate(axes.flat):
        if label >= data.n_classes:
            ax.set_axis_off()
            continue
        first = int(np.flatnonzero(data.y_test == label)[0])
        Z = (data.X_test[first, 0] - mean) / std  # (49, 10)
        image = ax.imshow(Z.T, origin="lower", aspect="auto", cmap="RdBu_r", vmin=-3, vmax=3)
        ax.set_title(f"{data.class_names[label]} (test clip {first})", fontsize=9)
        ax.set_yticks([0, 3, 6, 9])
    for ax in axes[-1]:
        ax.set_xlabel("frame")
    for ax in axes[:, 0]:
        ax.set_ylabel("coefficient")
    fig.colorbar(image, cax=fig.add_axes([0.89, 0.2, 0.015, 0.6]), label="standardised MFCC")
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def _figures(comparison, data) -> dict:
    """``{file name: (Figure, caption)}``, each drawn once: saved to the folder and embedded
    in the page."""
    from minisplit import plots

    figures = {"accuracy_macs.png": (
        plots.plot_by_size(comparison, metric="test_accuracy", x="flops",
                           title="keywords: test accuracy against multiply-adds per clip"),
        "test accuracy against multiply-adds per clip: the median over seeds at each size, "
        "the band the first to third quartile")}
    if "splitting" in comparison.histories:
        seed, net = comparison.seeds[0], comparison.nets["splitting"][0]
        widths = ",".join(map(str, comparison.histories["splitting"][0].rounds[-1].neurons))
        C = confusion(net, data.X_test, data.y_test, data.n_classes)
        figures["confusion.png"] = (
            plot_confusion(C, data.class_names, title=f"seed {seed}'s grown DS-CNN on the "
                           f"{len(data.X_test)} test clips"),
            f"the confusion matrix of seed {seed}'s final splitting network (widths {widths}) "
            f"on the test clips: accuracy {np.trace(C) / C.sum():.3f}")
    figures["mfcc.png"] = (plot_mfcc(data),
                           "the first test clip of each class as the network reads it: 49 "
                           "frames by 10 MFCCs, each coefficient standardised over the "
                           "training clips")
    return figures


def _write(out, comparison, tables, figures, page) -> None:
    comparison.save(out / "comparison.json")
    (out / "table.txt").write_text(tables + "\n", encoding="utf-8")
    for name, (fig, _) in figures.items():
        fig.savefig(out / name, dpi=120)
    page.save(out / "report.html")


# ---- the report ----------------------------------------------------------------------------


def _page(args, data, config, comparison, reference, figures) -> Page:
    page = Page(
        "Keyword spotting with a DS-CNN grown by splitting",
        "Hello Edge's depthwise-separable CNN on the shipped spoken keywords, grown from a "
        "narrow start by splitting its channels, against DS-CNNs of the same sizes trained "
        "from scratch and against the other ways of adding channels. Every number on this "
        "page was computed by this run.",
    )
    _how(page.section("1. What was compared, and how"), args, data, comparison)
    section = page.section("2. The Hello-Edge-style table")
    section.paragraph(
        "One row per run and size (channels of the first conv and the pointwise convs "
        "together): the widths the seeds' networks had, their parameters and multiply-adds "
        "per clip (medians over seeds), and the test accuracy on the unheard voices, median "
        "[min, max] over seeds. The last row is Hello Edge's S model (width 64, "
        f"{reference['n_blocks']} blocks) as minisplit builds it, counted, not trained here: "
        "the size a microcontroller model has.")
    rows = [[r.strategy, r.neurons, shown_widths(r.widths), f"{r.params:.0f}",
             f"{r.flops:.0f}", shown_accuracy(r.accuracy)] for r in table_rows(comparison)]
    rows.append(["DS-CNN S (Hello Edge; not trained here)",
                 reference["width"] * (reference["n_blocks"] + 1),
                 f"{reference['width']} each", reference["params"], reference["flops"], "-"])
    section.table(list(TABLE_HEADER), rows)
    section = page.section("3. Figures")
    for fig, caption in figures.values():
        section.figure(fig, caption)
    _verdict(page.section("4. Verdict"), comparison)
    page.section("5. Settings").table(["setting", "value"],
                                      _settings(args, data, config, comparison))
    return page


def _how(section, args, data, comparison) -> None:
    steps = ", ".join(sorted({str(h.total_steps) for h in comparison.histories.get(
        "splitting", ())}))
    section.paragraph(
        f"Every run trains with Adam (learning rate {args.lr:g}) on mini-batches of "
        f"{args.batch_size} of the same {len(data.X_train)} training clips and is measured "
        f"on the same {len(data.X_test)} test clips, spoken by voices that never speak in "
        f"training. Splitting starts from a DS-CNN of {args.blocks} blocks at width "
        f"{args.start} and trains {args.steps} steps per round, then splits the channels with "
        f"the most negative splitting indices (a share {args.fraction:g} of all), until the "
        f"first conv and the pointwise convs hold {args.budget} channels in all"
        + (f" ({steps} steps in all, T)" if steps else "")
        + "; a pointwise channel's split copies the next depthwise filter. The other runs:")
    section.items(f"{name}: {_summary(name)}" for name in args.strategies)


def _summary(name) -> str:
    record = growth.REFERENCES.get(name) or growth.STRATEGIES[name]
    return record.summary


def _verdict(section, comparison) -> None:
    if "splitting" not in comparison.histories:
        section.paragraph("Splitting was not run: nothing to compare it with.")
        return
    section.items(
        f"splitting's median test accuracy was at least as good as {name}'s at "
        f"{len(st.at_least_as_good)} of {len(st.matched)} matched sizes"
        + (f" (worse at {', '.join(map(str, st.worse))} channels)." if st.worse else ".")
        for name, st in comparison.standing("test_accuracy").items())


def _settings(args, data, config, comparison) -> list:
    rows = [["data", f"keywords ({len(data.X_train)} training, {len(data.X_test)} test clips "
             f"{'x'.join(map(str, data.X_train.shape[1:]))}, {data.n_classes} classes)"],
            ["starting network", f"dscnn(width={args.start}, n_blocks={args.blocks}), "
             "softplus, batch norm"],
            ["--train-subset", str(args.train_subset)],
            ["seeds", ", ".join(map(str, comparison.seeds))],
            ["strategies", ", ".join(args.strategies)]]
    return rows + [[f"GrowthConfig.{k}", repr(v)] for k, v in config.to_dict().items()
                   if k not in ("strategy", "seed")]
