"""compare on a concurrent.futures executor: the same result as the serial run, bit for bit.

Every run is a function of its seed, so a process pool, a thread pool or a Dask cluster
must give the very histories and networks the serial loop gives; only the measured times
differ. The starting networks come from ``functools.partial(mlp, ...)``, which pickles.
"""

from __future__ import annotations

import concurrent.futures
import functools
import threading

import numpy as np
import pytest
from _records import timeless

from minisplit import GrowthConfig, compare, datasets, mlp
from minisplit.growth import process_pool

STRATEGIES = ("splitting", "random_split", "new_neurons", "fixed", "scratch")
MAKE_NET = functools.partial(mlp, [2, 2, 2], "tanh", "cross_entropy", "identity")  # seed


@pytest.fixture(scope="module")
def problem():
    data = datasets.load("blobs", n=60, n_classes=2)
    config = GrowthConfig(steps_per_round=40, budget=4, fraction=0.5)
    return data, config


@pytest.fixture(scope="module")
def serial(problem):
    events = []
    result = compare(*problem[:1], MAKE_NET, problem[1], STRATEGIES, (0, 1, 2),
                     progress=events.append)
    return result, events


def assert_same(result, serial):
    assert timeless(result) == timeless(serial)
    for name in STRATEGIES:
        for net, reference in zip(result.nets[name], serial.nets[name], strict=True):
            for p, q in zip(net.params, reference.params, strict=True):
                assert np.array_equal(p, q)


def runs_of(events) -> dict:
    """Each run's events in order, without the measured seconds."""
    runs = {}
    for event in events:
        key = (event["strategy"], event["seed"])
        runs.setdefault(key, []).append({k: v for k, v in event.items() if k != "seconds"})
    return runs


@pytest.mark.parametrize("kind", ["threads", "processes"])
def test_an_executor_gives_the_serial_result_bit_for_bit(problem, serial, kind):
    data, config = problem
    events = []
    if kind == "threads":
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            result = compare(data, MAKE_NET, config, STRATEGIES, (0, 1, 2), events.append,
                             executor=pool)
    else:
        with process_pool(2) as pool:
            assert isinstance(pool, concurrent.futures.ProcessPoolExecutor)
            result = compare(data, MAKE_NET, config, STRATEGIES, (0, 1, 2), events.append,
                             executor=pool)
    assert_same(result, serial[0])
    # every run's progress arrives, in its order, with its own elapsed seconds
    assert runs_of(events) == runs_of(serial[1])
    assert all(e["seconds"] >= 0 for e in events)
    stops = [e for e in events if e["event"] == "stop"]
    assert len(stops) == len(STRATEGIES) * 3


def test_one_job_is_the_serial_loop():
    with process_pool(1) as pool:
        assert pool is None
    for bad in (0, -2, 1.5, "2"):
        with pytest.raises((ValueError, TypeError), match="jobs"):
            with process_pool(bad):
                pass


class Boom(Exception):
    pass


def failing_net(seed):
    if seed == 1:
        raise Boom("no network for seed 1")
    return MAKE_NET(seed)


def test_a_failing_run_fails_the_comparison_and_cancels_the_rest(problem):
    data, config = problem
    submitted = []
    released = threading.Event()

    class Recording(concurrent.futures.ThreadPoolExecutor):
        def submit(self, fn, *args, **kwargs):
            future = super().submit(fn, *args, **kwargs)
            submitted.append(future)
            return future

    def gated_net(seed):
        # seeds after the failing one wait until the comparison has failed, so the runs
        # queued behind them are still queued when compare cancels (however fast a run is)
        if seed > 1:
            released.wait(timeout=60)
        return failing_net(seed)

    pool = Recording(1)
    try:
        with pytest.raises(Boom, match="seed 1"):
            compare(data, gated_net, config, ("splitting", "fixed"), range(6), executor=pool)
    finally:
        released.set()
        pool.shutdown(wait=True)
    assert len(submitted) == 6
    assert sum(f.cancelled() for f in submitted) == 3  # seeds 3, 4, 5 never ran


def test_an_executor_must_be_an_executor(problem):
    data, config = problem
    with pytest.raises(TypeError, match="concurrent.futures.Executor"):
        compare(data, MAKE_NET, config, ("splitting",), executor=4)


def test_a_network_maker_that_cannot_pickle_is_named(problem):
    data, config = problem

    def local(seed):
        return MAKE_NET(seed)

    for make_net in (lambda seed: MAKE_NET(seed), local):
        with process_pool(2) as pool, pytest.raises(TypeError, match="module-level function"):
            compare(data, make_net, config, ("splitting",), executor=pool)


def test_a_local_dask_cluster_gives_the_serial_result(problem, serial):
    distributed = pytest.importorskip("distributed")
    data, config = problem
    events = []
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        result = compare(data, MAKE_NET, config, STRATEGIES, (0, 1, 2), events.append,
                         executor=client.get_executor())
    assert_same(result, serial[0])
    assert runs_of(events) == runs_of(serial[1])
