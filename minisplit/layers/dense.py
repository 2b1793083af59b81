"""Dense (fully connected) layer: A = f(Z), Z = X W^T + b; or A = f(BN(X W^T)).

Row i of ``W`` (n_out, n_in) together with ``b[i]`` is neuron i. With ``batch_norm=True``
the pre-activation is batch-normalised inside the layer (no bias: it would cancel):
Y = gamma (X W^T - mu) s + beta, A = f(Y) (:mod:`minisplit.layers._batchnorm`; neuron i
is ``W[i]`` with ``gamma[i]``, ``beta[i]`` and its running statistics).
See the module docstring of :mod:`minisplit.layers.base` for the naming.

Derivation (docs/derivatives.md, section "Dense"):

forward      Z = X W^T + b                       A = f(Z)
backward     dZ = f'(Z) * dA     dW = dZ^T X     db = sum_n dZ     dX = dZ W
R-forward    R_Z = R_X W^T + X V_W^T + v_b       R_A = f'(Z) * R_Z
R-backward   R_dZ = f''(Z) * R_Z * dA + f'(Z) * R_dA
             R_dW = R_dZ^T X + dZ^T R_X          R_db = sum_n R_dZ
             R_dX = R_dZ W + dZ V_W
splitting    theta_i = [W[i], b[i]],  h~ = [x, 1],  a_i = f(theta_i . h~)
             Hessian_theta a_i = f''(z_i) h~ h~^T
             S_i = sum_n dA[n, i] f''(Z[n, i]) h~_n h~_n^T     (docs/splitting.md)

With batch norm, Y replaces Z after the activation, and the BN passes sit between the
linear part (Z = X W^T, R_Z = R_X W^T + X V_W^T) and the activation; splitting folds
the eval-mode BN into the neuron: c_i = gamma_i / sqrt(running_var_i + eps),
theta_i = W[i] (no bias coordinate), S_i = c_i^2 sum_n dA[n, i] f''(Y[n, i]) x_n x_n^T.
"""

from __future__ import annotations

import numpy as np

from minisplit._checks import check_array, check_int, make_rng
from minisplit.activations import get_activation
from minisplit.layers import _batchnorm as bn
from minisplit.layers._columns import column_sums
from minisplit.layers._outer import biased_outer_operator, weighted_outer_sum
from minisplit.layers.base import BatchNormMixin, NeuronLayer, ReadingLayer


def _unpack(cache):
    """``(X, Z, A, bn_cache)``: the forward cache is ``(X, Z, A)`` without batch norm,
    ``(X, Y, A, bn_cache)`` with it (Y, the activation's input, in Z's place; A = f(Z) the
    output, from which tanh and sigmoid get their derivatives without evaluating f again)."""
    return (*cache, None) if len(cache) == 3 else cache


class Dense(BatchNormMixin, NeuronLayer, ReadingLayer):
    """Fully connected layer ``A = f(X W^T + b)``.

    Parameters
    ----------
    n_in, n_out : int
        Fan-in and number of neurons, both > 0.
    activation : str
        One of :data:`minisplit.activations.ACTIVATIONS` (default ``"tanh"``).
    batch_norm : bool
        Normalise the pre-activation per neuron (default False); then the parameters are
        ``W``, ``gamma``, ``beta`` (no ``b``) and the buffers ``running_mean``,
        ``running_var``. Train mode uses the batch's statistics, eval mode the running
        ones (``Network.mode``; docs/network.md).
    bn_eps : float
        > 0, the epsilon inside the square root (default 1e-5, as PyTorch).
    gamma_l1 : float
        >= 0, network slimming's sparsity penalty: ``gamma_l1 * sum |gamma|`` is added to
        the loss (``Layer.penalty``; gradient ``gamma_l1 * sign(gamma)``, no curvature;
        docs/pruning.md). Default 0 (off); needs ``batch_norm=True`` when > 0.
    seed : int, Generator or None
        Initialisation: ``W ~ N(0, 1/n_in)``, ``b = 0`` (``gamma = 1``, ``beta = 0``,
        running mean 0, running variance 1); None draws fresh entropy.

    Attributes
    ----------
    W : ndarray (n_out, n_in)
        Row i is neuron i's incoming weights.
    b : ndarray (n_out,)
        Without batch norm only.
    gamma, beta, running_mean, running_var : ndarray (n_out,)
        With batch norm only.

    Examples
    --------
    >>> import numpy as np
    >>> dense = Dense(3, 2, activation="tanh", seed=0)
    >>> A, cache = dense.forward(np.ones((4, 3)))
    >>> A.shape
    (4, 2)
    """

    param_names = ("W", "b")

    def __init__(self, n_in, n_out, activation="tanh", batch_norm=False, bn_eps=1e-5,
                 gamma_l1=0.0, seed=None):
        self._configure(n_in, n_out, activation, batch_norm, bn_eps, gamma_l1)
        self._check_memory()
        rng = make_rng(seed, none=True)
        W = rng.normal(0.0, 1.0 / np.sqrt(self.n_in), size=(self.n_out, self.n_in))
        self._assign([W, *self._default_neuron_params(self.n_out)])
        self.set_buffers(self._default_buffers())

    def _configure(self, n_in, n_out, activation="tanh", batch_norm=False, bn_eps=1e-5,
                   gamma_l1=0.0):
        self.n_in = check_int(n_in, "n_in", low=1)
        self.n_out = check_int(n_out, "n_out", low=1)
        self.act = get_activation(activation)
        self._configure_batch_norm(batch_norm, bn_eps, gamma_l1)

    def config(self) -> dict:
        return {"n_in": self.n_in, "n_out": self.n_out, "activation": self.act.name,
                **self._batch_norm_config()}

    def param_shapes(self) -> dict:
        return {"W": (self.n_out, self.n_in), **self._channel_shapes(self.n_out)}

    def check_input(self, X: np.ndarray) -> None:
        """Raise ValueError unless X has shape (N, n_in)."""
        if X.ndim != 2 or X.shape[1] != self.n_in:
            raise ValueError(f"Dense input must have shape (N, {self.n_in}), got {X.shape}")

    def forward(self, X):
        Z = X @ self.W.T  # (N, n_out)
        if self.batch_norm:
            Y, bn_cache = self._normalise(Z)  # (N, n_out)
            A = self.act.f(Y)
            return A, (X, Y, A, bn_cache)
        Z += self.b  # in place: Z is fresh, and each temporary costs a memory pass
        A = self.act.f(Z)
        return A, (X, Z, A)

    def backward(self, dA, cache, need_dX=True):
        X, Z, A, bn_cache = _unpack(cache)  # Z: the activation's input (Y with batch norm)
        dZ = self.act.slope(Z, A)  # (N, n_out), a fresh array
        dZ *= dA
        if bn_cache is None:
            channel_grads = [column_sums(dZ)]  # db (n_out,)
        else:
            dZ, dgamma, dbeta = bn.backward(dZ, self.gamma, bn_cache)  # dZ: d(X W^T)
            channel_grads = [self._gamma_l1_grad(dgamma), dbeta]  # + the penalty's
        dW = dZ.T @ X  # (n_out, n_in)
        dX = dZ @ self.W if need_dX else None  # (N, n_in)
        return dX, [dW, *channel_grads]

    def r_forward(self, R_X, V, cache):
        X, Z, A, bn_cache = _unpack(cache)
        V_W = V[0]
        R_Z = X @ V_W.T  # (N, n_out), fresh: updated in place below
        if R_X is not None:
            R_Z += R_X @ self.W.T
        if bn_cache is None:
            R_Z += V[1]
            R_lin = R_Zh = None  # (read by the batch norm's R-backward only)
        else:
            R_lin = R_Z
            R_Z, R_Zh = bn.r_forward(R_lin, self.gamma, V[1], V[2], bn_cache)
        R_A = self.act.slope(Z, A)  # fresh
        R_A *= R_Z
        return R_A, (R_X, R_Z, R_lin, R_Zh)

    def r_backward(self, dA, R_dA, cache, r_cache, V, need_dX=True):
        X, Z, A, bn_cache = _unpack(cache)
        R_X, R_Z, R_lin, R_Zh = r_cache
        V_W = V[0]
        df = self.act.slope(Z, A)  # fresh, as the curvature: updated in place
        dZ = df * dA  # (N, n_out)
        R_dZ = self.act.curvature(Z, A)  # f''(Z) * R_Z * dA + f'(Z) * R_dA, (N, n_out)
        R_dZ *= R_Z
        R_dZ *= dA
        df *= R_dA
        R_dZ += df
        if bn_cache is None:
            R_channel = [column_sums(R_dZ)]  # R_db (n_out,)
        else:
            dZ, R_dZ, R_dgamma, R_dbeta = bn.r_backward(dZ, R_dZ, R_lin, R_Zh, self.gamma,
                                                        V[1], bn_cache)
            R_channel = [R_dgamma, R_dbeta]  # the gamma_l1 penalty has no curvature
        R_dW = R_dZ.T @ X  # (n_out, n_in)
        if R_X is not None:
            R_dW += dZ.T @ R_X
        if not need_dX:
            return None, None, [R_dW, *R_channel]
        dX = dZ @ self.W  # (N, n_in)
        R_dX = R_dZ @ self.W  # (N, n_in)
        R_dX += dZ @ V_W
        return dX, R_dX, [R_dW, *R_channel]

    def flops(self, in_shape) -> int:
        return self.n_out * self.n_in

    # ---- NeuronLayer: splitting (docs/splitting.md) ----------------------------------------

    @property
    def n_neurons(self) -> int:
        return self.n_out

    @property
    def neuron_dim(self) -> int:
        return self.n_in + (0 if self.batch_norm else 1)

    def _resized(self, n):
        return {"n_out": n}

    def _coefficients(self, dA, cache, d2f):
        """C[n, i] = g_{n,i} f''(z_{n,i}) (N, n_out), after checking dA (times c_i^2, the
        folded eval-mode BN scale, with batch norm)."""
        Z = cache[1]
        if np.shape(dA) != Z.shape:
            raise ValueError(f"dA must have the layer output's shape {Z.shape}, got {np.shape(dA)}")
        _, _, A, bn_cache = _unpack(cache)
        scale = self._fold_scale(bn_cache) ** 2  # c_i^2 of the folded BN, or 1
        curvature = self.act.curvature(Z, A) if d2f is None else d2f(Z)
        return dA * curvature * scale  # (N, n_out)

    def splitting_matrices(self, dA, cache, d2f=None):
        C = self._coefficients(dA, cache, d2f)  # (N, n_out)
        return weighted_outer_sum(cache[0], C, ones=not self.batch_norm)

    def splitting_operator(self, dA, cache, d2f=None):
        C = self._coefficients(dA, cache, d2f)  # (N, n_out), once for every product
        if self.batch_norm:
            return bn.outer_operator(cache[0], C)
        return biased_outer_operator(cache[0], C)

    def flops_per_neuron(self, in_shape) -> int:
        return self.n_in

    # ---- ReadingLayer: surgery on the units it reads (docs/surgery.md) ---------------------

    def _block(self, n_units) -> int:
        """Columns per unit: a Dense reader of n_units units gives each n_in // n_units."""
        n_units = check_int(n_units, "n_units", low=1)
        if self.n_in % n_units:
            raise ValueError(f"Dense with n_in={self.n_in} cannot read {n_units} equal units")
        return self.n_in // n_units

    def out_weights(self, n_units):
        block = self._block(n_units)
        return self.W.reshape(self.n_out, n_units, block).transpose(1, 0, 2).copy()

    def with_out_weights(self, out_weights):
        out_weights = check_array(out_weights, "out_weights")
        if out_weights.ndim != 3 or out_weights.shape[1] != self.n_out or not len(out_weights):
            raise ValueError(
                f"out_weights must have shape (units, {self.n_out}, block) with units > 0, "
                f"got {out_weights.shape}"
            )
        n_units, n_out, block = out_weights.shape
        W = out_weights.transpose(1, 0, 2).reshape(n_out, n_units * block)  # (n_out, n_in')
        return Dense.from_config({**self.config(), "n_in": n_units * block},
                                 [W, *self.params[1:]], self.buffers)

    def params_per_unit(self, n_units) -> int:
        return self.n_out * self._block(n_units)

    def flops_per_unit(self, in_shape, n_units) -> int:
        return self.n_out * self._block(n_units)
