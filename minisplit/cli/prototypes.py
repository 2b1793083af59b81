"""``minisplit prototypes``: grow Li et al.'s prototype network on the digits by splitting
prototypes, against the prototype baselines, and draw the split family tree.

The network (:func:`minisplit.prototypes.prototype_network`): an encoder into a small latent
space, a prototype layer with the soft-min penalties R1 and R2, a linear classifier, a decoder
head that makes every prototype an image. Every strategy grows the prototype layer from the
same starting networks with the same settings; "fixed" and "scratch" train each size from a
fresh start. Outputs: a progress line, tables, ``family_tree.png``, ``accuracy.png``, JSON and
``report.html`` (the same page writer as ``grow``), written as a set (docs/cli.md).
"""

from __future__ import annotations

import dataclasses
import functools
import sys

import numpy as np

from minisplit import GrowthConfig, compare, datasets, growth, splitting_matrices
from minisplit import prototypes as protos
from minisplit.cli._args import add_jobs, fail, name_list, positive_int
from minisplit.cli._output import run_comparison
from minisplit.cli.grow import Progress, size_table
from minisplit.report import Page

#: The strategies the command compares by default, and the references.
STRATEGY_NAMES = ("splitting", "random_split", "principal_split", "new_prototype", "fixed",
                  "scratch")
SIMILARITIES = ("squared", "gaussian", "log")


def starting_network(args, data, seed):
    return protos.prototype_network(
        n_in=data.X_train.shape[1], n_classes=data.n_classes, latent=args.latent,
        n_prototypes=args.start, similarity=args.similarity, width=args.width, tau=args.tau,
        seed=seed,
    )


def config_of(args) -> GrowthConfig:
    """One split per round (k = 1), Adam on mini-batches, the budget in prototypes."""
    return GrowthConfig(
        selection="k", k=1, eps=args.eps, budget=args.budget, max_rounds=4 * args.budget,
        steps_per_round=args.steps, lr=args.lr, batch_size=args.batch_size,
        plateau_window=None,
    )


def add_arguments(parser):
    add = parser.add_argument
    add("--strategies", type=name_list(STRATEGY_NAMES), default=list(STRATEGY_NAMES),
        metavar="LIST",
        help=f"comma-separated, from {', '.join(STRATEGY_NAMES)} (default: all); "
        "scratch and fixed need splitting")
    add("--seeds", type=positive_int, default=2, metavar="N",
        help="run every strategy with seeds 0..N-1; tables show the median (default: 2)")
    add("--start", type=positive_int, default=3, metavar="M",
        help="prototypes of the starting network (default: 3, fewer than the 10 classes)")
    add("--budget", type=positive_int, default=7, metavar="M",
        help="grow to this many prototypes (default: 7)")
    add("--latent", type=positive_int, default=10, metavar="D",
        help="dimension of the latent space (default: 10)")
    add("--similarity", choices=SIMILARITIES, default="squared",
        help="the prototype layer's phi(D): squared (Li et al.), gaussian, log "
        "(default: squared)")
    add("--width", type=float, default=0.5, help="the gaussian's width (default: 0.5)")
    add("--tau", type=float, default=0.1,
        help="temperature of the soft-min penalties R1, R2 (> 0: splitting needs it; "
        "default: 0.1)")
    add("--steps", type=positive_int, default=150, metavar="N",
        help="Adam steps per round (default: 150)")
    add("--batch-size", type=positive_int, default=128, metavar="B",
        help="mini-batch size (default: 128)")
    add("--lr", type=float, default=0.01, help="Adam learning rate (default: 0.01)")
    add("--eps", type=float, default=0.1, help="split step (default: 0.1)")
    add("--out", default="minisplit-prototypes", metavar="DIR",
        help="folder for the figures, JSON, tables and report (default: "
        "./minisplit-prototypes)")
    add_jobs(parser)
    add("--quiet", action="store_true", help="no progress line on stderr")




def run(args) -> int:
    """Grow the prototype network every way, print the tables, write the output folder."""
    if args.budget <= args.start:
        fail("prototypes", f"--budget must be larger than --start ({args.start}), got "
             f"{args.budget}")
    if args.tau <= 0:
        fail("prototypes", f"--tau must be > 0 (the splitting matrix needs the soft minimum), "
             f"got {args.tau}")
    return run_comparison("prototypes", args, config_of, _grow_and_write)


def _grow_and_write(args, config, out) -> int:
    data = datasets.load("digits", seed=0)
    make_net = functools.partial(starting_network, args, data)  # pickles, for --jobs
    print(f"Growing a prototype network (Li et al.) on the digits ({len(data.X_train)} "
          f"training, {len(data.X_test)} test) from {args.start} to {args.budget} "
          f"{args.similarity} prototypes, by {', '.join(args.strategies)}; "
          f"seed{'s 0..' if args.seeds > 1 else ' '}{args.seeds - 1}.", flush=True)
    progress = None if args.quiet else Progress(args.strategies, args.seeds, sys.stderr)
    with growth.process_pool(args.jobs) as executor:
        comparison = compare(data, make_net, config, args.strategies, range(args.seeds),
                             progress, executor=executor)
    if progress is not None:
        progress.close()
    tables = "\n\n".join(
        f"{metric.replace('_', ' ')} after each round, median over seeds (prototypes = "
        f"rows):\n" + size_table(comparison, metric)
        for metric in ("test_accuracy", "test_loss", "train_loss")
    )
    print("\n" + tables + "\n")
    tree, splitting_run = [], None
    if "splitting" in args.strategies:
        run_config = dataclasses.replace(config, seed=comparison.seeds[0])
        splitting_run = growth.grow(make_net(comparison.seeds[0]), data.X_train, data.y_train,
                                    run_config, data.X_test, data.y_test, keep_networks=True)
        tree = protos.family_tree(splitting_run, data.X_train, data.y_train)
    page = _page(args, data, comparison, tree, make_net)
    page.section("The tables as printed").preformatted(tables)
    return out.save(lambda folder: _write(folder, comparison, tables, tree, page))


def _write(out, comparison, tables, tree, page) -> None:
    from minisplit import plots

    comparison.save(out / "comparison.json")
    (out / "table.txt").write_text(tables + "\n", encoding="utf-8")
    plots.plot_family_tree(tree, out / "family_tree.png")
    plots.plot_by_size(comparison, out / "accuracy.png", "test_accuracy",
                       "digits: test accuracy against the number of prototypes")
    page.save(out / "report.html")


def _page(args, data, comparison, tree, make_net) -> Page:
    from minisplit import plots

    page = Page(
        "Growing an interpretable prototype network by splitting prototypes",
        "Li et al.'s prototype network on the 8 x 8 digits, grown from a few prototypes by "
        "splitting them, against the other ways of adding prototypes. Every number on this "
        "page was computed by this run.",
    )
    _theorem(page.section("1. Squared distances cannot choose a direction"), args, data,
             make_net, comparison.seeds[0])
    section = page.section("2. The split family tree")
    section.paragraph(
        "Each row is one split of seed 0's splitting run: the parent prototype's image (the "
        "decoder at the prototype) with its splitting index, the split direction drawn as "
        "the change of that image along v_min (its own colour scale), and the two children "
        "after the round's training, each with the class it votes for."
        if tree else "No split was made (or splitting was not run)."
    )
    section.figure(plots.plot_family_tree(tree), "the split family tree")
    section = page.section("3. Accuracy against the number of prototypes")
    section.paragraph(
        "The median over seeds of the test accuracy at the end of the round trained at each "
        "number of prototypes, the band the first to third quartile. 'scratch' and 'fixed' "
        "train each size from a fresh start for as many steps as splitting had taken."
    )
    section.figure(plots.plot_by_size(comparison, metric="test_accuracy"),
                   "test accuracy by number of prototypes")
    section.figure(plots.plot_by_size(comparison, metric="train_loss"),
                   "training loss (the whole objective) by number of prototypes")
    _verdict(page.section("4. Verdict and settings"), args, comparison)
    return page


def _theorem(section, args, data, make_net, seed) -> None:
    net = make_net(seed)
    layer = protos.prototype_layer(net)
    X, y = data.X_train, data.y_train
    bare = net.copy()  # the same network without R1, R2: the classification part alone
    config = {**bare.layers[layer].config(), "r1": 0.0, "r2": 0.0, "similarity": "squared"}
    bare.layers[layer] = type(bare.layers[layer]).from_config(
        config, bare.layers[layer].params, bare.layers[layer].buffers)
    S = splitting_matrices(bare, X, y, layer)
    g = bare.backprop(X, y).douts[layer].sum(axis=0)
    deviation = float(np.max(np.abs(S - 2.0 * g[:, None, None] * np.eye(S.shape[1]))))
    section.paragraph(
        "With squared distances the Hessian of ||z - p||^2 with respect to p is 2I for every "
        "sample, so the classifier's part of every prototype's splitting matrix is 2 g I: "
        "every direction is an eigenvector. On this run's starting network (seed "
        f"{seed}), the largest difference between S and 2 g I is {deviation:.2e}, for "
        f"S of size up to {float(np.max(np.abs(S))):.3g}."
    )
    full = splitting_matrices(net, X, y, layer) if args.tau > 0 else None
    if full is not None:
        spread = [np.linalg.eigvalsh(s) for s in full]
        rows = [[j, float(e[0]), float(e[-1])] for j, e in enumerate(spread)]
        section.paragraph(
            f"The soft-min penalties R1 and R2 (tau = {args.tau:g}) add terms -4/tau times "
            "the covariance of the encodings each prototype softly owns: the spectrum "
            "spreads, and v_min points along that cloud's principal axis (the LBG split of "
            "k-means, recovered as tau -> 0). The extreme eigenvalues of the whole S:"
        )
        section.table(["prototype", "lambda_min", "lambda_max"], rows)


def _verdict(section, args, comparison) -> None:
    if "splitting" in comparison.histories:
        lines = []
        for metric in ("test_accuracy", "train_loss"):
            for name, st in comparison.standing(metric).items():
                k, n = len(st.at_least_as_good), len(st.matched)
                lines.append(f"{metric.replace('_', ' ')}: splitting's median was at least as "
                             f"good as {name}'s at {k} of {n} matched sizes.")
        section.items(lines)
    config = config_of(args)
    rows = [["similarity", args.similarity], ["latent", str(args.latent)],
            ["tau", f"{args.tau:g}"], ["seeds", ", ".join(map(str, comparison.seeds))],
            ["strategies", ", ".join(args.strategies)]]
    rows += [[f"GrowthConfig.{k}", repr(v)] for k, v in config.to_dict().items()
             if k not in ("strategy", "seed")]
    section.table(["setting", "value"], rows)
