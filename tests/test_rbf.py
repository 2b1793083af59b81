"""Tests of the RBF (prototype) layer: derivatives by finite differences, splitting matrices."""

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from minisplit import RBF, Dense, Network, NeuronLayer, ReadingLayer, flatten, gradcheck

FEW = settings(max_examples=10, deadline=None)
seeds = st.integers(0, 2**16)
sizes = st.integers(1, 5)
widths = st.floats(0.5, 3.0)


def _problem(seed, N, n_in, n_out, loss):
    """Inputs in [-3, 3] and targets for ``loss`` with ``n_out`` outputs."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-3, 3, size=(N, n_in))  # (N, n_in)
    if loss == "mse":
        return X, rng.uniform(-3, 3, size=(N, n_out))
    return X, rng.integers(0, n_out, size=N)


def _assert_checked(report):
    for name, error in report.items():
        assert error < gradcheck.TOLERANCE, f"{name}: {error:.2e}"


def _rbf_and_signal(seed, N, n_in, n_out, width):
    """A layer, its forward cache on inputs in [-3, 3], and a back-propagated signal g."""
    rng = np.random.default_rng(seed)
    layer = RBF(n_in, n_out, width=width, seed=rng)
    X = rng.uniform(-3, 3, size=(N, n_in))  # (N, n_in)
    A, cache = layer.forward(X)
    g = rng.uniform(-3, 3, size=A.shape)  # (N, n_out)
    return layer, X, A, cache, g


def _naive_splitting(layer, X, A, g):
    """S_i = sum_n g a (D D^T / s^4 - I / s^2), one sample and one neuron at a time."""
    s, d = layer.width, layer.n_in
    S = np.zeros((layer.n_out, d, d))
    for n in range(X.shape[0]):
        for i in range(layer.n_out):
            D = X[n] - layer.centers[i]  # (d,)
            S[i] += g[n, i] * A[n, i] * (np.outer(D, D) / s**4 - np.eye(d) / s**2)
    return S


# ----------------------------------------------------------------------------- forward


def test_hand_worked_example():
    # one neuron in 1-D, centre 0, width 1; inputs x = 1 and x = 2, g = 1 on both
    layer = RBF(1, 1, width=1.0)
    layer.set_params([np.zeros((1, 1))])
    X = np.array([[1.0], [2.0]])
    A, cache = layer.forward(X)
    # a = exp(-x^2 / 2): exp(-0.5) = 0.60653..., exp(-2) = 0.13533...
    assert np.allclose(A[:, 0], [np.exp(-0.5), np.exp(-2.0)], rtol=1e-15)
    # dC = sum_n g a (x - c) / s^2 = exp(-0.5) * 1 + exp(-2) * 2
    _, (dC,) = layer.backward(np.ones((2, 1)), cache)
    assert np.isclose(dC[0, 0], np.exp(-0.5) + 2 * np.exp(-2.0), rtol=1e-14)
    # S = sum_n g a (x^2 - 1): at x = 1 the curvature is exactly zero, at x = 2 it is 3 exp(-2)
    S = layer.splitting_matrices(np.ones((2, 1)), cache)
    assert np.isclose(S[0, 0, 0], 3 * np.exp(-2.0), rtol=1e-14)


@given(seed=seeds, N=sizes, n_in=sizes, n_out=sizes, width=widths)
@FEW
def test_forward_matches_the_definition(seed, N, n_in, n_out, width):
    layer, X, A, _, _ = _rbf_and_signal(seed, N, n_in, n_out, width)
    D = X[:, None, :] - layer.centers[None, :, :]  # (N, n_out, n_in)
    expected = np.exp(-np.sum(D * D, axis=2) / (2 * width**2))
    assert np.allclose(A, expected, rtol=1e-12, atol=0)
    at_centres, _ = layer.forward(layer.centers)
    assert np.allclose(np.diag(at_centres), 1.0, rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------- derivatives


@given(
    seed=seeds,
    N=sizes,
    n_in=sizes,
    n_hidden=sizes,
    n_out=st.integers(2, 4),
    width=widths,
    loss=st.sampled_from(["mse", "cross_entropy"]),
)
@example(seed=0, N=1, n_in=1, n_hidden=1, n_out=2, width=1.0, loss="mse")
@FEW
def test_rbf_then_dense_derivatives(seed, N, n_in, n_hidden, n_out, width, loss):
    rng = np.random.default_rng(seed)
    layers = [RBF(n_in, n_hidden, width, seed=rng), Dense(n_hidden, n_out, "identity", seed=rng)]
    net = Network(layers, loss)
    X, y = _problem(seed, N, n_in, n_out, loss)
    _assert_checked(gradcheck.check_network(net, X, y, seed=seed))


@given(seed=seeds, N=sizes, n_in=sizes, n_hidden=sizes, n_rbf=sizes, width=widths)
@FEW
def test_rbf_reading_a_hidden_layer_derivatives(seed, N, n_in, n_hidden, n_rbf, width):
    # R_X is not None here: the R-forward and R-backward terms in R_X are exercised
    rng = np.random.default_rng(seed)
    layers = [
        Dense(n_in, n_hidden, "tanh", seed=rng),
        RBF(n_hidden, n_rbf, width, seed=rng),
        Dense(n_rbf, 2, "identity", seed=rng),
    ]
    net = Network(layers, "mse")
    X, y = _problem(seed, N, n_in, 2, "mse")
    _assert_checked(gradcheck.check_network(net, X, y, seed=seed))


# ----------------------------------------------------------------------------- splitting


@given(seed=seeds, N=sizes, n_in=sizes, n_out=sizes, width=widths)
@example(seed=1, N=1, n_in=1, n_out=1, width=0.5)
@FEW
def test_splitting_matrices_match_a_per_sample_loop(seed, N, n_in, n_out, width):
    layer, X, A, cache, g = _rbf_and_signal(seed, N, n_in, n_out, width)
    S = layer.splitting_matrices(g, cache)
    assert S.shape == (n_out, n_in, n_in)
    expected = _naive_splitting(layer, X, A, g)
    assert np.allclose(S, expected, rtol=1e-10, atol=1e-12 * np.abs(expected).max())
    assert np.array_equal(S, S.transpose(0, 2, 1))


@given(seed=seeds, N=sizes, n_in=sizes, n_out=sizes, width=widths)
@FEW
def test_splitting_matrices_are_the_curvature_of_the_weighted_output(seed, N, n_in, n_out, width):
    # S_i is the Hessian of c_i -> sum_n g[n, i] a_i(x_n; c_i) with g held fixed; its
    # exact gradient is the backward pass's dC[i], which we finite-difference
    layer, X, _, cache, g = _rbf_and_signal(seed, N, n_in, n_out, width)
    S = layer.splitting_matrices(g, cache)
    for i in range(n_out):

        def grad(c, i=i):
            centers = layer.centers.copy()
            centers[i] = c
            moved = layer.with_neuron_params(centers)
            _, (dC,) = moved.backward(g, moved.forward(X)[1], need_dX=False)
            return dC[i]

        error = gradcheck.hvp_error(grad, lambda c, u, i=i: S[i] @ u, layer.centers[i], seed)
        assert error < gradcheck.TOLERANCE


@given(
    seed=seeds,
    N=sizes,
    n_in=sizes,
    n_hidden=sizes,
    width=widths,
    loss=st.sampled_from(["mse", "cross_entropy"]),
)
@FEW
def test_splitting_quadratic_form_is_the_split_networks_curvature(
    seed, N, n_in, n_hidden, width, loss
):
    # docs/splitting.md, sections 1-3: split neuron i into centres c + eps d and c - eps d,
    # each read by half the outgoing weights; then d^2 L / d eps^2 at 0 = d^T S_i d. The
    # left side is u^T H u of the split network (exact R-operator), u = (+d on copy 1, -d on
    # copy 2).
    rng = np.random.default_rng(seed)
    layers = [RBF(n_in, n_hidden, width, seed=rng), Dense(n_hidden, 3, "identity", seed=rng)]
    net = Network(layers, loss)
    X, y = _problem(seed, N, n_in, 3, loss)
    result = net.backprop(X, y)
    S = net.layers[0].splitting_matrices(result.douts[0], result.caches[0])
    i = int(rng.integers(n_hidden))
    delta = rng.standard_normal(n_in)  # (n_in,)
    C, W, b = net.layers[0].centers, net.layers[1].W, net.layers[1].b
    halves = W.copy()
    halves[:, i] /= 2
    split = Network(
        [RBF(n_in, n_hidden + 1, width, seed=0), Dense(n_hidden + 1, 3, "identity", seed=0)], loss
    ).with_params([np.vstack([C, C[i]]), np.hstack([halves, halves[:, [i]]]), b])
    U_C = np.zeros((n_hidden + 1, n_in))
    U_C[i], U_C[n_hidden] = delta, -delta
    u = flatten([U_C, np.zeros((3, n_hidden + 1)), np.zeros(3)])
    curvature = float(u @ flatten(split.hvp(X, y, u)))
    expected = float(delta @ S[i] @ delta)
    assert np.isclose(curvature, expected, rtol=1e-9, atol=1e-12 * np.linalg.norm(S[i]))


@given(seed=seeds, N=sizes, n_in=sizes, n_out=sizes, width=widths)
@FEW
def test_splitting_matvec_matches_the_matrices(seed, N, n_in, n_out, width):
    layer, _, _, cache, g = _rbf_and_signal(seed, N, n_in, n_out, width)
    V = np.random.default_rng(seed + 1).uniform(-3, 3, size=(n_out, n_in))  # (n_out, n_in)
    S = layer.splitting_matrices(g, cache)
    SV = layer.splitting_matvec(g, cache, V)
    expected = np.einsum("nij,nj->ni", S, V)
    assert np.allclose(SV, expected, rtol=1e-10, atol=1e-12 * np.abs(expected).max())


def test_neuron_params_round_trip_and_append():
    layer = RBF(3, 2, width=0.7, seed=0)
    theta = layer.neuron_params()
    theta[0, 0] = 99.0  # a copy: the layer must not change
    assert layer.centers[0, 0] != 99.0
    grown = layer.with_neuron_params(np.vstack([layer.centers, layer.centers[1]]))
    assert (grown.n_out, grown.n_in, grown.width) == (3, 3, 0.7)
    X = np.random.default_rng(1).uniform(-3, 3, size=(5, 3))
    A, _ = layer.forward(X)
    A_grown, _ = grown.forward(X)
    assert np.array_equal(A_grown, np.hstack([A, A[:, [1]]]))
    assert (layer.n_neurons, layer.neuron_dim) == (2, 3)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("width", [0, -1.0, float("nan"), float("inf")])
def test_bad_width_raises(width):
    with pytest.raises(ValueError, match="width must be a finite number > 0, got"):
        RBF(2, 3, width=width)


@pytest.mark.parametrize("width", ["1", True, None])
def test_width_of_wrong_type_raises(width):
    with pytest.raises(TypeError, match="width must be a finite number > 0, got"):
        RBF(2, 3, width=width)


@pytest.mark.parametrize("n_in, n_out", [(0, 3), (2, 0), (-1, 3)])
def test_bad_sizes_raise(n_in, n_out):
    with pytest.raises(ValueError, match="(n_in|n_out) must be an integer >= 1, got"):
        RBF(n_in, n_out)


@pytest.mark.parametrize("n_in, n_out", [(2.5, 3), (2, "3")])
def test_sizes_of_wrong_type_raise(n_in, n_out):
    with pytest.raises(TypeError, match="(n_in|n_out) must be an integer >= 1, got"):
        RBF(n_in, n_out)


def test_bad_splitting_arguments_raise():
    layer, _, A, cache, g = _rbf_and_signal(0, 4, 2, 3, 1.0)
    with pytest.raises(ValueError, match="d2f"):
        layer.splitting_matrices(g, cache, d2f=lambda z: z)
    with pytest.raises(ValueError, match="d2f"):
        layer.splitting_matvec(g, cache, np.ones((3, 2)), d2f=lambda z: z)
    with pytest.raises(ValueError, match=r"dA must have shape \(4, 3\)"):
        layer.splitting_matrices(g[:, :2], cache)
    with pytest.raises(ValueError, match=r"V must have shape \(3, 2\)"):
        layer.splitting_matvec(g, cache, np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"theta must have shape \(n, 2\)"):
        layer.with_neuron_params(np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"RBF input must have shape \(N, 2\)"):
        Network([layer]).forward(np.ones((4, 3)))
    assert isinstance(layer, NeuronLayer)
    assert not isinstance(layer, ReadingLayer)
