"""Selection rules: definitions on hand-made spectra, the knapsack against brute force."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minisplit import select_fraction, select_k, select_knapsack, select_threshold

#            0     1     2     3    4     5
SPECTRUM = [0.3, -1.0, -2.0, -1.0, 0.0, -0.5]


def as_lists(chosen):
    return {layer: idx.tolist() for layer, idx in chosen.items()}


# ---- threshold ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "threshold, expected",
    [
        (0.0, [2, 1, 3, 5]),  # every negative one; the tie -1.0 (1, 3) by index; 0.0 excluded
        (-0.75, [2, 1, 3]),
        (-1.0, [2]),  # strict: -1.0 is not < -1.0
        (-5.0, []),
        (0.5, [2, 1, 3, 5, 4, 0]),  # taken literally: 0.0 and 0.3 are below 0.5
    ],
)
def test_threshold_on_a_hand_made_spectrum(threshold, expected):
    chosen = select_threshold(SPECTRUM, threshold)
    assert chosen.tolist() == expected and chosen.dtype == np.int64


def test_threshold_without_negatives_is_empty():
    assert select_threshold([0.0, 1.0, 2.0]).tolist() == []
    assert select_threshold([]).tolist() == []


# ---- k ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "k, expected",
    [
        (0, []),
        (1, [2]),
        (2, [2, 1]),  # the tie at -1.0 goes to the lower index
        (3, [2, 1, 3]),
        (100, [2, 1, 3, 5]),  # more than available: all negatives, no 0.0 or 0.3
    ],
)
def test_k_on_a_hand_made_spectrum(k, expected):
    assert select_k(SPECTRUM, k).tolist() == expected


def test_k_without_negatives_is_empty():
    assert select_k([0.0, 3.0], k=2).tolist() == []


# ---- fraction ---------------------------------------------------------------------------


def test_fraction_rounds_up_from_the_decimal_written():
    values = -np.arange(1.0, 11.0)  # 10 negative values, index 9 the most negative
    # 0.3 * 10 is 3.0000000000000004 in floating point; 30 % of 10 neurons is 3
    assert as_lists(select_fraction({0: values}, 0.3)) == {0: [9, 8, 7]}
    # 0.25 * 10 = 2.5 -> 3;  0.01 * 10 = 0.1 -> 1;  1.0 -> all
    assert as_lists(select_fraction({0: values}, 0.25)) == {0: [9, 8, 7]}
    assert as_lists(select_fraction({0: values}, 0.01)) == {0: [9]}
    assert select_fraction({0: values}, 1.0)[0].size == 10


def test_fraction_pools_layers_and_drops_non_negative():
    values = {3: [-1.0, 5.0, -4.0], 0: [-2.0, 0.0, 1.0, -1.0]}
    # pooled (layer 0 before layer 3 on ties): -4 (3,2), -2 (0,0), -1 (0,3), -1 (3,0), 0 (0,1) ...
    assert as_lists(select_fraction(values, 3 / 7)) == {0: [0, 3], 3: [2]}
    assert as_lists(select_fraction(values, 4 / 7)) == {0: [0, 3], 3: [2, 0]}
    # the lowest 5 include 0.0, which does not lower the loss: dropped
    assert as_lists(select_fraction(values, 5 / 7)) == {0: [0, 3], 3: [2, 0]}


def test_fraction_without_negatives_keeps_every_layer_empty():
    assert as_lists(select_fraction({1: [0.0, 2.0], 4: [1.0]}, 1.0)) == {1: [], 4: []}
    assert select_fraction({}, 0.3) == {}


# ---- knapsack ---------------------------------------------------------------------------


def test_knapsack_beats_greedy_on_a_hand_made_case():
    # budget 10: the best ratio (-10 at cost 6, 1.67 per unit) alone gives 10 and nothing else
    # fits; the two items at cost 5 give 7 + 7 = 14.
    chosen = select_knapsack([-10.0, -7.0, -7.0, 2.0], costs=[6.0, 5.0, 5.0, 1.0], budget=10.0)
    assert chosen.tolist() == [1, 2]


def test_knapsack_takes_an_exact_fit_and_ignores_positive_values():
    chosen = select_knapsack([-1.0, -2.0, 3.0], costs=[1.0, 2.0, 0.5], budget=3.0)
    assert chosen.tolist() == [1, 0]


@pytest.mark.parametrize(
    "values, costs, budget",
    [
        ([-1.0, -2.0], [2.0, 3.0], 1.5),  # nothing fits
        ([-1.0, -2.0], [2.0, 3.0], 0.0),  # zero budget
        ([0.0, 1.0], [1.0, 1.0], 5.0),  # no negatives
        ([], [], 1.0),
    ],
)
def test_knapsack_empty_choices(values, costs, budget):
    chosen = select_knapsack(values, costs, budget)
    assert chosen.tolist() == [] and chosen.dtype == np.int64


def brute_force(values, costs, budget):
    """The best sum of -values over all subsets within the budget (negative values only)."""
    best = 0.0
    for r in range(1, len(values) + 1):
        for subset in itertools.combinations(range(len(values)), r):
            s = list(subset)
            if costs[s].sum() <= budget and np.all(values[s] < 0):
                best = max(best, -values[s].sum())
    return best


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 8),
    integer_costs=st.booleans(),
    budget_share=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_knapsack_is_optimal_against_brute_force(n, integer_costs, budget_share, seed):
    # integer costs and budgets make exact fits (ties at the budget) common and exact in float
    rng = np.random.default_rng(seed)
    values = rng.uniform(-3, 3, size=n)  # (n,)
    costs = rng.integers(1, 4, size=n).astype(float) if integer_costs else rng.uniform(0.1, 3, n)
    budget = budget_share * costs.sum()
    budget = float(np.floor(budget)) if integer_costs else budget
    chosen = select_knapsack(values, costs, budget)
    assert np.unique(chosen).size == chosen.size
    assert costs[chosen].sum() <= budget and np.all(values[chosen] < 0)
    assert -values[chosen].sum() == pytest.approx(brute_force(values, costs, budget), abs=1e-9)
    assert np.all(np.diff(values[chosen]) >= 0)  # most negative first


# ---- purity and validation ----------------------------------------------------------------


def test_inputs_are_not_modified():
    values, costs = np.array(SPECTRUM), np.ones(6)
    by_layer = {0: values}
    select_threshold(values)
    select_k(values, 2)
    select_fraction(by_layer, 0.5)
    select_knapsack(values, costs, 2.0)
    np.testing.assert_array_equal(values, SPECTRUM)
    np.testing.assert_array_equal(costs, np.ones(6))
    assert by_layer[0] is values


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: select_threshold([[1.0, -1.0]]), ValueError, r"values must be 1-dimensional"),
        (lambda: select_threshold([1.0, np.nan]), ValueError, "values must be finite"),
        (
            lambda: select_threshold([1.0], np.inf),
            ValueError,
            "threshold must be a finite number, got inf",
        ),
        (lambda: select_k([1.0], -1), ValueError, "k must be an integer >= 0, got -1"),
        (lambda: select_k([1.0], 1.5), TypeError, "k must be an integer >= 0, got 1.5"),
        (
            lambda: select_fraction({0: [1.0]}, 0.0),
            ValueError,
            "fraction must be a finite number > 0 and <= 1, got 0.0",
        ),
        (
            lambda: select_fraction({0: [1.0]}, 1.5),
            ValueError,
            "fraction must be a finite number > 0 and <= 1, got 1.5",
        ),
        (lambda: select_fraction([1.0], 0.5), TypeError, "values_by_layer must be a dict"),
        (lambda: select_fraction({2: [[1.0]]}, 0.5), ValueError, r"values_by_layer\[2\]"),
        (
            lambda: select_knapsack([-1.0, -2.0], [1.0], 1.0),
            ValueError,
            r"costs must have shape \(2,\) like values, got \(1,\)",
        ),
        (lambda: select_knapsack([-1.0], [0.0], 1.0), ValueError, "costs must be > 0"),
        (
            lambda: select_knapsack([-1.0], [1.0], -0.5),
            ValueError,
            "budget must be a finite number >= 0, got -0.5",
        ),
        (
            lambda: select_knapsack([-1.0], [1.0], np.nan),
            ValueError,
            "budget must be a finite number >= 0, got nan",
        ),
    ],
)
def test_bad_inputs_are_refused(call, error, message):
    with pytest.raises(error, match=message):
        call()
