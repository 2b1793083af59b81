"""Every setting of a growth run (:class:`GrowthConfig`) and what a run returns."""

from __future__ import annotations

import inspect
import warnings
from dataclasses import InitVar, asdict, dataclass, field, fields

from minisplit._checks import (
    check_bool,
    check_choice,
    check_int,
    check_real,
    check_type,
)
from minisplit.growth.history import History
from minisplit.growth.selection import SELECTIONS
from minisplit.growth.strategies import STRATEGIES
from minisplit.network import Network
from minisplit.optim import OPTIMIZERS, SURGERY_MODES, make_optimizer
from minisplit.splitting.matrices import SOLVERS
from minisplit.training import Plateau

BUDGET_KINDS = ("neurons", "params", "flops")
#: Why a run stopped (``history.meta["stop_reason"]``; "steps" for the fixed baseline).
STOP_REASONS = ("budget", "max_rounds", "stable", "none_selected", "steps")


@dataclass(frozen=True)
class GrowthConfig:
    """Every setting of a growth run (JSON-able; part of a checkpoint's fingerprint).

    Parameters
    ----------
    strategy : str
        A name of :data:`minisplit.growth.strategies.STRATEGIES` ("splitting" or a baseline).
    selection : {"threshold", "k", "fraction", "knapsack"}
        Rule choosing neurons, pooled over layers, among negative indices only
        (:data:`minisplit.growth.selection.SELECTIONS`).
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
    solver, relu_surrogate
        How splitting indices are computed (:func:`minisplit.splitting_indices`).
    net2net_noise, gradmax_scale : float
        Net2Net copy noise; norm of each GradMax outgoing weight vector.
    seed : int
        >= 0; seeds the run's only Generator.
    method : str or None
        Deprecated spelling of ``solver`` (a DeprecationWarning; not stored).

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
    solver: str = "dense"
    relu_surrogate: float | None = None
    net2net_noise: float = 0.01
    gradmax_scale: float = 0.01
    seed: int = 0
    method: InitVar[str | None] = None

    def __post_init__(self, method):
        if method is not None:
            warnings.warn("GrowthConfig(method=...) is deprecated; use solver=...",
                          DeprecationWarning, stacklevel=3)
            object.__setattr__(self, "solver", method)
        if not isinstance(self.eps_grid, (tuple, list)):
            raise TypeError(f"eps_grid must be a tuple of numbers, got {self.eps_grid!r}")
        object.__setattr__(self, "eps_grid", tuple(self.eps_grid))
        check_choice(self.strategy, "strategy", STRATEGIES)
        check_choice(self.selection, "selection", SELECTIONS)
        check_choice(self.budget_kind, "budget_kind", BUDGET_KINDS)
        check_choice(self.surgery_state, "surgery_state", SURGERY_MODES)
        check_choice(self.solver, "solver", SOLVERS)
        check_real(self.threshold, "threshold")
        check_int(self.k, "k", low=0)
        check_real(self.fraction, "fraction", low=0, high=1, low_open=True)
        check_real(self.knapsack_flops, "knapsack_flops", low=0, low_open=True, none=True)
        if isinstance(self.eps, str) and self.eps != "line_search":
            raise ValueError(f'eps must be a number > 0 or "line_search", got {self.eps!r}')
        if self.eps != "line_search":
            check_real(self.eps, "eps", low=0, low_open=True)
        if not self.eps_grid:
            raise ValueError("eps_grid must be a non-empty tuple of positive numbers, got ()")
        for value in self.eps_grid:
            check_real(value, "each eps_grid value", low=0, low_open=True)
        check_bool(self.signed, "signed")
        check_real(self.alpha, "alpha", low=0, low_open=True)
        check_real(self.budget, "budget", low=0, low_open=True, none=True)
        check_int(self.max_rounds, "max_rounds", low=1)
        check_int(self.steps_per_round, "steps_per_round", low=1)
        check_int(self.plateau_window, "plateau_window", low=1, none=True)
        check_real(self.plateau_rel_tol, "plateau_rel_tol", low=0)
        check_type(self.optimizer_options, "optimizer_options", dict,
                   "a dict of optimiser settings other than lr")
        if "lr" in self.optimizer_options:
            raise ValueError("optimizer_options must be a dict of optimiser settings other "
                             f"than lr (lr is its own field), got {self.optimizer_options!r}")
        check_int(self.batch_size, "batch_size", low=1, none=True)
        check_real(self.relu_surrogate, "relu_surrogate", low=0, low_open=True, none=True)
        check_real(self.net2net_noise, "net2net_noise", low=0)
        check_real(self.gradmax_scale, "gradmax_scale", low=0, low_open=True)
        check_int(self.seed, "seed", low=0)
        if self.selection == "knapsack" and self.knapsack_flops is None:
            if self.budget_kind != "flops" or self.budget is None:
                raise ValueError(
                    'selection="knapsack" needs knapsack_flops, or budget_kind="flops" with a '
                    "budget (the FLOPs left are then the knapsack's capacity)"
                )
        check_choice(self.optimizer, "optimizer", OPTIMIZERS)
        check_real(self.lr, "lr", low=0, low_open=True)
        allowed = set(inspect.signature(OPTIMIZERS[self.optimizer]).parameters) - {"lr"}
        unknown = sorted(set(self.optimizer_options) - allowed)
        if unknown:
            raise ValueError(
                f"optimizer_options must hold settings of {self.optimizer} "
                f"({', '.join(sorted(allowed))}), got {unknown}"
            )
        try:
            self.make_optimizer()
        except (TypeError, ValueError) as err:
            raise type(err)(
                f"optimizer={self.optimizer!r} with lr={self.lr!r} and optimizer_options="
                f"{self.optimizer_options!r} is not a valid optimiser: {err}"
            ) from None

    def to_dict(self) -> dict:
        """The settings as a JSON-able dict; :meth:`from_dict` rebuilds the config."""
        return {**asdict(self), "eps_grid": list(self.eps_grid)}

    @classmethod
    def from_dict(cls, doc) -> GrowthConfig:
        """Rebuild from :meth:`to_dict`'s output (also from files that spell solver "method")."""
        check_type(doc, "doc", dict)
        doc = dict(doc)
        if "method" in doc and "solver" not in doc:  # written by minisplit 0.1
            doc["solver"] = doc.pop("method")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(doc) - known)
        if unknown:
            raise ValueError(f"doc has fields GrowthConfig does not know: {unknown}")
        return cls(**doc)

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
