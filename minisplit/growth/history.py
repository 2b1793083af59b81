"""What a growth run records, round by round, and its JSON file.

A :class:`History` is ``meta`` (what was run, why it stopped: a JSON dict) and
``rounds``, a list of :class:`Round` records, one per round (docs/growth.md,
"History fields"). Round 0 is the first training phase; every later round is one
surgery followed by training. In memory a round's ``chosen`` maps integer layer
indices to neuron lists; only the JSON file spells the keys as strings.

:meth:`History.save` writes atomically (a temporary file in the same
directory, fsynced, then ``os.replace``), so a crash never leaves half a file.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field

import numpy as np

from minisplit._files import write_text_atomic

#: Value of the ``format`` field of a history file.
FORMAT = "minisplit.history"
#: The version :meth:`History.save` writes and the newest :meth:`History.load` reads
#: (version 2 added the rounds' ``grad_norm``, ``stationary`` and ``early_loss``).
VERSION = 2
#: Round fields measured with a wall clock: they differ between two identical runs.
TIME_FIELDS = ("time_train", "time_split")


@dataclass
class Round:
    """One round of a growth run: the surgery that opened it, then its training.

    Round 0 (and the fixed baseline's only round) has no surgery: ``surgery``,
    ``chosen``, ``eps`` and the loss-change fields are None, ``n_added`` is 0. The
    fields are described in docs/growth.md ("History fields").
    """

    round: int
    surgery: str | None
    chosen: dict | None  # {layer: [neuron indices]}, integer keys
    n_added: int
    eps: float | None
    loss_before: float | None
    loss_after_split: float | None
    predicted_change: float | None
    actual_change: float | None
    spectrum: dict | None  # {"kind": "min" or "max", "values": [[index per neuron] per layer]}
    time_split: float
    time_train: float
    neurons: list  # per grown layer, in History.meta["layers"] order
    n_neurons: int
    params: int
    flops: int
    steps: int
    total_steps: int
    plateaued: bool
    losses: list
    train_loss: float
    train_accuracy: float | None
    test_loss: float | None
    test_accuracy: float | None
    # added in history version 2 (a version-1 file reads them as unknown):
    grad_norm: float | None = None  # full-batch gradient norm at the end of the round
    stationary: bool = False  # training stopped at grad_norm <= the optimiser's grad_tol
    early_loss: float | None = None  # full-batch loss after config.early_steps updates

    def to_dict(self) -> dict:
        """The round as a JSON object (layer keys of ``chosen`` as strings)."""
        out = dataclasses.asdict(self)
        if self.chosen is not None:
            out["chosen"] = {str(k): list(v) for k, v in self.chosen.items()}
        return out

    @classmethod
    def from_dict(cls, doc) -> Round:
        """Rebuild from :meth:`to_dict`'s output; ValueError for missing or unknown fields."""
        if not isinstance(doc, dict):
            raise ValueError(f"a round must be a JSON object, got {type(doc).__name__}")
        fields = dataclasses.fields(cls)
        names = {f.name for f in fields}
        required = {f.name for f in fields if f.default is dataclasses.MISSING}
        missing, unknown = sorted(required - set(doc)), sorted(set(doc) - names)
        if missing or unknown:
            raise ValueError(f"a round must have the fields of Round: missing {missing}, "
                             f"unknown {unknown}")
        doc = dict(doc)
        if doc["chosen"] is not None:
            doc["chosen"] = {int(k): list(v) for k, v in doc["chosen"].items()}
        return cls(**doc)


@dataclass
class History:
    """The record of one growth run.

    Attributes
    ----------
    meta : dict
        ``strategy``, ``config`` (GrowthConfig as a dict), ``layers`` (indices
        of the grown layers; per-layer lists in the rounds follow this order),
        ``task``, ``stop_reason`` (None while running) and ``stop_spectrum``.
    rounds : list of Round
        One per round; fields in docs/growth.md.

    Examples
    --------
    >>> import minisplit as ms
    >>> X, y = ms.datasets.rbf_teacher(n=16, seed=0)
    >>> h = ms.grow(ms.mlp([1, 2, 1], seed=0), X, y, ms.GrowthConfig(budget=3)).history
    >>> History.from_json(h.to_json()) == h, h.rounds[1].chosen
    (True, {0: [1]})
    """

    meta: dict = field(default_factory=dict)
    rounds: list = field(default_factory=list)

    # ---- views ---------------------------------------------------------------------------

    def column(self, name) -> list:
        """``[getattr(round, name) for round in rounds]``."""
        return [getattr(r, name) for r in self.rounds]

    @property
    def total_steps(self) -> int:
        """Optimiser updates over all rounds."""
        return int(sum(r.steps for r in self.rounds))

    def step_losses(self):
        """Every recorded training loss with the global step it was taken at.

        Returns
        -------
        steps : ndarray of int (T,)
        losses : ndarray (T,)
        """
        steps, losses, start = [], [], 0
        for r in self.rounds:
            steps.append(start + np.arange(len(r.losses)))
            losses.append(np.asarray(r.losses, dtype=np.float64))
            start += r.steps
        if not steps:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        return np.concatenate(steps), np.concatenate(losses)

    def split_steps(self) -> list[int]:
        """The global step at which each surgery happened (the start of rounds 1, 2, ...)."""
        out, start = [], 0
        for r in self.rounds:
            if r.surgery is not None:
                out.append(start)
            start += r.steps
        return out

    def without_times(self) -> History:
        """A copy with the wall-clock fields (:data:`TIME_FIELDS`) zeroed, for comparisons."""
        rounds = [dataclasses.replace(r, **dict.fromkeys(TIME_FIELDS, 0.0)) for r in self.rounds]
        return History(json.loads(json.dumps(self.meta)), rounds)

    # ---- JSON --------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """The JSON document: ``{"format", "version", "meta", "rounds"}``."""
        rounds = [r.to_dict() for r in self.rounds]
        return {"format": FORMAT, "version": VERSION, "meta": self.meta, "rounds": rounds}

    def to_json(self) -> str:
        """The history as JSON text (non-finite losses are written as NaN/Infinity)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, doc) -> History:
        """Rebuild from :meth:`to_dict`'s output; ValueError for anything else."""
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValueError(f"not a minisplit history: no format tag {FORMAT!r}")
        version = doc.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= VERSION:
            raise ValueError(f"history version {version!r}; this minisplit reads 1..{VERSION}")
        meta, rounds = doc.get("meta"), doc.get("rounds")
        if not isinstance(meta, dict) or not isinstance(rounds, list):
            raise ValueError("a history needs a 'meta' object and a 'rounds' list")
        try:
            return cls(meta, [Round.from_dict(r) for r in rounds])
        except (TypeError, AttributeError) as err:  # e.g. "chosen" not an object
            raise ValueError(f"a round of the history is malformed: {err}") from err

    @classmethod
    def from_json(cls, text) -> History:
        """Parse :meth:`to_json`'s output."""
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError) as err:
            raise ValueError(f"not a minisplit history: invalid JSON ({err})") from err
        return cls.from_dict(doc)

    def save(self, path) -> None:
        """Write the history as JSON to ``path`` atomically (``_files.write_atomic``)."""
        write_text_atomic(path, self.to_json())

    @classmethod
    def load(cls, path) -> History:
        """Read a history written by :meth:`save`."""
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
            return cls.from_json(text)
        except (ValueError, UnicodeDecodeError) as err:
            raise ValueError(f"{os.fspath(path)!r}: {err}") from err
