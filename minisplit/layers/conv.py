"""2-D convolution layer (NCHW): A = f(Z), Z = cross-correlation of X with W, plus b.

Output channel i (``W[i]`` (c_in, kh, kw) with ``b[i]``) is neuron i.
See the module docstring of :mod:`minisplit.layers.base` for the naming.

Everything is one Dense layer applied at every output position. ``cols``
(N, P, K) holds the input patch of every output position p (P = Ho * Wo,
K = c_in * kh * kw, flattened in ``W``'s order); with ``Wm = W.reshape(c_out, K)``
and rows m = (n, p) (M = N * P), ``fold`` the adjoint of patch extraction:

forward      Z = cols Wm^T + b                   A = f(Z)
backward     dZ = f'(Z) * dA     dW = dZ^T cols  db = sum_m dZ   dX = fold(Wm^T dZ^T)
R-forward    R_Z = R_cols Wm^T + cols V_W^T + v_b                R_A = f'(Z) * R_Z
R-backward   R_dZ = f''(Z) * R_Z * dA + f'(Z) * R_dA
             R_dW = R_dZ^T cols + dZ^T R_cols    R_db = sum_m R_dZ
             R_dX = fold(Wm^T R_dZ^T + V_W^T dZ^T)

Splitting (docs/splitting.md): with h~_m = [cols_m, 1],
S_i = sum_m g_{m,i} f''(z_{m,i}) h~_m h~_m^T, summed over samples AND positions.

With ``batch_norm=True`` there is no bias, and the rows (M, c_out) of cols Wm^T are
batch-normalised per channel between the convolution and f (statistics over samples AND
positions; :mod:`minisplit.layers._batchnorm`), exactly as in Dense; splitting folds the
eval-mode BN: theta_i = W[i].ravel(), S_i = c_i^2 sum_m g_{m,i} f''(y_{m,i}) cols_m cols_m^T.
"""

from __future__ import annotations

import numpy as np

from minisplit._checks import check_array, check_int, check_int_pair, make_rng
from minisplit.activations import get_activation
from minisplit.layers import _batchnorm as bn
from minisplit.layers._columns import column_sums
from minisplit.layers._outer import biased_outer_operator, weighted_outer_sum
from minisplit.layers.base import BatchNormMixin, NeuronLayer, ReadingLayer


def _patches(X, kernel, stride, padding) -> np.ndarray:
    """im2col: the (N, P, K) matrix of input patches, K in (c, kh, kw) order (pairs (h, w)).

    Built K-major, one (N, Ho, Wo) plane per (c, a, b) copied from the padded maps in long
    rows, and returned as an (N, P, K) view of it: the products read it transposed at no
    cost, and the splitting kernels take its columns as their rows. (Copying the patches
    row by row would run an inner loop of kw entries.)
    """
    N, C = X.shape[:2]
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    Xp = np.pad(X, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else X  # (N, C, Hp, Wp)
    Ho, Wo = (Xp.shape[2] - kh) // sh + 1, (Xp.shape[3] - kw) // sw + 1
    planes = np.empty((C, kh, kw, N, Ho, Wo))  # K-major
    for a in range(kh):
        for b in range(kw):
            window = Xp[:, :, a : a + sh * (Ho - 1) + 1 : sh, b : b + sw * (Wo - 1) + 1 : sw]
            planes[:, a, b] = window.transpose(1, 0, 2, 3)  # (C, N, Ho, Wo)
    return planes.reshape(C * kh * kw, N * Ho * Wo).T.reshape(N, Ho * Wo, C * kh * kw)


def _fold(dcols_T, x_shape, kernel, stride, padding) -> np.ndarray:
    """col2im, the adjoint of :func:`_patches`: sum each patch gradient back onto X.

    ``dcols_T`` (K, N * P) holds the patch gradients K-major (computed as
    ``Wm^T dZ^T``), so each kernel offset reads contiguous (Ho, Wo) planes.
    """
    N, C, H, W = x_shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    if (kh, kw, sh, sw, ph, pw) == (1, 1, 1, 1, 0, 0):  # a pointwise conv: each patch is a
        return dcols_T.reshape(C, N, H, W).transpose(1, 0, 2, 3)  # pixel, no sum (a view)
    dXp = np.zeros((N, C, H + 2 * ph, W + 2 * pw))  # (N, C, Hp, Wp)
    _fold_into(dXp, dcols_T, kernel, stride)
    return dXp[:, :, ph : ph + H, pw : pw + W]


def _fold_into(dXp, dcols_T, kernel, stride) -> None:
    """dXp (n, C, Hp, Wp) += the fold of ``dcols_T`` (K, n * P), the patch gradients of the
    n samples of the padded maps dXp, one kernel offset (a plane per channel) at a time."""
    n, C, Hp, Wp = dXp.shape
    (kh, kw), (sh, sw) = kernel, stride
    Ho, Wo = (Hp - kh) // sh + 1, (Wp - kw) // sw + 1
    dcols_T = dcols_T.reshape(C, kh, kw, n, Ho, Wo)
    for a in range(kh):
        for b in range(kw):
            rows = slice(a, a + sh * (Ho - 1) + 1, sh)
            cols = slice(b, b + sw * (Wo - 1) + 1, sw)
            dXp[:, :, rows, cols] += dcols_T[:, a, b].transpose(1, 0, 2, 3)


#: Rows (sample-positions) per block when the patch gradients are formed and folded block by
#: block (:func:`_fold_products`): the block's (K, rows) gradients stay in cache for the fold.
#: 8192 took the fold of a 3 -> 32 conv on 256 images 32 x 32 from 33 to 21 ms, of the small
#: CNN's second conv (6000 images 7 x 7) from 110 to 73 ms (docs/derivatives.md).
FOLD_ROWS = 8192


def _fold_products(pairs, x_shape, kernel, stride, padding) -> np.ndarray:
    """:func:`_fold` of the patch gradients ``sum_k Wk^T Gk^T`` for ``pairs`` of Wk (c, K) and
    Gk (N * P, c) (rows m = (n, p)), formed and folded FOLD_ROWS rows at a time into one
    reused buffer: the whole (K, N * P) array is never made (it would be a fresh array as
    large as the patches, written and then read across)."""
    N, C, H, W = x_shape
    (kh, kw), (ph, pw) = kernel, padding
    if (kh, kw, *stride, ph, pw) == (1, 1, 1, 1, 0, 0):  # no sum: _fold's view of the whole
        return _fold(sum(Wk.T @ Gk.T for Wk, Gk in pairs), x_shape, kernel, stride, padding)
    P = pairs[0][1].shape[0] // N
    K = pairs[0][0].shape[1]
    block = max(1, FOLD_ROWS // P)  # samples per block
    buffer = np.empty(K * min(N, block) * P)
    dXp = np.zeros((N, C, H + 2 * ph, W + 2 * pw))  # (N, C, Hp, Wp)
    for start in range(0, N, block):
        stop = min(N, start + block)
        rows = slice(start * P, stop * P)
        dcols_T = buffer[: K * (stop - start) * P].reshape(K, -1)
        for k, (Wk, Gk) in enumerate(pairs):
            if k:
                dcols_T += Wk.T @ Gk[rows].T
            else:
                np.matmul(Wk.T, Gk[rows].T, out=dcols_T)
        _fold_into(dXp[start:stop], dcols_T, kernel, stride)
    return dXp[:, :, ph : ph + H, pw : pw + W]


def _times_rows(R, T) -> np.ndarray:
    """R (N Ho Wo, c) *= T (N, c, Ho, Wo), in rows order and in place (T is read through a
    transposed view: copying it into rows order would run an inner loop of c entries)."""
    N, c, Ho, Wo = T.shape
    rows4 = R.reshape(N, Ho, Wo, c)  # a view
    np.multiply(rows4, T.transpose(0, 2, 3, 1), out=rows4)
    return R


def _rows(T) -> np.ndarray:
    """(N, c, Ho, Wo) -> (N * Ho * Wo, c): one row per (sample, position)."""
    return T.transpose(0, 2, 3, 1).reshape(-1, T.shape[1])


def _nchw(M, N, Ho, Wo) -> np.ndarray:
    """(N * Ho * Wo, c) -> (N, c, Ho, Wo), the inverse of :func:`_rows` (a view)."""
    return M.reshape(N, Ho, Wo, -1).transpose(0, 3, 1, 2)


#: Samples per block of the transposing copies between NCHW (or rows) and unit-major: a
#: block's rows stay in cache while they are read across (a whole-array copy reads each
#: entry with a stride of the sample's size; 1.5 to 3.6 times slower, docs/splitting.md).
SAMPLE_BLOCK = 16


def _channel_major(T) -> np.ndarray:
    """(N, c, H, W) -> (c, H, W, N), contiguous, whatever T's memory layout (NCHW, or a view
    of rows), copied in blocks of :data:`SAMPLE_BLOCK` samples."""
    out = np.empty((*T.shape[1:], T.shape[0]))
    for start in range(0, T.shape[0], SAMPLE_BLOCK):
        block = slice(start, start + SAMPLE_BLOCK)
        out[..., block] = T[block].transpose(1, 2, 3, 0)
    return out


def _unit_major(R, N, Ho, Wo) -> np.ndarray:
    """Rows (N * Ho * Wo, c) -> (c, Ho, Wo, N), unit-major (a copy): each unit's maps
    contiguous, the samples innermost (the layout of the direction maps of splitting)."""
    return _channel_major(_nchw(R, N, Ho, Wo))


def _unit_rows(U) -> np.ndarray:
    """(c, Ho, Wo, N) -> rows (N * Ho * Wo, c), the inverse of :func:`_unit_major` (a copy,
    in blocks of samples)."""
    rows = np.empty((U.shape[-1], *U.shape[1:3], U.shape[0]))  # (N, Ho, Wo, c)
    for start in range(0, U.shape[-1], SAMPLE_BLOCK):
        block = slice(start, start + SAMPLE_BLOCK)
        rows[block] = U[..., block].transpose(3, 1, 2, 0)
    return rows.reshape(-1, U.shape[0])


def _unpack(cache):
    """``(cols, Z, x_shape, A, bn_cache)``: the forward cache has no ``bn_cache`` without
    batch norm (and holds Y, the activation's input, in Z's place with it); A = f(Z) is the
    output, from which tanh and sigmoid get their derivatives without evaluating f again."""
    return (*cache, None) if len(cache) == 4 else cache


class SlidingWindow:
    """The geometry of a layer that slides a kh x kw window over NCHW input (Conv2d,
    DepthwiseConv2d): per-axis ``kernel_size``, ``stride`` and ``padding`` pairs, the output
    size, the check that the window fits, and the curvature coefficients of its neurons, one
    row per (sample, output position)."""

    def _configure_window(self, kernel_size, stride, padding) -> None:
        self.kernel_size = check_int_pair(kernel_size, "kernel_size", low=1)
        self.stride = check_int_pair(stride, "stride", low=1)
        self.padding = check_int_pair(padding, "padding", low=0)

    def _window_config(self) -> dict:
        return {"kernel_size": list(self.kernel_size), "stride": list(self.stride),
                "padding": list(self.padding)}

    def output_shape(self, H: int, W: int) -> tuple[int, int]:
        """``(Ho, Wo)`` for an H x W input."""
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1

    def _coefficients(self, dA, cache, d2f, samples=slice(None)):
        """C[m, i] = g_{m,i} f''(z_{m,i}) (M, n), rows m = (sample, position), times c_i^2 of a
        folded eval-mode BN: the weights of every splitting matrix of a window layer (of the
        rows of the ``samples``, a slice, only)."""
        Z = cache[1]
        if np.shape(dA) != Z.shape:
            raise ValueError(f"dA must have the layer output's shape {Z.shape}, got {np.shape(dA)}")
        if d2f is not None and not callable(d2f):
            raise TypeError(f"d2f must be a callable z -> f''(z) or None, got {d2f!r}")
        _, _, _, A, bn_cache = _unpack(cache)
        Z, A, dA = Z[samples], A[samples], dA[samples]
        scale = self._fold_scale(bn_cache) ** 2  # c_i^2 of the folded eval-mode BN, or 1
        rows = self.act.curvature(_rows(Z), _rows(A)) if d2f is None else d2f(_rows(Z))
        _times_rows(rows, dA)  # (M, n), fresh: Z and A are views of rows
        rows *= scale
        return rows

    def _with_bias_input(self, H) -> np.ndarray:
        """h~ of the patches H (..., K): a 1 appended for the bias (a copy), or H itself with
        batch norm (no bias)."""
        if self.batch_norm:
            return H
        return np.concatenate([H, np.ones((*H.shape[:-1], 1))], axis=-1)  # (..., K + 1)

    def _unit_slope(self, cache, samples=slice(None)):
        """f'(z) c_i (n, Ho, Wo, N), unit-major: each output entry's slope times the folded
        eval-mode BN scale of its unit (1 without BN), for the ``samples`` (a slice)."""
        _, Z, _, A, bn_cache = _unpack(cache)
        Z, A = Z[samples], A[samples]
        N, _, Ho, Wo = Z.shape
        return _unit_major(_rows(self.act.slope(Z, A)) * self._fold_scale(bn_cache), N, Ho, Wo)

    def _check_window(self, H: int, W: int) -> None:
        """ValueError naming the axis along which the kernel does not fit the padded input."""
        kh, kw = self.kernel_size
        axes = zip(("height", "width"), ("H", "W"), (H, W), self.kernel_size, self.padding)
        misfits = [f"{axis}: need {size_name} + 2*{p} >= {k}, got {size_name}={size}"
                   for axis, size_name, size, k, p in axes if size + 2 * p < k]
        if misfits:
            raise ValueError(
                f"{type(self).__name__} kernel {kh}x{kw} does not fit the {H}x{W} input with "
                f"padding (ph, pw) = {self.padding} along its {'; '.join(misfits)}"
            )


class Conv2d(SlidingWindow, BatchNormMixin, NeuronLayer, ReadingLayer):
    """2-D convolution (cross-correlation) ``A = f(conv(X, W) + b)`` on NCHW input.

    ``Z[n, i, y, x] = b[i] + sum_{c, a, e} W[i, c, a, e] * Xp[n, c, sh y + a, sw x + e]``
    with ``Xp`` the input zero-padded by ``ph`` rows above and below and ``pw`` columns
    left and right, and ``(sh, sw)`` the stride; ``Ho = (H + 2 ph - kh) // sh + 1``,
    ``Wo = (W + 2 pw - kw) // sw + 1``. Every setting is per axis (h, w).

    Parameters
    ----------
    c_in, c_out : int
        Input channels and number of neurons (output channels), both > 0.
    kernel_size : int or pair of int
        ``(kh, kw)``; an int k means ``(k, k)``.
    stride : int or pair of int
        ``(sh, sw)``, each > 0; an int s means ``(s, s)``.
    padding : int or pair of int
        ``(ph, pw)``, each >= 0: ph zero rows above and below, pw zero columns left and
        right; an int p means ``(p, p)``.
    activation : str
        One of :data:`minisplit.activations.ACTIVATIONS` (default ``"tanh"``).
    batch_norm : bool
        Batch-normalise each output channel before f (default False): parameters ``W``,
        ``gamma``, ``beta`` (no ``b``), buffers ``running_mean``, ``running_var``; as in
        :class:`~minisplit.layers.Dense`, statistics over samples and positions.
    bn_eps : float
        > 0 (default 1e-5).
    gamma_l1 : float
        >= 0, the sparsity penalty ``gamma_l1 * sum |gamma|`` (default 0; as in
        :class:`~minisplit.layers.Dense`).
    seed : int, Generator or None
        Initialisation: ``W ~ N(0, 1/(c_in kh kw))``, ``b = 0`` (``gamma = 1``, ``beta = 0``,
        running statistics 0 and 1); None draws fresh entropy.

    Attributes
    ----------
    kernel_size, stride, padding : tuple of int
        ``(h, w)`` pairs (``config()`` writes them as lists ``[h, w]``).
    W : ndarray (c_out, c_in, kh, kw)
        ``W[i]`` is neuron i's filter.
    b : ndarray (c_out,)

    Notes
    -----
    The forward cache is ``(cols, Z, X.shape)`` (and the BN cache, with batch norm):
    ``cols`` (N, P, K) are the
    patches (built once, reused by the backward passes and the splitting
    matrices), ``Z`` (N, c_out, Ho, Wo) the pre-activation.

    Examples
    --------
    >>> import numpy as np
    >>> conv = Conv2d(3, 4, kernel_size=3, padding=1, seed=0)
    >>> A, cache = conv.forward(np.ones((2, 3, 5, 5)))
    >>> A.shape
    (2, 4, 5, 5)
    >>> Conv2d(1, 2, kernel_size=(3, 2), stride=(1, 2), padding=(1, 0)).output_shape(5, 7)
    (5, 3)
    """

    param_names = ("W", "b")

    def __init__(self, c_in, c_out, kernel_size, stride=1, padding=0, activation="tanh",
                 batch_norm=False, bn_eps=1e-5, gamma_l1=0.0, seed=None):
        self._configure(c_in, c_out, kernel_size, stride, padding, activation, batch_norm, bn_eps,
                        gamma_l1)
        self._check_memory()
        rng = make_rng(seed, none=True)
        K = self.c_in * self.kernel_size[0] * self.kernel_size[1]
        W = rng.normal(0.0, 1.0 / np.sqrt(K), size=(self.c_out, self.c_in, *self.kernel_size))
        self._assign([W, *self._default_neuron_params(self.c_out)])
        self.set_buffers(self._default_buffers())

    def _configure(self, c_in, c_out, kernel_size, stride=1, padding=0, activation="tanh",
                   batch_norm=False, bn_eps=1e-5, gamma_l1=0.0):
        self.c_in = check_int(c_in, "c_in", low=1)
        self.c_out = check_int(c_out, "c_out", low=1)
        self._configure_window(kernel_size, stride, padding)
        self.act = get_activation(activation)
        self._configure_batch_norm(batch_norm, bn_eps, gamma_l1)

    def param_shapes(self) -> dict:
        return {"W": (self.c_out, self.c_in, *self.kernel_size), **self._channel_shapes(self.c_out)}

    def config(self) -> dict:
        return {
            "c_in": self.c_in,
            "c_out": self.c_out,
            **self._window_config(),
            "activation": self.act.name,
            **self._batch_norm_config(),
        }

    def check_input(self, X: np.ndarray) -> None:
        """Raise ValueError unless X is (N, c_in, H, W) and the kernel fits the padded input."""
        if X.ndim != 4 or X.shape[1] != self.c_in:
            raise ValueError(f"Conv2d input must have shape (N, {self.c_in}, H, W), got {X.shape}")
        self._check_window(*X.shape[2:])

    def _patches(self, X):
        return _patches(X, self.kernel_size, self.stride, self.padding)  # (N, P, K)

    def _fold(self, dcols_T, x_shape):
        return _fold(dcols_T, x_shape, self.kernel_size, self.stride, self.padding)  # (N, C, H, W)

    def _fold_products(self, pairs, x_shape):
        """(N, C, H, W): the fold of sum_k Wk^T Gk^T, block by block."""
        return _fold_products(pairs, x_shape, self.kernel_size, self.stride, self.padding)

    def forward(self, X):
        N = X.shape[0]
        Ho, Wo = self.output_shape(*X.shape[2:])
        cols = self._patches(X)  # (N, P, K)
        Z = cols.reshape(N * Ho * Wo, -1) @ self.W.reshape(self.c_out, -1).T  # (M, c_out)
        bn_cache = None
        if self.batch_norm:
            Z, bn_cache = self._normalise(Z)  # (M, c_out): Y, the activation's input
        else:
            Z += self.b  # in place: Z is fresh, and each (M, c_out) temporary costs a memory pass
        Z = _nchw(Z, N, Ho, Wo)  # (N, c_out, Ho, Wo), a view
        A = self.act.f(Z)  # in Z's memory order (rows), as ufuncs keep it
        cache = (cols, Z, X.shape, A) if bn_cache is None else (cols, Z, X.shape, A, bn_cache)
        return A, cache

    def backward(self, dA, cache, need_dX=True):
        cols, Z, x_shape, A, bn_cache = _unpack(cache)
        dZ = self.act.slope(_rows(Z), _rows(A))  # (M, c_out) fresh; _rows is free here
        _times_rows(dZ, dA)  # dZ = f'(Z) * dA, no copy of dA
        if bn_cache is None:
            channel_grads = [column_sums(dZ)]  # db (c_out,)
        else:
            dZ, dgamma, dbeta = bn.backward(dZ, self.gamma, bn_cache)  # dZ: d(cols Wm^T)
            channel_grads = [self._gamma_l1_grad(dgamma), dbeta]  # + the penalty's
        dW = dZ.T @ cols.reshape(-1, cols.shape[2])  # (c_out, K)
        Wm = self.W.reshape(self.c_out, -1)  # (c_out, K)
        dX = self._fold_products([(Wm, dZ)], x_shape) if need_dX else None
        return dX, [dW.reshape(self.W.shape), *channel_grads]

    def r_forward(self, R_X, V, cache):
        cols, Z, _, A, bn_cache = _unpack(cache)
        N, Ho, Wo = Z.shape[0], Z.shape[2], Z.shape[3]
        R_Z = cols.reshape(N * Ho * Wo, -1) @ V[0].reshape(self.c_out, -1).T  # (M, c_out)
        R_cols = None
        if R_X is not None:
            R_cols = self._patches(R_X).reshape(N * Ho * Wo, -1)  # (M, K)
            R_Z += R_cols @ self.W.reshape(self.c_out, -1).T
        R_lin, R_Zh = R_Z, None
        if bn_cache is None:
            R_Z = R_Z + V[1]
        else:
            R_Z, R_Zh = bn.r_forward(R_lin, self.gamma, V[1], V[2], bn_cache)  # (M, c_out)
        R_Z = _nchw(R_Z, N, Ho, Wo)  # (N, c_out, Ho, Wo)
        return self.act.slope(Z, A) * R_Z, (R_cols, R_Z, R_lin, R_Zh)

    def r_backward(self, dA, R_dA, cache, r_cache, V, need_dX=True):
        cols, Z, x_shape, A, bn_cache = _unpack(cache)
        R_cols, R_Z, R_lin, R_Zh = r_cache
        cols = cols.reshape(-1, cols.shape[2])  # (M, K)
        Wm = self.W.reshape(self.c_out, -1)  # (c_out, K)
        V_W = V[0].reshape(self.c_out, -1)  # (c_out, K)
        df = self.act.slope(Z, A)
        dZ = _rows(df * dA)  # (M, c_out)
        R_dZ = _rows(self.act.curvature(Z, A) * R_Z * dA + df * R_dA)  # (M, c_out)
        if bn_cache is None:
            R_channel = [column_sums(R_dZ)]  # R_db (c_out,)
        else:
            dZ, R_dZ, R_dgamma, R_dbeta = bn.r_backward(dZ, R_dZ, R_lin, R_Zh, self.gamma,
                                                        V[1], bn_cache)
            R_channel = [R_dgamma, R_dbeta]  # the gamma_l1 penalty has no curvature
        R_dW = R_dZ.T @ cols  # (c_out, K)
        if R_cols is not None:
            R_dW += dZ.T @ R_cols
        if not need_dX:
            return None, None, [R_dW.reshape(self.W.shape), *R_channel]
        dX = self._fold_products([(Wm, dZ)], x_shape)  # (N, c_in, H, W)
        R_dX = self._fold_products([(Wm, R_dZ), (V_W, dZ)], x_shape)  # (N, c_in, H, W)
        return dX, R_dX, [R_dW.reshape(self.W.shape), *R_channel]

    def flops(self, in_shape) -> int:
        return self.c_out * self.flops_per_neuron(in_shape)

    # ---- NeuronLayer: splitting (docs/splitting.md) ----------------------------------------

    @property
    def n_neurons(self) -> int:
        return self.c_out

    @property
    def neuron_dim(self) -> int:
        return self.c_in * self.kernel_size[0] * self.kernel_size[1] + (0 if self.batch_norm else 1)

    def _resized(self, n):
        return {"c_out": n}

    def splitting_matrices(self, dA, cache, d2f=None):
        C = self._coefficients(dA, cache, d2f)  # (M, c_out)
        cols = cache[0].reshape(-1, cache[0].shape[2])  # (M, K), a view
        return weighted_outer_sum(cols, C, ones=not self.batch_norm)  # h~ = [patch, 1]

    def splitting_operator(self, dA, cache, d2f=None):
        C = self._coefficients(dA, cache, d2f)  # (M, c_out), once for every product
        cols = cache[0].reshape(-1, cache[0].shape[2])  # (M, K), a view
        if self.batch_norm:
            return bn.outer_operator(cols, C)
        return biased_outer_operator(cols, C)

    def output_jacobian(self, cache, samples=slice(None)):
        """``unit -> (Ho, Wo, N, d)``: J[y, x, n, :] = f'(z) c_u h~, h~ the patch of sample n at
        position (y, x) with a 1 (h alone, times the folded BN scale c_u, with batch norm),
        for the ``samples`` (a slice)."""
        cols, (Ho, Wo) = cache[0][samples], cache[1].shape[2:]
        slope = self._unit_slope(cache, samples)  # (n, Ho, Wo, N)
        H = cols.reshape(-1, Ho, Wo, cols.shape[2]).transpose(1, 2, 0, 3)  # (Ho, Wo, N, K)
        H = np.ascontiguousarray(self._with_bias_input(H))  # (Ho, Wo, N, d), once for all units

        def maps(unit):
            return slope[unit][..., None] * H  # (Ho, Wo, N, d), contiguous

        return maps

    def flops_per_neuron(self, in_shape) -> int:
        Ho, Wo = self.output_shape(*in_shape[1:])
        return self.c_in * self.kernel_size[0] * self.kernel_size[1] * Ho * Wo

    # ---- ReadingLayer: surgery on the units it reads (docs/surgery.md) ---------------------

    def _check_units(self, n_units):
        if n_units != self.c_in:
            raise ValueError(
                f"Conv2d reads one unit per input channel: n_units must be {self.c_in}, "
                f"got {n_units!r}"
            )

    def out_weights(self, n_units):
        self._check_units(n_units)
        return self.W.transpose(1, 0, 2, 3).copy()  # (c_in, c_out, kh, kw)

    def with_out_weights(self, out_weights):
        out_weights = check_array(out_weights, "out_weights")
        expected = self.W.shape[:1] + self.W.shape[2:]
        if out_weights.ndim != 4 or out_weights.shape[1:] != expected or not len(out_weights):
            raise ValueError(
                f"out_weights must have shape (units, {self.c_out}, {self.kernel_size[0]}, "
                f"{self.kernel_size[1]}) with units > 0, got {out_weights.shape}"
            )
        W = out_weights.transpose(1, 0, 2, 3)  # (c_out, units, kh, kw)
        return Conv2d.from_config({**self.config(), "c_in": W.shape[1]}, [W, *self.params[1:]],
                                  self.buffers)

    def params_per_unit(self, n_units) -> int:
        self._check_units(n_units)
        return self.c_out * self.kernel_size[0] * self.kernel_size[1]

    def flops_per_unit(self, in_shape, n_units) -> int:
        Ho, Wo = self.output_shape(*in_shape[1:])
        return self.params_per_unit(n_units) * Ho * Wo
