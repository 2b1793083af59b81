"""Benchmark: growing Li et al.'s prototype network by splitting prototypes, at matched sizes.

Every strategy grows the prototype layer of :func:`minisplit.prototypes.prototype_network`
on the digits (or the shipped Fashion-MNIST subset, ``--dataset fashion_mnist``, Li et al.'s
third case study) from the same starting networks with one and the same GrowthConfig (one
prototype per round, Adam on mini-batches, the same steps and budget): splitting (v_min),
random-direction splits, the LBG principal-axis split, a new prototype at a random sample's
encoding; "fixed" and "scratch" train each size from a fresh start for as many steps. The
script prints and records, per number of prototypes, the test accuracy and loss (median and
quartiles over seeds) and splitting's standing (``Comparison.standing``); ``--report``
writes docs/prototypes-results.md from the recorded JSON alone. No assertion is made: this
script reports.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_prototypes.py --out /tmp/protos.json
    python benchmarks/bench_prototypes.py --report docs/prototypes-results.md /tmp/protos.json
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time

from bench_core import blas_summary, cpu_seconds  # same directory: BLAS report, CPU time

import minisplit as ms
from minisplit import prototypes as protos

STRATEGIES = ("splitting", "random_split", "principal_split", "new_prototype", "fixed",
              "scratch")
METRICS = ("test_accuracy", "test_loss", "train_loss")
#: The image data sets the benchmark runs on, with how the page names them.
DATASETS = {"digits": "The UCI digits (8 x 8)",
            "fashion_mnist": "The shipped Fashion-MNIST subset (14 x 14, 6,000 train / 1,000 test)"}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--dataset", default="digits", choices=DATASETS,
        help="digits (8 x 8, 1,797 images) or fashion_mnist (14 x 14, 6,000 + 1,000; default "
        "digits)")
    add("--seeds", type=int, default=5, help="seeds 0..n-1 (default 5)")
    add("--start", type=int, default=3, help="starting prototypes (default 3)")
    add("--budget", type=int, default=10, help="final prototypes (default 10)")
    add("--similarity", default="squared", choices=("squared", "gaussian", "log"))
    add("--tau", type=float, default=0.1, help="soft-min temperature (default 0.1)")
    add("--steps", type=int, default=200, help="Adam steps per round (default 200)")
    add("--batch-size", type=int, default=128, help="default 128")
    add("--lr", type=float, default=0.01, help="default 0.01")
    add("--jobs", type=int, default=1,
        help="worker processes for the independent runs (bit-identical to 1; default 1)")
    add("--out", default="bench_prototypes.json", help="JSON output path")
    add("--report", nargs="+", metavar=("OUT.md", "JSON"),
        help="only write the results page OUT.md from recorded JSON files")
    return parser.parse_args(argv)


def starting_network(start, similarity, tau, n_in, seed):
    """The seed's starting prototype network (module level, so --jobs can pickle it)."""
    return protos.prototype_network(n_in=n_in, n_prototypes=start, similarity=similarity,
                                    tau=tau, seed=seed)


def run(args) -> dict:
    data = ms.datasets.load(args.dataset, seed=0)
    config = ms.GrowthConfig(selection="k", k=1, eps=0.1, budget=args.budget,
                             max_rounds=4 * args.budget, steps_per_round=args.steps,
                             lr=args.lr, batch_size=args.batch_size, plateau_window=None)

    make_net = functools.partial(starting_network, args.start, args.similarity, args.tau,
                                 data.X_train.shape[1])
    def progress(event):
        if event["event"] == "stop":
            print(f"  {event['strategy']:<16} seed {event['seed']}: {event['round']} rounds, "
                  f"{event['reason']}", file=sys.stderr, flush=True)

    wall, cpu = time.perf_counter(), cpu_seconds()
    with ms.growth.process_pool(args.jobs) as executor:
        comparison = ms.compare(data, make_net, config, STRATEGIES, range(args.seeds), progress,
                                executor=executor)
    seconds = (time.perf_counter() - wall, cpu_seconds() - cpu)  # after the pool has joined
    return {
        "format": "minisplit.bench_prototypes", "version": 1,
        "command": "python benchmarks/bench_prototypes.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "environment": blas_summary(), "load": os.getloadavg()[0],
        "minisplit": ms.__version__, "wall_seconds": seconds[0], "cpu_seconds": seconds[1],
        "settings": {"dataset": args.dataset, "start": args.start, "budget": args.budget,
                     "similarity": args.similarity,
                     "tau": args.tau, "seeds": args.seeds, "jobs": args.jobs},
        "config": config.to_dict(),
        "comparison": json.loads(comparison.to_json()),
    }


def _comparison(doc) -> ms.Comparison:
    c = doc["comparison"]
    order = [s for s in STRATEGIES if s in c["histories"]] + sorted(
        set(c["histories"]) - set(STRATEGIES))  # the JSON sorts its keys: table order back
    histories = {s: [ms.History.from_dict(h) for h in c["histories"][s]] for s in order}
    return ms.Comparison(c["dataset"], c["seeds"], histories)


def size_lines(comparison, metric) -> list[str]:
    """A markdown table of ``metric`` at every number of prototypes: median [q1, q3]."""
    table = comparison.by_size(metric)
    names = list(table)
    sizes = sorted({n for cells in table.values() for n in cells})
    lines = [f"| prototypes | {' | '.join(names)} |", "|---|" + "---|" * len(names)]
    for n in sizes:
        cells = []
        for name in names:
            cell = table[name].get(n)
            if cell is None:
                cells.append("-")
                continue
            mark = "" if cell.every_seed else f" ({cell.count}/{cell.n_seeds})"
            cells.append(f"{cell.median:.4g} [{cell.q1:.4g}, {cell.q3:.4g}]{mark}")
        lines.append(f"| {n} | {' | '.join(cells)} |")
    return lines


def standing_lines(comparison) -> list[str]:
    lines = []
    for metric in ("test_accuracy", "train_loss"):
        for name, st in comparison.standing(metric).items():
            k, n = len(st.at_least_as_good), len(st.matched)
            where = ("every matched size" if k == n and n else "no matched size" if k == 0
                     else f"{k} of {n} matched sizes")
            lines.append(f"- {metric.replace('_', ' ')}: splitting's median is at least as good "
                         f"as {name}'s at {where} ({k}/{n}).")
    return lines


def page(docs, paths) -> str:
    out = [
        "# Prototype networks grown by splitting: results",
        "",
        f"Generated by `benchmarks/bench_prototypes.py --report` from "
        f"{', '.join(f'`{p}`' for p in paths)}; do not edit by hand.",
        "",
        "Li et al.'s prototype network (docs/prototypes.md), grown one "
        "prototype per round from a starting network with fewer prototypes than classes. "
        "Every strategy runs with one GrowthConfig; a size is *matched* for two runs when "
        "every seed of both trained at it (the starting size excepted). `fixed` and "
        "`scratch` train each size from a fresh start for as many steps as splitting had "
        "taken.",
    ]
    for doc in docs:
        comparison, s = _comparison(doc), doc["settings"]
        dataset = DATASETS[s.get("dataset", "digits")]  # version 1 files ran on the digits
        out += ["", f"## {dataset}, {s['similarity']} similarity, tau {s['tau']:g}: "
                f"{s['start']} -> {s['budget']} prototypes, {s['seeds']} seeds", "",
                "**Verdict**, counted from the tables below:", "", *standing_lines(comparison)]
        for metric in METRICS:
            out += ["", f"{metric.replace('_', ' ').capitalize()} at each number of prototypes, "
                    "median [first, third quartile] over seeds:", "",
                    *size_lines(comparison, metric)]
        out += ["", f"Run: `{doc['command']}`, {doc['date']}, {doc['wall_seconds']:.0f} s wall, "
                f"{doc['cpu_seconds']:.0f} s CPU, 1-minute load {doc['load']:.1f} at the end.",
                "", "```", *doc["environment"], "```"]
    return "\n".join(out) + "\n"


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.report:
        target, paths = args.report[0], args.report[1:]
        docs = []
        for path in paths:
            with open(path, encoding="utf-8") as f:
                docs.append(json.load(f))
        with open(target, "w", encoding="utf-8") as f:
            f.write(page(docs, paths))
        print(f"wrote {target}")
        return
    doc = run(args)
    comparison = _comparison(doc)
    for metric in METRICS:
        print(f"\n{metric}:")
        print("\n".join(size_lines(comparison, metric)))
    print("\n" + "\n".join(standing_lines(comparison)))
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(doc, f)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
