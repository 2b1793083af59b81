"""A network is a list of layers and a loss; it only composes them.

Parameters are handled as a list of arrays in layer order (``net.params``);
a flat vector means ``concatenate([p.ravel() for p in params])``
(see :func:`flatten` / :func:`unflatten`).

The Hessian-vector product is Pearlmutter's R-operator: one forward pass, one
forward R-pass, and one backward pass that carries the gradient and its
R-image together (docs/derivatives.md). It is exact, not a finite difference.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from minisplit._checks import check_array, check_int, check_type, make_rng
from minisplit.layers.base import Layer
from minisplit.layers.dense import Dense
from minisplit.losses import get_loss

#: ``Network.hessian`` refuses networks with more parameters than this
#: (the dense Hessian has P^2 entries and costs P Hessian-vector products).
MAX_HESSIAN_PARAMS = 3000


def flatten(arrays) -> np.ndarray:
    """Concatenate arrays into one flat float64 vector (``p.ravel()`` in order)."""
    arrays = list(arrays)
    if not arrays:
        return np.zeros(0)
    return np.concatenate([np.ravel(a) for a in arrays]).astype(np.float64, copy=False)


def unflatten(vector, like) -> list[np.ndarray]:
    """Split a flat vector into arrays shaped like the arrays in ``like`` (copies)."""
    vector = np.asarray(vector, dtype=np.float64)
    sizes = [int(np.size(a)) for a in like]
    if vector.shape != (sum(sizes),):
        raise ValueError(f"vector must have shape ({sum(sizes)},), got {vector.shape}")
    out, start = [], 0
    for a, size in zip(like, sizes):
        out.append(vector[start : start + size].reshape(np.shape(a)).copy())
        start += size
    return out


@dataclass
class Backprop:
    """What one forward and backward pass leaves behind, per layer.

    ``caches[l]`` is layer l's forward cache, ``douts[l]`` is dL/dA_l (the
    back-propagated gradient with respect to layer l's output, 1/N inside),
    ``grads`` the parameter gradient in ``params`` order.
    """

    loss: float
    grads: list
    caches: list
    douts: list


class Network:
    """A feed-forward network: layers composed in order, then a loss.

    Parameters
    ----------
    layers : list of Layer
        Applied in order; the last layer's output is the prediction F (N, k).
    loss : {"mse", "cross_entropy"}
        ``mse``: L = 1/(2N) sum ||F - y||^2, y (N, k) float.
        ``cross_entropy``: mean softmax cross-entropy, y (N,) int labels.

    Examples
    --------
    >>> import numpy as np
    >>> from minisplit import mlp
    >>> net = mlp([2, 3, 1], activation="tanh", loss="mse", seed=0)
    >>> X, y = np.ones((4, 2)), np.zeros((4, 1))
    >>> value, grads = net.loss_and_grad(X, y)
    >>> [g.shape for g in grads]
    [(3, 2), (3,), (1, 3), (1,)]
    """

    def __init__(self, layers, loss="mse"):
        layers = list(layers)
        if not layers:
            raise ValueError("layers must be a non-empty list of layers, got []")
        for index, obj in enumerate(layers):
            check_type(obj, f"layers[{index}]", Layer)
        self.layers = layers
        self.loss_fn = get_loss(loss)

    # ---- parameters -----------------------------------------------------------

    @property
    def params(self) -> list[np.ndarray]:
        """The live parameter arrays in layer order (each layer's ``param_names``)."""
        return [p for obj in self.layers for p in obj.params]

    @property
    def n_params(self) -> int:
        """Total number of scalar parameters P."""
        return sum(p.size for p in self.params)

    def with_params(self, params) -> Network:
        """A copy of this network with the given parameters (list or flat vector)."""
        if isinstance(params, np.ndarray) and params.ndim == 1:
            params = unflatten(params, self.params)
        params = list(params)
        if len(params) != len(self.params):
            raise ValueError(
                f"params must hold {len(self.params)} arrays, got {len(params)}"
            )
        new = self.copy()
        start = 0
        for obj in new.layers:
            n = len(obj.param_names)
            obj.set_params(params[start : start + n])
            start += n
        return new

    def _with_params_unchecked(self, params) -> Network:
        """:meth:`with_params` for the inner loop of training: a list, no checks."""
        layers, start = [], 0
        for obj in self.layers:
            n = len(obj.param_names)
            twin = copy.copy(obj)  # the configuration is shared, the parameters are new
            twin._assign(params[start : start + n])
            layers.append(twin)
            start += n
        return Network(layers, self.loss_fn)

    def copy(self) -> Network:
        """An independent copy (layers and parameter arrays copied)."""
        return Network([obj.copy() for obj in self.layers], self.loss_fn.name)

    # ---- input checks -----------------------------------------------------------

    def _check_X(self, X) -> np.ndarray:
        X = check_array(X, "X")
        self.layers[0].check_input(X)
        if X.shape[0] == 0:
            raise ValueError("X must hold at least one sample, got 0")
        return X

    def _check_Xy(self, X, y):
        X = self._check_X(X)
        F, caches = self._forward(X)
        y = self.loss_fn.check_targets(y, X.shape[0], F.shape[1])
        return X, y, F, caches

    # ---- forward and backward -------------------------------------------------

    def _forward(self, X):
        caches = []
        A = X
        for index, obj in enumerate(self.layers):
            if index > 0:
                try:
                    obj.check_input(A)
                except ValueError as err:
                    raise ValueError(f"layer {index} ({type(obj).__name__}): {err}") from None
            A, cache = obj.forward(A)
            caches.append(cache)
        if A.ndim != 2:
            raise ValueError(f"the last layer must output (N, k), got shape {A.shape}")
        return A, caches

    def forward(self, X) -> np.ndarray:
        """The prediction F (N, k) for inputs X."""
        F, _ = self._forward(self._check_X(X))
        return F

    def loss(self, X, y) -> float:
        """The mean loss L(X, y)."""
        _, y, F, _ = self._check_Xy(X, y)
        return self.loss_fn.forward(F, y)[0]

    def backprop(self, X, y) -> Backprop:
        """One forward and one backward pass, keeping every layer's cache and dL/dA.

        The splitting matrices are built from exactly these: a neuron's
        ``S = sum_n g_n f''(z_n) h_n h_n^T`` needs its layer's cache (h, z) and
        ``g = douts[layer]``.
        """
        _, y, F, caches = self._check_Xy(X, y)
        return self._backward(F, y, caches)

    def _backward(self, F, y, caches) -> Backprop:
        """The loss and the backward pass from a forward pass's output and caches (unchecked)."""
        value, loss_cache = self.loss_fn.forward(F, y)
        dA = self.loss_fn.backward(loss_cache)
        douts = [None] * len(self.layers)
        grads = []
        for index in range(len(self.layers) - 1, -1, -1):
            douts[index] = dA
            dA, layer_grads = self.layers[index].backward(dA, caches[index], need_dX=index > 0)
            grads = layer_grads + grads
        return Backprop(value, grads, caches, douts)

    def loss_and_grad(self, X, y):
        """The mean loss and its gradient, a list shaped like ``params``."""
        result = self.backprop(X, y)
        return result.loss, result.grads

    def _loss_and_grad_unchecked(self, X, y):
        """:meth:`loss_and_grad` for inputs already checked (float64 X, targets as the loss
        takes them): the training loop's inner step."""
        F, caches = self._forward(X)
        result = self._backward(F, y, caches)
        return result.loss, result.grads

    # ---- second order ---------------------------------------------------------------

    def _split_direction(self, V):
        """Validate a direction (list or flat vector) and group it by layer."""
        params = self.params
        V = unflatten(V, params) if isinstance(V, np.ndarray) and V.ndim == 1 else list(V)
        if len(V) != len(params):
            raise ValueError(f"V must hold {len(params)} arrays, got {len(V)}")
        V = [check_array(v, "V") for v in V]
        for p, v in zip(params, V):
            if v.shape != p.shape:
                raise ValueError(f"V entries must match params shapes: {p.shape}, got {v.shape}")
        out, start = [], 0
        for obj in self.layers:
            n = len(obj.param_names)
            out.append(V[start : start + n])
            start += n
        return out

    def hvp(self, X, y, V) -> list[np.ndarray]:
        """The exact Hessian-vector product H V of the mean loss (R-operator).

        Parameters
        ----------
        X, y : arrays
            Inputs and targets as for :meth:`loss`.
        V : list of arrays shaped like ``params``, or a flat vector (P,)

        Returns
        -------
        list of arrays shaped like ``params``
            ``(d^2 L / d params^2) V``.

        Notes
        -----
        Forward: ``R_A_l = layers[l].r_forward(R_A_{l-1}, V_l)``; at the loss
        ``R_dF = loss.r_backward(R_F)``; backward: each layer maps
        ``(dA, R_dA)`` to ``(dX, R_dX)`` and gives the block ``R_dW`` of H V.
        Cost: about two gradient evaluations (docs/derivatives.md).
        """
        _, y, F, caches = self._check_Xy(X, y)
        V_layers = self._split_direction(V)
        R_A, r_caches = None, []
        for obj, cache, V_l in zip(self.layers, caches, V_layers):
            R_A, r_cache = obj.r_forward(R_A, V_l, cache)
            r_caches.append(r_cache)
        _, loss_cache = self.loss_fn.forward(F, y)
        dA = self.loss_fn.backward(loss_cache)
        R_dA = self.loss_fn.r_backward(loss_cache, R_A)
        out = []
        for index in range(len(self.layers) - 1, -1, -1):
            dA, R_dA, R_grads = self.layers[index].r_backward(
                dA, R_dA, caches[index], r_caches[index], V_layers[index], need_dX=index > 0
            )
            out = R_grads + out
        return out

    def hessian(self, X, y) -> np.ndarray:
        """The dense Hessian (P, P) of the mean loss over the flat parameter vector.

        Column j is ``hvp(X, y, e_j)``. Refused above :data:`MAX_HESSIAN_PARAMS`
        parameters (memory P^2 * 8 bytes and P Hessian-vector products).
        """
        P = self.n_params
        if P > MAX_HESSIAN_PARAMS:
            raise ValueError(
                f"hessian is for small networks: at most {MAX_HESSIAN_PARAMS} parameters, "
                f"this one has {P}; use hvp for larger ones"
            )
        X = self._check_X(X)
        H = np.empty((P, P))
        e = np.zeros(P)
        for j in range(P):
            e[j] = 1.0
            H[:, j] = flatten(self.hvp(X, y, e))
            e[j] = 0.0
        return H

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(obj) for obj in self.layers)
        return f"Network([\n  {inner}\n], loss={self.loss_fn.name!r})"


def mlp(sizes, activation="tanh", loss="mse", output_activation="identity", seed=None) -> Network:
    """A multi-layer perceptron of Dense layers.

    Parameters
    ----------
    sizes : sequence of int
        ``[n_in, hidden_1, ..., n_out]``, at least two entries, all > 0.
    activation : str
        Hidden-layer activation.
    loss : {"mse", "cross_entropy"}
    output_activation : str
        Activation of the last layer (default identity: logits or regression).
    seed : int, Generator or None
        One generator initialises all layers in order; None draws fresh entropy.

    Examples
    --------
    >>> net = mlp([2, 4, 1], seed=0)
    >>> [obj.W.shape for obj in net.layers]
    [(4, 2), (1, 4)]
    """
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Iterable):
        raise TypeError(f"sizes must be a sequence of integers, got {sizes!r}")
    sizes = list(sizes)
    if len(sizes) < 2:
        raise ValueError(f"sizes must list at least an input and an output size, got {sizes}")
    sizes = [check_int(s, f"sizes[{i}]", low=1) for i, s in enumerate(sizes)]
    rng = make_rng(seed, none=True)
    layers = [
        Dense(n_in, n_out, activation if i < len(sizes) - 2 else output_activation, seed=rng)
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]))
    ]
    return Network(layers, loss)
