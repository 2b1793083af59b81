"""Optimisers: hand-computed steps, Adam's bias correction, surgery carry-over, checkpoints."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minisplit import SGD, Adam, add_neurons, carry_state, make_optimizer, mlp, split


def test_sgd_momentum_two_steps_by_hand():
    opt = SGD(lr=0.1, momentum=0.9)
    p0 = [np.array([1.0, -2.0]), np.array([[0.5]])]
    # step 1, g = ([2, 0], [[-1]]): v = 0.9 * 0 - 0.1 g = ([-0.2, 0], [[0.1]])
    #         p = p0 + v = ([0.8, -2.0], [[0.6]])
    p1 = opt.step(p0, [np.array([2.0, 0.0]), np.array([[-1.0]])])
    np.testing.assert_allclose(p1[0], [0.8, -2.0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(p1[1], [[0.6]], rtol=0, atol=1e-15)
    # step 2, g = ([1, 4], [[0]]): v = 0.9 ([-0.2, 0], [[0.1]]) - 0.1 g = ([-0.28, -0.4], [[0.09]])
    #         p = p1 + v = ([0.52, -2.4], [[0.69]])
    p2 = opt.step(p1, [np.array([1.0, 4.0]), np.array([[0.0]])])
    np.testing.assert_allclose(p2[0], [0.52, -2.4], rtol=0, atol=1e-15)
    np.testing.assert_allclose(p2[1], [[0.69]], rtol=0, atol=1e-15)
    np.testing.assert_allclose(opt.state["velocity"][0], [-0.28, -0.4], rtol=0, atol=1e-15)
    assert opt.t == 2


def test_adam_two_steps_by_hand():
    opt = Adam(lr=0.1, beta1=0.9, beta2=0.999, epsilon=1e-8)
    p0 = [np.array([1.0, -1.0])]
    # step 1, g = [2, -0.5]: m = 0.1 g = [0.2, -0.05], v = 0.001 g^2 = [0.004, 0.00025]
    #   m_hat = m / 0.1 = [2, -0.5], v_hat = v / 0.001 = [4, 0.25]
    #   p = p0 - 0.1 m_hat / sqrt(v_hat) = [1 - 0.1, -1 + 0.1] = [0.9, -0.9]  (eps: ~1e-9)
    p1 = opt.step(p0, [np.array([2.0, -0.5])])
    np.testing.assert_allclose(p1[0], [0.9, -0.9], rtol=0, atol=1e-8)
    # step 2, g = [1, 0.5]: m = 0.9 m + 0.1 g = [0.28, 0.005]
    #   v = 0.999 v + 0.001 g^2 = [0.004996, 0.00049975]
    #   m_hat = m / (1 - 0.9^2) = m / 0.19 = [1.4736842105, 0.0263157895]
    #   v_hat = v / (1 - 0.999^2) = v / 0.001999 = [2.4992496248, 0.25]
    #   step = 0.1 m_hat / sqrt(v_hat)
    #        = [0.1 * 1.4736842105 / 1.5809015228, 0.1 * 0.0263157895 / 0.5]
    #        = [0.0932179639, 0.0052631579]
    #   p = [0.9 - 0.0932179639, -0.9 - 0.0052631579] = [0.8067820361, -0.9052631579]
    p2 = opt.step(p1, [np.array([1.0, 0.5])])
    np.testing.assert_allclose(p2[0], [0.8067820361, -0.9052631579], rtol=0, atol=1e-8)
    np.testing.assert_allclose(opt.state["m"][0], [0.28, 0.005], rtol=0, atol=1e-15)
    np.testing.assert_allclose(opt.state["v"][0], [0.004996, 0.00049975], rtol=0, atol=1e-15)


@settings(max_examples=20, deadline=None)
@given(
    g=st.lists(st.floats(-3, 3).filter(lambda x: abs(x) > 1e-3), min_size=1, max_size=5),
    steps=st.integers(1, 6),
    beta1=st.floats(0.1, 0.99),
    beta2=st.floats(0.1, 0.999),
)
def test_adam_bias_correction_makes_constant_gradient_steps_exact(g, steps, beta1, beta2):
    # With a constant gradient g, m_hat = g and v_hat = g^2 at every t, so each step
    # moves p by exactly -lr g / (|g| + eps): without the correction the first steps
    # would be scaled by (1 - beta1^t) / sqrt(1 - beta2^t).
    g = np.array(g)
    opt = Adam(lr=0.01, beta1=beta1, beta2=beta2, epsilon=1e-8)
    p = [np.zeros_like(g)]
    for t in range(1, steps + 1):
        p = opt.step(p, [g])
        np.testing.assert_allclose(p[0], -t * 0.01 * g / (np.abs(g) + 1e-8), rtol=1e-10)


def test_step_returns_new_arrays_and_leaves_inputs_alone():
    params, grads = [np.array([1.0, 2.0])], [np.array([0.5, -0.5])]
    for opt in (SGD(), Adam()):
        new = opt.step(params, grads)
        assert new[0] is not params[0]
        np.testing.assert_array_equal(params[0], [1.0, 2.0])
        np.testing.assert_array_equal(grads[0], [0.5, -0.5])


def stepped(opt, net, seed=0):
    """Two steps with random gradients, so the state differs from row to row."""
    rng = np.random.default_rng(seed)
    params = net.params
    for _ in range(2):
        params = opt.step(params, [rng.standard_normal(p.shape) for p in params])
    return opt


@pytest.mark.parametrize("make", [lambda: SGD(), lambda: Adam()])
def test_inherit_after_split_copies_parent_rows(make):
    net = mlp([2, 3, 2], seed=0)
    opt = stepped(make(), net)
    before = opt.state
    neurons = np.array([2, 0])
    grown = split(net, 0, neurons, np.ones((2, 3)) / np.sqrt(3), eps=0.1)
    opt.after_surgery(lambda arrays: carry_state(net, 0, arrays, neurons), mode="inherit")
    assert opt.t == 2
    for key, old in before.items():
        W0, b0, W1, b1 = opt.state[key]
        assert W0.shape == (5, 2) and W1.shape == (2, 5)
        np.testing.assert_array_equal(W0[:3], old[0])  # old rows unchanged
        np.testing.assert_array_equal(W0[3:], old[0][[2, 0]])  # new rows: parents 2, 0
        np.testing.assert_array_equal(b0[3:], old[1][[2, 0]])
        np.testing.assert_array_equal(W1[:, 3:], old[2][:, [2, 0]])  # reader's columns
        np.testing.assert_array_equal(b1, old[3])
    opt.step(grown.params, grown.params)  # shapes now agree with the grown network


def test_inherit_after_add_neurons_gives_zeros():
    net = mlp([2, 3, 2], seed=0)
    opt = stepped(Adam(), net)
    before = opt.state
    grown = add_neurons(net, 0, theta=np.ones((2, 3)), out_weights=np.zeros((2, 2, 1)))
    opt.after_surgery(lambda arrays: carry_state(net, 0, arrays, [-1, -1]))
    for key, old in before.items():
        W0, b0, W1, _ = opt.state[key]
        np.testing.assert_array_equal(W0[:3], old[0])
        np.testing.assert_array_equal(W0[3:], 0.0)
        np.testing.assert_array_equal(b0[3:], 0.0)
        np.testing.assert_array_equal(W1[:, 3:], 0.0)
        assert np.all(old[0] != 0.0)  # so the zeros above are not a coincidence
    assert [p.shape for p in opt.state["m"]] == [p.shape for p in grown.params]


@pytest.mark.parametrize("make", [lambda: SGD(), lambda: Adam()])
def test_reset_clears_and_next_step_is_a_fresh_one(make):
    net = mlp([2, 3, 2], seed=0)
    opt = stepped(make(), net)
    grown = split(net, 0, np.array([1]), np.ones((1, 3)), eps=0.1)
    opt.after_surgery(lambda arrays: carry_state(net, 0, arrays, [1]), mode="reset")
    assert opt.state == {} and opt.t == 0
    grads = [np.full(p.shape, 0.3) for p in grown.params]
    got, expected = opt.step(grown.params, grads), make().step(grown.params, grads)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)


def test_stale_state_is_refused_with_a_hint():
    net = mlp([2, 3, 2], seed=0)
    opt = stepped(SGD(), net)
    grown = split(net, 0, np.array([1]), np.ones((1, 3)), eps=0.1)
    with pytest.raises(ValueError, match="after_surgery"):
        opt.step(grown.params, grown.params)


def test_after_surgery_before_any_step_is_harmless_and_mode_checked():
    net = mlp([2, 3, 2], seed=0)
    opt = SGD()
    carry = lambda arrays: carry_state(net, 0, arrays, [0])  # noqa: E731
    opt.after_surgery(carry)
    assert opt.state == {}
    with pytest.raises(ValueError, match="mode must be one of"):
        opt.after_surgery(carry, mode="keep")
    with pytest.raises(TypeError, match="carry must be a callable"):
        opt.after_surgery(net)


def test_the_optimiser_knows_nothing_of_surgery():
    """optim imports nothing from splitting or growth: the caller says how state maps."""
    import ast
    import inspect

    import minisplit.optim

    tree = ast.parse(inspect.getsource(minisplit.optim))
    imported = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    imported += [a.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for a in node.names]
    assert not [m for m in imported if "splitting" in m or "growth" in m or "network" in m]


@pytest.mark.parametrize("make", [lambda: SGD(lr=0.05), lambda: Adam(lr=0.05)])
def test_state_dict_round_trip_through_npz(make, tmp_path):
    net = mlp([2, 3, 1], seed=1)
    opt = stepped(make(), net)
    np.savez(tmp_path / "opt.npz", **opt.state_dict())
    with np.load(tmp_path / "opt.npz") as f:
        restored = make_optimizer(**opt.config())
        restored.load_state_dict(dict(f))
    assert restored.t == opt.t
    grads = [np.full(p.shape, -0.7) for p in net.params]
    for a, b in zip(opt.step(net.params, grads), restored.step(net.params, grads)):
        np.testing.assert_array_equal(a, b)


def test_load_state_dict_checks_keys_and_shapes():
    opt = stepped(Adam(), mlp([2, 3, 1], seed=1))
    d = opt.state_dict()
    with pytest.raises(ValueError, match="must hold 't'"):
        Adam().load_state_dict({k: v for k, v in d.items() if k != "t"})
    with pytest.raises(ValueError, match="keys"):
        SGD().load_state_dict(d)
    with pytest.raises(ValueError, match="equal shapes"):
        Adam().load_state_dict({**d, "m.0": np.zeros((7, 7))})
    empty = Adam()
    empty.load_state_dict({"t": 0})
    assert empty.state == {} and empty.t == 0


def test_config_and_factory():
    opt = make_optimizer("sgd", lr=0.5, momentum=0.0)
    assert isinstance(opt, SGD) and opt.config() == {"name": "sgd", "lr": 0.5, "momentum": 0.0}
    assert make_optimizer(**Adam(lr=0.2).config()).config() == Adam(lr=0.2).config()
    with pytest.raises(ValueError, match="name must be one of"):
        make_optimizer("rmsprop")


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: SGD(lr=0.0), "lr must be a finite number > 0, got 0.0"),
        (lambda: SGD(lr=-1.0), "lr must be a finite number > 0, got -1.0"),
        (lambda: SGD(lr=float("nan")), "lr must be a finite number > 0, got nan"),
        (lambda: SGD(momentum=1.0), "momentum must be a finite number >= 0 and < 1, got 1.0"),
        (lambda: SGD(momentum=-0.1), "momentum must be a finite number >= 0 and < 1, got -0.1"),
        (lambda: Adam(beta1=0.0), "beta1 must be a finite number > 0 and < 1, got 0.0"),
        (lambda: Adam(beta2=1.0), "beta2 must be a finite number > 0 and < 1, got 1.0"),
        (lambda: Adam(epsilon=0.0), "epsilon must be a finite number > 0, got 0.0"),
    ],
)
def test_bad_settings_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_settings_of_the_wrong_type_are_refused():
    with pytest.raises(TypeError, match="lr must be a finite number > 0, got True"):
        SGD(lr=True)
    with pytest.raises(TypeError, match="momentum must be a finite number"):
        SGD(momentum="0.9")


def test_adam_eps_is_the_deprecated_spelling_of_epsilon():
    with pytest.warns(DeprecationWarning, match="epsilon"):
        old = Adam(lr=0.1, eps=1e-4)
    assert old.config() == Adam(lr=0.1, epsilon=1e-4).config()


def test_bad_step_inputs_are_refused():
    opt = SGD()
    with pytest.raises(ValueError, match="grads must have the shapes"):
        opt.step([np.zeros(2)], [np.zeros(3)])
    with pytest.raises(TypeError, match="params must be a list"):
        opt.step(np.zeros(2), [np.zeros(2)])
    with pytest.raises(ValueError, match="finite"):
        opt.step([np.zeros(2)], [np.array([1.0, np.nan])])


def test_a_fresh_neurons_first_adam_update_is_lr_sized():
    """After many steps, a brand-new neuron's first update is lr g / (|g| + epsilon), as for a
    fresh optimiser: its bias corrections start at 0 (with one global step count it was
    (1 - beta1) / sqrt(1 - beta2) ~ 3.2 times lr)."""
    net = mlp([2, 3, 2], seed=0)
    opt = Adam(lr=0.01)
    params = net.params
    for _ in range(1000):
        params = opt.step(params, [np.ones_like(p) for p in params])
    net = net.with_params(params)
    grown = add_neurons(net, 0, theta=np.ones((1, 3)), out_weights=np.ones((1, 2, 1)))
    opt.after_surgery(lambda arrays: carry_state(net, 0, arrays, [-1]))
    grads = [np.ones_like(p) for p in grown.params]  # the same constant gradient as before
    after = opt.step(grown.params, grads)
    moved = [a - b for a, b in zip(after, grown.params)]
    step = -0.01 * 1.0 / (1.0 + 1e-8)  # lr g / (|g| + epsilon)
    np.testing.assert_allclose(moved[0][3], step, rtol=1e-12)  # the new neuron's weights
    np.testing.assert_allclose(moved[1][3], step, rtol=1e-12)  # its bias
    np.testing.assert_allclose(moved[2][:, 3], step, rtol=1e-12)  # the reader's weights on it
    # the old neurons keep their history: constant gradients, so exactly lr-sized too
    np.testing.assert_allclose(moved[0][:3], step, rtol=1e-9)


def test_an_offspring_inherits_its_parents_bias_correction():
    net = mlp([2, 3, 2], seed=0)
    opt = stepped(Adam(), net)
    before = opt.state
    grown = split(net, 0, np.array([1]), np.ones((1, 3)) / np.sqrt(3), eps=0.1)
    opt.after_surgery(lambda arrays: carry_state(net, 0, arrays, [1]))
    for key in ("c1", "c2"):
        W0 = opt.state[key][0]
        np.testing.assert_array_equal(W0[3], before[key][0][1])
    assert [p.shape for p in opt.state["c1"]] == [p.shape for p in grown.params]
