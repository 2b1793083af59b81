"""Growing networks: the loop of splitting steepest descent, its baselines and comparisons.

``config``      :class:`GrowthConfig`, every setting of a run, and :class:`GrowthResult`;
``strategies``  the table of growth strategies (splitting and its baselines), one record each;
``selection``   the selection rules (which neurons, how many), pure functions and a table;
``sizes``       neurons, parameters and FLOPs of a network, and what one more neuron costs;
``loop``        :func:`grow` (train to a plateau, grow, repeat), :func:`train_fixed` and
                :func:`fine_tune`;
``history``     :class:`History` of typed :class:`Round` records, and its JSON file;
``checkpoint``  atomic snapshots of a run, for bit-identical resume;
``comparison``  :func:`compare` (strategies x seeds, on any executor) and :class:`Comparison`
                with its tables.
"""

from minisplit.growth import checkpoint, selection, strategies
from minisplit.growth.comparison import (
    REFERENCES,
    RUN_NAMES,
    Comparison,
    SizeCell,
    compare,
    process_pool,
)
from minisplit.growth.config import BUDGET_KINDS, STOP_REASONS, GrowthConfig, GrowthResult
from minisplit.growth.history import History, Round
from minisplit.growth.loop import fine_tune, grow, train_fixed
from minisplit.growth.selection import SELECTIONS
from minisplit.growth.sizes import count_flops, growable_layers, network_size
from minisplit.growth.strategies import STRATEGIES, Strategy

__all__ = [
    "BUDGET_KINDS",
    "REFERENCES",
    "RUN_NAMES",
    "SELECTIONS",
    "STOP_REASONS",
    "STRATEGIES",
    "Comparison",
    "GrowthConfig",
    "GrowthResult",
    "History",
    "Round",
    "SizeCell",
    "Strategy",
    "checkpoint",
    "compare",
    "count_flops",
    "fine_tune",
    "grow",
    "growable_layers",
    "network_size",
    "process_pool",
    "selection",
    "strategies",
    "train_fixed",
]
