"""Tests of Conv2d, AvgPool2d, GlobalAvgPool2d and Flatten: derivatives, splitting matrices,
surgery, errors. Every geometry is per axis: kernel, stride, padding and pooling window (h, w)."""

import json

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from minisplit import Network, flatten, gradcheck
from minisplit.activations import softplus_surrogate_d2
from minisplit.layers import _outer
from minisplit.layers.conv import Conv2d
from minisplit.layers.dense import Dense
from minisplit.layers.pool import AvgPool2d, Flatten, GlobalAvgPool2d

SMOOTH = ["identity", "tanh", "sigmoid", "softplus", "swish", "gaussian"]
LOSSES = ["mse", "cross_entropy"]


# ---- naive references: explicit loops, no im2col ----------------------------------


def pair(value):
    """An int k as (k, k); a pair as a tuple."""
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def naive_patch(X, n, y, x, kernel, stride, padding):
    """h~ = [patch of sample n at output position (y, x), 1], in W's (c, kh, kw) order."""
    (kh, kw), (sh, sw), (ph, pw) = pair(kernel), pair(stride), pair(padding)
    Xp = np.pad(X, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    patch = Xp[n, :, y * sh : y * sh + kh, x * sw : x * sw + kw]
    return np.append(patch.ravel(), 1.0)


def naive_conv(X, W, b, stride, padding):
    """Z[n, i, y, x] = W[i] . patch + b[i] by explicit loops over n, i and positions."""
    N, _, H, Wd = X.shape
    c_out, _, kh, kw = W.shape
    (sh, sw), (ph, pw) = pair(stride), pair(padding)
    Ho = (H + 2 * ph - kh) // sh + 1
    Wo = (Wd + 2 * pw - kw) // sw + 1
    Z = np.zeros((N, c_out, Ho, Wo))
    for n in range(N):
        for i in range(c_out):
            for y in range(Ho):
                for x in range(Wo):
                    h = naive_patch(X, n, y, x, (kh, kw), stride, padding)
                    Z[n, i, y, x] = h[:-1] @ W[i].ravel() + b[i]
    return Z


def naive_splitting(layer, X, dA, d2f):
    """S_i = sum_n sum_p dA[n,i,p] f''(z[n,i,p]) h~ h~^T by loops over samples and positions."""
    Z = naive_conv(X, layer.W, layer.b, layer.stride, layer.padding)
    N, c_out, Ho, Wo = Z.shape
    d = layer.neuron_dim
    S = np.zeros((c_out, d, d))
    for n in range(N):
        for y in range(Ho):
            for x in range(Wo):
                h = naive_patch(X, n, y, x, layer.kernel_size, layer.stride, layer.padding)
                for i in range(c_out):
                    S[i] += dA[n, i, y, x] * d2f(Z[n, i, y, x]) * np.outer(h, h)
    return S


# ---- small random problems ----------------------------------------------------------


def per_axis(draw, values):
    """An int (both axes) or a pair (h, w) drawn independently from ``values``."""
    if draw(st.booleans()):
        return draw(values)
    return (draw(values), draw(values))


@st.composite
def conv_problems(draw, pool=False):
    """(layer kwargs, X shape, pool (kh, kw), seed) with the kernel fitting the padded input.

    Kernel, stride, padding and the pooling window are drawn per axis (an int or a pair)."""
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride, padding = per_axis(draw, st.integers(1, 2)), per_axis(draw, st.integers(0, 1))
    (sh, sw), (ph, pw) = pair(stride), pair(padding)
    H = draw(st.integers(max(1, kh - 2 * ph), 6))
    W = draw(st.integers(max(1, kw - 2 * pw), 6))
    kwargs = dict(
        c_in=draw(st.integers(1, 3)),
        c_out=draw(st.integers(1, 3)),
        kernel_size=(kh, kw),
        stride=stride,
        padding=padding,
    )
    Ho, Wo = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    k = (1, 1)
    if pool:
        k = (draw(st.sampled_from([k for k in (1, 2, 3) if Ho % k == 0])),
             draw(st.sampled_from([k for k in (1, 2, 3) if Wo % k == 0])))
    N = draw(st.integers(1, 3))
    return kwargs, (N, kwargs["c_in"], H, W), k, draw(st.integers(0, 2**16))


def random_layer(kwargs, activation, rng):
    """A Conv2d with random weights AND bias (a zero bias would hide bias mistakes)."""
    layer = Conv2d(**kwargs, activation=activation, seed=rng)
    layer.b = rng.normal(size=layer.c_out)
    return layer


def conv_network(kwargs, x_shape, k, activation, loss, rng, pool):
    """Conv2d -> [AvgPool2d(k)] -> Flatten -> Dense(identity) with its data; ``pool="global"``:
    Conv2d -> [AvgPool2d(k)] -> GlobalAvgPool2d -> Dense(identity)."""
    conv = random_layer(kwargs, activation, rng)
    Ho, Wo = conv.output_shape(*x_shape[2:])
    kh, kw = pair(k)
    layers = [conv] + ([AvgPool2d(k)] if pool else [])
    layers.append(GlobalAvgPool2d() if pool == "global" else Flatten())
    n_out = 3
    n_in = conv.c_out if pool == "global" else conv.c_out * (Ho // kh) * (Wo // kw)
    layers.append(Dense(n_in, n_out, "identity", seed=rng))
    X = rng.uniform(-3, 3, size=x_shape)
    N = x_shape[0]
    y = rng.integers(0, n_out, size=N) if loss == "cross_entropy" else rng.normal(size=(N, n_out))
    return Network(layers, loss), X, y


def assert_derivatives_exact(net, X, y):
    errors = gradcheck.check_network(net, X, y)
    assert set(errors) == {"gradient", "hvp", "hessian_symmetry", "hessian_vs_hvp"}
    for name, error in errors.items():
        assert error < gradcheck.TOLERANCE, (name, error)


# ---- derivatives against finite differences ------------------------------------------


@settings(max_examples=10, deadline=None)
@given(conv_problems(), st.sampled_from(SMOOTH), st.sampled_from(LOSSES))
@example(
    (dict(c_in=1, c_out=1, kernel_size=(1, 1), stride=1, padding=0), (1, 1, 1, 1), 1, 0),
    "tanh",
    "mse",
)
@example(
    (dict(c_in=2, c_out=2, kernel_size=(2, 3), stride=(2, 1), padding=(0, 1)), (2, 2, 5, 3),
     1, 2),
    "sigmoid",
    "mse",
)
def test_conv_flatten_dense_derivatives(problem, activation, loss):
    kwargs, x_shape, _, seed = problem
    rng = np.random.default_rng(seed)
    net, X, y = conv_network(kwargs, x_shape, 1, activation, loss, rng, pool=False)
    assert_derivatives_exact(net, X, y)


@settings(max_examples=10, deadline=None)
@given(conv_problems(pool=True), st.sampled_from(SMOOTH), st.sampled_from(LOSSES))
@example(
    (dict(c_in=2, c_out=2, kernel_size=(2, 1), stride=2, padding=1), (2, 2, 6, 6), 2, 1),
    "softplus",
    "cross_entropy",
)
@example(
    (dict(c_in=1, c_out=2, kernel_size=(1, 2), stride=(1, 2), padding=(1, 0)), (2, 1, 2, 6),
     (2, 3), 3),  # 4x3 maps, pooled by a 2x3 window to 2x1
    "tanh",
    "mse",
)
def test_conv_pool_flatten_dense_derivatives(problem, activation, loss):
    kwargs, x_shape, k, seed = problem
    rng = np.random.default_rng(seed)
    net, X, y = conv_network(kwargs, x_shape, k, activation, loss, rng, pool=True)
    assert_derivatives_exact(net, X, y)


@settings(max_examples=8, deadline=None)
@given(conv_problems(pool=True), st.sampled_from(SMOOTH), st.sampled_from(LOSSES))
@example(
    (dict(c_in=2, c_out=3, kernel_size=(3, 2), stride=(1, 2), padding=(1, 0)), (2, 2, 4, 7),
     (2, 3), 4),
    "swish",
    "cross_entropy",
)
def test_conv_pool_global_pool_dense_derivatives(problem, activation, loss):
    # Conv2d (per-axis geometry) -> AvgPool2d((kh, kw)) -> GlobalAvgPool2d -> Dense: the
    # example's 4x7 images give 4x3 maps, pooled 2x1, then one mean per channel.
    kwargs, x_shape, k, seed = problem
    rng = np.random.default_rng(seed)
    net, X, y = conv_network(kwargs, x_shape, k, activation, loss, rng, pool="global")
    assert net.forward(X).shape == (x_shape[0], 3)
    assert_derivatives_exact(net, X, y)


@settings(max_examples=6, deadline=None)
@given(conv_problems(), st.sampled_from(SMOOTH), st.sampled_from(LOSSES))
@example(
    (dict(c_in=1, c_out=2, kernel_size=(2, 3), stride=(1, 2), padding=(1, 0)), (2, 1, 4, 7),
     1, 5),  # 5x3 maps, then a 2x2 kernel, stride (2, 1), padding (0, 1): 2x4
    "tanh",
    "mse",
)
def test_conv_after_conv_derivatives(problem, activation, loss):
    # A second convolution gets a parameter-dependent input: exercises R_cols and dX.
    kwargs, x_shape, _, seed = problem
    rng = np.random.default_rng(seed)
    first = random_layer(kwargs, activation, rng)
    Ho, Wo = first.output_shape(*x_shape[2:])
    # the second's geometry per axis too: its dX folds with unequal strides and paddings
    second = random_layer(
        dict(c_in=first.c_out, c_out=2, kernel_size=(1 + (Ho > 1), 1 + (Wo > 1)),
             stride=(1 + (Ho > 2), 1), padding=(0, 1)),
        activation,
        rng,
    )
    H2, W2 = second.output_shape(Ho, Wo)
    head = Dense(2 * H2 * W2, 2, "identity", seed=rng)
    X = rng.uniform(-3, 3, size=x_shape)
    N = x_shape[0]
    y = rng.integers(0, 2, size=N) if loss == "cross_entropy" else rng.normal(size=(N, 2))
    assert_derivatives_exact(Network([first, second, Flatten(), head], loss), X, y)


@settings(max_examples=6, deadline=None)
@given(conv_problems(pool=True), st.sampled_from(LOSSES))
def test_relu_conv_derivatives_away_from_kinks(problem, loss):
    kwargs, x_shape, k, seed = problem
    rng = np.random.default_rng(seed)
    net, X, y = conv_network(kwargs, x_shape, k, "relu", loss, rng, pool=True)
    conv = net.layers[0]
    Z = naive_conv(X, conv.W, conv.b, conv.stride, conv.padding)
    # The finite-difference step moves z by at most 1e-5 * |h~| < 2e-4 here.
    assume(np.min(np.abs(Z)) > 1e-3)
    # Every relu dead gives a zero gradient; the relative error would then measure round-off
    # (gradcheck.gradient_error, Notes), not the formula.
    assume(np.linalg.norm(flatten(net.loss_and_grad(X, y)[1])) > 1e-6)
    assert_derivatives_exact(net, X, y)


# ---- forward against loops and a hand-worked case ----------------------------------


@pytest.mark.parametrize(
    "stride, padding, maps",
    [
        (2, 1, (3, 3)),  # Ho = (5 + 2 - 3) // 2 + 1, Wo = (4 + 2 - 2) // 2 + 1
        ((1, 2), (1, 0), (5, 2)),  # Ho = (5 + 2 - 3) // 1 + 1, Wo = (4 + 0 - 2) // 2 + 1
        ((2, 1), (0, 2), (2, 7)),  # Ho = (5 + 0 - 3) // 2 + 1, Wo = (4 + 4 - 2) // 1 + 1
    ],
)
def test_conv_forward_matches_naive_loops(stride, padding, maps):
    rng = np.random.default_rng(0)
    layer = random_layer(
        dict(c_in=2, c_out=3, kernel_size=(3, 2), stride=stride, padding=padding), "tanh", rng
    )
    X = rng.normal(size=(2, 2, 5, 4))
    A, (cols, Z, _, _) = layer.forward(X)
    Z_loop = naive_conv(X, layer.W, layer.b, stride, padding)
    assert Z_loop.shape == (2, 3, *maps) and layer.output_shape(5, 4) == maps
    np.testing.assert_allclose(Z, Z_loop, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(A, np.tanh(Z_loop), rtol=1e-13, atol=1e-13)
    assert cols.shape == (2, maps[0] * maps[1], 12)  # (N, P, K), K = 2*3*2
    p = 1 * maps[1] + 1  # output position (1, 1)
    np.testing.assert_array_equal(cols[1, p], naive_patch(X, 1, 1, 1, (3, 2), stride, padding)[:-1])


def test_flops_count_per_axis():
    # a 3x2 kernel, stride (1, 2), padding (1, 0) on 5x7 images: Ho = (5 + 2 - 3) // 1 + 1 = 5,
    # Wo = (7 - 2) // 2 + 1 = 3. One neuron: c_in kh kw Ho Wo = 2 * 3 * 2 * 5 * 3 = 180
    # multiply-adds; one more input channel read: c_out kh kw Ho Wo = 4 * 6 * 15 = 360.
    conv = Conv2d(2, 4, (3, 2), stride=(1, 2), padding=(1, 0))
    assert conv.output_shape(5, 7) == (5, 3)
    assert conv.flops_per_neuron((2, 5, 7)) == 180 and conv.flops((2, 5, 7)) == 4 * 180
    assert conv.flops_per_unit((2, 5, 7), 2) == 360
    assert GlobalAvgPool2d().flops((4, 5, 3)) == 0


@settings(max_examples=40, deadline=None)
@given(
    N=st.integers(1, 5), C=st.integers(1, 3), c=st.integers(1, 3), H=st.integers(1, 6),
    W=st.integers(1, 6), kh=st.integers(1, 3), kw=st.integers(1, 3), sh=st.integers(1, 2),
    sw=st.integers(1, 2), ph=st.integers(0, 2), pw=st.integers(0, 2), n_pairs=st.integers(1, 2),
    fold_rows=st.integers(1, 40), seed=st.integers(0, 2**16),
)
def test_fold_of_products_block_by_block_is_the_fold_of_their_sum(
        N, C, c, H, W, kh, kw, sh, sw, ph, pw, n_pairs, fold_rows, seed):
    """The patch gradients sum_k Wk^T Gk^T formed and folded a few samples at a time (blocks
    of FOLD_ROWS rows, down to one sample, the last block short) equal the fold of the whole
    sum, for any kernel, stride and padding (the pointwise conv included)."""
    from minisplit.layers import conv

    assume(H + 2 * ph >= kh and W + 2 * pw >= kw)
    layer = Conv2d(C, c, (kh, kw), stride=(sh, sw), padding=(ph, pw))
    Ho, Wo = layer.output_shape(H, W)
    rng = np.random.default_rng(seed)
    K = C * kh * kw
    pairs = [(rng.normal(size=(c, K)), rng.normal(size=(N * Ho * Wo, c)))
             for _ in range(n_pairs)]
    whole = layer._fold(sum(Wk.T @ Gk.T for Wk, Gk in pairs), (N, C, H, W))
    saved, conv.FOLD_ROWS = conv.FOLD_ROWS, fold_rows
    try:
        blocks = layer._fold_products(pairs, (N, C, H, W))
    finally:
        conv.FOLD_ROWS = saved
    np.testing.assert_allclose(blocks, whole, rtol=1e-13, atol=1e-13 * np.abs(whole).max())


def test_fold_is_the_adjoint_of_patch_extraction_per_axis():
    # <patches(X), G> = <X, fold(G^T)> for every X and G: the dX of the backward pass.
    rng = np.random.default_rng(1)
    layer = Conv2d(2, 1, (3, 2), stride=(2, 1), padding=(1, 2))
    X = rng.normal(size=(2, 2, 6, 3))
    cols = layer._patches(X)  # (N, P, K)
    G = rng.normal(size=cols.shape)
    dX = layer._fold(G.reshape(-1, G.shape[2]).T, X.shape)
    assert dX.shape == X.shape
    np.testing.assert_allclose(np.sum(cols * G), np.sum(X * dX), rtol=1e-13)


def test_conv_hand_worked_example_is_cross_correlation():
    # X = [[1,2,3],[4,5,6],[7,8,9]], W = [[1,0],[0,-1]], b = 0.5, identity.
    # Each output is X[y,x] - X[y+1,x+1] + 0.5 = -4 + 0.5 = -3.5 (a flipped kernel,
    # i.e. a true convolution, would give +4.5).
    layer = Conv2d(1, 1, 2, activation="identity")
    layer.set_params([np.array([[[[1.0, 0.0], [0.0, -1.0]]]]), np.array([0.5])])
    A, _ = layer.forward(np.arange(1.0, 10.0).reshape(1, 1, 3, 3))
    np.testing.assert_array_equal(A, np.full((1, 1, 2, 2), -3.5))
    # Padding 1 with the same input: the corner output reads only X[0,0] = 1 -> 0 - 1 + 0.5.
    padded = Conv2d(1, 1, 2, padding=1, activation="identity")
    padded.set_params(layer.params)
    A, _ = padded.forward(np.arange(1.0, 10.0).reshape(1, 1, 3, 3))
    assert A.shape == (1, 1, 4, 4)
    assert A[0, 0, 0, 0] == -0.5  # 1*0 (pad) - 1*X[0,0] + 0.5
    assert A[0, 0, 3, 3] == 9.5  # 1*X[2,2] - 1*0 (pad) + 0.5


def test_avgpool_and_flatten_forward():
    X = np.arange(2 * 3 * 4 * 6, dtype=float).reshape(2, 3, 4, 6)
    A, _ = AvgPool2d(2).forward(X)
    assert A.shape == (2, 3, 2, 3)
    # Window (y=1, x=2) of (n=1, c=2) covers rows 2-3, columns 4-5.
    assert A[1, 2, 1, 2] == X[1, 2, 2:4, 4:6].mean()
    F, _ = Flatten().forward(X)
    assert F.shape == (2, 72)
    assert F[1, 2 * 24 + 3 * 6 + 5] == X[1, 2, 3, 5]  # column (c H + i) W + j
    # Backward passes are the adjoints: <pool(X), G> = <X, unpool(G)>.
    G = np.random.default_rng(0).normal(size=A.shape)
    dX, grads = AvgPool2d(2).backward(G, None)
    assert grads == []
    np.testing.assert_allclose(np.sum(A * G), np.sum(X * dX), rtol=1e-13)
    assert Flatten().backward(F, X.shape)[0].shape == X.shape


def test_rectangular_avgpool_forward_and_adjoint():
    # A (2, 3) window on 4x6 maps: 2x2 windows, each the mean of 6 pixels.
    X = np.arange(2 * 3 * 4 * 6, dtype=float).reshape(2, 3, 4, 6)
    pool = AvgPool2d((2, 3))
    A, _ = pool.forward(X)
    assert A.shape == (2, 3, 2, 2) and pool.k == (2, 3) and pool.config() == {"k": [2, 3]}
    # Window (y=1, x=1) of (n=0, c=1) covers rows 2-3, columns 3-5.
    assert A[0, 1, 1, 1] == X[0, 1, 2:4, 3:6].mean()
    # Channel 0 of sample 0 holds 6 i + j: the window (0, 0) mean is (0+1+2+6+7+8) / 6 = 4.
    assert A[0, 0, 0, 0] == 4.0
    G = np.random.default_rng(1).normal(size=A.shape)
    dX, grads = pool.backward(G, None)
    assert grads == [] and dX.shape == X.shape
    assert dX[0, 0, 3, 5] == G[0, 0, 1, 1] / 6  # pixel (3, 5) lies in window (3 // 2, 5 // 3)
    np.testing.assert_allclose(np.sum(A * G), np.sum(X * dX), rtol=1e-13)


def test_global_avgpool_forward_backward_and_r_passes():
    # Channel c of sample n holds 12 (3 n + c) + 0 ... 11 (3x4 maps): its mean is
    # 12 (3 n + c) + 5.5.
    X = np.arange(2 * 3 * 3 * 4, dtype=float).reshape(2, 3, 3, 4)
    gap = GlobalAvgPool2d()
    A, cache = gap.forward(X)
    np.testing.assert_array_equal(A, 12 * np.arange(6.0).reshape(2, 3) + 5.5)
    assert gap.passes_units and gap.params == [] and gap.config() == {}
    G = np.random.default_rng(2).normal(size=A.shape)
    dX, grads = gap.backward(G, cache)
    assert grads == [] and dX.shape == X.shape
    np.testing.assert_allclose(dX, np.broadcast_to(G[:, :, None, None] / 12, X.shape))
    np.testing.assert_allclose(np.sum(A * G), np.sum(X * dX), rtol=1e-13)  # the adjoint
    # Linear: the R-forward is the layer itself, the R-backward the backward.
    R_X = np.random.default_rng(3).normal(size=X.shape)
    np.testing.assert_array_equal(gap.r_forward(R_X, [], cache)[0], gap.forward(R_X)[0])
    assert gap.r_forward(None, [], cache)[0] is None
    dX2, R_dX, R_grads = gap.r_backward(G, 2 * G, cache, None, [])
    np.testing.assert_array_equal(dX2, dX)
    np.testing.assert_allclose(R_dX, 2 * dX, rtol=1e-15)
    assert R_grads == []
    assert gap.r_backward(G, G, cache, None, [], need_dX=False) == (None, None, [])


# ---- splitting matrices -----------------------------------------------------------


def conv_with_gradient(seed, activation="tanh"):
    """A conv layer, its input, forward cache and a random dA (stand-in for g)."""
    rng = np.random.default_rng(seed)
    layer = random_layer(
        dict(c_in=2, c_out=3, kernel_size=(2, 3), stride=2, padding=1), activation, rng
    )
    X = rng.uniform(-3, 3, size=(3, 2, 5, 4))
    A, cache = layer.forward(X)
    return layer, X, cache, rng.normal(size=A.shape) / X.shape[0]


@pytest.mark.parametrize("chunk_bytes", [None, 8 * 200])
def test_splitting_matrices_match_naive_sum(monkeypatch, chunk_bytes):
    if chunk_bytes is not None:  # force many small tiles (the tiling must not lose rows)
        monkeypatch.setattr(_outer, "CHUNK_BYTES", chunk_bytes)
        monkeypatch.setattr(_outer, "MIN_TILE_BYTES", 8)
        monkeypatch.setattr(_outer, "MIN_CHUNK_ROWS", 4)
    layer, X, cache, dA = conv_with_gradient(1)
    S = layer.splitting_matrices(dA, cache)
    assert S.shape == (3, 13, 13)  # d = 2*2*3 + 1
    np.testing.assert_allclose(S, naive_splitting(layer, X, dA, layer.act.d2f), atol=1e-12)
    np.testing.assert_array_equal(S, S.transpose(0, 2, 1))
    assert np.abs(S).max() > 1e-3  # not trivially zero
    V = np.random.default_rng(2).normal(size=(3, 13))
    np.testing.assert_allclose(
        layer.splitting_matvec(dA, cache, V), np.einsum("ikl,il->ik", S, V), atol=1e-12
    )


def test_splitting_d2f_override_for_relu():
    layer, X, cache, dA = conv_with_gradient(3, activation="relu")
    assert np.abs(layer.splitting_matrices(dA, cache)).max() == 0.0  # relu'' = 0: blind
    surrogate = softplus_surrogate_d2(3.0)
    S = layer.splitting_matrices(dA, cache, d2f=surrogate)
    np.testing.assert_allclose(S, naive_splitting(layer, X, dA, surrogate), atol=1e-12)
    V = np.random.default_rng(4).normal(size=S.shape[:2])
    np.testing.assert_allclose(
        layer.splitting_matvec(dA, cache, V, d2f=surrogate),
        np.einsum("ikl,il->ik", S, V),
        atol=1e-12,
    )


@pytest.mark.parametrize("between", ["flatten", "pool", "global"])
def test_splitting_matrix_is_the_split_networks_hessian(between):
    # Split channel i into theta +- eps*delta, each read with weight 1/2. At eps = 0 the split
    # network computes the same function and d^2 L / d eps^2 = delta^T S_i delta, which is the
    # quadratic form of its full Hessian on (+delta on copy 1, -delta on copy 2).
    # A 2x3 kernel, stride (1, 2), padding (1, 1) on 4x5 images: 5x3 maps.
    rng = np.random.default_rng(5)
    conv = random_layer(dict(c_in=2, c_out=3, kernel_size=(2, 3), stride=(1, 2), padding=1),
                        "tanh", rng)
    X = rng.uniform(-3, 3, size=(3, 2, 4, 5))
    Ho, Wo = conv.output_shape(4, 5)
    assert (Ho, Wo) == (5, 3)
    middle = {"flatten": [Flatten()], "pool": [AvgPool2d((5, 3)), Flatten()],
              "global": [GlobalAvgPool2d()]}[between]
    head = Dense(3 * (1 if between != "flatten" else Ho * Wo), 2, "identity", seed=rng)
    net = Network([conv, *middle, head], "cross_entropy")
    y = np.array([0, 1, 1])
    result = net.backprop(X, y)
    S = conv.splitting_matrices(result.douts[0], result.caches[0])

    i, d = 1, conv.neuron_dim
    theta = conv.neuron_params()
    split_conv = conv.with_neuron_params(np.vstack([theta, theta[i]]))  # copy appended last
    blocks = head.W.reshape(2, 3, -1).copy()  # (n_out, channel, H*W): NCHW flatten order
    blocks[:, i] *= 0.5
    split_head = Dense(4 * blocks.shape[2], 2, "identity")
    split_head.set_params(
        [np.concatenate([blocks, blocks[:, i : i + 1]], axis=1).reshape(2, -1), head.b]
    )
    split = Network([split_conv, *middle, split_head], "cross_entropy")
    assert np.allclose(split.forward(X), net.forward(X), atol=1e-13)  # eps = 0 preserves f

    delta = rng.normal(size=d)
    D_theta = np.zeros((4, d))
    D_theta[i], D_theta[3] = delta, -delta
    D = [D_theta[:, :-1].reshape(split_conv.W.shape), D_theta[:, -1]]
    D += [np.zeros_like(p) for p in split_head.params]
    HD = split.hvp(X, y, D)
    quadratic = sum(np.sum(h * v) for h, v in zip(HD, D))
    assert abs(delta @ S[i] @ delta) > 1e-4
    np.testing.assert_allclose(quadratic, delta @ S[i] @ delta, rtol=1e-10)


# ---- surgery hooks and configuration ----------------------------------------------------


def test_neuron_and_input_weight_round_trips():
    layer, X, _, _ = conv_with_gradient(6)
    theta = layer.neuron_params()
    assert theta.shape == (3, 13)
    np.testing.assert_array_equal(theta[2], np.append(layer.W[2].ravel(), layer.b[2]))
    same = layer.with_neuron_params(theta)
    np.testing.assert_array_equal(same.forward(X)[0], layer.forward(X)[0])
    wider = layer.with_neuron_params(np.vstack([theta, theta[:1]]))
    assert (wider.c_out, wider.W.shape) == (4, (4, 2, 2, 3))
    np.testing.assert_array_equal(wider.forward(X)[0][:, 3], layer.forward(X)[0][:, 0])

    W_in = layer.out_weights(2)
    assert W_in.shape == (2, 3, 2, 3)
    np.testing.assert_array_equal(W_in[1], layer.W[:, 1])
    W_in[0] = 0.0  # a copy: the layer is untouched
    assert np.abs(layer.W[:, 0]).max() > 0
    reread = layer.with_out_weights(np.concatenate([W_in, layer.out_weights(2)[1:]]))
    assert (reread.c_in, reread.W.shape) == (3, (3, 3, 2, 3))
    np.testing.assert_array_equal(reread.b, layer.b)
    np.testing.assert_array_equal(reread.W[:, 2], layer.W[:, 1])


def test_config_is_json_and_rebuilds_the_architecture():
    layer = Conv2d(2, 4, (3, 1), stride=(2, 1), padding=(1, 0), activation="swish", seed=0)
    assert (layer.kernel_size, layer.stride, layer.padding) == ((3, 1), (2, 1), (1, 0))
    config = json.loads(json.dumps(layer.config()))
    assert (config["kernel_size"], config["stride"], config["padding"]) == ([3, 1], [2, 1], [1, 0])
    rebuilt = Conv2d(**config)
    assert rebuilt.config() == layer.config()
    assert rebuilt.W.shape == (4, 2, 3, 1)
    for other in (AvgPool2d(3), AvgPool2d((1, 2)), GlobalAvgPool2d(), Flatten()):
        assert type(other)(**json.loads(json.dumps(other.config()))).config() == other.config()
        assert other.params == [] and other.passes_units
    copy = layer.copy()
    np.testing.assert_array_equal(copy.W, layer.W)
    assert copy.W is not layer.W


def test_old_int_configs_build_the_same_layers():
    # Configurations written before the per-axis settings hold ints for stride, padding and
    # the pooling window; they mean the same value along both axes.
    rng = np.random.default_rng(10)
    conv = Conv2d(2, 3, 3, stride=2, padding=1, activation="tanh", seed=rng)
    old = {"c_in": 2, "c_out": 3, "kernel_size": [3, 3], "stride": 2, "padding": 1,
           "activation": "tanh"}
    rebuilt = Conv2d.from_config(old, conv.params)
    assert rebuilt.config() == conv.config() and rebuilt.stride == (2, 2)
    assert rebuilt.config()["padding"] == [1, 1]
    X = rng.normal(size=(2, 2, 5, 6))
    np.testing.assert_array_equal(rebuilt.forward(X)[0], conv.forward(X)[0])
    pool = AvgPool2d.from_config({"k": 2})
    assert pool.config() == {"k": [2, 2]} == AvgPool2d((2, 2)).config()
    X4 = X[:, :, :4]  # 4x6: divisible by 2 along both axes
    np.testing.assert_array_equal(pool.forward(X4)[0], AvgPool2d(2).forward(X4)[0])


def test_inputs_are_not_mutated():
    layer, X, cache, dA = conv_with_gradient(7)
    net = Network([layer, Flatten(), Dense(3 * 3 * 2, 2, "identity", seed=0)], "mse")
    y = np.random.default_rng(8).normal(size=(3, 2))
    X_before, dA_before, y_before = X.copy(), dA.copy(), y.copy()
    net.loss_and_grad(X, y)
    net.hvp(X, y, [np.ones_like(p) for p in net.params])
    layer.splitting_matrices(dA, cache)
    layer.splitting_matvec(dA, cache, np.ones((3, 13)))
    AvgPool2d(1).backward(dA, None)
    for after, before in [(X, X_before), (dA, dA_before), (y, y_before)]:
        np.testing.assert_array_equal(after, before)


# ---- input validation ---------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(c_in=0, c_out=1, kernel_size=1), "c_in must be an integer >= 1, got 0"),
        (
            dict(c_in=1, c_out=1, kernel_size=(1, 2, 3)),
            r"kernel_size must be an integer or a pair of integers \(h, w\), got \(1, 2, 3\)",
        ),
        (
            dict(c_in=1, c_out=1, kernel_size=2, stride=(1, 2, 1)),
            r"stride must be an integer or a pair of integers \(h, w\), got \(1, 2, 1\)",
        ),
        (dict(c_in=1, c_out=1, kernel_size=2, stride=(1, 0)), "stride must be an integer >= 1"),
        (
            dict(c_in=1, c_out=1, kernel_size=2, padding=(0, -1)),
            "padding must be an integer >= 0, got -1",
        ),
        (dict(c_in=1, c_out=1, kernel_size=(0, 2)), "kernel_size must be an integer >= 1, got 0"),
        (dict(c_in=1, c_out=1, kernel_size=2, stride=0), "stride must be an integer >= 1, got 0"),
        (
            dict(c_in=1, c_out=1, kernel_size=2, padding=-1),
            "padding must be an integer >= 0, got -1",
        ),
        (dict(c_in=1, c_out=1, kernel_size=2, activation="nope"), "activation must be one of"),
    ],
)
def test_conv_constructor_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Conv2d(**kwargs)


def test_input_shape_errors():
    conv = Conv2d(2, 3, 3)
    with pytest.raises(
        ValueError, match=r"Conv2d input must have shape \(N, 2, H, W\), got \(4, 2, 5\)"
    ):
        conv.check_input(np.zeros((4, 2, 5)))
    with pytest.raises(ValueError, match=r"shape \(N, 2, H, W\), got \(4, 3, 5, 5\)"):
        conv.check_input(np.zeros((4, 3, 5, 5)))
    with pytest.raises(ValueError, match=r"kernel 3x3 does not fit the 2x5 input with padding "
                       r"\(ph, pw\) = \(0, 0\) along its height: need H \+ 2\*0 >= 3, got H=2$"):
        conv.check_input(np.zeros((4, 2, 2, 5)))
    Conv2d(2, 3, 3, padding=1).check_input(np.zeros((4, 2, 1, 1)))  # fits once padded
    # per axis: a 1x3 kernel padded (2, 0) fits 1 row but not 2 columns
    rect = Conv2d(2, 3, (1, 3), padding=(2, 0))
    rect.check_input(np.zeros((1, 2, 1, 3)))
    with pytest.raises(ValueError, match=r"along its width: need W \+ 2\*0 >= 3, got W=2$"):
        rect.check_input(np.zeros((1, 2, 1, 2)))
    with pytest.raises(ValueError, match=r"along its height: .* got H=1; width: .* got W=1$"):
        Conv2d(2, 3, (4, 2)).check_input(np.zeros((1, 2, 1, 1)))
    with pytest.raises(ValueError, match="Conv2d input must have shape"):
        Network([conv, Flatten(), Dense(3, 1)]).forward(np.zeros((4, 2, 5)))
    with pytest.raises(
        ValueError, match=r"AvgPool2d window 2x2 needs H divisible by 2 and W divisible by 2, "
                          r"got H=4, W=5: the width W=5 is not a multiple of 2$"
    ):
        AvgPool2d(2).check_input(np.zeros((1, 1, 4, 5)))
    AvgPool2d((2, 5)).check_input(np.zeros((1, 1, 4, 5)))  # per axis
    with pytest.raises(ValueError, match=r"the height H=4 is not a multiple of 3$"):
        AvgPool2d((3, 5)).check_input(np.zeros((1, 1, 4, 5)))
    with pytest.raises(ValueError, match=r"the height H=3 .* of 2 and the width W=3 .* of 2$"):
        AvgPool2d(2).check_input(np.zeros((1, 1, 3, 3)))
    with pytest.raises(ValueError, match=r"GlobalAvgPool2d input must have shape \(N, C, H, W\)"):
        GlobalAvgPool2d().check_input(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"k must be an integer or a pair of integers \(h, w\)"):
        AvgPool2d((1, 2, 3))
    with pytest.raises(ValueError, match=r"AvgPool2d input must have shape \(N, C, H, W\)"):
        AvgPool2d(2).check_input(np.zeros((1, 4, 4)))
    with pytest.raises(
        ValueError, match=r"Flatten input must have shape \(N, C, H, W\), got \(3, 4\)"
    ):
        Flatten().check_input(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="k must be an integer >= 1, got 0"):
        AvgPool2d(0)
    net = Network([Conv2d(1, 2, 2), AvgPool2d(2), Flatten(), Dense(2, 1)])
    with pytest.raises(ValueError, match=r"layer 1 \(AvgPool2d\).*divisible by 2, got H=3, W=3"):
        net.forward(np.zeros((1, 1, 4, 4)))


def test_splitting_and_surgery_errors():
    layer, _, cache, dA = conv_with_gradient(9)
    with pytest.raises(ValueError, match=r"n_units must be 2, got 3"):
        layer.out_weights(3)
    with pytest.raises(ValueError, match=r"out_weights must have shape \(units, 3, 2, 3\)"):
        layer.with_out_weights(np.zeros((2, 4, 2, 3)))
    with pytest.raises(ValueError, match=r"theta must have shape \(n, 13\)"):
        layer.with_neuron_params(np.zeros((3, 12)))
    with pytest.raises(ValueError, match=r"theta must have shape \(n, 13\)"):
        layer.with_neuron_params(np.zeros((0, 13)))
    with pytest.raises(ValueError, match=r"V must have shape \(3, 13\), got \(13,\)"):
        layer.splitting_matvec(dA, cache, np.zeros(13))
    with pytest.raises(ValueError, match=r"dA must have the layer output's shape"):
        layer.splitting_matrices(dA[:, :2], cache)
    with pytest.raises(TypeError, match="d2f must be a callable"):
        layer.splitting_matrices(dA, cache, d2f=3.0)
