"""Scores of units, the criteria as records, and pruning several layers at once (L1-prune);
see the package docstring and docs/pruning.md."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from minisplit._checks import check_array, check_choice, check_real, check_type
from minisplit.layers.base import BatchNormMixin, NeuronLayer
from minisplit.layers.conv import Conv2d
from minisplit.layers.dense import Dense
from minisplit.network import Network
from minisplit.splitting.matrices import neuron_layer
from minisplit.splitting.surgery import is_growable, reader_index, remove_units

#: The ratios a sensitivity analysis tries by default: 0.1, 0.2, ..., 0.9.

DEFAULT_RATIOS = tuple(round(0.1 * k, 1) for k in range(1, 10))


# ---- scores ------------------------------------------------------------------------------


def _filter_layer(net, layer, what):
    """The Dense or Conv2d layer at ``layer`` (ValueError for another neuron layer)."""
    obj = neuron_layer(net, layer)
    if not isinstance(obj, (Dense, Conv2d)):
        raise ValueError(f"layer {layer} ({type(obj).__name__}) has no filters W for {what}: "
                         "it must be a Dense or a Conv2d")
    return obj


def l1_norms(net, layer) -> np.ndarray:
    """The L1 norm of each unit's incoming weights, bias excluded: ``sum |W[i]|`` (n,).

    Parameters
    ----------
    net : Network
    layer : int
        A Dense or Conv2d layer.

    Returns
    -------
    ndarray (n,)
        ``sum_j |W[i, j]|`` for a Dense, ``sum_{c, a, e} |W[i, c, a, e]|`` (over input
        channels and taps) for a Conv2d.

    Examples
    --------
    >>> import numpy as np
    >>> from minisplit import Dense, Network
    >>> dense = Dense(2, 2, seed=0)
    >>> dense.W, dense.b = np.array([[1.0, -3.0], [0.5, 0.5]]), np.array([9.0, 0.0])
    >>> l1_norms(Network([dense]), 0)   # |1| + |-3|, |0.5| + |0.5|: no bias, no signs
    array([4., 1.])
    """
    obj = _filter_layer(net, layer, "an L1 norm")
    return np.abs(obj.W).reshape(obj.n_neurons, -1).sum(axis=1)  # (n,)


def _is_bn(obj) -> bool:
    return isinstance(obj, BatchNormMixin) and obj.batch_norm


def bn_scales(net, layer) -> np.ndarray:
    """The batch-norm scale of each unit in absolute value: ``|gamma_i|`` (n,).

    Parameters
    ----------
    net : Network
    layer : int
        A batch-normalised neuron layer (``batch_norm=True``).

    Returns
    -------
    ndarray (n,)

    Examples
    --------
    >>> import minisplit as ms
    >>> net = ms.pruning.init_gamma(ms.testnets.dense_bn()[0], -0.5)
    >>> bn_scales(net, 0)   # |gamma|: the sign does not count
    array([0.5, 0.5, 0.5])
    """
    obj = neuron_layer(net, layer)
    if not _is_bn(obj):
        raise ValueError(f"layer {layer} ({type(obj).__name__}) is not batch-normalised: the "
                         "bn criterion scores |gamma|, which needs batch_norm=True")
    return np.abs(obj.gamma)  # (n,)


@dataclass(frozen=True)
class Criterion:
    """A rule that scores the units of a layer; the lowest scores are pruned first.

    Attributes
    ----------
    name : str
        Its key in :data:`CRITERIA`.
    scores : callable
        ``scores(net, layer) -> ndarray (n,)``; ValueError for a layer it does not score.
    applies : callable
        ``applies(layer_object) -> bool``: the layers :func:`sensitivity` prunes by default.
    reference : str
    """

    name: str
    scores: Callable
    applies: Callable
    reference: str


#: The pruning criteria by name.
CRITERIA = {
    criterion.name: criterion
    for criterion in (
        Criterion("l1", l1_norms, lambda obj: isinstance(obj, (Dense, Conv2d)),
                  "Li et al., Pruning filters for efficient ConvNets, ICLR 2017"),
        Criterion("bn", bn_scales, _is_bn,
                  "Liu et al., Learning efficient convolutional networks through network "
                  "slimming, ICCV 2017"),
    )
}


# ---- which units ---------------------------------------------------------------------------


def n_removed(n, ratio) -> int:
    """How many of ``n`` units a ratio removes: ``min(floor(ratio n), n - 1)``.

    Examples
    --------
    >>> n_removed(10, 0.25), n_removed(100, 0.29), n_removed(3, 1.0), n_removed(4, 0.1)
    (2, 29, 2, 0)
    """
    return min(math.floor(ratio * n + 1e-9), n - 1)


def lowest_units(scores, ratio) -> np.ndarray:
    """Indices (sorted) of the ``n_removed(n, ratio)`` lowest scores; ties to the lower index.

    Examples
    --------
    >>> lowest_units([3.0, 1.0, 2.0, 1.0], 0.5)
    array([1, 3])
    """
    scores = check_array(scores, "scores", ndim=1)
    ratio = check_real(ratio, "ratio", low=0, high=1)
    k = n_removed(scores.size, ratio)
    return np.sort(np.argsort(scores, kind="stable")[:k])  # (k,)


def _check_layer(net, layer, criterion):
    """ValueError unless ``layer`` can be pruned: a linear reader, and scored by ``criterion``."""
    reader_index(net, layer)
    criterion.scores(net, layer)


def prunable_layers(net, criterion="l1") -> list[int]:
    """The layers ``criterion`` scores that have a linear reader (the hidden ones), in order."""
    check_type(net, "net", Network)
    criterion = CRITERIA[check_choice(criterion, "criterion", tuple(CRITERIA))]
    return [index for index, obj in enumerate(net.layers)
            if isinstance(obj, NeuronLayer) and criterion.applies(obj) and is_growable(net, index)]


def prune(net, ratios, criterion="l1") -> Network:
    """Remove the lowest-scoring units of several layers at once.

    Parameters
    ----------
    net : Network
        Not modified.
    ratios : dict {layer: float}
        The fraction of each layer's units to remove, in [0, 1]; a layer of n units loses
        ``min(floor(ratio n), n - 1)`` (:func:`n_removed`).
    criterion : str
        A key of :data:`CRITERIA` (``"l1"``).

    Returns
    -------
    Network
        Every layer's scores are computed on ``net`` before any removal (the independent
        strategy); the units go with :func:`minisplit.splitting.remove_units` (no folding).
    """
    check_type(net, "net", Network)
    criterion = CRITERIA[check_choice(criterion, "criterion", tuple(CRITERIA))]
    if not isinstance(ratios, dict):
        raise TypeError(f"ratios must be a dict {{layer: fraction}}, got {ratios!r}")
    plan = {}
    for layer, ratio in ratios.items():
        _check_layer(net, layer, criterion)
        ratio = check_real(ratio, f"ratios[{layer}]", low=0, high=1)
        plan[layer] = lowest_units(criterion.scores(net, layer), ratio)
    for layer, units in plan.items():  # removing layer l's units leaves other indices alone
        net = remove_units(net, layer, units)
    return net


def l1_prune(net, ratios) -> Network:
    """L1-prune (Li et al., 2017): remove each chosen layer's lowest-L1-norm units at once.

    ``prune(net, ratios, "l1")``: see :func:`prune` for ``ratios`` and the rounding rule.
    Fine-tune the result with :func:`minisplit.train`.

    Examples
    --------
    >>> import minisplit as ms
    >>> net, X, y = ms.testnets.conv_pool(loss="cross_entropy", n=12)
    >>> pruned = l1_prune(net, {0: 0.5})     # floor(0.5 * 3) = 1 of 3 channels
    >>> pruned.layers[0].n_neurons, pruned.layers[3].W.shape
    (2, (2, 8))
    >>> tuned = ms.train(pruned, X, y, ms.Adam(lr=0.01), steps=20).net   # fine-tune
    """
    return prune(net, ratios, "l1")


