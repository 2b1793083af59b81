"""Dense (fully connected) layer: A = f(Z), Z = X W^T + b.

Row i of ``W`` (n_out, n_in) together with ``b[i]`` is neuron i.
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
"""

from __future__ import annotations

import numpy as np

from minisplit._checks import check_array, check_int, make_rng
from minisplit.activations import get_activation
from minisplit.layers._outer import biased_outer_operator, weighted_outer_sum, with_ones
from minisplit.layers.base import NeuronLayer, ReadingLayer


class Dense(NeuronLayer, ReadingLayer):
    """Fully connected layer ``A = f(X W^T + b)``.

    Parameters
    ----------
    n_in, n_out : int
        Fan-in and number of neurons, both > 0.
    activation : str
        One of :data:`minisplit.activations.ACTIVATIONS` (default ``"tanh"``).
    seed : int, Generator or None
        Initialisation: ``W ~ N(0, 1/n_in)``, ``b = 0``; None draws fresh entropy.

    Attributes
    ----------
    W : ndarray (n_out, n_in)
        Row i is neuron i's incoming weights.
    b : ndarray (n_out,)

    Examples
    --------
    >>> import numpy as np
    >>> dense = Dense(3, 2, activation="tanh", seed=0)
    >>> A, cache = dense.forward(np.ones((4, 3)))
    >>> A.shape
    (4, 2)
    """

    param_names = ("W", "b")

    def __init__(self, n_in, n_out, activation="tanh", seed=None):
        self._configure(n_in, n_out, activation)
        self._check_memory()
        rng = make_rng(seed, none=True)
        self.W = rng.normal(0.0, 1.0 / np.sqrt(self.n_in), size=(self.n_out, self.n_in))
        self.b = np.zeros(self.n_out)

    def _configure(self, n_in, n_out, activation="tanh"):
        self.n_in = check_int(n_in, "n_in", low=1)
        self.n_out = check_int(n_out, "n_out", low=1)
        self.act = get_activation(activation)

    def config(self) -> dict:
        return {"n_in": self.n_in, "n_out": self.n_out, "activation": self.act.name}

    def param_shapes(self) -> dict:
        return {"W": (self.n_out, self.n_in), "b": (self.n_out,)}

    def check_input(self, X: np.ndarray) -> None:
        """Raise ValueError unless X has shape (N, n_in)."""
        if X.ndim != 2 or X.shape[1] != self.n_in:
            raise ValueError(f"Dense input must have shape (N, {self.n_in}), got {X.shape}")

    def forward(self, X):
        Z = X @ self.W.T  # (N, n_out)
        Z += self.b  # in place: Z is fresh, and each temporary costs a memory pass
        return self.act.f(Z), (X, Z)

    def backward(self, dA, cache, need_dX=True):
        X, Z = cache
        dZ = self.act.df(Z)  # (N, n_out), a fresh array
        dZ *= dA
        dW = dZ.T @ X  # (n_out, n_in)
        db = dZ.sum(axis=0)  # (n_out,)
        dX = dZ @ self.W if need_dX else None  # (N, n_in)
        return dX, [dW, db]

    def r_forward(self, R_X, V, cache):
        X, Z = cache
        V_W, v_b = V
        R_Z = X @ V_W.T + v_b  # (N, n_out)
        if R_X is not None:
            R_Z = R_Z + R_X @ self.W.T
        return self.act.df(Z) * R_Z, (R_X, R_Z)

    def r_backward(self, dA, R_dA, cache, r_cache, V, need_dX=True):
        X, Z = cache
        R_X, R_Z = r_cache
        V_W, _ = V
        df = self.act.df(Z)
        dZ = df * dA  # (N, n_out)
        R_dZ = self.act.d2f(Z) * R_Z * dA + df * R_dA  # (N, n_out)
        R_dW = R_dZ.T @ X  # (n_out, n_in)
        if R_X is not None:
            R_dW = R_dW + dZ.T @ R_X
        R_db = R_dZ.sum(axis=0)  # (n_out,)
        if not need_dX:
            return None, None, [R_dW, R_db]
        dX = dZ @ self.W  # (N, n_in)
        R_dX = R_dZ @ self.W + dZ @ V_W  # (N, n_in)
        return dX, R_dX, [R_dW, R_db]

    def flops(self, in_shape) -> int:
        return self.n_out * self.n_in

    # ---- NeuronLayer: splitting (docs/splitting.md) ----------------------------------------

    @property
    def n_neurons(self) -> int:
        return self.n_out

    @property
    def neuron_dim(self) -> int:
        return self.n_in + 1

    def neuron_params(self):
        return np.hstack([self.W, self.b[:, None]])  # (n_out, n_in + 1)

    def _params_from_theta(self, theta):
        return [theta[:, :-1], theta[:, -1]]  # W (n, n_in), b (n,)

    def _resized(self, n):
        return {"n_out": n}

    def _coefficients(self, dA, cache, d2f):
        """C[n, i] = g_{n,i} f''(z_{n,i}) (N, n_out), after checking dA."""
        Z = cache[1]
        if np.shape(dA) != Z.shape:
            raise ValueError(f"dA must have the layer output's shape {Z.shape}, got {np.shape(dA)}")
        return dA * (d2f or self.act.d2f)(Z)  # (N, n_out)

    def splitting_matrices(self, dA, cache, d2f=None):
        C = self._coefficients(dA, cache, d2f)  # (N, n_out)
        return weighted_outer_sum(with_ones(cache[0]), C)

    def splitting_operator(self, dA, cache, d2f=None):
        C = self._coefficients(dA, cache, d2f)  # (N, n_out), once for every product
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
        return Dense.from_config({**self.config(), "n_in": n_units * block}, [W, self.b])

    def params_per_unit(self, n_units) -> int:
        return self.n_out * self._block(n_units)

    def flops_per_unit(self, in_shape, n_units) -> int:
        return self.n_out * self._block(n_units)
