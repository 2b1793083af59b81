"""Write docs/cnn-results.md and its figures from the JSON files bench_cnn.py writes.

Everything on the page -- tables, verdicts, the look into why, times, the machine -- is
computed from the files alone; nothing is run. The figures (test accuracy against
parameters and against multiply-adds per sample, ``ms.plots.plot_by_size``) are PNG files
written next to the page (``--figures``, default docs/img/), linked from it, and not
committed: rerun this script to draw them.

    python benchmarks/cnn_report.py /work/cnn/cnn.json
    python benchmarks/cnn_report.py cnn.json cifar.json --out docs/cnn-results.md
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import minisplit as ms

#: ``format`` and ``version`` fields of the JSON file bench_cnn.py writes.
FORMAT, VERSION = "minisplit.bench_cnn", 1
#: The runs the page leads with, in its order.
ORDER = ("splitting", "l1_prune", "bn_prune", "width", "fixed", "scratch")
#: The data sets bench_cnn.py runs on, with how the page names them.
DATASETS = {"fashion_mnist": "The shipped Fashion-MNIST subset (1 x 14 x 14)",
            "digits": "The UCI digits as images (1 x 8 x 8)",
            "cifar10": "CIFAR-10 (3 x 32 x 32)"}

#: What each reference run does, in the page's words (the numbers come from the file); the
#: growth strategies are described by their own records' ``summary``.
RUNS = {
    "splitting": "grows the narrow starting CNN: every round trains {steps} Adam steps, then "
    "splits the conv channels with the most negative splitting indices (the fraction rule) "
    "along their eigenvector, until the channel budget; its total T = (rounds + 1) x steps",
    "width": "the width-multiplier family: the starting architecture with both convs' widths "
    "scaled by one factor to each size splitting passed through, trained from scratch for T "
    "steps each",
    "l1_prune": "L1-prune (Li et al., 2017): the starting architecture at {wide}x splitting's "
    "final width, trained T steps, pruned to each size by the filters' L1 norms with per-layer "
    "ratios from its sensitivity curves, each pruned network fine-tuned {steps} steps",
    "bn_prune": "Bn-prune (network slimming, Liu et al., 2017): a wide network of the same "
    "widths trained T steps with gamma initialised to 0.5 and the L1 penalty {l1:g} |gamma| "
    "(subgradient), pruned to each size on one global |gamma| threshold (never emptying a "
    "layer), each pruned network fine-tuned {steps} steps without the penalty",
    "fixed": "splitting's final architecture from scratch for T steps",
    "scratch": "every size splitting passed through, its architecture from scratch for the "
    "steps splitting had spent by then",
}


def load(path) -> dict:
    """A file written by bench_cnn.py; ValueError for anything else."""
    with open(path, encoding="utf-8") as f:
        try:
            doc = json.load(f)
        except ValueError as err:  # JSONDecodeError, UnicodeDecodeError
            raise ValueError(f"{path!r} is not a JSON file: {err}") from err
    if not isinstance(doc, dict) or (doc.get("format"), doc.get("version")) != (FORMAT, VERSION):
        raise ValueError(f"{path!r} is not a bench_cnn file of version {VERSION} "
                         "(written by benchmarks/bench_cnn.py --out)")
    return doc


def write_atomic(path, text) -> None:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace``."""
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(temporary, path)


def comparison_of(task) -> ms.Comparison:
    """A task's :class:`minisplit.Comparison`, its runs in the page's order: splitting, the
    references it is measured against (:data:`ORDER`), then the other growth strategies in
    the package's order (the JSON sorts its keys)."""
    c = task["comparison"]
    order = dict.fromkeys([*ORDER, *ms.growth.RUN_NAMES])
    histories = {s: [ms.History.from_dict(h) for h in c["histories"][s]]
                 for s in order if s in c["histories"]}
    return ms.Comparison(c["dataset"], c["seeds"], histories)


# ---- numbers from the histories --------------------------------------------------------------


def _table(header, rows) -> list[str]:
    return [f"| {' | '.join(header)} |", "|" + "---|" * len(header),
            *(f"| {' | '.join(str(c) for c in row)} |" for row in rows)]


def _spread(values, digits=3) -> str:
    """``median [min, max]`` of ``values``."""
    return (f"{statistics.median(values):.{digits}f} [{min(values):.{digits}f}, "
            f"{max(values):.{digits}f}]")


def _cell(cell) -> str:
    mark = "" if cell.every_seed else f" ({cell.count}/{cell.n_seeds} seeds)"
    return f"{cell.median:.4f} [{cell.low:.4f}, {cell.high:.4f}]{mark}"


def _widths(comparison, name, size) -> str:
    """The per-layer widths the seeds' networks had at ``size`` (distinct ones, seed order)."""
    seen = dict.fromkeys(str(list(r.neurons)) for h in comparison.histories[name]
                         for r in h.rounds if r.n_neurons == size)
    return " ".join(seen)


def size_table(comparison) -> list[str]:
    """Per size and run: widths, parameters, multiply-adds, test accuracy median [min, max]."""
    table = comparison.by_size("test_accuracy")
    params, flops = comparison.size_of("params"), comparison.size_of("flops")
    rows = []
    for size in sorted({n for cells in table.values() for n in cells}):
        for name, cells in table.items():
            if size in cells:
                rows.append([size, f"`{name}`", _widths(comparison, name, size),
                             f"{params[name][size]:,.0f}", f"{flops[name][size]:,.0f}",
                             _cell(cells[size])])
    return _table(["channels", "run", "widths", "params", "multiply-adds / sample",
                   "test accuracy"], rows)


def grown_sizes(comparison) -> list[int]:
    """Splitting's sizes every seed trained at, the starting size excepted (those a
    reference can be matched at)."""
    cells = comparison.by_size("test_accuracy")["splitting"]
    start = {h.rounds[0].n_neurons for h in comparison.histories["splitting"]}
    return [n for n, c in cells.items() if c.every_seed and n not in start]


def verdict_rows(comparison) -> list[list]:
    """Per reference: matched sizes (of splitting's), where splitting's median is >=, and the
    median over matched sizes of splitting's median minus the reference's (points)."""
    table, rows = comparison.by_size("test_accuracy"), []
    n_grown = len(grown_sizes(comparison))
    for name, st in comparison.standing("test_accuracy").items():
        gaps = [100 * (table["splitting"][n].median - table[name][n].median) for n in st.matched]
        gap = f"{statistics.median(gaps):+.1f}" if gaps else "-"
        worse = ", ".join(map(str, st.worse)) or "none"
        rows.append([f"`{name}`", f"{len(st.at_least_as_good)}/{len(st.matched)}",
                     f"{len(st.matched)} of {n_grown}", gap, worse])
    return rows


def verdict_table(comparison) -> list[str]:
    """:func:`verdict_rows` as a markdown table."""
    return _table(["against", "splitting >= (matched sizes)", "sizes matched",
                   "median gap (points)", "splitting worse at (channels)"],
                  verdict_rows(comparison))


def verdict_sentence(comparison) -> str:
    """Which references splitting's median beats or matches at more than half the matched
    sizes, and which not."""
    ahead, behind, none = [], [], []
    for name, st in comparison.standing("test_accuracy").items():
        if not st.matched:
            none.append(f"`{name}`")
        elif 2 * len(st.at_least_as_good) > len(st.matched):
            ahead.append(f"`{name}`")
        else:
            behind.append(f"`{name}`")
    parts = []
    if ahead:
        parts.append(f"at least as good as that of {_join(ahead)} at more than half of the matched "
                     "sizes")
    if behind:
        parts.append(f"at least as good as that of {_join(behind)} at half of the matched sizes or "
                     "fewer")
    text = "Splitting's median test accuracy is " + ", and ".join(parts) + "." if parts else ""
    if none:
        text += f" No size of splitting's matched one of {_join(none)}."
    return text.strip()


def _count(n, noun) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _join(names) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def wide_rows(comparison) -> list[list]:
    """The pruning runs' wide networks: widths, cost, steps, test accuracy over seeds."""
    rows = []
    for name, histories in comparison.histories.items():
        wides = [h.meta["wide"] for h in histories if "wide" in h.meta]
        if wides:
            rows.append([f"`{name}`", " ".join(dict.fromkeys(str(w["neurons"]) for w in wides)),
                         f"{wides[0]['params']:,}", f"{wides[0]['flops']:,}",
                         wides[0]["steps"], _spread([w["test_accuracy"] for w in wides], 4),
                         _spread([w["train_loss"] for w in wides], 3)])
    return rows


def training_madds(history) -> float:
    """Forward multiply-adds per training sample summed over every update the run made
    (its wide network's too): ``sum(steps x flops)``; one update costs about 3x this per
    sample of its mini-batch (forward, backward to the inputs, backward to the weights)."""
    wide = history.meta.get("wide")
    spent = 0.0 if wide is None else wide["steps"] * wide["flops"]
    return spent + sum(r.steps * r.flops for r in history.rounds)


def seconds(history) -> float:
    """Training and growing seconds recorded in the run (not the evaluations)."""
    wide = history.meta.get("wide")
    spent = 0.0 if wide is None else wide["time_train"]
    return spent + sum(r.time_train + (r.time_split or 0.0) for r in history.rounds)


def cost_rows(comparison) -> list[list]:
    """Per run: updates, training multiply-adds relative to splitting's, recorded seconds."""
    base = statistics.median(training_madds(h) for h in comparison.histories["splitting"])
    rows = []
    for name, histories in comparison.histories.items():
        steps = [sum(r.steps for r in h.rounds) + h.meta.get("wide", {}).get("steps", 0)
                 for h in histories]
        madds = [training_madds(h) / base for h in histories]
        split = [sum(r.time_split or 0.0 for r in h.rounds) for h in histories]
        spent = [seconds(h) for h in histories]
        rows.append([f"`{name}`", f"{statistics.median(steps):.0f}",
                     f"{statistics.median(madds):.2f}", f"{statistics.median(spent):.0f}",
                     f"{statistics.median(split):.0f}"])
    return rows


def _final(comparison, name, field):
    """Median of ``field`` at the run's largest size over seeds, and that size."""
    size = max(comparison.by_size("test_accuracy")[name])
    values = [getattr(r, field) for h in comparison.histories[name] for r in h.rounds
              if r.n_neurons == size]
    return statistics.median(values), size


def why_lines(comparison) -> list[str]:
    """Facts that bear on the verdict, each computed from the runs: the wide networks' head
    start, what pruning keeps of it, growing against training the final architecture, the
    architecture splitting found against uniform widths, the gap between training and test
    accuracy, and the training compute."""
    names, lines = set(comparison.histories), []
    split_acc, size = _final(comparison, "splitting", "test_accuracy")
    split_loss, _ = _final(comparison, "splitting", "train_loss")
    for name in ("l1_prune", "bn_prune"):
        if name not in names:
            continue
        wide = statistics.median(h.meta["wide"]["test_accuracy"]
                                 for h in comparison.histories[name])
        pruned, _ = _final(comparison, name, "test_accuracy")
        lines.append(f"`{name}`: its wide network reaches {wide:.4f} test accuracy (median) "
                     f"before pruning, {_points(wide - split_acc)} splitting's {split_acc:.4f} "
                     f"at its final {size} channels; pruned to its largest size and fine-tuned it "
                     f"has {pruned:.4f} ({_points(pruned - wide)} the wide network).")
    if "fixed" in names:
        fixed_acc, _ = _final(comparison, "fixed", "test_accuracy")
        fixed_loss, _ = _final(comparison, "fixed", "train_loss")
        total = statistics.median(h.total_steps for h in comparison.histories["splitting"])
        last = statistics.median(h.rounds[-1].steps for h in comparison.histories["splitting"])
        reading = ""
        if split_acc < fixed_acc and split_loss > fixed_loss:
            reading = (" Its training loss is higher too: the grown network is less trained, "
                       "not over-fitted.")
        lines.append(f"Growing against training splitting's final architecture from scratch for "
                     f"as many steps (`fixed`): test accuracy {split_acc:.4f} against "
                     f"{fixed_acc:.4f} (grown: {_points(split_acc - fixed_acc)} trained whole), "
                     f"training loss {split_loss:.4f} against {fixed_loss:.4f}. Splitting "
                     f"trained its final architecture for its last {last:.0f} of T = {total:.0f} "
                     f"steps, the earlier ones going to narrower networks.{reading}")
        grown = {name: _final(comparison, name, "test_accuracy")[0]
                 for name in comparison.histories
                 if name in ms.growth.STRATEGIES and name != "splitting"
                 and _final(comparison, name, "test_accuracy")[1] == size}
        if grown:
            reading = (": every grown network is behind the one trained whole, so what growing "
                       "costs here is not splitting's alone" if max(grown.values()) < fixed_acc
                       else "")
            shown = ", ".join(f"{name} {acc:.4f}" for name, acc in grown.items())
            lines.append(f"The other growth strategies, grown the same way, at {size} channels: "
                         f"{shown}, against `fixed` {fixed_acc:.4f}{reading}.")
        if "width" in names and size in comparison.by_size("test_accuracy")["width"]:
            width_acc = comparison.by_size("test_accuracy")["width"][size].median
            lines.append(f"The architecture splitting found against uniform widths, both trained "
                         f"from scratch for T steps at {size} channels (`fixed` against `width`): "
                         f"{fixed_acc:.4f} against {width_acc:.4f} "
                         f"({_points(fixed_acc - width_acc)} for splitting's widths).")
    gaps = []
    for name in comparison.histories:
        train, _ = _final(comparison, name, "train_accuracy")
        test, at = _final(comparison, name, "test_accuracy")
        gaps.append(f"{name} {100 * (train - test):.1f} (at {at})")
    lines.append("Training minus test accuracy at each run's largest size, in points (medians; "
                 f"how much the small training set is fitted beyond what carries over): "
                 f"{', '.join(gaps)}.")
    rows = {row[0]: row for row in cost_rows(comparison)}
    others = [f"{name} {rows[f'`{name}`'][2]}x" for name in comparison.histories
              if name != "splitting"]
    lines.append("Training compute, forward multiply-adds per sample summed over every update "
                 f"relative to splitting's: {', '.join(others)} (medians over seeds of each run's "
                 "total over all its sizes; the cost table has the updates and seconds).")
    return lines


def _points(difference) -> str:
    """A difference of accuracies in percentage points, with its direction."""
    if abs(difference) < 5e-5:
        return "the same as"
    return f"{abs(100 * difference):.1f} points {'above' if difference > 0 else 'below'}"


# ---- the page --------------------------------------------------------------------------------


def figures(comparison, task, folder, tag) -> list[tuple]:
    """Draw test accuracy against parameters and against multiply-adds: ``[(path, caption)]``."""
    out = []
    for x, what in (("params", "parameters"), ("flops", "multiply-adds per sample")):
        path = os.path.join(folder, f"cnn-{tag}{task}-{x}.png")
        ms.plots.plot_by_size(comparison, path, "test_accuracy",
                              f"{task}: test accuracy against {what}", x=x)
        out.append((path, f"{task}: test accuracy (median over seeds, band: quartiles) against "
                    f"{what}"))
    return out


def task_section(doc, task, figure_links) -> list[str]:
    comparison, s = comparison_of(task), doc["settings"]
    name = task["task"]
    title = DATASETS[name]
    subset = ""
    if name == "fashion_mnist" and s["fashion_train"] is not None and task["n_train"] < 6000:
        subset = f" (a class-balanced subset: the first {task['n_train'] // 10} of each class)"
    elif name == "cifar10":
        subset = " (the first images of CIFAR-10's training and test files)"
    lines = [f"## {title}", "",
             f"{task['n_train']:,} training images{subset}, {task['n_test']:,} test images, "
             f"{task['n_classes']} classes, input {tuple(task['input_shape'])}; "
             f"{_count(len(comparison.seeds), 'seed')}; the whole comparison took "
             f"{task['wall_seconds']:.0f} s wall, {task['cpu_seconds']:.0f} s CPU.", "",
             f"**Verdict.** {verdict_sentence(comparison)}", "",
             *verdict_table(comparison), "",
             "*Gap*: splitting's median minus the other run's, in points of test accuracy, the "
             "median over the matched sizes. *Sizes matched*: of splitting's sizes after the "
             "start, those every seed of the other run trained at too (a Bn-pruned network "
             "can keep a unit more than asked when the guard stops a layer from emptying).", "",
             "**Looking into it.**", "", *(f"- {line}" for line in why_lines(comparison)), "",
             "Test accuracy at each size (conv channels in all; the widths per conv of the "
             "seeds' networks), median [min, max] over seeds; parameters and multiply-adds are "
             "the medians over seeds:", "", *size_table(comparison), ""]
    for path, caption in figure_links:
        lines += [f"![{caption}]({path})", ""]
    lines += ["The wide networks the pruning runs start from (before pruning), over seeds:", "",
              *_table(["run", "widths", "params", "multiply-adds / sample", "steps",
                       "test accuracy", "train loss"], wide_rows(comparison)), "",
              "Cost per run, medians over seeds: updates (the wide network's included), "
              "training multiply-adds relative to splitting's (forward multiply-adds per "
              "sample summed over the updates), and the training and growing seconds the "
              "runs recorded (evaluations excluded), of which splitting's surgeries:", "",
              *_table(["run", "updates", "training multiply-adds / splitting's",
                       "seconds", "of which growing"], cost_rows(comparison)), ""]
    return lines


def summary_lines(docs) -> list[str]:
    """The verdict of every data set in one table (runs by data set: k/n and the median gap),
    then each data set's sentence."""
    tasks = [(task["task"], comparison_of(task)) for d in docs for task in d["tasks"]]
    cells, names = {}, []
    for task, comparison in tasks:
        for row in verdict_rows(comparison):
            if row[0] not in names:
                names.append(row[0])
            cells[task, row[0]] = f"{row[1]} ({row[3]})"
    rows = [[name, *(cells.get((task, name), "-") for task, _ in tasks)] for name in names]
    return ["## Verdict", "",
            "At how many matched sizes splitting's median test accuracy over seeds is at least "
            "as good as each other run's (`Comparison.standing`), and in brackets the median "
            "gap, splitting's median minus the other's, in points of test accuracy:", "",
            *_table(["against", *(f"{task}" for task, _ in tasks)], rows), "",
            *(f"- {task}: {verdict_sentence(comparison)}" for task, comparison in tasks), ""]


def method_lines(docs) -> list[str]:
    s, c = docs[0]["settings"], docs[0]["config"]  # the prose: the first file's; the table: all
    names = list(dict.fromkeys(n for d in docs for n in d["settings"]["strategies"]))
    wide, l1 = s["wide_factor"], s["slimming_l1"]
    lines = ["## What was compared and how", "",
             f"Every run starts from (or is sized against) `ms.small_cnn` -- 3 x 3 convs with "
             f"batch norm and softplus, 2 x 2 average pooling while the map is even, a Dense "
             f"head -- at conv widths {s['start']} and trains with one `GrowthConfig`: Adam "
             f"(lr {c['lr']:g}), mini-batches of {c['batch_size']}, {c['steps_per_round']} "
             f"steps per round, every round in full (no plateau rule), the same data and seeds "
             f"(`ms.compare`). Splitting grows to {s['budget']} conv channels in all; the "
             "others are trained at the sizes it passed through:", "",
             *(f"- `{n}`: {_described(n, wide, l1, c['steps_per_round'])}." for n in names), "",
             f"So the references do not get the same compute as splitting: the width family "
             f"trains every size for the whole T, and the pruning runs train a network "
             f"{wide}x splitting's final width for T steps and then fine-tune each pruned "
             f"network for {c['steps_per_round']} more -- more updates, each on a more "
             "expensive network (the cost tables below give the numbers). The other way "
             "round, splitting's network at a size below its budget is the one it had at that "
             "point of its growth, after fewer than T steps in all, while every reference's "
             "network of that size has had T steps or more. A *matched size* "
             "is one every seed of both runs trained at, the starting size excepted "
             "(`Comparison.standing`); the verdict counts the matched sizes at which "
             "splitting's median test accuracy is at least as good as the other run's.", "",
             "The settings are the same for every run. They were chosen before the full run, "
             "from the run time of one-seed probes, to fit the compute budget (the whole run on "
             "one core of a shared 2-core machine in about half an hour), and not changed "
             "after it:", ""]
    fields = [k for k in c if k not in ("strategy", "seed")]
    rows = [["seeds", *(f"0..{d['settings']['seeds'] - 1}" for d in docs)],
            ["starting widths", *(d["settings"]["start"] for d in docs)],
            ["budget (conv channels)", *(d["settings"]["budget"] for d in docs)],
            ["Fashion-MNIST training images", *(d["settings"]["fashion_train"] for d in docs)],
            ["data seed (order of the data sets)", *(d["settings"]["data_seed"] for d in docs)],
            *([k, *(f"`{json.dumps(d['config'].get(k))}`" for d in docs)] for k in fields)]
    header = ["setting", *(("value",) if len(docs) == 1 else
                           (", ".join(t["task"] for t in d["tasks"]) for d in docs))]
    return lines + _table(header, rows) + [""]


def _described(name, wide, l1, steps) -> str:
    if name in RUNS:
        return RUNS[name].format(wide=wide, l1=l1, steps=steps)
    return (f"{ms.growth.STRATEGIES[name].summary}, as many per round as splitting's rule "
            "picks, with the same rounds")


def machine_lines(docs, paths) -> list[str]:
    lines = ["## Machine and commands", ""]
    for doc, path in zip(docs, paths):
        load = " -> ".join(f"{a:.1f}" for a in doc["load"])
        source = f", git {doc['git']}" if doc.get("git") else ""
        lines += [f"- `{path}`: {doc['date']}, minisplit {doc['minisplit']}{source}; "
                  f"{doc['wall_seconds']:.0f} s wall, {doc['cpu_seconds']:.0f} s CPU "
                  f"({doc['settings']['jobs']} job(s); 1-minute load average {load} from start "
                  "to end):", "", "  ```", f"  {doc['command']}", "  ```", "",
                  "  ```", *(f"  {line}" for line in doc["environment"]
                             if not line.startswith("note:")), "  ```", ""]
    return lines


def page(docs, paths, figure_links, today) -> str:
    """The results page, from the files alone; ``figure_links[i][j]``: the figures of task j
    of file i, ``[(link, caption)]``."""
    quick = any(d["quick"] for d in docs)
    lines = ["# Small CNNs grown by splitting against pruning and the width family: results", "",
             f"Generated by `benchmarks/cnn_report.py` from {', '.join(f'`{p}`' for p in paths)} "
             f"on {today}; do not edit by hand: every number and verdict below is computed "
             "from those files (`benchmarks/bench_cnn.py` writes them). The figures are "
             "written next to this page by the same script and are not committed; rerun it "
             "to draw them.", ""]
    if quick:
        lines += ["**A `--quick` run: a smoke test of the scripts, not results.**", ""]
    lines += summary_lines(docs) + method_lines(docs)
    for doc, links in zip(docs, figure_links):
        for task, figs in zip(doc["tasks"], links):
            lines += task_section(doc, task, figs)
    lines += machine_lines(docs, paths)
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", metavar="JSON", help="files bench_cnn.py wrote")
    parser.add_argument("--out", default="docs/cnn-results.md",
                        help="the page (default docs/cnn-results.md)")
    parser.add_argument("--figures", default=None, metavar="DIR",
                        help="folder of the figures (default: img/ next to the page)")
    args = parser.parse_args(argv)
    folder = args.figures or os.path.join(os.path.dirname(args.out) or ".", "img")
    try:
        docs = [load(path) for path in args.files]
        os.makedirs(folder, exist_ok=True)
        links = []
        for i, doc in enumerate(docs):
            tag = f"{i}-" if len(docs) > 1 else ""
            links.append([[(os.path.relpath(path, os.path.dirname(os.path.abspath(args.out))),
                            caption) for path, caption in figures(
                                comparison_of(task), task["task"], folder, tag)]
                          for task in doc["tasks"]])
        text = page(docs, args.files, links, time.strftime("%Y-%m-%d", time.gmtime()))
        write_atomic(args.out, text)
    except (OSError, ValueError) as err:
        sys.exit(f"cnn_report.py: error: {err}")
    print(f"wrote {args.out} and its figures in {folder}")


if __name__ == "__main__":
    main()
