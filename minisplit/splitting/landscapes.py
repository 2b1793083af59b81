"""Toy loss landscapes that make splitting visible.

:func:`split_plane` evaluates the loss of a network in which one neuron theta
has been replaced by two copies, each with output weight 1/2, moved
independently along one direction v::

    L(s, t) = loss with copies  theta + s v  and  theta + t v

The diagonal s = t is the *unsplit* network moving theta along v; the
anti-diagonal s = -t is the split theta +- eps v. At a minimum theta* of the
small network the diagonal is flat and curves up, while the curvature along
the anti-diagonal is (1/2) v^T S v (d^2/d eps^2 of L(eps, -eps) = v^T S v,
docs/splitting.md): when the splitting index is negative, the minimum of the
small network is a saddle point of the split one.

:func:`two_bumps` is the smallest network with such a point: one Gaussian
neuron fitting two bumps.
"""

from __future__ import annotations

import numpy as np

from minisplit._checks import check_array, check_int, make_rng
from minisplit.layers.dense import Dense
from minisplit.layers.rbf import RBF
from minisplit.network import Network
from minisplit.splitting.surgery import split


def split_plane(net, X, y, layer, neuron, direction, s, t) -> np.ndarray:
    """Loss of the two-copy network over a grid of independent offsets (s, t).

    Parameters
    ----------
    net : Network
    X, y : arrays
    layer : int
        A neuron layer that is not the output layer.
    neuron : int
        The neuron to duplicate.
    direction : ndarray (d,)
        The direction v both copies move along (e.g. v_min).
    s, t : 1-D arrays
        Offsets of the first (in-place) and second (appended) copy.

    Returns
    -------
    ndarray (len(s), len(t))
        ``L[j, k]`` is the loss with copies ``theta + s[j] v`` and ``theta + t[k] v``.

    Examples
    --------
    >>> import numpy as np, minisplit as ms
    >>> net, X, y = ms.landscapes.two_bumps()
    >>> L = ms.landscapes.split_plane(net, X, y, 0, 0, np.array([1.0]), [0.0], [0.0])
    >>> bool(np.isclose(L[0, 0], net.loss(X, y)))
    True
    """
    direction = check_array(direction, "direction", ndim=1)
    s = check_array(s, "s", ndim=1)
    t = check_array(t, "t", ndim=1)
    twin = split(net, layer, [neuron], direction[None, :], 0.0)  # two copies, halved outputs
    obj = twin.layers[layer]
    theta = obj.neuron_params()  # (n + 1, d)
    L = np.empty((s.size, t.size))
    for j, s_j in enumerate(s):
        for k, t_k in enumerate(t):
            moved = theta.copy()
            moved[neuron] += s_j * direction
            moved[-1] += t_k * direction
            probe = twin.copy()
            probe.layers[layer] = obj.with_neuron_params(moved)
            L[j, k] = probe.loss(X, y)
    return L


def two_bumps(n=81, seed=0):
    """One Gaussian (RBF) neuron fitting two overlapping bumps: a minimum that splitting escapes.

    Data: x on a grid of n points in [-3, 3] and
    ``y = exp(-(x - 1)^2 / 2) + exp(-(x + 1)^2 / 2)``. Network: one RBF neuron of
    width 1 (centre c) and a linear output, ``f(x) = w exp(-(x - c)^2 / 2) + b``.

    Gradient descent takes the one-neuron network to c = 0 (by symmetry), a
    strict local minimum of the small network (its Hessian is positive
    definite), where the splitting index is negative: two copies at +-eps move
    apart towards the two bumps and the loss falls. The target is exactly a
    two-neuron network, so the split network can reach zero loss.

    Returns
    -------
    net : Network
        Untrained, ``RBF(1, 1, width=1) -> Dense(1, 1, identity)``.
    X : ndarray (n, 1)
    y : ndarray (n, 1)

    Examples
    --------
    >>> net, X, y = two_bumps()
    >>> X.shape, y.shape
    ((81, 1), (81, 1))
    """
    X = np.linspace(-3.0, 3.0, check_int(n, "n", low=1))[:, None]  # (n, 1)
    y = np.exp(-0.5 * (X - 1.0) ** 2) + np.exp(-0.5 * (X + 1.0) ** 2)  # (n, 1)
    rng = make_rng(seed)
    net = Network([RBF(1, 1, width=1.0, seed=rng), Dense(1, 1, "identity", seed=rng)], "mse")
    return net, X, y
