"""Parameter-free layers between a convolution and its reader: AvgPool2d and Flatten.

Both are linear, so their R-operator is the layer itself: R_A = layer(R_X),
R_dX = backward(R_dA). Both keep channels apart (``passes_units = True``), so a
split output channel of the convolution before them stays one block of their output.
See the module docstring of :mod:`minisplit.layers.base` for the naming.

AvgPool2d    A[n, c, y, x] = mean_{a, e < k} X[n, c, k y + a, k x + e]
             dX[n, c, i, j] = dA[n, c, i // k, j // k] / k^2
Flatten      A[n, (c H + i) W + j] = X[n, c, i, j]            (C-major, NCHW)
             dX = dA reshaped to X's shape
"""

from __future__ import annotations

import numpy as np

from minisplit._checks import check_int
from minisplit.layers.base import Layer


def _check_nchw(X, name: str) -> None:
    if X.ndim != 4:
        raise ValueError(f"{name} input must have shape (N, C, H, W), got {X.shape}")


class AvgPool2d(Layer):
    """Non-overlapping k x k average pooling (stride k) on NCHW input.

    Parameters
    ----------
    k : int
        Window size and stride, > 0; H and W must be divisible by k.

    Examples
    --------
    >>> import numpy as np
    >>> A, _ = AvgPool2d(2).forward(np.arange(16.0).reshape(1, 1, 4, 4))
    >>> A[0, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    """

    passes_units = True

    def __init__(self, k):
        self._configure(k)

    def _configure(self, k):
        self.k = check_int(k, "k", low=1)

    def config(self) -> dict:
        return {"k": self.k}

    def check_input(self, X: np.ndarray) -> None:
        """Raise ValueError unless X is (N, C, H, W) with H and W divisible by k."""
        _check_nchw(X, "AvgPool2d")
        H, W = X.shape[2:]
        if H % self.k or W % self.k:
            raise ValueError(
                f"AvgPool2d({self.k}) needs H and W divisible by {self.k}, got H={H}, W={W}"
            )

    def _pool(self, X):
        N, C, H, W = X.shape
        k = self.k
        return X.reshape(N, C, H // k, k, W // k, k).mean(axis=(3, 5))  # (N, C, H/k, W/k)

    def _unpool(self, dA):
        N, C, Ho, Wo = dA.shape
        k = self.k
        spread = np.broadcast_to((dA / (k * k))[:, :, :, None, :, None], (N, C, Ho, k, Wo, k))
        return spread.reshape(N, C, Ho * k, Wo * k)  # (N, C, H, W), a copy

    def forward(self, X):
        return self._pool(X), None

    def backward(self, dA, cache, need_dX=True):
        return (self._unpool(dA) if need_dX else None), []

    def r_forward(self, R_X, V, cache):
        return (None if R_X is None else self._pool(R_X)), None

    def r_backward(self, dA, R_dA, cache, r_cache, V, need_dX=True):
        if not need_dX:
            return None, None, []
        return self._unpool(dA), self._unpool(R_dA), []


class Flatten(Layer):
    """(N, C, H, W) -> (N, C*H*W) in C-major order: channel c owns columns c*H*W ... (c+1)*H*W-1.

    Examples
    --------
    >>> import numpy as np
    >>> A, _ = Flatten().forward(np.zeros((2, 3, 4, 5)))
    >>> A.shape
    (2, 60)
    """

    passes_units = True

    def check_input(self, X: np.ndarray) -> None:
        """Raise ValueError unless X is (N, C, H, W)."""
        _check_nchw(X, "Flatten")

    def forward(self, X):
        return X.reshape(X.shape[0], -1), X.shape  # (N, C*H*W)

    def backward(self, dA, cache, need_dX=True):
        return (dA.reshape(cache) if need_dX else None), []

    def r_forward(self, R_X, V, cache):
        return (None if R_X is None else R_X.reshape(R_X.shape[0], -1)), None

    def r_backward(self, dA, R_dA, cache, r_cache, V, need_dX=True):
        if not need_dX:
            return None, None, []
        return dA.reshape(cache), R_dA.reshape(cache), []
