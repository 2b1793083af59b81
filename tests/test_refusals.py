"""Mistakes a careless or hostile user makes, each refused with an error naming the argument.

One table per class of mistake; every row is a call, the exception it must raise, and the
words the message must contain. A raw library error (NumPy's SeedSequence, SciPy's "array
must not contain infs", ZeroDivisionError, AttributeError, IndexError) is a failure.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pytest

import minisplit as ms
from minisplit.growth import checkpoint as ckpt


def _net():
    return ms.mlp([2, 3, 1], seed=0)


X2, Y1 = np.ones((4, 2)), np.zeros((4, 1))


def _config(**kw):
    return lambda: ms.GrowthConfig(**kw)


# ---- configs and seeds ---------------------------------------------------------------------

SEEDS = [
    (lambda: ms.mlp([2, 3, 1], seed="0"), TypeError, "seed must be an integer >= 0"),
    (lambda: ms.mlp([2, 3, 1], seed=-1), ValueError, "seed must be an integer >= 0"),
    (lambda: ms.mlp([2, 3, 1], seed=1.5), TypeError, "seed must be an integer >= 0"),
    (lambda: ms.mlp([2, 3, 1], seed=True), TypeError, "seed must be an integer >= 0"),
    (lambda: ms.datasets.moons(seed=True), TypeError, "seed must be an integer >= 0"),
    (lambda: ms.datasets.moons(seed=None), TypeError, "seed must be an integer >= 0"),
    (_config(seed=True), TypeError, "seed must be an integer >= 0"),
    (_config(seed=-3), ValueError, "seed must be an integer >= 0"),
    (_config(seed="7"), TypeError, "seed must be an integer >= 0"),
    (_config(relu_surrogate="3"), TypeError, "relu_surrogate must be None or a finite"),
    (_config(k=True), TypeError, "k must be an integer"),
    (_config(steps_per_round=10.0), TypeError, "steps_per_round must be an integer"),
]


@pytest.mark.parametrize("call, error, words", SEEDS)
def test_bad_seeds_and_settings_are_refused(call, error, words):
    with pytest.raises(error, match=words):
        call()


def test_numpy_scalars_in_a_config_are_accepted_and_normalised(tmp_path):
    config = ms.GrowthConfig(seed=np.int64(2), lr=np.float32(0.02), fraction=np.float32(0.3),
                             budget=np.int32(3), steps_per_round=np.int16(20))
    assert (type(config.seed), type(config.lr), type(config.budget)) == (int, float, float)
    assert config.fraction == 0.3 and config.lr == 0.02  # the decimals the user wrote
    X, y = ms.datasets.rbf_teacher(n=16, seed=0)
    result = ms.grow(ms.mlp([1, 2, 1], seed=0), X, y, config, checkpoint=tmp_path / "ck")
    json.dumps(result.history.to_dict())  # the config reaches JSON without a NumPy type


def test_a_float32_fraction_chooses_what_the_decimal_says():
    values = np.linspace(-1.0, -0.1, 10)
    assert ms.select_fraction({0: values}, np.float32(0.3))[0].size == 3
    assert ms.select_fraction({0: values}, 0.3)[0].size == 3


# ---- programming mistakes -----------------------------------------------------------------

MISTAKES = [
    (lambda: ms.Network([1, 2]), TypeError, r"layers\[0\] must be a Layer"),
    (lambda: ms.Network([]), ValueError, "layers must be a non-empty list"),
    (lambda: ms.Dense(3, 2).out_weights(0), ValueError, "n_units must be an integer >= 1"),
    (lambda: ms.RBF(1, 1, width=1e-300), ValueError, "width must be a finite number > 0 whose"),
    (lambda: ms.count_flops(None, X2), TypeError, "net must be a Network"),
    (lambda: ms.splitting_indices(None, X2, Y1, 0), TypeError, "net must be a Network"),
    (lambda: ms.split(None, 0, [0], np.ones((1, 3)), 0.1), TypeError, "net must be a Network"),
    (lambda: ms.train(None, X2, Y1, ms.SGD(), 1), TypeError, "net must be a Network"),
    (lambda: ms.grow(None, X2, Y1), TypeError, "net must be a Network"),
    (lambda: ms.Dense(10**6, 10**6), MemoryError, r"Dense\(n_in=1000000, n_out=1000000"),
    (lambda: ms.mlp(3), TypeError, "sizes must be a sequence of integers, got 3"),
]


@pytest.mark.parametrize("call, error, words", MISTAKES)
def test_programming_mistakes_are_named(call, error, words):
    with pytest.raises(error, match=words):
        call()


# ---- accepted although wrong ------------------------------------------------------------------


def _with(params):
    return lambda: _net().with_params(params)


P = _net().params
WRONG = [
    (_with([P[0] * np.nan, *P[1:]]), ValueError, "W must be finite"),
    (_with([P[0], P[1] + np.inf, *P[2:]]), ValueError, "b must be finite"),
    (_with([P[0] * 1j, *P[1:]]), TypeError, "W must hold real numbers, got dtype complex"),
    (lambda: ms.split(_net(), 0, [0], np.full((1, 3), 10.0), 1e308), ValueError,
     "eps=1e\\+308 times the directions leaves the floating-point range"),
    (lambda: ms.carry_state(_net(), 0, P, [0.7]), TypeError, "parents must be integer indices"),
    (lambda: ms.signed_split(_net(), 0, [0], np.ones((1, 3)), 0.0, alpha=1e15), ValueError,
     "alpha must be a finite number > 0 and <= 1000"),
    (lambda: ms.splitting_indices(_net(), X2, Y1, 0, relu_surrogate="3"), TypeError,
     "relu_surrogate must be a finite number > 0, got .3. of type str"),
]


@pytest.mark.parametrize("call, error, words", WRONG)
def test_wrong_values_are_no_longer_accepted(call, error, words):
    with pytest.raises(error, match=words):
        call()


def test_the_largest_signed_split_keeps_the_function_to_rounding():
    net, X = _net(), np.random.default_rng(0).uniform(-2, 2, (8, 2))
    F = net.forward(X)
    twin = ms.signed_split(net, 0, [1], np.ones((1, 3)) / np.sqrt(3), 0.0, alpha=1000.0)
    assert np.max(np.abs(twin.forward(X) - F)) <= 3e-13 * np.max(np.abs(F))


# ---- divergence and overflow, reported where they happen ---------------------------------------


def test_a_learning_rate_that_explodes_the_loss_is_reported_as_divergence():
    X, y = ms.datasets.rbf_teacher(n=16, seed=0)
    with np.errstate(all="ignore"), pytest.raises(ms.training.DivergenceError, match="lower the"):
        ms.train(ms.mlp([1, 3, 1], seed=0), X, y, ms.SGD(lr=1e6, momentum=0.0), steps=50)


def test_a_huge_learning_rate_in_grow_does_not_end_as_stable():
    X, y = ms.datasets.rbf_teacher(n=16, seed=0)
    with np.errstate(all="ignore"), pytest.raises(ms.training.DivergenceError, match="diverged"):
        ms.grow(ms.mlp([1, 2, 1], seed=0), X, y, ms.GrowthConfig(lr=1e300, steps_per_round=20))


def test_splitting_matrices_that_overflow_say_so():
    with np.errstate(all="ignore"), pytest.raises(FloatingPointError, match="rescale the inputs"):
        ms.splitting_indices(_net(), np.full((4, 2), 1e200), Y1, 0)


# ---- files ----------------------------------------------------------------------------------


def test_a_network_file_claiming_a_huge_architecture_is_refused_quickly(tmp_path):
    """The header's sizes are compared with the stored arrays before anything is allocated."""
    path = tmp_path / "net.npz"
    ms.save(_net(), path)
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    header = json.loads(arrays["__minisplit__"].tobytes())
    header["layers"][0]["config"]["n_out"] = 10**9  # a billion neurons, three stored
    arrays["__minisplit__"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    np.savez(path, **arrays)
    assert os.path.getsize(path) < 5000
    with pytest.raises(ValueError, match=r"W must have shape \(1000000000, 2\), got \(3, 2\)"):
        ms.load(path)


def test_a_deeply_nested_header_is_a_value_error(tmp_path):
    path = tmp_path / "net.npz"
    deep = ("[" * 100000 + "]" * 100000).encode()
    np.savez(path, __minisplit__=np.frombuffer(deep, np.uint8))
    with pytest.raises(ValueError, match="not UTF-8 JSON"):
        ms.load(path)


@pytest.mark.parametrize("text", ["{", "[" * 100000, '{"format": "minisplit.comparison"}',
                                  '{"format": "minisplit.comparison", "version": 99}',
                                  '{"format": "minisplit.comparison", "version": 1}'])
def test_a_damaged_comparison_file_is_a_value_error(tmp_path, text):
    path = tmp_path / "c.json"
    path.write_text(text)
    with pytest.raises(ValueError, match="comparison"):
        ms.Comparison.load(path)


@pytest.mark.parametrize("text", ["[" * 100000, '{"format": "minisplit.history", "version": 1, '
                                  '"meta": {}, "rounds": [{"round": 0}]}'])
def test_a_damaged_history_file_is_a_value_error(tmp_path, text):
    path = tmp_path / "h.json"
    path.write_text(text)
    with pytest.raises(ValueError):
        ms.History.load(path)


@pytest.mark.parametrize("missing", ["state.json", "network.npz", "optimizer.npz"])
def test_checkpoint_errors_are_value_errors_whatever_file_is_missing(tmp_path, missing):
    X, y = ms.datasets.rbf_teacher(n=16, seed=0)
    config = dataclasses.replace(ms.GrowthConfig(), max_rounds=1, steps_per_round=10)
    ms.grow(ms.mlp([1, 2, 1], seed=0), X, y, config, checkpoint=tmp_path)
    (snapshot,) = [e for e in os.listdir(tmp_path) if e.startswith("snapshot-")]
    (tmp_path / snapshot / missing).unlink()
    with pytest.raises(ValueError, match="damaged or incomplete"):
        ckpt.load_checkpoint(tmp_path)
