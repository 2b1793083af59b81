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


def _carried_terms(net, bp, layer) -> list:
    """``[(C, Jz)]``, one pair per unit-carrying layer between ``layer`` and its reader.

    When a depthwise convolution (a ``UnitCarryingLayer``) reads the neuron's map through
    its own non-linear activation, the pair of offspring is averaged only at the reader, so
    S_u also holds sum_m C[m, u] Jz[m, u] Jz[m, u]^T for every such layer
    (docs/splitting.md, "Separable blocks"). Pooling in between is linear and passes the
    Jacobian maps through itself. Empty (and nothing computed) without such a layer.
    """
    path = []
    for index in range(layer + 1, len(net.layers)):
        obj = net.layers[index]
        if not (obj.passes_units or isinstance(obj, UnitCarryingLayer)):
            break
        path.append(index)
    while path and not isinstance(net.layers[path[-1]], UnitCarryingLayer):
        path.pop()
    if not path:
        return []
    J = net.layers[layer].output_jacobian(bp.caches[layer])  # (N, n, d, H, W)
    terms = []
    for index in path:
        obj = net.layers[index].in_mode(net.mode)
        if isinstance(obj, UnitCarryingLayer):
            C, Jz, J = obj.carry_jacobian(J, bp.douts[index], bp.caches[index])
            terms.append((C, Jz))
        else:  # linear and channel-separate: the direction maps ride along as channels
            N, n, d = J.shape[:3]
            maps = obj.forward(J.reshape(N, n * d, *J.shape[3:]))[0]
            J = maps.reshape(N, n, d, *maps.shape[2:])
    return terms


def _layer_matrices(net, bp, layer, d2f) -> np.ndarray:
    """S of every neuron of ``layer``: the layer's own term, plus the carried ones."""
    S = net.layers[layer].splitting_matrices(bp.douts[layer], bp.caches[layer], d2f)
    for C, Jz in _carried_terms(net, bp, layer):
        S = S + np.einsum("mc,mci,mcj->cij", C, Jz, Jz)  # (n, d, d)
    return S


def _layer_operator(net, bp, layer, d2f):
    """V (n, d) -> row i: S_i V[i], with the carried terms of :func:`_layer_matrices`."""
    own = net.layers[layer].splitting_operator(bp.douts[layer], bp.caches[layer], d2f)
    terms = _carried_terms(net, bp, layer)
    if not terms:
        return own

    def product(V):
        out = own(V)
        for C, Jz in terms:
            out = out + np.einsum("mc,mcd->cd", np.einsum("mcd,cd->mc", Jz, V) * C, Jz)
        return out

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
    return _finite(_layer_matrices(net, bp, layer, d2f), layer, X)


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
    check_choice(which, "which", WHICH)
    check_choice(solver, "solver", SOLVERS)
    tol = check_real(tol, "tol", low=0, low_open=True)
    obj = neuron_layer(net, layer)
    d2f = curvature_override(obj, relu_surrogate)
    bp = net.backprop(X, y)
    if solver == "dense":
        return dense_extreme(_finite(_layer_matrices(net, bp, layer, d2f), layer, X), which)
    product = _layer_operator(net, bp, layer, d2f)  # the per-call work, done once
    values, vectors, _ = lanczos_extreme(
        lambda V: _finite(product(V), layer, X),
        obj.n_neurons,
        obj.neuron_dim,
        which=which,
        tol=tol,
        seed=seed,
    )
    return values, vectors
