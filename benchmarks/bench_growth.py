"""Benchmark growth strategies: splitting against every baseline, at matched sizes.

For each task (a data set and a small tanh MLP to start from) every strategy --
splitting, random_split, net2net, new_neurons, gradmax -- grows the network with
one and the same :class:`minisplit.GrowthConfig` (optimiser, steps per round,
plateau rule, selection rule, neuron budget, seed); "fixed" trains the final
architecture of the same seed's splitting run from scratch for that run's total
steps (``ms.compare``). The script prints, per task:

1. the final size and train/test metrics per strategy: median [min, max] over seeds
   (loss; accuracy and loss for classification);
2. each metric at every intermediate size (the end of the round trained at that size),
   median over seeds, and the methods splitting is worse than at that size;
3. the wall time split between training and growing ("split": splitting indices,
   selection and surgery -- the baselines compute the same indices to know how many
   neurons to add), and the ratio of one round's split time to one training epoch
   (one pass over the training data) measured on the same round's training.

Every GrowthConfig field the investigation varies is an option (``--eps``,
``--steps-per-round``, ``--plateau-window``, ...); each applies to every strategy
alike. Results go to a JSON file (``--out``); ``--summarize`` reads several such
files (configurations) and tabulates splitting's standing in each. ``--jobs`` runs
tasks in parallel processes. No assertion is made on anything: this script
reports. See benchmarks/README.md and docs/results.md.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from bench_core import blas_summary  # same directory: the BLAS report of every benchmark

import minisplit as ms

STRATEGIES = (*ms.baselines.STRATEGIES, "fixed")
BASELINES = STRATEGIES[1:]


@dataclass(frozen=True)
class Task:
    """A data set (``ms.datasets.load(name, **data)``), a starting MLP and a neuron budget."""

    name: str
    sizes: tuple
    budget: int
    data: dict = field(default_factory=dict)


#: The full setting; ``--quick`` uses QUICK_TASKS.
TASKS = {
    "rbf_teacher": Task("rbf_teacher", (1, 2, 1), 16, {"n": 200}),
    "teacher_student": Task("teacher_student", (4, 2, 1), 16, {"n": 500, "teacher_width": 8}),
    "spirals": Task("spirals", (2, 3, 3), 24, {"n": 450, "n_classes": 3}),
    "digits": Task("digits", (64, 4, 10), 24),
}
QUICK_TASKS = {
    "rbf_teacher": Task("rbf_teacher", (1, 2, 1), 5, {"n": 80}),
    "teacher_student": Task("teacher_student", (4, 2, 1), 5, {"n": 120, "teacher_width": 8}),
    "spirals": Task("spirals", (2, 2, 3), 5, {"n": 120, "n_classes": 3}),
    "digits": Task("digits", (64, 2, 10), 5, {"test_fraction": 0.75}),
}
QUICK_STEPS = 100


# ---- running --------------------------------------------------------------------------------


def make_config(args, task) -> ms.GrowthConfig:
    """The GrowthConfig every strategy of ``task`` runs with (strategy and seed set by compare)."""
    eps = args.eps if args.eps == "line_search" else float(args.eps)
    steps = args.steps_per_round or (QUICK_STEPS if args.quick else 1000)
    return ms.GrowthConfig(
        selection=args.selection, fraction=args.fraction, k=args.k, threshold=args.threshold,
        eps=eps, budget=task.budget, max_rounds=args.max_rounds, steps_per_round=steps,
        plateau_window=args.plateau_window, plateau_rel_tol=args.plateau_rel_tol,
        optimizer=args.optimizer, lr=args.lr, batch_size=args.batch_size,
        surgery_state=args.surgery_state, method=args.method, signed=args.signed,
    )


def run_task(task, config, seeds, data_seed):
    """``(dataset, Comparison, (wall s, CPU s))``: every strategy over ``seeds`` on ``task``."""
    data = ms.datasets.load(task.name, seed=data_seed, **task.data)
    loss = "cross_entropy" if data.task == "classification" else "mse"
    sizes = task.sizes[:-1] + ((data.n_classes,) if data.n_classes else task.sizes[-1:])

    def make_net(seed):
        return ms.mlp(sizes, activation="tanh", loss=loss, seed=seed)

    def progress(event):
        if event["event"] == "stop":
            print(f"  {task.name} {event['strategy']:<13s} seed {event['seed']}: "
                  f"{event['round']} rounds, {event['reason']}", file=sys.stderr, flush=True)

    wall, cpu = time.perf_counter(), time.process_time()
    result = ms.compare(data, make_net, config, STRATEGIES, seeds, progress)
    return data, result, (time.perf_counter() - wall, time.process_time() - cpu)


# ---- statistics -----------------------------------------------------------------------------


def columns(data) -> list[str]:
    """The history fields compared: losses, and accuracies first for classification."""
    if data.task == "classification":
        return ["train_accuracy", "test_accuracy", "train_loss", "test_loss"]
    return ["train_loss", "test_loss"]


def _larger_is_better(column) -> bool:
    return column.endswith("accuracy")


def spread(values) -> dict:
    """Median, min and max of a list of numbers."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _fmt(value, column) -> str:
    return f"{value:.3f}" if _larger_is_better(column) else f"{value:.2e}"


def _cell(values, column) -> str:
    s = spread(values)
    low, high = _fmt(s["min"], column), _fmt(s["max"], column)
    return f"{_fmt(s['median'], column)} [{low}, {high}]"


def _at_least_as_good(a, b, column) -> bool:
    return a >= b if _larger_is_better(column) else a <= b


def final_table(data, result) -> tuple[list[str], dict]:
    """Lines of the final-size table, and its numbers (median, min, max per strategy)."""
    names = columns(data)
    lines = [
        f"| strategy | neurons | {' | '.join(c.replace('_', ' ') for c in names)} | steps | stop |",
        "|---|---|" + "---|" * len(names) + "---|---|",
    ]
    numbers = {}
    for strategy, histories in result.histories.items():
        last = [h.rounds[-1] for h in histories]
        sizes = [r["n_neurons"] for r in last]
        steps = [h.total_steps for h in histories]
        stops = sorted({h.meta["stop_reason"] for h in histories})
        values = {c: [r[c] for r in last] for c in names}
        numbers[strategy] = {
            "n_neurons": spread(sizes), "total_steps": spread(steps), "stop_reasons": stops,
            **{c: spread(v) for c, v in values.items()},
        }
        size = f"{statistics.median(sizes):g}"
        if min(sizes) != max(sizes):
            size += f" [{min(sizes)}, {max(sizes)}]"
        cells = " | ".join(_cell(values[c], c) for c in names)
        lines.append(f"| {strategy} | {size} | {cells} | {statistics.median(steps):g} | "
                     f"{', '.join(stops)} |")
    return lines, numbers


def _by_size(history) -> dict:
    """``{n_neurons: round record}``: the end of the round trained at each size."""
    return {r["n_neurons"]: r for r in history.rounds}


def size_table(result, column) -> tuple[list[str], dict]:
    """Lines of the matched-size table of one history field, and splitting's standing.

    A row is a size (neurons) a splitting run, or every run of some method, trained
    at (GradMax's seed-dependent sizes would add many rows); a cell is the median, over the
    seeds whose run trained at exactly that size, of ``column`` at the end of that
    round (``(k/n)``: only k of n seeds did). "fixed" sits at its size (splitting's
    final one). The last column lists the methods whose median is better than
    splitting's, counted only where both methods have every seed at that size and
    not at the starting size (round 0 is the same run for every method).
    """
    names = list(result.histories)
    n_seeds = len(result.seeds)
    by_size = {s: [_by_size(h) for h in result.histories[s]] for s in names}
    sizes = sorted(
        {n for run in by_size["splitting"] for n in run}
        | {n for runs in by_size.values() for n in set.intersection(*(set(r) for r in runs))}
    )
    lines = [f"| neurons | {' | '.join(names)} | splitting worse than |",
             "|---|" + "---|" * (len(names) + 1)]
    standing = {"compared": {b: [] for b in names[1:]}, "behind": {b: [] for b in names[1:]}}
    start = {h.rounds[0]["n_neurons"] for h in result.histories[names[0]]}
    for n in sizes:
        cells, medians = [], {}
        for strategy in names:
            values = [run[n][column] for run in by_size[strategy] if n in run]
            if not values:
                cells.append("-")
                continue
            mark = "" if len(values) == n_seeds else f" ({len(values)}/{n_seeds})"
            cells.append(_fmt(statistics.median(values), column) + mark)
            if len(values) == n_seeds:
                medians[strategy] = statistics.median(values)
        behind = []
        if "splitting" in medians and n not in start:
            for b in (b for b in names[1:] if b in medians):
                standing["compared"][b].append(n)
                if not _at_least_as_good(medians["splitting"], medians[b], column):
                    behind.append(b)
                    standing["behind"][b].append(n)
        lines.append(f"| {n} | {' | '.join(cells)} | {', '.join(behind) or '-'} |")
    return lines, standing


def epoch_steps(n_train, batch_size) -> int:
    """Optimiser steps in one pass over the training data."""
    return 1 if batch_size is None else math.ceil(n_train / batch_size)


def timing_table(data, result, batch_size) -> tuple[list[str], dict]:
    """Lines of the wall-time table and its numbers.

    One epoch's time at round r is measured on round r's own training:
    ``time_train / steps * steps_per_epoch`` (the same network size as the split
    just before it); the ratio is ``time_split / epoch time`` of every round with a
    surgery, pooled over seeds.
    """
    per_epoch = epoch_steps(data.X_train.shape[0], batch_size)
    lines = [
        "| strategy | train s | split s | split share | split/round / epoch: median [max] |",
        "|---|---|---|---|---|",
    ]
    numbers = {}
    for strategy, histories in result.histories.items():
        train = [sum(h.column("time_train")) for h in histories]
        grow_ = [sum(h.column("time_split")) for h in histories]
        ratios = [
            r["time_split"] / (r["time_train"] / r["steps"] * per_epoch)
            for h in histories for r in h.rounds if r["surgery"] is not None and r["steps"] > 0
        ]
        share = sum(grow_) / (sum(train) + sum(grow_))
        numbers[strategy] = {
            "time_train": spread(train), "time_split": spread(grow_), "split_share": share,
            "split_per_epoch": spread(ratios) if ratios else None,
        }
        ratio = f"{statistics.median(ratios):.2f} [{max(ratios):.2f}]" if ratios else "-"
        lines.append(
            f"| {strategy} | {statistics.median(train):.2f} | {statistics.median(grow_):.3f} | "
            f"{100 * share:.1f}% | {ratio} |"
        )
    return lines, numbers


def _slim(history) -> dict:
    """A history without the per-step losses and spectra (they make the JSON huge)."""
    rounds = [{k: v for k, v in r.items() if k not in ("losses", "spectrum")}
              for r in history.rounds]
    return {"meta": history.meta, "rounds": rounds}


def report(task, config, data, result, seconds, batch_size) -> dict:
    """Print the tables of one task; return everything as a JSON-able dict."""
    print(f"\n## {task.name}: {data.X_train.shape[0]} train / {data.X_test.shape[0]} test, "
          f"start {list(task.sizes[:-1]) + [data.n_classes or task.sizes[-1]]} tanh, "
          f"budget {task.budget} neurons, {len(result.seeds)} seeds, {seconds[0]:.0f} s wall, "
          f"{seconds[1]:.0f} s CPU\n")
    print("Final size and metrics, median [min, max] over seeds:\n")
    final_lines, final = final_table(data, result)
    print("\n".join(final_lines))
    sizes = {}
    for column in columns(data)[:3]:  # the test loss of a classifier adds little
        print(f"\n{column.replace('_', ' ').capitalize()} at each size (end of the round "
              "trained at that size), median over seeds:\n")
        lines, sizes[column] = size_table(result, column)
        print("\n".join(lines))
    print(f"\nWall time per run (median over seeds), split time per round / one epoch "
          f"({epoch_steps(data.X_train.shape[0], batch_size)} step(s)):\n")
    time_lines, times = timing_table(data, result, batch_size)
    print("\n".join(time_lines))
    return {
        "task": task.name, "sizes": list(task.sizes), "budget": task.budget, "data": task.data,
        "config": config.to_dict(), "wall_seconds": seconds[0], "cpu_seconds": seconds[1],
        "seeds": list(result.seeds), "final": final, "by_size": sizes, "times": times,
        "histories": {s: [_slim(h) for h in hs] for s, hs in result.histories.items()},
    }


def _comparison(entry) -> ms.Comparison:
    """The Comparison of one task of a JSON file written by this script (no networks)."""
    histories = {s: [ms.History(h["meta"], h["rounds"]) for h in hs]
                 for s, hs in entry["histories"].items()}
    return ms.Comparison(entry["task"], entry["seeds"], histories)


def summarize(paths) -> None:
    """Splitting's standing in several JSON files (configurations), per task and in total.

    A cell ``k/n`` counts the matched sizes (every seed of both methods there, the
    starting size excluded) at which splitting's median is at least as good as the
    method's. The totals add the tasks up, for the training loss (what growth
    minimises) and for the test metric (loss, or accuracy for classification).
    """
    runs = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            runs.append(json.load(f))
    print(f"| configuration | task | metric | {' | '.join(BASELINES)} |")
    print("|---|---|---|" + "---|" * len(BASELINES))
    totals = {}
    for run in runs:
        for entry in run["tasks"]:
            result = _comparison(entry)
            classifier = entry["histories"]["splitting"][0]["rounds"][-1]["train_accuracy"]
            task_columns = ["train_loss", "test_loss"]
            if classifier is not None:
                task_columns = ["train_accuracy", "test_accuracy", "train_loss"]
            for column in task_columns:
                _, standing = size_table(result, column)
                counts = [(len(standing["compared"][b]) - len(standing["behind"][b]),
                           len(standing["compared"][b])) for b in BASELINES]
                cells = " | ".join(f"{k}/{n}" for k, n in counts)
                print(f"| {run['label']} | {entry['task']} | {column} | {cells} |")
                part = "train loss" if column == "train_loss" else column.split("_")[0]
                if part == "train":
                    continue  # the training accuracy of a classifier: the loss is counted
                key = (run["label"], "test metric" if part == "test" else part)
                old = totals.get(key, [(0, 0)] * len(BASELINES))
                totals[key] = [(a + k, b + n) for (a, b), (k, n) in zip(old, counts)]
    print(f"\n| configuration | over all tasks | {' | '.join(BASELINES)} | all |")
    print("|---|---|" + "---|" * (len(BASELINES) + 1))
    for (label, part), counts in sorted(totals.items(), key=lambda item: item[0][1]):
        cells = " | ".join(f"{k}/{n}" for k, n in counts)
        k, n = sum(c[0] for c in counts), sum(c[1] for c in counts)
        print(f"| {label} | {part} | {cells} | {k}/{n} |")


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
    add("--tasks", default=",".join(TASKS), help=f"comma separated, from {','.join(TASKS)}")
    add("--seeds", type=int, default=5, help="number of seeds 0..n-1 (default 5)")
    add("--quick", action="store_true", help="a much smaller setting, for a smoke run")
    add("--out", default="bench_growth.json", help="JSON output path (default bench_growth.json)")
    add("--data-seed", type=int, default=0, help="seed of the data sets and splits (default 0)")
    add("--label", default="default", help="name of this configuration in the JSON")
    add("--summarize", nargs="+", metavar="JSON",
        help="only print splitting's standing in these output files, one row per file and task")
    add("--jobs", type=int, default=1, help="tasks run in parallel processes (default 1)")
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
    g("--optimizer", default="adam", choices=("adam", "sgd"))
    g("--lr", type=float, default=0.01, help="default 0.01")
    g("--batch-size", type=_optional_int, default=None, help='int or "none": full batch')
    g("--surgery-state", default="inherit", choices=("inherit", "reset"))
    g("--signed", action="store_true",
      help="signed splits when every neuron is splitting-stable (default: stop there)")
    g("--method", default="dense", choices=("dense", "matrix_free"),
      help="how splitting indices are computed (default dense eigh)")
    args = parser.parse_args(argv)
    tasks = QUICK_TASKS if args.quick else TASKS
    args.tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = [t for t in args.tasks if t not in tasks]
    if unknown or not args.tasks:
        parser.error(f"--tasks must name some of {','.join(tasks)}, got {args.tasks}")
    if args.seeds < 1 or args.jobs < 1:
        parser.error(f"--seeds and --jobs must be >= 1, got {args.seeds} and {args.jobs}")
    args.task_list = [tasks[t] for t in args.tasks]
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.summarize:
        summarize(args.summarize)
        return
    print(f"# bench_growth ({'quick' if args.quick else 'full'}), label {args.label!r}, "
          f"{time.strftime('%Y-%m-%d %H:%M')}")
    print("command: python benchmarks/bench_growth.py " + " ".join(sys.argv[1:] if argv is None
                                                                    else argv))
    for line in blas_summary():
        print(line)
    out = {"label": args.label, "quick": args.quick, "jobs": args.jobs, "tasks": []}
    start, cpu = time.perf_counter(), 0.0
    configs = [make_config(args, task) for task in args.task_list]
    work = functools.partial(run_task, seeds=list(range(args.seeds)), data_seed=args.data_seed)
    pool = ProcessPoolExecutor(args.jobs) if args.jobs > 1 else None
    outcomes = (pool.map if pool else map)(work, args.task_list, configs)
    for task, config, (data, result, seconds) in zip(args.task_list, configs, outcomes):
        cpu += seconds[1]
        out["tasks"].append(report(task, config, data, result, seconds, args.batch_size))
    if pool is not None:
        pool.shutdown()
    wall = time.perf_counter() - start
    print("\n## Where splitting's median is worse (sizes every seed of both methods reached)\n")
    print("| task | metric | comparisons | splitting worse than (method: at neurons) |")
    print("|---|---|---|---|")
    for entry in out["tasks"]:
        for column, s in entry["by_size"].items():
            compared = sum(len(v) for v in s["compared"].values())
            behind = "; ".join(f"{b}: {r}" for b, r in s["behind"].items() if r) or "none"
            print(f"| {entry['task']} | {column} | {compared} | {behind} |")
    print(f"\ntotal {wall:.0f} s wall, {cpu:.0f} s CPU in the runs ({args.jobs} job(s); "
          "on a shared machine wall > CPU / jobs)")
    out["wall_seconds"], out["cpu_seconds"] = wall, cpu
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1, default=float)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
