"""Bn-prune (network slimming, Liu et al. 2017): the L1 penalty on gamma, gamma's initialisation,
the global or per-layer threshold with its guard; docs/pruning.md."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from minisplit._checks import check_choice, check_real, check_type
from minisplit.layers.conv import Conv2d
from minisplit.network import Network

#: The ratios a sensitivity analysis tries by default: 0.1, 0.2, ..., 0.9.
from minisplit.pruning.criteria import _is_bn, bn_scales, lowest_units, prunable_layers
from minisplit.splitting.surgery import reader_index, remove_units

# ---- Bn-prune: network slimming ----------------------------------------------------------


def bn_layers(net) -> list[int]:
    """The trunk's batch-normalised layers (``batch_norm=True``), in order."""
    check_type(net, "net", Network)
    return [index for index, obj in enumerate(net.layers) if _is_bn(obj)]


def _check_bn_layers(net, layers) -> list[int]:
    """``layers`` (None: every batch-normalised layer) as a list, each one batch-normalised."""
    layers = bn_layers(net) if layers is None else list(layers)
    if not layers:
        raise ValueError("net must have a batch-normalised layer (batch_norm=True), got none")
    for layer in layers:
        bn_scales(net, layer)
    if len(set(layers)) != len(layers):
        raise ValueError(f"layers must be distinct, got {layers}")
    return layers


def _with_bn_layers(net, layers, change) -> Network:
    """A copy of ``net`` in which each of ``layers`` is replaced by ``change(layer object)``."""
    new = net.copy()
    for layer in layers:
        new.layers[layer] = change(new.layers[layer])
    return new


def with_gamma_l1(net, gamma_l1, layers=None) -> Network:
    """A copy of ``net`` trained with network slimming's sparsity penalty on gamma.

    Every chosen batch-normalised layer gets the setting ``gamma_l1`` (lambda_s), so the
    network's objective becomes

        L_s(params) = L(params) + lambda_s sum_{layers} sum_i |gamma_i|

    and ``net.loss``, ``net.loss_and_grad`` and :func:`minisplit.train` (its ``losses``)
    report L_s; the gradient in gamma gains lambda_s sign(gamma_i) (0 at gamma_i = 0),
    the Hessian-vector product nothing (|gamma| has zero curvature away from 0).
    :func:`penalised_loss` reports L and the penalty beside L_s.

    Parameters
    ----------
    net : Network
        Not modified.
    gamma_l1 : float
        lambda_s >= 0 (0 turns the penalty off). Liu et al. use 1e-4 or 1e-5 on a mean
        cross-entropy, the same scale as minisplit's mean losses.
    layers : sequence of int or None
        The layers to penalise; None: every batch-normalised layer (:func:`bn_layers`).

    Returns
    -------
    Network

    Examples
    --------
    >>> import minisplit as ms
    >>> net, X, y = ms.testnets.dense_bn()
    >>> slim = with_gamma_l1(init_gamma(net, 0.5), 0.1)   # 7 channels, |gamma| = 0.5
    >>> round(slim.loss(X, y) - init_gamma(net, 0.5).loss(X, y), 12)   # 0.1 * 7 * 0.5
    0.35
    """
    check_type(net, "net", Network)
    gamma_l1 = check_real(gamma_l1, "gamma_l1", low=0)
    layers = _check_bn_layers(net, layers)
    return _with_bn_layers(net, layers, lambda obj: type(obj).from_config(
        {**obj.config(), "gamma_l1": gamma_l1}, obj.params, obj.buffers))


def init_gamma(net, value=0.5, layers=None) -> Network:
    """A copy of ``net`` with every gamma of the chosen batch-normalised layers set to ``value``.

    minisplit's layers start at gamma = 1, beta = 0 (as PyTorch); the authors' code of
    network slimming starts at gamma = 0.5, which this reproduces. beta, W and the running
    statistics are kept.

    Parameters
    ----------
    net : Network
        Not modified.
    value : float
        Finite (default 0.5).
    layers : sequence of int or None
        None: every batch-normalised layer.

    Examples
    --------
    >>> import minisplit as ms
    >>> init_gamma(ms.testnets.conv_bn()[0]).layers[1].gamma
    array([0.5, 0.5])
    """
    check_type(net, "net", Network)
    value = check_real(value, "value")

    def set_gamma(obj):
        params = [np.full_like(p, value) if name == "gamma" else p
                  for name, p in zip(obj.param_names, obj.params)]
        return type(obj).from_config(obj.config(), params, obj.buffers)

    return _with_bn_layers(net, _check_bn_layers(net, layers), set_gamma)


def gamma_penalty(net) -> float:
    """The network's sparsity penalty: ``sum_layers gamma_l1 * sum_i |gamma_i|`` (0 if off)."""
    check_type(net, "net", Network)
    return float(sum(obj.penalty(None) for obj in net.all_layers if _is_bn(obj)))


@dataclass(frozen=True)
class PenalisedLoss:
    """The penalised objective and its two terms, on one data set.

    Attributes
    ----------
    total : float
        L_s = loss + penalty: what ``net.loss``, ``net.loss_and_grad`` and ``train`` report.
    loss : float
        L, the loss without the gamma penalty (the network with ``gamma_l1 = 0``).
    penalty : float
        ``sum gamma_l1 * |gamma|`` (:func:`gamma_penalty`).
    """

    total: float
    loss: float
    penalty: float


def penalised_loss(net, X, y) -> PenalisedLoss:
    """The penalised objective of ``net`` on (X, y) with the unpenalised loss beside it.

    Examples
    --------
    >>> import minisplit as ms
    >>> net, X, y = ms.testnets.dense_bn()
    >>> terms = penalised_loss(with_gamma_l1(init_gamma(net, 0.5), 0.1), X, y)
    >>> round(terms.penalty, 12), round(terms.total - terms.loss, 12)
    (0.35, 0.35)
    """
    check_type(net, "net", Network)
    total = net.loss(X, y)
    layers = [index for index, obj in enumerate(net.layers) if _is_bn(obj) and obj.gamma_l1]
    loss = with_gamma_l1(net, 0.0, layers).loss(X, y) if layers else total
    return PenalisedLoss(float(total), float(loss), gamma_penalty(net))


@dataclass(frozen=True)
class BnPlan:
    """Which units Bn-prune removes (:func:`bn_plan`), before anything is removed.

    Attributes
    ----------
    scope : str
        ``"global"`` (one threshold over every layer) or ``"layer"`` (a fraction of each).
    fraction : float
        The fraction asked for.
    scores : dict {layer: ndarray (n,)}
        |gamma| of each layer on the input network.
    units : dict {layer: ndarray of int}
        The units to remove, sorted.
    threshold : float or None
        Global scope: the largest |gamma| removed (every unit removed has |gamma| <= it);
        None when nothing is removed, or for the layer scope.
    guarded : tuple of int
        The layers in which the guard kept a unit the fraction would have removed.
    """

    scope: str
    fraction: float
    scores: dict
    units: dict
    threshold: float | None
    guarded: tuple

    @property
    def n_units(self) -> int:
        """Units of the chosen layers before pruning."""
        return sum(s.size for s in self.scores.values())

    @property
    def n_removed(self) -> int:
        """Units removed in all."""
        return sum(u.size for u in self.units.values())

    @property
    def removed_fraction(self) -> float:
        """``n_removed / n_units``: below ``fraction`` where the guard or the floor bit."""
        return self.n_removed / self.n_units


SCOPES = ("global", "layer")


def _global_units(scores, fraction):
    """``(units, threshold, guarded)`` of one percentile threshold over every layer."""
    layers = list(scores)
    flat = np.concatenate([scores[layer] for layer in layers])  # (total,)
    owner = np.concatenate([np.full(scores[layer].size, j) for j, layer in enumerate(layers)])
    position = np.concatenate([np.arange(scores[layer].size) for layer in layers])
    k = math.floor(fraction * flat.size + 1e-9)  # the same slack as n_removed
    lowest = np.argsort(flat, kind="stable")[:k]  # ties: earlier layer, then lower index
    units, guarded = {}, []
    for j, layer in enumerate(layers):
        chosen = np.sort(position[lowest[owner[lowest] == j]])
        if chosen.size == scores[layer].size:  # the guard: keep the largest |gamma|
            chosen = np.delete(chosen, np.argmax(scores[layer]))
            guarded.append(layer)
        units[layer] = chosen
    return units, (float(flat[lowest[-1]]) if k else None), tuple(guarded)


def bn_plan(net, fraction, scope="global", layers=None) -> BnPlan:
    """The units Bn-prune removes: the smallest |gamma|, over all layers or per layer.

    ``scope="global"`` (Liu et al.): pool the |gamma| of every chosen layer (T units in
    all), and remove the ``k = floor(fraction T)`` smallest (ties: the earlier layer, then
    the lower index): every unit at or below the threshold, the k-th smallest |gamma|. A
    layer whose units would all go keeps its largest-|gamma| unit (the guard); the units
    it keeps are not taken from other layers instead, so the fraction removed is then below
    ``fraction`` (:attr:`BnPlan.removed_fraction`). ``scope="layer"``: each layer of n
    units loses its ``min(floor(fraction n), n - 1)`` smallest (:func:`n_removed`; the
    ``n - 1`` is the guard).

    Parameters
    ----------
    net : Network
        Not modified.
    fraction : float
        In [0, 1].
    scope : {"global", "layer"}
    layers : sequence of int or None
        Batch-normalised layers with a linear reader; None: all of them
        (``prunable_layers(net, "bn")``).

    Returns
    -------
    BnPlan

    Examples
    --------
    >>> import minisplit as ms
    >>> net = ms.testnets.dense_bn()[0]           # layers 0 and 1: 3 and 4 channels
    >>> plan = bn_plan(net, 0.5)                  # floor(0.5 * 7) = 3 of the 7 smallest
    >>> plan.n_removed, plan.n_units, sorted(plan.units)
    (3, 7, [0, 1])
    """
    check_type(net, "net", Network)
    fraction = check_real(fraction, "fraction", low=0, high=1)
    scope = check_choice(scope, "scope", SCOPES)
    layers = prunable_layers(net, "bn") if layers is None else list(layers)
    layers = _check_bn_layers(net, layers)
    for layer in layers:
        reader_index(net, layer)
    scores = {layer: bn_scales(net, layer) for layer in layers}
    if scope == "global":
        units, threshold, guarded = _global_units(scores, fraction)
    else:
        units = {layer: lowest_units(s, fraction) for layer, s in scores.items()}
        threshold = None
        guarded = tuple(layer for layer, s in scores.items()
                        if math.floor(fraction * s.size + 1e-9) >= s.size)
    return BnPlan(scope, fraction, scores, units, threshold, guarded)


#: How :func:`bn_prune` treats the bias a removed unit contributes (docs/pruning.md).
FOLDS = ("exact", "beta", "none")


def _folds_exactly(net, layer) -> bool:
    """Whether a constant unit of ``layer`` folds exactly: only pooling and flatten stand
    between it and its reader, and the reader is no padded Conv2d."""
    r = reader_index(net, layer)
    reader, between = net.layers[r], net.layers[layer + 1 : r]
    return (all(obj.passes_units for obj in between)
            and not (isinstance(reader, Conv2d) and any(reader.padding)))


def _remove_bn_units(net, layer, units, fold):
    """``net`` without ``units`` of ``layer``, the ones with gamma = 0 folded (``fold``)."""
    if fold == "none" or not units.size or not _folds_exactly(net, layer):
        return remove_units(net, layer, units)
    if fold == "beta":  # silence them first: each then outputs f(beta_u), which is folded
        net = _with_bn_layers(net, [layer], lambda obj: type(obj).from_config(
            obj.config(), [np.where(np.isin(np.arange(p.size), units), 0.0, p)
                           if name == "gamma" else p
                           for name, p in zip(obj.param_names, obj.params)], obj.buffers))
    silent = units[net.layers[layer].gamma[units] == 0.0]
    net = remove_units(net, layer, silent, fold_constant=True)
    kept = np.setdiff1d(np.arange(net.layers[layer].n_neurons + silent.size), silent)
    return remove_units(net, layer, np.searchsorted(kept, np.setdiff1d(units, silent)))


def bn_prune(net, fraction, scope="global", layers=None, fold="exact") -> Network:
    """Bn-prune (network slimming, Liu et al., 2017): remove the units of smallest |gamma|.

    The units are :func:`bn_plan`'s (one global threshold, or a fraction per layer, the
    guard keeping one unit in every layer), all chosen on the input network and removed
    with :func:`minisplit.splitting.remove_units`. Train first with the sparsity penalty
    (:func:`with_gamma_l1`), fine-tune after with :func:`minisplit.train`.

    Parameters
    ----------
    net : Network
        Not modified.
    fraction, scope, layers
        As in :func:`bn_plan`.
    fold : {"exact", "beta", "none"}
        "exact" (default): a removed unit with gamma = 0 exactly outputs the constant
        f(beta) in both modes, and is folded into its reader's bias
        (``remove_units(..., fold_constant=True)``): the function is kept exactly when
        every removed unit has gamma = 0. The others are dropped. "beta": every removed
        unit's gamma is set to 0 first, so each is replaced by the constant f(beta_u)
        (an error of first order in gamma_u, instead of losing f(beta_u) as well).
        "none": every unit is dropped. A padded Conv2d reader cannot take a fold
        (docs/pruning.md), nor a reader behind a layer that changes the constant (anything
        but pooling and flatten): there the units are dropped whatever ``fold`` says.

    Returns
    -------
    Network

    Examples
    --------
    >>> import minisplit as ms
    >>> net, X, y = ms.testnets.conv_bn(channels1=4, channels2=3)
    >>> slim = bn_prune(net, 0.5)                       # 3 of the 7 channels, globally
    >>> [slim.layers[i].n_neurons for i in (0, 1)], slim.n_params < net.n_params
    ([2, 2], True)
    """
    fold = check_choice(fold, "fold", FOLDS)
    plan = bn_plan(net, fraction, scope, layers)
    for layer, units in plan.units.items():  # removing layer l's units leaves other indices
        net = _remove_bn_units(net, layer, units, fold)
    return net


