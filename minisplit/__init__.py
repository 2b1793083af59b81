"""minisplit: Splitting Steepest Descent in plain NumPy.

Grow small, accurate networks by splitting neurons along the eigenvector of
their splitting matrix; every derivative is written by hand and checked by
finite differences (:mod:`minisplit.gradcheck`).

The packages, in the one-way order data flows (docs/architecture.md):
``datasets`` -> ``layers``, ``network`` (activations, losses) -> ``gradcheck`` ->
``splitting`` (matrices, eigen-solvers, surgery, landscapes) -> ``optim``,
``training`` -> ``growth`` (strategies, selection, loop, history, comparison), ``pruning`` ->
``plots``, ``cli``.
"""

import warnings

from minisplit import datasets, gradcheck, growth, pruning, splitting, testnets
from minisplit.activations import ACTIVATIONS, get_activation
from minisplit.growth import (
    Comparison,
    GrowthConfig,
    GrowthResult,
    History,
    Round,
    compare,
    count_flops,
    grow,
    selection,
    train_fixed,
)
from minisplit.growth.selection import (
    select_fraction,
    select_k,
    select_knapsack,
    select_threshold,
)
from minisplit.io import load, save
from minisplit.layers import (
    RBF,
    AvgPool2d,
    Conv2d,
    Dense,
    DepthwiseConv2d,
    Flatten,
    GlobalAvgPool2d,
    Layer,
    NeuronLayer,
    Prototypes,
    ReadingLayer,
    UnitCarryingLayer,
)
from minisplit.losses import LOSSES, get_loss
from minisplit.models import dscnn, small_cnn
from minisplit.network import (
    MAX_HESSIAN_PARAMS,
    Head,
    Network,
    flatten,
    mlp,
    set_running_statistics,
    unflatten,
)
from minisplit.optim import SGD, Adam, make_optimizer
from minisplit.splitting import (
    add_neurons,
    carry_state,
    landscapes,
    remove_units,
    signed_split,
    split,
    split_many,
    splitting_indices,
    splitting_indices_of_layers,
    splitting_matrices,
)
from minisplit.training import Plateau, train

__version__ = "0.1.0"

#: Old public names that still work, with a DeprecationWarning: name -> (module, advice).
_DEPRECATED = {
    "baselines": (
        "minisplit.growth.strategies",
        "minisplit.baselines is now minisplit.growth.strategies (one record per strategy)",
    ),
}


#: Public modules imported on first use (matplotlib costs most of minisplit's start-up).
_LAZY = {"audio": "minisplit.audio", "plots": "minisplit.plots"}


def __getattr__(name):
    import importlib

    if name in _LAZY:
        return importlib.import_module(_LAZY[name])
    if name in _DEPRECATED:
        module, advice = _DEPRECATED[name]
        warnings.warn(f"{advice}; the old name will go", DeprecationWarning, stacklevel=2)
        return importlib.import_module(module)
    raise AttributeError(f"module 'minisplit' has no attribute {name!r}")


__all__ = [
    "ACTIVATIONS",
    "LOSSES",
    "MAX_HESSIAN_PARAMS",
    "AvgPool2d",
    "Conv2d",
    "Dense",
    "DepthwiseConv2d",
    "Flatten",
    "GlobalAvgPool2d",
    "Head",
    "Layer",
    "Network",
    "NeuronLayer",
    "Prototypes",
    "RBF",
    "ReadingLayer",
    "UnitCarryingLayer",
    "add_neurons",
    "audio",
    "carry_state",
    "datasets",
    "dscnn",
    "flatten",
    "get_activation",
    "get_loss",
    "gradcheck",
    "landscapes",
    "load",
    "mlp",
    "pruning",
    "remove_units",
    "save",
    "set_running_statistics",
    "small_cnn",
    "signed_split",
    "split",
    "split_many",
    "splitting",
    "splitting_indices",
    "splitting_indices_of_layers",
    "splitting_matrices",
    "testnets",
    "unflatten",
    "SGD",
    "Adam",
    "make_optimizer",
    "Plateau",
    "train",
    "select_threshold",
    "select_k",
    "select_fraction",
    "select_knapsack",
    "selection",
    "Comparison",
    "GrowthConfig",
    "GrowthResult",
    "History",
    "Round",
    "baselines",
    "compare",
    "count_flops",
    "growth",
    "grow",
    "plots",
    "train_fixed",
]
