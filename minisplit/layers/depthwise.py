"""Depthwise 2-D convolution (NCHW): channel c of the output reads only channel c of the input.

Channel c has one kh x kw filter ``W[c]`` (T = kh * kw taps) and a bias ``b[c]``. With
``cols`` (N, P, C, T) the per-channel input patches (the im2col of
:mod:`minisplit.layers.conv`, K = C * T split into channels and taps; P = Ho * Wo,
rows m = (n, p), M = N * P) and ``fold`` the adjoint of patch extraction:

forward      Z[m, c] = sum_t cols[m, c, t] W[c, t] + b[c]        A = f(Z)
backward     dZ = f'(Z) * dA     dW[c, t] = sum_m dZ[m, c] cols[m, c, t]   db = sum_m dZ
             dX = fold(dcols),   dcols[m, c, t] = dZ[m, c] W[c, t]
R-forward    R_Z = sum_t (R_cols W + cols V_W) + v_b             R_A = f'(Z) * R_Z
R-backward   R_dZ = f''(Z) * R_Z * dA + f'(Z) * R_dA
             R_dW = sum_m (R_dZ cols + dZ R_cols)    R_db = sum_m R_dZ
             R_dX = fold(R_dZ W + dZ V_W)

It is Conv2d with the off-diagonal channel blocks of W fixed at zero (groups = C), so
every formula is Conv2d's restricted to the diagonal (docs/derivatives.md). With
``batch_norm=True`` there is no bias and the rows Z (M, C) are batch-normalised per
channel before f, exactly as in Conv2d.

Two roles (docs/splitting.md, docs/surgery.md):

- a ``NeuronLayer``: channel c is neuron c, theta_c = [W[c].ravel(), b[c]] (d = T + 1;
  W[c].ravel() with BN), S_c = sum_m g_{m,c} f''(z_{m,c}) h~_{m,c} h~_{m,c}^T over its own
  channel's patches h_{m,c} = cols[m, c]. A depthwise channel is *not* splittable on its
  own: a second output channel would need a second input channel. It grows only when the
  neuron layer before it grows.
- a ``UnitCarryingLayer``: between a neuron layer and its reader it passes the units one to
  one, carrying its per-channel parameters. When unit u of the layer before splits, its
  filter (and b, or gamma, beta and running statistics) is copied unchanged
  (:meth:`with_units`), and the reader's weights on both copies are halved: the MobileNet
  rule of separable blocks.
"""

from __future__ import annotations

import numpy as np

from minisplit._checks import check_int, make_rng
from minisplit.activations import get_activation
from minisplit.layers import _batchnorm as bn
from minisplit.layers._columns import column_sums
from minisplit.layers._rows import RowBands
from minisplit.layers.base import BatchNormMixin, NeuronLayer, UnitCarryingLayer
from minisplit.layers.conv import (
    SlidingWindow,
    _channel_major,
    _fold,
    _nchw,
    _patches,
    _rows,
    _unit_major,
    _unit_rows,
    _unpack,
)


class DepthwiseConv2d(SlidingWindow, BatchNormMixin, NeuronLayer, UnitCarryingLayer):
    """Depthwise convolution ``A = f(dwconv(X, W) + b)``: one filter per channel.

    ``Z[n, c, y, x] = b[c] + sum_{a, e} W[c, a, e] * Xp[n, c, sh y + a, sw x + e]`` with
    ``Xp`` the zero-padded input; ``Ho``, ``Wo`` as in :class:`~minisplit.layers.Conv2d`.

    Parameters
    ----------
    channels : int
        Input and output channels (neurons), > 0.
    kernel_size, stride, padding : int or pair of int
        Per axis ``(h, w)``, as in :class:`~minisplit.layers.Conv2d`.
    activation : str
        One of :data:`minisplit.activations.ACTIVATIONS` (default ``"tanh"``).
    batch_norm : bool
        Batch-normalise each channel before f (default False): parameters ``W``, ``gamma``,
        ``beta``, buffers ``running_mean``, ``running_var``, as in Conv2d.
    bn_eps : float
        > 0 (default 1e-5).
    gamma_l1 : float
        >= 0, network slimming's sparsity penalty ``gamma_l1 * sum |gamma|`` (default 0; as
        in :class:`~minisplit.layers.Dense`).
    seed : int, Generator or None
        Initialisation ``W ~ N(0, 1/(kh kw))``, ``b = 0``; None draws fresh entropy.

    Attributes
    ----------
    W : ndarray (channels, kh, kw)
        ``W[c]`` is channel c's filter.
    b : ndarray (channels,)

    Notes
    -----
    The forward cache is laid out as Conv2d's, ``(X, Z, X.shape, A)`` (and the BN cache), but
    holds the input X itself: the forward and backward passes are one shifted multiply-add per
    tap over the padded maps, and the per-channel patches (M, C, T), taps in (kh, kw) order,
    are built from X only where the R-passes and the splitting matrices need them.

    Examples
    --------
    >>> import numpy as np
    >>> dw = DepthwiseConv2d(2, kernel_size=3, padding=1, activation="identity")
    >>> dw.set_params([np.ones((2, 3, 3)), np.array([0.0, 1.0])])
    >>> A, _ = dw.forward(np.ones((1, 2, 3, 3)))
    >>> A[0, 1]  # 1 + the number of in-image taps at each position
    array([[ 5.,  7.,  5.],
           [ 7., 10.,  7.],
           [ 5.,  7.,  5.]])
    """

    param_names = ("W", "b")

    def __init__(self, channels, kernel_size, stride=1, padding=0, activation="tanh",
                 batch_norm=False, bn_eps=1e-5, gamma_l1=0.0, seed=None):
        self._configure(channels, kernel_size, stride, padding, activation, batch_norm, bn_eps,
                        gamma_l1)
        rng = make_rng(seed, none=True)
        T = self.kernel_size[0] * self.kernel_size[1]
        W = rng.normal(0.0, 1.0 / np.sqrt(T), size=(self.channels, *self.kernel_size))
        self._assign([W, *self._default_neuron_params(self.channels)])
        self.set_buffers(self._default_buffers())

    def _configure(self, channels, kernel_size, stride=1, padding=0, activation="tanh",
                   batch_norm=False, bn_eps=1e-5, gamma_l1=0.0):
        self.channels = check_int(channels, "channels", low=1)
        self._configure_window(kernel_size, stride, padding)
        self.act = get_activation(activation)
        self._configure_batch_norm(batch_norm, bn_eps, gamma_l1)

    def param_shapes(self) -> dict:
        return {"W": (self.channels, *self.kernel_size), **self._channel_shapes(self.channels)}

    def config(self) -> dict:
        return {
            "channels": self.channels,
            **self._window_config(),
            "activation": self.act.name,
            **self._batch_norm_config(),
        }

    def check_input(self, X: np.ndarray) -> None:
        """Raise ValueError unless X is (N, channels, H, W) and the kernel fits."""
        if X.ndim != 4 or X.shape[1] != self.channels:
            raise ValueError(f"DepthwiseConv2d input must have shape (N, {self.channels}, H, W), "
                             f"got {X.shape}")
        self._check_window(*X.shape[2:])

    # ---- the passes (docs/derivatives.md) ---------------------------------------------------

    def _cols(self, X):
        """Per-channel patches (M, C, T) of X."""
        cols = _patches(X, self.kernel_size, self.stride, self.padding)  # (N, P, C T)
        return cols.reshape(-1, self.channels, self.kernel_size[0] * self.kernel_size[1])

    def _fold(self, dcols, x_shape):
        """fold of per-channel patch gradients ``dcols`` (M, C, T) onto X (N, C, H, W)."""
        dcols_T = dcols.reshape(dcols.shape[0], -1).T  # (C T, M), K-major as _fold wants
        return _fold(dcols_T, x_shape, self.kernel_size, self.stride, self.padding)

    def _taps(self, W):
        return W.reshape(self.channels, -1)  # (C, T)

    def _bands(self, H, W) -> RowBands:
        """The convolution of H x W maps as band matrices, row by row (:mod:`._rows`)."""
        return RowBands.of(H, W, self.kernel_size, self.stride, self.padding)

    def forward(self, X):
        N, C = X.shape[:2]
        Ho, Wo = self.output_shape(*X.shape[2:])
        Xc = _channel_major(X)  # (C, H, W, N), channel-major
        Z = _unit_rows(self._convolve_maps(Xc, Ho, Wo))  # (M, C), fresh
        bn_cache = None
        if self.batch_norm:
            Z, bn_cache = self._normalise(Z)  # (M, C): Y, the activation's input
        else:
            Z += self.b
        Z = _nchw(Z, N, Ho, Wo)  # (N, C, Ho, Wo)
        A = self.act.f(Z)
        cache = (X, Z, X.shape, A) if bn_cache is None else (X, Z, X.shape, A, bn_cache)
        return A, cache

    def backward(self, dA, cache, need_dX=True):
        X, Z, x_shape, A, bn_cache = _unpack(cache)
        dZ = _rows(self.act.slope(Z, A) * dA)  # (M, C)
        if bn_cache is None:
            channel_grads = [column_sums(dZ)]  # db (C,)
        else:
            dZ, dgamma, dbeta = bn.backward(dZ, self.gamma, bn_cache)
            channel_grads = [self._gamma_l1_grad(dgamma), dbeta]  # + the penalty's
        N, C, Ho, Wo = Z.shape
        maps = _unit_major(dZ, N, Ho, Wo)  # (C, Ho, Wo, N), channel-major
        Xc = _channel_major(X)  # (C, H, W, N)
        bands = self._bands(*x_shape[2:])
        B = bands.matrices(self.W)  # (C, Wo, kh, W)
        dW = np.empty(self.W.shape)  # (C, kh, kw)
        dXc = np.empty(Xc.shape) if need_dX else None  # (C, H, W, N)
        for c in range(C):  # channel by channel, each a few matrix products
            dW[c] = bands.filter_gradient(maps[c], Xc[c])
            if need_dX:
                bands.adjoint(B[c], maps[c], dXc[c])
        dX = dXc.transpose(3, 0, 1, 2) if need_dX else None  # (N, C, H, W), a view
        return dX, [dW, *channel_grads]

    def r_forward(self, R_X, V, cache):
        X, Z, _, A, bn_cache = _unpack(cache)
        cols = self._cols(X)  # (M, C, T)
        N, Ho, Wo = Z.shape[0], Z.shape[2], Z.shape[3]
        R_Z = np.einsum("mct,ct->mc", cols, self._taps(V[0]))  # (M, C)
        R_cols = None
        if R_X is not None:
            R_cols = self._cols(R_X)  # (M, C, T)
            R_Z += np.einsum("mct,ct->mc", R_cols, self._taps(self.W))
        R_lin, R_Zh = R_Z, None
        if bn_cache is None:
            R_Z = R_Z + V[1]
        else:
            R_Z, R_Zh = bn.r_forward(R_lin, self.gamma, V[1], V[2], bn_cache)  # (M, C)
        R_Z = _nchw(R_Z, N, Ho, Wo)  # (N, C, Ho, Wo)
        return self.act.slope(Z, A) * R_Z, (R_cols, R_Z, R_lin, R_Zh)

    def r_backward(self, dA, R_dA, cache, r_cache, V, need_dX=True):
        X, Z, x_shape, A, bn_cache = _unpack(cache)
        cols = self._cols(X)  # (M, C, T)
        R_cols, R_Z, R_lin, R_Zh = r_cache
        df = self.act.slope(Z, A)
        dZ = _rows(df * dA)  # (M, C)
        R_dZ = _rows(self.act.curvature(Z, A) * R_Z * dA + df * R_dA)  # (M, C)
        if bn_cache is None:
            R_channel = [column_sums(R_dZ)]  # R_db (C,)
        else:
            dZ, R_dZ, R_dgamma, R_dbeta = bn.r_backward(dZ, R_dZ, R_lin, R_Zh, self.gamma,
                                                        V[1], bn_cache)
            R_channel = [R_dgamma, R_dbeta]
        R_dW = np.einsum("mc,mct->ct", R_dZ, cols)  # (C, T)
        if R_cols is not None:
            R_dW += np.einsum("mc,mct->ct", dZ, R_cols)
        if not need_dX:
            return None, None, [R_dW.reshape(self.W.shape), *R_channel]
        Wt, V_W = self._taps(self.W), self._taps(V[0])  # (C, T)
        dX = self._fold(dZ[:, :, None] * Wt, x_shape)  # (N, C, H, W)
        R_dX = self._fold(R_dZ[:, :, None] * Wt + dZ[:, :, None] * V_W, x_shape)
        return dX, R_dX, [R_dW.reshape(self.W.shape), *R_channel]

    def flops(self, in_shape) -> int:
        return self.channels * self.flops_per_neuron(in_shape)

    # ---- NeuronLayer: splitting matrices (docs/splitting.md) -------------------------------

    @property
    def n_neurons(self) -> int:
        return self.channels

    @property
    def neuron_dim(self) -> int:
        return self.kernel_size[0] * self.kernel_size[1] + (0 if self.batch_norm else 1)

    def _resized(self, n):
        return {"channels": n}

    def _inputs(self, X):
        """h~_{m,c} (M, C, d): channel c's patch of X at row m, with a 1 for the bias (not with
        BN)."""
        return self._with_bias_input(self._cols(X))  # (M, C, d)

    def splitting_matrices(self, dA, cache, d2f=None):
        C = self._coefficients(dA, cache, d2f)  # (M, C)
        H = self._inputs(cache[0])  # (M, C, d), from the cached input
        return np.einsum("mc,mci,mcj->cij", C, H, H)  # (C, d, d)

    def splitting_operator(self, dA, cache, d2f=None):
        C = self._coefficients(dA, cache, d2f)  # (M, C), once for every product
        H = self._inputs(cache[0])  # (M, C, d), from the cached input

        def product(V):
            return np.einsum("mc,mcd->cd", np.einsum("mcd,cd->mc", H, V) * C, H)  # (C, d)

        return product

    def output_jacobian(self, cache, samples=slice(None)):
        """``unit -> (Ho, Wo, N, d)``: J[y, x, n, :] = f'(z) c_c h~, channel c's own patch at
        (n, y, x) with a 1 (alone, times the folded BN scale c_c, with batch norm), for the
        ``samples`` (a slice)."""
        X, (Ho, Wo) = cache[0][samples], cache[1].shape[2:]
        slope = self._unit_slope(cache, samples)  # (C, Ho, Wo, N)

        def maps(unit):  # channel c's patches only: (N, P, T)
            H = _patches(X[:, unit : unit + 1], self.kernel_size, self.stride, self.padding)
            H = self._with_bias_input(H)  # (N, P, d)
            H = H.reshape(X.shape[0], Ho, Wo, -1).transpose(1, 2, 0, 3)  # (Ho, Wo, N, d)
            return np.multiply(slope[unit][..., None], H, out=np.empty(H.shape))

        return maps

    def flops_per_neuron(self, in_shape) -> int:
        Ho, Wo = self.output_shape(*in_shape[1:])
        return self.kernel_size[0] * self.kernel_size[1] * Ho * Wo

    # ---- UnitCarryingLayer: surgery of the layer before (docs/surgery.md) ------------------

    def carry_jacobian(self, dA, cache, samples=slice(None)):
        """``(J, unit, need_out) -> (C, Jz, J_out)``: Jz = dwconv(J) without bias, each of the
        d direction maps (H, W, N, d) of the unit convolved with its filter;
        C = g f''(z) c_c^2; J_out = f'(z) c_c Jz (docs/splitting.md). Rows m = (y, x, n), of
        the ``samples`` (a slice)."""
        Ho, Wo = cache[1].shape[2:]
        slope = self._unit_slope(cache, samples)  # (C, Ho, Wo, N)
        N = slope.shape[-1]
        coefficients = _unit_major(self._coefficients(dA, cache, None, samples), N, Ho, Wo)
        bands = self._bands(*cache[2][2:])
        B = bands.matrices(self.W)  # (C, Wo, kh, W)

        def carry(J, unit, need_out=True):
            Jz = np.empty((Ho, Wo, *J.shape[2:]))  # (Ho, Wo, N, d)
            maps = np.ascontiguousarray(J).reshape(*J.shape[:2], -1)
            bands.convolve(B[unit], maps, Jz.reshape(Ho, Wo, -1))
            J_out = slope[unit][..., None] * Jz if need_out else None
            return coefficients[unit].ravel(), Jz.reshape(-1, J.shape[-1]), J_out

        return carry

    def _convolve_maps(self, maps, Ho, Wo) -> np.ndarray:
        """Each channel's maps convolved with its filter, no bias: (C, H, W, ...) -> (C, Ho,
        Wo, ...), channel-major and contiguous, channel by channel as matrix products
        (:class:`~minisplit.layers._rows.RowBands`)."""
        C, H, W = maps.shape[:3]
        bands = self._bands(H, W)
        B = bands.matrices(self.W)  # (C, Wo, kh, W)
        out = np.empty((C, Ho, Wo, *maps.shape[3:]))
        for c in range(C):
            bands.convolve(B[c], maps[c].reshape(H, W, -1), out[c].reshape(Ho, Wo, -1))
        return out

    def identity_filter(self) -> np.ndarray:
        """The (kh, kw) filter of a brand-new channel: 1 at the centre tap (kh // 2, kw // 2),
        0 elsewhere (for odd kernels with padding k // 2, the channel passes its input)."""
        W = np.zeros(self.kernel_size)  # (kh, kw)
        W[self.kernel_size[0] // 2, self.kernel_size[1] // 2] = 1.0
        return W

    def with_units(self, parents):
        if parents is None:
            raise TypeError("parents must be integer indices (n',), got None")
        parents = self._check_parents(parents, np.size(parents))
        new = parents >= 0
        source = np.maximum(parents, 0)
        W = np.where(new[:, None, None], self.W[source], self.identity_filter())  # (n', kh, kw)
        channel = (self._channel_params(parents) if self.batch_norm
                   else [self._inherit(self.b, parents, 0.0)])
        return DepthwiseConv2d.from_config({**self.config(), "channels": parents.size},
                                           [W, *channel], self._neuron_buffers(parents.size, None,
                                                                              parents))

    def params_per_unit(self, n_units) -> int:
        return self.params_per_neuron()

    def flops_per_unit(self, in_shape, n_units) -> int:
        return self.flops_per_neuron(in_shape)
