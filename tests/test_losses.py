"""Losses: gradient and R-operator against finite differences, stability, target checks."""

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from minisplit import LOSSES, get_loss, gradcheck
from minisplit.losses import MSE, CrossEntropy


def problem(loss_name, n, k, seed):
    """Outputs F (n, k) in [-3, 3] and matching targets, from one seed."""
    rng = np.random.default_rng(seed)
    F = rng.uniform(-3.0, 3.0, size=(n, k))  # (n, k)
    if loss_name == "mse":
        return F, rng.uniform(-3.0, 3.0, size=(n, k))  # (n, k)
    return F, rng.integers(0, k, size=n)  # (n,)


def value_grad_rop(loss, y, shape):
    """The loss as functions of the flat output vector, for gradcheck."""

    def fun(f):
        return loss.forward(f.reshape(shape), y)[0]

    def grad(f):
        _, cache = loss.forward(f.reshape(shape), y)
        return loss.backward(cache).ravel()

    def rop(f, u):
        _, cache = loss.forward(f.reshape(shape), y)
        return loss.r_backward(cache, u.reshape(shape)).ravel()

    return fun, grad, rop


problems = {
    "loss_name": st.sampled_from(sorted(LOSSES)),
    "n": st.integers(1, 4),
    "k": st.integers(2, 5),
    "seed": st.integers(0, 2**32 - 1),
}


@settings(max_examples=40, deadline=None)
@given(**problems)
@example(loss_name="cross_entropy", n=1, k=2, seed=0)
@example(loss_name="mse", n=1, k=2, seed=0)
def test_gradient_matches_finite_differences(loss_name, n, k, seed):
    F, y = problem(loss_name, n, k, seed)
    fun, grad, _ = value_grad_rop(get_loss(loss_name), y, F.shape)
    assert gradcheck.gradient_error(fun, grad, F.ravel(), seed=seed) < gradcheck.TOLERANCE


@settings(max_examples=40, deadline=None)
@given(**problems)
@example(loss_name="cross_entropy", n=1, k=2, seed=0)
def test_r_operator_matches_finite_differences_of_gradient(loss_name, n, k, seed):
    F, y = problem(loss_name, n, k, seed)
    _, grad, rop = value_grad_rop(get_loss(loss_name), y, F.shape)
    assert gradcheck.hvp_error(grad, rop, F.ravel(), seed=seed) < gradcheck.TOLERANCE


def test_mse_by_hand():
    # F = [[1, 2], [0, 0]], y = [[0, 0], [0, 1]]: E = [[1, 2], [0, -1]]
    # L = (1 + 4 + 0 + 1) / (2 * 2) = 1.5, dF = E / 2
    loss = MSE()
    F, y = np.array([[1.0, 2.0], [0.0, 0.0]]), np.array([[0.0, 0.0], [0.0, 1.0]])
    value, cache = loss.forward(F, y)
    assert value == 1.5
    np.testing.assert_array_equal(loss.backward(cache), [[0.5, 1.0], [0.0, -0.5]])


def test_cross_entropy_by_hand():
    # F = [[0, log 3]], y = [1]: P = [1/4, 3/4], L = -log(3/4), dF = P - [0, 1] = [1/4, -1/4]
    loss = CrossEntropy()
    value, cache = loss.forward(np.array([[0.0, np.log(3.0)]]), np.array([1]))
    assert value == pytest.approx(-np.log(0.75), abs=1e-15)
    np.testing.assert_allclose(loss.backward(cache), [[0.25, -0.25]], atol=1e-15)


def test_cross_entropy_stable_for_logits_of_1e3():
    loss = CrossEntropy()
    F = np.array([[1e3, -1e3, 0.0], [1e3, 1e3, -1e3]])  # (2, 3)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value, cache = loss.forward(F, np.array([1, 0]))
        dF = loss.backward(cache)
        R_dF = loss.r_backward(cache, np.ones_like(F))
    # sample 0: -log p_1 = 2000; sample 1: -log(1/2) = log 2
    assert value == pytest.approx((2000.0 + np.log(2.0)) / 2, rel=1e-15)
    # dF = (P - onehot) / N with P = [1, 0, 0] and [1/2, 1/2, 0]
    np.testing.assert_allclose(dF, [[0.5, -0.5, 0.0], [-0.25, 0.25, 0.0]], atol=1e-15)
    # adding a constant to all logits of a row changes nothing: R-image is zero
    np.testing.assert_allclose(R_dF, 0.0, atol=1e-15)


def test_forward_does_not_modify_inputs():
    F, y = problem("mse", 3, 2, 0)
    F0, y0 = F.copy(), y.copy()
    loss = MSE()
    _, cache = loss.forward(F, y)
    loss.backward(cache)
    loss.r_backward(cache, np.ones_like(F))
    np.testing.assert_array_equal(F, F0)
    np.testing.assert_array_equal(y, y0)


# ------------------------------------------------------------------------------ target checks


@pytest.mark.parametrize(
    ("y", "error", "message"),
    [
        (np.zeros((3, 1)), ValueError, r"y must have shape \(3, 2\) for mse, got \(3, 1\)"),
        (np.zeros(3), ValueError, r"y must have shape \(3, 2\) for mse, got \(3,\)"),
        (np.full((3, 2), "a"), TypeError, r"y must hold real numbers for mse, got dtype <U1"),
        (
            np.zeros((3, 2), dtype=complex),
            TypeError,
            r"y must hold real numbers for mse, got dtype complex128",
        ),
        (np.array([[0.0, np.nan]] * 3), ValueError, r"y must be finite, got 3 NaN/inf"),
        (np.array([[np.inf, 0.0]] * 3), ValueError, r"y must be finite, got 3 NaN/inf"),
    ],
)
def test_mse_rejects_bad_targets(y, error, message):
    with pytest.raises(error, match=message):
        MSE().check_targets(y, 3, 2)


@pytest.mark.parametrize(
    ("y", "error", "message"),
    [
        (np.array([0, 1, 3]), ValueError, r"labels must lie in \[0, 3\), got values in \[0, 3\]"),
        (np.array([0, -1, 2]), ValueError, r"labels must lie in \[0, 3\), got values in \[-1, 2\]"),
        (np.array([0.0, 1.5, 2.0]), ValueError, "y must hold integer class labels"),
        (np.array([0.0, np.nan, 2.0]), ValueError, "y must be finite"),
        (
            np.array(["a", "b", "c"]),
            TypeError,
            "y must hold integer class labels for cross_entropy, got dtype <U1",
        ),
        (np.zeros((3, 1), dtype=int), ValueError, r"y must have shape \(3,\) .* got \(3, 1\)"),
        (np.zeros(2, dtype=int), ValueError, r"y must have shape \(3,\) .* got \(2,\)"),
    ],
)
def test_cross_entropy_rejects_bad_targets(y, error, message):
    with pytest.raises(error, match=message):
        CrossEntropy().check_targets(y, 3, 3)


def test_cross_entropy_accepts_integral_floats():
    labels = CrossEntropy().check_targets(np.array([0.0, 2.0]), 2, 3)
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, [0, 2])


def test_unknown_loss_lists_the_known_ones():
    with pytest.raises(
        ValueError, match=r"loss must be one of 'cross_entropy', 'mse', got 'hinge'"
    ):
        get_loss("hinge")
