"""Benchmark growth strategies: splitting against every baseline, at matched sizes.

For each task (a data set, a student network to start from and a neuron budget) every
strategy -- splitting and its baselines, ``ms.growth.STRATEGIES`` -- grows the network
with one and the same :class:`minisplit.GrowthConfig` (optimiser, steps per round,
plateau rule, selection rule, budget, seed), and the references train networks of the
same sizes from scratch (``ms.growth.REFERENCES``: "fixed", the final architecture of the
same seed's splitting run for that run's total steps; "scratch", every size splitting
passed through for the steps it had spent by then). A task may set some fields itself in
every configuration (``Task.overrides``: the paper's toy task grows one RBF neuron at a
time, every round to a stationary point) and runs only the strategies that can grow its
student (``ms.compare(strategies=None)``; GradMax needs a Dense layer read by a Dense layer,
the prototype strategies a layer whose neurons are points of its input space).

Every GrowthConfig field the investigation varies is an option (``--eps``,
``--steps-per-round``, ``--optimizer lbfgs --grad-tol``, ...); each applies to every
strategy alike. A run prints each task's tables as it finishes and writes everything it
measured and how to a JSON file (``--out``). Two more modes read such files
(configurations) and run nothing: ``--summarize JSON...`` prints splitting's standing in
each, and ``--report OUT.md JSON...`` writes the results page (docs/results.md) from them
alone. The tables and the page are computed in ``growth_report.py``; this file runs, and
reads and writes the files. ``--jobs N`` runs each task's (strategy, seed) runs on N
processes (``ms.compare(executor=...)``), bit-identical to one. No assertion is
made on anything: this script reports. See benchmarks/README.md and docs/results.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import growth_report  # same directory: the tables and the results page
import numpy as np
from bench_core import blas_summary, cpu_seconds  # same directory: BLAS report, CPU time

import minisplit as ms

#: ``format`` and ``version`` fields of the JSON file a run writes (version 3 added the
#: tasks' ``dataset``, ``student``, ``overrides`` and ``excluded``, and the "scratch" runs).
FORMAT, VERSION = "minisplit.bench_growth", 3
#: Environment variables a command line is shown with when they were set.
THREAD_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")


# ---- the tasks: a data set, a student network, a budget -------------------------------------


@dataclass(frozen=True)
class Student:
    """A kind of starting network (one row of :data:`STUDENTS`).

    ``make(task, sizes, loss, seed) -> Network`` with ``sizes`` the task's layer sizes,
    the output size taken from the data.
    """

    name: str
    make: Callable


def _tanh_mlp(task, sizes, loss, seed):
    return ms.mlp(sizes, activation="tanh", loss=loss, seed=seed)


def _rbf_network(task, sizes, loss, seed):
    """The paper's toy student: RBF neurons of the teacher's width, read by a linear output."""
    rng = np.random.default_rng(seed)
    n_in, n_neurons, n_out = sizes
    return ms.Network([ms.RBF(n_in, n_neurons, width=task.data["width"], seed=rng),
                       ms.Dense(n_neurons, n_out, "identity", seed=rng)], loss)


STUDENTS = {s.name: s for s in (Student("tanh MLP", _tanh_mlp),
                                Student("RBF network", _rbf_network))}


@dataclass(frozen=True)
class Task:
    """A data set (``ms.datasets.load(dataset, **data)``), a student and a neuron budget.

    ``sizes`` are the starting network's layer sizes (the last one is replaced by the
    number of classes of a classification); ``overrides`` are GrowthConfig fields the task
    sets in every configuration, over the command line's.
    """

    name: str
    dataset: str
    sizes: tuple
    budget: int
    data: dict = field(default_factory=dict)
    student: str = "tanh MLP"
    overrides: dict = field(default_factory=dict)


#: The paper's toy setting: one neuron split per round, every round to a stationary point.
TOY_OVERRIDES = {"selection": "k", "k": 1, "optimizer": "lbfgs",
                 "optimizer_options": {"grad_tol": 1e-5}, "steps_per_round": 1000,
                 "plateau_window": None, "batch_size": None}
TOY_DATA = {"n_centers": 4, "width": 0.5}

#: The full setting; ``--quick`` uses QUICK_TASKS.
TASKS = {t.name: t for t in (
    Task("rbf_teacher", "rbf_teacher", (1, 2, 1), 16, {"n": 200}),
    Task("teacher_student", "teacher_student", (4, 2, 1), 16, {"n": 500, "teacher_width": 8}),
    Task("spirals", "spirals", (2, 3, 3), 24, {"n": 450, "n_classes": 3}),
    Task("digits", "digits", (64, 4, 10), 24),
    Task("rbf_toy", "rbf_teacher", (1, 1, 1), 8, {"n": 200, **TOY_DATA}, "RBF network",
         TOY_OVERRIDES),
)}
QUICK_TASKS = {t.name: t for t in (
    Task("rbf_teacher", "rbf_teacher", (1, 2, 1), 5, {"n": 80}),
    Task("teacher_student", "teacher_student", (4, 2, 1), 5, {"n": 120, "teacher_width": 8}),
    Task("spirals", "spirals", (2, 2, 3), 5, {"n": 120, "n_classes": 3}),
    Task("digits", "digits", (64, 2, 10), 5, {"test_fraction": 0.75}),
    Task("rbf_toy", "rbf_teacher", (1, 1, 1), 4, {"n": 80, **TOY_DATA}, "RBF network",
         TOY_OVERRIDES),
)}
QUICK_STEPS = 100


# ---- records: one task of one configuration, and one configuration --------------------------


@dataclass(frozen=True)
class TaskResult:
    """One task of one configuration: its setting, its cost and every run's history.

    ``dataset`` and ``data`` are the name and keyword arguments of ``ms.datasets.load``;
    ``kind`` is "regression" or "classification"; ``student`` a name of
    :data:`STUDENTS`, ``start`` the starting network's layer sizes; ``overrides`` the
    fields the task set itself; ``excluded`` ``{strategy: why}`` the strategies that
    cannot grow the student (not run); ``config`` the ``GrowthConfig.to_dict()`` every
    strategy ran with (strategy and seed replaced per run); ``wall_seconds`` and
    ``cpu_seconds`` of the whole task.
    """

    task: str
    dataset: str
    data: dict
    kind: str
    student: str
    n_train: int
    n_test: int
    start: list
    budget: int
    overrides: dict
    excluded: dict
    config: dict
    wall_seconds: float
    cpu_seconds: float
    comparison: ms.Comparison

    @property
    def classifier(self) -> bool:
        return self.kind == "classification"

    def to_dict(self) -> dict:
        """The JSON object: the fields, the seeds and slim histories (no per-step losses)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        comparison = out.pop("comparison")
        out["seeds"] = list(comparison.seeds)
        out["histories"] = {s: [_slim(h) for h in hs] for s, hs in comparison.histories.items()}
        return out

    @classmethod
    def from_dict(cls, doc) -> TaskResult:
        """Rebuild from :meth:`to_dict`'s output."""
        doc = dict(doc)
        seeds, histories = doc.pop("seeds"), doc.pop("histories")
        histories = {s: [ms.History.from_dict(h) for h in hs] for s, hs in histories.items()}
        return cls(**doc, comparison=ms.Comparison(doc["task"], seeds, histories))


def _slim(history) -> dict:
    """``history.to_dict()`` without per-step losses and spectra (they make the JSON huge).

    The keys stay (``losses`` [], ``spectrum`` None), so ``ms.History.from_dict`` reads it.
    """
    doc = history.to_dict()
    doc["rounds"] = [{**r, "losses": [], "spectrum": None} for r in doc["rounds"]]
    return doc


@dataclass(frozen=True)
class Run:
    """One configuration: how, where and when it ran (``meta``, JSON), and its tasks.

    ``meta`` holds ``label``, ``quick``, ``argv``, ``command``, ``date``,
    ``environment`` (``bench_core.blas_summary()`` lines), ``load_average``
    (start, end), ``minisplit`` (version), ``git`` (``git describe --dirty`` of the
    minisplit checkout, or None), ``jobs``, ``seeds``, ``data_seed``,
    ``wall_seconds`` and ``cpu_seconds``.
    """

    meta: dict
    tasks: list

    @property
    def label(self) -> str:
        return self.meta["label"]

    def save(self, path) -> None:
        """Write the JSON file (atomically: a temporary file, then ``os.replace``)."""
        doc = {"format": FORMAT, "version": VERSION, **self.meta,
               "tasks": [t.to_dict() for t in self.tasks]}
        _write_atomic(path, json.dumps(doc, indent=1, default=_json_number))

    @classmethod
    def load(cls, path) -> Run:
        """Read a file written by :meth:`save`; ValueError for anything else."""
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        if not isinstance(doc, dict) or (doc.get("format"), doc.get("version")) != (
                FORMAT, VERSION):
            raise ValueError(f"{path!r} is not a bench_growth file of version {VERSION} "
                             "(written by benchmarks/bench_growth.py --out)")
        meta = {k: v for k, v in doc.items() if k not in ("format", "version", "tasks")}
        return cls(meta, [TaskResult.from_dict(t) for t in doc["tasks"]])


def _json_number(value):
    """NumPy scalars as Python numbers (``json.dump``'s ``default``)."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _write_atomic(path, text) -> None:
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(temporary, path)


# ---- running --------------------------------------------------------------------------------


def make_config(args, task) -> ms.GrowthConfig:
    """The GrowthConfig every strategy of ``task`` runs with (strategy and seed set by compare):
    the command line's settings, then the task's overrides."""
    eps = args.eps if args.eps == "line_search" else float(args.eps)
    steps = args.steps_per_round or (QUICK_STEPS if args.quick else 1000)
    options = {} if args.grad_tol is None else {"grad_tol": args.grad_tol}
    settings = dict(
        selection=args.selection, fraction=args.fraction, k=args.k, threshold=args.threshold,
        eps=eps, budget=task.budget, max_rounds=args.max_rounds, steps_per_round=steps,
        plateau_window=args.plateau_window, plateau_rel_tol=args.plateau_rel_tol,
        optimizer=args.optimizer, lr=args.lr, optimizer_options=options,
        batch_size=args.batch_size, early_steps=args.early_steps,
        surgery_state=args.surgery_state, solver=args.solver, signed=args.signed,
    )
    return ms.GrowthConfig(**{**settings, **task.overrides})


def refusal(net, name) -> str:
    """Why strategy ``name`` cannot grow ``net``: its ``requires``'s message for the first
    growable layer it refuses (the choice itself is ``ms.compare``'s, ``strategies=None``)."""
    for layer in ms.growth.growable_layers(net):
        try:
            ms.growth.STRATEGIES[name].requires(net, layer)
        except ValueError as err:
            return str(err)
    return "not run"


def _progress(task_name):
    """A progress callback printing one line per finished run to stderr."""
    def progress(event):
        name = f"  {task_name} {event['strategy']:<13s} seed {event['seed']}:"
        if event["event"] == "reference":
            print(f"{name} {event['text']}", file=sys.stderr, flush=True)
        elif event["event"] == "stop" and event["strategy"] not in ms.growth.REFERENCES:
            print(f"{name} {event['round']} rounds, {event['reason']}", file=sys.stderr,
                  flush=True)
    return progress


def run_task(task, config, seeds, data_seed, jobs=1) -> TaskResult:
    """Every run of ``ms.growth.RUN_NAMES`` the task's student allows, over ``seeds``; with
    ``jobs`` > 1 its (strategy, seed) runs go to a pool of that many processes
    (``ms.growth.process_pool``), the results identical to the serial ones."""
    data = ms.datasets.load(task.dataset, seed=data_seed, **task.data)
    loss = "cross_entropy" if data.task == "classification" else "mse"
    sizes = task.sizes[:-1] + ((data.n_classes,) if data.n_classes else task.sizes[-1:])
    # a partial of a module-level function, so that the pool can send it to its workers
    make_net = functools.partial(STUDENTS[task.student].make, task, sizes, loss)

    wall, cpu = time.perf_counter(), cpu_seconds()
    with ms.growth.process_pool(jobs) as executor:
        # strategies=None: every run whose requirements the starting network meets
        result = ms.compare(data, make_net, config, None, seeds, _progress(task.name),
                            executor=executor)
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    comparison = ms.Comparison(result.dataset, result.seeds, result.histories)  # no networks
    excluded = {name: refusal(make_net(seeds[0]), name) for name in ms.growth.STRATEGIES
                if name not in comparison.histories}
    return TaskResult(task.name, task.dataset, dict(task.data), data.task, task.student,
                      data.X_train.shape[0], data.X_test.shape[0], list(sizes), task.budget,
                      dict(task.overrides), excluded, config.to_dict(), wall, cpu, comparison)


# ---- command line ---------------------------------------------------------------------------


def _eps(text):
    if text == "line_search":
        return text
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f'eps must be > 0 or "line_search", got {text}')
    return text


def _optional_int(text):
    return None if text.lower() == "none" else int(text)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("files", nargs="*", metavar="JSON", help="files written by --out, for the two modes "
        "that read them (--summarize, --report)")
    add("--tasks", default=",".join(TASKS), help=f"comma separated, from {','.join(TASKS)}")
    add("--seeds", type=int, default=5, help="number of seeds 0..n-1 (default 5)")
    add("--quick", action="store_true", help="a much smaller setting, for a smoke run")
    add("--out", default="bench_growth.json", help="JSON output path (default bench_growth.json)")
    add("--data-seed", type=int, default=0, help="seed of the data sets and splits (default 0)")
    add("--label", default="default", help="name of this configuration in the JSON")
    add("--summarize", action="store_true",
        help="run nothing: print splitting's standing in the JSON files, one row per file and task")
    add("--report", metavar="OUT.md",
        help="run nothing: write the results page (e.g. docs/results.md) from the JSON files")
    add("--jobs", type=int, default=1,
        help="run each task's (strategy, seed) runs in this many processes, with results "
        "identical to --jobs 1 (default 1)")
    group = parser.add_argument_group("growth settings, applied to every strategy alike")
    g = group.add_argument
    g("--eps", type=_eps, default="0.1", help='split step or "line_search" (default 0.1)')
    g("--selection", default="fraction", choices=("fraction", "k", "threshold"))
    g("--fraction", type=float, default=0.3, help="for --selection fraction (default 0.3)")
    g("--k", type=int, default=1, help="for --selection k (default 1)")
    g("--threshold", type=float, default=0.0, help="for --selection threshold (default 0)")
    g("--steps-per-round", type=int, default=None, help=f"default 1000 ({QUICK_STEPS} quick)")
    g("--max-rounds", type=int, default=20, help="most surgeries (default 20)")
    g("--plateau-window", type=_optional_int, default=50, help='int or "none" (default 50)')
    g("--plateau-rel-tol", type=float, default=1e-3, help="default 1e-3")
    g("--optimizer", default="adam", choices=("adam", "sgd", "lbfgs"),
      help="lbfgs: full batch, every round to --grad-tol or --steps-per-round iterations; it "
      "ignores --lr and the plateau rule (default adam)")
    g("--lr", type=float, default=0.01, help="default 0.01")
    g("--grad-tol", type=float, default=None,
      help="for --optimizer lbfgs: a round stops at this gradient norm (default the optimiser's)")
    g("--early-steps", type=int, default=10,
      help="the loss is also recorded this many updates after each surgery (default 10)")
    g("--batch-size", type=_optional_int, default=None, help='int or "none": full batch')
    g("--surgery-state", default="inherit", choices=("inherit", "reset"))
    g("--signed", action="store_true",
      help="signed splits when every neuron is splitting-stable (default: stop there)")
    g("--solver", default="dense", choices=("dense", "matrix_free"),
      help="how splitting indices are computed (default dense eigh)")
    args = parser.parse_args(argv)
    if args.summarize and args.report:
        parser.error("--summarize and --report are two modes: give one")
    if (args.summarize or args.report) and not args.files:
        parser.error("--summarize and --report need JSON files written by --out")
    if args.files and not (args.summarize or args.report):
        parser.error(f"JSON files {args.files} are only read with --summarize or --report")
    tasks = QUICK_TASKS if args.quick else TASKS
    args.tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = [t for t in args.tasks if t not in tasks]
    if unknown or not args.tasks:
        parser.error(f"--tasks must name some of {','.join(tasks)}, got {args.tasks}")
    if args.seeds < 1 or args.jobs < 1:
        parser.error(f"--seeds and --jobs must be >= 1, got {args.seeds} and {args.jobs}")
    args.task_list = [tasks[t] for t in args.tasks]
    try:
        args.configs = [make_config(args, task) for task in args.task_list]
    except (TypeError, ValueError) as err:
        parser.error(f"these growth settings are not a valid GrowthConfig: {err}")
    return args


def _source_version() -> str | None:
    """``git describe --always --dirty`` of the checkout minisplit is imported from, or None."""
    folder = os.path.dirname(os.path.dirname(os.path.abspath(ms.__file__)))
    try:
        done = subprocess.run(["git", "-C", folder, "describe", "--always", "--dirty"],
                              capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def _command(argv) -> str:
    """The command line as typed, with the thread variables that were set."""
    env = [f"{n}={os.environ[n]}" for n in THREAD_VARIABLES if n in os.environ]
    return " ".join([*env, "python benchmarks/bench_growth.py", shlex.join(argv)]).strip()


def run_all(args, argv) -> Run:
    """Run every task of ``args``, one after the other, and print each task's tables."""
    start, load = time.perf_counter(), [os.getloadavg()]
    seeds = list(range(args.seeds))
    meta = {"label": args.label, "quick": args.quick, "argv": argv, "command": _command(argv),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "environment": blas_summary(), "minisplit": ms.__version__,
            "git": _source_version(), "jobs": args.jobs,
            "seeds": seeds, "data_seed": args.data_seed}
    print(f"# bench_growth ({'quick' if args.quick else 'full'}), label {args.label!r}, "
          f"{meta['date']}\ncommand: {meta['command']}")
    print("\n".join(meta["environment"]))
    tasks = []
    for task, config in zip(args.task_list, args.configs):
        result = run_task(task, config, seeds, args.data_seed, args.jobs)
        print("\n" + "\n".join(growth_report.task_section(result)), flush=True)
        tasks.append(result)
    load.append(os.getloadavg())
    meta.update(wall_seconds=time.perf_counter() - start, load_average=load,
                cpu_seconds=sum(t.cpu_seconds for t in tasks))
    return Run(meta, tasks)


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.summarize or args.report:
        try:
            runs = [Run.load(p) for p in args.files]
            if args.summarize:
                print(growth_report.summary_text(runs))
            else:
                today = time.strftime("%Y-%m-%d", time.gmtime())
                _write_atomic(args.report, growth_report.page(runs, args.files, today))
                print(f"wrote {args.report}")
        except (OSError, ValueError) as err:
            sys.exit(f"bench_growth.py: error: {err}")
        return
    run = run_all(args, argv)
    print("\n### Where splitting's median is worse (matched sizes)\n")
    print("\n".join(growth_report.worse_table(run)))
    print(f"\ntotal {run.meta['wall_seconds']:.0f} s wall, {run.meta['cpu_seconds']:.0f} s CPU "
          f"in the runs ({args.jobs} job(s); on a shared machine wall > CPU / jobs)")
    run.save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
