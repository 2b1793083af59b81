"""Several strategies over several seeds on one data set, with the same training budget.

:func:`compare` runs them; a :class:`Comparison` holds the histories and computes the
tables people read from them -- :meth:`Comparison.by_size` (a metric at every size,
over seeds) is the one table the command line, the benchmarks and the tutorials print.

Besides the growth strategies (:data:`minisplit.growth.strategies.STRATEGIES`), a
comparison can run *reference* runs that do not grow, one record each in
:data:`REFERENCES`, each at the sizes the same seed's splitting run passed through (one
history round per size, numbered as that run's rounds):

fixed      the final architecture of splitting, from scratch, for that run's total steps T;
scratch    every size splitting passed through, from scratch, for the steps the run had
           spent by the end of that size (the paper's "baseline (scratch)");
width      the width-multiplier family: the starting architecture with every layer's
           width scaled by one factor to each size (:func:`uniform_widths`), from scratch,
           T steps each;
l1_prune   L1-prune (Li et al., 2017): a wide network (the starting architecture at
           :data:`WIDE_FACTOR` times splitting's final size) trained T steps, pruned to
           each size with per-layer ratios from its sensitivity curves
           (:func:`minisplit.pruning.ratios_for_size`), fine-tuned ``steps_per_round``;
bn_prune   Bn-prune (network slimming, Liu et al., 2017): the wide network trained T steps
           with gamma initialised to 0.5 and the sparsity penalty :data:`SLIMMING_L1`,
           pruned to each size on one global |gamma| threshold, fine-tuned
           ``steps_per_round`` without the penalty.

All use the run's optimiser, batch size and data (docs/growth.md, "Reference runs").
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import json
import multiprocessing
import os
import pickle
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from minisplit._checks import check_callable, check_choice, check_int, check_type
from minisplit._files import write_text_atomic
from minisplit.growth.checkpoint import check_destination
from minisplit.growth.config import GrowthConfig, GrowthResult
from minisplit.growth.history import VERSION, History
from minisplit.growth.loop import fine_tune, grow, train_fixed
from minisplit.growth.strategies import STRATEGIES, reinitialized
from minisplit.splitting.surgery import add_neurons, grown_parts

#: Value of the ``format`` field of a comparison file.
FORMAT = "minisplit.comparison"


@dataclass(frozen=True)
class Reference:
    """A reference run of a comparison that does not grow (one row of :data:`REFERENCES`).

    ``after`` names the strategy whose run of the same seed it needs;
    ``run(grown, start, parts, config) -> GrowthResult`` with ``grown`` that run's
    GrowthResult, ``start`` the seed's starting network and ``parts = (X_train, y_train,
    X_test, y_test)``; ``describe(grown) -> str`` says in a few words what the run will do
    (progress lines). ``requires(net, layers) -> None`` raises ValueError with the reason
    when the run cannot start from ``net`` (None: any network). ``by_default``: whether
    :func:`applicable_runs` (the default set of :func:`compare`) includes it; the width
    family and the pruning runs train several or wide networks and are asked for by name.
    """

    name: str
    after: str
    run: Callable
    describe: Callable
    summary: str = ""
    requires: Callable | None = None
    by_default: bool = True


def _fixed(grown, start, parts, config):
    final, steps = grown.net, grown.history.total_steps
    return train_fixed(final, parts[0], parts[1], config, steps, *parts[2:])


def _widened(net, layers, widths):
    """``net`` with zero neurons appended until each layer of ``layers`` has ``widths``."""
    for index, width in zip(layers, widths):
        theta, out_weights = grown_parts(net, index)
        extra = width - theta.shape[0]
        if extra > 0:
            net = add_neurons(net, index, np.zeros((extra, theta.shape[1])),
                              np.zeros((extra,) + out_weights.shape[1:]))
    return net


def _scratch(grown, start, parts, config):
    """Every size of the grown run, trained from a fresh start for the steps spent to reach
    the end of that size's round; one round per size in the returned history."""
    history, layers = grown.history, grown.history.meta["layers"]
    rounds, last = [], None
    for r in history.rounds:
        sized = _widened(start, layers, r.neurons)
        last = train_fixed(sized, parts[0], parts[1], config, r.total_steps, *parts[2:])
        rounds.append(dataclasses.replace(last.history.rounds[0], round=r.round))
    scratch = History({**last.history.meta, "strategy": "scratch"}, rounds)
    return GrowthResult(last.net, scratch)


def uniform_widths(net, layers, total) -> list[int]:
    """The widths of ``layers`` scaled by one factor to ``total`` neurons in all.

    Layer l of width w_l gets ``floor(k w_l)`` or one more, k = total / sum(w), the extra
    ones to the largest remainders (the earlier layer on a tie), so the widths add up to
    ``total`` exactly; at least 1 each.

    Examples
    --------
    >>> import minisplit as ms
    >>> net = ms.mlp([2, 3, 5, 1], seed=0)
    >>> uniform_widths(net, [0, 1], 12), uniform_widths(net, [0, 1], 16)
    ([5, 7], [6, 10])
    """
    base = np.array([net.layers[i].n_neurons for i in layers], dtype=np.float64)
    total = check_int(total, "total", low=len(layers))
    scaled = base * (total / base.sum())
    widths = np.maximum(np.floor(scaled + 1e-9).astype(np.int64), 1)
    order = np.argsort(-(scaled - np.floor(scaled + 1e-9)), kind="stable")
    for j in order[: max(total - int(widths.sum()), 0)]:
        widths[j] += 1
    return [int(w) for w in widths]


def _width(grown, start, parts, config):
    """The starting architecture at uniform widths, one per size of the grown run, each
    trained from scratch for the grown run's total steps."""
    history, layers = grown.history, grown.history.meta["layers"]
    rounds, last = [], None
    for r in history.rounds:
        sized = _widened(start, layers, uniform_widths(start, layers, r.n_neurons))
        last = train_fixed(sized, parts[0], parts[1], config, history.total_steps, *parts[2:])
        rounds.append(dataclasses.replace(last.history.rounds[0], round=r.round))
    return GrowthResult(last.net, History({**last.history.meta, "strategy": "width"}, rounds))


#: The pruning references start from the starting architecture at this many times the
#: final size of the splitting run (in neurons of the grown layers, uniform widths).
WIDE_FACTOR = 2
#: The sparsity penalty of the "bn_prune" reference's training, lambda_s (Liu et al.'s
#: value for CIFAR-10 on a mean cross-entropy).
SLIMMING_L1 = 1e-4
#: The L1-prune reference's sensitivity analysis tries these ratios, and measures on at
#: most this many training samples (the comparison has no validation split).
SENSITIVITY_RATIOS = tuple(np.round(np.arange(0.05, 0.951, 0.05), 2))
SENSITIVITY_SAMPLES = 2000


def _l1_sized(trained, parts, layers):
    """``n_keep -> pruned network``: L1-prune of ``trained`` by its sensitivity curves."""
    from minisplit import pruning

    X, y = parts[0][:SENSITIVITY_SAMPLES], parts[1][:SENSITIVITY_SAMPLES]
    judged = trained.copy().set_mode("eval") if trained.has_batch_norm else trained
    curves = pruning.sensitivity(judged, X, y, layers, SENSITIVITY_RATIOS, "l1")
    return lambda n_keep: pruning.l1_prune(trained, pruning.ratios_for_size(curves, n_keep))


def _bn_sized(trained, parts, layers):
    """``n_keep -> pruned network``: Bn-prune of ``trained`` on one global threshold."""
    from minisplit import pruning

    n_wide = sum(trained.layers[i].n_neurons for i in layers)
    return lambda n_keep: pruning.with_gamma_l1(pruning.bn_prune(
        trained, 1.0 - n_keep / n_wide, "global", layers, fold="beta"), 0.0)


def wide_network(name, history, start, parts, config) -> GrowthResult:
    """The wide network the pruning reference ``name`` starts from, trained.

    The starting architecture ``start`` at :data:`WIDE_FACTOR` times the final size of the
    splitting run ``history`` (uniform widths), freshly initialised from ``config.seed``
    (Bn-prune's with gamma = 0.5 and the penalty :data:`SLIMMING_L1`), trained for that
    run's total steps on ``parts = (X_train, y_train, X_test, y_test)``. A function of its
    arguments: called with a comparison's seed and config it gives the network that
    reference pruned (:func:`compare` keeps only the pruned ones).

    Parameters
    ----------
    name : {"l1_prune", "bn_prune"}
    history : History
        The same seed's splitting run.
    start : Network
        That run's starting network (``make_net(seed)``).
    parts : tuple of arrays
    config : GrowthConfig
        The comparison's config with that seed.

    Returns
    -------
    GrowthResult
    """
    prepare = check_choice(name, "name", _WIDE_PREPARATION)
    layers = history.meta["layers"]
    total = WIDE_FACTOR * history.rounds[-1].n_neurons
    wide = _widened(start, layers, uniform_widths(start, layers, total))
    wide = _WIDE_PREPARATION[prepare](reinitialized(wide, np.random.default_rng(config.seed)))
    return fine_tune(wide, parts[0], parts[1], config, history.total_steps, *parts[2:],
                     strategy=name)


def _pruned(name, sized):
    """The ``run`` of a pruning reference: train the wide network (:func:`wide_network`),
    prune it to every size of the grown run (``sized``), fine-tune each."""

    def run(grown, start, parts, config):
        history, layers = grown.history, grown.history.meta["layers"]
        trained = wide_network(name, history, start, parts, config)
        to_size = sized(trained.net, parts, layers)
        rounds, last = [], None
        for r in history.rounds:
            pruned = to_size(r.n_neurons)
            last = fine_tune(pruned, parts[0], parts[1], config, config.steps_per_round,
                             *parts[2:], strategy=name)
            tuned = last.history.rounds[0]
            rounds.append(dataclasses.replace(
                tuned, round=r.round, surgery=name,
                n_added=tuned.n_neurons - trained.history.rounds[0].n_neurons,
                total_steps=history.total_steps + tuned.steps))
        wide_round = trained.history.rounds[0]
        meta = {**last.history.meta, "wide": {
            "neurons": wide_round.neurons, "params": wide_round.params,
            "flops": wide_round.flops, "steps": wide_round.steps,
            "train_loss": wide_round.train_loss, "test_loss": wide_round.test_loss,
            "test_accuracy": wide_round.test_accuracy, "time_train": wide_round.time_train}}
        return GrowthResult(last.net, History(meta, rounds))

    return run


def _prunable(criterion):
    """``requires`` of a pruning reference: every grown layer scored by ``criterion``."""

    def requires(net, layers):
        from minisplit import pruning

        scored = pruning.prunable_layers(net, criterion)
        missing = [index for index in layers if index not in scored]
        if missing:
            kind = {"l1": "a Dense or Conv2d layer", "bn": "a batch-normalised Dense or "
                    "Conv2d layer"}[criterion]
            raise ValueError(f"{criterion}_prune prunes {kind}; the grown layers {missing} "
                             f"are not")

    return requires


def _slimming(net):
    from minisplit import pruning

    return pruning.with_gamma_l1(pruning.init_gamma(net, 0.5), SLIMMING_L1)


#: How each pruning reference sets up its freshly initialised wide network.
_WIDE_PREPARATION = {"l1_prune": lambda net: net, "bn_prune": _slimming}


#: Reference runs a comparison can include, by name.
REFERENCES = {
    r.name: r
    for r in (
        Reference("fixed", "splitting", _fixed,
                  lambda grown: f"{grown.history.total_steps} steps from scratch",
                  "the final architecture of splitting, trained from scratch as long"),
        Reference("scratch", "splitting", _scratch,
                  lambda grown: f"{len(grown.history.rounds)} sizes from scratch",
                  "every size splitting passed through, trained from scratch as long"),
        Reference("width", "splitting", _width,
                  lambda grown: f"{len(grown.history.rounds)} uniform widths from scratch",
                  "the starting architecture at uniform widths, one per size, trained "
                  "from scratch for the whole budget", by_default=False),
        Reference("l1_prune", "splitting", _pruned("l1_prune", _l1_sized),
                  lambda grown: f"a {WIDE_FACTOR}x wide network, L1-pruned to "
                  f"{len(grown.history.rounds)} sizes",
                  "a wide network trained for the whole budget, L1-pruned (Li et al.) to "
                  "each size and fine-tuned", _prunable("l1"), by_default=False),
        Reference("bn_prune", "splitting", _pruned("bn_prune", _bn_sized),
                  lambda grown: f"a {WIDE_FACTOR}x wide network with sparse gamma, "
                  f"Bn-pruned to {len(grown.history.rounds)} sizes",
                  "a wide network trained for the whole budget with the gamma penalty, "
                  "Bn-pruned (Liu et al.) to each size and fine-tuned", _prunable("bn"),
                  by_default=False),
    )
}
#: Every name :func:`compare` accepts, in table order: the strategies, then the references.
RUN_NAMES = (*STRATEGIES, *REFERENCES)


def applicable_runs(net) -> tuple:
    """The names of every strategy whose requirements ``net``'s growable layers meet, then
    every reference run of the default set whose strategy is among them and whose
    requirements ``net`` meets (:attr:`Reference.by_default`)."""
    from minisplit.growth.sizes import growable_layers

    layers = growable_layers(net)
    names = []
    for name, strategy in STRATEGIES.items():
        try:
            for index in layers if strategy.requires is not None else ():
                strategy.requires(net, index)
        except ValueError:
            continue
        names.append(name)
    return (*names, *(r for r, ref in REFERENCES.items() if ref.by_default and ref.after in names
                      and _meets(ref, net, layers)))


def _meets(ref, net, layers) -> bool:
    try:
        if ref.requires is not None:
            ref.requires(net, layers)
    except ValueError:
        return False
    return True


def compare(
    data, make_net, config=None, strategies=None, seeds=(0,), progress=None,
    checkpoint=None, resume=False, overwrite=False, executor=None,
):
    """Run several strategies over several seeds on one data set, with the same training budget.

    Each (strategy, seed) runs :func:`minisplit.grow` from ``make_net(seed)`` with
    ``config`` (strategy and seed replaced): the same optimiser, steps per round,
    plateau rule and budget for all. A reference run (:data:`REFERENCES`, e.g.
    "fixed") runs after the strategy it needs, for the same seed.

    Parameters
    ----------
    data : minisplit.datasets.Dataset
    make_net : callable
        ``seed -> Network``, the starting network.
    config : GrowthConfig or None
    strategies : sequence of str or None
        Distinct names from :data:`RUN_NAMES` (a reference needs its ``after`` strategy).
        None: :func:`applicable_runs` of the first seed's starting network.
    seeds : sequence of int
        Each an integer >= 0.
    progress : callable or None
        Receives :func:`minisplit.grow`'s events with ``"strategy"``, ``"seed"`` and
        ``"seconds"`` (since that run began) added, and for a reference run
        ``{"event": "reference", "text"}`` before it and ``{"event": "stop", "round": 0,
        "reason": "steps"}`` after it. With an ``executor``, a run's events arrive together
        when it has finished.
    checkpoint : str or os.PathLike or None
        A folder for the growth runs' checkpoints, one sub-folder each
        (``<strategy>/seed-<seed>``); checked before the first run.
    resume, overwrite : bool
        Passed to every :func:`minisplit.grow`: continue the runs a previous call left
        unfinished (finished ones are resumed at their end, so they cost nothing), or
        replace the checkpoints another comparison left there.
    executor : concurrent.futures.Executor or None
        Where the runs go: None runs them one after another here. Otherwise each growth
        run (with the reference runs that follow it, same seed) is one task submitted to
        ``executor`` -- a ``ProcessPoolExecutor``, a Dask client's ``get_executor()``...;
        the executor is not shut down. Every run is a function of its seed alone, so the
        result is bit-identical to the serial one (apart from the measured times). A
        process-based executor must be able to pickle ``make_net`` and ``data``: a
        module-level function or a ``functools.partial`` of one, not a lambda (Dask's
        cloudpickle takes lambdas too); with ``checkpoint``, its workers must see the folder.

    Returns
    -------
    Comparison
    """
    config = GrowthConfig() if config is None else check_type(config, "config", GrowthConfig)
    check_callable(make_net, "make_net", "a callable seed -> Network")
    seeds = list(seeds)
    if strategies is None:
        strategies = applicable_runs(make_net(check_int(seeds[0], "each seed", low=0)) if seeds
                                     else make_net(0))
    strategies = list(strategies)
    for name in strategies:
        check_choice(name, "each strategy", RUN_NAMES)
    if not strategies or len(set(strategies)) != len(strategies):
        raise ValueError(f"strategies must be distinct names of {RUN_NAMES}, got {strategies}")
    for name in strategies:
        if name in REFERENCES and REFERENCES[name].after not in strategies:
            raise ValueError(f'"{name}" needs the runs of "{REFERENCES[name].after}": include both')
    _check_references(strategies, make_net, seeds)
    seeds = [check_int(s, "each seed", low=0) for s in seeds]
    check_callable(progress, "progress", none=True)
    if executor is not None and not isinstance(executor, concurrent.futures.Executor):
        raise TypeError(f"executor must be a concurrent.futures.Executor or None, got "
                        f"{type(executor).__name__}")
    if checkpoint is not None:
        checkpoint = check_destination(checkpoint)
    chains = [  # each growth strategy, then the references that follow it
        [name, *(r for r in strategies if r in REFERENCES and REFERENCES[r].after == name)]
        for name in strategies if name not in REFERENCES
    ]
    jobs = [(seed, chain) for seed in seeds for chain in chains]
    parts = (data.X_train, data.y_train, data.X_test, data.y_test)
    task = (parts, make_net, config, checkpoint, resume, overwrite)
    results = {}  # (name, seed) -> GrowthResult
    if executor is None:
        for seed, chain in jobs:
            results.update(_run_chain(task, seed, chain, progress))
    else:
        futures = {executor.submit(_run_chain_remotely, task, seed, chain): (seed, chain)
                   for seed, chain in jobs}
        try:
            for future in concurrent.futures.as_completed(futures):
                done, events = _result(future)
                for event in events if progress is not None else ():
                    progress(event)
                results.update(done)
        finally:
            for future in futures:
                future.cancel()  # after a failure: the runs not started yet
    histories = {s: [results[s, seed].history for seed in seeds] for s in strategies}
    nets = {s: [results[s, seed].net for seed in seeds] for s in strategies}
    return Comparison(data.name, seeds, histories, nets)


@contextlib.contextmanager
def process_pool(jobs):
    """``with process_pool(jobs) as executor: compare(..., executor=executor)``.

    None (serial, in this process) for ``jobs == 1``; otherwise a
    ``ProcessPoolExecutor`` of ``jobs`` worker processes, started with "spawn" (no
    fork of a process whose BLAS already has threads), shut down on leaving the block.
    After a failure or Ctrl-C in the block, the runs not started are cancelled and the
    workers stopped at once. The ``--jobs`` option of the commands and benchmarks.
    """
    jobs = check_int(jobs, "jobs", low=1)
    if jobs == 1:
        yield None
        return
    pool = concurrent.futures.ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context(
        "spawn"))
    try:
        yield pool
    except BaseException:  # the runs still going would be thrown away: stop them now
        if hasattr(pool, "terminate_workers"):  # Python >= 3.14
            pool.terminate_workers()
        else:
            for process in list((pool._processes or {}).values()):
                process.terminate()  # a checkpoint snapshot is atomic: none is left torn
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _check_references(strategies, make_net, seeds) -> None:
    """ValueError now, before any training, if a reference cannot start from the network."""
    asked = [REFERENCES[name] for name in strategies
             if name in REFERENCES and REFERENCES[name].requires is not None]
    if asked:
        from minisplit.growth.sizes import growable_layers

        net = make_net(check_int(seeds[0], "each seed", low=0) if seeds else 0)
        for ref in asked:
            ref.requires(net, growable_layers(net))


def _result(future):
    """A task's result; a TypeError that says what to do if the executor could not pickle it."""
    try:
        return future.result()
    except (pickle.PicklingError, AttributeError) as err:
        if isinstance(err, AttributeError) and "pickle" not in str(err):
            raise
        raise TypeError(f"the executor cannot send the runs to its workers ({err}): make_net "
                        "must be a module-level function or a functools.partial of one, "
                        "not a lambda or a local function") from err


def _run_chain(task, seed, chain, progress) -> dict:
    """Run ``chain`` (a growth strategy, then the references that follow it) for ``seed``:
    ``{(name, seed): GrowthResult}``."""
    parts, make_net, config, checkpoint, resume, overwrite = task
    results = {}
    for name in chain:
        report = None if progress is None else _tagged(progress, name, seed)
        if name in REFERENCES:
            ref, grown = REFERENCES[name], results[REFERENCES[name].after, seed]
            run = dataclasses.replace(config, seed=seed, strategy=ref.after)
            if report is not None:
                report({"event": "reference", "text": ref.describe(grown)})
            result = ref.run(grown, make_net(seed), parts, run)
            if report is not None:
                report({"event": "stop", "round": 0, "reason": result.history.meta[
                    "stop_reason"]})
        else:
            run = dataclasses.replace(config, seed=seed, strategy=name)
            folder = None if checkpoint is None else os.path.join(
                checkpoint, name, f"seed-{seed}"
            )
            result = grow(make_net(seed), *parts[:2], run, *parts[2:], progress=report,
                          checkpoint=folder, resume=resume, overwrite=overwrite)
        results[name, seed] = result
    return results


def _run_chain_remotely(task, seed, chain) -> tuple:
    """:func:`_run_chain` in an executor's worker: the results and the progress events,
    which the caller replays (a callback cannot cross to another process)."""
    events = []
    return _run_chain(task, seed, chain, events.append), events


def _tagged(progress, strategy, seed):
    start = time.monotonic()
    return lambda event: progress({**event, "strategy": strategy, "seed": seed,
                                   "seconds": time.monotonic() - start})


#: Numeric columns of :meth:`Comparison.rows` that :meth:`Comparison.summary` averages.
SUMMARY_FIELDS = (
    "n_neurons", "params", "flops", "train_loss", "test_loss", "train_accuracy",
    "test_accuracy", "total_steps", "time_train", "time_split",
)
#: Round fields :meth:`Comparison.by_size` can tabulate.
METRICS = ("train_loss", "test_loss", "train_accuracy", "test_accuracy")


@dataclass(frozen=True)
class SizeCell:
    """A metric at one size over the seeds whose run trained at that size.

    ``median``, ``low`` (min), ``high`` (max), ``q1`` and ``q3`` (the 25th and 75th
    percentiles, linear interpolation) of the values; ``count`` how many seeds trained
    at exactly that size, of ``n_seeds``.
    """

    median: float
    low: float
    high: float
    count: int
    n_seeds: int
    q1: float = float("nan")
    q3: float = float("nan")

    @property
    def every_seed(self) -> bool:
        """Whether every seed's run trained at this size."""
        return self.count == self.n_seeds


@dataclass(frozen=True)
class Standing:
    """The matched sizes of two runs, and those where the reference was at least as good."""

    matched: list
    at_least_as_good: list

    @property
    def worse(self) -> list:
        """The matched sizes where the reference's median was worse."""
        return [n for n in self.matched if n not in self.at_least_as_good]


@dataclass
class Comparison:
    """Several growth strategies run over several seeds on one data set (:func:`compare`).

    Attributes
    ----------
    dataset : str
    seeds : list of int
    histories : dict {strategy: list of History}, one per seed, in ``seeds`` order.
    nets : dict {strategy: list of Network} or None
        The final networks (not written by :meth:`save`).
    """

    dataset: str
    seeds: list
    histories: dict
    nets: dict | None = None

    def by_size(self, metric) -> dict:
        """``{strategy: {n_neurons: SizeCell}}``: ``metric`` at the end of the round trained
        at each size, over the seeds whose run had that size (sizes ascending).

        A run that trained twice at one size (a surgery that added nothing) counts
        its last round there. Rounds whose metric is None (no test data) are skipped.

        Examples
        --------
        >>> import minisplit as ms
        >>> data = ms.datasets.load("rbf_teacher", n=40)
        >>> c = ms.compare(data, lambda s: ms.mlp([1, 2, 1], seed=s),
        ...                ms.GrowthConfig(budget=3, steps_per_round=20), ["splitting"], [0, 1])
        >>> cell = c.by_size("test_loss")["splitting"][3]
        >>> cell.count, cell.low <= cell.median <= cell.high
        (2, True)
        """
        check_choice(metric, "metric", METRICS)
        table = {}
        for strategy, runs in self.histories.items():
            at = {}  # size -> values over seeds
            for history in runs:
                last = {r.n_neurons: getattr(r, metric) for r in history.rounds}
                for size, value in last.items():
                    if value is not None:
                        at.setdefault(size, []).append(value)
            table[strategy] = {
                size: SizeCell(float(statistics.median(v)), float(min(v)), float(max(v)),
                               len(v), len(runs), *map(float, np.percentile(v, [25, 75])))
                for size, v in sorted(at.items())
            }
        return table

    def size_of(self, kind) -> dict:
        """``{strategy: {n_neurons: median of kind}}``: the parameters or FLOPs per sample of
        the networks at each size of :meth:`by_size` (the median over the seeds' rounds at
        that size; "neurons" gives the size itself), to draw a metric against cost.

        Examples
        --------
        >>> import minisplit as ms
        >>> data = ms.datasets.load("rbf_teacher", n=40)
        >>> c = ms.compare(data, lambda s: ms.mlp([1, 2, 1], seed=s),
        ...                ms.GrowthConfig(budget=3, steps_per_round=20), ["splitting"], [0])
        >>> c.size_of("params")["splitting"]     # 1-2-1 and 1-3-1: 3n + 1 parameters
        {2: 7.0, 3: 10.0}
        """
        kind = check_choice(kind, "kind", ("neurons", "params", "flops"))
        table = {}
        for strategy, runs in self.histories.items():
            at = {}
            for history in runs:
                last = {r.n_neurons: r for r in history.rounds}
                for size, r in last.items():
                    at.setdefault(size, []).append(size if kind == "neurons" else getattr(r, kind))
            table[strategy] = {size: float(statistics.median(v)) for size, v in sorted(at.items())}
        return table

    def standing(self, metric, reference="splitting") -> dict:
        """Where ``reference``'s median is at least as good as each other run's, size by size.

        A size is *matched* for ``reference`` and another run when every seed of both
        trained at it (:attr:`SizeCell.every_seed`), the starting size excepted (round 0
        is the same run for every strategy). "At least as good" is <= for a loss and >=
        for an accuracy.

        Returns
        -------
        dict {name: Standing}
            For every run but ``reference``.

        Examples
        --------
        >>> import minisplit as ms
        >>> data = ms.datasets.load("rbf_teacher", n=40)
        >>> c = ms.compare(data, lambda s: ms.mlp([1, 2, 1], seed=s),
        ...                ms.GrowthConfig(budget=4, steps_per_round=20),
        ...                ["splitting", "new_neurons"], [0, 1])
        >>> s = c.standing("train_loss")["new_neurons"]
        >>> s.matched, len(s.at_least_as_good) <= len(s.matched)
        ([3, 4], True)
        """
        check_choice(metric, "metric", METRICS)
        check_choice(reference, "reference", list(self.histories))
        table = self.by_size(metric)
        start = {h.rounds[0].n_neurons for h in self.histories[reference]}
        mine = {n: c for n, c in table[reference].items() if c.every_seed and n not in start}
        larger = metric.endswith("accuracy")
        out = {}
        for name, cells in table.items():
            if name == reference:
                continue
            matched = [n for n in mine if n in cells and cells[n].every_seed]
            good = [n for n in matched
                    if (mine[n].median >= cells[n].median if larger
                        else mine[n].median <= cells[n].median)]
            out[name] = Standing(matched, good)
        return out

    def rows(self) -> list[dict]:
        """One table row per (strategy, seed): final sizes, losses, accuracies, steps, times."""
        out = []
        for strategy, runs in self.histories.items():
            for seed, h in zip(self.seeds, runs):
                last = h.rounds[-1]
                row = {"strategy": strategy, "seed": seed, "rounds": len(h.rounds) - 1}
                row.update({k: getattr(last, k) for k in ("neurons", *SUMMARY_FIELDS[:8])})
                row["time_train"] = float(sum(h.column("time_train")))
                row["time_split"] = float(sum(h.column("time_split")))
                row["stop_reason"] = h.meta.get("stop_reason")
                out.append(row)
        return out

    def summary(self) -> list[dict]:
        """Per strategy, the mean and standard deviation over seeds of :data:`SUMMARY_FIELDS`."""
        rows, out = self.rows(), []
        for strategy in self.histories:
            mine = [r for r in rows if r["strategy"] == strategy]
            entry = {"strategy": strategy, "seeds": len(mine)}
            for name in SUMMARY_FIELDS:
                values = [r[name] for r in mine if r[name] is not None]
                entry[f"{name}_mean"] = float(np.mean(values)) if values else None
                entry[f"{name}_std"] = float(np.std(values)) if values else None
            out.append(entry)
        return out

    def to_json(self) -> str:
        """The comparison (histories, not networks) as JSON text."""
        doc = {
            "format": FORMAT, "version": VERSION, "dataset": self.dataset, "seeds": self.seeds,
            "histories": {s: [h.to_dict() for h in hs] for s, hs in self.histories.items()},
        }
        return json.dumps(doc, sort_keys=True)

    def save(self, path) -> None:
        """Write :meth:`to_json` to ``path`` atomically."""
        write_text_atomic(path, self.to_json())

    @classmethod
    def load(cls, path) -> Comparison:
        """Read a comparison written by :meth:`save` (``nets`` is None).

        Raises
        ------
        FileNotFoundError
            If nothing exists at ``path``.
        ValueError
            For anything that is not a comparison file of a version this minisplit reads.
        """
        where = repr(os.fspath(path))
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
        except (ValueError, RecursionError) as err:  # JSONDecodeError, UnicodeDecodeError
            raise ValueError(f"{where} is not a minisplit comparison file: {err}") from err
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValueError(f"{where} is not a minisplit comparison file: no format tag "
                             f"{FORMAT!r}")
        version = doc.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= VERSION:
            raise ValueError(f"{where} has comparison version {version!r}; this minisplit "
                             f"reads 1..{VERSION}")
        try:
            histories = {s: [History.from_dict(h) for h in hs]
                         for s, hs in doc["histories"].items()}
            return cls(str(doc["dataset"]), list(doc["seeds"]), histories)
        except (KeyError, TypeError, AttributeError, ValueError) as err:
            raise ValueError(f"{where} is a damaged comparison file: {err!r}") from err
