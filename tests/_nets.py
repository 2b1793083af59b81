"""The test suite's view of :mod:`minisplit.testnets`: a Hypothesis strategy that draws the
problem, and the helpers the splitting tests share (a test helper, not part of minisplit).

:func:`problems` draws a whole problem from the package's table: the architecture, its
sizes (bounded small: widths 1-5, 2-6 samples, 1-3 image channels, images up to 14 x 14,
rectangular where the architecture's geometry is per axis),
the activation, the loss and the seed, and builds ``(net, X, y)`` with the table's builder.
``ARCH_LAYERS`` lists every (architecture, growable layer) pair, for tests that must check
each one whatever Hypothesis draws. Under the derandomized ``ci`` profile the first draw of
a test is its smallest problem (every size 1, two samples): an edge case for free.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st

from minisplit import RBF, Network, flatten
from minisplit.layers.base import BatchNormMixin
from minisplit.testnets import ARCHITECTURES, Architecture

#: The activations with a second derivative that is not zero (splitting needs one).
SMOOTH = ("tanh", "sigmoid", "softplus", "swish", "gaussian")
LOSS_NAMES = ("mse", "cross_entropy")
#: (architecture, layer) pairs: every growable layer of every architecture.
ARCH_LAYERS = [(arch, layer) for arch in ARCHITECTURES.values() for layer in arch.growable]

seeds = st.integers(0, 2**32 - 1)
samples = st.integers(2, 6)
widths = st.integers(1, 5)
channels = st.integers(1, 3)


def default_problem(arch, loss="mse", seed=0):
    """``(net, X, y)`` of ``arch`` at its default sizes, with tanh where an activation applies."""
    activation = "tanh" if arch.activations else None
    return arch.build(activation=activation, loss=loss, seed=seed)


# ---- drawing the problem -------------------------------------------------------------------


@st.composite
def conv_geometry(draw, out, layer=""):
    """``(side, {kernel, stride, padding})`` of a convolution whose output side is ``out``.

    The padding stays below half the kernel ((kernel - 1) // 2), so every output position
    sees some input; the side is the smallest that gives ``out`` plus up to stride - 1.
    """
    kernel = draw(st.integers(1, 3))
    stride = draw(st.integers(1, 2))
    padding = draw(st.integers(0, (kernel - 1) // 2))
    side = (out - 1) * stride + kernel - 2 * padding + draw(st.integers(0, stride - 1))
    return side, {f"kernel{layer}": kernel, f"stride{layer}": stride, f"padding{layer}": padding}


@st.composite
def _conv_flatten_sizes(draw):
    side, geometry = draw(conv_geometry(draw(st.integers(1, 3))))
    return {"c_in": draw(channels), "side": side, "channels": draw(widths), **geometry}


@st.composite
def _conv_pool_sizes(draw):
    pool = draw(st.integers(1, 2))
    side, geometry = draw(conv_geometry(pool * draw(st.integers(1, 2))))
    return {"c_in": draw(channels), "side": side, "channels": draw(widths), "pool": pool,
            **geometry}


@st.composite
def _conv_conv_sizes(draw):
    inner, second = draw(conv_geometry(draw(st.integers(1, 2)), "2"))
    side, first = draw(conv_geometry(inner, "1"))
    return {"c_in": draw(channels), "side": side, "channels1": draw(widths),
            "channels2": draw(widths), **first, **second}


@st.composite
def _conv_gap_sizes(draw):
    # each axis its own geometry and pooling window: the kernel, stride, padding and window
    # along the height are drawn independently of those along the width
    sizes = {"c_in": draw(channels), "channels": draw(widths)}
    for axis, name in (("_h", "height"), ("_w", "width")):
        pool = draw(st.integers(1, 2))
        side, geometry = draw(conv_geometry(pool * draw(st.integers(1, 2)), axis))
        sizes.update({name: side, f"pool{axis}": pool, **geometry})
    return sizes


@st.composite
def _depthwise_sizes(draw):
    # the pointwise widths, then each axis its own depthwise geometry
    sizes = {"c_in": draw(channels), "channels1": draw(widths), "channels2": draw(widths)}
    for axis, name in (("_h", "height"), ("_w", "width")):
        side, geometry = draw(conv_geometry(draw(st.integers(1, 3)), axis))
        sizes.update({name: side, **geometry})
    return sizes


#: Per architecture of the table, the strategy of its sizes other than ``n`` and ``n_out``.
SIZES = {
    "dense": st.fixed_dictionaries({"n_in": widths, "width": widths}),
    "deep_dense": st.fixed_dictionaries(
        {"n_in": widths, "width1": widths, "width2": widths, "width3": widths}
    ),
    "conv_flatten": _conv_flatten_sizes(),
    "conv_pool": _conv_pool_sizes(),
    "conv_conv": _conv_conv_sizes(),
    "conv_gap": _conv_gap_sizes(),
    "rbf": st.fixed_dictionaries({"n_in": widths, "centers": widths}),
    "rbf_dense": st.fixed_dictionaries({"n_in": widths, "centers": widths, "width": widths}),
    "dense_bn": st.fixed_dictionaries({"n_in": widths, "width1": widths, "width2": widths}),
    "dense_bn_train": st.fixed_dictionaries({"n_in": widths, "width1": widths, "width2": widths}),
    "conv_bn": _conv_conv_sizes(),
    "conv_bn_train": _conv_conv_sizes(),
    "depthwise": _depthwise_sizes(),
    "depthwise_bn": _depthwise_sizes(),
    "depthwise_bn_train": _depthwise_sizes(),
}


@dataclass(frozen=True, eq=False)
class Problem:
    """A drawn problem: what was drawn, and the network and data built from it."""

    architecture: Architecture
    activation: str | None
    loss: str
    seed: int
    sizes: dict
    net: Network = field(repr=False)
    X: np.ndarray = field(repr=False)
    y: np.ndarray = field(repr=False)


@st.composite
def problems(draw, architectures=tuple(ARCHITECTURES), activations=SMOOTH, losses=LOSS_NAMES):
    """A :class:`Problem` drawn from the table.

    ``architectures`` (names or records), ``activations`` and ``losses`` say what may be
    drawn; an architecture without activations draws None. Everything else (the sizes,
    the number of outputs or classes, the seed) is always drawn.
    """
    arch = ARCHITECTURES[str(draw(st.sampled_from(tuple(architectures))))]
    allowed = [name for name in arch.activations if name in activations]
    activation = draw(st.sampled_from(allowed)) if arch.activations else None
    loss = draw(st.sampled_from(tuple(losses)))
    n_out = draw(st.integers(2 if loss == "cross_entropy" else 1, 3))
    sizes = {"n": draw(samples), **draw(SIZES[arch.name]), "n_out": n_out}
    seed = draw(seeds)
    net, X, y = arch.build(activation=activation, loss=loss, seed=seed, **sizes)
    return Problem(arch, activation, loss, seed, sizes, net, X, y)


# ---- helpers of the splitting tests --------------------------------------------------------


def layer_direction(net, layer, rows) -> np.ndarray:
    """A flat parameter direction: ``rows[i]`` on neuron i of ``layer``, zero elsewhere.

    Laid out by hand in ``flatten(net.params)`` order, *not* through ``neuron_params``,
    so a test comparing the two checks the layout as well: Dense and Conv2d neuron i is
    ``[W[i].ravel(), b[i]]`` (bias last), ``W[i].ravel()`` with batch norm (no bias), RBF
    neuron i is ``centers[i]``.
    """
    parts = []
    for index, obj in enumerate(net.layers):
        blocks = [np.zeros_like(p) for p in obj.params]
        if index == layer:
            for i, theta in rows.items():
                if isinstance(obj, RBF) or (isinstance(obj, BatchNormMixin) and obj.batch_norm):
                    blocks[0][i] = np.reshape(theta, blocks[0][i].shape)
                else:
                    blocks[0][i] = np.reshape(theta[:-1], blocks[0][i].shape)
                    blocks[1][i] = theta[-1]
        parts += blocks
    return flatten(parts)


def unit_vector(rng, d) -> np.ndarray:
    """A random unit vector (d,)."""
    v = rng.standard_normal(d)
    return v / np.linalg.norm(v)


def loglog_slope(eps, values) -> float:
    """Least-squares slope of log|values| against log eps."""
    return float(np.polyfit(np.log(eps), np.log(np.abs(values)), 1)[0])
