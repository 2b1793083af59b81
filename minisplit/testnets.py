"""Tiny random networks for verification: one table of architectures, used by
``minisplit verify`` and the test suite.

:data:`ARCHITECTURES` holds one :class:`Architecture` record per network shape. Its
``build`` takes the sizes of the problem as keywords (samples ``n``, widths or channels,
image ``side`` (or ``height`` and ``width``), ``kernel``, ``stride``, ``padding``, ... (per
axis: ``kernel_h``, ``kernel_w``, ...) as they apply, every one with a default, so a plain
call works), the activation, the loss and a seed, and returns
``(net, X, y)``. Everything is drawn from one Generator, in this order:

- the layers, first to last: each layer's own initialisation, then a bias uniform in
  [-0.5, 0.5] for every Dense, Conv2d and DepthwiseConv2d layer (their initialisation has
  b = 0, a point where some second-derivative terms vanish and a wrong formula could pass);
- the inputs ``X``: uniform in [-2, 2] for vectors (N, n_in), [-1, 1] for images
  (N, c_in, side, side) or (N, c_in, height, width);
- the targets ``y``: for ``"mse"`` (N, n_out) uniform in [-1, 1]; for ``"cross_entropy"``
  the labels ``arange(N) % n_out`` (no draw), so every class appears once N >= n_out;
- N(0, :data:`JITTER` ^2) noise on every parameter, so none of them (RBF centres, reader
  weights) sits exactly where its initialisation put it.

A batch-normalised layer (the ``*_bn`` architectures) draws, after its initialisation and
instead of a bias, gamma uniform in [0.5, 1.5], beta in [-0.5, 0.5], and running
statistics: mean in [-0.5, 0.5], variance in [0.5, 2]. Each BN architecture comes twice:
``dense_bn`` / ``conv_bn`` in eval mode (running statistics; their layers are growable),
``dense_bn_train`` / ``conv_bn_train`` in train mode (batch statistics, which couple the
samples; splitting refuses train mode, so none is growable there). The train-mode ones use
``bn_eps`` = :data:`TRAIN_BN_EPS`: with two samples a batch variance can be arbitrarily
small, and the larger epsilon keeps 1/sqrt(var + eps) <= 3.2, so the finite-difference
checks stay well conditioned on every problem Hypothesis draws.

The ``depthwise`` architectures are a separable block (a 1x1 pointwise Conv2d, a
DepthwiseConv2d, a 1x1 Conv2d, global average pooling, a Dense head), plain and batch-normalised
in both modes: the pointwise layer is growable through the depthwise one (its surgery copies
the depthwise filter), the depthwise layer is not (docs/surgery.md, "Separable blocks").

The record also lists the *growable* layers (neuron layers whose units a linear reader
takes: the layers splitting surgery can grow) and the activations that apply (none for
an RBF network, whose neurons have no activation).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from minisplit._checks import check_choice, check_int, make_rng
from minisplit.activations import ACTIVATIONS
from minisplit.layers import (
    RBF,
    AvgPool2d,
    Conv2d,
    Dense,
    DepthwiseConv2d,
    Flatten,
    GlobalAvgPool2d,
)
from minisplit.losses import LOSSES
from minisplit.network import Network, flatten

#: Standard deviation of the noise added to every parameter after the initialisation.
JITTER = 0.1
#: Every activation; the architectures with activated neurons take any of them.
ALL_ACTIVATIONS = tuple(ACTIVATIONS)
#: ``bn_eps`` of the train-mode BN architectures (see the module docstring).
TRAIN_BN_EPS = 0.1
#: The arguments of every builder that are not sizes.
NOT_SIZES = ("activation", "loss", "seed")


# ---- checks and the draws every builder shares ------------------------------------------


def _start(activation, loss, seed, activations, **sizes) -> np.random.Generator:
    """Check the builder's arguments (sizes are integers >= 1, paddings >= 0); its Generator."""
    if activations:
        check_choice(activation, "activation", activations)
    elif activation is not None:
        raise ValueError(f"activation must be None (these neurons have none), got {activation!r}")
    check_choice(loss, "loss", sorted(LOSSES))
    for name, value in sizes.items():
        check_int(value, name, low=0 if name.startswith("padding") else 1)
    if loss == "cross_entropy" and sizes["n_out"] < 2:
        raise ValueError(
            f"n_out must be >= 2 with the cross_entropy loss (the classes), got {sizes['n_out']}"
        )
    return make_rng(seed)


def _conv_side(side, kernel, stride, padding, name="side", layer="") -> int:
    """Output size along one axis of a convolution (``side`` the input's along it); ValueError
    if the kernel won't fit."""
    if side + 2 * padding < kernel:
        raise ValueError(f"{name} must be >= kernel{layer} - 2 * padding{layer} = "
                         f"{kernel - 2 * padding}, got {side}")
    return (side + 2 * padding - kernel) // stride + 1


def _random_bias(layer, rng):
    """The layer with a bias drawn uniform in [-0.5, 0.5] (Dense and Conv2d start at b = 0)."""
    W, b = layer.params
    return type(layer).from_config(layer.config(), [W, rng.uniform(-0.5, 0.5, size=b.shape)])


def _dense(n_in, n_out, activation, rng):
    return _random_bias(Dense(n_in, n_out, activation, seed=rng), rng)


def _conv(c_in, c_out, kernel, stride, padding, activation, rng):
    conv = Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, activation=activation,
                  seed=rng)
    return _random_bias(conv, rng)


def _random_bn(layer, rng):
    """The BN layer with gamma, beta and running statistics drawn (module docstring)."""
    n = layer.n_neurons
    params = [layer.W, rng.uniform(0.5, 1.5, size=n), rng.uniform(-0.5, 0.5, size=n)]
    buffers = [rng.uniform(-0.5, 0.5, size=n), rng.uniform(0.5, 2.0, size=n)]
    return type(layer).from_config(layer.config(), params, buffers)


def _bn_eps(mode) -> float:
    return TRAIN_BN_EPS if mode == "train" else 1e-5


def _finish(layers, loss, X, n_out, rng, mode="train"):
    """``(net, X, y)``: draw the targets, then the parameter noise."""
    n = X.shape[0]
    if loss == "mse":
        y = rng.uniform(-1.0, 1.0, size=(n, n_out))  # (N, n_out)
    else:
        y = np.arange(n) % n_out  # (N,) labels, every class once n >= n_out
    net = Network(layers, loss, mode=mode)
    net = net.with_params(flatten(net.params) + JITTER * rng.standard_normal(net.n_params))
    return net, X, y


# ---- the builders: one per architecture ------------------------------------------------


def dense(*, activation="tanh", loss="mse", seed=0, n=6, n_in=2, width=4, n_out=2):
    """Dense(n_in -> width, activation) -> Dense(width -> n_out) on inputs (n, n_in).

    Parameters
    ----------
    activation : str
        One of :data:`minisplit.ACTIVATIONS`.
    loss : str
        ``"mse"`` or ``"cross_entropy"`` (then ``n_out`` >= 2 classes).
    seed : int or Generator
        Draws everything (the order is in the module docstring).
    n, n_in, width, n_out : int
        Samples, input features, hidden neurons, outputs; all >= 1.

    Returns
    -------
    net : Network
    X : ndarray (n, n_in)
    y : ndarray (n, n_out) for mse, (n,) integer labels for cross_entropy

    Examples
    --------
    >>> net, X, y = dense(loss="cross_entropy", n=3, width=5)
    >>> net.forward(X).shape, y
    ((3, 2), array([0, 1, 0]))
    """
    rng = _start(activation, loss, seed, ALL_ACTIVATIONS, n=n, n_in=n_in, width=width, n_out=n_out)
    layers = [_dense(n_in, width, activation, rng), _dense(width, n_out, "identity", rng)]
    return _finish(layers, loss, rng.uniform(-2.0, 2.0, size=(n, n_in)), n_out, rng)


def deep_dense(
    *, activation="tanh", loss="mse", seed=0, n=6, n_in=2, width1=3, width2=4, width3=3, n_out=2
):
    """Three hidden Dense layers: n_in -> width1 -> width2 -> width3 -> n_out.

    Arguments as in :func:`dense`; ``width1``, ``width2``, ``width3`` are the hidden
    widths, each layer with ``activation``.

    Examples
    --------
    >>> net, X, y = deep_dense(width2=1)
    >>> [layer.n_neurons for layer in net.layers]
    [3, 1, 3, 2]
    """
    widths = {"width1": width1, "width2": width2, "width3": width3}
    rng = _start(activation, loss, seed, ALL_ACTIVATIONS, n=n, n_in=n_in, **widths, n_out=n_out)
    sizes = [n_in, width1, width2, width3]
    layers = [_dense(a, b, activation, rng) for a, b in zip(sizes[:-1], sizes[1:])]
    layers.append(_dense(width3, n_out, "identity", rng))
    return _finish(layers, loss, rng.uniform(-2.0, 2.0, size=(n, n_in)), n_out, rng)


def conv_flatten(
    *, activation="tanh", loss="mse", seed=0, n=6, c_in=2, side=5, channels=3, kernel=3,
    stride=2, padding=1, n_out=2,
):
    """Conv2d(c_in -> channels, kernel, stride, padding) -> Flatten -> Dense(-> n_out).

    The default: 5x5 images, a 3x3 kernel with stride 2 and padding 1 gives 3x3 maps,
    so the Dense layer reads 3 * 9 = 27 columns. Arguments as in :func:`dense`, and
    ``c_in`` input channels, ``side`` x ``side`` images, ``channels`` neurons.

    Examples
    --------
    >>> net, X, y = conv_flatten()
    >>> X.shape, net.layers[2].W.shape
    ((6, 2, 5, 5), (2, 27))
    """
    rng = _start(activation, loss, seed, ALL_ACTIVATIONS, n=n, c_in=c_in, side=side,
                 channels=channels, kernel=kernel, stride=stride, padding=padding, n_out=n_out)
    out = _conv_side(side, kernel, stride, padding)
    layers = [
        _conv(c_in, channels, kernel, stride, padding, activation, rng),  # (n, channels, out, out)
        Flatten(),
        _dense(channels * out**2, n_out, "identity", rng),
    ]
    return _finish(layers, loss, rng.uniform(-1.0, 1.0, size=(n, c_in, side, side)), n_out, rng)


def conv_pool(
    *, activation="tanh", loss="mse", seed=0, n=6, c_in=2, side=7, channels=3, kernel=3,
    stride=2, padding=1, pool=2, n_out=2,
):
    """Conv2d(c_in -> channels) -> AvgPool2d(pool) -> Flatten -> Dense(-> n_out).

    The default: 7x7 images, 3x3 kernel, stride 2, padding 1 -> 4x4 maps -> 2x2 after
    pooling -> Dense(12 -> 2). ``pool`` must divide the convolution's output side.
    Other arguments as in :func:`conv_flatten`.

    Examples
    --------
    >>> net, X, y = conv_pool(side=5, kernel=2, stride=1, padding=0)  # 4x4 maps, pooled 2x2
    >>> net.layers[3].W.shape
    (2, 12)
    """
    rng = _start(activation, loss, seed, ALL_ACTIVATIONS, n=n, c_in=c_in, side=side,
                 channels=channels, kernel=kernel, stride=stride, padding=padding, pool=pool,
                 n_out=n_out)
    out = _conv_side(side, kernel, stride, padding)
    if out % pool:
        raise ValueError(f"pool must divide the convolution's output side {out}, got {pool}")
    layers = [
        _conv(c_in, channels, kernel, stride, padding, activation, rng),  # (n, channels, out, out)
        AvgPool2d(pool),  # (n, channels, out / pool, out / pool)
        Flatten(),
        _dense(channels * (out // pool) ** 2, n_out, "identity", rng),
    ]
    return _finish(layers, loss, rng.uniform(-1.0, 1.0, size=(n, c_in, side, side)), n_out, rng)


def conv_conv(
    *, activation="tanh", loss="mse", seed=0, n=6, c_in=2, side=5, channels1=3, kernel1=3,
    stride1=1, padding1=1, channels2=2, kernel2=2, stride2=2, padding2=0, n_out=2,
):
    """Conv2d(c_in -> channels1) -> Conv2d(-> channels2) -> Flatten -> Dense(-> n_out).

    The default: 5x5 images, 3x3 kernel with padding 1 (5x5 maps), then a 2x2 kernel with
    stride 2 (2x2 maps), Dense(8 -> 2). The first convolution's reader is the second.
    Other arguments as in :func:`conv_flatten`, numbered by layer.

    Examples
    --------
    >>> net, X, y = conv_conv(kernel2=5, stride2=1)  # the second kernel covers the 5x5 maps
    >>> net.layers[3].W.shape
    (2, 2)
    """
    rng = _start(activation, loss, seed, ALL_ACTIVATIONS, n=n, c_in=c_in, side=side,
                 channels1=channels1, kernel1=kernel1, stride1=stride1, padding1=padding1,
                 channels2=channels2, kernel2=kernel2, stride2=stride2, padding2=padding2,
                 n_out=n_out)
    o1 = _conv_side(side, kernel1, stride1, padding1, layer="1")
    o2 = _conv_side(o1, kernel2, stride2, padding2, "the first convolution's output side", "2")
    layers = [
        _conv(c_in, channels1, kernel1, stride1, padding1, activation, rng),  # (n, c1, o1, o1)
        _conv(channels1, channels2, kernel2, stride2, padding2, activation, rng),  # (n, c2, o2, o2)
        Flatten(),
        _dense(channels2 * o2**2, n_out, "identity", rng),
    ]
    return _finish(layers, loss, rng.uniform(-1.0, 1.0, size=(n, c_in, side, side)), n_out, rng)


def conv_gap(
    *, activation="tanh", loss="mse", seed=0, n=6, c_in=2, height=6, width=7, channels=3,
    kernel_h=3, kernel_w=2, stride_h=1, stride_w=2, padding_h=1, padding_w=0, pool_h=3,
    pool_w=1, n_out=2,
):
    """Conv2d -> AvgPool2d((pool_h, pool_w)) -> GlobalAvgPool2d -> Dense(channels -> n_out).

    Every setting is per axis: kernel ``(kernel_h, kernel_w)``, stride ``(stride_h,
    stride_w)``, padding ``(padding_h, padding_w)`` on ``height`` x ``width`` images. The
    default: 6x7 images, a 3x2 kernel with stride (1, 2) and padding (1, 0) -> 6x3 maps ->
    pooled by a 3x1 window to 2x3 -> one mean per channel -> Dense(3 -> 2), which reads each
    channel through one column. ``pool_h`` must divide the maps' height, ``pool_w`` their
    width. Other arguments as in :func:`conv_flatten`.

    Examples
    --------
    >>> net, X, y = conv_gap()
    >>> X.shape, net.layers[0].output_shape(6, 7), net.layers[3].W.shape
    ((6, 2, 6, 7), (6, 3), (2, 3))
    """
    rng = _start(activation, loss, seed, ALL_ACTIVATIONS, n=n, c_in=c_in, height=height,
                 width=width, channels=channels, kernel_h=kernel_h, kernel_w=kernel_w,
                 stride_h=stride_h, stride_w=stride_w, padding_h=padding_h, padding_w=padding_w,
                 pool_h=pool_h, pool_w=pool_w, n_out=n_out)
    out_h = _conv_side(height, kernel_h, stride_h, padding_h, "height", "_h")
    out_w = _conv_side(width, kernel_w, stride_w, padding_w, "width", "_w")
    for name, pool, out, axis in (("pool_h", pool_h, out_h, "height"),
                                  ("pool_w", pool_w, out_w, "width")):
        if out % pool:
            raise ValueError(f"{name} must divide the convolution's output {axis} {out}, "
                             f"got {pool}")
    conv = _conv(c_in, channels, (kernel_h, kernel_w), (stride_h, stride_w),
                 (padding_h, padding_w), activation, rng)
    layers = [
        conv,  # (n, channels, out_h, out_w)
        AvgPool2d((pool_h, pool_w)),  # (n, channels, out_h / pool_h, out_w / pool_w)
        GlobalAvgPool2d(),  # (n, channels)
        _dense(channels, n_out, "identity", rng),
    ]
    X = rng.uniform(-1.0, 1.0, size=(n, c_in, height, width))
    return _finish(layers, loss, X, n_out, rng)


def rbf(*, activation=None, loss="mse", seed=0, n=6, n_in=2, centers=4, n_out=2):
    """RBF(n_in -> centers, width 1) -> Dense(centers -> n_out); no activation applies.

    Arguments as in :func:`dense`; ``activation`` must be None.

    Examples
    --------
    >>> net, X, y = rbf(centers=2, n_out=1)
    >>> net.forward(X).shape
    (6, 1)
    """
    rng = _start(activation, loss, seed, (), n=n, n_in=n_in, centers=centers, n_out=n_out)
    layers = [RBF(n_in, centers, width=1.0, seed=rng), _dense(centers, n_out, "identity", rng)]
    return _finish(layers, loss, rng.uniform(-2.0, 2.0, size=(n, n_in)), n_out, rng)


def rbf_dense(*, activation="tanh", loss="mse", seed=0, n=6, n_in=2, centers=4, width=3, n_out=2):
    """RBF(n_in -> centers) -> Dense(centers -> width, activation) -> Dense(width -> n_out).

    Arguments as in :func:`rbf`; ``activation`` is the hidden Dense layer's.

    Examples
    --------
    >>> net, X, y = rbf_dense(activation="swish")
    >>> net.layers[1].act.name
    'swish'
    """
    rng = _start(activation, loss, seed, ALL_ACTIVATIONS, n=n, n_in=n_in, centers=centers,
                 width=width, n_out=n_out)
    layers = [
        RBF(n_in, centers, width=1.0, seed=rng),
        _dense(centers, width, activation, rng),
        _dense(width, n_out, "identity", rng),
    ]
    return _finish(layers, loss, rng.uniform(-2.0, 2.0, size=(n, n_in)), n_out, rng)


def _dense_bn(mode, activation, loss, seed, n, n_in, width1, width2, n_out):
    sizes = {"n": n, "n_in": n_in, "width1": width1, "width2": width2, "n_out": n_out}
    rng = _start(activation, loss, seed, ALL_ACTIVATIONS, **sizes)
    eps = _bn_eps(mode)
    layers = [
        _random_bn(Dense(n_in, width1, activation, batch_norm=True, bn_eps=eps, seed=rng), rng),
        _random_bn(Dense(width1, width2, activation, batch_norm=True, bn_eps=eps, seed=rng), rng),
        _dense(width2, n_out, "identity", rng),
    ]
    return _finish(layers, loss, rng.uniform(-2.0, 2.0, size=(n, n_in)), n_out, rng, mode)


def dense_bn(*, activation="tanh", loss="mse", seed=0, n=6, n_in=2, width1=3, width2=4, n_out=2):
    """Dense(n_in -> width1, BN) -> Dense(-> width2, BN) -> Dense(-> n_out), eval mode.

    Both hidden layers batch-normalised (``batch_norm=True``), in eval mode: they
    normalise with their (drawn) running statistics. Arguments as in :func:`deep_dense`.

    Examples
    --------
    >>> net, X, y = dense_bn()
    >>> net.mode, net.layers[0].param_names
    ('eval', ('W', 'gamma', 'beta'))
    """
    return _dense_bn("eval", activation, loss, seed, n, n_in, width1, width2, n_out)


def dense_bn_train(
    *, activation="tanh", loss="mse", seed=0, n=6, n_in=2, width1=3, width2=4, n_out=2
):
    """:func:`dense_bn` in train mode (batch statistics), ``bn_eps`` = :data:`TRAIN_BN_EPS`.

    Examples
    --------
    >>> net, X, y = dense_bn_train()
    >>> net.mode, net.layers[1].bn_eps
    ('train', 0.1)
    """
    return _dense_bn("train", activation, loss, seed, n, n_in, width1, width2, n_out)


def _conv_bn(mode, activation, loss, seed, sizes):
    rng = _start(activation, loss, seed, ALL_ACTIVATIONS, **sizes)
    n, c_in, side, n_out = sizes["n"], sizes["c_in"], sizes["side"], sizes["n_out"]
    o1 = _conv_side(side, sizes["kernel1"], sizes["stride1"], sizes["padding1"], layer="1")
    o2 = _conv_side(o1, sizes["kernel2"], sizes["stride2"], sizes["padding2"],
                    "the first convolution's output side", "2")
    c1, c2, eps = sizes["channels1"], sizes["channels2"], _bn_eps(mode)
    layers = [
        _random_bn(Conv2d(c_in, c1, sizes["kernel1"], sizes["stride1"], sizes["padding1"],
                          activation, batch_norm=True, bn_eps=eps, seed=rng), rng),
        _random_bn(Conv2d(c1, c2, sizes["kernel2"], sizes["stride2"], sizes["padding2"],
                          activation, batch_norm=True, bn_eps=eps, seed=rng), rng),
        Flatten(),
        _dense(c2 * o2**2, n_out, "identity", rng),
    ]
    return _finish(layers, loss, rng.uniform(-1.0, 1.0, size=(n, c_in, side, side)), n_out, rng,
                   mode)


def conv_bn(
    *, activation="tanh", loss="mse", seed=0, n=6, c_in=2, side=5, channels1=3, kernel1=3,
    stride1=1, padding1=1, channels2=2, kernel2=2, stride2=2, padding2=0, n_out=2,
):
    """:func:`conv_conv` with both convolutions batch-normalised, in eval mode.

    Statistics per channel over samples and positions; arguments as in :func:`conv_conv`.

    Examples
    --------
    >>> net, X, y = conv_bn()
    >>> net.mode, net.layers[1].param_names, net.layers[3].W.shape
    ('eval', ('W', 'gamma', 'beta'), (2, 8))
    """
    return _conv_bn("eval", activation, loss, seed, dict(
        n=n, c_in=c_in, side=side, channels1=channels1, kernel1=kernel1, stride1=stride1,
        padding1=padding1, channels2=channels2, kernel2=kernel2, stride2=stride2,
        padding2=padding2, n_out=n_out))


def conv_bn_train(
    *, activation="tanh", loss="mse", seed=0, n=6, c_in=2, side=5, channels1=3, kernel1=3,
    stride1=1, padding1=1, channels2=2, kernel2=2, stride2=2, padding2=0, n_out=2,
):
    """:func:`conv_bn` in train mode (batch statistics), ``bn_eps`` = :data:`TRAIN_BN_EPS`.

    Examples
    --------
    >>> conv_bn_train()[0].mode
    'train'
    """
    return _conv_bn("train", activation, loss, seed, dict(
        n=n, c_in=c_in, side=side, channels1=channels1, kernel1=kernel1, stride1=stride1,
        padding1=padding1, channels2=channels2, kernel2=kernel2, stride2=stride2,
        padding2=padding2, n_out=n_out))


def _depthwise(batch_norm, mode, activation, loss, seed, sizes):
    rng = _start(activation, loss, seed, ALL_ACTIVATIONS, **sizes)
    n, c_in, c1, c2 = sizes["n"], sizes["c_in"], sizes["channels1"], sizes["channels2"]
    geometry = {key: tuple(sizes[f"{key}{axis}"] for axis in ("_h", "_w"))
                for key in ("kernel", "stride", "padding")}
    for axis, name, i in (("_h", "height", 0), ("_w", "width", 1)):
        _conv_side(sizes[name], geometry["kernel"][i], geometry["stride"][i],
                   geometry["padding"][i], name, axis)
    eps = _bn_eps(mode)
    convs = [
        Conv2d(c_in, c1, 1, activation=activation, batch_norm=batch_norm, bn_eps=eps, seed=rng),
        DepthwiseConv2d(c1, geometry["kernel"], geometry["stride"], geometry["padding"],
                        activation, batch_norm=batch_norm, bn_eps=eps, seed=rng),
        Conv2d(c1, c2, 1, activation=activation, batch_norm=batch_norm, bn_eps=eps, seed=rng),
    ]
    layers = [_random_bn(obj, rng) if batch_norm else _random_bias(obj, rng) for obj in convs]
    layers += [GlobalAvgPool2d(), _dense(c2, sizes["n_out"], "identity", rng)]
    X = rng.uniform(-1.0, 1.0, size=(n, c_in, sizes["height"], sizes["width"]))
    return _finish(layers, loss, X, sizes["n_out"], rng, mode)


def depthwise(
    *, activation="tanh", loss="mse", seed=0, n=6, c_in=2, height=5, width=6, channels1=3,
    kernel_h=3, kernel_w=2, stride_h=1, stride_w=2, padding_h=1, padding_w=0, channels2=3,
    n_out=2,
):
    """A separable block: Conv2d(1x1) -> DepthwiseConv2d -> Conv2d(1x1) -> GAP -> Dense.

    Conv2d(c_in -> channels1, 1x1), DepthwiseConv2d(channels1) with kernel ``(kernel_h,
    kernel_w)``, stride ``(stride_h, stride_w)`` and padding ``(padding_h, padding_w)`` on
    ``height`` x ``width`` images, Conv2d(channels1 -> channels2, 1x1), global average
    pooling, Dense(channels2 -> n_out); every convolution with ``activation``. The default:
    5x6 images, a 3x2 depthwise kernel with stride (1, 2) and padding (1, 0) -> 5x3 maps.
    Other arguments as in :func:`conv_gap`.

    Examples
    --------
    >>> net, X, y = depthwise()
    >>> [type(obj).__name__ for obj in net.layers[:3]], net.layers[1].output_shape(5, 6)
    (['Conv2d', 'DepthwiseConv2d', 'Conv2d'], (5, 3))
    """
    return _depthwise(False, "train", activation, loss, seed, _depthwise_sizes(locals()))


def depthwise_bn(
    *, activation="tanh", loss="mse", seed=0, n=6, c_in=2, height=5, width=6, channels1=3,
    kernel_h=3, kernel_w=2, stride_h=1, stride_w=2, padding_h=1, padding_w=0, channels2=3,
    n_out=2,
):
    """:func:`depthwise` with its three convolutions batch-normalised, in eval mode.

    Examples
    --------
    >>> net, X, y = depthwise_bn()
    >>> net.mode, net.layers[1].param_names
    ('eval', ('W', 'gamma', 'beta'))
    """
    return _depthwise(True, "eval", activation, loss, seed, _depthwise_sizes(locals()))


def depthwise_bn_train(
    *, activation="tanh", loss="mse", seed=0, n=6, c_in=2, height=5, width=6, channels1=3,
    kernel_h=3, kernel_w=2, stride_h=1, stride_w=2, padding_h=1, padding_w=0, channels2=3,
    n_out=2,
):
    """:func:`depthwise_bn` in train mode, ``bn_eps`` = :data:`TRAIN_BN_EPS`.

    Examples
    --------
    >>> depthwise_bn_train()[0].mode
    'train'
    """
    return _depthwise(True, "train", activation, loss, seed, _depthwise_sizes(locals()))


def _depthwise_sizes(arguments) -> dict:
    """The sizes among a depthwise builder's arguments (all but activation, loss, seed)."""
    return {k: v for k, v in arguments.items() if k not in NOT_SIZES}


# ---- the table -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Architecture:
    """One architecture of the table.

    Attributes
    ----------
    name : str
        Its key in :data:`ARCHITECTURES`.
    build : callable
        ``build(activation=..., loss=..., seed=..., **sizes) -> (net, X, y)``, every
        argument a keyword with a default.
    growable : tuple of int
        Indices into ``net.layers`` of the neuron layers read by a linear reader (the
        layers :func:`minisplit.split` can grow), first to last; empty for a network in
        train mode with batch-normalised layers (splitting refuses train mode).
    activations : tuple of str
        The activations ``build`` takes; empty when its neurons have none (then
        ``activation`` must be None).
    """

    name: str
    build: Callable[..., tuple]
    growable: tuple[int, ...]
    activations: tuple[str, ...]

    @property
    def sizes(self) -> dict:
        """``{name: default}`` of the sizes ``build`` takes (its keywords but activation, loss
        and seed).

        Examples
        --------
        >>> ARCHITECTURES["dense"].sizes
        {'n': 6, 'n_in': 2, 'width': 4, 'n_out': 2}
        """
        parameters = inspect.signature(self.build).parameters.values()
        return {p.name: p.default for p in parameters if p.name not in NOT_SIZES}

    def __str__(self) -> str:
        return self.name


#: The architectures by name, in table order.
ARCHITECTURES = {
    arch.name: arch
    for arch in (
        Architecture("dense", dense, (0,), ALL_ACTIVATIONS),
        Architecture("deep_dense", deep_dense, (0, 1, 2), ALL_ACTIVATIONS),
        Architecture("conv_flatten", conv_flatten, (0,), ALL_ACTIVATIONS),
        Architecture("conv_pool", conv_pool, (0,), ALL_ACTIVATIONS),
        Architecture("conv_conv", conv_conv, (0, 1), ALL_ACTIVATIONS),
        Architecture("conv_gap", conv_gap, (0,), ALL_ACTIVATIONS),
        Architecture("rbf", rbf, (0,), ()),
        Architecture("rbf_dense", rbf_dense, (0, 1), ALL_ACTIVATIONS),
        Architecture("dense_bn", dense_bn, (0, 1), ALL_ACTIVATIONS),
        Architecture("dense_bn_train", dense_bn_train, (), ALL_ACTIVATIONS),
        Architecture("conv_bn", conv_bn, (0, 1), ALL_ACTIVATIONS),
        Architecture("conv_bn_train", conv_bn_train, (), ALL_ACTIVATIONS),
        Architecture("depthwise", depthwise, (0, 2), ALL_ACTIVATIONS),
        Architecture("depthwise_bn", depthwise_bn, (0, 2), ALL_ACTIVATIONS),
        Architecture("depthwise_bn_train", depthwise_bn_train, (), ALL_ACTIVATIONS),
    )
}
