"""Networks from a framework's arrays, and their splitting matrices in the framework's order.

For checking an implementation of splitting in PyTorch, JAX, ... against an exact reference:
build a minisplit :class:`~minisplit.Network` from plain NumPy arrays named and laid out as
PyTorch names and lays them out, compute minisplit's splitting matrices on the same batch,
and compare (docs/checking-your-implementation.md walks through it).

The layer list names every layer, in order (kinds are case-insensitive: ``"Linear"`` works):

    ("linear", name, activation)          weight (out, in),          bias (out,)
    ("conv2d", name, activation, opts)    weight (out, in, kh, kw),  bias (out,)
                                          opts = {"stride": s, "padding": p}, may be left off
    ("avgpool2d", name, k)                kh x kw mean with stride (kh, kw) (no padding, H, W
                                          divisible)
    ("globalavgpool2d", name)             (N, C, H, W) -> (N, C), the mean over positions:
                                          nn.AdaptiveAvgPool2d(1) then nn.Flatten()
    ("flatten", name)                     (N, C, H, W) -> (N, C*H*W), C-major: torch.flatten(x, 1)

Every stride, padding and window is an int or a pair (h, w), as PyTorch keeps them.

and the state dict holds ``f"{name}.weight"`` and ``f"{name}.bias"`` for every linear and
conv2d layer, and nothing else. A linear weight is minisplit's ``Dense.W``, a conv2d weight
``Conv2d.W`` (NCHW data, cross-correlation as in PyTorch), so no array is transposed.

Neuron i of a linear or conv2d layer (row i of the weight, output channel i) has the
parameter vector

    theta_i = concatenate([weight[i].ravel(), [bias[i]]])     C order, the bias LAST

of length d = in + 1 or in * kh * kw + 1, which is minisplit's own order
(docs/conventions.md): its splitting matrix S_i (d, d) needs no reordering. As everywhere in
minisplit, S_i is that of the *mean* loss over the batch, S_i = sum_n g_{n,i} Hess a_i(x_n)
with g = dL/da and the 1/N inside g (docs/conventions.md, "The 1/N inside the gradient").

In the data flow (docs/architecture.md) this module sits beside splitting: it builds a
network from arrays, then asks :mod:`minisplit.splitting` about it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from minisplit._checks import check_array, check_choice, check_int, check_int_pair, check_type
from minisplit.layers import AvgPool2d, Conv2d, Dense, Flatten, GlobalAvgPool2d
from minisplit.network import Network
from minisplit.splitting.eigen import WHICH, dense_extreme
from minisplit.splitting.matrices import splitting_matrices

#: Layer kinds of a layer list (compared lower-case): what minisplit builds for each.
KINDS = {"linear": Dense, "conv2d": Conv2d, "avgpool2d": AvgPool2d,
         "globalavgpool2d": GlobalAvgPool2d, "flatten": Flatten}
#: Kinds whose layers have neurons, a ``.weight`` and a ``.bias``.
NEURON_KINDS = ("linear", "conv2d")
#: Activation spellings (compared lower-case; None is the identity) -> minisplit's name.
#: Only unambiguous ones: "gelu", "elu", "leaky_relu", ... have no minisplit twin.
ACTIVATION_NAMES = {
    "identity": "identity",
    "linear": "identity",
    "tanh": "tanh",
    "sigmoid": "sigmoid",
    "logistic": "sigmoid",
    "softplus": "softplus",
    "silu": "swish",
    "swish": "swish",
    "relu": "relu",
}
#: The options a conv2d entry may set, with their defaults (PyTorch's).
CONV_OPTIONS = {"stride": 1, "padding": 0}
_FORMS = {
    "linear": "('linear', name, activation)",
    "conv2d": "('conv2d', name, activation) or ('conv2d', name, activation, "
              "{'stride': s, 'padding': p})",
    "avgpool2d": "('avgpool2d', name, k)",
    "globalavgpool2d": "('globalavgpool2d', name)",
    "flatten": "('flatten', name)",
}


# ---- the layer list ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    """One parsed entry of a layer list; ``activation`` is minisplit's name."""

    kind: str
    name: str
    activation: str | None = None
    stride: tuple = (1, 1)
    padding: tuple = (0, 0)
    k: tuple = (1, 1)

    @property
    def settings(self) -> dict:
        """The entries of the minisplit layer's ``config()`` this entry fixes."""
        if self.kind == "linear":
            return {"activation": self.activation}
        if self.kind == "conv2d":
            return {"activation": self.activation, "stride": list(self.stride),
                    "padding": list(self.padding)}
        return {"k": list(self.k)} if self.kind == "avgpool2d" else {}

    @property
    def keys(self) -> tuple[str, ...]:
        return (f"{self.name}.weight", f"{self.name}.bias") if self.kind in NEURON_KINDS else ()


def _activation(value, where: str) -> str:
    """minisplit's name for a framework spelling of an activation."""
    if value is None:
        return "identity"
    known = "None, " + ", ".join(repr(name) for name in sorted(ACTIVATION_NAMES))
    if not isinstance(value, str):
        raise TypeError(f"the activation of {where} must be one of {known}, got {value!r}")
    if value.lower() not in ACTIVATION_NAMES:
        raise ValueError(f"the activation of {where} must be one of {known}, got {value!r}")
    return ACTIVATION_NAMES[value.lower()]


def _entry(index: int, item) -> _Entry:
    """Parse ``layers[index]``."""
    where = f"layers[{index}]"
    if not isinstance(item, (tuple, list)) or not item:
        raise TypeError(f"{where} must be a tuple such as ('linear', name, activation), "
                        f"got {item!r}")
    kind = item[0]
    if not isinstance(kind, str) or kind.lower() not in KINDS:
        raise ValueError(f"{where} must start with a layer kind, one of "
                         f"{', '.join(map(repr, KINDS))}, got {kind!r}")
    kind = kind.lower()
    lengths = {"linear": (3,), "conv2d": (3, 4), "avgpool2d": (3,), "globalavgpool2d": (2,),
               "flatten": (2,)}[kind]
    if len(item) not in lengths:
        raise ValueError(f"{where} must be {_FORMS[kind]}, got {item!r}")
    name = item[1]
    if not isinstance(name, str) or not name:
        raise TypeError(f"{where} must name its layer with a non-empty string, got {name!r}")
    where = f"layer {name!r} ({kind})"
    if kind == "avgpool2d":
        return _Entry(kind, name, k=check_int_pair(item[2], f"the window of {where}", low=1))
    if kind in ("globalavgpool2d", "flatten"):
        return _Entry(kind, name)
    activation = _activation(item[2], where)
    options = item[3] if len(item) == 4 else {}
    check_type(options, f"the options of {where}", Mapping, "a dict such as {'padding': 1}")
    unknown = sorted(set(options) - set(CONV_OPTIONS), key=str)
    if unknown:
        raise ValueError(f"the options of {where} must be among {list(CONV_OPTIONS)}, "
                         f"got {unknown}")
    stride = check_int_pair(options.get("stride", 1), f"the stride of {where}", low=1)
    padding = check_int_pair(options.get("padding", 0), f"the padding of {where}", low=0)
    return _Entry(kind, name, activation, stride, padding)


def _parse(layers) -> list[_Entry]:
    """The entries of a layer list, names checked unique."""
    if isinstance(layers, (str, bytes, Mapping)) or not isinstance(layers, Iterable):
        raise TypeError(f"layers must be a list of tuples such as ('linear', 'fc1', 'tanh'), "
                        f"got {layers!r}")
    entries = [_entry(index, item) for index, item in enumerate(layers)]
    if not entries:
        raise ValueError("layers must name at least one layer, got []")
    names = [entry.name for entry in entries]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"layers must have distinct names, got {repeated} more than once")
    return entries


# ---- arrays -> network ------------------------------------------------------------------


@dataclass(frozen=True)
class _Signal:
    """What is known of the array one layer hands the next: a vector of ``features``
    (unknown: a multiple of ``multiple``) or an image of ``channels`` and ``side`` (H, W).
    ``image`` None: nothing is known (the input, when no input_shape was given)."""

    source: str
    image: bool | None = None
    features: int | None = None
    multiple: int = 1
    channels: int | None = None
    side: tuple | None = None


def _input_signal(input_shape) -> _Signal:
    if input_shape is None:
        return _Signal("the input")
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) not in (1, 3):
        raise ValueError(f"input_shape must be (features,) or (C, H, W) of one sample, "
                         f"got {input_shape!r}")
    shape = [check_int(size, "input_shape entries", low=1) for size in input_shape]
    if len(shape) == 1:
        return _Signal("the input", image=False, features=shape[0])
    return _Signal("the input", image=True, channels=shape[0], side=(shape[1], shape[2]))


def _parameters(entry: _Entry, state_dict, ndim: int, layout: str):
    """``(weight, bias)`` of a neuron layer: float64, the weight ``ndim``-D, the bias (out,)."""
    weight_key, bias_key = entry.keys
    W = check_array(state_dict[weight_key], weight_key)
    b = check_array(state_dict[bias_key], bias_key)
    if W.ndim != ndim or 0 in W.shape:
        raise ValueError(f"{weight_key} must have shape {layout} (PyTorch's layout), "
                         f"got {W.shape}")
    if b.shape != W.shape[:1]:
        hint = ""
        if entry.kind == "linear" and b.shape == W.shape[1:]:
            hint = ": is the weight stored (in, out), as Keras and flax store it? Transpose it"
        raise ValueError(f"{bias_key} must have shape ({W.shape[0]},), one entry per row of "
                         f"{weight_key} {W.shape} = {layout}, got {b.shape}{hint}")
    return W, b


def _linear(entry, state_dict, signal):
    W, b = _parameters(entry, state_dict, 2, "(out, in)")
    key = entry.keys[0]
    if signal.image:
        raise ValueError(f"layer {entry.name!r} (linear) reads {signal.source}, an image "
                         "(N, C, H, W): put a ('flatten', name) layer before it")
    n_out, n_in = W.shape
    if signal.features is not None and n_in != signal.features:
        raise ValueError(f"{key} must have shape ({n_out}, {signal.features}) = (out, in) to "
                         f"read the {signal.features} features of {signal.source}, got "
                         f"{W.shape}")
    if signal.features is None and n_in % signal.multiple:
        raise ValueError(f"{key} must have shape (out, in) with in a multiple of the "
                         f"{signal.multiple} channels that {signal.source} flattens, got "
                         f"{W.shape}")
    obj = Dense.from_config({"n_in": n_in, "n_out": n_out, "activation": entry.activation},
                            [W, b])
    return obj, _Signal(f"layer {entry.name!r}", image=False, features=n_out)


def _conv2d(entry, state_dict, signal):
    W, b = _parameters(entry, state_dict, 4, "(out, in, kh, kw)")
    key = entry.keys[0]
    if signal.image is False:
        raise ValueError(f"layer {entry.name!r} (conv2d) reads {signal.source}, a vector "
                         "(N, features): conv2d needs an image (N, C, H, W)")
    c_out, c_in, kh, kw = W.shape
    if signal.channels is not None and c_in != signal.channels:
        raise ValueError(f"{key} must have shape ({c_out}, {signal.channels}, {kh}, {kw}) = "
                         f"(out, in, kh, kw) to read the {signal.channels} channels of "
                         f"{signal.source}, got {W.shape}")
    obj = Conv2d.from_config({"c_in": c_in, "c_out": c_out, "kernel_size": [kh, kw],
                              "stride": list(entry.stride), "padding": list(entry.padding),
                              "activation": entry.activation}, [W, b])
    side = None
    if signal.side is not None:
        H, W_in = signal.side
        ph, pw = entry.padding
        misfits = [axis for axis, size, k, p in (("height", H, kh, ph), ("width", W_in, kw, pw))
                   if size + 2 * p < k]
        if misfits:
            raise ValueError(f"layer {entry.name!r} (conv2d): its {kh}x{kw} kernel does not fit "
                             f"the {H}x{W_in} image of {signal.source} with padding (h, w) = "
                             f"{entry.padding} along its {' and '.join(misfits)}")
        side = obj.output_shape(H, W_in)
    return obj, _Signal(f"layer {entry.name!r}", image=True, channels=c_out, side=side)


def _avgpool2d(entry, signal):
    if signal.image is False:
        raise ValueError(f"layer {entry.name!r} (avgpool2d) reads {signal.source}, a vector "
                         "(N, features): pooling needs an image (N, C, H, W)")
    side = None
    kh, kw = entry.k
    if signal.side is not None:
        H, W = signal.side
        if H % kh or W % kw:
            raise ValueError(f"layer {entry.name!r} (avgpool2d) must read an image whose height "
                             f"is a multiple of {kh} and width a multiple of {kw} (its {kh}x{kw} "
                             f"window; no padding, no partial windows), got {H}x{W} from "
                             f"{signal.source}")
        side = (H // kh, W // kw)
    return AvgPool2d(entry.k), _Signal(f"layer {entry.name!r}", image=True,
                                       channels=signal.channels, side=side)


def _globalavgpool2d(entry, signal):
    if signal.image is False:
        raise ValueError(f"layer {entry.name!r} (globalavgpool2d) reads {signal.source}, a "
                         "vector (N, features): pooling needs an image (N, C, H, W)")
    return GlobalAvgPool2d(), _Signal(f"layer {entry.name!r}", image=False,
                                      features=signal.channels)


def _flatten(entry, signal):
    if signal.image is False:
        raise ValueError(f"layer {entry.name!r} (flatten) reads {signal.source}, a vector "
                         "(N, features): flatten needs an image (N, C, H, W)")
    source = f"layer {entry.name!r}"
    if signal.channels is not None and signal.side is not None:
        features = signal.channels * signal.side[0] * signal.side[1]
        return Flatten(), _Signal(source, image=False, features=features)
    return Flatten(), _Signal(source, image=False, multiple=signal.channels or 1)


def _check_keys(entries, state_dict) -> None:
    check_type(state_dict, "state_dict", Mapping, "a mapping of names to arrays")
    wanted = [key for entry in entries for key in entry.keys]
    missing = [key for key in wanted if key not in state_dict]
    if missing:
        raise ValueError(f"state_dict must hold a weight and a bias for every linear and conv2d "
                         f"layer, got no {missing} (for a layer built with bias=False, add a "
                         "bias of zeros)")
    extra = sorted(str(key) for key in state_dict if key not in wanted)
    if extra:
        raise ValueError(f"state_dict must hold only {wanted}, got also {extra} (no layer "
                         "of `layers` has them)")


def from_state_dict(layers, state_dict, loss="mse", input_shape=None) -> Network:
    """A minisplit network from a layer list and arrays laid out as PyTorch lays them out.

    ``linear``: ``A = f(X weight^T + bias)``; ``conv2d``: ``A = f(conv(X, weight) + bias)``
    (NCHW, cross-correlation, zero padding); ``avgpool2d``, ``flatten`` as in PyTorch;
    ``globalavgpool2d`` as ``nn.AdaptiveAvgPool2d(1)`` followed by ``nn.Flatten()``. The
    arrays are copied into float64 (float32 values are kept exactly).

    Parameters
    ----------
    layers : list of tuple
        The layer list of the module docstring, e.g.
        ``[("linear", "fc1", "tanh"), ("linear", "fc2", None)]``. Activations:
        :data:`ACTIVATION_NAMES` (any case) or None.
    state_dict : mapping of str to array
        ``{"fc1.weight": (out, in), "fc1.bias": (out,), "conv1.weight": (out, in, kh, kw),
        ...}``: exactly the keys of the linear and conv2d layers.
    loss : {"mse", "cross_entropy"}
        minisplit's losses: ``mse`` is ``1/(2N) sum ||F - y||^2`` (targets (N, k)), not
        PyTorch's ``nn.MSELoss()``, ``1/(N k) sum (F - y)^2``; ``cross_entropy`` is
        ``nn.CrossEntropyLoss()`` on logits (labels (N,)).
    input_shape : tuple of int, optional
        One sample's shape, ``(features,)`` or ``(C, H, W)``. With it every size is checked
        here, by layer name; without it what the arrays fix is checked (consecutive widths
        and channels) and the rest at the first forward pass.

    Returns
    -------
    Network
        ``net.layers[l]`` is ``layers[l]``: Dense, Conv2d, AvgPool2d, GlobalAvgPool2d or
        Flatten.

    Raises
    ------
    ValueError
        A missing or extra key, an array of the wrong shape (a linear weight stored
        (in, out), a bias of the wrong length), consecutive sizes that do not match, an
        unknown layer kind or activation, a network that does not end with (N, k) outputs.
    TypeError
        A layer list, state dict or array of the wrong type.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> layers = [("linear", "fc1", "tanh"), ("linear", "fc2", None)]
    >>> state = {"fc1.weight": rng.normal(size=(3, 2)), "fc1.bias": rng.normal(size=3),
    ...          "fc2.weight": rng.normal(size=(1, 3)), "fc2.bias": rng.normal(size=1)}
    >>> net = from_state_dict(layers, state, loss="mse")
    >>> X = rng.normal(size=(4, 2))
    >>> reference = np.tanh(X @ state["fc1.weight"].T + state["fc1.bias"])
    >>> reference = reference @ state["fc2.weight"].T + state["fc2.bias"]
    >>> bool(np.allclose(net.forward(X), reference, rtol=1e-14, atol=0))
    True
    """
    entries = _parse(layers)
    _check_keys(entries, state_dict)
    signal = _input_signal(input_shape)
    objs = []
    for entry in entries:
        if entry.kind == "linear":
            obj, signal = _linear(entry, state_dict, signal)
        elif entry.kind == "conv2d":
            obj, signal = _conv2d(entry, state_dict, signal)
        elif entry.kind == "avgpool2d":
            obj, signal = _avgpool2d(entry, signal)
        elif entry.kind == "globalavgpool2d":
            obj, signal = _globalavgpool2d(entry, signal)
        else:
            obj, signal = _flatten(entry, signal)
        objs.append(obj)
    if signal.image:
        raise ValueError(f"the network must output (N, k), got an image from {signal.source}: "
                         "end with a linear layer or a flatten")
    return Network(objs, loss)


# ---- network -> arrays --------------------------------------------------------------------


def _check_matches(net, entries) -> None:
    """ValueError unless ``net``'s trunk is the layer list (types, activations, options)."""
    check_type(net, "net", Network)
    if net.heads:
        raise ValueError("net must have no heads (a layer list describes one chain), "
                         f"got {len(net.heads)}")
    if len(net.layers) != len(entries):
        raise ValueError(f"net must have one layer per entry of layers ({len(entries)}), "
                         f"got {len(net.layers)}")
    for index, (entry, obj) in enumerate(zip(entries, net.layers)):
        # a layer list has no batch-norm entries: a batch-normalised layer matches none
        if type(obj) is not KINDS[entry.kind] or obj.config().get("batch_norm", False) or any(
            obj.config()[key] != value for key, value in entry.settings.items()
        ):
            raise ValueError(f"net.layers[{index}] must be what layers[{index}] "
                             f"({entry.name!r}, {entry.kind}) describes, got {obj!r}")


def to_state_dict(net, layers) -> dict[str, np.ndarray]:
    """The weights of ``net`` as a state dict named by ``layers`` (the inverse of
    :func:`from_state_dict`).

    The layer list carries no widths, so a network grown from one (``split``, ``grow``)
    is exported with the same list: its wider arrays come out under the same names.

    Parameters
    ----------
    net : Network
        Without heads; ``net.layers[l]`` of the kind, activation and options of ``layers[l]``.
    layers : list of tuple
        As for :func:`from_state_dict`.

    Returns
    -------
    dict of str to ndarray
        ``{"fc1.weight": W (out, in), "fc1.bias": b (out,), ...}``: float64 copies, in layer
        order, the weight before the bias (``torch.from_numpy`` and ``load_state_dict`` take
        them; cast with ``.astype(np.float32)`` for a float32 model).

    Examples
    --------
    >>> import numpy as np, minisplit as ms
    >>> net = ms.mlp([2, 3, 1], seed=0)
    >>> state = to_state_dict(net, [("linear", "fc1", "tanh"), ("linear", "fc2", None)])
    >>> {key: value.shape for key, value in state.items()}
    {'fc1.weight': (3, 2), 'fc1.bias': (3,), 'fc2.weight': (1, 3), 'fc2.bias': (1,)}
    """
    entries = _parse(layers)
    _check_matches(net, entries)
    state = {}
    for entry, obj in zip(entries, net.layers):
        if entry.kind in NEURON_KINDS:
            weight_key, bias_key = entry.keys
            state[weight_key], state[bias_key] = obj.W.copy(), obj.b.copy()
    return state


# ---- splitting in the framework's order ------------------------------------------------------


@dataclass(frozen=True)
class NeuronSplitting:
    """The splitting matrices, indices and directions of one named layer.

    Row i is neuron i: row i of a linear weight, output channel i of a conv2d weight. Every
    vector of length d (a row of ``vectors``, a row or column of ``matrices[i]``) is in the
    order :attr:`ORDER`: ``theta_i = concatenate([weight[i].ravel(), [bias[i]]])``, the
    weight raveled in C order ((in,) or (in, kh, kw)), the bias LAST.

    Attributes
    ----------
    name : str
        The layer's name in the layer list.
    layer : int
        Its index into ``net.layers``.
    weight_shape : tuple of int
        One neuron's weight, ``weight[i].shape``: ``(in,)`` or ``(in, kh, kw)``.
    matrices : ndarray (n, d, d)
        S_i of the mean loss, symmetric.
    values : ndarray (n,)
        lambda_min(S_i) (``which="min"``, the splitting indices) or lambda_max.
    vectors : ndarray (n, d)
        Unit eigenvectors for ``values``, sign fixed so the largest entry is positive.
    which : {"min", "max"}
    """

    ORDER: ClassVar[str] = ("theta_i = concatenate([weight[i].ravel(), [bias[i]]]): "
                            "C order, bias last")

    name: str
    layer: int
    weight_shape: tuple
    matrices: np.ndarray
    values: np.ndarray
    vectors: np.ndarray
    which: str

    @property
    def dim(self) -> int:
        """d, the length of theta_i."""
        return int(np.prod(self.weight_shape)) + 1

    def parts(self, v):
        """``(weight, bias)`` of a vector (or rows) in :attr:`ORDER`.

        ``v`` (d,) gives a weight shaped ``weight_shape`` and a scalar bias; ``v`` (n, d)
        (e.g. ``vectors``) gives arrays shaped like the layer's ``.weight`` and ``.bias``.

        Examples
        --------
        >>> import numpy as np
        >>> result = NeuronSplitting("fc1", 0, (2,), np.zeros((3, 3, 3)), np.zeros(3),
        ...                          np.eye(3), "min")
        >>> weight, bias = result.parts(np.array([1.0, 2.0, 3.0]))
        >>> weight, float(bias)
        (array([1., 2.]), 3.0)
        >>> [part.shape for part in result.parts(result.vectors)]
        [(3, 2), (3,)]
        """
        v = check_array(v, "v")
        if v.ndim == 0 or v.shape[-1] != self.dim:
            raise ValueError(f"v must have shape (..., {self.dim}), {self.ORDER}, got {v.shape}")
        weight = v[..., :-1].reshape(v.shape[:-1] + tuple(self.weight_shape))
        return weight.copy(), v[..., -1].copy()

    def join(self, weight, bias) -> np.ndarray:
        """The vector (or rows) in :attr:`ORDER` of a weight and a bias, the inverse of
        :meth:`parts`: ``join(state["fc1.weight"], state["fc1.bias"])`` is every theta_i.

        Examples
        --------
        >>> import numpy as np
        >>> result = NeuronSplitting("fc1", 0, (2,), np.zeros((3, 3, 3)), np.zeros(3),
        ...                          np.eye(3), "min")
        >>> result.join(np.array([1.0, 2.0]), 3.0)
        array([1., 2., 3.])
        """
        weight, bias = check_array(weight, "weight"), check_array(bias, "bias")
        k = len(self.weight_shape)
        if weight.ndim < k or weight.shape[weight.ndim - k:] != tuple(self.weight_shape):
            shape = ", ".join(map(str, self.weight_shape))
            raise ValueError(f"weight must have shape (..., {shape}), got {weight.shape}")
        lead = weight.shape[: weight.ndim - k]
        if bias.shape != lead:
            raise ValueError(f"bias must have shape {lead} to go with weight {weight.shape}, "
                             f"got {bias.shape}")
        return np.concatenate([weight.reshape(lead + (-1,)), bias[..., None]], axis=-1)


def neuron_splitting(net, layers, X, y, name, which="min", relu_surrogate=None):
    """Splitting matrices, indices and directions of the layer called ``name``.

    ``S_i = sum_n g_{n,i} Hess_theta a_i(x_n)`` over ``theta_i = [weight[i].ravel(),
    bias[i]]`` (bias last), with ``g = dL/da`` for the **mean** loss over the N samples:
    the 1/N is inside g. An implementation whose loss is a sum over the batch has N times
    these matrices: divide it by N (docs/checking-your-implementation.md lists this and the
    other pitfalls). The values and vectors are the dense eigenpairs of ``matrices``, those
    of ``splitting_indices(..., solver="dense")``.

    Parameters
    ----------
    net : Network
        Built from ``layers`` (:func:`from_state_dict`), or grown from such a network.
    layers : list of tuple
        The layer list of :func:`from_state_dict`.
    X, y : arrays
        The batch: X (N, in) or (N, C, H, W); y (N, k) floats for mse, (N,) integer labels
        for cross_entropy.
    name : str
        A hidden linear or conv2d layer (one that a later linear or conv2d layer reads).
    which : {"min", "max"}
        Smallest eigenpair (the splitting index and the optimal split) or largest (the
        signed split).
    relu_surrogate : float or None
        For a relu layer only, as in :func:`minisplit.splitting_matrices`.

    Returns
    -------
    NeuronSplitting
        ``matrices`` (n, d, d), ``values`` (n,), ``vectors`` (n, d), and ``parts(v)`` to
        cut a vector into (weight-shaped, bias).

    Raises
    ------
    ValueError
        ``name`` not in the list, a layer without neurons (the pools, flatten), the output
        layer (no later layer reads its neurons, so they cannot be split), a flat activation
        (identity, relu without the surrogate: S would be zero), a net that does not match
        ``layers``.

    Examples
    --------
    >>> import numpy as np, minisplit as ms
    >>> rng = np.random.default_rng(0)
    >>> layers = [("linear", "fc1", "tanh"), ("linear", "fc2", None)]
    >>> state = {"fc1.weight": rng.normal(size=(3, 2)), "fc1.bias": rng.normal(size=3),
    ...          "fc2.weight": rng.normal(size=(1, 3)), "fc2.bias": rng.normal(size=1)}
    >>> net = from_state_dict(layers, state)
    >>> X, y = rng.normal(size=(5, 2)), rng.normal(size=(5, 1))
    >>> result = neuron_splitting(net, layers, X, y, "fc1")
    >>> result.matrices.shape, result.values.shape
    ((3, 3, 3), (3,))
    >>> weight, bias = result.parts(result.vectors)   # shaped like fc1.weight, fc1.bias
    >>> weight.shape, bias.shape
    ((3, 2), (3,))
    """
    entries = _parse(layers)
    _check_matches(net, entries)
    check_choice(which, "which", WHICH)
    names = [entry.name for entry in entries]
    if not isinstance(name, str):
        raise TypeError(f"name must be a layer name, one of {names}, got {name!r}")
    if name not in names:
        raise ValueError(f"name must be a layer name, one of {names}, got {name!r}")
    layer = names.index(name)
    hidden = [entry.name for index, entry in enumerate(entries)
              if entry.kind in NEURON_KINDS
              and any(later.kind in NEURON_KINDS for later in entries[index + 1:])]
    if entries[layer].kind not in NEURON_KINDS:
        raise ValueError(f"layer {name!r} ({entries[layer].kind}) has no neurons to split: "
                         f"name must be a hidden linear or conv2d layer, one of {hidden}")
    if name not in hidden:
        raise ValueError(f"layer {name!r} is the output layer: its neurons are the network's "
                         "outputs, which no later layer reads, so they cannot be split; name "
                         f"must be a hidden linear or conv2d layer, one of {hidden}")
    S = splitting_matrices(net, X, y, layer, relu_surrogate=relu_surrogate)  # (n, d, d)
    values, vectors = dense_extreme(S, which)
    weight_shape = tuple(int(size) for size in net.layers[layer].W.shape[1:])
    return NeuronSplitting(name, layer, weight_shape, S, values, vectors, which)


__all__ = [
    "ACTIVATION_NAMES",
    "CONV_OPTIONS",
    "KINDS",
    "NEURON_KINDS",
    "NeuronSplitting",
    "from_state_dict",
    "neuron_splitting",
    "to_state_dict",
]
