"""Which neurons to split, given their splitting indices (docs/training.md, "Selection rules").

Splitting neuron i changes the loss by about (eps^2 / 2) lambda_i, with lambda_i
its splitting index (the smallest eigenvalue of S_i). Only lambda_i < 0 lowers
the loss, so the k, fraction and knapsack rules choose among the negative values
only (no negative value: empty choice); the threshold rule takes its threshold
literally (default 0: the same).

Rules (all pure; indices come back as int64 arrays, most negative value first,
ties broken by the lower index -- a stable sort):

threshold   {i : lambda_i < threshold}
k           the k most negative of {i : lambda_i < 0}
fraction    pooled over layers: the ceil(fraction * total) lowest of all neurons,
            keeping those with lambda < 0 (the published S2D code's 30 %)
knapsack    max sum_{i in C} -lambda_i  s.t.  sum_{i in C} cost_i <= budget,
            C within {i : lambda_i < 0}   (exact 0/1 knapsack, scipy.optimize.milp)

The growth loop picks a rule by name from :data:`SELECTIONS`, one record per rule,
each pooling the layers of a network its own way.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from minisplit._checks import check_array, check_int, check_real, check_type


def _check_values(values, name="values") -> np.ndarray:
    values = check_array(values, name)
    if values.ndim != 1:
        raise ValueError(f"{name} must be 1-dimensional (one value per neuron), got {values.shape}")
    return values


def select_threshold(values, threshold=0.0) -> np.ndarray:
    """Indices of the values below a threshold, ascending by value.

    C = {i : values[i] < threshold}. With the default threshold 0 this is the
    principled rule: split every neuron whose split lowers the loss.

    Parameters
    ----------
    values : ndarray (n,)
        Splitting indices.
    threshold : float
        Finite. A negative threshold asks for a margin (e.g. -1e-6 ignores
        indices that are zero up to round-off); a positive one also takes
        values in [0, threshold), whose splits do not lower the loss to second
        order (useful only for other scores, e.g. ``-lambda_max``).

    Returns
    -------
    ndarray of int64 (m,)

    Examples
    --------
    >>> select_threshold([0.5, -2.0, -0.1, -2.0], threshold=-0.05)
    array([1, 3, 2])
    """
    values = _check_values(values)
    threshold = check_real(threshold, "threshold")
    order = np.argsort(values, kind="stable")  # (n,)
    return order[values[order] < threshold].astype(np.int64)


def select_k(values, k) -> np.ndarray:
    """The k most negative values' indices (fewer if fewer values are negative).

    Parameters
    ----------
    values : ndarray (n,)
    k : int
        >= 0.

    Returns
    -------
    ndarray of int64 (min(k, #negative),), most negative first.

    Examples
    --------
    >>> select_k([0.5, -2.0, -0.1, -3.0], k=2)
    array([3, 1])
    >>> select_k([0.5, -2.0], k=5)
    array([1])
    """
    values = _check_values(values)
    k = check_int(k, "k", low=0)
    return select_threshold(values)[:k]


def select_fraction(values_by_layer, fraction) -> dict:
    """The lowest ``ceil(fraction * total)`` neurons pooled over layers, negative ones only.

    All neurons of all layers are ranked together by value (ties: layers in
    ascending key order, then index); the first ``m = ceil(fraction * total)``
    are taken and those with value >= 0 dropped. ``fraction`` is read as the
    decimal it is written as (``0.3`` means 3/10 exactly), so 30 % of 10 neurons
    is 3, not ``ceil(3.0000000000000004) = 4``.

    Parameters
    ----------
    values_by_layer : dict {layer: ndarray (n_layer,)}
    fraction : float
        In (0, 1].

    Returns
    -------
    dict {layer: ndarray of int64}
        Every input key, each with its chosen indices, most negative first
        (possibly empty).

    Examples
    --------
    >>> chosen = select_fraction({0: [-1.0, 2.0, -3.0], 2: [-2.0, 0.5]}, fraction=0.4)  # m = 2
    >>> {layer: idx.tolist() for layer, idx in chosen.items()}
    {0: [2], 2: [0]}
    """
    check_type(values_by_layer, "values_by_layer", dict, "a dict {layer: values}")
    fraction = check_real(fraction, "fraction", low=0, high=1, low_open=True)
    layers = sorted(values_by_layer)
    pooled = [
        _check_values(values_by_layer[layer], f"values_by_layer[{layer}]") for layer in layers
    ]
    if not pooled:
        return {}
    m = math.ceil(Fraction(str(fraction)) * sum(v.size for v in pooled))
    owner = np.concatenate([np.full(v.size, j) for j, v in enumerate(pooled)])  # (total,)
    local = np.concatenate([np.arange(v.size) for v in pooled])  # (total,)
    chosen = select_threshold(np.concatenate(pooled))[:m]  # (<= m,) positions in the pooled ranking
    return {
        layer: local[chosen[owner[chosen] == j]].astype(np.int64) for j, layer in enumerate(layers)
    }


def select_knapsack(values, costs, budget) -> np.ndarray:
    """The most loss decrease within a cost budget: an exact 0/1 knapsack.

    Maximise sum_{i in C} -values[i] over C within {i : values[i] < 0}, subject
    to sum_{i in C} costs[i] <= budget. Solved as the integer program

        min  sum_i values[i] x_i   s.t.  costs . x <= budget,  x_i in {0, 1}

    (x_i fixed to 0 where values[i] >= 0) by ``scipy.optimize.milp`` (HiGHS
    branch and bound, relative gap 0: the optimum, not an approximation). With
    0 <= x <= 1 instead of x in {0, 1} this is the energy-aware paper's linear
    program.

    Parameters
    ----------
    values : ndarray (n,)
    costs : ndarray (n,)
        Cost of splitting each neuron (e.g. parameters or FLOPs it adds), > 0.
    budget : float
        >= 0.

    Returns
    -------
    ndarray of int64 (m,), most negative value first. Empty when nothing is
    negative or nothing fits.

    Notes
    -----
    The budget constraint holds up to HiGHS's feasibility tolerance (1e-7
    absolute): a set costing budget + 1e-8 may be accepted.

    References
    ----------
    D. Wang, M. Li, L. Wu, V. Chandra, Q. Liu, "Energy-Aware Neural Architecture
    Optimization with Fast Splitting Steepest Descent", arXiv:1910.03103.

    Examples
    --------
    >>> select_knapsack([-3.0, -2.0, -2.0, 1.0], costs=[2.0, 1.0, 1.0, 1.0], budget=2.0)
    array([1, 2])
    """
    values = _check_values(values)
    costs = _check_values(costs, "costs")
    if costs.shape != values.shape:
        raise ValueError(f"costs must have shape {values.shape} like values, got {costs.shape}")
    if np.any(costs <= 0):
        raise ValueError(f"costs must be > 0, got {costs}")
    budget = check_real(budget, "budget", low=0)
    allowed = (values < 0) & (costs <= budget)  # (n,)
    if not allowed.any():
        return np.zeros(0, dtype=np.int64)
    # imported here: scipy.optimize costs ~0.4 s at start-up and only this rule needs it
    from scipy.optimize import Bounds, LinearConstraint, milp

    result = milp(
        c=values,
        constraints=LinearConstraint(costs[None, :], -np.inf, budget),
        integrality=np.ones(values.size),
        bounds=Bounds(np.zeros(values.size), allowed.astype(np.float64)),
        options={"mip_rel_gap": 0.0},
    )
    if not result.success:
        raise RuntimeError(f"milp failed on a feasible knapsack: {result.message}")
    chosen = np.flatnonzero(result.x > 0.5)
    return chosen[np.argsort(values[chosen], kind="stable")].astype(np.int64)


# ---- the rules, pooled over the layers of a network ---------------------------------------


def _pooled(values_by_layer, pick) -> dict:
    """Rank all layers' neurons together: ``pick(flat_values, owner) -> positions``, split back.

    ``owner[t]`` is the layer of pooled neuron t; the result maps every layer to its
    chosen local indices, in the order ``pick`` gave them.
    """
    layers = sorted(values_by_layer)
    flat = np.concatenate([values_by_layer[i] for i in layers])  # (total,)
    owner = np.concatenate([np.full(values_by_layer[i].size, i) for i in layers])  # (total,)
    local = np.concatenate([np.arange(values_by_layer[i].size) for i in layers])  # (total,)
    picked = pick(flat, owner)
    return {i: local[picked[owner[picked] == i]] for i in layers}


def _knapsack(values_by_layer, config, flops_costs, flops_left):
    capacity = min(flops_left, config.knapsack_flops or np.inf)
    return _pooled(
        values_by_layer,
        lambda flat, owner: select_knapsack(
            flat, np.array([flops_costs[i] for i in owner], float), capacity
        ),
    )


@dataclass(frozen=True)
class Selection:
    """A selection rule for growth (one row of :data:`SELECTIONS`).

    ``choose(values_by_layer, config, flops_costs, flops_left) -> {layer: indices}``
    reads its parameter from the GrowthConfig (``threshold``, ``k``, ``fraction``,
    ``knapsack_flops``); ``flops_costs`` are the FLOPs one more neuron of each layer
    costs and ``flops_left`` what a FLOPs budget still allows (infinite otherwise).
    """

    name: str
    choose: Callable
    summary: str = ""


#: Every selection rule the growth loop knows, by name.
SELECTIONS = {
    s.name: s
    for s in (
        Selection(
            "threshold",
            lambda v, c, costs, left: _pooled(v, lambda f, o: select_threshold(f, c.threshold)),
            "every neuron whose index is below the threshold",
        ),
        Selection(
            "k",
            lambda v, c, costs, left: _pooled(v, lambda f, o: select_k(f, c.k)),
            "the k most negative indices over all layers",
        ),
        Selection(
            "fraction",
            lambda v, c, costs, left: select_fraction(v, c.fraction),
            "the lowest fraction of all neurons, negative ones only",
        ),
        Selection("knapsack", _knapsack, "the most loss decrease within a FLOPs capacity"),
    )
}
