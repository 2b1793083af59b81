"""``minisplit grow``, the main job: grow a network by splitting and compare with the baselines.

Grows a tanh network by splitting on a built-in data set and compares it with
the baselines through :func:`minisplit.compare`: a progress line on stderr,
tables of loss (and accuracy) against size on stdout, figures
(:mod:`minisplit.plots`), histories and the table in an output folder
(docs/cli.md).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from minisplit import GrowthConfig, Network, baselines, compare, datasets, mlp, plots
from minisplit.cli._args import eps_value, fail, positive_int
from minisplit.growth import BUDGET_KINDS, SELECTIONS


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
}
DEFAULT_TASK = "spirals"
#: The methods ``grow`` can compare, in table order ("fixed" needs "splitting").
METHODS = (*baselines.STRATEGIES, "fixed")
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
    """Reports each round of :func:`minisplit.compare` on one line, with a bar of finished runs.

    On a terminal the line is rewritten in place (``\\r``); into a file or a
    pipe every round gets its own line. "fixed" sends no events: it is announced
    when the last grown method of a seed stops, and counted done at the next event.
    """

    def __init__(self, methods, n_seeds, stream):
        self.total, self.done = len(methods) * n_seeds, 0
        self.last_grown = [m for m in methods if m != "fixed"][-1]
        self.fixed, self.fixed_pending = "fixed" in methods, False
        self.stream, self.tty, self.width = stream, stream.isatty(), 0
        self.steps = {}  # seed -> total steps of that seed's splitting run, for "fixed"

    def __call__(self, event) -> None:
        if self.fixed_pending:
            self.done, self.fixed_pending = self.done + 1, False
        seed = event["seed"]
        if event["event"] == "round":
            if event["strategy"] == "splitting":
                self.steps[seed] = event["total_steps"]
            self.show(
                f"{event['strategy']:<12} seed {seed}  round {event['round']:>2}  "
                f"neurons {event['n_neurons']:>3}  loss {event['loss']:.4g}"
            )
            return
        self.done += 1
        if self.fixed and event["strategy"] == self.last_grown:
            self.fixed_pending = True
            self.show(f"{'fixed':<12} seed {seed}  {self.steps[seed]} steps from scratch")

    def show(self, text) -> None:
        filled = round(20 * self.done / self.total)
        line = f"[{'#' * filled}{'.' * (20 - filled)}] {self.done}/{self.total}  {text}"
        if self.tty:
            self.stream.write("\r" + line.ljust(self.width))
            self.width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Count the last run done and end the line."""
        if self.fixed_pending:
            self.done, self.fixed_pending = self.done + 1, False
        self.show("done")
        if self.tty:
            self.stream.write("\n")


def size_table(comparison, metric) -> str:
    """``metric`` after each round, median over seeds: one row per size, one column per method.

    A size a seed's run never had does not count for that seed ("-": no seed had it).
    """
    values = {}  # (n_neurons, method) -> the metric of every seed's round at that size
    for method, runs in comparison.histories.items():
        for history in runs:
            for r in history.rounds:
                if r.get(metric) is not None:
                    values.setdefault((r["n_neurons"], method), []).append(r[metric])
    methods = list(comparison.histories)
    width = max(10, *(len(m) for m in methods))
    lines = [f"{'neurons':>7}  " + "  ".join(f"{m:>{width}}" for m in methods)]
    for size in sorted({size for size, _ in values}):
        cells = [
            f"{np.median(values[size, m]):>{width}.4g}" if (size, m) in values else "-".rjust(width)
            for m in methods
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


def write_outputs(comparison, task, table, out) -> list[Path]:
    """Figures, JSON and the table into ``out``; return the paths written.

    The training curve and the spectrum are those of the first method's first
    seed (splitting's, unless --methods leaves it out).
    """
    method, first = next((m, runs[0]) for m, runs in comparison.histories.items())
    title = f"{comparison.dataset}: {method}, seed {comparison.seeds[0]}"
    paths = {name: out / name for name in ("history.json", "comparison.json", "table.txt")}
    first.save(paths["history.json"])
    comparison.save(paths["comparison.json"])
    paths["table.txt"].write_text(table + "\n", encoding="utf-8")
    figures = {
        "training.png": lambda p: plots.plot_training(first, p, f"{title}: training loss"),
        "spectrum.png": lambda p: plots.plot_spectrum(first, p, f"{title}: splitting indices"),
        "comparison.png": lambda p: plots.plot_comparison(comparison, p, "test_loss"),
    }
    if task == "classification":
        figures["accuracy.png"] = lambda p: plots.plot_comparison(comparison, p, "test_accuracy")
    for name, draw in figures.items():
        paths[name] = out / name
        draw(paths[name])
    return list(paths.values())


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
        "--methods",
        type=_methods,
        default=list(METHODS),
        metavar="LIST",
        help=f"comma-separated methods to compare, from {', '.join(METHODS)} "
        "(default: all; fixed needs splitting)",
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
        choices=BUDGET_KINDS,
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
        choices=SELECTIONS,
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
    add("--quiet", action="store_true", help="no progress line on stderr")


def run(args) -> int:
    """Grow by splitting and by every baseline, print the tables, write the output folder."""
    try:
        config = grow_config(args)
    except ValueError as err:
        fail("grow", str(err))
    if "fixed" in args.methods and "splitting" not in args.methods:
        fail("grow", "--methods: fixed trains the splitting run's final network; add splitting")
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        fail("grow", f"--out: cannot make the folder {str(out)!r} ({err.strerror})")
    data = datasets.load(args.task, seed=0, **TASKS[args.task].data)
    start = TASKS[args.task].start if args.start is None else args.start
    print(
        f"Growing a tanh network on {args.task} ({data.task}, {len(data.X_train)} training and "
        f"{len(data.X_test)} test samples) from {start} hidden neurons to a budget of "
        f"{config.budget:g} {config.budget_kind}, by {', '.join(args.methods)}; "
        f"seed{'s 0..' if args.seeds > 1 else ' '}{args.seeds - 1}.",
        flush=True,
    )
    progress = None if args.quiet else Progress(args.methods, args.seeds, sys.stderr)
    comparison = compare(
        data,
        lambda seed: starting_network(data, start, seed),
        config,
        args.methods,
        range(args.seeds),
        progress,
    )
    if progress is not None:
        progress.close()
    table = report(comparison, data.task)
    print("\n" + table + "\n")
    paths = write_outputs(comparison, data.task, table, out)
    print(f"Wrote {', '.join(p.name for p in paths)} to {out.resolve()}{os.sep}")
    return 0


# ---- parsing and dispatch ---------------------------------------------------------------


def _methods(text) -> list[str]:
    names = [name.strip() for name in text.split(",")]
    unknown = [name for name in names if name not in METHODS]
    if unknown or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(
            f"must be distinct names from {','.join(METHODS)}, got {text!r}"
        )
    return names
