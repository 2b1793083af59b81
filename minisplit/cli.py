"""The command line: ``python -m minisplit [COMMAND] [OPTIONS]``.

Each command is one entry of :data:`COMMANDS`: a help line, a function that adds
the command's options to its parser, and a function that runs it and returns the
exit status. :func:`main` only parses and dispatches, so a new command is one new
entry. With no command (or only its options), :data:`DEFAULT_COMMAND` runs.

``grow``, the main job, grows a tanh network by splitting on a built-in data set
and compares it with the baselines through :func:`minisplit.compare`: a progress
line on stderr, tables of loss (and accuracy) against size on stdout, figures
(:mod:`minisplit.plots`), histories and the table in an output folder
(docs/cli.md).

``verify`` builds one small network per layer type and, for every activation and
loss, compares the hand-derived gradient, Hessian-vector product and dense
Hessian with central finite differences (:func:`minisplit.gradcheck.check_network`).
It exits with status 1 if any relative error exceeds
:data:`minisplit.gradcheck.TOLERANCE`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import minisplit
from minisplit import (
    ACTIVATIONS,
    LOSSES,
    RBF,
    AvgPool2d,
    Conv2d,
    Dense,
    Flatten,
    GrowthConfig,
    Network,
    baselines,
    compare,
    datasets,
    flatten,
    gradcheck,
    mlp,
    plots,
)
from minisplit.growth import BUDGET_KINDS, SELECTIONS

#: Samples in each verification problem.
N_SAMPLES = 4
#: Output width of the mse networks and number of classes of the cross-entropy ones.
N_OUT = {"mse": 2, "cross_entropy": 3}
#: Keys of :func:`gradcheck.check_network`'s result, with their column titles.
CHECKS = {
    "gradient": "gradient",
    "hvp": "hvp",
    "hessian_symmetry": "H symmetry",
    "hessian_vs_hvp": "H u vs hvp",
}


# ---- verify: one builder per layer type -----------------------------------------------
# A builder takes (activation, n_out, rng) and returns the layers and an input X.


def _dense_problem(activation, n_out, rng):
    """Dense -> Dense on inputs (N, 3)."""
    layers = [Dense(3, 4, activation=activation, seed=rng), Dense(4, n_out, "identity", seed=rng)]
    return layers, rng.uniform(-1.0, 1.0, size=(N_SAMPLES, 3))


def _conv_problem(activation, n_out, rng):
    """Conv2d -> AvgPool2d -> Flatten -> Dense on images (N, 2, 5, 5)."""
    layers = [
        Conv2d(2, 2, kernel_size=2, activation=activation, seed=rng),  # (N, 2, 4, 4)
        AvgPool2d(2),  # (N, 2, 2, 2)
        Flatten(),  # (N, 8)
        Dense(8, n_out, "identity", seed=rng),
    ]
    return layers, rng.uniform(-1.0, 1.0, size=(N_SAMPLES, 2, 5, 5))


def _rbf_problem(activation, n_out, rng):
    """RBF -> Dense on inputs (N, 2); the RBF layer has no activation."""
    layers = [RBF(2, 3, width=1.0, seed=rng), Dense(3, n_out, "identity", seed=rng)]
    return layers, rng.uniform(-1.0, 1.0, size=(N_SAMPLES, 2))


@dataclass(frozen=True)
class LayerType:
    """How to verify one layer type: its problem builder and its activations."""

    build: Callable
    activations: tuple[str, ...]


NO_ACTIVATION = "-"

#: The layer types ``verify`` covers, in table order.
LAYER_TYPES = {
    "Dense": LayerType(_dense_problem, tuple(ACTIVATIONS)),
    "Conv2d": LayerType(_conv_problem, tuple(ACTIVATIONS)),
    "RBF": LayerType(_rbf_problem, (NO_ACTIVATION,)),
}


def _targets(loss, rng):
    """Random targets for N_SAMPLES samples: (N, k) floats for mse, (N,) labels otherwise."""
    n_out = N_OUT[loss]
    if loss == "mse":
        return rng.normal(size=(N_SAMPLES, n_out))  # (N, k)
    return rng.integers(0, n_out, size=N_SAMPLES)  # (N,)


def verify_case(layer_type, activation, loss, seed=0, n_directions=4) -> dict:
    """Relative errors of one network's derivatives against finite differences.

    The network of ``layer_type`` gets random parameters (the initialisation
    plus N(0, 0.1^2) noise, so no bias sits at exactly zero), random inputs in
    [-1, 1] and random targets, all drawn from ``seed``.

    Returns
    -------
    dict
        ``gradcheck.check_network``'s result: ``{"gradient": e, "hvp": e,
        "hessian_symmetry": e, "hessian_vs_hvp": e}``.

    Examples
    --------
    >>> errors = verify_case("Dense", "tanh", "mse")
    >>> max(errors.values()) < gradcheck.TOLERANCE
    True
    """
    rng = np.random.default_rng(seed)
    layers, X = LAYER_TYPES[layer_type].build(activation, N_OUT[loss], rng)
    net = Network(layers, loss)
    net = net.with_params(flatten(net.params) + 0.1 * rng.standard_normal(net.n_params))
    y = _targets(loss, rng)
    return gradcheck.check_network(net, X, y, seed=rng, n_directions=n_directions)


def verify_table(seed=0, n_directions=4) -> list[dict]:
    """One row per layer type x activation x loss, with the errors of :func:`verify_case`."""
    rows = []
    for layer_type, spec in LAYER_TYPES.items():
        for activation in spec.activations:
            for loss in LOSSES:
                errors = verify_case(layer_type, activation, loss, seed, n_directions)
                names = {"layer": layer_type, "activation": activation, "loss": loss}
                rows.append({**names, **errors})
    return rows


def format_table(rows, tolerance) -> str:
    """The rows as aligned text, each error in scientific notation, then ok / FAIL."""
    header = f"{'layer':<7} {'activation':<10} {'loss':<13} " + " ".join(
        f"{title:>10}" for title in CHECKS.values()
    )
    lines = [header, "-" * (len(header) + 6)]
    for row in rows:
        errors = " ".join(f"{row[key]:>10.1e}" for key in CHECKS)
        status = "ok" if all(row[key] <= tolerance for key in CHECKS) else "FAIL"
        lines.append(
            f"{row['layer']:<7} {row['activation']:<10} {row['loss']:<13} {errors}  {status}"
        )
    return "\n".join(lines)


def _add_verify_arguments(parser):
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the random networks, data and directions (default: 0)",
    )
    parser.add_argument(
        "--directions",
        type=_positive_int,
        default=4,
        metavar="N",
        help="random directions per finite-difference check (default: 4)",
    )


def run_verify(args) -> int:
    """Print the verification table; 0 if every error is within tolerance, else 1."""
    tolerance = gradcheck.TOLERANCE
    rows = verify_table(args.seed, args.directions)
    print(
        "Relative error of each hand-derived derivative against central finite differences\n"
        f"(step {gradcheck.STEP:g}, {args.directions} random directions, tolerance {tolerance:g})."
    )
    print(format_table(rows, tolerance))
    n_failed = sum(any(row[key] > tolerance for key in CHECKS) for row in rows)
    if n_failed:
        print(f"FAILED: {n_failed} of {len(rows)} networks exceed the tolerance {tolerance:g}.")
        return 1
    print(f"All {len(rows)} networks within tolerance {tolerance:g}.")
    return 0


# ---- grow: the main job ------------------------------------------------------------------


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


def _add_grow_arguments(parser):
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
        type=_positive_int,
        default=3,
        metavar="N",
        help="run every method with seeds 0..N-1; tables show the median (default: 3)",
    )
    add(
        "--start",
        type=_positive_int,
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
        type=_positive_int,
        default=20,
        metavar="N",
        help="at most this many growth rounds (default: 20)",
    )
    add(
        "--steps",
        type=_positive_int,
        default=None,
        metavar="N",
        help="at most this many Adam steps per round; a round ends earlier when the loss "
        "plateaus (default: per task, 300 for all but digits)",
    )
    add("--lr", type=float, default=0.03, help="Adam learning rate (default: 0.03)")
    add(
        "--eps",
        type=_eps,
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
        type=_positive_int,
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


def run_grow(args) -> int:
    """Grow by splitting and by every baseline, print the tables, write the output folder."""
    try:
        config = grow_config(args)
    except ValueError as err:
        _fail("grow", str(err))
    if "fixed" in args.methods and "splitting" not in args.methods:
        _fail("grow", "--methods: fixed trains the splitting run's final network; add splitting")
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        _fail("grow", f"--out: cannot make the folder {str(out)!r} ({err.strerror})")
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


@dataclass(frozen=True)
class Command:
    """One subcommand: a help line, its options, and the function that runs it."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


#: Subcommands by name; ``main`` dispatches on this dict.
COMMANDS = {
    "grow": Command(
        help="grow a network by splitting on a built-in task, compare it with the baselines, "
        "print tables and write figures and JSON (the default command)",
        add_arguments=_add_grow_arguments,
        run=run_grow,
    ),
    "verify": Command(
        help="check every layer's gradient, Hessian-vector product and Hessian "
        "against finite differences",
        add_arguments=_add_verify_arguments,
        run=run_verify,
    ),
}
#: The command that runs when none is given (also with only its options).
DEFAULT_COMMAND = "grow"
#: Options of ``minisplit`` itself; any other leading option belongs to the default command.
TOP_LEVEL_OPTIONS = ("-h", "--help", "--version")


def _positive_int(text) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _methods(text) -> list[str]:
    names = [name.strip() for name in text.split(",")]
    unknown = [name for name in names if name not in METHODS]
    if unknown or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(
            f"must be distinct names from {','.join(METHODS)}, got {text!r}"
        )
    return names


def _eps(text):
    if text == "line_search":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a number or 'line_search', got {text!r}"
        ) from None


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (then exit status 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _fail(command, message):
    """Exit with status 2 and one line, as the parser does for a bad option."""
    _Parser(prog=f"minisplit {command}").error(message)


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``minisplit`` with one subparser per entry of :data:`COMMANDS`."""
    parser = _Parser(
        prog="minisplit",
        description="Splitting Steepest Descent in plain NumPy. "
        f"Without a command, runs '{DEFAULT_COMMAND}'.",
    )
    parser.add_argument("--version", action="version", version=minisplit.__version__)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, command in COMMANDS.items():
        sub = subparsers.add_parser(name, help=command.help, description=command.help)
        command.add_arguments(sub)
    return parser


def main(argv=None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the command, return its exit status.

    Examples
    --------
    >>> main(["verify", "--directions", "1"])  # doctest: +ELLIPSIS
    Relative error ...
    0
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in TOP_LEVEL_OPTIONS):
        argv = [DEFAULT_COMMAND, *argv]  # options without a command belong to the default
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command].run(args)
