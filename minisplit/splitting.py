"""Splitting matrices, splitting indices and split surgery at the network level.

The layers know the mathematics (``splitting_matrices``, ``splitting_matvec``,
``neuron_params``, ``input_weights``; see :mod:`minisplit.layers.base`); this
module only finds the right layers and hands them the back-propagated gradient.

Splitting neuron i of layer l into theta_i +- eps v with output weights 1/2, 1/2
changes the loss by (eps^2 / 2) v^T S_i v + O(eps^4), where

    S_i = sum_n g_{n,i} Hessian_theta a_i(x_n),     g_{n,i} = dL/da_i(x_n)

(docs/splitting.md). The smallest eigenvalue of S_i is the neuron's splitting
index; its eigenvector is the best direction.
"""

from __future__ import annotations

import numbers

import numpy as np

from minisplit._validate import check_array
from minisplit.activations import softplus_surrogate_d2
from minisplit.eigen import WHICH, dense_extreme, lanczos_extreme

METHODS = ("dense", "matrix_free")


# ---- which layers ---------------------------------------------------------------------


def _neuron_layer(net, layer):
    """Validate ``layer`` as the index of a neuron layer; return the layer object."""
    if isinstance(layer, bool) or not isinstance(layer, numbers.Integral):
        raise ValueError(f"layer must be an integer index into net.layers, got {layer!r}")
    if not 0 <= layer < len(net.layers):
        raise ValueError(f"layer must lie in [0, {len(net.layers)}), got {layer}")
    obj = net.layers[layer]
    if not hasattr(obj, "neuron_params"):
        raise ValueError(f"layer {layer} ({type(obj).__name__}) has no neurons to split")
    return obj


def reader_index(net, layer) -> int:
    """Index of the layer that reads layer ``layer``'s units linearly.

    Only unit-passing layers (pooling, flatten) may stand in between. Raises
    ValueError for the output layer (nothing reads it: splitting it would
    change the number of outputs) and for a non-linear reader (RBF).
    """
    _neuron_layer(net, layer)
    for index in range(layer + 1, len(net.layers)):
        obj = net.layers[index]
        if obj.passes_units:
            continue
        if not hasattr(obj, "input_weights"):
            raise ValueError(
                f"layer {layer} feeds layer {index} ({type(obj).__name__}), which reads its "
                "input non-linearly: a split unit cannot be halved into it"
            )
        return index
    raise ValueError(
        f"layer {layer} is the output layer: its neurons are the network's outputs and "
        "cannot be split"
    )


def _curvature_override(obj, relu_surrogate):
    """The second derivative to use in S, refusing a silent zero (identity, relu)."""
    act = getattr(obj, "act", None)
    if relu_surrogate is not None:
        if act is None or act.name != "relu":
            raise ValueError("relu_surrogate applies to relu layers only")
        return softplus_surrogate_d2(relu_surrogate)
    if act is not None and act.flat_curvature:
        hint = (
            " Pass relu_surrogate=3.0 to use the second derivative of softplus(beta=3) "
            "instead (the published code's surrogate), or use a smooth activation."
            if act.name == "relu"
            else " Use a smooth activation (tanh, softplus, swish, ...)."
        )
        raise ValueError(
            f"{act.name} has zero second derivative, so every splitting matrix of this "
            f"layer is identically zero and splitting sees nothing.{hint}"
        )
    return None


# ---- splitting matrices and indices ------------------------------------------------------


def splitting_matrices(net, X, y, layer, relu_surrogate=None) -> np.ndarray:
    """The splitting matrix of every neuron of one layer.

    S_i = sum_n g_{n,i} Hessian_theta a_i(x_n), with g = dL/da the back-propagated
    gradient of the mean loss (1/N inside) and theta_i the neuron's parameters
    (Dense, Conv2d: ``[W[i].ravel(), b[i]]``; RBF: ``centers[i]``).

    Parameters
    ----------
    net : Network
    X, y : arrays
        Data, as for ``net.loss``.
    layer : int
        Index into ``net.layers`` of a neuron layer (Dense, Conv2d, RBF).
    relu_surrogate : float or None
        For a relu layer only: beta of the softplus surrogate (relu has f'' = 0,
        so S would be zero; this is an explicit, documented approximation).

    Returns
    -------
    ndarray (n_neurons, d, d), symmetric.

    Examples
    --------
    >>> import numpy as np, minisplit as ms
    >>> net = ms.mlp([2, 3, 1], seed=0)
    >>> X, y = np.ones((4, 2)), np.zeros((4, 1))
    >>> ms.splitting_matrices(net, X, y, layer=0).shape
    (3, 3, 3)
    """
    obj = _neuron_layer(net, layer)
    d2f = _curvature_override(obj, relu_surrogate)
    bp = net.backprop(X, y)
    return obj.splitting_matrices(bp.douts[layer], bp.caches[layer], d2f)


def splitting_indices(
    net, X, y, layer, which="min", method="dense", relu_surrogate=None, tol=1e-10, seed=0
):
    """Splitting indices (extreme eigenvalues of S_i) and directions, per neuron.

    Parameters
    ----------
    net, X, y, layer, relu_surrogate
        As in :func:`splitting_matrices`.
    which : {"min", "max"}
        ``"min"``: lambda_min and v_min (the optimal split); ``"max"``:
        lambda_max and v_max (the signed split, :func:`signed_split`).
    method : {"dense", "matrix_free"}
        ``"dense"`` forms S (n d^2 memory) and calls ``eigh``;
        ``"matrix_free"`` runs batched Lanczos on the products S_i v_i, never
        forming S (:func:`minisplit.eigen.lanczos_extreme`).
    tol : float
        Matrix-free stopping tolerance (relative residual).
    seed : int
        Matrix-free starting vectors.

    Returns
    -------
    values : ndarray (n_neurons,)
    vectors : ndarray (n_neurons, d), unit rows (sign: largest entry positive).
    """
    if which not in WHICH:
        raise ValueError(f"which must be one of {WHICH}, got {which!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    obj = _neuron_layer(net, layer)
    d2f = _curvature_override(obj, relu_surrogate)
    bp = net.backprop(X, y)
    dA, cache = bp.douts[layer], bp.caches[layer]
    if method == "dense":
        return dense_extreme(obj.splitting_matrices(dA, cache, d2f), which)
    values, vectors, _ = lanczos_extreme(
        lambda V: obj.splitting_matvec(dA, cache, V, d2f),
        obj.n_neurons,
        obj.neuron_dim,
        which=which,
        tol=tol,
        seed=seed,
    )
    return values, vectors


# ---- surgery ----------------------------------------------------------------------------


def _check_plan(obj, neurons, directions, eps):
    neurons = np.asarray(neurons)
    if neurons.size == 0:
        neurons = neurons.astype(np.int64)  # np.asarray([]) is float; empty is a valid no-op plan
    if neurons.ndim != 1 or not np.issubdtype(neurons.dtype, np.integer):
        raise ValueError(f"neurons must be a 1-D array of integer indices, got {neurons!r}")
    if neurons.size and (neurons.min() < 0 or neurons.max() >= obj.n_neurons):
        raise ValueError(f"neuron indices must lie in [0, {obj.n_neurons}), got {neurons}")
    if np.unique(neurons).size != neurons.size:
        raise ValueError(f"neuron indices must be distinct, got {neurons}")
    directions = check_array(directions, "directions")
    if directions.shape != (neurons.size, obj.neuron_dim):
        raise ValueError(
            f"directions must have shape ({neurons.size}, {obj.neuron_dim}), "
            f"got {directions.shape}"
        )
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real):
        raise ValueError(f"eps must be a non-negative number, got {eps!r}")
    if not np.isfinite(eps) or eps < 0:
        raise ValueError(f"eps must be a non-negative finite number, got {eps!r}")
    return neurons.astype(np.int64), directions, float(eps)


def regrow(net, layer, theta, W_in):
    """A new network whose layer ``layer`` has neurons ``theta`` and whose reader reads ``W_in``.

    The single surgery primitive behind :func:`split`, :func:`signed_split`
    and :func:`add_neurons`: rows of ``theta`` (n', d) are the neurons,
    ``W_in`` (n', ...) the reader's weights on each of them (see
    ``input_weights``). The input network is untouched.
    """
    obj = _neuron_layer(net, layer)
    r = reader_index(net, layer)
    theta, W_in = np.asarray(theta, dtype=np.float64), np.asarray(W_in, dtype=np.float64)
    if W_in.shape[0] != theta.shape[0]:
        raise ValueError(f"W_in must have {theta.shape[0]} unit rows, got {W_in.shape[0]}")
    new = net.copy()
    new.layers[layer] = obj.with_neuron_params(theta)
    new.layers[r] = net.layers[r].with_input_weights(W_in)
    return new


def split(net, layer, neurons, directions, eps) -> object:
    """Split neurons along given directions: theta_i +- eps v_i, outputs weighted 1/2, 1/2.

    Neuron ``neurons[j]`` becomes ``theta + eps * directions[j]`` in place and a
    new neuron ``theta - eps * directions[j]`` is appended at the end of the
    layer (in the order of ``neurons``). Every weight of the next reading layer
    that reads the neuron is copied to the new unit and both copies are
    multiplied by 1/2. At eps = 0 the network computes the same function.

    Parameters
    ----------
    net : Network
    layer : int
        A neuron layer that is not the output layer.
    neurons : array of int (m,)
        Distinct neuron indices.
    directions : ndarray (m, d)
        One direction per neuron (e.g. v_min from :func:`splitting_indices`).
    eps : float
        Step size, >= 0.

    Returns
    -------
    Network
        A new network with m more neurons in ``layer``; ``net`` is untouched.
    """
    return _two_offspring(net, layer, neurons, directions, eps, weight=0.5, sign=-1.0)


def signed_split(net, layer, neurons, directions, eps, alpha=1.0) -> object:
    """Split with one negative output weight (MATH.md section 5).

    Neuron theta becomes two offspring::

        theta_1 = theta + eps v,                  output weight -alpha  (appended)
        theta_2 = theta + eps alpha/(1+alpha) v,  output weight 1+alpha (in place)

    With v = v_max the loss changes by -(eps^2/2) alpha/(1+alpha) lambda_max +
    O(eps^3), so a splitting-stable neuron (lambda_min >= 0) can still be
    escaped when lambda_max > 0. Weights sum to 1 and the weighted mean offset
    is zero, so at eps = 0 the function is unchanged.

    Parameters
    ----------
    net, layer, neurons, directions, eps
        As in :func:`split` (use v_max, ``which="max"``).
    alpha : float
        > 0, the magnitude of the negative weight.

    Returns
    -------
    Network
    """
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not alpha > 0:
        raise ValueError(f"alpha must be a positive number, got {alpha!r}")
    if not np.isfinite(alpha):
        raise ValueError(f"alpha must be finite, got {alpha!r}")
    return _two_offspring(net, layer, neurons, directions, eps, weight=-float(alpha), sign=1.0)


def _two_offspring(net, layer, neurons, directions, eps, weight, sign):
    """Offspring theta + eps s v (appended, output weight w) and theta + eps t v (in place,
    output weight 1 - w), with t = -w s / (1 - w) so the weighted mean offset is zero."""
    obj = _neuron_layer(net, layer)
    r = reader_index(net, layer)
    neurons, directions, eps = _check_plan(obj, neurons, directions, eps)
    theta = obj.neuron_params()  # (n, d)
    W_in = net.layers[r].input_weights(obj.n_neurons)  # (n, ...)
    keep = 1.0 - weight
    appended = theta[neurons] + eps * sign * directions  # (m, d)
    theta[neurons] += eps * (-weight * sign / keep) * directions
    W_new = W_in[neurons] * weight
    W_in[neurons] *= keep
    return regrow(net, layer, np.vstack([theta, appended]), np.concatenate([W_in, W_new]))


def split_many(net, plan, eps) -> object:
    """Split neurons of several layers at once.

    Parameters
    ----------
    plan : dict {layer: (neurons, directions)}
        Directions computed on ``net`` (before any split).
    eps : float

    Notes
    -----
    Layers are split from the deepest to the shallowest, so a layer's split
    never changes the dimension of a deeper neuron's direction; the second-order
    effects of the splits add (MATH.md section 2).
    """
    for layer in sorted(plan, reverse=True):
        neurons, directions = plan[layer]
        net = split(net, layer, neurons, directions, eps)
    return net


def add_neurons(net, layer, theta, out_weights) -> object:
    """Append brand-new neurons with given incoming and outgoing weights.

    Parameters
    ----------
    net : Network
    layer : int
        A neuron layer that is not the output layer.
    theta : ndarray (m, d)
        The new neurons' parameters (rows like ``neuron_params``).
    out_weights : ndarray (m, ...)
        The reader's weights on each new unit, shaped like rows of
        ``reader.input_weights(n)`` (Dense reader: (m, n_out, block)).

    Returns
    -------
    Network
        With zero ``out_weights`` the function is unchanged.
    """
    obj = _neuron_layer(net, layer)
    r = reader_index(net, layer)
    W_in = net.layers[r].input_weights(obj.n_neurons)
    theta = check_array(theta, "theta")
    out_weights = check_array(out_weights, "out_weights")
    if theta.ndim != 2 or theta.shape[1] != obj.neuron_dim:
        raise ValueError(f"theta must have shape (m, {obj.neuron_dim}), got {theta.shape}")
    if out_weights.shape != (theta.shape[0],) + W_in.shape[1:]:
        raise ValueError(
            f"out_weights must have shape {(theta.shape[0],) + W_in.shape[1:]}, "
            f"got {out_weights.shape}"
        )
    return regrow(
        net,
        layer,
        np.vstack([obj.neuron_params(), theta]),
        np.concatenate([W_in, out_weights]),
    )


def carry_state(net, layer, arrays, parents) -> list:
    """Carry arrays shaped like ``net.params`` (e.g. optimiser state) through a surgery.

    After a surgery that appended neurons to ``layer`` (all of :func:`split`,
    :func:`signed_split`, :func:`add_neurons` keep old neurons at their
    indices), new neuron i takes the rows of its parent ``parents[i]`` in the
    layer's parameters and in its reader's input weights, or zeros when
    ``parents[i] == -1`` (a brand-new neuron). Old rows are unchanged.

    Parameters
    ----------
    net : Network
        The network *before* the surgery.
    layer : int
    arrays : list of arrays shaped like ``net.params``
    parents : array of int (m,)
        Parent index in [0, n) or -1, one per appended neuron.

    Returns
    -------
    list of arrays shaped like the new network's ``params``.
    """
    obj = _neuron_layer(net, layer)
    parents = np.asarray(parents, dtype=np.int64)
    n = obj.n_neurons
    if parents.ndim != 1 or (parents.size and (parents.min() < -1 or parents.max() >= n)):
        raise ValueError(f"parents must be indices in [-1, {n}), got {parents}")
    state = net.with_params(arrays)
    theta = state.layers[layer].neuron_params()
    W_in = state.layers[reader_index(net, layer)].input_weights(obj.n_neurons)
    mask = (parents >= 0)[:, None]
    new_theta = np.where(mask, theta[np.maximum(parents, 0)], 0.0)
    new_W = W_in[np.maximum(parents, 0)] * mask.reshape((-1,) + (1,) * (W_in.ndim - 1))
    grown = regrow(state, layer, np.vstack([theta, new_theta]), np.concatenate([W_in, new_W]))
    return [p.copy() for p in grown.params]
