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

from minisplit._checks import (
    check_array,
    check_choice,
    check_int,
    check_real,
    check_type,
    make_rng,
)
from minisplit.layers._batchnorm import MODES
from minisplit.layers.base import BatchNormMixin, Layer
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

    ``caches[l]`` is trunk layer l's forward cache, ``douts[l]`` is dL/dA_l (the
    back-propagated gradient with respect to layer l's output, 1/N inside, every head
    attached there included), ``grads`` the parameter gradient in ``params`` order.
    """

    loss: float
    grads: list
    caches: list
    douts: list


@dataclass(frozen=True)
class Head:
    """A second output of a network: a reconstruction of its input (an autoencoder's decoder).

    The layers are applied to the output of trunk layer ``at``; their output H (N, k) is
    compared with the network's input X, flattened to (N, k), by half the mean squared
    error, and the result is added to the loss with ``weight``:

        L = loss_weight * loss(F, y) + sum_heads weight * 1/(2N) sum_n ||H_n - x_n||^2

    Parameters
    ----------
    at : int
        Index of the trunk layer whose output the head reads.
    layers : sequence of Layer
    weight : float
        >= 0 (Li et al.'s lambda_ae is 1).
    """

    at: int
    layers: tuple
    weight: float = 1.0

    def __post_init__(self):
        check_int(self.at, "at", low=0)
        layers = tuple(self.layers)
        if not layers:
            raise ValueError("layers must be a non-empty sequence of layers, got ()")
        for index, obj in enumerate(layers):
            check_type(obj, f"layers[{index}]", Layer)
        object.__setattr__(self, "layers", layers)
        object.__setattr__(self, "weight", check_real(self.weight, "weight", low=0))

    def with_layers(self, layers) -> Head:
        return Head(self.at, tuple(layers), self.weight)


class Network:
    """A feed-forward network: layers composed in order, then a loss; optionally heads.

    Parameters
    ----------
    layers : list of Layer
        The trunk, applied in order; the last layer's output is the prediction F (N, k).
    loss : {"mse", "cross_entropy"}
        ``mse``: L = 1/(2N) sum ||F - y||^2, y (N, k) float.
        ``cross_entropy``: mean softmax cross-entropy, y (N,) int labels.
    heads : sequence of Head
        Reconstruction branches (:class:`Head`), each adding its weighted loss.
    loss_weight : float
        > 0, the weight of the trunk's loss (Li et al.'s lambda_class is 20).
    mode : {"train", "eval"}
        How batch-normalised layers (``Dense``/``Conv2d`` with ``batch_norm=True``)
        compute: "train" with the batch's statistics, "eval" with their running ones
        (default "train"; :meth:`set_mode`). Ignored by a network without them.

    Notes
    -----
    A layer may add a penalty of its own to the loss (``Layer.penalty``, e.g. the
    prototype layer's R1 and R2); its gradient and R-operator are in the layer's
    backward passes. Parameters are ordered: the trunk's layers, then each head's.

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

    def __init__(self, layers, loss="mse", heads=(), loss_weight=1.0, mode="train"):
        layers = list(layers)
        if not layers:
            raise ValueError("layers must be a non-empty list of layers, got []")
        for index, obj in enumerate(layers):
            check_type(obj, f"layers[{index}]", Layer)
        heads = tuple(heads)
        for index, head in enumerate(heads):
            check_type(head, f"heads[{index}]", Head)
            if head.at >= len(layers):
                raise ValueError(f"heads[{index}].at must be a trunk layer index in "
                                 f"[0, {len(layers)}), got {head.at}")
        self.layers = layers
        self.heads = heads
        self.loss_fn = get_loss(loss)
        self.loss_weight = check_real(loss_weight, "loss_weight", low=0, low_open=True)
        self.mode = check_choice(mode, "mode", MODES)

    def set_mode(self, mode) -> Network:
        """Switch batch normalisation to ``mode`` ("train" or "eval"), in place; returns self.

        The mode is the network's (its layers are not changed): every forward pass hands
        it to each layer (``Layer.in_mode``), and copies (:meth:`copy`, :meth:`with_params`,
        surgery), :func:`minisplit.save` / :func:`minisplit.load` and checkpoints keep it.
        """
        self.mode = check_choice(mode, "mode", MODES)
        return self

    @property
    def has_batch_norm(self) -> bool:
        """True if some layer is batch-normalised (only then does :attr:`mode` matter)."""
        return any(isinstance(obj, BatchNormMixin) and obj.batch_norm for obj in self.all_layers)

    # ---- parameters -----------------------------------------------------------

    @property
    def all_layers(self) -> list:
        """The trunk's layers, then each head's, in parameter order."""
        return self.layers + [obj for head in self.heads for obj in head.layers]

    @property
    def params(self) -> list[np.ndarray]:
        """The live parameter arrays in layer order (each layer's ``param_names``)."""
        return [p for obj in self.all_layers for p in obj.params]

    @property
    def n_params(self) -> int:
        """Total number of scalar parameters P."""
        return sum(p.size for p in self.params)

    def _rebuilt(self, all_layers) -> Network:
        """A network of this structure from a new list of (trunk + head) layers."""
        n, heads, start = len(self.layers), [], len(self.layers)
        for head in self.heads:
            heads.append(head.with_layers(all_layers[start : start + len(head.layers)]))
            start += len(head.layers)
        return Network(all_layers[:n], self.loss_fn, heads, self.loss_weight, self.mode)

    def with_layers(self, layers) -> Network:
        """A network with these trunk layers and this network's heads, loss, weights and mode."""
        return Network(layers, self.loss_fn, self.heads, self.loss_weight, self.mode)

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
        for obj in new.all_layers:
            n = len(obj.param_names)
            obj.set_params(params[start : start + n])
            start += n
        return new

    def _with_params_unchecked(self, params) -> Network:
        """:meth:`with_params` for the inner loop of training: a list, no checks."""
        layers, start = [], 0
        for obj in self.all_layers:
            n = len(obj.param_names)
            twin = copy.copy(obj)  # the configuration is shared, the parameters are new
            twin._assign(params[start : start + n])
            layers.append(twin)
            start += n
        return self._rebuilt(layers)

    def copy(self) -> Network:
        """An independent copy (layers and parameter arrays copied)."""
        return self._rebuilt([obj.copy() for obj in self.all_layers])

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

    def _chain(self, objs, A, where, first=0):
        """Forward through ``objs`` in this network's mode; ``(output, caches)``, input errors
        named by ``where``."""
        caches = []
        for index, obj in enumerate(objs, start=first):
            if index > 0:
                try:
                    obj.check_input(A)
                except ValueError as err:
                    name = f"{where}{index}"
                    raise ValueError(f"{name} ({type(obj).__name__}): {err}") from None
            A, cache = obj.in_mode(self.mode).forward(A)
            caches.append(cache)
        return A, caches

    def _forward(self, X):
        """``(F, caches)``: the trunk's output and caches, then each head's (output, caches)
        and the input, appended as ``caches[len(layers):]`` (``_Heads``)."""
        A, caches = X, []
        outputs = {}
        for index, obj in enumerate(self.layers):
            A, (cache,) = self._chain([obj], A, "layer ", first=index)
            caches.append(cache)
            outputs[index] = A
        if A.ndim != 2:
            raise ValueError(f"the last layer must output (N, k), got shape {A.shape}")
        heads = []
        for h, head in enumerate(self.heads):
            H, head_caches = self._chain(head.layers, outputs[head.at], f"head {h} layer ", 1)
            target = X.reshape(X.shape[0], -1)
            if H.shape != target.shape:
                raise ValueError(f"head {h} must output the input's shape {target.shape} "
                                 f"(flattened), got {H.shape}")
            heads.append((H, head_caches, target))
        return A, _Heads(caches, heads)

    def forward(self, X) -> np.ndarray:
        """The prediction F (N, k) for inputs X."""
        F, _ = self._forward(self._check_X(X))
        return F

    def reconstruct(self, X, head=0) -> np.ndarray:
        """The output of head ``head`` (a reconstruction of X, flattened (N, k))."""
        check_int(head, "head", low=0, high=len(self.heads) - 1)
        _, caches = self._forward(self._check_X(X))
        return caches.heads[head][0]

    def loss(self, X, y) -> float:
        """The mean loss L(X, y) (with every head and layer penalty)."""
        _, y, F, caches = self._check_Xy(X, y)
        value = self.loss_weight * self.loss_fn.forward(F, y)[0]
        for head, (H, _, target) in zip(self.heads, caches.heads):
            E = H - target  # (N, k)
            value += head.weight * 0.5 * float(np.sum(E * E)) / H.shape[0]
        return float(value + self._penalties(caches))

    def backprop(self, X, y) -> Backprop:
        """One forward and one backward pass, keeping every layer's cache and dL/dA.

        The splitting matrices are built from exactly these: a neuron's
        ``S = sum_n g_n f''(z_n) h_n h_n^T`` needs its layer's cache (h, z) and
        ``g = douts[layer]``.
        """
        _, y, F, caches = self._check_Xy(X, y)
        return self._backward(F, y, caches)

    def _head_losses(self, caches):
        """``(value, {at: [(head, dX head)]}, head grads)``: every head's weighted loss and
        its backward pass to the trunk output it reads."""
        value, into, grads = 0.0, {}, []
        for head, (H, head_caches, target) in zip(self.heads, caches.heads):
            E = H - target  # (N, k)
            value += head.weight * 0.5 * float(np.sum(E * E)) / H.shape[0]
            dA = head.weight * E / H.shape[0]
            head_grads = []
            for obj, cache in zip(reversed(head.layers), reversed(head_caches)):
                dA, layer_grads = obj.backward(dA, cache)
                head_grads = layer_grads + head_grads
            into.setdefault(head.at, []).append(dA)
            grads += head_grads
        return value, into, grads

    def _penalties(self, caches) -> float:
        trunk = sum(obj.penalty(c) for obj, c in zip(self.layers, caches.trunk))
        heads = sum(obj.penalty(c) for head, (_, cs, _) in zip(self.heads, caches.heads)
                    for obj, c in zip(head.layers, cs))
        return float(trunk + heads)

    def _backward(self, F, y, caches) -> Backprop:
        """The loss and the backward pass from a forward pass's output and caches (unchecked)."""
        value, loss_cache = self.loss_fn.forward(F, y)
        dA = self.loss_fn.backward(loss_cache)
        if self.loss_weight != 1.0:  # (a product by 1 would only copy dA)
            value, dA = self.loss_weight * value, self.loss_weight * dA
        head_value, into, head_grads = self._head_losses(caches)
        value += head_value + self._penalties(caches)
        douts = [None] * len(self.layers)
        grads = []
        for index in range(len(self.layers) - 1, -1, -1):
            for dX in into.get(index, ()):
                dA = dA + dX
            douts[index] = dA
            dA, layer_grads = self.layers[index].backward(
                dA, caches.trunk[index], need_dX=index > 0
            )
            grads = layer_grads + grads
        return Backprop(float(value), grads + head_grads, list(caches.trunk), douts)

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
        """Validate a direction (list or flat vector) and group it by layer (trunk, heads)."""
        params = self.params
        V = unflatten(V, params) if isinstance(V, np.ndarray) and V.ndim == 1 else list(V)
        if len(V) != len(params):
            raise ValueError(f"V must hold {len(params)} arrays, got {len(V)}")
        V = [check_array(v, "V") for v in V]
        for p, v in zip(params, V):
            if v.shape != p.shape:
                raise ValueError(f"V entries must match params shapes: {p.shape}, got {v.shape}")
        out, start = [], 0
        for obj in self.all_layers:
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
        ``(dA, R_dA)`` to ``(dX, R_dX)`` and gives the block ``R_dW`` of H V. A head
        runs the same passes from the R-image of the trunk output it reads, and its
        ``(dX, R_dX)`` is added to the trunk's there. Cost: about two gradient
        evaluations (docs/derivatives.md).
        """
        _, y, F, caches = self._check_Xy(X, y)
        V_layers = self._split_direction(V)
        n = len(self.layers)
        R_A, r_caches, R_outputs = None, [], {}
        for index, (obj, cache, V_l) in enumerate(zip(self.layers, caches.trunk, V_layers)):
            R_A, r_cache = obj.r_forward(R_A, V_l, cache)
            r_caches.append(r_cache)
            R_outputs[index] = R_A
        _, loss_cache = self.loss_fn.forward(F, y)
        w = self.loss_weight
        dA = w * self.loss_fn.backward(loss_cache)
        R_dA = w * self.loss_fn.r_backward(loss_cache, R_A)
        into, head_out, start = {}, [], n
        for head, (H, head_caches, target) in zip(self.heads, caches.heads):
            V_head = V_layers[start : start + len(head.layers)]
            start += len(head.layers)
            R_H, head_r = R_outputs[head.at], []
            for obj, cache, V_l in zip(head.layers, head_caches, V_head):
                R_H, r_cache = obj.r_forward(R_H, V_l, cache)
                head_r.append(r_cache)
            hd = head.weight * (H - target) / H.shape[0]
            R_hd = head.weight * R_H / H.shape[0]
            grads = []
            for obj, cache, r_cache, V_l in zip(reversed(head.layers), reversed(head_caches),
                                                 reversed(head_r), reversed(V_head)):
                hd, R_hd, R_grads = obj.r_backward(hd, R_hd, cache, r_cache, V_l)
                grads = R_grads + grads
            into.setdefault(head.at, []).append((hd, R_hd))
            head_out += grads
        out = []
        for index in range(n - 1, -1, -1):
            for dX, R_dX in into.get(index, ()):
                dA, R_dA = dA + dX, R_dA + R_dX
            dA, R_dA, R_grads = self.layers[index].r_backward(
                dA, R_dA, caches.trunk[index], r_caches[index], V_layers[index],
                need_dX=index > 0,
            )
            out = R_grads + out
        return out + head_out

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
        extra = "" if not self.heads else f", heads={list(self.heads)!r}"
        if self.loss_weight != 1.0:
            extra += f", loss_weight={self.loss_weight!r}"
        if self.mode != "train":
            extra += f", mode={self.mode!r}"
        return f"Network([\n  {inner}\n], loss={self.loss_fn.name!r}{extra})"



@dataclass
class _Heads:
    """A forward pass's caches: the trunk's per layer (``trunk``, indexable like a list),
    and each head's ``(output, caches, target)`` (``heads``)."""

    trunk: list
    heads: list

    def __getitem__(self, index):
        return self.trunk[index]

    def __len__(self):
        return len(self.trunk)


def set_running_statistics(net, X) -> Network:
    """A copy of ``net`` whose batch-normalised layers' running statistics are those of X.

    One forward pass of the whole of X in train mode: each batch-normalised layer (trunk
    and heads) normalises its input with the batch statistics of X (mean and biased
    variance per channel, over samples and positions) and keeps exactly these as its
    ``running_mean`` and ``running_var``. Every layer's input is the train-mode output of
    the layers before it, which, with the statistics so set, is also their eval-mode
    output on X: afterwards ``net.forward(X)`` is the same in both modes (bit for bit).
    The training loop never updates running statistics; the growth loop calls this
    before every splitting round and at the end (docs/growth.md).

    Parameters
    ----------
    net : Network
    X : ndarray
        Inputs as for :meth:`Network.forward` (the whole set: exact, not a moving average).

    Returns
    -------
    Network
        A copy (its mode is ``net``'s); a network without batch norm comes back as a copy.

    Examples
    --------
    >>> import numpy as np
    >>> net = Network([Dense(2, 3, batch_norm=True, seed=0), Dense(3, 1, seed=1)])
    >>> X = np.arange(8.0).reshape(4, 2)
    >>> fitted = set_running_statistics(net, X)
    >>> bool(np.array_equal(fitted.forward(X), fitted.copy().set_mode("eval").forward(X)))
    True
    """
    check_type(net, "net", Network)
    new = net.copy()
    if not new.has_batch_norm:
        return new
    X = new._check_X(X)
    mode, new.mode = new.mode, "train"
    _, caches = new._forward(X)
    new.mode = mode
    head_caches = [c for _, cs, _ in caches.heads for c in cs]
    for obj, cache in zip(new.all_layers, list(caches.trunk) + head_caches):
        if isinstance(obj, BatchNormMixin) and obj.batch_norm:
            bn_cache = cache[-1]
            obj.set_buffers([bn_cache.mean, bn_cache.var])
    return new


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
