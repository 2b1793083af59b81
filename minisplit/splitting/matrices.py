"""Splitting matrices and splitting indices of one layer of a network.

The layers know the mathematics (``NeuronLayer.splitting_matrices`` and
``splitting_operator``; :mod:`minisplit.layers.base`); this module only checks that
the layer has neurons, runs one forward and backward pass, and hands the layer its
back-propagated gradient.

Splitting neuron i of layer l into theta_i +- eps v with output weights 1/2, 1/2
changes the loss by (eps^2 / 2) v^T S_i v + O(eps^4), where

    S_i = sum_n g_{n,i} Hessian_theta a_i(x_n),     g_{n,i} = dL/da_i(x_n)

(docs/splitting.md, sections 1-3). The smallest eigenvalue of S_i is the neuron's
splitting index; its eigenvector is the best direction.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np

from minisplit._checks import check_choice, check_real, check_type
from minisplit.activations import softplus_surrogate_d2
from minisplit.layers.base import NeuronLayer, UnitCarryingLayer
from minisplit.network import Network
from minisplit.splitting.eigen import WHICH, dense_extreme, lanczos_extreme

#: How :func:`splitting_indices` finds the extreme eigenpairs (docs/splitting.md, section 10).
SOLVERS = ("dense", "matrix_free")


# ---- which layers ---------------------------------------------------------------------


def neuron_layer(net, layer) -> NeuronLayer:
    """The NeuronLayer at index ``layer`` of ``net`` (TypeError/ValueError naming the problem)."""
    check_type(net, "net", Network)
    if isinstance(layer, bool) or not isinstance(layer, numbers.Integral):
        raise TypeError(f"layer must be an integer index into net.layers, got {layer!r}")
    if not 0 <= layer < len(net.layers):
        raise ValueError(f"layer must lie in [0, {len(net.layers)}), got {layer}")
    obj = net.layers[layer]
    if not isinstance(obj, NeuronLayer):
        raise ValueError(f"layer {layer} ({type(obj).__name__}) has no neurons to split")
    return obj


def curvature_override(obj, relu_surrogate):
    """The second derivative to use in S, refusing a silent zero (identity, relu)."""
    act = obj.act
    if relu_surrogate is not None:
        beta = check_real(relu_surrogate, "relu_surrogate", low=0, low_open=True)
        if act is None or act.name != "relu":
            name = "no activation" if act is None else f"activation {act.name}"
            raise ValueError(
                "relu_surrogate must be None unless the layer is relu (it replaces relu's zero "
                f"curvature), got {relu_surrogate!r} for a layer with {name}"
            )
        return softplus_surrogate_d2(beta)
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


#: Bytes held at once when the carried part of S (a layer read through a unit-carrying layer)
#: is formed: the samples go in chunks whose one-unit Jacobian maps (with their working
#: copies) and unit-major slopes and coefficients fit in this. Small chunks are the fast
#: ones, their maps staying in cache: the splitting step on the DS-CNN's 2,400 clips took
#: 6.1 s with 64 MiB, 5.8 with 16, 5.4 with 4 and 5.6 with 2 (the per-chunk overhead).
CARRIED_BYTES = 4 * 2**20
#: Arrays of about one unit's maps' size, per sample H W d, that carrying them through a layer
#: holds (the maps, the patches they are made of, the convolved maps, their scaled copy, the
#: maps passed on, a pooling layer's copy).
_CARRIED_COPIES = 6
#: Arrays of every unit's output maps, per sample n H W, that a chunk's set-up holds (the
#: neuron layer's slopes, the carrying layer's slopes and coefficients).
_CARRIED_SHARED = 3


def _carried_path(net, layer) -> list:
    """Indices of the layers from ``layer``'s output to the last unit-carrying layer before
    its reader (pooling and other unit-passing layers, and the carrying ones); empty when no
    unit-carrying layer stands between the neuron and its reader."""
    path = []
    for index in range(layer + 1, len(net.layers)):
        obj = net.layers[index]
        if not (obj.passes_units or isinstance(obj, UnitCarryingLayer)):
            break
        path.append(index)
    while path and not isinstance(net.layers[path[-1]], UnitCarryingLayer):
        path.pop()
    return path


def _carried_part(net, bp, layer, path, samples) -> np.ndarray:
    """sum_m C[m] Jz_u[m] Jz_u[m]^T for every unit u (n, d, d) over the rows m of the
    ``samples`` (a slice), summed over the unit-carrying layers of ``path``
    (:func:`_carried_path`).

    When a depthwise convolution (a ``UnitCarryingLayer``) reads the neuron's map through
    its own non-linear activation, the pair of offspring is averaged only at the reader, so
    S_u also holds sum_m C[m] Jz_u[m] Jz_u[m]^T for every such layer (docs/splitting.md,
    "Separable blocks"). Pooling in between is linear and passes the Jacobian maps through
    itself. One unit at a time: its maps, d times its activations, are what this costs.
    Every layer takes the samples' rows of its own cache in ``bp`` and of its gradient.
    """
    obj = net.layers[layer]
    jacobian = obj.output_jacobian(bp.caches[layer], samples)  # unit -> (H, W, N_c, d)
    between = [net.layers[index].in_mode(net.mode) for index in path]
    carry = {index: step.carry_jacobian(bp.douts[index], bp.caches[index], samples)
             for index, step in zip(path, between) if isinstance(step, UnitCarryingLayer)}
    S = np.zeros((obj.n_neurons, obj.neuron_dim, obj.neuron_dim))
    for unit in range(obj.n_neurons):
        J = jacobian(unit)
        for index, step in zip(path, between):
            if index not in carry:  # linear, channel-separate: the d maps ride as channels
                J = step.forward(J.transpose(2, 3, 0, 1))[0].transpose(2, 3, 0, 1)
                continue
            C, Jz, J = carry[index](J, unit, need_out=index != path[-1])
            S[unit] += (Jz.T * C) @ Jz  # (d, d)
    return S


def _carried_chunk(net, bp, layer) -> int:
    """Samples per chunk of the carried part of ``layer``'s S, within :data:`CARRIED_BYTES`
    (:func:`_carried_bytes`)."""
    return max(1, CARRIED_BYTES // _carried_bytes(net, bp, layer))


def _carried_bytes(net, bp, layer) -> int:
    """Bytes per sample of the carried part of ``layer``'s S: copies of one unit's maps
    (H W d) and the chunk's unit-major arrays of all n units (n H W)."""
    n, *maps = bp.douts[layer].shape[1:]  # the neuron layer's output (N, n, H, W)
    d = net.layers[layer].neuron_dim
    return 8 * int(np.prod(maps)) * (_CARRIED_COPIES * d + _CARRIED_SHARED * n)


def _carried_matrices(net, bp, layers) -> dict:
    """``{layer: the carried part of S (n, d, d)}`` for each of ``layers`` that a unit-carrying
    layer reads (:func:`_carried_path`), chunk by chunk of samples.

    S is a sum over samples, and a sample's term needs only its rows of the forward caches
    and gradients of the one forward and backward pass ``bp`` (each layer slices its own
    cache): the chunks' sum is exact in either mode, with no second pass. A chunk is
    :func:`_carried_chunk` samples; the layers, and their units, are summed one after the
    other, so only one unit's maps are held at a time.
    """
    N = bp.douts[0].shape[0]
    S = {}
    for layer in layers:
        path = _carried_path(net, layer)
        if not path:
            continue
        chunk = _carried_chunk(net, bp, layer)
        for start in range(0, N, chunk):
            part = _carried_part(net, bp, layer, path, slice(start, start + chunk))
            S[layer] = S[layer] + part if layer in S else part
    return S


def _layer_matrices(net, bp, layer, d2f, carried) -> np.ndarray:
    """S of every neuron of ``layer``: the layer's own term, plus the carried ones
    (``carried``, from :func:`_carried_matrices`)."""
    S = net.layers[layer].splitting_matrices(bp.douts[layer], bp.caches[layer], d2f)
    return S + carried[layer] if layer in carried else S


def _layer_operator(net, bp, layer, d2f, carried):
    """V (n, d) -> row i: S_i V[i], with the carried terms of :func:`_layer_matrices`.

    The carried part, ``carried[layer]``, was formed once, in chunks, by
    :func:`_carried_matrices`: its n d^2 numbers are N H W / d times fewer than the
    Jacobian maps it sums, which a product would otherwise keep for the whole run.
    """
    own = net.layers[layer].splitting_operator(bp.douts[layer], bp.caches[layer], d2f)
    if layer not in carried:
        return own

    def product(V):
        return own(V) + np.einsum("cij,cj->ci", carried[layer], V)  # (n, d)

    return product


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
    obj = neuron_layer(net, layer)
    d2f = curvature_override(obj, relu_surrogate)
    bp = net.backprop(X, y)
    carried = _carried_matrices(net, bp, [layer])
    return _finite(_layer_matrices(net, bp, layer, d2f, carried), layer, X)


def _finite(result, layer, X):
    """``result`` if it is finite; else say that S overflowed and what to change."""
    if not np.all(np.isfinite(result)):
        raise FloatingPointError(
            f"the splitting matrices of layer {layer} overflowed (they hold NaN or inf; the "
            f"largest |input| is {float(np.max(np.abs(X))):.3g}): rescale the inputs, or "
            "check the network's weights for huge values"
        )
    return result


def splitting_indices(
    net, X, y, layer, which="min", solver="dense", relu_surrogate=None, tol=1e-10, seed=0,
    method=None,
):
    """Splitting indices (extreme eigenvalues of S_i) and directions, per neuron.

    Parameters
    ----------
    net, X, y, layer, relu_surrogate
        As in :func:`splitting_matrices`.
    which : {"min", "max"}
        ``"min"``: lambda_min and v_min (the optimal split); ``"max"``:
        lambda_max and v_max (the signed split, :func:`signed_split`).
    solver : {"dense", "matrix_free"}
        ``"dense"`` forms S (n d^2 memory) and calls ``eigh``;
        ``"matrix_free"`` runs batched Lanczos on the products S_i v_i, never
        forming S (:func:`minisplit.splitting.eigen.lanczos_extreme`).
    tol : float
        Matrix-free stopping tolerance (relative residual), > 0.
    seed : int or Generator
        Matrix-free starting vectors.
    method : str or None
        Deprecated spelling of ``solver`` (a DeprecationWarning; it will go).

    Returns
    -------
    values : ndarray (n_neurons,)
    vectors : ndarray (n_neurons, d), unit rows (sign: largest entry positive).
    """
    if method is not None:
        warnings.warn(
            "splitting_indices(method=...) is deprecated; use solver=...",
            DeprecationWarning, stacklevel=2,
        )
        solver = method
    return splitting_indices_of_layers(net, X, y, [layer], which, solver, relu_surrogate, tol,
                                       seed)[layer]


def splitting_indices_of_layers(
    net, X, y, layers, which="min", solver="dense", relu_surrogate=None, tol=1e-10, seed=0,
):
    """:func:`splitting_indices` of several layers from one forward and backward pass.

    What a growth round needs: the gradient g and the caches of the pass are the same for
    every layer, so one :meth:`Network.backprop` serves them all.

    Parameters
    ----------
    layers : sequence of int
        Distinct neuron layers.
    net, X, y, which, solver, relu_surrogate, tol, seed
        As in :func:`splitting_indices` (``seed`` starts every layer's Lanczos run alike).

    Returns
    -------
    dict {layer: (values, vectors)}
        In the order of ``layers``.

    Examples
    --------
    >>> import numpy as np, minisplit as ms
    >>> net = ms.mlp([2, 3, 4, 1], seed=0)
    >>> X, y = np.random.default_rng(0).normal(size=(8, 2)), np.zeros((8, 1))
    >>> both = ms.splitting_indices_of_layers(net, X, y, [0, 1])
    >>> np.allclose(both[1][0], ms.splitting_indices(net, X, y, 1)[0])
    True
    """
    check_choice(which, "which", WHICH)
    check_choice(solver, "solver", SOLVERS)
    tol = check_real(tol, "tol", low=0, low_open=True)
    overrides = {}
    for layer in layers:
        if layer in overrides:
            raise ValueError(f"layers must be distinct, got {list(layers)}")
        overrides[layer] = curvature_override(neuron_layer(net, layer), relu_surrogate)
    bp = net.backprop(X, y)
    carried = _carried_matrices(net, bp, overrides)
    out = {}
    for layer, d2f in overrides.items():
        if solver == "dense":
            S = _finite(_layer_matrices(net, bp, layer, d2f, carried), layer, X)
            out[layer] = dense_extreme(S, which)
            continue
        obj = net.layers[layer]
        product = _layer_operator(net, bp, layer, d2f, carried)  # the per-call work, done once
        values, vectors, _ = lanczos_extreme(
            lambda V, product=product, layer=layer: _finite(product(V), layer, X),
            obj.n_neurons,
            obj.neuron_dim,
            which=which,
            tol=tol,
            seed=seed,
        )
        out[layer] = (values, vectors)
    return out
