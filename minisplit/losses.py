"""Losses on the network output F (N, k): value, gradient and R-operator.

Naming: ``dF`` is dL/dF with F's shape; ``R_F`` is the R-operator image of F
(its directional derivative along the parameter direction V), ``R_dF`` that of
``dF``. Both losses are *means* over the N samples, so ``1/N`` sits inside
``dF`` and everything back-propagated from it.

mse            L = 1/(2N) sum_n ||F_n - y_n||^2
               dF = (F - y) / N
               R_dF = R_F / N
cross_entropy  L = 1/N sum_n [logsumexp(F_n) - F_{n, y_n}],  P = softmax(F)
               dF = (P - onehot(y)) / N
               R_dF = (P * R_F - P * sum_k(P * R_F)) / N      (row by row)
"""

from __future__ import annotations

import numpy as np

from minisplit._checks import check_choice, check_finite


class MSE:
    """Mean squared error L = 1/(2N) sum_n ||F_n - y_n||^2 with targets y (N, k)."""

    name = "mse"

    def check_targets(self, y, n_samples: int, n_out: int) -> np.ndarray:
        """Return y as float64 (N, k); TypeError for a non-real dtype, ValueError otherwise."""
        y = np.asarray(y)
        if not np.issubdtype(y.dtype, np.number) or np.issubdtype(y.dtype, np.complexfloating):
            raise TypeError(f"y must hold real numbers for mse, got dtype {y.dtype}")
        if y.shape != (n_samples, n_out):
            raise ValueError(f"y must have shape ({n_samples}, {n_out}) for mse, got {y.shape}")
        return check_finite(y.astype(np.float64, copy=False), "y")

    def forward(self, F, y):
        """Loss value and the cache the backward passes use."""
        E = F - y  # (N, k)
        value = 0.5 * float(np.sum(E * E)) / F.shape[0]
        return value, E

    def backward(self, cache):
        """dF = (F - y) / N."""
        E = cache
        return E / E.shape[0]

    def r_backward(self, cache, R_F):
        """R_dF = R_F / N: the output Hessian of mse is I / N."""
        return R_F / R_F.shape[0]


class CrossEntropy:
    """Mean softmax cross-entropy with integer labels y (N,) in [0, k)."""

    name = "cross_entropy"

    def check_targets(self, y, n_samples: int, n_out: int) -> np.ndarray:
        """Return y as int64 (N,); TypeError for a non-numeric dtype, ValueError otherwise."""
        y = np.asarray(y)
        if not (np.issubdtype(y.dtype, np.floating) or np.issubdtype(y.dtype, np.integer)):
            raise TypeError(
                f"y must hold integer class labels for cross_entropy, got dtype {y.dtype}"
            )
        if y.shape != (n_samples,):
            raise ValueError(
                f"y must have shape ({n_samples},) of integer labels for cross_entropy, "
                f"got {y.shape}"
            )
        if np.issubdtype(y.dtype, np.floating):
            check_finite(y, "y")
            fractional = y[y != np.round(y)]
            if fractional.size:
                raise ValueError(
                    f"y must hold integer class labels for cross_entropy, got {fractional[0]!r}"
                )
        if y.size and (y.min() < 0 or y.max() >= n_out):
            raise ValueError(
                f"labels must lie in [0, {n_out}), got values in [{y.min()}, {y.max()}]"
            )
        return y.astype(np.int64)

    def forward(self, F, y):
        """Loss value and the cache (softmax probabilities P, one-hot targets)."""
        N = F.shape[0]
        shifted = F - F.max(axis=1, keepdims=True)  # (N, k), stable log-sum-exp
        log_Z = np.log(np.sum(np.exp(shifted), axis=1))  # (N,)
        log_P = shifted - log_Z[:, None]  # (N, k)
        value = -float(np.sum(log_P[np.arange(N), y])) / N
        Y = np.zeros_like(F)
        Y[np.arange(N), y] = 1.0  # (N, k)
        return value, (np.exp(log_P), Y)

    def backward(self, cache):
        """dF = (P - onehot(y)) / N."""
        P, Y = cache
        return (P - Y) / P.shape[0]

    def r_backward(self, cache, R_F):
        """R_dF = (diag(P) - P P^T) R_F / N, row by row."""
        P, _ = cache
        PR = P * R_F  # (N, k)
        return (PR - P * PR.sum(axis=1, keepdims=True)) / P.shape[0]


LOSSES = {"mse": MSE, "cross_entropy": CrossEntropy}


def get_loss(name):
    """Look up a loss by name (``"mse"`` or ``"cross_entropy"``)."""
    if isinstance(name, (MSE, CrossEntropy)):
        return name
    return LOSSES[check_choice(name, "loss", sorted(LOSSES))]()
