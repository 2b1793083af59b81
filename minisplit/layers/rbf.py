"""Radial-basis (prototype) layer: A[n, i] = exp(-||X[n] - C[i]||^2 / (2 s^2)).

Row i of ``centers`` C (n_out, n_in) is neuron i's prototype; the width s is a
fixed hyper-parameter, not trained. See :mod:`minisplit.layers.base` for the naming.

Derivation (docs/derivatives.md, section "RBF"), with D[n, i] = X[n] - C[i] and
Q = ||D||^2, so that dA/dQ = -A / (2 s^2), dQ/dC[i] = -2 D, dQ/dX[n] = 2 D:

forward      Q = rowsum(X*X) - 2 X C^T + rowsum(C*C)^T    A = exp(-Q / (2 s^2))
             dA[n,i]/dC[i] = A D / s^2                    dA[n,i]/dX[n] = -A D / s^2
backward     G = dA * A
             dC = (G^T X - colsum(G) * C) / s^2           (= sum_n G D / s^2)
             dX = (G C - rowsum(G) * X) / s^2             (= -sum_i G D / s^2)
R-forward    P[n, i] = D . (R_X[n] - V[i])
                     = rowsum(X*R_X) - R_X C^T - X V^T + rowsum(C*V)^T
             R_A = -A * P / s^2
R-backward   R_G = R_dA * A + dA * R_A
             R_dC = (R_G^T X + G^T R_X - colsum(R_G) * C - colsum(G) * V) / s^2
             R_dX = (R_G C + G V - rowsum(R_G) * X - rowsum(G) * R_X) / s^2
splitting    theta_i = C[i],  Hessian_theta A[n, i] = A (D D^T / s^4 - I / s^2)
             with W = dA * A:  S_i = sum_n W[n, i] D D^T / s^4 - colsum(W)_i I / s^2
             sum_n W D D^T = M_i - (m_i c_i^T + c_i m_i^T) + colsum(W)_i c_i c_i^T
             with M_i = sum_n W[n, i] x_n x_n^T (one batched product) and m = W^T X
             S v = ((W*P)^T X - colsum(W*P) * C) / s^4 - colsum(W) * V / s^2  (row i),
             P = X V^T - rowsum(C*V)^T   (P[n, i] = D . v_i)   (docs/splitting.md)

An RBF layer reads its input non-linearly, so it is a NeuronLayer but not a
ReadingLayer: a split unit of the layer before cannot feed it.
"""

from __future__ import annotations

import numpy as np

from minisplit._checks import check_int, check_real, make_rng
from minisplit.layers._outer import weighted_outer_sum
from minisplit.layers.base import NeuronLayer


class RBF(NeuronLayer):
    """Gaussian prototype layer ``A = exp(-||X - C_i||^2 / (2 width^2))``.

    Parameters
    ----------
    n_in, n_out : int
        Input dimension and number of prototype neurons, both > 0.
    width : float
        The fixed width s > 0 shared by all neurons (not a parameter).
    seed : int, Generator or None
        Initialisation: ``centers ~ N(0, 1)``; None draws fresh entropy.

    Attributes
    ----------
    centers : ndarray (n_out, n_in)
        Row i is neuron i's prototype C[i].

    Notes
    -----
    Each output lies in (0, 1] and equals 1 exactly at its centre. The
    splitting matrix of a neuron is ``sum_n g a (D D^T / s^4 - I / s^2)``: a
    sample pulling on the neuron (g < 0) from farther than s (||D|| > s)
    contributes negative curvature along D (``g a (||D||^2/s^4 - 1/s^2)``) and
    positive curvature across it (``-g a / s^2``), so a neuron torn between two
    clusters of samples on either side has a negative splitting index.

    Distances use the expansion ``||x||^2 - 2 x.c + ||c||^2`` (matrix products,
    no (N, n, d) array), which costs about ``eps * ||x||^2 / s^2`` in relative
    accuracy: 4e-12 for inputs near 100 with s = 1 (measured). Centre inputs
    that sit far from the origin.

    References
    ----------
    Q. Liu, L. Wu, D. Wang, *Splitting Steepest Descent for Growing Neural
    Architectures*, NeurIPS 2019 (arXiv:1910.02366).

    Examples
    --------
    >>> import numpy as np
    >>> rbf = RBF(2, 3, width=1.0, seed=0)
    >>> A, cache = rbf.forward(np.zeros((4, 2)))
    >>> A.shape
    (4, 3)
    >>> bool(np.all((A > 0) & (A <= 1)))
    True
    """

    param_names = ("centers",)

    def __init__(self, n_in, n_out, width=1.0, seed=None):
        self._configure(n_in, n_out, width)
        self._check_memory()
        self.centers = make_rng(seed, none=True).standard_normal((self.n_out, self.n_in))

    def _configure(self, n_in, n_out, width=1.0):
        self.n_in = check_int(n_in, "n_in", low=1)
        self.n_out = check_int(n_out, "n_out", low=1)
        self.width = check_real(width, "width", low=0, low_open=True)
        square = self.width * self.width
        if square == 0.0 or not np.isfinite(1.0 / square):  # 1/s^2 is in every formula
            raise ValueError(
                f"width must be a finite number > 0 whose 1/width^2 is finite (width >= about "
                f"1e-154), got {self.width!r}"
            )

    def config(self) -> dict:
        return {"n_in": self.n_in, "n_out": self.n_out, "width": self.width}

    def param_shapes(self) -> dict:
        return {"centers": (self.n_out, self.n_in)}

    @property
    def _inv_s2(self) -> float:
        """1 / s^2 (a product, not ``**``, so a huge width gives 0 instead of OverflowError)."""
        return 1.0 / (self.width * self.width)

    def check_input(self, X: np.ndarray) -> None:
        """Raise ValueError unless X has shape (N, n_in)."""
        if X.ndim != 2 or X.shape[1] != self.n_in:
            raise ValueError(f"RBF input must have shape (N, {self.n_in}), got {X.shape}")

    def forward(self, X):
        C = self.centers
        Q = np.sum(X * X, axis=1)[:, None] - 2.0 * X @ C.T + np.sum(C * C, axis=1)  # (N, n_out)
        # the expansion can round a zero distance to a tiny negative number
        A = np.exp(-0.5 * self._inv_s2 * np.maximum(Q, 0.0))  # (N, n_out)
        return A, (X, A)

    def backward(self, dA, cache, need_dX=True):
        X, A = cache
        C, inv_s2 = self.centers, self._inv_s2
        G = dA * A  # (N, n_out)
        dC = (G.T @ X - G.sum(axis=0)[:, None] * C) * inv_s2  # (n_out, n_in)
        dX = (G @ C - G.sum(axis=1)[:, None] * X) * inv_s2 if need_dX else None  # (N, n_in)
        return dX, [dC]

    def r_forward(self, R_X, V, cache):
        X, A = cache
        (V_C,) = V
        C = self.centers
        P = np.sum(C * V_C, axis=1) - X @ V_C.T  # (N, n_out): D . (R_X - V), R_X part below
        if R_X is not None:
            P = P + np.sum(X * R_X, axis=1)[:, None] - R_X @ C.T
        R_A = -self._inv_s2 * A * P  # (N, n_out)
        return R_A, (R_X, R_A)

    def r_backward(self, dA, R_dA, cache, r_cache, V, need_dX=True):
        X, A = cache
        R_X, R_A = r_cache
        (V_C,) = V
        C, inv_s2 = self.centers, self._inv_s2
        G = dA * A  # (N, n_out)
        R_G = R_dA * A + dA * R_A  # (N, n_out)
        g_col, g_row = G.sum(axis=0), G.sum(axis=1)  # (n_out,), (N,)
        R_dC = R_G.T @ X - R_G.sum(axis=0)[:, None] * C - g_col[:, None] * V_C  # (n_out, n_in)
        if R_X is not None:
            R_dC = R_dC + G.T @ R_X
        if not need_dX:
            return None, None, [R_dC * inv_s2]
        R_dX = R_G @ C + G @ V_C - R_G.sum(axis=1)[:, None] * X  # (N, n_in)
        if R_X is not None:
            R_dX = R_dX - g_row[:, None] * R_X
        dX = (G @ C - g_row[:, None] * X) * inv_s2  # (N, n_in)
        return dX, R_dX * inv_s2, [R_dC * inv_s2]

    # ---- NeuronLayer: splitting (docs/splitting.md) ----------------------------------------

    @property
    def n_neurons(self) -> int:
        return self.n_out

    @property
    def neuron_dim(self) -> int:
        return self.n_in

    def neuron_params(self):
        return self.centers.copy()  # (n_out, n_in)

    def _params_from_theta(self, theta, parents):
        return [theta]  # centers (n, n_in)

    def _resized(self, n):
        return {"n_out": n}

    def flops_per_neuron(self, in_shape) -> int:
        return self.n_in

    def _curvature_weights(self, dA, cache, d2f):
        """W = dA * A (N, n_out), after checking the arguments of the splitting methods."""
        if d2f is not None:
            raise ValueError(
                f"d2f must be None for RBF (it has no activation whose f'' could be "
                f"replaced), got {d2f!r}"
            )
        _, A = cache
        dA = np.asarray(dA)
        if dA.shape != A.shape:
            raise ValueError(f"dA must have shape {A.shape}, got {dA.shape}")
        return dA * A

    def splitting_matrices(self, dA, cache, d2f=None):
        W = self._curvature_weights(dA, cache, d2f)  # (N, n_out)
        X, _ = cache
        C, inv_s2 = self.centers, self._inv_s2
        w = W.sum(axis=0)  # (n_out,)
        mc = (W.T @ X)[:, :, None] * C[:, None, :]  # (n_out, d, d): m_i c_i^T
        # each term is exactly symmetric, so S is too
        DD = weighted_outer_sum(X, W) - (mc + mc.transpose(0, 2, 1))  # (n_out, d, d)
        DD = DD + w[:, None, None] * (C[:, :, None] * C[:, None, :])
        return inv_s2 * inv_s2 * DD - (inv_s2 * w)[:, None, None] * np.eye(self.n_in)

    def splitting_operator(self, dA, cache, d2f=None):
        W = self._curvature_weights(dA, cache, d2f)  # (N, n_out), once for every product
        X, _ = cache
        C, inv_s2 = self.centers, self._inv_s2
        w = W.sum(axis=0)  # (n_out,)

        def product(V):
            WP = W * (X @ V.T - np.sum(C * V, axis=1))  # (N, n_out): W[n, i] D[n, i] . v_i
            DDv = WP.T @ X - WP.sum(axis=0)[:, None] * C  # (n_out, d)
            return inv_s2 * inv_s2 * DDv - inv_s2 * w[:, None] * V

        return product
