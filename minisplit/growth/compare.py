"""Several strategies over several seeds on one data set, with the same training budget."""

from __future__ import annotations

import dataclasses

from minisplit import baselines
from minisplit.growth.config import GrowthConfig
from minisplit.growth.loop import grow, train_fixed
from minisplit.history import Comparison


def compare(
    data, make_net, config=None, strategies=(*baselines.STRATEGIES, "fixed"), seeds=(0,),
    progress=None,
) -> Comparison:
    """Run several strategies over several seeds on one data set, with the same training budget.

    Each (strategy, seed) runs :func:`grow` from ``make_net(seed)`` with
    ``config`` (strategy and seed replaced): the same optimiser, steps per round,
    plateau rule and budget for all. "fixed" trains the final architecture of
    the same seed's "splitting" run from scratch for that run's total steps.

    Parameters
    ----------
    data : minisplit.datasets.Dataset
    make_net : callable
        ``seed -> Network``, the starting network.
    config : GrowthConfig or None
    strategies : sequence of str
        From :data:`minisplit.baselines.STRATEGIES` and "fixed" ("fixed" needs "splitting").
    seeds : sequence of int
    progress : callable or None
        Receives :func:`grow`'s events with ``"strategy"`` and ``"seed"`` added.

    Returns
    -------
    Comparison
        ``rows()`` gives one table row per (strategy, seed).
    """
    config = GrowthConfig() if config is None else config
    strategies, seeds = list(strategies), [int(s) for s in seeds]
    unknown = [s for s in strategies if s not in (*baselines.STRATEGIES, "fixed")]
    if unknown or not strategies or len(set(strategies)) != len(strategies):
        raise ValueError(f"strategies must be distinct names of {baselines.STRATEGIES} or "
                         f"'fixed', got {strategies}")
    if "fixed" in strategies and "splitting" not in strategies:
        raise ValueError('"fixed" trains the final architecture of "splitting": include both')
    if not callable(make_net):
        raise TypeError(f"make_net must be a callable seed -> Network, got {make_net!r}")
    histories, nets = {s: [] for s in strategies}, {s: [] for s in strategies}
    parts = (data.X_train, data.y_train, data.X_test, data.y_test)
    for seed in seeds:
        for strategy in sorted(strategies, key=lambda s: s == "fixed"):  # fixed after splitting
            if strategy == "fixed":
                final, steps = nets["splitting"][-1], histories["splitting"][-1].total_steps
                run = dataclasses.replace(config, seed=seed, strategy="splitting")
                result = train_fixed(final, parts[0], parts[1], run, steps, *parts[2:])
            else:
                run = dataclasses.replace(config, seed=seed, strategy=strategy)
                report = None if progress is None else _tagged(progress, strategy, seed)
                result = grow(make_net(seed), *parts[:2], run, *parts[2:], progress=report)
            histories[strategy].append(result.history)
            nets[strategy].append(result.net)
    return Comparison(data.name, seeds, histories, nets)


def _tagged(progress, strategy, seed):
    return lambda event: progress({**event, "strategy": strategy, "seed": seed})
