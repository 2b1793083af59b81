"""The toy landscapes: the split plane's geometry and the two-bumps saddle."""

import numpy as np
import pytest

import minisplit as ms
from minisplit import landscapes


def descend(net, X, y, steps=1500, lr=0.3):
    for _ in range(steps):
        _, grads = net.loss_and_grad(X, y)
        net = net.with_params([p - lr * g for p, g in zip(net.params, grads)])
    return net


@pytest.fixture(scope="module")
def stuck():
    """The two-bumps network trained to its one-neuron minimum."""
    net, X, y = landscapes.two_bumps(seed=0)
    return descend(net, X, y), X, y


def test_two_bumps_minimum_is_a_saddle_of_the_split_network(stuck):
    net, X, y = stuck
    _, grads = net.loss_and_grad(X, y)
    assert np.linalg.norm(ms.flatten(grads)) < 1e-8
    # a strict minimum of the small network ...
    assert np.linalg.eigvalsh(net.hessian(X, y)).min() > 1e-3
    # ... whose splitting index is negative: the split network has a descent direction
    lam, V = ms.splitting_indices(net, X, y, layer=0)
    assert lam[0] < -1e-2
    e = np.array([0.05])
    L = landscapes.split_plane(net, X, y, 0, 0, V[0], np.r_[-e, 0.0, e], np.r_[-e, 0.0, e])
    assert L[2, 0] < L[1, 1] and L[0, 2] < L[1, 1]  # down along s = -t
    assert L[0, 0] > L[1, 1] and L[2, 2] > L[1, 1]  # up along s = t


def test_split_plane_diagonal_is_the_unsplit_network(stuck):
    net, X, y = stuck
    v = np.array([1.0])
    s = np.array([-0.4, 0.0, 0.3])
    L = landscapes.split_plane(net, X, y, 0, 0, v, s, s)
    for j, s_j in enumerate(s):
        moved = net.layers[0].with_neuron_params(net.layers[0].neuron_params() + s_j * v)
        probe = ms.Network([moved, net.layers[1]], "mse")
        assert L[j, j] == pytest.approx(probe.loss(X, y), rel=1e-12)


def test_split_plane_antidiagonal_follows_the_splitting_matrix(stuck):
    net, X, y = stuck
    lam, V = ms.splitting_indices(net, X, y, layer=0)
    eps = np.array([1e-2, 5e-3])
    L = landscapes.split_plane(net, X, y, 0, 0, V[0], eps, -eps)
    L0 = net.loss(X, y)
    ratios = [(L[k, k] - L0) / (e**2 / 2 * lam[0]) for k, e in enumerate(eps)]
    assert abs(ratios[1] - 1) < abs(ratios[0] - 1) < 1e-2  # the eps^2 law, converging


def test_split_plane_is_symmetric_under_swapping_the_copies(stuck):
    net, X, y = stuck
    s = np.linspace(-0.5, 0.5, 5)
    L = landscapes.split_plane(net, X, y, 0, 0, np.array([1.0]), s, s)
    np.testing.assert_allclose(L, L.T, rtol=1e-12)


def test_split_plane_validates_its_grids():
    net, X, y = landscapes.two_bumps()
    with pytest.raises(ValueError, match="direction"):
        landscapes.split_plane(net, X, y, 0, 0, np.ones((1, 1)), [0.0], [0.0])
    with pytest.raises(ValueError, match="output layer"):
        landscapes.split_plane(net, X, y, 1, 0, np.ones(2), [0.0], [0.0])
