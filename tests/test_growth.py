"""The growth loop: growth, budgets, stopping rules, predictions, determinism."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minisplit import (
    RBF,
    AvgPool2d,
    Conv2d,
    Dense,
    Flatten,
    Network,
    add_neurons,
    datasets,
    mlp,
    split_many,
    splitting_indices,
)
from minisplit.growth import (
    GrowthConfig,
    compare,
    count_flops,
    grow,
    growable_layers,
    network_size,
)
from minisplit.growth.sizes import measure, unit_costs
from minisplit.growth.strategies import STRATEGIES, Round
from minisplit.splitting import grown_parts

FAST = GrowthConfig(steps_per_round=150, fraction=0.5, budget=6)


@pytest.fixture(scope="module")
def teacher():
    return datasets.rbf_teacher(n=64, seed=0)


@pytest.fixture(scope="module")
def stable_problem():
    """A real splitting-stable point: one swish neuron fitted to sign(x) has lambda_min > 0.

    Found by search (1-neuron nets on simple targets): trained to its plateau, this
    neuron's splitting matrix is positive definite (lambda_min ~ 1.3e-3, gradient ~ 1e-8),
    so no positive-weight split lowers the loss to second order.
    """
    X = np.linspace(-3.0, 3.0, 24)[:, None]  # (24, 1), zero excluded
    return mlp([1, 1, 1], activation="swish", seed=0), X, np.sign(X)


STABLE = GrowthConfig(steps_per_round=2000, lr=0.05, budget=4, plateau_rel_tol=1e-4)


@pytest.fixture(scope="module")
def grown(teacher):
    X, y = teacher
    return grow(mlp([1, 2, 1], activation="tanh", seed=0), X, y, FAST)


def test_the_network_grows_until_the_budget(grown):
    h = grown.history
    sizes = h.column("n_neurons")
    assert sizes[0] == 2 and all(b > a for a, b in zip(sizes, sizes[1:]))
    assert sizes[-1] == 6 == grown.net.layers[0].n_neurons
    assert h.meta["stop_reason"] == "budget"
    assert [r.n_added for r in h.rounds[1:]] == list(np.diff(sizes))


def test_every_round_ends_below_the_plateau_before_it(grown):
    rounds = grown.history.rounds
    for before, r in zip(rounds, rounds[1:]):
        assert r.loss_before == before.train_loss  # the plateau of the previous round
        assert r.train_loss < r.loss_before


def test_records_are_consistent(grown, teacher):
    X, y = teacher
    h = grown.history
    last = h.rounds[-1]
    assert last.train_loss == grown.net.loss(X, y)
    assert last.params == grown.net.n_params and last.flops == count_flops(grown.net, X)
    assert h.total_steps == last.total_steps == sum(len(r.losses) - r.plateaued
                                                       for r in h.rounds)
    for r in h.rounds[1:]:
        assert r.surgery == "split"
        assert len(r.spectrum["values"][0]) == r.neurons[0] - r.n_added
        # the chosen neurons are the most negative indices of the spectrum
        values = np.array(r.spectrum["values"][0])
        chosen = r.chosen[0]
        assert np.all(values[chosen] < 0)
        assert np.all(values[chosen].max() <= np.delete(values, chosen, axis=0).min(initial=np.inf))


def test_predicted_change_matches_actual_at_small_eps(teacher):
    """(eps^2/2) sum lambda_min predicts the loss change of the split, two layers at once."""
    X, y = teacher
    config = dataclasses.replace(FAST, eps=1e-3, budget=10, fraction=0.4)
    h = grow(mlp([1, 3, 2, 1], activation="tanh", seed=1), X, y, config).history
    assert h.meta["layers"] == [0, 1]
    two_layer_rounds = 0
    for r in h.rounds[1:]:
        assert r.actual_change == pytest.approx(r.predicted_change, rel=1e-2)
        assert r.predicted_change < 0
        two_layer_rounds += len(r.chosen) == 2
    assert two_layer_rounds >= 1  # cross-layer splits add up without cross terms


def test_the_loops_surgery_is_split_many(teacher):
    """Layer-by-layer growths, deepest first, give exactly split_many's network."""
    X, y = teacher
    net = mlp([1, 3, 2, 1], activation="tanh", seed=2)
    plan, values, vectors = {0: np.array([2, 0]), 1: np.array([1])}, {}, {}
    for layer in plan:
        values[layer], vectors[layer] = splitting_indices(net, X, y, layer)
    round_ = Round(net, X, y, plan, values, vectors, None, FAST)
    growths = STRATEGIES["splitting"].growths(round_, None)
    assert [g.layer for g in growths] == [1, 0]
    grown = net
    for g in growths:
        grown, parents = g.apply(grown, 0.05)
    expected = split_many(net, {k: (v, vectors[k][v]) for k, v in plan.items()}, 0.05)
    for a, b in zip(grown.params, expected.params):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind, budget", [("params", 20), ("flops", 11), ("neurons", 5)])
def test_the_budget_is_never_exceeded(teacher, kind, budget):
    X, y = teacher
    config = dataclasses.replace(FAST, budget_kind=kind, budget=budget, fraction=1.0)
    h = grow(mlp([1, 2, 1], activation="tanh", seed=0), X, y, config).history
    measure = h.column("n_neurons" if kind == "neurons" else kind)
    assert max(measure) <= budget
    assert h.meta["stop_reason"] == "budget"
    # one more neuron costs 3 parameters / 2 FLOPs (n_in + n_out, plus a bias): no room left
    assert budget - measure[-1] < {"params": 3, "flops": 2, "neurons": 1}[kind]


def test_knapsack_rounds_stay_within_their_flops(teacher):
    X, y = teacher
    config = dataclasses.replace(FAST, selection="knapsack", knapsack_flops=4, budget=8)
    h = grow(mlp([1, 2, 1], activation="tanh", seed=0), X, y, config).history
    added = np.diff(h.column("flops"))
    assert np.all(added <= 4) and np.all(added > 0)


def test_knapsack_under_a_flops_budget_stops_for_the_budget(teacher):
    """With no knapsack_flops, the knapsack's capacity is the FLOPs left: 4 + 2 + 2 + 2 <= 11."""
    X, y = teacher
    config = dataclasses.replace(FAST, selection="knapsack", budget_kind="flops", budget=11)
    h = grow(mlp([1, 2, 1], activation="tanh", seed=0), X, y, config).history
    assert h.column("flops")[-1] == 10 and h.meta["stop_reason"] == "budget"


def test_max_rounds_stops_the_run(teacher):
    X, y = teacher
    config = dataclasses.replace(FAST, max_rounds=2, budget=None, selection="k", k=1)
    h = grow(mlp([1, 2, 1], seed=0), X, y, config).history
    assert len(h.rounds) == 3 and h.meta["stop_reason"] == "max_rounds"
    assert h.column("n_neurons") == [2, 3, 4]


def test_a_splitting_stable_network_stops(stable_problem):
    net, X, y = stable_problem
    result = grow(net, X, y, STABLE)
    h = result.history
    assert h.meta["stop_reason"] == "stable"
    assert len(h.rounds) == 1 and result.net.layers[0].n_neurons == 1
    spectrum = h.meta["stop_spectrum"]
    assert spectrum["kind"] == "min" and min(spectrum["values"][0]) > 0
    lam_min, _ = splitting_indices(result.net, X, y, 0)
    assert lam_min[0] == spectrum["values"][0][0] > 0


def test_signed_splitting_escapes_a_stable_network(stable_problem):
    """Every lambda_min >= 0, but lambda_max > 0: a signed split still lowers the loss."""
    net, X, y = stable_problem
    config = dataclasses.replace(STABLE, signed=True, eps=1e-3, max_rounds=1, alpha=0.5)
    h = grow(net, X, y, config).history
    r = h.rounds[1]
    assert r.surgery == "signed_split" and r.spectrum["kind"] == "max"
    lam_max = r.spectrum["values"][0][0]
    # dL = -(eps^2/2) alpha/(1+alpha) lambda_max + O(eps^3)
    assert r.predicted_change == pytest.approx(-0.5e-6 * (0.5 / 1.5) * lam_max, rel=1e-12)
    assert r.actual_change == pytest.approx(r.predicted_change, rel=1e-2)
    assert r.actual_change < 0


def test_line_search_keeps_the_best_eps_of_the_grid(teacher):
    X, y = teacher
    grid = (0.01, 0.1, 1.0)
    base = dataclasses.replace(FAST, max_rounds=1, budget=None, eps_grid=grid)
    searched = grow(mlp([1, 2, 1], seed=3), X, y, dataclasses.replace(base, eps="line_search"))
    after = {}
    for eps in grid:
        h = grow(mlp([1, 2, 1], seed=3), X, y, dataclasses.replace(base, eps=eps)).history
        after[eps] = h.rounds[1].loss_after_split
    r = searched.history.rounds[1]
    assert r.eps == min(after, key=after.get)
    assert r.loss_after_split == min(after.values())


def test_same_seed_same_history_bit_for_bit(teacher):
    X, y = teacher
    config = dataclasses.replace(FAST, batch_size=16, strategy="random_split")
    a = grow(mlp([1, 2, 1], seed=0), X, y, config)
    b = grow(mlp([1, 2, 1], seed=0), X, y, config)
    assert a.history.without_times() == b.history.without_times()
    for p, q in zip(a.net.params, b.net.params):
        np.testing.assert_array_equal(p, q)
    c = grow(mlp([1, 2, 1], seed=0), X, y, dataclasses.replace(config, seed=1))
    assert c.history.rounds[0].losses != a.history.rounds[0].losses


def test_reset_and_inherit_optimizer_state_differ(teacher):
    X, y = teacher
    config = dataclasses.replace(FAST, max_rounds=1)
    inherit = grow(mlp([1, 2, 1], seed=0), X, y, config).history
    reset = grow(mlp([1, 2, 1], seed=0), X, y, dataclasses.replace(config, surgery_state="reset"))
    assert inherit.rounds[1].loss_after_split == reset.history.rounds[1].loss_after_split
    assert inherit.rounds[1].losses[1] != reset.history.rounds[1].losses[1]


def test_progress_receives_one_event_per_round_and_a_stop(grown, teacher):
    X, y = teacher
    events = []
    result = grow(mlp([1, 2, 1], activation="tanh", seed=0), X, y, FAST, progress=events.append)
    assert [e["event"] for e in events] == ["round"] * len(result.history.rounds) + ["stop"]
    assert events[-1]["reason"] == "budget"
    assert [e["n_neurons"] for e in events[:-1]] == result.history.column("n_neurons")
    assert events[0]["loss"] == result.history.rounds[0].train_loss


@pytest.mark.parametrize("strategy", ["random_split", "net2net", "new_neurons", "gradmax"])
def test_every_baseline_grows_within_the_same_loop(teacher, strategy):
    X, y = teacher
    config = dataclasses.replace(FAST, strategy=strategy, budget=4)
    h = grow(mlp([1, 2, 1], activation="tanh", seed=0), X, y, config).history
    assert h.column("n_neurons")[-1] == 4 and h.meta["stop_reason"] == "budget"
    assert all(r.surgery == strategy for r in h.rounds[1:])
    if strategy in ("new_neurons", "gradmax"):  # the function is preserved at growth
        for r in h.rounds[1:]:
            assert r.predicted_change == 0.0
            assert abs(r.actual_change) <= 1e-14


def test_compare_runs_every_strategy_with_the_same_budget():
    data = datasets.load("blobs", n=60, n_classes=2)
    config = GrowthConfig(steps_per_round=60, budget=4, fraction=0.5)
    events = []
    result = compare(data, lambda s: mlp([2, 2, 2], loss="cross_entropy", seed=s), config,
                     strategies=("splitting", "new_neurons", "fixed"), seeds=(0, 1),
                     progress=events.append)
    stops = [(e["strategy"], e["seed"]) for e in events if e["event"] == "stop"]
    # a reference runs right after the run it follows
    assert stops == [("splitting", 0), ("fixed", 0), ("new_neurons", 0),
                     ("splitting", 1), ("fixed", 1), ("new_neurons", 1)]
    references = [(e["strategy"], e["seed"], e["text"]) for e in events
                  if e["event"] == "reference"]
    steps = [h.total_steps for h in result.histories["splitting"]]
    assert references == [("fixed", s, f"{n} steps from scratch") for s, n in zip((0, 1), steps)]
    rows = result.rows()
    assert [(r["strategy"], r["seed"]) for r in rows] == [
        ("splitting", 0), ("splitting", 1), ("new_neurons", 0), ("new_neurons", 1),
        ("fixed", 0), ("fixed", 1),
    ]
    for i in range(2):
        split_h, fixed_h = result.histories["splitting"][i], result.histories["fixed"][i]
        assert fixed_h.total_steps == split_h.total_steps
        assert fixed_h.rounds[0].neurons == split_h.rounds[-1].neurons
    assert all(0 <= r["test_accuracy"] <= 1 for r in rows)
    summary = {s["strategy"]: s for s in result.summary()}
    assert summary["splitting"]["seeds"] == 2
    with pytest.raises(ValueError, match="fixed"):
        compare(data, lambda s: mlp([2, 2, 2], loss="cross_entropy", seed=s), config,
                strategies=("fixed",))


@settings(max_examples=20, deadline=None)
@given(widths=st.lists(st.integers(1, 5), min_size=2, max_size=5))
def test_flops_of_an_mlp_are_the_sum_of_its_weight_matrices(widths):
    net = mlp(widths, seed=0)
    expected = sum(a * b for a, b in zip(widths, widths[1:]))
    assert count_flops(net, np.zeros((3, widths[0]))) == expected
    assert growable_layers(net) == list(range(len(widths) - 2))


def test_sizes_and_flops():
    net = mlp([3, 4, 5, 2], seed=0)
    X = np.zeros((7, 3))
    assert growable_layers(net) == [0, 1]
    assert count_flops(net, X) == 3 * 4 + 4 * 5 + 5 * 2
    assert network_size(net, X, [0, 1]) == {
        "neurons": [4, 5], "n_neurons": 9, "params": net.n_params, "flops": 42,
    }


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"strategy": "magic"}, "strategy"),
        ({"eps": -0.1}, "eps"),
        ({"eps": "search"}, "eps"),
        ({"selection": "knapsack"}, "knapsack"),
        ({"fraction": 1.5}, "fraction"),
        ({"budget": 0}, "budget"),
        ({"optimizer": "rmsprop"}, "optimizer must be one of"),
        ({"optimizer": "adam", "optimizer_options": {"momentum": 0.9}}, "momentum"),
        ({"steps_per_round": 0}, "steps_per_round"),
    ],
)
def test_bad_config_is_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GrowthConfig(**kwargs)


def test_bad_inputs_are_refused(teacher):
    X, y = teacher
    with pytest.raises(ValueError, match="no layer to grow"):
        grow(mlp([1, 1], seed=0), X, y, FAST)
    with pytest.raises(TypeError, match="GrowthConfig"):
        grow(mlp([1, 2, 1], seed=0), X, y, {"eps": 0.1})
    with pytest.raises(ValueError, match="f\\(0\\) = 0"):
        grow(mlp([1, 2, 1], activation="softplus", seed=0), X, y,
             dataclasses.replace(FAST, strategy="gradmax"))


def _conv_net(c_in, c1, c2, kernel, stride, padding, pool, seed):
    """Conv2d -> Conv2d -> [AvgPool2d] -> Flatten -> Dense on 8x8 images, and one input."""
    rng = np.random.default_rng(seed)
    first = Conv2d(c_in, c1, kernel, stride=stride, padding=padding, seed=rng)
    H = first.output_shape(8, 8)[0]
    second = Conv2d(c1, c2, 1, seed=rng)
    layers = [first, second] + ([AvgPool2d(pool)] if H % pool == 0 else []) + [Flatten()]
    X = rng.uniform(-1, 1, (2, c_in, 8, 8))
    n_flat = Network(layers, "mse").forward(X).shape[1]
    return Network([*layers, Dense(n_flat, 2, "identity", seed=rng)], "mse"), X


@settings(max_examples=25, deadline=None)
@given(
    widths=st.lists(st.integers(1, 5), min_size=3, max_size=5),
    conv=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3),
                   st.integers(1, 2), st.integers(0, 1), st.sampled_from([1, 2])),
    use_conv=st.booleans(),
    kind=st.sampled_from(["neurons", "params", "flops"]),
)
def test_a_neurons_cost_from_the_layers_equals_a_real_surgery(widths, conv, use_conv, kind):
    """What the layers say one more neuron costs is what adding one zero neuron measures."""
    if use_conv:
        net, X = _conv_net(*conv, seed=0)
    else:
        net, X = mlp(widths, seed=0), np.zeros((2, widths[0]))
    layers = growable_layers(net)
    base = measure(network_size(net, X, layers), kind)
    costs = unit_costs(net, X, layers, kind)
    assert sorted(costs) == layers
    for index in layers:
        theta, out_weights = grown_parts(net, index)
        one = add_neurons(net, index, np.zeros((1, theta.shape[1])), np.zeros_like(out_weights[:1]))
        assert costs[index] == measure(network_size(one, X, layers), kind) - base


def test_every_round_records_its_gradient_norm_and_early_loss(grown, teacher):
    X, y = teacher
    h = grown.history
    last = h.rounds[-1]
    _, grads = grown.net.loss_and_grad(X, y)
    assert last.grad_norm == pytest.approx(np.linalg.norm(np.concatenate(
        [g.ravel() for g in grads])), rel=1e-12)
    assert h.rounds[0].early_loss is None  # no surgery, no gain to measure
    for r in h.rounds[1:]:
        # full batch: the early loss is the loss before update number early_steps
        assert r.early_loss == r.losses[FAST.early_steps]


def test_lbfgs_rounds_end_at_stationary_points():
    """The paper's setting: an RBF student grown by one split per round, each round
    trained by full-batch L-BFGS to a gradient norm below its tolerance."""
    X, y = datasets.rbf_teacher(n=60, n_centers=3, seed=1)
    net = Network([RBF(1, 1, width=0.5, seed=0), Dense(1, 1, "identity", seed=0)], "mse")
    config = GrowthConfig(optimizer="lbfgs", optimizer_options={"grad_tol": 1e-7},
                          selection="k", k=1, budget=3, steps_per_round=2000, eps=0.1)
    h = grow(net, X, y, config).history
    assert h.column("n_neurons") == [1, 2, 3]
    for r in h.rounds:
        assert r.stationary and r.grad_norm <= 1e-7 and not r.plateaued
    for r in h.rounds[1:]:
        assert r.early_loss <= r.loss_after_split  # L-BFGS never raises the loss
        assert r.train_loss <= r.early_loss
    with pytest.raises(ValueError, match="batch_size must be None for the full-batch"):
        GrowthConfig(optimizer="lbfgs", batch_size=8)


def test_scratch_trains_every_size_of_splitting_from_a_fresh_start():
    data = datasets.load("rbf_teacher", n=60)
    c = compare(data, lambda s: mlp([1, 2, 1], seed=s), GrowthConfig(budget=6, steps_per_round=60),
                ["splitting", "fixed", "scratch"], [0, 1])
    for split_h, scratch_h, fixed_h in zip(*(c.histories[s] for s in ("splitting", "scratch",
                                                                       "fixed"))):
        assert scratch_h.meta["strategy"] == "scratch"
        assert scratch_h.column("neurons") == split_h.column("neurons")
        assert scratch_h.column("total_steps") == scratch_h.column("steps") == \
            split_h.column("total_steps")  # each size from scratch, as many steps in all
        assert all(r.surgery is None for r in scratch_h.rounds)
        # at the final size, scratch is the fixed baseline: same architecture, seed, steps
        assert scratch_h.rounds[-1].train_loss == fixed_h.rounds[0].train_loss
    assert set(c.by_size("train_loss")["scratch"]) == set(c.by_size("train_loss")["splitting"])


def test_applicable_runs_are_the_strategies_a_network_meets_the_requirements_of():
    from minisplit import prototypes
    from minisplit.growth.comparison import applicable_runs

    assert applicable_runs(mlp([2, 3, 1], seed=0)) == (
        "splitting", "random_split", "net2net", "new_neurons", "gradmax", "fixed", "scratch")
    assert applicable_runs(prototypes.prototype_network(n_prototypes=2, seed=0)) == (
        "splitting", "random_split", "net2net", "new_neurons", "principal_split",
        "new_prototype", "fixed", "scratch")
