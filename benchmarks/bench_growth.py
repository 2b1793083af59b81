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
   median over seeds (``ms.Comparison.by_size``), and the methods splitting is worse
   than at that size;
3. the wall time split between training and growing ("split": splitting indices,
   selection and surgery -- the baselines compute the same indices to know how many
   neurons to add), and the ratio of one round's split time to one training epoch
   (one pass over the training data) measured on the same round's training.

Every GrowthConfig field the investigation varies is an option (``--eps``,
``--steps-per-round``, ``--plateau-window``, ...); each applies to every strategy
alike. A run writes everything it measured and how to a JSON file (``--out``).
Two more modes read such files (configurations) and run nothing:
``--summarize JSON...`` prints splitting's standing in each, and
``--report OUT.md JSON...`` writes the results page (docs/results.md) from them
alone. ``--jobs`` runs tasks in parallel processes. No assertion is made on
anything: this script reports. See benchmarks/README.md and docs/results.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import os
import shlex
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from bench_core import blas_summary  # same directory: the BLAS report of every benchmark

import minisplit as ms

#: Every run of a comparison, in table order: the strategies, then the reference "fixed".
RUN_NAMES = ms.growth.RUN_NAMES
#: ``format`` and ``version`` fields of the JSON file a run writes.
FORMAT, VERSION = "minisplit.bench_growth", 2
#: Environment variables a command line is shown with when they were set.
THREAD_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
#: The hand-written lab note the results page links to (same folder).
LAB_NOTE = "investigation-2026-11.md"


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


# ---- records: one task of one configuration, and one configuration --------------------------


@dataclass(frozen=True)
class TaskResult:
    """One task of one configuration: its setting, its cost and every run's history.

    ``data`` are the keyword arguments of ``ms.datasets.load``; ``kind`` is
    "regression" or "classification"; ``start`` the layer sizes of the starting MLP;
    ``config`` the ``GrowthConfig.to_dict()`` every strategy ran with (strategy and
    seed replaced per run); ``wall_seconds`` and ``cpu_seconds`` of the whole task.
    """

    task: str
    data: dict
    kind: str
    n_train: int
    n_test: int
    start: list
    budget: int
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
    """The GrowthConfig every strategy of ``task`` runs with (strategy and seed set by compare)."""
    eps = args.eps if args.eps == "line_search" else float(args.eps)
    steps = args.steps_per_round or (QUICK_STEPS if args.quick else 1000)
    return ms.GrowthConfig(
        selection=args.selection, fraction=args.fraction, k=args.k, threshold=args.threshold,
        eps=eps, budget=task.budget, max_rounds=args.max_rounds, steps_per_round=steps,
        plateau_window=args.plateau_window, plateau_rel_tol=args.plateau_rel_tol,
        optimizer=args.optimizer, lr=args.lr, batch_size=args.batch_size,
        surgery_state=args.surgery_state, solver=args.solver, signed=args.signed,
    )


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


def run_task(task, config, seeds, data_seed) -> TaskResult:
    """Every strategy of :data:`RUN_NAMES` over ``seeds`` on ``task``."""
    data = ms.datasets.load(task.name, seed=data_seed, **task.data)
    loss = "cross_entropy" if data.task == "classification" else "mse"
    sizes = task.sizes[:-1] + ((data.n_classes,) if data.n_classes else task.sizes[-1:])

    def make_net(seed):
        return ms.mlp(sizes, activation="tanh", loss=loss, seed=seed)

    wall, cpu = time.perf_counter(), time.process_time()
    result = ms.compare(data, make_net, config, RUN_NAMES, seeds, _progress(task.name))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    comparison = ms.Comparison(result.dataset, result.seeds, result.histories)  # no networks
    return TaskResult(task.name, dict(task.data), data.task, data.X_train.shape[0],
                      data.X_test.shape[0], list(sizes), task.budget, config.to_dict(), wall,
                      cpu, comparison)


# ---- tables of one task ---------------------------------------------------------------------


def metrics(result) -> list[str]:
    """The history fields of the final table: losses, and accuracies first for a classifier."""
    if result.classifier:
        return ["train_accuracy", "test_accuracy", "train_loss", "test_loss"]
    return ["train_loss", "test_loss"]


def compared_metrics(result) -> list[str]:
    """The fields of the per-size tables and of the standing (a classifier's test loss adds
    little to its test accuracy)."""
    return metrics(result)[:3]


def test_metric(result) -> str:
    """The test metric of the standing: test accuracy of a classifier, test loss otherwise."""
    return "test_accuracy" if result.classifier else "test_loss"


def _larger_is_better(metric) -> bool:
    return metric.endswith("accuracy")


def _at_least_as_good(a, b, metric) -> bool:
    return a >= b if _larger_is_better(metric) else a <= b


def _fmt(value, metric) -> str:
    return f"{value:.3f}" if _larger_is_better(metric) else f"{value:.2e}"


def _spread(values, metric) -> str:
    """``median [min, max]`` of a list of numbers."""
    low, high = _fmt(min(values), metric), _fmt(max(values), metric)
    return f"{_fmt(statistics.median(values), metric)} [{low}, {high}]"


def _table(header, rows) -> list[str]:
    """Markdown table lines."""
    return [f"| {' | '.join(header)} |", "|" + "---|" * len(header),
            *(f"| {' | '.join(str(c) for c in row)} |" for row in rows)]


def final_rows(comparison) -> dict:
    """``{strategy: [row per seed]}``: ``Comparison.rows()``, the end of every run."""
    out = {name: [] for name in comparison.histories}
    for row in comparison.rows():
        out[row["strategy"]].append(row)
    return out


def final_median(comparison, metric) -> dict:
    """``{strategy: median over seeds of metric at the end of the run}``."""
    return {s: statistics.median(r[metric] for r in rows)
            for s, rows in final_rows(comparison).items()}


def final_table(result) -> list[str]:
    """The final size and metrics per strategy, median [min, max] over seeds."""
    names, rows = metrics(result), []
    for strategy, finals in final_rows(result.comparison).items():
        sizes = [r["n_neurons"] for r in finals]
        size = f"{statistics.median(sizes):g}"
        if min(sizes) != max(sizes):
            size += f" [{min(sizes)}, {max(sizes)}]"
        stops = ", ".join(sorted({r["stop_reason"] for r in finals}))
        steps = f"{statistics.median(r['total_steps'] for r in finals):g}"
        rows.append([strategy, size, *(_spread([r[m] for r in finals], m) for m in names),
                     steps, stops])
    return _table(["strategy", "neurons", *(m.replace("_", " ") for m in names), "steps",
                   "stop"], rows)


def standing(comparison, metric) -> dict:
    """``{method: (matched sizes, sizes where splitting's median is worse)}``.

    A size is matched for splitting and a method where every seed of both trained
    there (``SizeCell.every_seed`` of ``Comparison.by_size``), except the starting
    size (round 0 is the same run for every method).
    """
    table = comparison.by_size(metric)
    start = {h.rounds[0].n_neurons for h in comparison.histories["splitting"]}
    mine = {n: c for n, c in table["splitting"].items() if c.every_seed and n not in start}
    out = {}
    for method in (m for m in table if m != "splitting"):
        cells = table[method]
        matched = [n for n in mine if n in cells and cells[n].every_seed]
        worse = [n for n in matched
                 if not _at_least_as_good(mine[n].median, cells[n].median, metric)]
        out[method] = (matched, worse)
    return out


def _size_cell(cell, metric) -> str:
    if cell is None:
        return "-"
    mark = "" if cell.every_seed else f" ({cell.count}/{cell.n_seeds})"
    return _fmt(cell.median, metric) + mark


def size_table(comparison, metric) -> list[str]:
    """``metric`` at every size (``Comparison.by_size``), and whom splitting is worse than.

    A row is a size a splitting run, or every run of some method, trained at
    (GradMax's seed-dependent sizes would add many rows); a cell is the median over
    the seeds whose run trained at exactly that size (``(k/n)``: only k of n seeds
    did). "fixed" sits at its size (splitting's final one). The last column lists the
    methods whose median is better than splitting's at a matched size (:func:`standing`).
    """
    table, worse = comparison.by_size(metric), standing(comparison, metric)
    every = {n for cells in table.values() for n, cell in cells.items() if cell.every_seed}
    rows = []
    for n in sorted(set(table["splitting"]) | every):
        behind = [m for m, (_, sizes) in worse.items() if n in sizes]
        rows.append([n, *(_size_cell(table[s].get(n), metric) for s in table),
                     ", ".join(behind) or "-"])
    return _table(["neurons", *table, "splitting worse than"], rows)


def epoch_steps(result) -> int:
    """Optimiser steps in one pass over the training data."""
    batch = result.config["batch_size"]
    return 1 if batch is None else math.ceil(result.n_train / batch)


def split_per_epoch(result, strategy) -> list[float]:
    """A round's split time over one epoch of the same round's training, every surgery.

    One epoch's time at round r is ``time_train / steps * steps_per_epoch`` of round
    r itself (the same network size as the split just before it).
    """
    per_epoch = epoch_steps(result)
    return [r.time_split / (r.time_train / r.steps * per_epoch)
            for h in result.comparison.histories[strategy] for r in h.rounds
            if r.surgery is not None and r.steps > 0]


def timing_table(result) -> list[str]:
    """Training and growing seconds per run, the growing share, and split/round over an epoch."""
    rows = []
    for strategy, finals in final_rows(result.comparison).items():
        train = [r["time_train"] for r in finals]
        split = [r["time_split"] for r in finals]
        share = sum(split) / (sum(train) + sum(split))
        ratios = split_per_epoch(result, strategy)
        ratio = f"{statistics.median(ratios):.2f} [{max(ratios):.2f}]" if ratios else "-"
        rows.append([strategy, f"{statistics.median(train):.2f}",
                     f"{statistics.median(split):.3f}", f"{100 * share:.1f}%", ratio])
    return _table(["strategy", "train s", "split s", "split share",
                   "split/round / epoch: median [max]"], rows)


def task_heading(result) -> str:
    return (f"{result.task}: {result.n_train} train / {result.n_test} test, start "
            f"{result.start} tanh, budget {result.budget} neurons, "
            f"{len(result.comparison.seeds)} seeds, {result.wall_seconds:.0f} s wall, "
            f"{result.cpu_seconds:.0f} s CPU")


def task_section(result) -> list[str]:
    """Every table of one task under a heading: final, per size, timing."""
    lines = [f"### {task_heading(result)}", "",
             "Final size and metrics, median [min, max] over seeds:", "", *final_table(result)]
    for metric in compared_metrics(result):
        lines += ["", f"{metric.replace('_', ' ').capitalize()} at each size (end of the round "
                  "trained at that size), median over seeds:", "",
                  *size_table(result.comparison, metric)]
    return lines + ["", "Wall time per run (median over seeds), split time per round / one "
                    f"epoch ({epoch_steps(result)} step(s)):", "", *timing_table(result)]


def worse_table(run) -> list[str]:
    """Per task and metric: the matched sizes compared, and where splitting's median is worse."""
    rows = []
    for result in run.tasks:
        for metric in compared_metrics(result):
            found = standing(result.comparison, metric)
            compared = sum(len(matched) for matched, _ in found.values())
            behind = "; ".join(f"{m}: {w}" for m, (_, w) in found.items() if w) or "none"
            rows.append([result.task, metric, compared, behind])
    return _table(["task", "metric", "comparisons",
                   "splitting worse than (method: at neurons)"], rows)


# ---- splitting's standing over configurations -----------------------------------------------


def baselines(runs) -> tuple:
    """What splitting is compared with in these files: the names run, in table order."""
    present = {name for run in runs for t in run.tasks for name in t.comparison.histories}
    known = [name for name in RUN_NAMES if name in present]
    return tuple(n for n in known + sorted(present - set(known)) if n != "splitting")


def standing_counts(runs) -> list[tuple]:
    """``(label, task, metric, {method: (k, n)})`` for every configuration, task and
    compared metric: splitting's median is at least as good at k of n matched sizes."""
    out = []
    for run in runs:
        for result in run.tasks:
            for metric in compared_metrics(result):
                found = standing(result.comparison, metric)
                counts = {m: (len(matched) - len(worse), len(matched))
                          for m, (matched, worse) in found.items()}
                out.append((run.label, result.task, metric, counts))
    return out


def _part(metric) -> str | None:
    """Which total a metric adds to: "train loss", "test metric", or None (train accuracy)."""
    return {"train_loss": "train loss", "test_loss": "test metric",
            "test_accuracy": "test metric"}.get(metric)


def standing_totals(counts) -> dict:
    """``{(label, part): {method: (k, n)}}``: :func:`standing_counts` added over tasks."""
    totals = {}
    for label, _, metric, row in counts:
        key = (label, _part(metric))
        if key[1] is not None:
            total = totals.setdefault(key, {})
            for method, (k, n) in row.items():
                a, b = total.get(method, (0, 0))
                total[method] = (a + k, b + n)
    return totals


def _count_cells(row, names) -> list[str]:
    return [f"{row[m][0]}/{row[m][1]}" if m in row else "-" for m in names]


def standing_tables(runs) -> tuple[list[str], list[str]]:
    """The per-task and the total standing tables (cells ``k/n``) of several configurations.

    Totals add the tasks up, for the training loss (what growth minimises) and for
    the test metric (loss, or accuracy for classification); test metric rows first.
    """
    counts, names = standing_counts(runs), baselines(runs)
    per_task = _table(["configuration", "task", "metric", *names],
                      [[label, task, metric, *_count_cells(row, names)]
                       for label, task, metric, row in counts])
    totals = sorted(standing_totals(counts).items(), key=lambda item: item[0][1])
    total = _table(["configuration", "over all tasks", *names, "all"],
                   [[label, part, *_count_cells(row, names),
                     f"{sum(k for k, _ in row.values())}/{sum(n for _, n in row.values())}"]
                    for (label, part), row in totals])
    return per_task, total


def summarize(paths) -> None:
    """Print splitting's standing in several JSON files (configurations), per task and in total."""
    per_task, total = standing_tables([Run.load(p) for p in paths])
    print("\n".join(per_task) + "\n\n" + "\n".join(total))


# ---- the verdict, in words computed from the numbers ----------------------------------------


def _names(items) -> str:
    items = [str(i) for i in items]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _of_tasks(names, total) -> str:
    """"k of n tasks (a, b)", "none of the n tasks", "all n tasks (a, ...)"."""
    if not names:
        return f"none of the {total} tasks"
    if len(names) == total:
        head = "both tasks" if total == 2 else f"all {total} tasks"
    else:
        head = f"{len(names)} of {total} tasks"
    return f"{head} ({', '.join(names)})"


def _majorities(counts) -> str:
    """Against whom splitting is at least as good at more than, exactly, or under half the sizes."""
    groups = {"more than half": [], "exactly half": [], "fewer than half": []}
    for name, (k, n) in counts.items():
        if n:
            key = "more than half" if 2 * k > n else "exactly half" if 2 * k == n else (
                "fewer than half")
            groups[key].append(f"`{name}`")
    return ", ".join(f"{key} against {_names(g)}" for key, g in groups.items() if g)


def _standing_bullet(run, totals, part, what) -> str:
    """How often splitting's median ``what`` is at least as good as each growing baseline's."""
    counts = {m: c for m, c in totals[(run.label, part)].items() if m in ms.growth.STRATEGIES}
    numbers = _names(f"{k}/{n} against `{b}`" for b, (k, n) in counts.items())
    return (f"- {what}, matched sizes at which splitting's median is at or below the "
            f"baseline's: {numbers} ({_majorities(counts)}).")


def _ahead_bullet(run) -> str:
    """Per task, the growing baselines ahead of splitting at most matched sizes."""
    found = []
    for _, task, metric, row in standing_counts([run]):
        if metric == "train_loss":
            ahead = [f"`{m}` ({n - k}/{n})" for m, (k, n) in row.items()
                     if m in ms.growth.STRATEGIES and 2 * (n - k) > n]
            found.append(f"{task}: {_names(ahead) if ahead else 'none'}")
    return ("- Per task, the growing baselines whose median training loss is below "
            f"splitting's at more than half of the matched sizes: {'; '.join(found)}.")


def _fixed_bullet(run) -> str:
    """At the final size: does `fixed` (the same architecture from scratch) do better?"""
    train, test = [], []
    for result in run.tasks:
        finals = final_median(result.comparison, "train_loss")
        if finals["fixed"] < finals["splitting"]:
            train.append(result.task)
        metric = test_metric(result)
        finals = final_median(result.comparison, metric)
        if not _at_least_as_good(finals["splitting"], finals["fixed"], metric):
            test.append(result.task)
    total = len(run.tasks)
    return (f"- At the final size, `fixed` (splitting's final architecture trained from "
            f"scratch as long) has a lower median training loss than splitting on "
            f"{_of_tasks(train, total)}, and a better median test metric on "
            f"{_of_tasks(test, total)}.")


def _across_paragraph(runs) -> str:
    """Which configuration gives each (task, method) its lowest final training loss."""
    best = {run.label: [] for run in runs}
    tasks = {}
    for run in runs:
        for result in run.tasks:
            tasks.setdefault(result.task, []).append(
                (run.label, final_median(result.comparison, "train_loss")))
    pairs = 0
    for task, per_run in tasks.items():
        if len(per_run) < 2:
            continue
        for name in per_run[0][1]:
            label = min(per_run, key=lambda item: item[1][name])[0]
            best[label].append(f"{task} {name}")
            pairs += 1
    counts = [f"`{label}` for {len(found)}" + (f" ({', '.join(found)})" if 0 < len(found) <= 4
                                              else "")
              for label, found in best.items()]
    return ("Between the configurations: of the (task, method) pairs run in more than one, "
            f"{pairs} in all, the lowest final median training loss comes from {_names(counts)}.")


def verdict(runs) -> list[str]:
    """The summary paragraphs of the results page, every number and word from the data."""
    totals = standing_totals(standing_counts(runs))
    test = "Test metric (test loss of a regression, test accuracy of a classifier)"
    paragraphs = []
    for run in runs:
        paragraphs.append("\n".join([
            f"**`{run.label}`** (options: {_options_text(run)}), {len(run.tasks)} tasks, "
            f"{len(run.meta['seeds'])} seeds; counts added over the tasks:", "",
            _standing_bullet(run, totals, "train loss", "Training loss"),
            _standing_bullet(run, totals, "test metric", test),
            _ahead_bullet(run),
            *([_fixed_bullet(run)] if all("fixed" in t.comparison.histories for t in run.tasks)
              else [])]))
    if len(runs) > 1:
        paragraphs.append(_across_paragraph(runs))
    return paragraphs


# ---- the results page -----------------------------------------------------------------------

TITLE = "# Growth benchmark: splitting against its baselines"

INTRO = """\
`benchmarks/bench_growth.py` grows small tanh MLPs on a few tasks, from a small starting
network to a neuron budget, with splitting steepest descent and with the baselines below,
and compares them **at matched sizes**. Every method runs through `ms.compare` with one and
the same `GrowthConfig` (optimiser, learning rate, steps per round, plateau rule, selection
rule, budget); the baselines apply the same selection rule to *their own* network's
splitting indices to decide how many neurons to add, so they pass through the same sizes as
splitting, except GradMax, which adds at most rank(M) <= n_out neurons per round. A
configuration is one such set of settings, applied to every method alike; the students are
tanh MLPs so that every baseline applies (GradMax needs f(0) = 0 and f'(0) != 0).

The runs compared:

{runs}

A per-size table gives a metric at the end of the round trained at each size, as the median
over the seeds whose run trained at that size (`ms.Comparison.by_size`). Two methods are
compared only at sizes every seed of both trained at, and never at the starting size (round
0 is the same run for every method); "splitting worse than" lists the methods whose median
is strictly better there. `fixed` says what the final architecture alone can reach.

The timing tables split each run's wall time between training and growing ("split":
splitting indices, selection, surgery and the loss right after it; the baselines compute the
same indices to know how many neurons to add). **split/round / epoch** is a round's growing
time over one epoch of the same round's training (`time_train / steps x steps per epoch`;
full batch: one step), pooled over rounds and seeds. Timings depend on the machine and on
whatever else ran on it; CPU time is printed next to wall time so the load can be seen.
"""


def _options(argv) -> list[str]:
    """The growth options of a command line, without where it wrote and how many jobs."""
    out, skip = [], False
    for word in argv:
        flag = word.split("=")[0]
        if skip:
            skip = False
        elif flag in ("--out", "--jobs", "--label"):
            skip = "=" not in word
        else:
            out.append(word)
    return out


def _options_text(run) -> str:
    options = " ".join(_options(run.meta["argv"]))
    return f"`{options}`" if options else "none, the defaults"


def _intro(runs) -> str:
    """The static intro, with the runs of these files described by their records."""
    summaries = {**{s.name: s.summary for s in ms.growth.STRATEGIES.values()},
                 **{r.name: r.summary for r in ms.growth.REFERENCES.values()}}
    names = "\n".join(f"- `{name}`: {summaries.get(name, '')}"
                      for name in ("splitting", *baselines(runs)))
    return INTRO.format(runs=names)


def machine_section(runs) -> list[str]:
    """Commands, dates, run times, load and the numerical environment, as recorded."""
    lines = ["## Machine and commands", ""]
    for run in runs:
        m = run.meta
        load = " -> ".join(f"{a[0]:.1f}" for a in m["load_average"])
        source = f" (git {m['git']})" if m.get("git") else ""
        lines += [f"- `{run.label}`, {m['date']}, minisplit {m['minisplit']}{source}: "
                  f"{m['wall_seconds']:.0f} s wall, {m['cpu_seconds']:.0f} s CPU in the runs "
                  f"({m['jobs']} job(s); 1-minute load average {load} from start to end):", "",
                  "  ```", f"  {m['command']}", "  ```", ""]
    environments = dict.fromkeys(tuple(run.meta["environment"]) for run in runs)
    for environment in environments:
        which = "every run" if len(environments) == 1 else ", ".join(
            f"`{r.label}`" for r in runs if tuple(r.meta["environment"]) == environment)
        shown = [line for line in environment if not line.startswith("note:")]
        lines += [f"Environment of {which} (`bench_core.blas_summary()`):", "", "```", *shown,
                  "```", ""]
    return lines


def _data_cell(result) -> str:
    args = ", ".join(f"{k}={v}" for k, v in result.data.items())
    return f"`{args}` ({result.kind})" if args else f"defaults ({result.kind})"


def _config_value(values) -> str:
    return values.pop() if len(values) == 1 else "per task"


def setting_section(runs) -> list[str]:
    """The tasks, and every configuration's settings, from the files."""
    seen, rows = set(), []
    for result in (t for run in runs for t in run.tasks):
        row = [f"`{result.task}`", _data_cell(result), f"{result.n_train} / {result.n_test}",
               str(result.start), result.budget]
        if str(row) not in seen:
            seen.add(str(row))
            rows.append(row)
    lines = ["## Setting", "",
             *_table(["task", "data (`ms.datasets.load`)", "train / test", "start (tanh MLP)",
                      "budget (hidden neurons)"], rows), ""]
    fields = [f for f in runs[0].tasks[0].config if f not in ("strategy", "seed", "budget")]
    config_rows = [["seeds", *(", ".join(map(str, r.meta["seeds"])) for r in runs)],
                   ["data seed", *(r.meta["data_seed"] for r in runs)]]
    for name in fields:
        cells = [_config_value({json.dumps(t.config.get(name)) for t in r.tasks}) for r in runs]
        config_rows.append([f"**{name}**" if len(set(cells)) > 1 else name, *cells])
    return lines + ["The configurations (`GrowthConfig.to_dict()` as recorded; bold: the "
                    "fields in which they differ):", "",
                    *_table(["setting", *(f"`{r.label}`" for r in runs)], config_rows), ""]


def results_section(run) -> list[str]:
    """Every table of one configuration, then where splitting is worse and its split cost."""
    lines = [f"## Results: `{run.label}`", "", f"Options: {_options_text(run)}; "
             f"{len(run.meta['seeds'])} seeds; tables as printed by the run.", ""]
    for result in run.tasks:
        lines += task_section(result) + [""]
    ratios = []
    for result in run.tasks:
        r = split_per_epoch(result, "splitting")
        if r:
            ratios.append(f"{result.task} {statistics.median(r):.1f} [{max(r):.1f}]")
    return lines + [f"### `{run.label}`: where splitting's median is worse (sizes every seed "
                    "of both methods reached)", "", *worse_table(run), "",
                    "Splitting's growing step in epochs of training (split/round / epoch, "
                    f"median [max] over rounds and seeds): {'; '.join(ratios) or 'none'}.", ""]


def page(runs, paths, today) -> str:
    """The whole results page, from the runs alone."""
    files = ", ".join(f"`{p}`" for p in paths)
    per_task, total = standing_tables(runs)
    lines = [TITLE, "", f"Generated by `benchmarks/bench_growth.py --report` from {files} on "
             f"{today}; do not edit by hand.", "", _intro(runs),
             f"How the configurations were chosen, and what each setting did, is in a dated "
             f"lab note written by hand: [{LAB_NOTE}]({LAB_NOTE}).", "", "## Summary", ""]
    for paragraph in verdict(runs):
        lines += [paragraph, ""]
    lines += ["Splitting's standing: each cell counts the matched sizes at which splitting's "
              "median is at least as good as the method's (`k/n`), added over the tasks (per "
              "task in the last section):", "", *total, ""]
    lines += machine_section(runs) + setting_section(runs)
    for run in runs:
        lines += results_section(run)
    lines += ["## Splitting's standing per task", "",
              "`python benchmarks/bench_growth.py --summarize` of the same files:", "",
              *per_task]
    return "\n".join(lines) + "\n"


def write_report(out, paths) -> None:
    """Write the results page ``out`` from the JSON files ``paths``."""
    runs = [Run.load(p) for p in paths]
    _write_atomic(out, page(runs, paths, time.strftime("%Y-%m-%d", time.gmtime())))
    print(f"wrote {out}")


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
    """Run every task of ``args`` (``--jobs`` at a time) and print each task's tables."""
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
    configs = [make_config(args, task) for task in args.task_list]
    work = functools.partial(run_task, seeds=seeds, data_seed=args.data_seed)
    pool = ProcessPoolExecutor(args.jobs) if args.jobs > 1 else None
    tasks = []
    for result in (pool.map if pool else map)(work, args.task_list, configs):
        print("\n" + "\n".join(task_section(result)))
        tasks.append(result)
    if pool is not None:
        pool.shutdown()
    load.append(os.getloadavg())
    meta.update(wall_seconds=time.perf_counter() - start, load_average=load,
                cpu_seconds=sum(t.cpu_seconds for t in tasks))
    return Run(meta, tasks)


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.summarize or args.report:
        try:
            if args.summarize:
                summarize(args.files)
            else:
                write_report(args.report, args.files)
        except (OSError, ValueError) as err:
            sys.exit(f"bench_growth.py: error: {err}")
        return
    run = run_all(args, argv)
    print("\n### Where splitting's median is worse (sizes every seed of both methods reached)\n")
    print("\n".join(worse_table(run)))
    print(f"\ntotal {run.meta['wall_seconds']:.0f} s wall, {run.meta['cpu_seconds']:.0f} s CPU "
          f"in the runs ({args.jobs} job(s); on a shared machine wall > CPU / jobs)")
    run.save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
