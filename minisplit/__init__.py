"""minisplit: Splitting Steepest Descent in plain NumPy.

Grow small, accurate networks by splitting neurons along the eigenvector of
their splitting matrix; every derivative is written by hand and checked by
finite differences (:mod:`minisplit.gradcheck`).
"""

from minisplit import baselines, datasets, gradcheck, landscapes, plots, selection
from minisplit.activations import ACTIVATIONS, get_activation
from minisplit.growth import GrowthConfig, GrowthResult, compare, count_flops, grow, train_fixed
from minisplit.history import Comparison, History
from minisplit.io import load, save
from minisplit.layers import RBF, AvgPool2d, Conv2d, Dense, Flatten, Layer
from minisplit.losses import LOSSES, get_loss
from minisplit.network import MAX_HESSIAN_PARAMS, Network, flatten, mlp, unflatten
from minisplit.optim import SGD, Adam, make_optimizer
from minisplit.selection import select_fraction, select_k, select_knapsack, select_threshold
from minisplit.splitting import (
    add_neurons,
    carry_state,
    signed_split,
    split,
    split_many,
    splitting_indices,
    splitting_matrices,
)
from minisplit.train import Plateau, train

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS",
    "LOSSES",
    "MAX_HESSIAN_PARAMS",
    "AvgPool2d",
    "Conv2d",
    "Dense",
    "Flatten",
    "Layer",
    "Network",
    "RBF",
    "add_neurons",
    "carry_state",
    "datasets",
    "flatten",
    "get_activation",
    "get_loss",
    "gradcheck",
    "landscapes",
    "load",
    "mlp",
    "save",
    "signed_split",
    "split",
    "split_many",
    "splitting_indices",
    "splitting_matrices",
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
    "baselines",
    "compare",
    "count_flops",
    "grow",
    "plots",
    "train_fixed",
]
