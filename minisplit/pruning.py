"""Pruning: remove a network's least important units, the way back from a split.

A pruning method scores the units of a layer and removes the lowest-scoring ones through
:func:`minisplit.splitting.remove_units` (the inverse of a split: the units and the
reader's weights on them go). :data:`CRITERIA` holds one record per scoring rule:

``l1``   L1-prune (Li et al., 2017): the L1 norm of a unit's incoming weights, bias excluded,

             score_i = sum_{c, a, e} |W[i, c, a, e]|     (Conv2d filter i)
             score_i = sum_j |W[i, j]|                   (Dense neuron i)

How many units go. A layer of n units pruned at ratio r loses
``k = min(floor(r n), n - 1)`` units (``floor`` computed with a 1e-9 slack, so that
0.29 * 100 gives 29, not 28): never more than the fraction asked for, and never the last
unit. The k lowest scores go; ties go to the lower index.

Several layers are pruned **at once**: every layer's scores come from the input network
(Li et al.'s "independent" strategy: removing layer l's filters also removes input channels
of layer l + 1, which would change l + 1's scores; they are not recomputed). The
sensitivity analysis (:func:`sensitivity`) prunes one layer at a time, without retraining,
to choose each layer's ratio (:func:`choose_ratios`). Fine-tuning afterwards is
:func:`minisplit.train` on the pruned network (docs/pruning.md).

References
----------
H. Li, A. Kadav, I. Durdanovic, H. Samet, H. P. Graf, "Pruning filters for efficient
ConvNets", ICLR 2017.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from minisplit._checks import check_array, check_choice, check_real, check_type
from minisplit.layers.base import NeuronLayer
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


#: The pruning criteria by name (Bn-prune, |gamma| of a BatchNorm neuron, comes with BN).
CRITERIA = {
    criterion.name: criterion
    for criterion in (
        Criterion("l1", l1_norms, lambda obj: isinstance(obj, (Dense, Conv2d)),
                  "Li et al., Pruning filters for efficient ConvNets, ICLR 2017"),
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


# ---- sensitivity ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Sensitivity:
    """What :func:`sensitivity` measured: one curve per layer, pruned alone at each ratio.

    Attributes
    ----------
    metric : str
        ``"accuracy"`` (a cross-entropy network) or ``"loss"`` (any other).
    baseline : float
        The metric of the unpruned network on the validation data.
    ratios : tuple of float
        The ratios tried, increasing.
    curves : dict {layer: tuple of float}
        The metric after pruning that layer alone at each ratio.
    removed : dict {layer: tuple of int}
        How many units each ratio removed from that layer.
    n_units : dict {layer: int}
        The layer's units before pruning.
    criterion : str
    """

    metric: str
    baseline: float
    ratios: tuple
    curves: dict
    removed: dict
    n_units: dict
    criterion: str = "l1"

    def drops(self, layer) -> np.ndarray:
        """How much worse each ratio made the metric (len(ratios),): baseline - accuracy,
        or loss - baseline; negative where pruning helped."""
        curve = np.asarray(self.curves[layer], dtype=np.float64)
        return self.baseline - curve if self.metric == "accuracy" else curve - self.baseline


def _metric(net, X, y):
    net.loss(X, y)  # validates X and y against the network
    if net.loss_fn.name == "cross_entropy":
        return "accuracy", float(np.mean(np.argmax(net.forward(X), axis=1) == np.asarray(y)))
    return "loss", float(net.loss(X, y))


def sensitivity(net, X_val, y_val, layers=None, ratios=DEFAULT_RATIOS, criterion="l1"):
    """Prune one layer at a time at increasing ratios, without retraining, and measure.

    For each layer and each ratio r, the layer alone loses its ``n_removed(n, r)``
    lowest-scoring units (the others stay intact) and the pruned network is evaluated on
    (X_val, y_val): accuracy for a cross-entropy network, the loss otherwise. A layer whose
    curve stays flat is robust and can be pruned hard; a steep one is sensitive
    (Li et al., 2017, section 3.2).

    Parameters
    ----------
    net : Network
        Not modified.
    X_val, y_val : arrays
        Validation data, as for ``net.loss``.
    layers : sequence of int or None
        The layers to analyse; None: :func:`prunable_layers`.
    ratios : sequence of float
        Strictly increasing, in (0, 1].
    criterion : str
        A key of :data:`CRITERIA`.

    Returns
    -------
    Sensitivity

    Examples
    --------
    >>> import minisplit as ms
    >>> net, X, y = ms.testnets.conv_conv(loss="cross_entropy", n=12)
    >>> result = sensitivity(net, X, y, ratios=(0.34, 0.67))
    >>> result.metric, sorted(result.curves), result.removed[0]
    ('accuracy', [0, 1], (1, 2))
    """
    check_type(net, "net", Network)
    criterion_name = check_choice(criterion, "criterion", tuple(CRITERIA))
    criterion = CRITERIA[criterion_name]
    ratios = tuple(check_real(r, "ratios", low=0, high=1, low_open=True) for r in ratios)
    if not ratios or any(b <= a for a, b in zip(ratios, ratios[1:])):
        raise ValueError(f"ratios must be a non-empty, strictly increasing sequence, got {ratios}")
    layers = prunable_layers(net, criterion_name) if layers is None else list(layers)
    for layer in layers:
        _check_layer(net, layer, criterion)
    if len(set(layers)) != len(layers):
        raise ValueError(f"layers must be distinct, got {layers}")
    metric, baseline = _metric(net, X_val, y_val)
    curves, removed, n_units = {}, {}, {}
    for layer in layers:
        scores = criterion.scores(net, layer)  # (n,)
        plans = [lowest_units(scores, r) for r in ratios]
        curves[layer] = tuple(_metric(remove_units(net, layer, units), X_val, y_val)[1]
                              for units in plans)
        removed[layer] = tuple(int(units.size) for units in plans)
        n_units[layer] = int(scores.size)
    return Sensitivity(metric, baseline, ratios, curves, removed, n_units, criterion_name)


def choose_ratios(result, tolerance) -> dict:
    """Per-layer ratios from sensitivity curves: the largest ratio within ``tolerance``.

    Layer l gets the largest ratio r_k such that the drops (:meth:`Sensitivity.drops`) at
    r_1, ..., r_k are all <= ``tolerance``: the curve is followed from the smallest ratio
    and stops where it first leaves the tolerance (a later recovery is not trusted, as
    pruning without retraining is noisy). A layer already out at r_1 gets 0.0 (not pruned).

    Parameters
    ----------
    result : Sensitivity
    tolerance : float
        >= 0, in the metric's units: an absolute accuracy drop (0.02 is two points) or an
        absolute rise of the loss.

    Returns
    -------
    dict {layer: float}
        Ready for :func:`prune` / :func:`l1_prune`.

    Examples
    --------
    >>> result = Sensitivity("accuracy", 0.9, (0.25, 0.5, 0.75), {0: (0.9, 0.88, 0.5),
    ...                      2: (0.7, 0.9, 0.9)}, {0: (1, 2, 3), 2: (1, 2, 3)}, {0: 4, 2: 4})
    >>> choose_ratios(result, 0.05)
    {0: 0.5, 2: 0.0}
    """
    check_type(result, "result", Sensitivity)
    tolerance = check_real(tolerance, "tolerance", low=0)
    chosen = {}
    for layer in result.curves:
        within = result.drops(layer) <= tolerance  # (len(ratios),)
        k = len(within) if within.all() else int(np.argmin(within))  # ratios before the first miss
        chosen[layer] = float(result.ratios[k - 1]) if k else 0.0
    return chosen
