"""One layer at a time, without retraining: the sensitivity curves and the ratios read off
them; docs/pruning.md."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from minisplit._checks import check_choice, check_int, check_real, check_type
from minisplit.network import Network

#: The ratios a sensitivity analysis tries by default: 0.1, 0.2, ..., 0.9.
from minisplit.pruning.criteria import (
    CRITERIA,
    DEFAULT_RATIOS,
    _check_layer,
    lowest_units,
    n_removed,
    prunable_layers,
)
from minisplit.splitting.surgery import remove_units

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
    """``(name, value)``: accuracy for a cross-entropy network, the loss otherwise; one
    forward pass (X and y are checked by the caller's first :meth:`Network.loss`)."""
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
    net.loss(X_val, y_val)  # checks X_val and y_val against the network, once
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


def ratios_for_size(result, n_keep) -> dict:
    """Per-layer ratios that keep ``n_keep`` units in all, in the order the curves allow.

    Li et al. read each layer's ratio off its sensitivity curve at one tolerance
    (:func:`choose_ratios`); raising the tolerance prunes more, the robust layers first
    and the sensitive ones last. The units each layer keeps at tolerance t, ``K_l(t)``,
    only fall as t grows, and change only at 0 and at the positive drops on the curves. To
    prune to a size: take the largest tolerance t_a with ``sum_l K_l(t_a) >= n_keep``; if
    that is more than ``n_keep``, the next tolerance t_b keeps fewer, and the surplus is
    removed from the layers that shrink between t_a and t_b, in proportion to how much each
    shrinks (largest remainders first, the earlier layer on a tie). So the sizes are
    matched exactly, from the whole network down to what the largest ratio tried leaves.

    Parameters
    ----------
    result : Sensitivity
    n_keep : int
        >= 1, the units wanted in the analysed layers together; below the smallest size
        the curves reach, that smallest size is returned.

    Returns
    -------
    dict {layer: float}
        Ratios ``(n_l - kept_l) / n_l``, which :func:`prune` turns into exactly
        ``n_l - kept_l`` units removed (:func:`n_removed`).

    Examples
    --------
    >>> result = Sensitivity("accuracy", 0.9, (0.25, 0.5, 0.75), {0: (0.9, 0.88, 0.5),
    ...                      2: (0.7, 0.9, 0.9)}, {0: (1, 2, 3), 2: (1, 2, 3)}, {0: 4, 2: 4})
    >>> ratios_for_size(result, 6), ratios_for_size(result, 4)
    ({0: 0.5, 2: 0.0}, {0: 0.5, 2: 0.5})
    """
    check_type(result, "result", Sensitivity)
    n_keep = check_int(n_keep, "n_keep", low=1)
    layers = list(result.curves)
    drops = np.concatenate([result.drops(layer) for layer in layers])
    kept = []  # K_l(t) for each candidate tolerance, ascending
    for tolerance in np.unique(np.concatenate([[0.0], drops[drops > 0]])):
        ratios = choose_ratios(result, float(tolerance))
        kept.append(np.array([result.n_units[layer] - n_removed(result.n_units[layer],
                                                                ratios[layer])
                              for layer in layers]))
    totals = np.array([k.sum() for k in kept])
    above = np.flatnonzero(totals >= n_keep)
    a = int(above[-1]) if above.size else 0
    chosen = kept[a].copy()
    if totals[a] > n_keep and a + 1 < len(kept):
        shrink = kept[a] - kept[a + 1]  # (layers,), >= 0, sums to more than the surplus
        surplus = int(totals[a] - n_keep)
        share = shrink * (surplus / shrink.sum())
        cut = np.floor(share + 1e-9).astype(np.int64)
        order = np.argsort(-(share - cut), kind="stable")
        cut[order[: surplus - int(cut.sum())]] += 1
        chosen -= cut
    return {layer: float((result.n_units[layer] - k) / result.n_units[layer])
            for layer, k in zip(layers, chosen)}
