"""Small networks and data for the splitting tests (a test helper, not part of minisplit).

Every builder takes ``(seed, activation, loss)`` and returns ``(net, X, y)``: a tiny
network with random weights, six random inputs and random targets (mse: (N, 2) floats;
cross_entropy: (N,) labels in {0, 1}). ``CASES`` lists, per architecture, the indices of
the layers whose neurons can be split (every neuron layer with a linear reader).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from minisplit import RBF, AvgPool2d, Conv2d, Dense, Flatten, Network, flatten

N_SAMPLES = 6
N_OUT = 2
SMOOTH = ("tanh", "sigmoid", "softplus", "swish", "gaussian")
LOSS_NAMES = ("mse", "cross_entropy")


def targets(loss, rng, n=N_SAMPLES):
    """Random targets for ``loss``: (n, 2) floats in [-1, 1] or (n,) labels with both classes."""
    if loss == "mse":
        return rng.uniform(-1.0, 1.0, size=(n, N_OUT))
    return np.arange(n) % N_OUT


def _dense(n_in, n_out, activation, rng):
    """A Dense layer whose bias is random too (the default init has b = 0)."""
    layer = Dense(n_in, n_out, activation, seed=rng)
    layer.b = rng.uniform(-0.5, 0.5, size=n_out)
    return layer


def _conv(c_in, c_out, kernel, stride, padding, activation, rng):
    layer = Conv2d(
        c_in, c_out, kernel, stride=stride, padding=padding, activation=activation, seed=rng
    )
    layer.b = rng.uniform(-0.5, 0.5, size=c_out)
    return layer


def dense(seed, activation="tanh", loss="mse"):
    """Dense(2 -> 4, act) -> Dense(4 -> 2)."""
    rng = np.random.default_rng(seed)
    layers = [_dense(2, 4, activation, rng), _dense(4, N_OUT, "identity", rng)]
    return Network(layers, loss), rng.uniform(-2, 2, (N_SAMPLES, 2)), targets(loss, rng)


def deep_dense(seed, activation="tanh", loss="mse"):
    """Three hidden Dense layers: 2 -> 3 -> 4 -> 3 -> 2."""
    rng = np.random.default_rng(seed)
    sizes = [2, 3, 4, 3]
    layers = [_dense(a, b, activation, rng) for a, b in zip(sizes[:-1], sizes[1:])]
    layers.append(_dense(3, N_OUT, "identity", rng))
    return Network(layers, loss), rng.uniform(-2, 2, (N_SAMPLES, 2)), targets(loss, rng)


def conv_flatten(seed, activation="tanh", loss="mse"):
    """Conv2d(2 -> 3, 3x3, stride 2, padding 1) on 5x5 -> 3x3 maps -> Flatten -> Dense(27 -> 2)."""
    rng = np.random.default_rng(seed)
    layers = [_conv(2, 3, 3, 2, 1, activation, rng), Flatten(), _dense(27, N_OUT, "identity", rng)]
    X = rng.uniform(-1, 1, (N_SAMPLES, 2, 5, 5))
    return Network(layers, loss), X, targets(loss, rng)


def conv_pool(seed, activation="tanh", loss="mse"):
    """Conv2d(2 -> 3, 3x3, stride 2, padding 1) on 7x7 -> 4x4 -> AvgPool2d(2) -> Dense(12 -> 2)."""
    rng = np.random.default_rng(seed)
    layers = [
        _conv(2, 3, 3, 2, 1, activation, rng),
        AvgPool2d(2),
        Flatten(),
        _dense(12, N_OUT, "identity", rng),
    ]
    X = rng.uniform(-1, 1, (N_SAMPLES, 2, 7, 7))
    return Network(layers, loss), X, targets(loss, rng)


def conv_conv(seed, activation="tanh", loss="mse"):
    """Conv2d(2 -> 3, 3x3, padding 1) -> Conv2d(3 -> 2, 2x2, stride 2) -> Flatten -> Dense."""
    rng = np.random.default_rng(seed)
    layers = [
        _conv(2, 3, 3, 1, 1, activation, rng),
        _conv(3, 2, 2, 2, 0, activation, rng),
        Flatten(),
        _dense(8, N_OUT, "identity", rng),
    ]
    X = rng.uniform(-1, 1, (N_SAMPLES, 2, 5, 5))
    return Network(layers, loss), X, targets(loss, rng)


def rbf(seed, activation="tanh", loss="mse"):
    """RBF(2 -> 4, width 1) -> Dense(4 -> 2) (``activation`` is unused: RBF has none)."""
    rng = np.random.default_rng(seed)
    layers = [RBF(2, 4, width=1.0, seed=rng), _dense(4, N_OUT, "identity", rng)]
    return Network(layers, loss), rng.uniform(-2, 2, (N_SAMPLES, 2)), targets(loss, rng)


def rbf_dense(seed, activation="tanh", loss="mse"):
    """RBF(2 -> 4) -> Dense(4 -> 3, act) -> Dense(3 -> 2)."""
    rng = np.random.default_rng(seed)
    layers = [
        RBF(2, 4, width=1.0, seed=rng),
        _dense(4, 3, activation, rng),
        _dense(3, N_OUT, "identity", rng),
    ]
    return Network(layers, loss), rng.uniform(-2, 2, (N_SAMPLES, 2)), targets(loss, rng)


@dataclass(frozen=True)
class Case:
    """An architecture and the indices of its splittable layers."""

    name: str
    build: object
    layers: tuple

    def __repr__(self) -> str:
        return self.name


CASES = [
    Case("dense", dense, (0,)),
    Case("deep_dense", deep_dense, (0, 1, 2)),
    Case("conv_flatten", conv_flatten, (0,)),
    Case("conv_pool", conv_pool, (0,)),
    Case("conv_conv", conv_conv, (0, 1)),
    Case("rbf", rbf, (0,)),
    Case("rbf_dense", rbf_dense, (0, 1)),
]
#: (case, layer) pairs: every splittable layer of every architecture.
CASE_LAYERS = [(case, layer) for case in CASES for layer in case.layers]


def layer_direction(net, layer, rows) -> np.ndarray:
    """A flat parameter direction: ``rows[i]`` on neuron i of ``layer``, zero elsewhere.

    Laid out by hand in ``flatten(net.params)`` order, *not* through ``neuron_params``,
    so a test comparing the two checks the layout as well: Dense and Conv2d neuron i is
    ``[W[i].ravel(), b[i]]`` (bias last), RBF neuron i is ``centers[i]``.
    """
    parts = []
    for index, obj in enumerate(net.layers):
        blocks = [np.zeros_like(p) for p in obj.params]
        if index == layer:
            for i, theta in rows.items():
                if isinstance(obj, RBF):
                    blocks[0][i] = theta
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
