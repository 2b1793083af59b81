"""Growth strategies: what each surgery does to the function, and to training afterwards."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minisplit import (
    RBF,
    Dense,
    GrowthConfig,
    Network,
    Prototypes,
    carry_state,
    datasets,
    mlp,
    splitting_indices,
)
from minisplit.growth.strategies import (
    STRATEGIES,
    Round,
    check_gradmax,
    gradmax_matrix,
    gradmax_neurons,
    net2net_widen,
    new_neurons,
    random_directions,
    reinitialized,
)
from minisplit.optim import make_optimizer
from minisplit.training import train


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, size=(12, 3))  # (12, 3)
    y = rng.uniform(-1, 1, size=(12, 2))  # (12, 2)
    net = mlp([3, 4, 2], activation="tanh", seed=0)
    return net, X, y


def test_random_directions_are_unit_and_isotropic():
    V = random_directions(4000, 3, np.random.default_rng(0))
    np.testing.assert_allclose(np.linalg.norm(V, axis=1), 1.0, rtol=0, atol=1e-15)
    # uniform on the sphere: mean 0, second moment I/d (sampling error ~ 1/sqrt(4000))
    np.testing.assert_allclose(V.mean(axis=0), 0.0, atol=0.05)
    np.testing.assert_allclose(V.T @ V / 4000, np.eye(3) / 3, atol=0.03)


def test_net2net_without_noise_preserves_the_function_and_halves_weights(problem):
    net, X, y = problem
    wide = net2net_widen(net, 0, np.array([1, 3]), 0.0, np.random.default_rng(0))
    np.testing.assert_allclose(wide.forward(X), net.forward(X), rtol=0, atol=1e-14)
    W1, W2 = wide.layers[0].W, wide.layers[1].W
    np.testing.assert_array_equal(W1[4], W1[1])
    np.testing.assert_array_equal(W1[5], W1[3])
    np.testing.assert_array_equal(W2[:, 4], net.layers[1].W[:, 1] / 2)
    np.testing.assert_array_equal(W2[:, 1], net.layers[1].W[:, 1] / 2)
    np.testing.assert_array_equal(W2[:, 0], net.layers[1].W[:, 0])


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_net2net_copies_without_noise_stay_identical_under_training(problem, optimizer):
    """Equal copies with equal outgoing weights get equal gradients: the symmetry never breaks."""
    net, X, y = problem
    opt = make_optimizer(optimizer, lr=0.05)
    result = train(net, X, y, opt, steps=20)  # build some optimiser state first
    before = result.net
    wide = net2net_widen(before, 0, np.array([2]), 0.0, np.random.default_rng(0))
    opt.after_surgery(lambda arrays: carry_state(before, 0, arrays, np.array([2])), "inherit")
    trained = train(wide, X, y, opt, steps=200).net
    W1, b1, W2 = trained.layers[0].W, trained.layers[0].b, trained.layers[1].W
    np.testing.assert_array_equal(W1[4], W1[2])
    np.testing.assert_array_equal(b1[4], b1[2])
    np.testing.assert_array_equal(W2[:, 4], W2[:, 2])
    assert not np.allclose(W1[2], wide.layers[0].W[2])  # it did train


def test_net2net_noise_moves_only_the_copy(problem):
    net, X, y = problem
    wide = net2net_widen(net, 0, np.array([0]), 0.1, np.random.default_rng(1))
    np.testing.assert_array_equal(wide.layers[0].W[0], net.layers[0].W[0])
    offset = np.append(wide.layers[0].W[4] - net.layers[0].W[0], wide.layers[0].b[4])
    assert 0 < np.linalg.norm(offset) < 1.0
    change = np.abs(wide.forward(X) - net.forward(X)).max()
    assert 0 < change < 0.1


def test_new_neurons_preserve_the_function(problem):
    net, X, y = problem
    grown = new_neurons(net, 0, 3, np.random.default_rng(0))
    np.testing.assert_allclose(grown.forward(X), net.forward(X), rtol=0, atol=1e-14)
    assert grown.layers[0].n_neurons == 7
    np.testing.assert_array_equal(grown.layers[1].W[:, 4:], 0.0)
    assert np.all(grown.layers[0].W[4:] != 0)  # fresh incoming weights
    np.testing.assert_array_equal(grown.layers[0].W[:4], net.layers[0].W)


def test_gradmax_preserves_the_function_and_maximises_the_gradient(problem):
    net, X, y = problem
    grown = gradmax_neurons(net, X, y, 0, 2, scale=0.1)
    np.testing.assert_allclose(grown.forward(X), net.forward(X), rtol=0, atol=1e-14)
    np.testing.assert_array_equal(grown.layers[0].W[4:], 0.0)
    np.testing.assert_array_equal(grown.layers[0].b[4:], 0.0)
    U = grown.layers[1].W[:, 4:]  # (2, 2): the new outgoing weights
    np.testing.assert_allclose(U.T @ U, 0.01 * np.eye(2), atol=1e-15)  # orthogonal, norm 0.1
    # the new neurons' incoming gradient is f'(0) M^T u_j (tanh'(0) = 1)
    _, grads = grown.loss_and_grad(X, y)
    M = gradmax_matrix(net, X, y, 0)  # (2, 4)
    new_grad = np.hstack([grads[0][4:], grads[1][4:, None]])  # (2, 4) rows [dW, db]
    np.testing.assert_allclose(new_grad, U.T @ M, rtol=1e-12, atol=1e-15)
    # and no other choice of one outgoing vector of norm 0.1 gets a larger gradient
    rng = np.random.default_rng(0)
    best = np.linalg.norm(new_grad[0])
    for _ in range(200):
        u = random_directions(1, 2, rng)[0] * 0.1
        assert np.linalg.norm(M.T @ u) <= best * (1 + 1e-12)


def test_gradmax_adds_at_most_rank_m_neurons(problem):
    net, X, y = problem
    one_out = mlp([3, 4, 1], activation="tanh", seed=0)
    y1 = y[:, :1]
    grown = gradmax_neurons(one_out, X, y1, 0, 3, scale=0.1)
    assert grown.layers[0].n_neurons == 5  # M is (1, 4): rank 1


@pytest.mark.parametrize(
    "activation, match", [("softplus", "f\\(0\\) = 0"), ("sigmoid", "f\\(0\\) = 0"),
                          ("relu", "f'\\(0\\) != 0"), ("gaussian", "f\\(0\\) = 0")]
)
def test_gradmax_refuses_activations_it_cannot_grow(activation, match):
    with pytest.raises(ValueError, match=match):
        check_gradmax(mlp([2, 3, 1], activation=activation, seed=0), 0)


def test_gradmax_refuses_a_non_dense_layer():
    net = Network([RBF(2, 3, seed=0), Dense(3, 1, activation="identity", seed=0)], "mse")
    with pytest.raises(ValueError, match="Dense layer"):
        check_gradmax(net, 0)
    check_gradmax(mlp([2, 3, 1], activation="swish", seed=0), 0)  # swish: f(0)=0, f'(0)=1/2


def test_reinitialized_keeps_the_architecture_only():
    net = mlp([2, 5, 3, 1], seed=0)
    a = reinitialized(net, np.random.default_rng(7))
    b = reinitialized(net, np.random.default_rng(7))
    assert [layer.config() for layer in a.layers] == [layer.config() for layer in net.layers]
    assert not np.allclose(a.layers[0].W, net.layers[0].W)
    for p, q in zip(a.params, b.params):
        np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("strategy", ["random_split", "net2net", "new_neurons", "gradmax"])
def test_growths_grow_the_same_number_per_layer(strategy):
    X, y = datasets.rbf_teacher(n=20, seed=0)
    net = mlp([1, 3, 3, 1], activation="tanh", seed=0)
    plan = {0: np.array([0, 2]), 1: np.array([1])}
    round_ = Round(net, X, y, plan, {}, {}, None, GrowthConfig(net2net_noise=0.01))
    growths = STRATEGIES[strategy].growths(round_, np.random.default_rng(0))
    assert [g.layer for g in growths] == [1, 0]
    grown, parents_seen = net, []
    for g in growths:
        grown, parents = g.apply(grown, 0.1)
        parents_seen.append(parents.tolist())
        if g.neurons is not None:  # a split or a copy: each appended neuron has a parent
            np.testing.assert_array_equal(parents, g.neurons)
    assert grown.layers[0].n_neurons == 5 and grown.layers[1].n_neurons == 4
    if strategy in ("new_neurons", "gradmax"):
        assert parents_seen == [[-1], [-1, -1]]
        np.testing.assert_allclose(grown.forward(X), net.forward(X), rtol=0, atol=1e-14)
    else:
        assert [len(p) for p in parents_seen] == [1, 2]
        assert all(0 <= i < 3 for p in parents_seen for i in p)


@settings(max_examples=15, deadline=None)
@given(
    widths=st.lists(st.integers(1, 5), min_size=3, max_size=4),
    activation=st.sampled_from(["tanh", "swish"]),
    m=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_growth_at_zero_noise_preserves_the_function(widths, activation, m, seed):
    """new_neurons, gradmax and noise-free net2net leave the network's output unchanged."""
    rng = np.random.default_rng(seed)
    net = mlp(widths, activation=activation, seed=seed)
    X = rng.uniform(-3, 3, size=(5, widths[0]))  # (5, n_in)
    y = rng.uniform(-1, 1, size=(5, widths[-1]))  # (5, n_out)
    layer = int(rng.integers(len(widths) - 2))
    F = net.forward(X)
    neurons = np.arange(min(m, widths[layer + 1]))
    grown = [
        new_neurons(net, layer, m, rng),
        gradmax_neurons(net, X, y, layer, m, scale=0.5),
        net2net_widen(net, layer, neurons, 0.0, rng),
    ]
    for g in grown:
        np.testing.assert_allclose(g.forward(X), F, rtol=0, atol=1e-13)
    assert grown[0].layers[layer].n_neurons == widths[layer + 1] + m
    assert grown[2].layers[layer].n_neurons == widths[layer + 1] + neurons.size


def activation_similarity(activation):
    """A prototype similarity for the drawn activation (so both are drawn from one draw)."""
    return {"tanh": "gaussian", "swish": "squared"}[activation]


@settings(max_examples=30, deadline=None)
@given(
    widths=st.lists(st.integers(1, 4), min_size=3, max_size=4),
    activation=st.sampled_from(["tanh", "swish"]),
    name=st.sampled_from(sorted(STRATEGIES)),
    seed=st.integers(0, 2**16),
)
def test_every_strategy_record_keeps_its_promises(widths, activation, name, seed):
    """Each record grows one neuron per chosen layer, names its parents, and preserves the
    function exactly when it says so (at eps = 0 for a strategy with a step size). A record
    whose ``requires`` refuses an MLP (its neurons must be points of their input space) is
    tried on a prototype network: Prototypes -> Dense."""
    strategy = STRATEGIES[name]
    rng = np.random.default_rng(seed)
    net = mlp(widths, activation=activation, seed=seed)
    layers = list(range(len(widths) - 2))
    try:
        for i in layers if strategy.requires is not None else ():
            strategy.requires(net, i)
    except ValueError:
        layers = [0]
        net = Network([Prototypes(widths[0], widths[1], similarity=activation_similarity(
            activation), r2=0.5, tau=0.3, seed=seed), Dense(widths[1], widths[-1], "identity",
                                                          seed=seed)], "mse")
    X = rng.uniform(-2, 2, size=(6, widths[0]))  # (6, n_in)
    y = rng.uniform(-1, 1, size=(6, widths[-1]))  # (6, n_out)
    pairs = {i: splitting_indices(net, X, y, i) for i in layers}
    values, vectors = {i: p[0] for i, p in pairs.items()}, {i: p[1] for i, p in pairs.items()}
    chosen = {i: np.array([0]) for i in layers}
    round_ = Round(net, X, y, chosen, values, vectors, None, GrowthConfig(seed=seed))
    growths = strategy.growths(round_, rng)
    assert [g.layer for g in growths] == sorted(layers, reverse=True)
    grown = net
    for g in growths:
        before = grown
        grown, parents = g.apply(grown, 0.0 if strategy.has_eps else None)
        added = grown.layers[g.layer].n_neurons - before.layers[g.layer].n_neurons
        assert added == len(parents) and added <= 1
        assert np.all((parents == -1) | ((parents >= 0) & (parents < before.layers[g.layer]
                                                          .n_neurons)))
    if strategy.preserves_function:
        np.testing.assert_allclose(grown.forward(X), net.forward(X), rtol=0, atol=1e-13)
    if name != "gradmax":  # GradMax adds at most rank(M) neurons, possibly none
        assert all(grown.layers[i].n_neurons == net.layers[i].n_neurons + 1 for i in layers)
