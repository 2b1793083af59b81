"""Every setting of a growth run (:class:`GrowthConfig`) and what a run returns."""

from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass, field

import numpy as np

from minisplit import baselines
from minisplit.history import History
from minisplit.network import Network
from minisplit.optim import SURGERY_MODES, make_optimizer
from minisplit.splitting import METHODS
from minisplit.train import Plateau

SELECTIONS = ("threshold", "k", "fraction", "knapsack")
BUDGET_KINDS = ("neurons", "params", "flops")
#: Why a run stopped (``history.meta["stop_reason"]``; "steps" for the fixed baseline).
STOP_REASONS = ("budget", "max_rounds", "stable", "none_selected", "steps")


def _real(value, low=None, strict=True, none=False) -> bool:
    """Whether value is a finite real (> low, or >= low when not strict), or None if allowed."""
    if value is None:
        return none
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        return False
    return low is None or (value > low if strict else value >= low)


def _int(value, low, none=False) -> bool:
    if value is None:
        return none
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= low


@dataclass(frozen=True)
class GrowthConfig:
    """Every setting of a growth run (JSON-able; part of a checkpoint's fingerprint).

    Parameters
    ----------
    strategy : str
        "splitting" or a baseline of :data:`minisplit.baselines.STRATEGIES`.
    selection : {"threshold", "k", "fraction", "knapsack"}
        Rule choosing neurons, pooled over layers, among negative indices only.
    threshold, k, fraction : float, int, float
        Parameters of the "threshold", "k" and "fraction" (default 0.3, as the
        authors' code) rules.
    knapsack_flops : float or None
        FLOPs one "knapsack" round may add; None: the rest of a FLOPs budget.
    eps : float or "line_search"
        Split step (v is a unit vector: each offspring lies eps from its parent);
        "line_search" keeps the value of ``eps_grid`` with the lowest training
        loss right after the split.
    signed, alpha : bool, float
        Fall back to signed splits (negative output weight -alpha) along v_max
        when every neuron is splitting-stable.
    budget_kind, budget : str, float or None
        Stop when the neurons of the grown layers, the parameters or the FLOPs
        per sample reach ``budget`` (never exceeded); None: no size budget.
    max_rounds, steps_per_round : int
        At most this many surgeries; at most this many updates per round.
    plateau_window, plateau_rel_tol : int or None, float
        :class:`minisplit.train.Plateau`; window None trains full rounds.
    optimizer, lr, optimizer_options : str, float, dict
        ``make_optimizer(optimizer, lr=lr, **optimizer_options)``.
    surgery_state : {"inherit", "reset"}
        The optimiser state at a surgery (``optimizer.after_surgery``).
    batch_size : int or None
        None: full batch.
    method, relu_surrogate
        How splitting indices are computed (:func:`minisplit.splitting_indices`).
    net2net_noise, gradmax_scale : float
        Net2Net copy noise; norm of each GradMax outgoing weight vector.
    seed : int
        Seeds the run's only Generator.

    Examples
    --------
    >>> GrowthConfig(selection="k", k=2, eps=0.05).to_dict()["k"]
    2
    """

    strategy: str = "splitting"
    selection: str = "fraction"
    threshold: float = 0.0
    k: int = 1
    fraction: float = 0.3
    knapsack_flops: float | None = None
    eps: float | str = 0.1
    eps_grid: tuple = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
    signed: bool = False
    alpha: float = 1.0
    budget_kind: str = "neurons"
    budget: float | None = 32
    max_rounds: int = 10
    steps_per_round: int = 1000
    plateau_window: int | None = 50
    plateau_rel_tol: float = 1e-3
    optimizer: str = "adam"
    lr: float = 0.01
    optimizer_options: dict = field(default_factory=dict)
    surgery_state: str = "inherit"
    batch_size: int | None = None
    method: str = "dense"
    relu_surrogate: float | None = None
    net2net_noise: float = 0.01
    gradmax_scale: float = 0.01
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "eps_grid", tuple(self.eps_grid))
        choices = {
            "strategy": baselines.STRATEGIES, "selection": SELECTIONS,
            "budget_kind": BUDGET_KINDS, "surgery_state": SURGERY_MODES, "method": METHODS,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        checks = {
            "threshold": (_real(self.threshold), "a finite number"),
            "k": (_int(self.k, 0), "a non-negative integer"),
            "fraction": (_real(self.fraction, 0) and self.fraction <= 1, "in (0, 1]"),
            "knapsack_flops": (_real(self.knapsack_flops, 0, none=True), "None or > 0"),
            "eps": (self.eps == "line_search" or _real(self.eps, 0), '> 0 or "line_search"'),
            "eps_grid": (
                bool(self.eps_grid) and all(_real(e, 0) for e in self.eps_grid),
                "a non-empty tuple of positive numbers",
            ),
            "signed": (isinstance(self.signed, bool), "True or False"),
            "alpha": (_real(self.alpha, 0), "a positive number"),
            "budget": (_real(self.budget, 0, none=True), "None or a positive number"),
            "max_rounds": (_int(self.max_rounds, 1), "a positive integer"),
            "steps_per_round": (_int(self.steps_per_round, 1), "a positive integer"),
            "plateau_window": (_int(self.plateau_window, 1, none=True), "None or > 0"),
            "plateau_rel_tol": (_real(self.plateau_rel_tol, 0, strict=False), ">= 0"),
            "optimizer_options": (
                isinstance(self.optimizer_options, dict) and "lr" not in self.optimizer_options,
                "a dict of optimiser settings other than lr",
            ),
            "batch_size": (_int(self.batch_size, 1, none=True), "None or a positive integer"),
            "relu_surrogate": (_real(self.relu_surrogate, 0, none=True), "None or > 0"),
            "net2net_noise": (_real(self.net2net_noise, 0, strict=False), ">= 0"),
            "gradmax_scale": (_real(self.gradmax_scale, 0), "a positive number"),
            "seed": (_int(self.seed, 0), "a non-negative integer"),
        }
        for name, (ok, expected) in checks.items():
            if not ok:
                raise ValueError(f"{name} must be {expected}, got {getattr(self, name)!r}")
        if self.selection == "knapsack" and self.knapsack_flops is None:
            if self.budget_kind != "flops" or self.budget is None:
                raise ValueError(
                    'selection="knapsack" needs knapsack_flops, or budget_kind="flops" with a '
                    "budget (the FLOPs left are then the knapsack's capacity)"
                )
        try:
            self.make_optimizer()
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"optimizer={self.optimizer!r} with lr={self.lr!r} and optimizer_options="
                f"{self.optimizer_options!r} is not a valid optimiser: {err}"
            ) from None

    def to_dict(self) -> dict:
        """The settings as a JSON-able dict; ``GrowthConfig(**d)`` rebuilds the config."""
        return {**asdict(self), "eps_grid": list(self.eps_grid)}

    def make_optimizer(self):
        """A fresh optimiser with these settings."""
        return make_optimizer(self.optimizer, lr=self.lr, **self.optimizer_options)

    def plateau(self) -> Plateau | None:
        """Every round's plateau rule (None: train ``steps_per_round`` updates)."""
        if self.plateau_window is None:
            return None
        return Plateau(self.plateau_window, self.plateau_rel_tol)


@dataclass
class GrowthResult:
    """What :func:`grow` returns: the final network and the history of the run."""

    net: Network
    history: History
