"""``minisplit grow``, the main job: grow a network by splitting and compare with the baselines.

Grows a tanh network by splitting on a built-in data set and compares it with
the baselines through :func:`minisplit.compare`: a progress line on stderr,
tables of loss (and accuracy) against size on stdout, figures
(:mod:`minisplit.plots`), histories and the table in an output folder
(docs/cli.md).
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from dataclasses import dataclass

from minisplit import GrowthConfig, Network, compare, datasets, growth, mlp
from minisplit.cli import story
from minisplit.cli._args import add_jobs, eps_value, fail, name_list, positive_int
from minisplit.cli._output import OutputFolder


@dataclass(frozen=True)
class Task:
    """The defaults of ``grow`` for one built-in data set.

    ``data`` is passed to :func:`minisplit.datasets.load`; the starting network
    has ``start`` hidden neurons and grows until it has ``budget``, training at
    most ``steps`` steps per round.
    """

    data: dict
    start: int
    budget: int
    steps: int = 300


#: Defaults per data set: one entry for every name of :data:`minisplit.datasets.DATASETS`.
TASKS = {
    "spirals": Task({"n": 300}, start=2, budget=12),
    "rbf_teacher": Task({"n": 200}, start=2, budget=8),
    "moons": Task({"n": 300}, start=1, budget=6),
    "blobs": Task({"n": 300}, start=1, budget=6),
    "teacher_student": Task({"n": 300}, start=1, budget=8),
    "digits": Task({}, start=4, budget=12, steps=100),
    "fashion_mnist": Task({}, start=4, budget=12, steps=100),
    "keywords": Task({}, start=4, budget=12, steps=100),
}
DEFAULT_TASK = "spirals"
#: The strategies (and reference runs) ``grow`` can compare, in table order.
STRATEGY_NAMES = growth.RUN_NAMES
#: The quantities of the printed tables, per kind of task.
TABLE_METRICS = {
    "regression": ("train_loss", "test_loss"),
    "classification": ("train_loss", "test_loss", "test_accuracy"),
}


def starting_network(data, width, seed) -> Network:
    """One hidden layer of ``width`` tanh neurons, with the output and loss ``data`` needs.

    tanh because every method applies: its f'' is not zero (splitting), and
    f(0) = 0 with f'(0) = 1 (GradMax).
    """
    n_in = data.X_train.shape[1]
    if data.task == "regression":
        return mlp([n_in, width, data.y_train.shape[1]], "tanh", "mse", seed=seed)
    return mlp([n_in, width, data.n_classes], "tanh", "cross_entropy", seed=seed)


def grow_config(args) -> GrowthConfig:
    """The GrowthConfig of the parsed options (ValueError for values it refuses)."""
    budget = args.budget
    if budget is None:
        if args.budget_kind != "neurons":
            raise ValueError(f"--budget-kind {args.budget_kind} needs a --budget")
        budget = TASKS[args.task].budget
    return GrowthConfig(
        selection=args.selection,
        k=args.k,
        fraction=args.fraction,
        eps=args.eps,
        budget_kind=args.budget_kind,
        budget=budget,
        max_rounds=args.rounds,
        steps_per_round=TASKS[args.task].steps if args.steps is None else args.steps,
        lr=args.lr,
    )


class Progress:
    """The progress of :func:`minisplit.compare` on a stream (stderr).

    On a terminal: one line redrawn in place (``\\r``), a bar of finished runs, the run
    and round being trained, its size and loss, the time elapsed and an estimate of the
    time left (from the runs finished so far). Into a file or a pipe: one line per
    finished run, with its rounds, size, final loss, stop reason and time.

    Parameters
    ----------
    strategies : list of str
    n_seeds : int
    stream : text file
    clock : callable
        Seconds, monotonic (default ``time.monotonic``; tests pass a fake).
    """

    def __init__(self, strategies, n_seeds, stream, clock=time.monotonic):
        self.total, self.done = len(strategies) * n_seeds, 0
        self.stream, self.tty, self.width = stream, stream.isatty(), 0
        self.clock = clock
        self.start = clock()
        self.last = {}  # the latest round event of the run in progress

    def __call__(self, event) -> None:
        name, seed = event["strategy"], event["seed"]
        if event["event"] == "round":
            self.last = event
            if self.tty:
                self.show(f"{name:<12} seed {seed}  round {event['round']:>2}  neurons "
                          f"{event['n_neurons']:>3}  loss {event['loss']:.4g}")
        elif event["event"] == "reference":
            self.last = {"text": event["text"]}
            if self.tty:
                self.show(f"{name:<12} seed {seed}  {event['text']}")
        else:  # "stop": a run finished
            self.done += 1
            if not self.tty:
                what = self.last.get("text") or (
                    f"{event['round']} rounds, {self.last.get('n_neurons', '?')} neurons, "
                    f"loss {self.last.get('loss', float('nan')):.4g}"
                )
                self.show(f"{name:<12} seed {seed}  {what}, stop: {event['reason']} "
                          f"({event['seconds']:.1f} s)")
            self.last = {}

    def _times(self) -> str:
        elapsed = self.clock() - self.start
        if self.done == 0:
            return f"{elapsed:.0f} s, ETA ?"
        left = elapsed / self.done * (self.total - self.done)
        return f"{elapsed:.0f} s, ETA {left:.0f} s"

    def show(self, text) -> None:
        filled = round(20 * self.done / self.total)
        line = f"[{'#' * filled}{'.' * (20 - filled)}] {self.done}/{self.total}  {text}"
        if self.tty:
            line = f"{line}  [{self._times()}]"
            self.stream.write("\r" + line.ljust(self.width))
            self.width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Show the finished bar and end the line."""
        self.show("done")
        if self.tty:
            self.stream.write("\n")


def size_table(comparison, metric) -> str:
    """``metric`` after each round, median over seeds: one row per size, one column per strategy.

    The numbers are :meth:`minisplit.Comparison.by_size`'s medians; a size a seed's
    run never had does not count for that seed ("-": no seed had it).
    """
    table = comparison.by_size(metric)
    names = list(table)
    width = max(10, *(len(m) for m in names))
    lines = [f"{'neurons':>7}  " + "  ".join(f"{m:>{width}}" for m in names)]
    for size in sorted({size for cells in table.values() for size in cells}):
        cells = [
            f"{table[m][size].median:>{width}.4g}" if size in table[m] else "-".rjust(width)
            for m in names
        ]
        lines.append(f"{size:>7}  " + "  ".join(cells))
    return "\n".join(lines)


def report(comparison, task) -> str:
    """One :func:`size_table` per quantity of :data:`TABLE_METRICS`, each under a title."""
    seeds = ", ".join(str(s) for s in comparison.seeds)
    parts = [
        f"{metric.replace('_', ' ')} after each round, median over seeds {seeds} "
        "(those that reached the size):\n" + size_table(comparison, metric)
        for metric in TABLE_METRICS[task]
    ]
    return "\n\n".join(parts)


def write_outputs(comparison, task, table, out, page=None) -> None:
    """Figures, JSON, the table and the report page into ``out`` (an :class:`OutputFolder`,
    or a folder path).

    The training curve and the spectrum are those of the first strategy's first
    seed (splitting's, unless --strategies leaves it out).
    """
    from minisplit import plots  # matplotlib: imported only when figures are drawn

    name, first = next((m, runs[0]) for m, runs in comparison.histories.items())
    title = f"{comparison.dataset}: {name}, seed {comparison.seeds[0]}"
    first.save(out / "history.json")
    comparison.save(out / "comparison.json")
    (out / "table.txt").write_text(table + "\n", encoding="utf-8")
    figures = {
        "training.png": lambda p: plots.plot_training(first, p, f"{title}: training loss"),
        "spectrum.png": lambda p: plots.plot_spectrum(first, p, f"{title}: splitting indices"),
        "comparison.png": lambda p: plots.plot_comparison(comparison, p, "test_loss"),
    }
    if task == "classification":
        figures["accuracy.png"] = lambda p: plots.plot_comparison(comparison, p, "test_accuracy")
    for name, draw in figures.items():
        draw(out / name)
    if page is not None:
        page.save(out / "report.html")


def add_arguments(parser):
    add = parser.add_argument
    add(
        "--task",
        choices=datasets.DATASETS,
        default=DEFAULT_TASK,
        help=f"built-in data set (default: {DEFAULT_TASK}); each has its own defaults for "
        "--start and --budget (docs/cli.md)",
    )
    add(
        "--strategies",
        type=name_list(STRATEGY_NAMES),
        default=None,
        metavar="LIST",
        help=f"comma-separated strategies to compare, from {', '.join(STRATEGY_NAMES)} "
        "(default: every one that can grow the task's tanh network; fixed and scratch "
        "need splitting)",
    )
    add(
        "--methods",
        type=name_list(STRATEGY_NAMES),
        dest="strategies",
        action=DeprecatedAlias,
        metavar="LIST",
        help="deprecated spelling of --strategies",
    )
    add(
        "--seeds",
        type=positive_int,
        default=3,
        metavar="N",
        help="run every method with seeds 0..N-1; tables show the median (default: 3)",
    )
    add(
        "--start",
        type=positive_int,
        default=None,
        metavar="N",
        help="hidden tanh neurons of the starting network (default: per task)",
    )
    add(
        "--budget",
        type=float,
        default=None,
        metavar="B",
        help="stop growing at this size, in --budget-kind units (default: per task, neurons)",
    )
    add(
        "--budget-kind",
        choices=growth.BUDGET_KINDS,
        default="neurons",
        help="what --budget counts (default: neurons)",
    )
    add(
        "--rounds",
        type=positive_int,
        default=20,
        metavar="N",
        help="at most this many growth rounds (default: 20)",
    )
    add(
        "--steps",
        type=positive_int,
        default=None,
        metavar="N",
        help="at most this many Adam steps per round; a round ends earlier when the loss "
        "plateaus (default: per task, 300 for all but digits)",
    )
    add("--lr", type=float, default=0.03, help="Adam learning rate (default: 0.03)")
    add(
        "--eps",
        type=eps_value,
        default=0.1,
        help="split step size, or 'line_search' to try a grid of values (default: 0.1)",
    )
    add(
        "--selection",
        choices=list(growth.SELECTIONS),
        default="fraction",
        help="rule choosing the neurons to grow (default: fraction; knapsack needs "
        "--budget-kind flops)",
    )
    add(
        "--fraction",
        type=float,
        default=0.3,
        help="share of all neurons the fraction rule takes, most negative index first "
        "(default: 0.3)",
    )
    add(
        "--k",
        type=positive_int,
        default=1,
        metavar="K",
        help="neurons the k rule takes per round (default: 1)",
    )
    add(
        "--out",
        default="minisplit-output",
        metavar="DIR",
        help="folder for the figures, JSON and table (default: ./minisplit-output)",
    )
    add(
        "--checkpoint",
        default=None,
        metavar="DIR",
        help="keep a checkpoint of every growth run in DIR (one sub-folder per strategy and "
        "seed), so an interrupted comparison can be resumed (default: none)",
    )
    add(
        "--resume",
        action="store_true",
        help="continue the runs a previous call left in --checkpoint (same options)",
    )
    add(
        "--overwrite",
        action="store_true",
        help="replace the checkpoints another comparison left in --checkpoint (without it "
        "such a folder is refused)",
    )
    add_jobs(parser)
    add("--quiet", action="store_true", help="no progress line on stderr")


def run(args) -> int:
    """Grow by splitting and by every baseline, print the tables, write the output folder."""
    try:
        config = grow_config(args)
    except ValueError as err:
        fail("grow", str(err))
    for name in args.strategies or ():
        ref = growth.REFERENCES.get(name)
        if ref is not None and ref.after not in args.strategies:
            fail("grow", f"--strategies: {name} trains the {ref.after} run's final network; "
                 f"add {ref.after}")
    if (args.resume or args.overwrite) and args.checkpoint is None:
        fail("grow", "--resume and --overwrite need a --checkpoint folder")
    try:  # before any work: a destination that cannot be used fails now
        if args.checkpoint is not None:
            growth.checkpoint.check_destination(args.checkpoint)
        out = OutputFolder(args.out, "grow")
    except ValueError as err:
        fail("grow", str(err).replace("checkpoint ", "--checkpoint ", 1))
    try:
        return _grow_and_write(args, config, out)
    finally:
        out.discard()  # after a failure or Ctrl-C the previous outputs stay as they were


def _grow_and_write(args, config, out) -> int:
    data = datasets.load(args.task, seed=0, **TASKS[args.task].data)
    start = TASKS[args.task].start if args.start is None else args.start
    if args.strategies is None:  # every strategy that can grow this network
        args.strategies = list(growth.comparison.applicable_runs(starting_network(data, start,
                                                                                  0)))
    print(
        f"Growing a tanh network on {args.task} ({data.task}, {len(data.X_train)} training and "
        f"{len(data.X_test)} test samples) from {start} hidden neurons to a budget of "
        f"{config.budget:g} {config.budget_kind}, by {', '.join(args.strategies)}; "
        f"seed{'s 0..' if args.seeds > 1 else ' '}{args.seeds - 1}.",
        flush=True,
    )
    progress = None if args.quiet else Progress(args.strategies, args.seeds, sys.stderr)
    make_net = functools.partial(starting_network, data, start)  # pickles, for --jobs
    try:
        with growth.process_pool(args.jobs) as executor:
            comparison = compare(
                data,
                make_net,
                config,
                args.strategies,
                range(args.seeds),
                progress,
                checkpoint=args.checkpoint,
                resume=args.resume,
                overwrite=args.overwrite,
                executor=executor,
            )
    except (ValueError, RuntimeError) as err:  # a checkpoint of another run, or one in use
        if progress is not None:
            progress.close()
        fail("grow", str(err))
    if progress is not None:
        progress.close()
    table = report(comparison, data.task)
    print("\n" + table + "\n")
    page = story.build_page(comparison, data, config, make_net,
                            _settings(args, data, start, config))
    page.section("The tables as printed").preformatted(table)
    return out.save(lambda folder: write_outputs(comparison, data.task, table, folder, page))


def _settings(args, data, start, config) -> list[list[str]]:
    """The run's settings as (name, value) rows, for the report: the task and the starting
    network, then every field of the GrowthConfig the strategies ran with."""
    rows = [["task", f"{data.name} ({len(data.X_train)} training, {len(data.X_test)} test)"],
            ["starting network", f"{start} hidden tanh neurons"],
            ["strategies", ", ".join(args.strategies)]]
    skipped = ("strategy", "seed")  # set per run
    return rows + [[f"GrowthConfig.{k}", repr(v)] for k, v in config.to_dict().items()
                   if k not in skipped]


# ---- parsing and dispatch ---------------------------------------------------------------




class DeprecatedAlias(argparse.Action):
    """An old option spelling: stores into the new option's dest and says so on stderr."""

    def __call__(self, parser, namespace, values, option_string=None):
        new = "--" + self.dest.replace("_", "-")
        print(f"{parser.prog}: {option_string} is deprecated, use {new}", file=sys.stderr)
        setattr(namespace, self.dest, values)
