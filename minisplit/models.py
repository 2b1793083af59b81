"""Named architectures built from the layers: a small CNN and Hello Edge's DS-CNN.

:func:`small_cnn` is the convolutional network of the pruning comparison (docs/pruning.md):
a few 3 x 3 convs with batch norm, each followed by 2 x 2 average pooling, and a Dense head.

:func:`dscnn` is the depthwise-separable CNN of Zhang, Suda, Lai and Chandra (2017) on an
MFCC image (C, H, W) = (1, 49, 10), a sequence of layers handed to :class:`Network`:

    Conv2d(1 -> w0, 10 x 4, stride 2 x 2, "same" padding) -> BN -> f
    n_blocks x [DepthwiseConv2d(3 x 3, padding 1) -> BN -> f -> Conv2d(1 x 1) -> BN -> f]
    GlobalAvgPool2d -> Dense(-> n_classes)

The neurons that splitting grows are the output channels of the first conv and of each
pointwise conv; a depthwise layer carries the channels of the conv before it (its filter is
copied when that conv's channel splits, docs/surgery.md "Separable blocks"). The plain
:func:`minisplit.mlp` stays in :mod:`minisplit.network`. docs/models.md has the shapes and
the comparison with the paper's sizes.

References
----------
Y. Zhang, N. Suda, L. Lai, V. Chandra. Hello Edge: Keyword Spotting on Microcontrollers.
arXiv:1711.07128, 2017.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from minisplit._checks import check_bool, check_int, make_rng
from minisplit.activations import get_activation
from minisplit.layers import AvgPool2d, Conv2d, Dense, DepthwiseConv2d, Flatten, GlobalAvgPool2d
from minisplit.network import Network

#: Hello Edge's first convolution: kernel (kh, kw) and stride (sh, sw).
FIRST_KERNEL, FIRST_STRIDE = (10, 4), (2, 2)


def same_padding(size: int, kernel: int, stride: int) -> int:
    """The symmetric padding p that gives ceil(size / stride) outputs along one axis.

    TensorFlow's "SAME" pads ``total = max((ceil(size/s) - 1) s + k - size, 0)`` in all,
    ``total // 2`` before and the rest after; a symmetric layer pads ``ceil(total / 2)`` on
    both sides, one more in front when ``total`` is odd. For stride >= 2 the output count is
    the same, ``(size + 2p - k) // s + 1 = ceil(size / s)``.

    Examples
    --------
    >>> same_padding(49, 10, 2), same_padding(10, 4, 2)   # totals 9 and 2
    (5, 1)
    """
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return (total + 1) // 2


def _widths(width, n_blocks) -> list[int]:
    """``width`` as n_blocks + 1 channel counts: the first conv's, then each pointwise's."""
    if isinstance(width, Iterable) and not isinstance(width, (str, bytes)):
        widths = list(width)
        if len(widths) != n_blocks + 1:
            raise ValueError(f"width must be an integer or a sequence of n_blocks + 1 = "
                             f"{n_blocks + 1} integers, got {widths!r}")
        return [check_int(w, f"width[{i}]", low=1) for i, w in enumerate(widths)]
    return [check_int(width, "width", low=1)] * (n_blocks + 1)


def _input_shape(input_shape) -> tuple[int, int, int]:
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3:
        raise ValueError(f"input_shape must be a triple of integers (C, H, W), "
                         f"got {input_shape!r}")
    return tuple(check_int(s, f"input_shape[{i}]", low=1) for i, s in enumerate(input_shape))


def dscnn(n_classes=12, input_shape=(1, 49, 10), width=64, n_blocks=4, activation="softplus",
          batch_norm=True, mode="train", seed=None) -> Network:
    """Hello Edge's DS-CNN: a 10 x 4 conv, depthwise-separable blocks, pooling, a Dense head.

    Layers (f the activation, every conv batch-normalised when ``batch_norm``)::

        0          Conv2d(C -> w0, kernel 10 x 4, stride 2 x 2, padding (ph, pw)), f
        2b - 1     DepthwiseConv2d(w_{b-1}, kernel 3 x 3, padding 1), f       b = 1..n_blocks
        2b         Conv2d(w_{b-1} -> w_b, kernel 1 x 1), f
        2 n + 1    GlobalAvgPool2d
        2 n + 2    Dense(w_n -> n_classes, identity): logits, cross-entropy loss

    ``(ph, pw)`` is :func:`same_padding` of (H, W): the maps are ceil(H/2) x ceil(W/2), for
    a 49 x 10 MFCC image padding (5, 1) and 25 x 5 maps, kept by every block.

    Parameters
    ----------
    n_classes : int
        >= 2 (default 12: the ten keywords, silence and unknown).
    input_shape : triple of int
        (C, H, W) of one clip (default (1, 49, 10): 49 frames x 10 MFCCs).
    width : int or sequence of int
        Channels of every conv (default 64, Hello Edge's "S" model with 4 blocks), or
        n_blocks + 1 of them: the first conv's, then each block's pointwise conv's.
        Narrow widths (4, 8, 16) are seeds to grow from.
    n_blocks : int
        >= 0 depthwise-separable blocks (default 4).
    activation : str
        One of :data:`minisplit.ACTIVATIONS` (default "softplus"; see Notes).
    batch_norm : bool
        Batch-normalise every conv (default True, as Hello Edge); False gives them biases.
    mode : {"train", "eval"}
        The network's batch-norm mode (:meth:`Network.set_mode`).
    seed : int, Generator or None
        One Generator initialises the layers in order; None draws fresh entropy (as
        :func:`minisplit.mlp`).

    Returns
    -------
    Network
        Loss "cross_entropy" (integer labels (N,)); input (N, C, H, W), output (N, n_classes).

    Notes
    -----
    Hello Edge uses ReLU. A split lowers the loss by (eps^2 / 2) lambda_min, and the
    splitting matrix S_i = sum g f''(z) h~ h~^T vanishes where f'' = 0: ReLU's is zero
    almost everywhere, so its neurons look splitting-stable. Softplus, log(1 + e^z), is
    ReLU's smooth neighbour with f'' = s(1 - s) > 0 everywhere and largest at z = 0, where
    batch norm centres the pre-activations (tanh's f'' is zero there). ``activation="relu"``
    works, and splitting it then needs the documented surrogate
    (``GrowthConfig(relu_surrogate=beta)``, docs/splitting.md).

    Growable (:func:`minisplit.growth.growable_layers`): layer 0 and every pointwise conv
    2b; the last one is read by the Dense through the pooling. Depthwise layers are not
    growable on their own; the Dense is the output layer.

    References
    ----------
    Zhang, Suda, Lai, Chandra (2017), Hello Edge: Keyword Spotting on Microcontrollers.

    Examples
    --------
    >>> import numpy as np
    >>> net = dscnn(width=8, n_blocks=1, seed=0)
    >>> [type(obj).__name__ for obj in net.layers]
    ['Conv2d', 'DepthwiseConv2d', 'Conv2d', 'GlobalAvgPool2d', 'Dense']
    >>> net.layers[0].padding, net.layers[0].output_shape(49, 10)
    ((5, 1), (25, 5))
    >>> net.forward(np.zeros((2, 1, 49, 10))).shape
    (2, 12)
    """
    n_classes = check_int(n_classes, "n_classes", low=2)
    C, H, W = _input_shape(input_shape)
    n_blocks = check_int(n_blocks, "n_blocks", low=0)
    widths = _widths(width, n_blocks)
    get_activation(activation)  # refuse an unknown name before drawing anything
    batch_norm = check_bool(batch_norm, "batch_norm")
    rng = make_rng(seed, none=True)
    padding = tuple(same_padding(size, k, s) for size, k, s in
                    zip((H, W), FIRST_KERNEL, FIRST_STRIDE))
    layers = [Conv2d(C, widths[0], FIRST_KERNEL, FIRST_STRIDE, padding, activation,
                     batch_norm=batch_norm, seed=rng)]
    for c_in, c_out in zip(widths[:-1], widths[1:]):
        layers.append(DepthwiseConv2d(c_in, 3, padding=1, activation=activation,
                                      batch_norm=batch_norm, seed=rng))
        layers.append(Conv2d(c_in, c_out, 1, activation=activation, batch_norm=batch_norm,
                             seed=rng))
    layers += [GlobalAvgPool2d(), Dense(widths[-1], n_classes, "identity", seed=rng)]
    return Network(layers, "cross_entropy", mode=mode)


def small_cnn(n_classes=10, input_shape=(1, 14, 14), width=(8, 16), activation="softplus",
              batch_norm=True, mode="train", seed=None) -> Network:
    """A small CNN: 3 x 3 convs with batch norm, 2 x 2 average pooling, a Dense head.

    Layers (f the activation, every conv batch-normalised when ``batch_norm``)::

        Conv2d(w_{k-1} -> w_k, kernel 3 x 3, padding 1), f   [AvgPool2d(2)]   k = 0..K-1
        Flatten
        Dense(w_{K-1} * H' * W' -> n_classes, identity): logits, cross-entropy loss

    with ``w_{-1} = C``. A conv keeps the map's size; the 2 x 2 pool follows it while both
    sides of the map are even (14 x 14 -> 7 x 7, then no more pooling; 8 x 8 -> 4 x 4 ->
    2 x 2). Every conv is growable: the first ones are read by the next conv (through the
    pool), the last by the Dense through pool and flatten, where a pruned channel's
    constant output folds into the Dense's bias exactly (docs/pruning.md).

    Parameters
    ----------
    n_classes : int
        >= 2.
    input_shape : triple of int
        (C, H, W) of one image (default (1, 14, 14), the shipped Fashion-MNIST images).
    width : sequence of int
        The channels of each conv (default (8, 16)): narrow widths are seeds to grow from,
        wide ones the networks the pruning methods start from.
    activation, batch_norm, mode, seed
        As in :func:`dscnn` (softplus: f'' > 0 everywhere, so splitting sees every neuron).

    Returns
    -------
    Network

    Examples
    --------
    >>> import numpy as np
    >>> net = small_cnn(width=(4, 6), seed=0)
    >>> [type(obj).__name__ for obj in net.layers]
    ['Conv2d', 'AvgPool2d', 'Conv2d', 'Flatten', 'Dense']
    >>> net.forward(np.zeros((2, 1, 14, 14))).shape
    (2, 10)
    """
    n_classes = check_int(n_classes, "n_classes", low=2)
    C, H, W = _input_shape(input_shape)
    if isinstance(width, (str, bytes)) or not isinstance(width, Iterable):
        raise ValueError(f"width must be a sequence of channel counts, got {width!r}")
    widths = [check_int(w, f"width[{i}]", low=1) for i, w in enumerate(width)]
    if not widths:
        raise ValueError("width must hold at least one channel count, got ()")
    get_activation(activation)  # refuse an unknown name before drawing anything
    batch_norm = check_bool(batch_norm, "batch_norm")
    rng = make_rng(seed, none=True)
    layers, c_in = [], C
    for c_out in widths:
        layers.append(Conv2d(c_in, c_out, 3, padding=1, activation=activation,
                             batch_norm=batch_norm, seed=rng))
        if H % 2 == 0 and W % 2 == 0:
            layers.append(AvgPool2d(2))
            H, W = H // 2, W // 2
        c_in = c_out
    layers += [Flatten(), Dense(c_in * H * W, n_classes, "identity", seed=rng)]
    return Network(layers, "cross_entropy", mode=mode)
