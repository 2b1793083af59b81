"""Benchmark: keyword spotting with a DS-CNN grown by splitting, at matched sizes.

Every strategy grows the same narrow DS-CNN (:func:`minisplit.dscnn`, Hello Edge's
architecture) on the shipped spoken keywords (``ms.datasets.load("keywords")``: 49 x 10
MFCC images, 12 classes, test voices never heard in training) with one GrowthConfig (the
fraction rule, Adam on mini-batches, the same steps per round and neuron budget): splitting,
random-direction splits, Net2Net copies, new neurons; "width" trains the starting
architecture at uniform widths matched to each size splitting passed through from scratch
(the fixed DS-CNNs of matched widths), "fixed" splitting's final architecture from scratch,
both for splitting's total steps. The script records the comparison with the sizes of
Hello Edge's S model (width 64, 4 blocks; its parameters and multiply-adds counted here,
not trained) in one JSON file; ``benchmarks/keywords_report.py`` writes
docs/keywords-results.md from it. No assertion is made: this script reports.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/bench_keywords.py \\
        --out /work/keywords/keywords.json
    python benchmarks/keywords_report.py /work/keywords/keywords.json
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import sys
import time

from bench_core import blas_summary, cpu_seconds  # same directory: BLAS report, CPU time

import minisplit as ms
from minisplit.cli.keywords import config_of, hello_edge_s, starting_network

#: ``format`` and ``version`` of the JSON file this script writes.
FORMAT, VERSION = "minisplit.bench_keywords", 1
STRATEGIES = ("splitting", "random_split", "net2net", "new_neurons", "width", "fixed", "scratch")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--seeds", type=int, default=3, help="seeds 0..n-1 (default 3)")
    add("--start", type=int, default=4, help="starting width of every conv (default 4)")
    add("--blocks", type=int, default=2, help="depthwise-separable blocks (default 2)")
    add("--budget", type=int, default=24,
        help="neurons in all the grown layers at the end (default 24)")
    add("--steps", type=int, default=200, help="Adam steps per round (default 200)")
    add("--batch-size", type=int, default=32, help="default 32")
    add("--lr", type=float, default=0.01, help="default 0.01")
    add("--eps", type=float, default=0.1, help="split step (default 0.1)")
    add("--fraction", type=float, default=0.5,
        help="share of all neurons grown per round (default 0.5)")
    add("--train-subset", type=int, default=1200,
        help="train on the first N of the 2400 (shuffled) training clips; the 600 test clips "
        "stay whole (default 1200)")
    add("--strategies", default=",".join(STRATEGIES),
        help=f"comma-separated (default {','.join(STRATEGIES)})")
    add("--jobs", type=int, default=1,
        help="worker processes for the independent runs (bit-identical to 1; default 1)")
    add("--out", default="bench_keywords.json", help="JSON output path")
    return parser.parse_args(argv)


def run(args) -> dict:
    data = ms.datasets.load("keywords", images=True, seed=0)
    n_train = len(data.X_train)
    data = dataclasses.replace(data, X_train=data.X_train[:args.train_subset],
                               y_train=data.y_train[:args.train_subset])
    config = config_of(args)
    strategies = args.strategies.split(",")
    make_net = functools.partial(starting_network, [args.start] * (args.blocks + 1), args.blocks)

    def progress(event):
        if event["event"] == "stop":
            print(f"  {event['strategy']:<14} seed {event['seed']}: {event['round']} rounds, "
                  f"{event['reason']} ({event['seconds']:.0f} s)", file=sys.stderr, flush=True)

    wall, cpu = time.perf_counter(), cpu_seconds()
    with ms.growth.process_pool(args.jobs) as executor:
        comparison = ms.compare(data, make_net, config, strategies, range(args.seeds), progress,
                                executor=executor)
    seconds = (time.perf_counter() - wall, cpu_seconds() - cpu)  # after the pool has joined
    return {
        "format": FORMAT, "version": VERSION,
        "command": "python benchmarks/bench_keywords.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "environment": blas_summary(), "load": os.getloadavg()[0],
        "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")},
        "minisplit": ms.__version__, "wall_seconds": seconds[0], "cpu_seconds": seconds[1],
        "settings": {"start": args.start, "blocks": args.blocks, "budget": args.budget,
                     "steps": args.steps, "batch_size": args.batch_size, "lr": args.lr,
                     "eps": args.eps, "fraction": args.fraction, "seeds": args.seeds,
                     "train_subset": len(data.X_train), "n_train": n_train,
                     "n_test": len(data.X_test), "strategies": strategies, "jobs": args.jobs},
        "hello_edge_s": hello_edge_s(data.X_train[:1]),
        "config": config.to_dict(),
        "comparison": json.loads(comparison.to_json()),
    }


def main(argv=None) -> None:
    args = parse_args(argv)
    doc = run(args)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(doc, f)
    c = doc["comparison"]
    comparison = ms.Comparison(c["dataset"], c["seeds"], {
        s: [ms.History.from_dict(h) for h in c["histories"][s]] for s in doc["settings"][
            "strategies"]})  # the JSON sorts its keys: the strategies' order back
    for name, cells in comparison.by_size("test_accuracy").items():
        print(f"{name:<14} " + "  ".join(f"{n}: {cell.median:.3f}" for n, cell in cells.items()))
    print(f"wrote {args.out} ({doc['wall_seconds']:.0f} s wall, {doc['cpu_seconds']:.0f} s CPU)")


if __name__ == "__main__":
    main()
