"""The reference runs of a comparison that prune or rescale (width, l1_prune, bn_prune), the
widths and ratios they are matched with, fine_tune, and the small CNN they run on."""

from __future__ import annotations

import numpy as np
import pytest

import minisplit as ms
from minisplit.datasets import Dataset
from minisplit.growth.comparison import (
    REFERENCES,
    WIDE_FACTOR,
    applicable_runs,
    uniform_widths,
)
from minisplit.growth.loop import fine_tune
from minisplit.pruning import Sensitivity, n_removed, ratios_for_size

# ---- uniform widths and matched ratios -------------------------------------------------------


@pytest.mark.parametrize("base, total", [((3, 5), 12), ((4, 4), 9), ((1, 7, 2), 25),
                                         ((2, 2), 2), ((5,), 11)])
def test_uniform_widths_add_up_exactly_and_scale_every_layer_alike(base, total):
    net = ms.mlp([2, *base, 1], seed=0)
    layers = list(range(len(base)))
    widths = uniform_widths(net, layers, total)
    assert sum(widths) == total and min(widths) >= 1
    k = total / sum(base)
    assert all(abs(w - k * b) < 1 for w, b in zip(widths, base))  # floor or one more


def test_uniform_widths_refuse_fewer_neurons_than_layers():
    with pytest.raises(ValueError, match="total"):
        uniform_widths(ms.mlp([2, 3, 3, 1], seed=0), [0, 1], 1)


def _curves(flat, steep, ratios=(0.25, 0.5, 0.75)):
    """Two layers of 8 units: layer 0's accuracy stays at 0.9 - flat * r, layer 2's falls."""
    curves = {0: tuple(0.9 - flat * r for r in ratios), 2: tuple(0.9 - steep * r for r in ratios)}
    removed = {layer: tuple(n_removed(8, r) for r in ratios) for layer in curves}
    return Sensitivity("accuracy", 0.9, ratios, curves, removed, {0: 8, 2: 8})


@pytest.mark.parametrize("n_keep", range(4, 17))
def test_ratios_for_size_keep_exactly_the_units_asked_for(n_keep):
    result = _curves(0.01, 0.5)
    ratios = ratios_for_size(result, n_keep)
    kept = sum(8 - n_removed(8, ratios[layer]) for layer in (0, 2))
    assert kept == n_keep


def test_ratios_for_size_prune_the_robust_layer_before_the_sensitive_one():
    ratios = ratios_for_size(_curves(0.01, 0.5), 12)  # 4 units must go
    assert ratios == {0: 0.5, 2: 0.0}


def test_ratios_for_size_stop_at_the_smallest_size_the_curves_reach():
    ratios = ratios_for_size(_curves(0.01, 0.5), 1)  # 0.75 of 8 leaves 2 in each layer
    assert ratios == {0: 0.75, 2: 0.75}


# ---- the reference runs ---------------------------------------------------------------------


def _digits(n_train=160, n_test=80):
    full = ms.datasets.load("digits", images=True)
    return Dataset("digits", "classification", full.X_train[:n_train], full.y_train[:n_train],
                   full.X_test[:n_test], full.y_test[:n_test], 10)


def _cnn(seed):
    return ms.small_cnn(input_shape=(1, 8, 8), width=(2, 3), seed=seed)


CONFIG = ms.GrowthConfig(selection="k", k=2, budget=9, max_rounds=3, steps_per_round=8,
                         batch_size=32, plateau_window=None)


@pytest.fixture(scope="module")
def comparison():
    return ms.compare(_digits(), _cnn, CONFIG,
                      ["splitting", "width", "l1_prune", "bn_prune", "fixed"], [0, 1])


def test_every_reference_trains_at_the_sizes_splitting_passed_through(comparison):
    for seed_index in range(2):
        grown = comparison.histories["splitting"][seed_index]
        sizes = [r.n_neurons for r in grown.rounds]
        assert sizes[0] == 5 and sizes[-1] == 9
        for name in ("width", "l1_prune", "bn_prune"):
            h = comparison.histories[name][seed_index]
            assert [r.round for r in h.rounds] == [r.round for r in grown.rounds]
            assert [r.n_neurons for r in h.rounds] == sizes, name


def test_the_width_family_is_the_start_scaled_uniformly_and_trained_the_whole_budget(comparison):
    grown = comparison.histories["splitting"][0]
    for r in comparison.histories["width"][0].rounds:
        assert r.neurons == uniform_widths(_cnn(0), grown.meta["layers"], r.n_neurons)
        assert r.steps == r.total_steps == grown.total_steps
        assert r.surgery is None


@pytest.mark.parametrize("name", ["l1_prune", "bn_prune"])
def test_pruning_starts_from_a_wide_network_trained_the_whole_budget(comparison, name):
    grown = comparison.histories["splitting"][0]
    h = comparison.histories[name][0]
    wide = h.meta["wide"]
    assert wide["neurons"] == uniform_widths(_cnn(0), grown.meta["layers"],
                                             WIDE_FACTOR * grown.rounds[-1].n_neurons)
    assert wide["steps"] == grown.total_steps
    for r in h.rounds:
        assert r.surgery == name and r.steps == CONFIG.steps_per_round
        assert r.total_steps == grown.total_steps + CONFIG.steps_per_round
        assert r.n_added == r.n_neurons - sum(wide["neurons"])
        assert r.params < wide["params"]  # sizes from the pruned arrays, not from plans


def test_references_are_functions_of_their_seed():
    again = ms.compare(_digits(), _cnn, CONFIG, ["splitting", "bn_prune"], [1])
    first = ms.compare(_digits(), _cnn, CONFIG, ["splitting", "bn_prune"], [1])
    assert [r.test_loss for r in again.histories["bn_prune"][0].rounds] == [
        r.test_loss for r in first.histories["bn_prune"][0].rounds]


def test_bn_prune_is_refused_before_any_training_for_a_network_without_batch_norm():
    def plain(seed):
        return ms.small_cnn(input_shape=(1, 8, 8), width=(2, 3), batch_norm=False, seed=seed)

    with pytest.raises(ValueError, match="bn_prune prunes a batch-normalised"):
        ms.compare(_digits(), plain, CONFIG, ["splitting", "bn_prune"], [0],
                   progress=lambda event: pytest.fail("training started"))


def test_the_default_set_leaves_out_the_runs_that_train_wide_networks():
    runs = applicable_runs(_cnn(0))
    assert "fixed" in runs and not {"width", "l1_prune", "bn_prune"} & set(runs)
    assert all(not REFERENCES[name].by_default for name in ("width", "l1_prune", "bn_prune"))


def test_size_of_gives_each_size_its_median_cost(comparison):
    params = comparison.size_of("params")
    for name, cells in comparison.by_size("test_accuracy").items():
        assert sorted(params[name]) == sorted(cells)
    grown = comparison.histories["splitting"]
    start = [h.rounds[0].params for h in grown]
    assert params["splitting"][5] == float(np.median(start))
    assert comparison.size_of("neurons")["width"] == {n: float(n) for n in params["width"]}


# ---- fine_tune and the small CNN ------------------------------------------------------------


def test_fine_tune_keeps_the_weights_train_fixed_draws_fresh_ones():
    data = _digits(64, 16)
    net = _cnn(5)  # seed 5: train_fixed draws with config.seed = 0
    kept = fine_tune(net, data.X_train, data.y_train, CONFIG, 0)
    fresh = ms.train_fixed(net, data.X_train, data.y_train, CONFIG, 0)
    assert all(np.array_equal(a, b) for a, b in zip(kept.net.params, net.params))
    assert not np.array_equal(fresh.net.params[0], net.params[0])
    assert kept.history.meta["strategy"] == "fine_tune"
    assert kept.history.rounds[0].steps == 0


def test_fine_tune_trains_exactly_the_steps_asked_for():
    data = _digits(64, 16)
    result = fine_tune(_cnn(0), data.X_train, data.y_train, CONFIG, 5, data.X_test,
                       data.y_test, strategy="after")
    r = result.history.rounds[0]
    assert (r.steps, r.total_steps, result.history.meta["strategy"]) == (5, 5, "after")
    assert result.history.meta["stop_reason"] == "steps"


def test_small_cnn_pools_while_the_map_is_even():
    kinds = [type(obj).__name__ for obj in ms.small_cnn(input_shape=(1, 8, 8), width=(2, 2, 2),
                                                         seed=0).layers]
    assert kinds == ["Conv2d", "AvgPool2d", "Conv2d", "AvgPool2d", "Conv2d", "AvgPool2d",
                     "Flatten", "Dense"]
    net = ms.small_cnn(input_shape=(3, 6, 10), width=(4, 5), n_classes=3, seed=0)
    assert net.layers[4].n_in == 5 * 3 * 5 and net.forward(np.zeros((2, 3, 6, 10))).shape == (2, 3)
    assert ms.growth.growable_layers(net) == [0, 2]


@pytest.mark.parametrize("kwargs, match", [
    ({"width": 8}, "width must be a sequence"),
    ({"width": ()}, "at least one"),
    ({"width": (4, 0)}, r"width\[1\]"),
    ({"input_shape": (1, 8)}, "input_shape"),
    ({"activation": "nope"}, "nope"),
])
def test_small_cnn_refuses_bad_arguments(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        ms.small_cnn(**kwargs)
