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
from minisplit.splitting.surgery import MAX_ALPHA
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
        ``make_optimizer(optimizer, lr=lr, **optimizer_options)``: "adam", "sgd", or
        "lbfgs" (full-batch L-BFGS run to a stationary point, ``optimizer_options``
        ``grad_tol`` and ``memory``; it ignores ``lr`` and the plateau rule).
    surgery_state : {"inherit", "reset"}
        The optimiser state at a surgery (``optimizer.after_surgery``).
    batch_size : int or None
        None: full batch (the only choice for ``optimizer="lbfgs"``).
    early_steps : int
        After a surgery, the full-batch loss is also recorded after this many updates
        (``Round.early_loss``): the surgery's gain after a few steps.
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
    early_steps: int = 10
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
        check_choice(self.optimizer, "optimizer", OPTIMIZERS)
        if isinstance(self.eps, str) and self.eps != "line_search":
            raise ValueError(f'eps must be a number > 0 or "line_search", got {self.eps!r}')
        if not self.eps_grid:
            raise ValueError("eps_grid must be a non-empty tuple of positive numbers, got ()")
        positive = {"low": 0, "low_open": True}
        numbers = {  # field -> its check; each value is stored as the check returns it
            "threshold": lambda v, n: check_real(v, n),
            "k": lambda v, n: check_int(v, n, low=0),
            "fraction": lambda v, n: check_real(v, n, low=0, high=1, low_open=True),
            "knapsack_flops": lambda v, n: check_real(v, n, **positive, none=True),
            "eps": lambda v, n: v if v == "line_search" else check_real(v, n, **positive),
            "eps_grid": lambda v, n: tuple(check_real(e, f"{n}[{i}]", **positive)
                                           for i, e in enumerate(v)),
            "signed": check_bool,
            "alpha": lambda v, n: check_real(v, n, low=0, high=MAX_ALPHA, low_open=True),
            "budget": lambda v, n: check_real(v, n, **positive, none=True),
            "max_rounds": lambda v, n: check_int(v, n, low=1),
            "steps_per_round": lambda v, n: check_int(v, n, low=1),
            "plateau_window": lambda v, n: check_int(v, n, low=1, none=True),
            "plateau_rel_tol": lambda v, n: check_real(v, n, low=0),
            "lr": lambda v, n: check_real(v, n, **positive),
            "batch_size": lambda v, n: check_int(v, n, low=1, none=True),
            "early_steps": lambda v, n: check_int(v, n, low=0),
            "relu_surrogate": lambda v, n: check_real(v, n, **positive, none=True),
            "net2net_noise": lambda v, n: check_real(v, n, low=0),
            "gradmax_scale": lambda v, n: check_real(v, n, **positive),
            "seed": lambda v, n: check_int(v, n, low=0),
        }
        for name, check in numbers.items():  # NumPy scalars become plain Python numbers
            object.__setattr__(self, name, check(getattr(self, name), name))
        check_type(self.optimizer_options, "optimizer_options", dict,
                   "a dict of optimiser settings other than lr")
        if "lr" in self.optimizer_options:
            raise ValueError("optimizer_options must be a dict of optimiser settings other "
                             f"than lr (lr is its own field), got {self.optimizer_options!r}")
        if self.selection == "knapsack" and self.knapsack_flops is None:
            if self.budget_kind != "flops" or self.budget is None:
                raise ValueError(
                    'selection="knapsack" needs knapsack_flops, or budget_kind="flops" with a '
                    "budget (the FLOPs left are then the knapsack's capacity)"
                )
        if OPTIMIZERS[self.optimizer].full_batch and self.batch_size is not None:
            raise ValueError(f"batch_size must be None for the full-batch optimizer "
                             f"{self.optimizer!r}, got {self.batch_size!r}")
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
        """A fresh optimiser with these settings (``lr`` for the optimisers that take one)."""
        takes_lr = "lr" in inspect.signature(OPTIMIZERS[self.optimizer]).parameters
        lr = {"lr": self.lr} if takes_lr else {}
        return make_optimizer(self.optimizer, **lr, **self.optimizer_options)

    def plateau(self) -> Plateau | None:
        """Every round's plateau rule (None: train ``steps_per_round`` updates)."""
        if self.plateau_window is None:
            return None
        return Plateau(self.plateau_window, self.plateau_rel_tol)


@dataclass
class GrowthResult:
    """What :func:`grow` returns: the final network and the history of the run.

    ``networks``: with ``grow(..., keep_networks=True)``, the network at the end of every
    round (``networks[r]`` after round r's training; None for rounds restored from a
    checkpoint), else None.
    """

    net: Network
    history: History
    networks: list | None = None
