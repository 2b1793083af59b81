"""Checkpoints of a growth run: everything needed to continue it bit for bit.

A checkpoint is a directory that one run owns::

    <path>/RUN                 the owner: format tag, run id, fingerprint (JSON)
    <path>/LOCK                held (flock) while a run uses the folder; its pid inside
    <path>/LATEST              the name of the current snapshot (one line)
    <path>/snapshot-RRRR-<run>-<token>/
        network.npz            architecture and weights (minisplit.io.save)
        optimizer.npz          optimiser.state_dict(): "t" and "<key>.<i>" arrays
        state.json             format tag, run id, fingerprint, config, RNG state, history

A new snapshot is written in full into a fresh directory (each file fsynced),
then ``LATEST`` is replaced atomically (:func:`minisplit._files.write_atomic`),
then this run's older snapshots are deleted. A crash at any point leaves ``LATEST``
naming a complete snapshot: the previous one until the switch, the new one after it.
Nothing is ever deleted that the run did not write: only snapshots named with its
own run id (and, when the caller says ``overwrite``, the previous owner's).

The *fingerprint* is a SHA-256 of the growth config, the data (shapes and
bytes) and the starting network (architecture and weights): resuming with any
of them changed would not continue the same run, so it is refused.

:class:`CheckpointFolder` is how a run opens its folder (ownership, lock, resume,
recovery of a lost ``LATEST``); :func:`load_checkpoint` reads the current snapshot.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import struct
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np

from minisplit import io
from minisplit._files import fsync_directory, write_atomic, write_text_atomic
from minisplit.growth.history import History
from minisplit.network import Network

try:  # POSIX advisory locks; elsewhere a run cannot tell that another one holds the folder
    import fcntl
except ImportError:  # pragma: no cover - not on the platforms CI runs
    fcntl = None

#: Value of the ``format`` field of ``state.json``.
FORMAT = "minisplit.checkpoint"
#: Value of the ``format`` field of the ``RUN`` marker.
RUN_FORMAT = "minisplit.checkpoint-run"
#: The version :func:`save_checkpoint` writes and the newest :func:`load_checkpoint` reads.
VERSION = 2
LATEST = "LATEST"
RUN = "RUN"
LOCK = "LOCK"
_PREFIX = "snapshot-"
_SNAPSHOT = re.compile(r"^snapshot-(\d{4,})-([0-9a-f]{8})-[0-9a-f]{8}$")
#: Stands in a marker's "replaces" list for the snapshots of minisplit 0.1 (no run id).
LEGACY = "legacy"
# what reading a damaged snapshot raises, besides ValueError
_READ_ERRORS = (OSError, EOFError, KeyError, TypeError, RecursionError, UnicodeDecodeError,
                struct.error, zlib.error, zipfile.BadZipFile)


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
    """SHA-256 identifying a run: config, data shapes and bytes, starting architecture and weights
    (with batch norm: the mode and every buffer too).

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
        "layers": [[type(obj).__name__, obj.config()] for obj in net.all_layers],
        "heads": [[head.at, len(head.layers), head.weight] for head in net.heads],
        "loss_weight": net.loss_weight,
        "loss": net.loss_fn.name,
        "params": [_digest(p) for p in net.params],
    }
    if net.has_batch_norm:  # the key only then: the fingerprints of other runs stay as they were
        doc["batch_norm"] = {"mode": net.mode, "buffers": [
            _digest(b) for obj in net.all_layers for b in obj.buffers]}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _write_file(path, write) -> None:
    """Create ``path``, let ``write(f)`` fill it, flush and fsync."""
    with open(path, "xb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())


def save_checkpoint(path, checkpoint: Checkpoint, run_id: str) -> str:
    """Write a snapshot of run ``run_id`` into ``path`` and point ``LATEST`` at it.

    Parameters
    ----------
    path : str or os.PathLike
        An existing checkpoint directory (:class:`CheckpointFolder` opens it).
    checkpoint : Checkpoint
    run_id : str
        8 hex digits naming the run; part of the snapshot's name.

    Returns
    -------
    str
        The new snapshot's name. Older snapshots are not touched here.
    """
    path = os.fspath(path)
    name = f"{_PREFIX}{len(checkpoint.history.rounds):04d}-{run_id}-{secrets.token_hex(4)}"
    folder = os.path.join(path, name)
    os.mkdir(folder)
    io.save(checkpoint.net, os.path.join(folder, "network.npz"))
    _write_file(
        os.path.join(folder, "optimizer.npz"), lambda f: np.savez(f, **checkpoint.optimizer)
    )
    state = {
        "format": FORMAT,
        "version": VERSION,
        "run": run_id,
        "fingerprint": checkpoint.fingerprint,
        "config": checkpoint.config,
        "rng_state": checkpoint.rng_state,
        "history": checkpoint.history.to_dict(),
    }
    text = json.dumps(state, sort_keys=True).encode("utf-8")
    _write_file(os.path.join(folder, "state.json"), lambda f: f.write(text))
    fsync_directory(folder)
    write_atomic(os.path.join(path, LATEST), lambda f: f.write((name + "\n").encode("utf-8")))
    return name


def _read_snapshot(folder, where) -> tuple[Checkpoint, str | None]:
    """``(checkpoint, run id)`` of a snapshot directory; ValueError for anything damaged."""
    try:
        with open(os.path.join(folder, "state.json"), encoding="utf-8") as f:
            state = json.load(f)
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise ValueError(f"state.json has no format tag {FORMAT!r}")
        if state.get("version") not in (1, VERSION):
            raise ValueError(f"version {state.get('version')!r}, this minisplit reads 1..{VERSION}")
        net = io.load(os.path.join(folder, "network.npz"))
        with np.load(os.path.join(folder, "optimizer.npz"), allow_pickle=False) as data:
            optimizer = {key: data[key] for key in data.files}
        checkpoint = Checkpoint(
            net=net,
            optimizer=optimizer,
            rng_state=state["rng_state"],
            history=History.from_dict(state["history"]),
            config=state["config"],
            fingerprint=state["fingerprint"],
        )
    except (ValueError, *_READ_ERRORS) as err:
        raise ValueError(f"checkpoint {where!r}: snapshot {os.path.basename(folder)!r} is "
                         f"damaged or incomplete ({type(err).__name__}: {err})") from err
    return checkpoint, state.get("run")


def _check_directory(path) -> str:
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"checkpoint must be a directory, got the file {path!r}")
    return path


def load_checkpoint(path) -> Checkpoint | None:
    """The snapshot ``LATEST`` names, or None when ``path`` holds no checkpoint at all.

    Raises
    ------
    ValueError
        If ``path`` is a file, ``LATEST`` names a missing snapshot, the snapshot is
        damaged or of another format, or snapshots exist but ``LATEST`` is lost
        (:class:`CheckpointFolder` recovers that case when resuming).
    """
    path = _check_directory(path)
    try:
        with open(os.path.join(path, LATEST), encoding="utf-8") as f:
            name = f.read().strip()
    except FileNotFoundError:
        if _snapshots(path):
            raise ValueError(
                f"checkpoint {path!r} has snapshots but no LATEST; resume the run to recover "
                "it from the newest complete snapshot"
            ) from None
        return None
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"checkpoint {path!r}: LATEST cannot be read ({err})") from err
    folder = os.path.join(path, name)
    if not name.startswith(_PREFIX) or os.sep in name or not os.path.isdir(folder):
        raise ValueError(f"checkpoint {path!r}: LATEST names a missing snapshot {name!r}")
    return _read_snapshot(folder, path)[0]


def _run_of(name) -> str | None:
    """The run id in a snapshot's name (None for a name of another pattern)."""
    match = _SNAPSHOT.match(name)
    return match.group(2) if match else None


def check_destination(path) -> str:
    """Make sure a checkpoint folder can be created and written, before any work starts.

    Returns the path as a string; ValueError saying why not otherwise.
    """
    path = _check_directory(path)
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, f".probe-{secrets.token_hex(4)}")
        with open(probe, "xb"):
            pass
        os.remove(probe)
    except OSError as err:
        raise ValueError(f"checkpoint {path!r} cannot be used: {err.strerror or err}") from err
    return path


def _snapshots(path) -> list[str]:
    """Names of the entries of ``path`` that look like minisplit snapshots (any run)."""
    try:
        return sorted(e for e in os.listdir(path) if e.startswith(_PREFIX))
    except FileNotFoundError:
        return []


def _read_run(path) -> dict | None:
    """The ``RUN`` marker of a checkpoint folder, or None; ValueError when it is damaged."""
    try:
        with open(os.path.join(path, RUN), encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        return None
    except (ValueError, OSError, RecursionError) as err:
        raise ValueError(f"checkpoint {path!r}: its RUN marker is damaged ({err})") from err
    if not isinstance(doc, dict) or doc.get("format") != RUN_FORMAT or not isinstance(
        doc.get("run"), str
    ):
        raise ValueError(f"checkpoint {path!r}: RUN is not a minisplit run marker")
    return doc


class CheckpointFolder:
    """A run's hold on its checkpoint directory: ownership, lock, snapshots, resume.

    Opening (the constructor) happens before any training, so a destination that
    cannot be used fails at once:

    - the directory is created if missing, and must be writable;
    - ``LOCK`` is locked (``flock``) for as long as the run holds the folder: a second
      run into the same folder is refused while the first is alive, and the lock goes
      when the process ends, however it ends;
    - a folder holding another run's checkpoint (a ``RUN`` marker, or snapshots from
      minisplit 0.1) is refused unless ``resume`` finds the same fingerprint, or
      ``overwrite`` says to replace it; then the previous owner's snapshots are deleted
      once this run's first snapshot is complete (a crash before that leaves them and
      ``LATEST`` as they were), and nothing else is;
    - resuming with ``LATEST`` lost recovers the newest complete snapshot of this run,
      and refuses when none is complete.

    Parameters
    ----------
    path : str or os.PathLike
    fingerprint : str
        The run's :func:`fingerprint`.
    resume, overwrite : bool

    Attributes
    ----------
    saved : Checkpoint or None
        The snapshot to resume from (None: start afresh).
    run_id : str
    """

    def __init__(self, path, fingerprint, resume=False, overwrite=False):
        self.path = _check_directory(path)
        self._lock = None
        try:
            os.makedirs(self.path, exist_ok=True)
            self._take_lock()
        except OSError as err:
            raise ValueError(
                f"checkpoint {self.path!r} cannot be used: {err.strerror or err}"
            ) from err
        try:
            self.saved, self.run_id, self.replaces = self._open(fingerprint, resume, overwrite)
        except BaseException:
            self.close()
            raise

    # ---- opening -----------------------------------------------------------------------------

    def _take_lock(self) -> None:
        fd = os.open(os.path.join(self.path, LOCK), os.O_RDWR | os.O_CREAT, 0o666)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 200).decode("utf-8", "replace").strip() or "unknown"
                os.close(fd)
                raise RuntimeError(
                    f"checkpoint {self.path!r} is in use by another run (process {holder}); "
                    "wait for it to finish or use another folder"
                ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock = fd

    def _open(self, stamp, resume, overwrite):
        """``(saved, run id, run ids it replaces)``, after checking the folder's owner."""
        owner = _read_run(self.path)
        legacy = owner is None and (
            os.path.exists(os.path.join(self.path, LATEST)) or bool(self._legacy_snapshots())
        )
        replaced = list(owner.get("replaces", [])) if owner else []
        mine = owner is not None and owner.get("fingerprint") == stamp
        theirs = [s for s in _snapshots(self.path)
                  if owner is not None and _run_of(s) in (owner["run"], *replaced)]
        if resume and mine:
            return self._resume(owner["run"]), owner["run"], replaced
        if theirs or legacy:
            if resume and not overwrite:
                raise ValueError(
                    f"checkpoint {self.path!r} belongs to another run (its config, data or "
                    "starting network differ from these); use another directory, or "
                    "overwrite=True to replace it"
                )
            if not overwrite:
                raise ValueError(
                    f"checkpoint {self.path!r} holds the checkpoint of a run; pass resume=True "
                    "to continue it (same config, data and starting network), overwrite=True "
                    "to replace it, or use another directory"
                )
        if owner is not None:
            replaced.append(owner["run"])  # its snapshots go once ours is complete
        if legacy:
            replaced.append(LEGACY)
        run_id = secrets.token_hex(4)
        self._write_marker(run_id, stamp, replaced)
        return None, run_id, replaced

    def _write_marker(self, run_id, stamp, replaces) -> None:
        marker = {"format": RUN_FORMAT, "version": VERSION, "run": run_id, "fingerprint": stamp,
                  "replaces": sorted(set(replaces))}
        write_text_atomic(os.path.join(self.path, RUN), json.dumps(marker, sort_keys=True))

    def _legacy_snapshots(self) -> list[str]:
        """Snapshots of minisplit 0.1 (no run id in the name, a state.json of the format)."""
        out = []
        for name in _snapshots(self.path):
            if _SNAPSHOT.match(name):
                continue
            try:
                with open(os.path.join(self.path, name, "state.json"), encoding="utf-8") as f:
                    if json.load(f).get("format") == FORMAT:
                        out.append(name)
            except (ValueError, OSError, AttributeError):
                continue  # not a minisplit snapshot: not ours to touch
        return out

    def _resume(self, run_id) -> Checkpoint | None:
        """The current snapshot of this run, recovering a lost LATEST from the newest complete.

        ``LATEST`` counts only when it names a snapshot of this run (after an overwrite that
        died before its first snapshot it still names the previous run's).
        """
        mine = [s for s in _snapshots(self.path) if _run_of(s) == run_id]
        latest = self._latest()
        if latest in mine:
            return _read_snapshot(os.path.join(self.path, latest), self.path)[0]
        damaged = []
        for name in sorted(mine, key=lambda s: int(_SNAPSHOT.match(s).group(1)), reverse=True):
            try:
                saved, _ = _read_snapshot(os.path.join(self.path, name), self.path)
            except ValueError as err:
                damaged.append(str(err))
                continue
            write_atomic(os.path.join(self.path, LATEST),
                         lambda f, name=name: f.write((name + "\n").encode("utf-8")))
            return saved
        if mine:
            raise ValueError(
                f"checkpoint {self.path!r} lost its LATEST and none of its snapshots is "
                f"complete: {'; '.join(damaged)}"
            )
        return None  # the run ended before its first snapshot: nothing to resume

    # ---- while running -----------------------------------------------------------------------

    def _latest(self) -> str | None:
        try:
            with open(os.path.join(self.path, LATEST), encoding="utf-8") as f:
                return f.read().strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as err:
            raise ValueError(f"checkpoint {self.path!r}: LATEST cannot be read ({err})") from err

    def save(self, checkpoint: Checkpoint) -> None:
        """Write a snapshot, switch LATEST to it, then delete this run's older snapshots (and,
        after an overwrite, the replaced runs')."""
        name = save_checkpoint(self.path, checkpoint, self.run_id)
        legacy = self._legacy_snapshots() if LEGACY in self.replaces else []
        for entry in _snapshots(self.path):
            if entry != name and (_run_of(entry) in (self.run_id, *self.replaces)
                                  or entry in legacy):
                shutil.rmtree(os.path.join(self.path, entry), ignore_errors=True)
        if self.replaces:
            self.replaces = []
            self._write_marker(self.run_id, checkpoint.fingerprint, [])

    def close(self) -> None:
        """Release the lock (the files stay: they are the checkpoint)."""
        if self._lock is not None:
            os.close(self._lock)  # closing the descriptor releases the flock
            self._lock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
