"""Parameter-free layers between a convolution and its reader: AvgPool2d, GlobalAvgPool2d
and Flatten.

All three are linear, so their R-operator is the layer itself: R_A = layer(R_X),
R_dX = backward(R_dA). All keep channels apart (``passes_units = True``), so a split
output channel of the convolution before them stays one block of their output.
See the module docstring of :mod:`minisplit.layers.base` for the naming.

AvgPool2d        A[n, c, y, x] = mean_{a < kh, e < kw} X[n, c, kh y + a, kw x + e]
                 dX[n, c, i, j] = dA[n, c, i // kh, j // kw] / (kh kw)
GlobalAvgPool2d  A[n, c] = mean_{i < H, j < W} X[n, c, i, j]                   (N, C)
                 dX[n, c, i, j] = dA[n, c] / (H W)
Flatten          A[n, (c H + i) W + j] = X[n, c, i, j]            (C-major, NCHW)
                 dX = dA reshaped to X's shape
"""

from __future__ import annotations

import numpy as np

from minisplit._checks import check_int_pair
from minisplit.layers.base import Layer


def _check_nchw(X, name: str) -> None:
    if X.ndim != 4:
        raise ValueError(f"{name} input must have shape (N, C, H, W), got {X.shape}")


class AvgPool2d(Layer):
    """Non-overlapping kh x kw average pooling (stride = window) on NCHW input.

    Parameters
    ----------
    k : int or pair of int
        The window ``(kh, kw)``, which is also the stride, each > 0; an int k means
        ``(k, k)``. H must be divisible by kh and W by kw.

    Attributes
    ----------
    k : tuple of int
        ``(kh, kw)`` (``config()`` writes ``{"k": [kh, kw]}``).

    Examples
    --------
    >>> import numpy as np
    >>> A, _ = AvgPool2d(2).forward(np.arange(16.0).reshape(1, 1, 4, 4))
    >>> A[0, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    >>> AvgPool2d((1, 2)).forward(np.arange(4.0).reshape(1, 1, 2, 2))[0][0, 0]
    array([[0.5],
           [2.5]])
    """

    passes_units = True

    def __init__(self, k):
        self._configure(k)

    def _configure(self, k):
        self.k = check_int_pair(k, "k", low=1)

    def config(self) -> dict:
        return {"k": list(self.k)}

    def check_input(self, X: np.ndarray) -> None:
        """Raise ValueError unless X is (N, C, H, W) with H divisible by kh and W by kw."""
        _check_nchw(X, "AvgPool2d")
        H, W = X.shape[2:]
        kh, kw = self.k
        misfits = [f"{axis} {name}={size} is not a multiple of {k}"
                   for axis, name, size, k in (("height", "H", H, kh), ("width", "W", W, kw))
                   if size % k]
        if misfits:
            raise ValueError(
                f"AvgPool2d window {kh}x{kw} needs H divisible by {kh} and W divisible by {kw}, "
                f"got H={H}, W={W}: the {' and the '.join(misfits)}"
            )

    def _pool(self, X):
        N, C, H, W = X.shape
        kh, kw = self.k
        return X.reshape(N, C, H // kh, kh, W // kw, kw).mean(axis=(3, 5))  # (N, C, H/kh, W/kw)

    def _unpool(self, dA):
        N, C, Ho, Wo = dA.shape
        kh, kw = self.k
        spread = np.broadcast_to((dA / (kh * kw))[:, :, :, None, :, None], (N, C, Ho, kh, Wo, kw))
        return spread.reshape(N, C, Ho * kh, Wo * kw)  # (N, C, H, W), a copy

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


class GlobalAvgPool2d(Layer):
    """(N, C, H, W) -> (N, C): the mean over all H x W positions of each channel.

    Channel c stays one unit (column c of the output), so a Conv2d before it is read by
    the Dense after it through one column per channel.

    Examples
    --------
    >>> import numpy as np
    >>> A, _ = GlobalAvgPool2d().forward(np.arange(12.0).reshape(1, 2, 2, 3))
    >>> A  # channel 0 holds 0 ... 5, channel 1 holds 6 ... 11
    array([[2.5, 8.5]])
    """

    passes_units = True

    def check_input(self, X: np.ndarray) -> None:
        """Raise ValueError unless X is (N, C, H, W)."""
        _check_nchw(X, "GlobalAvgPool2d")

    @staticmethod
    def _spread(dA, x_shape):
        H, W = x_shape[2:]
        return np.broadcast_to((dA / (H * W))[:, :, None, None], x_shape).copy()  # (N, C, H, W)

    def forward(self, X):
        return X.mean(axis=(2, 3)), X.shape  # (N, C)

    def backward(self, dA, cache, need_dX=True):
        return (self._spread(dA, cache) if need_dX else None), []

    def r_forward(self, R_X, V, cache):
        return (None if R_X is None else R_X.mean(axis=(2, 3))), None

    def r_backward(self, dA, R_dA, cache, r_cache, V, need_dX=True):
        if not need_dX:
            return None, None, []
        return self._spread(dA, cache), self._spread(R_dA, cache), []


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
