"""Benchmark: small CNNs grown by splitting against L1-prune, Bn-prune and the width family.

For each image data set -- the shipped Fashion-MNIST subset (14 x 14) and the UCI digits
as images (8 x 8), or CIFAR-10 (3 x 32 x 32) when the user has it (``--cifar10 PATH``) --
:func:`minisplit.compare` grows :func:`minisplit.small_cnn` from a narrow seed (``--start``
channels per conv) to ``--budget`` conv channels in all by splitting, and trains the
references at the sizes splitting passed through (``ms.growth.REFERENCES``): "width" (the
starting architecture at uniform widths, from scratch, for splitting's total steps T),
"l1_prune" and "bn_prune" (a network ``WIDE_FACTOR`` times splitting's final width trained
T steps -- with the gamma penalty for Bn-prune -- pruned to each size, fine-tuned
``--steps``) and "fixed" (splitting's final architecture from scratch for T steps). Every
run uses one GrowthConfig: Adam, mini-batches, the same steps per round, full rounds
(no plateau rule). The script prints, per data set, test accuracy (median [min, max] over
seeds) at each size with its parameters and multiply-adds, and splitting's standing
(``Comparison.standing``); it writes everything to a JSON file (``--out``), from which
``cnn_report.py`` writes docs/cnn-results.md and its figures. No assertion is made on
anything: this script reports.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/bench_cnn.py --out cnn.json
    python benchmarks/bench_cnn.py --quick --out /tmp/cnn-quick.json      # smoke run, < 1 min
    python benchmarks/bench_cnn.py --cifar10 cifar-10-batches-bin --cifar10-train 5000
    python benchmarks/cnn_report.py cnn.json                    # docs/cnn-results.md
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

import cnn_report  # same directory: the file format, the tables and the results page
import numpy as np
from bench_core import blas_summary, cpu_seconds  # same directory: BLAS report, CPU time

import minisplit as ms

#: The runs compared; splitting first (the references follow it), then the ones it is
#: measured against.
STRATEGIES = ("splitting", "l1_prune", "bn_prune", "width", "fixed")
#: The growth strategies (and "scratch") ``--strategies`` may add to them.
EXTRA = ("random_split", "net2net", "new_neurons", "scratch")
#: The built-in data sets (``--tasks``).
DATASETS = ("fashion_mnist", "digits")
#: Environment variables a command line is shown with when they were set.
THREAD_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")


# ---- data -----------------------------------------------------------------------------------


def balanced_subset(data, n):
    """``data`` with its training part cut to ``n`` images, ``n // n_classes`` of each class
    (the first ones of each class in the data set's order, which ``load`` shuffled), in that
    order; the test part stays whole. ``n`` None or at least the training size: ``data``."""
    if n is None or n >= len(data.y_train):
        return data
    per_class = n // data.n_classes
    if per_class < 1:
        raise ValueError(f"a balanced subset needs at least one image per class "
                         f"({data.n_classes}), got {n}")
    keep = np.sort(np.concatenate([np.flatnonzero(data.y_train == c)[:per_class]
                                   for c in range(data.n_classes)]))  # (<= n,)
    return dataclasses.replace(data, X_train=data.X_train[keep], y_train=data.y_train[keep])


def load_task(name, args):
    """The data set of task ``name`` (a built-in one, or CIFAR-10 from ``--cifar10``)."""
    if name == "cifar10":
        return ms.datasets.load_cifar10(args.cifar10, n_train=args.cifar10_train,
                                        n_test=args.cifar10_test)
    data = ms.datasets.load(name, seed=args.data_seed, images=True)
    return balanced_subset(data, args.fashion_train if name == "fashion_mnist" else None)


# ---- running --------------------------------------------------------------------------------


def starting_network(n_classes, input_shape, widths, seed):
    """The narrow small CNN every run starts from (module level: ``--jobs`` pickles it)."""
    return ms.small_cnn(n_classes=n_classes, input_shape=input_shape, width=widths, seed=seed)


def make_config(args) -> ms.GrowthConfig:
    """The one GrowthConfig of every run: the fraction rule on the splitting indices, Adam on
    mini-batches, full rounds, the budget in conv channels (max_rounds only a backstop)."""
    return ms.GrowthConfig(selection="fraction", fraction=args.fraction, eps=args.eps,
                           budget_kind="neurons", budget=args.budget, max_rounds=args.budget,
                           steps_per_round=args.steps, plateau_window=None, optimizer="adam",
                           lr=args.lr, batch_size=args.batch_size)


def _progress(task):
    """One line per finished run on stderr, with its seconds."""
    def progress(event):
        if event["event"] == "stop":
            print(f"  {task} {event['strategy']:<12s} seed {event['seed']}: "
                  f"{event['seconds']:.0f} s", file=sys.stderr, flush=True)
    return progress


def run_task(name, args, config) -> dict:
    """Every run of ``args.strategies`` on task ``name``: its setting, cost and comparison."""
    data = load_task(name, args)
    make_net = functools.partial(starting_network, data.n_classes, data.X_train.shape[1:],
                                 tuple(args.start))
    wall, cpu = time.perf_counter(), cpu_seconds()
    with ms.growth.process_pool(args.jobs) as executor:
        comparison = ms.compare(data, make_net, config, args.strategies, range(args.seeds),
                                _progress(name), executor=executor)
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu  # after the pool has joined
    return {"task": name, "n_train": len(data.y_train), "n_test": len(data.y_test),
            "input_shape": list(data.X_train.shape[1:]), "n_classes": data.n_classes,
            "wall_seconds": wall, "cpu_seconds": cpu,
            "comparison": json.loads(comparison.to_json())}


# ---- command line ---------------------------------------------------------------------------


def _widths(text) -> list[int]:
    try:
        widths = [int(w) for w in text.split(",")]
    except ValueError:
        widths = []
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"must be comma-separated channel counts >= 1, one "
                                         f"per conv, got {text!r}")
    return widths


def _strategies(text) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in EXTRA]
    if unknown or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"must be distinct names from {','.join(EXTRA)}, got "
                                         f"{text!r}")
    return names


#: The full setting and the ``--quick`` one (option defaults). The full one was chosen from
#: the run time of one-seed probes (about 6 minutes a seed on one core), before the full run.
FULL = {"seeds": 3, "start": [4, 4], "budget": 24, "steps": 100, "fashion_train": 2000}
QUICK = {"seeds": 1, "start": [2, 2], "budget": 6, "steps": 10, "fashion_train": 300}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--tasks", default=",".join(DATASETS),
        help=f"comma separated, from {','.join(DATASETS)} (default both)")
    add("--cifar10", metavar="PATH", default=None,
        help="also run on CIFAR-10 from this cifar-10-batches-bin folder (3 x 32 x 32; about "
        "10x the multiply-adds per image of Fashion-MNIST's 14 x 14, so hours on two cores); "
        "with --tasks '' alone")
    add("--cifar10-train", type=int, default=5000, metavar="N",
        help="CIFAR-10 training images used, the first N (default 5000)")
    add("--cifar10-test", type=int, default=2000, metavar="N",
        help="CIFAR-10 test images used, the first N (default 2000)")
    add("--quick", action="store_true",
        help=f"a tiny setting, for a smoke run (defaults {QUICK} instead of {FULL})")
    add("--seeds", type=int, default=None, help=f"seeds 0..n-1 (default {FULL['seeds']})")
    add("--start", type=_widths, default=None, metavar="W1,W2",
        help=f"channels of each conv of the starting network (default {FULL['start']})")
    add("--budget", type=int, default=None,
        help=f"conv channels in all to grow to (default {FULL['budget']})")
    add("--steps", type=int, default=None,
        help=f"Adam steps per round and per fine-tuning (default {FULL['steps']})")
    add("--fashion-train", type=int, default=None, metavar="N",
        help="a class-balanced subset of N Fashion-MNIST training images; 6000 for all of them "
        f"(default {FULL['fashion_train']})")
    add("--batch-size", type=int, default=64, help="default 64")
    add("--lr", type=float, default=0.01, help="Adam's learning rate (default 0.01)")
    add("--eps", type=float, default=0.1, help="split step (default 0.1)")
    add("--fraction", type=float, default=0.3,
        help="share of the channels split per round (default 0.3)")
    add("--strategies", type=_strategies, default=[], metavar="LIST",
        help=f"more runs, from {','.join(EXTRA)} (default none)")
    add("--data-seed", type=int, default=0, help="seed of the data sets' order (default 0)")
    add("--jobs", type=int, default=1,
        help="worker processes for the independent runs (bit-identical to 1; default 1)")
    add("--out", default="bench_cnn.json", help="JSON output path (default bench_cnn.json)")
    args = parser.parse_args(argv)
    defaults = QUICK if args.quick else FULL
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = [t for t in args.tasks if t not in DATASETS]
    if unknown:
        parser.error(f"--tasks must name some of {','.join(DATASETS)}, got {args.tasks}")
    if args.cifar10 is not None:
        args.tasks.append("cifar10")
    if not args.tasks:
        parser.error("nothing to run: --tasks is empty and no --cifar10")
    if args.seeds < 1 or args.jobs < 1:
        parser.error(f"--seeds and --jobs must be >= 1, got {args.seeds} and {args.jobs}")
    if args.budget <= sum(args.start):
        parser.error(f"--budget must exceed the starting channels ({sum(args.start)}), got "
                     f"{args.budget}")
    args.strategies = [*STRATEGIES[:1], *(s for s in args.strategies if s != "scratch"),
                       *STRATEGIES[1:], *(s for s in args.strategies if s == "scratch")]
    try:
        args.config = make_config(args)
    except (TypeError, ValueError) as err:
        parser.error(f"these settings are not a valid GrowthConfig: {err}")
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
    return " ".join([*env, "python benchmarks/bench_cnn.py", shlex.join(argv)]).strip()


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    start, load = time.perf_counter(), [os.getloadavg()[0]]
    doc = {"format": cnn_report.FORMAT, "version": cnn_report.VERSION, "quick": args.quick,
           "command": _command(argv),
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "environment": blas_summary(), "minisplit": ms.__version__, "git": _source_version(),
           "settings": {"seeds": args.seeds, "start": args.start, "budget": args.budget,
                        "steps": args.steps, "batch_size": args.batch_size,
                        "fashion_train": args.fashion_train, "jobs": args.jobs,
                        "data_seed": args.data_seed, "strategies": args.strategies,
                        "wide_factor": ms.growth.comparison.WIDE_FACTOR,
                        "slimming_l1": ms.growth.comparison.SLIMMING_L1},
           "config": args.config.to_dict(), "tasks": []}
    print(f"# bench_cnn ({'quick' if args.quick else 'full'}), {doc['date']}\n"
          f"command: {doc['command']}\n" + "\n".join(doc["environment"]), flush=True)
    for name in args.tasks:
        task = run_task(name, args, args.config)
        doc["tasks"].append(task)
        comparison = cnn_report.comparison_of(task)
        print(f"\n## {name}: {task['n_train']} train / {task['n_test']} test, "
              f"{task['wall_seconds']:.0f} s wall, {task['cpu_seconds']:.0f} s CPU\n", flush=True)
        print("\n".join([*cnn_report.size_table(comparison), "",
                         *cnn_report.verdict_table(comparison)]), flush=True)
        cnn_report.write_atomic(args.out, json.dumps(doc))  # every finished task is kept
    load.append(os.getloadavg()[0])
    doc.update(wall_seconds=time.perf_counter() - start, load=load,
               cpu_seconds=sum(t["cpu_seconds"] for t in doc["tasks"]))
    cnn_report.write_atomic(args.out, json.dumps(doc))
    print(f"\ntotal {doc['wall_seconds']:.0f} s wall, {doc['cpu_seconds']:.0f} s CPU; "
          f"wrote {args.out}")


if __name__ == "__main__":
    main()
