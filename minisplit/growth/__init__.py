"""Growing networks: the loop of splitting steepest descent, its baselines and comparisons.

``config``   :class:`GrowthConfig`, every setting of a run;
``sizes``    neurons, parameters and FLOPs of a network;
``loop``     :func:`grow` (train to a plateau, grow, repeat) and :func:`train_fixed`;
``compare``  :func:`compare`, strategies x seeds with the same training budget.
"""

from minisplit.growth.compare import compare
from minisplit.growth.config import (
    BUDGET_KINDS,
    SELECTIONS,
    STOP_REASONS,
    GrowthConfig,
    GrowthResult,
)
from minisplit.growth.loop import grow, train_fixed
from minisplit.growth.sizes import count_flops, growable_layers, network_size

__all__ = [
    "BUDGET_KINDS",
    "SELECTIONS",
    "STOP_REASONS",
    "GrowthConfig",
    "GrowthResult",
    "compare",
    "count_flops",
    "grow",
    "growable_layers",
    "network_size",
    "train_fixed",
]
