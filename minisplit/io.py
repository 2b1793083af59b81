"""Save and load networks: architecture and weights in one ``.npz`` file.

A grown network's widths travel with its weights (docs/splitting.md,
"surgery"), so a file holds both:

``__minisplit__``       uint8 array: UTF-8 JSON
                        ``{"format": "minisplit.network", "version": 1,
                        "loss": "mse", "layers": [{"type": "Dense", "config": {...}}, ...]}``
``layer{l}.{name}``     float64 parameter ``name`` of layer l (``param_names`` order)

Nothing is pickled: :func:`load` reads with ``allow_pickle=False``, so a file
cannot run code, and ``cls.from_config(config, params)`` rebuilds each layer from
the registry :data:`LAYER_TYPES` only.

:func:`save` is atomic: it writes a temporary file in the target directory,
flushes and fsyncs it, then ``os.replace``-s it onto the path. A crash
mid-write leaves the previous file (or none) at the path, never half a file.
"""

from __future__ import annotations

import json
import os
import struct
import zipfile
import zlib

import numpy as np

from minisplit._checks import check_type
from minisplit._files import write_atomic
from minisplit.layers import (
    RBF,
    AvgPool2d,
    Conv2d,
    Dense,
    DepthwiseConv2d,
    Flatten,
    GlobalAvgPool2d,
    Prototypes,
)
from minisplit.network import Head, Network

#: Value of the ``format`` field; a file without it is not a minisplit network.
FORMAT = "minisplit.network"
#: The file-format version :func:`save` writes and the newest :func:`load` reads.
VERSION = 1
#: Layer classes a file may name, by ``type(layer).__name__``.
LAYER_TYPES = {
    "Dense": Dense,
    "Conv2d": Conv2d,
    "DepthwiseConv2d": DepthwiseConv2d,
    "AvgPool2d": AvgPool2d,
    "GlobalAvgPool2d": GlobalAvgPool2d,
    "Flatten": Flatten,
    "RBF": RBF,
    "Prototypes": Prototypes,
}

_META_KEY = "__minisplit__"
# what numpy and zipfile raise on a damaged archive; OSError covers bad seeks
_READ_ERRORS = (
    ValueError,
    EOFError,
    OSError,
    KeyError,
    struct.error,
    zlib.error,
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    NotImplementedError,
)


def _param_key(index: int, name: str) -> str:
    return f"layer{index}.{name}"


def _check_path(path) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    path = os.fspath(path)
    if not isinstance(path, str):
        raise TypeError(f"path must name a file as str, got {type(path).__name__}")
    return path


def _arrays(net: Network) -> dict:
    """The arrays of a file: the JSON header, every parameter and buffer, by key.

    The layers are numbered trunk first, then each head's (``heads`` says how many each
    head has and which trunk layer it reads).
    """
    layers = []
    for index, obj in enumerate(net.all_layers):
        name = type(obj).__name__
        if LAYER_TYPES.get(name) is not type(obj):
            raise ValueError(
                f"layer {index} ({name}) cannot be saved: known layer types are "
                f"{sorted(LAYER_TYPES)}"
            )
        layers.append({"type": name, "config": obj.config()})
    heads = [{"at": h.at, "layers": len(h.layers), "weight": h.weight} for h in net.heads]
    meta = {"format": FORMAT, "version": VERSION, "loss": net.loss_fn.name, "layers": layers,
            "heads": heads, "loss_weight": net.loss_weight}
    if net.mode != "train":  # files of train-mode networks stay as before
        meta["mode"] = net.mode
    header = json.dumps(meta, sort_keys=True, allow_nan=False).encode("utf-8")
    arrays = {_META_KEY: np.frombuffer(header, dtype=np.uint8)}
    for index, obj in enumerate(net.all_layers):
        names = (*obj.param_names, *obj.buffer_names)
        for name, value in zip(names, [*obj.params, *obj.buffers]):
            arrays[_param_key(index, name)] = np.asarray(value, dtype=np.float64)
    return arrays


def save(net: Network, path) -> None:
    """Write ``net`` (architecture, loss and weights) to ``path`` atomically.

    Parameters
    ----------
    net : Network
        Every layer's type must be in :data:`LAYER_TYPES`.
    path : str or os.PathLike
        Used exactly as given (no ``.npz`` is appended); its directory must exist.

    Notes
    -----
    The temporary file ``.<name>.<random>.tmp`` lives in the same directory
    (``os.replace`` is atomic only within one file system) and is removed if
    anything fails before the replace. The directory is fsynced after the
    replace where the platform allows it, so the new name survives a power cut.

    Examples
    --------
    >>> import os, tempfile
    >>> from minisplit import mlp
    >>> net = mlp([2, 3, 1], seed=0)
    >>> path = os.path.join(tempfile.mkdtemp(), "net.npz")
    >>> save(net, path)
    >>> load(path).layers[0].W.shape
    (3, 2)
    """
    check_type(net, "net", Network)
    path = _check_path(path)
    arrays = _arrays(net)
    write_atomic(path, lambda f: np.savez(f, **arrays))


def _read_arrays(path: str) -> dict:
    """Every array of the npz at ``path``; ValueError for anything but a plain npz."""
    with open(path, "rb") as f:  # a missing file raises FileNotFoundError here
        try:
            data = np.load(f, allow_pickle=False)
            if isinstance(data, np.lib.npyio.NpzFile):
                with data:
                    arrays = {key: data[key] for key in data.files}
                if all(isinstance(a, np.ndarray) for a in arrays.values()):
                    return arrays
                raise ValueError("it holds members that are not .npy arrays")
        except _READ_ERRORS as err:
            raise ValueError(
                f"{path!r} is not a readable minisplit network file "
                f"(corrupt, truncated, pickled or foreign): {type(err).__name__}: {err}"
            ) from err
    raise ValueError(f"{path!r} is not a minisplit network file: one .npy array, not an .npz")


def _read_meta(arrays: dict, path: str) -> dict:
    """The JSON header, checked for the format tag, version and fields."""
    header = arrays.pop(_META_KEY, None)
    if header is None:
        raise ValueError(f"{path!r} is not a minisplit network file: no {_META_KEY!r} entry")
    if header.dtype != np.uint8 or header.ndim != 1:
        raise ValueError(f"{path!r}: the {_META_KEY!r} entry must be a uint8 vector")
    try:
        meta = json.loads(header.tobytes().decode("utf-8"))
    except (ValueError, RecursionError) as err:  # UnicodeDecodeError, JSONDecodeError, nesting
        raise ValueError(f"{path!r}: the {_META_KEY!r} entry is not UTF-8 JSON: {err}") from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path!r} is not a minisplit network file: no format tag {FORMAT!r}")
    version = meta.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= VERSION:
        raise ValueError(
            f"{path!r} has file-format version {version!r}; this minisplit reads 1..{VERSION}"
        )
    layers = meta.get("layers")
    if not isinstance(layers, list) or not all(
        isinstance(spec, dict) and isinstance(spec.get("config"), dict) for spec in layers
    ):
        raise ValueError(f"{path!r}: 'layers' must be a list of {{'type', 'config'}} objects")
    return meta


def _build_layer(index: int, spec: dict, arrays: dict, path: str):
    """Layer ``index`` from its type name, config and parameter arrays (consumed from arrays)."""
    cls = LAYER_TYPES.get(spec.get("type"))
    if cls is None:
        raise ValueError(
            f"{path!r}: layer {index} has unknown type {spec.get('type')!r}; "
            f"known: {sorted(LAYER_TYPES)}"
        )
    try:
        param_names, buffer_names = cls.array_names(spec["config"])
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path!r}: layer {index} ({cls.__name__}) has a bad config: {err}"
                         ) from err
    values = []
    for name in (*param_names, *buffer_names):
        value = arrays.pop(_param_key(index, name), None)
        if value is None:
            raise ValueError(f"{path!r}: missing array {_param_key(index, name)!r}")
        if value.dtype != np.float64:
            raise ValueError(
                f"{path!r}: {_param_key(index, name)!r} must be float64, got {value.dtype}"
            )
        values.append(value)
    n = len(param_names)
    try:
        return cls.from_config(spec["config"], values[:n], values[n:] if buffer_names else None)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{path!r}: layer {index} ({cls.__name__}) has a bad config or parameters: {err}"
        ) from err


def load(path) -> Network:
    """Read a network written by :func:`save`.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    Network
        Same layer types, configs, loss and bit-identical float64 parameters.

    Raises
    ------
    FileNotFoundError
        If nothing exists at ``path`` (as ``open`` does; other OS errors pass too).
    ValueError
        If the file is not a minisplit network file: corrupt, truncated, random
        bytes, holding pickled objects, a foreign ``.npz`` without the format
        tag, a newer format version, an unknown layer type, or parameters that
        do not match the architecture.

    Examples
    --------
    >>> import os, tempfile
    >>> from minisplit import mlp
    >>> path = os.path.join(tempfile.mkdtemp(), "net.npz")
    >>> save(mlp([2, 1], loss="mse", seed=0), path)
    >>> load(path).loss_fn.name
    'mse'
    """
    path = _check_path(path)
    arrays = _read_arrays(path)
    meta = _read_meta(arrays, path)
    layers = [_build_layer(i, spec, arrays, path) for i, spec in enumerate(meta["layers"])]
    if arrays:
        raise ValueError(f"{path!r}: unexpected entries {sorted(arrays)}")
    try:
        heads, start = [], len(layers) - sum(int(h["layers"]) for h in meta.get("heads", []))
        trunk = layers[:start]
        for spec in meta.get("heads", []):
            heads.append(Head(spec["at"], layers[start : start + spec["layers"]], spec["weight"]))
            start += spec["layers"]
        return Network(trunk, meta.get("loss"), heads, meta.get("loss_weight", 1.0),
                       meta.get("mode", "train"))
    except (ValueError, TypeError, KeyError) as err:
        raise ValueError(f"{path!r}: {err}") from err
