"""Training: descent, purity, bit-for-bit determinism, the plateau rule, mini-batches."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minisplit import SGD, Adam, Plateau, datasets, mlp, train
from minisplit.training import minibatches


def rbf_problem():
    X, y = datasets.rbf_teacher(n=30, seed=0)
    return mlp([1, 4, 1], activation="tanh", seed=0), X, y


@pytest.mark.parametrize("make", [lambda: SGD(lr=0.1), lambda: Adam(lr=0.05)])
def test_train_decreases_the_loss_on_a_tiny_regression(make):
    net, X, y = rbf_problem()
    result = train(net, X, y, make(), steps=150, batch_size=10, rng=0)
    assert result.steps_run == 150 and not result.plateaued
    assert len(result.losses) == 150
    assert result.net.loss(X, y) < 0.1 * net.loss(X, y)


def test_train_leaves_net_and_data_alone():
    net, X, y = rbf_problem()
    params, X0, y0 = [p.copy() for p in net.params], X.copy(), y.copy()
    result = train(net, X, y, SGD(lr=0.1), steps=20, batch_size=7, rng=1)
    assert result.net is not net
    for p, p0 in zip(net.params, params):
        np.testing.assert_array_equal(p, p0)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)
    assert not all(np.array_equal(p, q) for p, q in zip(result.net.params, params))


def test_zero_steps_returns_a_copy():
    net, X, y = rbf_problem()
    result = train(net, X, y, SGD(), steps=0)
    assert result.net is not net and result.losses == [] and result.steps_run == 0
    for p, q in zip(result.net.params, net.params):
        np.testing.assert_array_equal(p, q)


def run(seed, steps=40):
    net, X, y = rbf_problem()
    return train(net, X, y, Adam(lr=0.05), steps=steps, batch_size=8, rng=seed)


def test_same_seed_is_bit_identical_and_another_seed_is_not():
    a, b = run(7), run(np.random.default_rng(7))
    assert a.losses == b.losses
    for p, q in zip(a.net.params, b.net.params):
        np.testing.assert_array_equal(p, q)
    assert run(8).losses != a.losses


def test_optimizer_state_carries_across_calls():
    # 10 + 10 full-batch steps with one optimiser == 20 steps in one call, bit for bit.
    net, X, y = rbf_problem()
    opt = SGD(lr=0.1, momentum=0.9)
    first = train(net, X, y, opt, steps=10)
    second = train(first.net, X, y, opt, steps=10)
    whole = train(net, X, y, SGD(lr=0.1, momentum=0.9), steps=20)
    assert first.losses + second.losses == whole.losses
    for p, q in zip(second.net.params, whole.net.params):
        np.testing.assert_array_equal(p, q)


def test_log_every_records_every_kth_step_without_changing_training():
    every = run(3, steps=10)
    net, X, y = rbf_problem()
    sparse = train(net, X, y, Adam(lr=0.05), steps=10, batch_size=8, rng=3, log_every=3)
    assert sparse.losses == every.losses[::3]  # steps 0, 3, 6, 9
    for p, q in zip(sparse.net.params, every.net.params):
        np.testing.assert_array_equal(p, q)


def least_squares(at_optimum):
    """A linear model on noisy linear data, at its exact least-squares optimum or at zero."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-3, 3, size=(20, 2))  # (20, 2)
    y = X @ np.array([[1.0], [-2.0]]) + 0.5 + 0.3 * rng.standard_normal((20, 1))  # (20, 1)
    net = mlp([2, 1], seed=0)  # one Dense layer, identity output: F = X W^T + b
    coef = np.linalg.lstsq(np.hstack([X, np.ones((20, 1))]), y, rcond=None)[0]  # (3, 1)
    params = [coef[:2].T, coef[2]] if at_optimum else [np.zeros((1, 2)), np.zeros(1)]
    return net.with_params(params), X, y


def test_plateau_stops_a_net_already_at_its_optimum():
    net, X, y = least_squares(at_optimum=True)
    gd, rule = SGD(lr=0.01, momentum=0.0), Plateau(window=5, rel_tol=1e-6)
    result = train(net, X, y, gd, steps=100, plateau=rule)
    # the rule first has two full windows after the 10th recorded loss (step 9)
    assert result.plateaued and result.steps_run == 9 and len(result.losses) == 10
    assert result.net.loss(X, y) == pytest.approx(net.loss(X, y), rel=1e-12)


def test_plateau_does_not_stop_a_loss_that_keeps_improving():
    net, X, y = least_squares(at_optimum=False)
    gd, rule = SGD(lr=0.01, momentum=0.0), Plateau(window=5, rel_tol=1e-6)
    result = train(net, X, y, gd, steps=100, plateau=rule)
    assert not result.plateaued and result.steps_run == 100
    assert np.all(np.diff(result.losses) < 0)


@pytest.mark.parametrize(
    "losses, rule, reached",
    [
        ([4.0, 4.0, 2.0, 2.0], Plateau(2, 0.01), False),  # halved: improving
        ([1.0, 1.0, 1.0, 1.0], Plateau(2, 0.01), True),  # flat
        ([1.0, 1.0, 2.0, 2.0], Plateau(2, 0.01), True),  # worse
        ([0.0, 0.0, 0.0, 0.0], Plateau(2, 0.0), True),  # flat at zero
        ([4.0, 4.0, 2.0, 2.0], Plateau(2, 0.5), True),  # 4 - 2 <= 0.5 * 4: the boundary
        ([4.0, 4.0, 1.9, 1.9], Plateau(2, 0.5), False),  # 4 - 1.9 > 0.5 * 4
        ([5.0, 1.0, 1.0], Plateau(2, 0.01), False),  # fewer than two windows
        ([100.0, 1.0, 1.0, 1.0, 1.0], Plateau(2, 0.01), True),  # only the last 2w count
        ([3.0, 2.0], Plateau(1, 0.1), False),  # window 1: last step against the one before
    ],
)
def test_plateau_rule_on_hand_made_sequences(losses, rule, reached):
    assert rule.reached(losses) is reached


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 30), batch_size=st.integers(1, 35), seed=st.integers(0, 2**32 - 1))
def test_minibatches_cover_every_index_once_per_epoch(n, batch_size, seed):
    per_epoch = math.ceil(n / batch_size)
    batches = minibatches(n, batch_size, rng=seed)
    again = minibatches(n, batch_size, rng=seed)
    for _ in range(3):
        epoch = [next(batches) for _ in range(per_epoch)]
        assert [b.size for b in epoch[:-1]] == [batch_size] * (per_epoch - 1)
        assert epoch[-1].size == n - batch_size * (per_epoch - 1)
        np.testing.assert_array_equal(np.sort(np.concatenate(epoch)), np.arange(n))
        for b in epoch:
            np.testing.assert_array_equal(b, next(again))


def test_epochs_are_reshuffled():
    batches = minibatches(20, 20, rng=0)
    assert not np.array_equal(next(batches), next(batches))


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"steps": -1}, ValueError, "steps must be an integer >= 0, got -1"),
        ({"steps": 2.5}, TypeError, "steps must be an integer >= 0, got 2.5"),
        ({"batch_size": 0, "rng": 0}, ValueError, "batch_size must be an integer >= 1, got 0"),
        ({"batch_size": 2.0, "rng": 0}, TypeError, "batch_size must be an integer >= 1, got 2.0"),
        ({"batch_size": 4}, TypeError, "rng must be an integer >= 0 or a np.random.Generator when"),
        ({"log_every": 0}, ValueError, "log_every must be an integer >= 1, got 0"),
        ({"plateau": 5}, TypeError, "plateau must be a Plateau"),
    ],
)
def test_bad_train_arguments_are_refused(kwargs, error, message):
    net, X, y = rbf_problem()
    with pytest.raises(error, match=message):
        train(net, X, y, SGD(), **{"steps": 3, **kwargs})


def test_mismatched_data_is_refused():
    net, X, y = rbf_problem()
    with pytest.raises(ValueError, match=r"y must have one row per sample of X \(30\)"):
        train(net, X, y[:-1], SGD(), steps=1)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"window": 0}, ValueError, "window must be an integer >= 1, got 0"),
        ({"window": 1.5}, TypeError, "window must be an integer >= 1, got 1.5"),
        ({"rel_tol": -0.1}, ValueError, "rel_tol must be a finite number >= 0, got -0.1"),
        ({"rel_tol": float("nan")}, ValueError, "rel_tol must be a finite number >= 0, got nan"),
        ({"rel_tol": "0.1"}, TypeError, "rel_tol must be a finite number >= 0, got '0.1'"),
    ],
)
def test_bad_plateau_settings_are_refused(kwargs, error, message):
    with pytest.raises(error, match=message):
        Plateau(**kwargs)
