"""Split surgery: function preservation at eps = 0, exact bookkeeping, validation, state carry.

``split`` replaces neuron i by theta + eps v (in place) and theta - eps v (appended), and
copies every weight that reads unit i to the new unit, both halved (docs/surgery.md).
``signed_split`` uses output weights (1 + alpha, -alpha) (docs/splitting.md, section 9). At
eps = 0 both compute the input network's function; so does ``add_neurons`` with zero out-weights.
The only differences are summation orders, so outputs agree to a few ulps of max|F|
(times 1 + alpha for the signed split, whose two terms cancel).
"""

import numpy as np
import pytest
from _nets import ARCH_LAYERS, problems
from hypothesis import given, settings
from hypothesis import strategies as st

import minisplit as ms
from minisplit import RBF, Dense, Network
from minisplit.testnets import conv_conv, conv_flatten, dense, rbf

ULPS = 1e-14


def reader(net, layer):
    """Index of the layer reading ``layer``'s units (the next layer that neither passes nor
    carries them: a depthwise convolution carries them)."""
    return next(r for r in range(layer + 1, len(net.layers))
                if not (net.layers[r].passes_units
                        or isinstance(net.layers[r], ms.UnitCarryingLayer)))


def assert_same_function(new, net, X, factor=1.0):
    F = net.forward(X)
    np.testing.assert_allclose(new.forward(X), F, rtol=0, atol=ULPS * factor * np.abs(F).max())


def assert_untouched(net, before):
    for p, q in zip(net.params, before):
        np.testing.assert_array_equal(p, q)


# ------------------------------------------------------------ function preservation


@pytest.mark.parametrize("arch, layer", ARCH_LAYERS, ids=str)
@settings(max_examples=4, deadline=None)
@given(data=st.data(), alpha=st.floats(0.01, 10.0))
def test_eps_zero_preserves_the_function(arch, layer, data, alpha):
    problem = data.draw(problems([arch]))
    net, X = problem.net, problem.X
    before = [p.copy() for p in net.params]
    rng = np.random.default_rng(problem.seed)
    obj = net.layers[layer]
    n, d = obj.n_neurons, obj.neuron_dim
    neurons = rng.permutation(n)[: rng.integers(1, n + 1)]
    directions = rng.standard_normal((neurons.size, d))
    m = int(rng.integers(1, 4))
    W_in = net.layers[reader(net, layer)].out_weights(n)
    grown = {
        "split": ms.split(net, layer, neurons, directions, 0.0),
        "signed": ms.signed_split(net, layer, neurons, directions, 0.0, alpha=alpha),
        "add": ms.add_neurons(
            net, layer, rng.standard_normal((m, d)), np.zeros((m,) + W_in.shape[1:])
        ),
    }
    for name, new in grown.items():
        assert_same_function(new, net, X, factor=1.0 + alpha if name == "signed" else 1.0)
        added = m if name == "add" else neurons.size
        assert new.layers[layer].n_neurons == n + added
    # a real split (eps > 0) changes the function (problems() draws smooth activations: an
    # identity neuron's split would keep it), and never the input network
    moved = ms.split(net, layer, neurons, directions, 0.5)
    assert np.abs(moved.forward(X) - net.forward(X)).max() > 1e-8
    assert_untouched(net, before)


# ------------------------------------------------------------------ exact bookkeeping


def _tiny_dense():
    hidden, out = Dense(2, 3, "tanh"), Dense(3, 2, "identity")
    hidden.W = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    hidden.b = np.array([0.1, 0.2, 0.3])
    out.W = np.array([[1.0, -2.0, 4.0], [8.0, 16.0, -32.0]])
    out.b = np.array([0.5, -0.5])
    return Network([hidden, out], "mse")


def test_split_bookkeeping_dense():
    net = _tiny_dense()
    v = np.array([[1.0, -1.0, 2.0], [0.5, 0.0, -0.5]])
    new = ms.split(net, 0, [1, 0], v, 0.25)
    W, b, W2, b2 = new.params
    np.testing.assert_array_equal(
        W,
        [
            [1.0 + 0.125, 2.0],  # neuron 0 + 0.25 * v[1]
            [3.25, 3.75],  # neuron 1 + 0.25 * v[0]
            [5.0, 6.0],
            [2.75, 4.25],  # appended: neuron 1 - 0.25 * v[0]
            [0.875, 2.0],  # appended: neuron 0 - 0.25 * v[1]
        ],
    )
    np.testing.assert_array_equal(b, [0.1 - 0.125, 0.2 + 0.5, 0.3, 0.2 - 0.5, 0.1 + 0.125])
    # reader columns 0 and 1 halved and copied, in the order of ``neurons``
    np.testing.assert_array_equal(W2, [[0.5, -1.0, 4.0, -1.0, 0.5], [4.0, 8.0, -32.0, 8.0, 4.0]])
    np.testing.assert_array_equal(b2, [0.5, -0.5])


def test_signed_split_bookkeeping_dense():
    # alpha = 3: appended theta + eps v with weight -3; in place theta + eps (3/4) v, weight 4
    net = _tiny_dense()
    v = np.array([[4.0, 0.0, -8.0]])
    new = ms.signed_split(net, 0, [2], v, 0.5, alpha=3.0)
    W, b, W2, _ = new.params
    np.testing.assert_array_equal(W, [[1.0, 2.0], [3.0, 4.0], [6.5, 6.0], [7.0, 6.0]])
    np.testing.assert_allclose(b, [0.1, 0.2, 0.3 - 3.0, 0.3 - 4.0], rtol=0, atol=1e-15)
    np.testing.assert_array_equal(W2, [[1.0, -2.0, 16.0, -12.0], [8.0, 16.0, -128.0, 96.0]])


def test_add_neurons_bookkeeping_dense():
    net = _tiny_dense()
    theta = np.array([[7.0, 8.0, 0.4]])
    new = ms.add_neurons(net, 0, theta, np.array([[[9.0], [10.0]]]))
    W, b, W2, _ = new.params
    np.testing.assert_array_equal(W[-1], [7.0, 8.0])
    np.testing.assert_array_equal(b, [0.1, 0.2, 0.3, 0.4])
    np.testing.assert_array_equal(W2, [[1.0, -2.0, 4.0, 9.0], [8.0, 16.0, -32.0, 10.0]])


def test_split_bookkeeping_conv_flatten():
    # The Dense after Flatten reads channel c through the H*W = 9 columns 9c ... 9c + 8;
    # splitting channel 1 appends a copy of that block, both halved.
    net, X, _ = conv_flatten(seed=0)
    conv, dense_reader = net.layers[0], net.layers[2]
    v = np.arange(conv.neuron_dim, dtype=float)[None] / 8  # (1, 2*3*3 + 1)
    v_W, v_b = v[0, :-1].reshape(conv.W.shape[1:]), v[0, -1]  # theta = [W[i].ravel(), b[i]]
    new = ms.split(net, 0, [1], v, 0.5)
    expected_W, expected_b = conv.W.copy(), conv.b.copy()
    expected_W[1] += 0.5 * v_W
    expected_b[1] += 0.5 * v_b
    expected_W = np.concatenate([expected_W, (conv.W[1] - 0.5 * v_W)[None]])
    expected_b = np.append(expected_b, conv.b[1] - 0.5 * v_b)
    np.testing.assert_array_equal(new.layers[0].W, expected_W)
    np.testing.assert_array_equal(new.layers[0].b, expected_b)
    block = dense_reader.W[:, 9:18]
    expected = np.hstack([dense_reader.W[:, :9], block / 2, dense_reader.W[:, 18:], block / 2])
    np.testing.assert_array_equal(new.layers[2].W, expected)
    assert new.layers[2].W.shape == (2, 36)


def test_split_bookkeeping_conv_conv():
    # A Conv2d reader reads unit c through its input-channel slice W[:, c].
    net, X, _ = conv_conv(seed=0)
    second = net.layers[1]
    new = ms.split(net, 0, [2], np.zeros((1, net.layers[0].neuron_dim)), 0.0)
    expected = np.concatenate([second.W[:, :2], second.W[:, 2:] / 2, second.W[:, 2:] / 2], axis=1)
    np.testing.assert_array_equal(new.layers[1].W, expected)
    np.testing.assert_array_equal(new.layers[1].b, second.b)


def test_split_bookkeeping_rbf():
    net, X, _ = rbf(seed=0)
    C = net.layers[0].centers
    v = np.array([[1.0, -2.0]])
    new = ms.split(net, 0, [3], v, 0.125)
    np.testing.assert_array_equal(
        new.layers[0].centers, np.vstack([C[:3], C[3] + 0.125 * v, C[3] - 0.125 * v])
    )
    W = net.layers[1].W
    np.testing.assert_array_equal(
        new.layers[1].W, np.hstack([W[:, :3], W[:, 3:] / 2, W[:, 3:] / 2])
    )


# -------------------------------------------------------------------------- carry_state


@pytest.mark.parametrize("build", [dense, conv_flatten, rbf], ids=lambda b: b.__name__)
def test_carry_state_copies_parents_and_zeros_new(build):
    net, _, _ = build(seed=0)
    layer, r = 0, reader(net, 0)
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(p.shape) for p in net.params]
    parents = np.array([2, -1, 0])
    carried = ms.carry_state(net, layer, arrays, parents)
    # shapes follow the grown network (here: split of [2, 0] plus one added neuron)
    grown = ms.split(net, layer, [2, 0], np.zeros((2, net.layers[0].neuron_dim)), 0.0)
    W_in = grown.layers[r].out_weights(grown.layers[0].n_neurons)
    grown = ms.add_neurons(
        grown, layer, np.zeros((1, net.layers[0].neuron_dim)), np.zeros((1,) + W_in.shape[1:])
    )
    assert [c.shape for c in carried] == [p.shape for p in grown.params]
    state_net = net.with_params(arrays)
    new_net = grown.with_params(carried)
    theta_old = state_net.layers[layer].neuron_params()
    theta_new = new_net.layers[layer].neuron_params()
    n = theta_old.shape[0]
    np.testing.assert_array_equal(theta_new[:n], theta_old)
    np.testing.assert_array_equal(
        theta_new[n:], [theta_old[2], np.zeros_like(theta_old[0]), theta_old[0]]
    )
    read_old = state_net.layers[r].out_weights(n)
    read_new = new_net.layers[r].out_weights(n + 3)
    np.testing.assert_array_equal(read_new[:n], read_old)
    np.testing.assert_array_equal(
        read_new[n:], [read_old[2], np.zeros_like(read_old[0]), read_old[0]]
    )
    # everything else (other layers, the reader's bias) is carried unchanged
    np.testing.assert_array_equal(carried[-1], arrays[-1])
    for bad in ([n], [-2], [[0]]):
        with pytest.raises(ValueError, match="parents"):
            ms.carry_state(net, layer, arrays, bad)


# ---------------------------------------------------------------------------- validation


@pytest.fixture
def tiny():
    return _tiny_dense()


@pytest.mark.parametrize(
    "neurons, error, message",
    [
        ([3], ValueError, r"neurons must be indices in \[0, 3\), got \[3\]"),
        ([-1], ValueError, r"neurons must be indices in \[0, 3\), got \[-1\]"),
        ([0, 0], ValueError, r"neurons must be distinct indices, got \[0 0\]"),
        ([0.5], TypeError, "neurons must be integer indices, got dtype float64"),
        ([1.0], TypeError, "neurons must be integer indices, got dtype float64"),
        ([True], TypeError, "neurons must be integer indices, got dtype bool"),
        ([[0]], ValueError, "1-D"),
        ("0", TypeError, "neurons must be integer indices, got dtype <U1"),
    ],
)
def test_bad_neuron_indices(tiny, neurons, error, message):
    directions = np.zeros((np.size(neurons), 3))
    for surgery in (ms.split, ms.signed_split):
        with pytest.raises(error, match=message):
            surgery(tiny, 0, neurons, directions, 0.1)


@pytest.mark.parametrize("shape", [(1, 2), (1, 4), (3,), (2, 3), (1, 3, 1)])
def test_bad_direction_shape(tiny, shape):
    with pytest.raises(ValueError, match="directions must have shape"):
        ms.split(tiny, 0, [0], np.zeros(shape), 0.1)


@pytest.mark.parametrize(
    "eps, error",
    [
        (-1e-3, ValueError),
        (np.nan, ValueError),
        (np.inf, ValueError),
        (-np.inf, ValueError),
        (True, TypeError),
        ("0.1", TypeError),
        (None, TypeError),
        ([0.1], TypeError),
    ],
)
def test_bad_eps(tiny, eps, error):
    for surgery in (ms.split, ms.signed_split):
        with pytest.raises(error, match="eps must be a finite number >= 0, got"):
            surgery(tiny, 0, [0], np.zeros((1, 3)), eps)


@pytest.mark.parametrize(
    "alpha, error",
    [
        (0.0, ValueError),
        (-1.0, ValueError),
        (np.nan, ValueError),
        (np.inf, ValueError),
        (1001.0, ValueError),
        (True, TypeError),
        ("1", TypeError),
    ],
)
def test_bad_alpha(tiny, alpha, error):
    with pytest.raises(error, match="alpha must be a finite number > 0 and <= 1000, got"):
        ms.signed_split(tiny, 0, [0], np.zeros((1, 3)), 0.1, alpha=alpha)


def test_non_finite_directions(tiny):
    with pytest.raises(ValueError, match="finite"):
        ms.split(tiny, 0, [0], np.array([[0.0, np.nan, 0.0]]), 0.1)


def test_output_layer_cannot_be_split(tiny):
    for surgery in (ms.split, ms.signed_split):
        with pytest.raises(ValueError, match="output layer"):
            surgery(tiny, 1, [0], np.zeros((1, 4)), 0.1)
    with pytest.raises(ValueError, match="output layer"):
        ms.add_neurons(tiny, 1, np.zeros((1, 4)), np.zeros((1, 1)))


def test_layer_without_neurons_or_out_of_range():
    net, _, _ = conv_flatten(seed=0)
    with pytest.raises(ValueError, match="no neurons"):
        ms.split(net, 1, [0], np.zeros((1, 1)), 0.1)  # Flatten
    for layer in (3, -1):
        with pytest.raises(ValueError, match=r"layer must lie in \[0, 3\), got"):
            ms.split(net, layer, [0], np.zeros((1, 19)), 0.1)
    with pytest.raises(TypeError, match="layer must be an integer index into net.layers, got 0.0"):
        ms.split(net, 0.0, [0], np.zeros((1, 19)), 0.1)


def test_a_unit_read_by_an_rbf_cannot_be_split():
    # RBF reads its input through ||x - c||: a halved copy of a unit is not the same input
    net = Network([Dense(2, 3, "tanh", seed=0), RBF(3, 4, seed=1), Dense(4, 1, seed=2)], "mse")
    X, y = np.ones((5, 2)), np.zeros((5, 1))
    assert ms.splitting_matrices(net, X, y, 0).shape == (3, 3, 3)  # S itself is defined
    for surgery in (ms.split, ms.signed_split):
        with pytest.raises(ValueError, match="non-linearly"):
            surgery(net, 0, [0], np.zeros((1, 3)), 0.1)
    with pytest.raises(ValueError, match="non-linearly"):
        ms.add_neurons(net, 0, np.zeros((1, 3)), np.zeros((1, 4, 1)))
    with pytest.raises(ValueError, match="non-linearly"):
        ms.split_many(net, {0: ([0], np.zeros((1, 3)))}, 0.1)


def test_add_neurons_bad_shapes(tiny):
    good_theta, good_out = np.zeros((2, 3)), np.zeros((2, 2, 1))
    ms.add_neurons(tiny, 0, good_theta, good_out)
    for theta, out in [
        (np.zeros((2, 2)), good_out),  # theta rows of the wrong length
        (np.zeros(3), good_out[:1]),  # theta not 2-D
        (good_theta, np.zeros((2, 2))),  # out_weights missing the block axis
        (good_theta, np.zeros((3, 2, 1))),  # one out-weight per new neuron
        (good_theta, np.zeros((2, 3, 1))),  # reader has 2 outputs
        (np.full((2, 3), np.nan), good_out),  # not finite
    ]:
        with pytest.raises(ValueError):
            ms.add_neurons(tiny, 0, theta, out)


def test_empty_plan_is_a_no_op():
    net = ms.mlp([2, 3, 1], seed=0)
    X = np.random.default_rng(0).normal(size=(4, 2))
    for surgery in (ms.split, ms.signed_split):
        new = surgery(net, 0, [], np.zeros((0, 3)), 0.1)
        assert new.layers[0].W.shape == (3, 2)
        assert np.array_equal(new.forward(X), net.forward(X))
