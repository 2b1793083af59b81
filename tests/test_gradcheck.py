"""The finite-difference checker itself: it passes right derivatives and flags wrong ones."""

import numpy as np
import pytest

from minisplit import gradcheck, mlp
from minisplit.activations import ACTIVATIONS, Activation, sigmoid

TOL = gradcheck.TOLERANCE
X0 = np.array([0.3, -1.2, 2.0, 0.7])


def fun(x):
    """f(x) = sum sin(x_i) x_{i+1} + ||x||^4 / 4, a non-quadratic test function."""
    return float(np.sum(np.sin(x[:-1]) * x[1:]) + 0.25 * (x @ x) ** 2)


def grad(x):
    g = (x @ x) * x  # (P,)
    g[:-1] += np.cos(x[:-1]) * x[1:]
    g[1:] += np.sin(x[:-1])
    return g


def hessian(x):
    H = (x @ x) * np.eye(x.size) + 2.0 * np.outer(x, x)  # (P, P)
    i = np.arange(x.size - 1)
    H[i, i] -= np.sin(x[:-1]) * x[1:]
    H[i, i + 1] += np.cos(x[:-1])
    H[i + 1, i] += np.cos(x[:-1])
    return H


def test_right_gradient_and_hvp_pass():
    assert gradcheck.gradient_error(fun, grad, X0) < 1e-3 * TOL
    assert gradcheck.hvp_error(grad, lambda x, u: hessian(x) @ u, X0) < 1e-3 * TOL


def test_wrong_gradient_is_flagged():
    def missing_term(x):  # forgets the d/dx_{i+1} of sin(x_i) x_{i+1}
        g = (x @ x) * x
        g[:-1] += np.cos(x[:-1]) * x[1:]
        return g

    assert gradcheck.gradient_error(fun, missing_term, X0) > 1e4 * TOL
    assert gradcheck.gradient_error(fun, lambda x: 1.001 * grad(x), X0) > 100 * TOL


def test_wrong_hvp_is_flagged():
    def transposed_half(x, u):  # H[i, i+1] kept, H[i+1, i] forgotten
        i = np.arange(x.size - 1)
        H = hessian(x)
        H[i + 1, i] -= np.cos(x[:-1])
        return H @ u

    assert gradcheck.hvp_error(grad, transposed_half, X0) > 1e4 * TOL
    assert gradcheck.hvp_error(grad, lambda x, u: hessian(x) @ u + 1e-4 * u, X0) > 10 * TOL


def test_checker_does_not_modify_the_point():
    x = X0.copy()
    gradcheck.gradient_error(fun, grad, x)
    gradcheck.hvp_error(grad, lambda y, u: hessian(y) @ u, x)
    np.testing.assert_array_equal(x, X0)


def test_step_must_be_positive():
    with pytest.raises(ValueError, match="step must be a finite number > 0, got 0.0"):
        gradcheck.gradient_error(fun, grad, X0, step=0.0)
    with pytest.raises(ValueError, match="n_directions must be an integer >= 1, got 0"):
        gradcheck.hvp_error(grad, lambda x, u: u, X0, n_directions=0)


# -------------------------------------------------- a network with a deliberately wrong formula


def _sigmoid_d1(z):
    s = sigmoid(z)
    return s * (1.0 - s)


def _sigmoid_d2_wrong(z):
    s = sigmoid(z)
    return s * (1.0 - s) * (1.0 - s)  # the published slip: should be (1 - 2 s)


def _sigmoid_d1_wrong(z):
    return sigmoid(z) * (1.0 - sigmoid(z)) ** 2


@pytest.fixture
def problem():
    rng = np.random.default_rng(3)
    return rng.uniform(-2, 2, size=(5, 3)), rng.normal(size=(5, 2))


def _check(monkeypatch, problem, act):
    monkeypatch.setitem(ACTIVATIONS, act.name, act)
    net = mlp([3, 4, 2], activation=act.name, loss="mse", seed=1)
    return gradcheck.check_network(net, *problem)


def test_check_network_passes_the_right_sigmoid(monkeypatch, problem):
    right = Activation("sigmoid_copy", sigmoid, _sigmoid_d1, ACTIVATIONS["sigmoid"].d2f)
    errors = _check(monkeypatch, problem, right)
    assert max(errors.values()) < TOL


def test_check_network_flags_a_wrong_second_derivative(monkeypatch, problem):
    wrong = Activation("sigmoid_bad_d2", sigmoid, _sigmoid_d1, _sigmoid_d2_wrong)
    errors = _check(monkeypatch, problem, wrong)
    assert errors["gradient"] < TOL  # the first derivative is right
    assert errors["hvp"] > 1e3 * TOL


def test_check_network_flags_a_wrong_first_derivative(monkeypatch, problem):
    wrong = Activation("sigmoid_bad_d1", sigmoid, _sigmoid_d1_wrong, _sigmoid_d2_wrong)
    errors = _check(monkeypatch, problem, wrong)
    assert errors["gradient"] > 1e3 * TOL
