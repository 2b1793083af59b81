"""Toy growth records for tests of the views, tables and plots (a test helper)."""

from __future__ import annotations

from minisplit.growth import Round

#: A round-0 record: no surgery, one training step; tests override what they look at.
_DEFAULTS = {
    "round": 0, "surgery": None, "chosen": None, "n_added": 0, "eps": None,
    "loss_before": None, "loss_after_split": None, "predicted_change": None,
    "actual_change": None, "spectrum": None, "time_split": 0.0, "time_train": 0.0,
    "neurons": [1], "n_neurons": 1, "params": 1, "flops": 1, "steps": 1, "total_steps": 1,
    "plateaued": False, "losses": [1.0], "train_loss": 1.0, "train_accuracy": None,
    "test_loss": None, "test_accuracy": None,
}


def toy_round(**fields) -> Round:
    """A Round with the given fields and harmless defaults for the rest."""
    unknown = set(fields) - set(_DEFAULTS)
    assert not unknown, f"not Round fields: {unknown}"
    return Round(**{**_DEFAULTS, **fields})


def timeless(comparison) -> dict:
    """``{strategy: [history JSON]}`` with the measured times zeroed: what two runs of the
    same comparison must agree on bit for bit (NaN losses written as text compare equal)."""
    return {name: [h.without_times().to_json() for h in runs]
            for name, runs in comparison.histories.items()}
