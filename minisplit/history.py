"""What a growth run records, round by round, and its JSON file.

A :class:`History` is ``meta`` (what was run, why it stopped) and ``rounds``, a
list of plain dicts, one per round (docs/growth.md, "History fields"). Round 0
is the first training phase; every later round is one surgery followed by
training. Everything is JSON: ints, floats, strings, None, lists, dicts.

:meth:`History.save` writes atomically (a temporary file in the same
directory, fsynced, then ``os.replace``), so a crash never leaves half a file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np

from minisplit._files import write_atomic

#: Value of the ``format`` field of a history file.
FORMAT = "minisplit.history"
#: The version :meth:`History.save` writes and the newest :meth:`History.load` reads.
VERSION = 1
#: Round fields measured with a wall clock: they differ between two identical runs.
TIME_FIELDS = ("time_train", "time_split")


@dataclass
class History:
    """The record of one growth run.

    Attributes
    ----------
    meta : dict
        ``strategy``, ``config`` (GrowthConfig as a dict), ``layers`` (indices
        of the grown layers; per-layer lists in the rounds follow this order),
        ``task``, ``stop_reason`` (None while running) and ``stop_spectrum``.
    rounds : list of dict
        One per round; fields in docs/growth.md.

    Examples
    --------
    >>> h = History(meta={"layers": [0]}, rounds=[{"round": 0, "steps": 3, "losses": [1, 2, 3]}])
    >>> History.from_json(h.to_json()) == h
    True
    """

    meta: dict = field(default_factory=dict)
    rounds: list = field(default_factory=list)

    # ---- views ---------------------------------------------------------------------------

    def column(self, name) -> list:
        """``[round[name] for round in rounds]`` (None where a round lacks the field)."""
        return [r.get(name) for r in self.rounds]

    @property
    def total_steps(self) -> int:
        """Optimiser updates over all rounds."""
        return int(sum(r.get("steps", 0) for r in self.rounds))

    def step_losses(self):
        """Every recorded training loss with the global step it was taken at.

        Returns
        -------
        steps : ndarray of int (T,)
        losses : ndarray (T,)
        """
        steps, losses, start = [], [], 0
        for r in self.rounds:
            values = r.get("losses", [])
            steps.append(start + np.arange(len(values)))
            losses.append(np.asarray(values, dtype=np.float64))
            start += r.get("steps", 0)
        if not steps:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        return np.concatenate(steps), np.concatenate(losses)

    def split_steps(self) -> list[int]:
        """The global step at which each surgery happened (the start of rounds 1, 2, ...)."""
        out, start = [], 0
        for r in self.rounds:
            if r.get("surgery") is not None:
                out.append(start)
            start += r.get("steps", 0)
        return out

    def without_times(self) -> History:
        """A copy with the wall-clock fields (:data:`TIME_FIELDS`) removed, for comparisons."""
        rounds = [{k: v for k, v in r.items() if k not in TIME_FIELDS} for r in self.rounds]
        return History(json.loads(json.dumps(self.meta)), rounds)

    # ---- JSON --------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """The JSON document: ``{"format", "version", "meta", "rounds"}``."""
        return {"format": FORMAT, "version": VERSION, "meta": self.meta, "rounds": self.rounds}

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
        if not all(isinstance(r, dict) for r in rounds):
            raise ValueError("every round of a history must be an object")
        return cls(meta, rounds)

    @classmethod
    def from_json(cls, text) -> History:
        """Parse :meth:`to_json`'s output."""
        try:
            doc = json.loads(text)
        except ValueError as err:
            raise ValueError(f"not a minisplit history: invalid JSON ({err})") from err
        return cls.from_dict(doc)

    def save(self, path) -> None:
        """Write the history as JSON to ``path`` atomically (``_files.write_atomic``)."""
        text = self.to_json().encode("utf-8")
        write_atomic(path, lambda f: f.write(text))

    @classmethod
    def load(cls, path) -> History:
        """Read a history written by :meth:`save`."""
        with open(path, encoding="utf-8") as f:
            text = f.read()
        try:
            return cls.from_json(text)
        except ValueError as err:
            raise ValueError(f"{os.fspath(path)!r}: {err}") from err


#: Numeric columns of :meth:`Comparison.rows` that :meth:`Comparison.summary` averages.
SUMMARY_FIELDS = (
    "n_neurons", "params", "flops", "train_loss", "test_loss", "train_accuracy",
    "test_accuracy", "total_steps", "time_train", "time_split",
)


@dataclass
class Comparison:
    """Several growth strategies run over several seeds on one data set (``growth.compare``).

    Attributes
    ----------
    dataset : str
    seeds : list of int
    histories : dict {strategy: list of History}, one per seed, in ``seeds`` order.
    nets : dict {strategy: list of Network} or None
        The final networks (not written by :meth:`save`).
    """

    dataset: str
    seeds: list
    histories: dict
    nets: dict | None = None

    def rows(self) -> list[dict]:
        """One table row per (strategy, seed): final sizes, losses, accuracies, steps, times."""
        out = []
        for strategy, runs in self.histories.items():
            for seed, h in zip(self.seeds, runs):
                last = h.rounds[-1]
                row = {"strategy": strategy, "seed": seed, "rounds": len(h.rounds) - 1}
                row.update({k: last.get(k) for k in ("neurons", *SUMMARY_FIELDS[:8])})
                row["time_train"] = float(sum(h.column("time_train")))
                row["time_split"] = float(sum(h.column("time_split")))
                row["stop_reason"] = h.meta.get("stop_reason")
                out.append(row)
        return out

    def summary(self) -> list[dict]:
        """Per strategy, the mean and standard deviation over seeds of :data:`SUMMARY_FIELDS`."""
        rows, out = self.rows(), []
        for strategy in self.histories:
            mine = [r for r in rows if r["strategy"] == strategy]
            entry = {"strategy": strategy, "seeds": len(mine)}
            for name in SUMMARY_FIELDS:
                values = [r[name] for r in mine if r[name] is not None]
                entry[f"{name}_mean"] = float(np.mean(values)) if values else None
                entry[f"{name}_std"] = float(np.std(values)) if values else None
            out.append(entry)
        return out

    def to_json(self) -> str:
        """The comparison (histories, not networks) as JSON text."""
        doc = {
            "format": "minisplit.comparison", "version": VERSION, "dataset": self.dataset,
            "seeds": self.seeds,
            "histories": {s: [h.to_dict() for h in hs] for s, hs in self.histories.items()},
        }
        return json.dumps(doc, sort_keys=True)

    def save(self, path) -> None:
        """Write :meth:`to_json` to ``path`` atomically."""
        text = self.to_json().encode("utf-8")
        write_atomic(path, lambda f: f.write(text))

    @classmethod
    def load(cls, path) -> Comparison:
        """Read a comparison written by :meth:`save` (``nets`` is None)."""
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        if not isinstance(doc, dict) or doc.get("format") != "minisplit.comparison":
            raise ValueError(f"{os.fspath(path)!r} is not a minisplit comparison file")
        histories = {s: [History.from_dict(h) for h in hs] for s, hs in doc["histories"].items()}
        return cls(doc["dataset"], doc["seeds"], histories)
