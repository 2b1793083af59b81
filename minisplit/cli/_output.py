"""The output folder of a command: written as a set, replacing the previous run's as a set.

A run writes every file into a private staging folder beside the destination and, when all
are written and fsynced, puts the staging folder in the destination's place in one step
(:func:`minisplit._files.replace_directory`). So the destination holds the previous run's
outputs or this run's, never a mix, and no stale file of the previous run survives. A
failure or Ctrl-C before that leaves the previous outputs untouched.

The destination must be new, empty, or an earlier minisplit output folder (the marker file
:data:`MARKER` lists what that run wrote): a folder holding any other file is refused, never
emptied.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
from pathlib import Path

from minisplit._files import replace_directory, write_text_atomic
from minisplit.cli._args import fail

#: The file that marks a folder as minisplit's output (and lists what it wrote).
MARKER = ".minisplit-output.json"


def _listed(path) -> set:
    """The files an earlier run's marker says it wrote into ``path`` (empty: no marker)."""
    try:
        with open(path / MARKER, encoding="utf-8") as f:
            doc = json.load(f)
        files = doc["files"] if doc.get("format") == "minisplit.output" else []
        return {name for name in files if isinstance(name, str) and os.sep not in name}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return set()


class OutputFolder:
    """The staging folder of one run's outputs, committed to ``path`` as a set.

    Creating it checks the destination and makes the staging folder at once, so a
    destination that cannot be used fails before any work is done (ValueError).
    """

    def __init__(self, path, command: str):
        self.path, self.command = Path(path), command
        if self.path.exists():
            if not self.path.is_dir():
                raise ValueError(f"--out must be a folder, got the file {str(self.path)!r}")
            ours = _listed(self.path) | {MARKER}
            foreign = sorted(p.name for p in self.path.iterdir() if p.name not in ours)
            if foreign:
                shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
                raise ValueError(
                    f"--out {str(self.path)!r} holds files minisplit did not write ({shown}); "
                    "choose a new or empty folder (an earlier minisplit output folder is "
                    "replaced as a whole)"
                )
        parent = self.path.resolve().parent
        name = f".{self.path.name}.staging-{secrets.token_hex(4)}"
        try:
            parent.mkdir(parents=True, exist_ok=True)
            self.staging = parent / name
            self.staging.mkdir()
        except OSError as err:
            raise ValueError(
                f"--out {str(self.path)!r} cannot be written: {err.strerror or err}"
            ) from err

    def __truediv__(self, name) -> Path:
        """Where to write the output file ``name`` (inside the staging folder)."""
        return self.staging / name

    def commit(self) -> list[Path]:
        """Make the staged files the destination's contents; return their final paths."""
        names = sorted(p.name for p in self.staging.iterdir())
        for name in names:  # the bytes are on disk before the folder changes hands
            with open(self.staging / name, "rb") as f:
                os.fsync(f.fileno())
        marker = {"format": "minisplit.output", "version": 1, "command": self.command,
                  "files": names}
        write_text_atomic(self.staging / MARKER, json.dumps(marker, indent=1) + "\n")
        replace_directory(self.staging, self.path)
        return [self.path / name for name in names]

    def save(self, write) -> int:
        """``write(self)`` the files, commit them and print where they went: exit status 0,
        or 1 with one line on stderr when a write fails (the destination keeps its previous
        contents)."""
        try:
            write(self)
            paths = self.commit()
        except OSError as err:
            print(f"minisplit {self.command}: cannot write the outputs to {str(self.path)!r}: "
                  f"{err.strerror or err}; the folder keeps its previous contents",
                  file=sys.stderr)
            return 1
        shown = [p.name for p in paths if p.name != MARKER]
        print(f"Wrote {', '.join(shown)} to {self.path.resolve()}{os.sep}")
        return 0

    def discard(self) -> None:
        """Remove the staging folder (after a failure or an interruption); idempotent."""
        shutil.rmtree(self.staging, ignore_errors=True)


def run_comparison(command, args, config_of, grow_and_write) -> int:
    """The frame of a command that runs a comparison into an output folder.

    ``config_of(args) -> GrowthConfig`` (a ValueError for settings it refuses), every
    reference run in ``args.strategies`` with the strategy it follows, and the ``--out``
    folder are checked before any training, each failure one line and exit status 2; then
    ``grow_and_write(args, config, out)`` runs, and the staging folder goes whatever happens.
    """
    from minisplit import growth

    try:
        config = config_of(args)
    except ValueError as err:
        fail(command, str(err))
    for name in args.strategies:
        ref = growth.REFERENCES.get(name)
        if ref is not None and ref.after not in args.strategies:
            fail(command, f"--strategies: {name} needs {ref.after}")
    try:
        out = OutputFolder(args.out, command)
    except ValueError as err:
        fail(command, str(err))
    try:
        return grow_and_write(args, config, out)
    finally:
        out.discard()


def training_count(data, n_train) -> str:
    """"N training", or "the first N of the n_train training" when a subset was taken."""
    n = len(data.X_train)
    return f"{n} training" if n == n_train else f"the first {n} of the {n_train} training"
