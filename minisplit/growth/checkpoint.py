"""Checkpoints of a growth run: everything needed to continue it bit for bit.

A checkpoint is a directory::

    <path>/LATEST              the name of the current snapshot (one line)
    <path>/<snapshot>/network.npz     architecture and weights (minisplit.io.save)
    <path>/<snapshot>/optimizer.npz   optimiser.state_dict(): "t" and "<key>.<i>" arrays
    <path>/<snapshot>/state.json      format tag, fingerprint, config, RNG state, history

A new snapshot is written in full into a fresh directory (each file fsynced),
then ``LATEST`` is replaced atomically (:func:`minisplit._files.write_atomic`),
then older snapshots are deleted. A crash at any point leaves ``LATEST`` naming a
complete snapshot: the previous one until the switch, the new one after it.

The *fingerprint* is a SHA-256 of the growth config, the data (shapes and
bytes) and the starting network (architecture and weights): resuming with any
of them changed would not continue the same run, so it is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
from dataclasses import dataclass

import numpy as np

from minisplit import io
from minisplit._files import fsync_directory, write_atomic
from minisplit.growth.history import History
from minisplit.network import Network

#: Value of the ``format`` field of ``state.json``.
FORMAT = "minisplit.checkpoint"
#: The version :func:`save_checkpoint` writes and the newest :func:`load_checkpoint` reads.
VERSION = 1
LATEST = "LATEST"
_PREFIX = "snapshot-"


@dataclass
class Checkpoint:
    """The state of a growth run at the end of a round.

    Attributes
    ----------
    net : Network
        The current network.
    optimizer : dict
        ``optimizer.state_dict()`` (``"t"`` and the state arrays).
    rng_state : dict
        ``rng.bit_generator.state`` of the run's Generator.
    history : History
        All rounds so far.
    config : dict
        The GrowthConfig as a dict.
    fingerprint : str
        :func:`fingerprint` of the run.
    """

    net: Network
    optimizer: dict
    rng_state: dict
    history: History
    config: dict
    fingerprint: str


def _digest(array) -> str:
    array = np.ascontiguousarray(array)
    return hashlib.sha256(f"{array.dtype.str}{array.shape}".encode() + array.tobytes()).hexdigest()


def fingerprint(config: dict, X, y, net) -> str:
    """SHA-256 identifying a run: config, data shapes and bytes, starting architecture and weights.

    Examples
    --------
    >>> import numpy as np
    >>> from minisplit import mlp
    >>> X, y = np.zeros((4, 1)), np.zeros((4, 1))
    >>> a = fingerprint({"seed": 0}, X, y, mlp([1, 2, 1], seed=0))
    >>> a == fingerprint({"seed": 1}, X, y, mlp([1, 2, 1], seed=0))
    False
    """
    doc = {
        "config": config,
        "X": [list(np.shape(X)), _digest(X)],
        "y": [list(np.shape(y)), _digest(y)],
        "layers": [[type(layer).__name__, layer.config()] for layer in net.layers],
        "loss": net.loss_fn.name,
        "params": [_digest(p) for p in net.params],
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _write_file(path, write) -> None:
    """Create ``path``, let ``write(f)`` fill it, flush and fsync."""
    with open(path, "xb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())


def save_checkpoint(path, checkpoint: Checkpoint) -> None:
    """Write a snapshot into the checkpoint directory ``path`` (created if missing).

    Parameters
    ----------
    path : str or os.PathLike
        A directory owned by this run (snapshots other than the new one are deleted).
    checkpoint : Checkpoint
    """
    path = os.fspath(path)
    os.makedirs(path, exist_ok=True)
    name = f"{_PREFIX}{len(checkpoint.history.rounds):04d}-{secrets.token_hex(4)}"
    folder = os.path.join(path, name)
    os.mkdir(folder)
    io.save(checkpoint.net, os.path.join(folder, "network.npz"))
    _write_file(
        os.path.join(folder, "optimizer.npz"), lambda f: np.savez(f, **checkpoint.optimizer)
    )
    state = {
        "format": FORMAT,
        "version": VERSION,
        "fingerprint": checkpoint.fingerprint,
        "config": checkpoint.config,
        "rng_state": checkpoint.rng_state,
        "history": checkpoint.history.to_dict(),
    }
    text = json.dumps(state, sort_keys=True).encode("utf-8")
    _write_file(os.path.join(folder, "state.json"), lambda f: f.write(text))
    fsync_directory(folder)
    write_atomic(os.path.join(path, LATEST), lambda f: f.write((name + "\n").encode("utf-8")))
    for entry in os.listdir(path):
        if entry.startswith(_PREFIX) and entry != name:
            shutil.rmtree(os.path.join(path, entry), ignore_errors=True)


def load_checkpoint(path) -> Checkpoint | None:
    """The snapshot ``LATEST`` names, or None when ``path`` holds no checkpoint yet.

    Raises
    ------
    ValueError
        If ``path`` is a file, or the snapshot is damaged or of another format.
    """
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"checkpoint {path!r} must be a directory, got a file")
    try:
        with open(os.path.join(path, LATEST), encoding="utf-8") as f:
            name = f.read().strip()
    except FileNotFoundError:
        return None
    folder = os.path.join(path, name)
    if not name.startswith(_PREFIX) or os.sep in name or not os.path.isdir(folder):
        raise ValueError(f"checkpoint {path!r}: LATEST names a missing snapshot {name!r}")
    with open(os.path.join(folder, "state.json"), encoding="utf-8") as f:
        try:
            state = json.load(f)
        except ValueError as err:
            raise ValueError(f"checkpoint {path!r}: state.json is not JSON ({err})") from err
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"checkpoint {path!r}: state.json has no format tag {FORMAT!r}")
    if state.get("version") != VERSION:
        raise ValueError(f"checkpoint {path!r}: version {state.get('version')!r}, need {VERSION}")
    net = io.load(os.path.join(folder, "network.npz"))
    with np.load(os.path.join(folder, "optimizer.npz"), allow_pickle=False) as data:
        optimizer = {key: data[key] for key in data.files}
    return Checkpoint(
        net=net,
        optimizer=optimizer,
        rng_state=state["rng_state"],
        history=History.from_dict(state["history"]),
        config=state["config"],
        fingerprint=state["fingerprint"],
    )
