"""Network: derivatives of Dense stacks, a hand-worked example, input checks, no mutation."""

import math

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from minisplit import (
    ACTIVATIONS,
    LOSSES,
    MAX_HESSIAN_PARAMS,
    Dense,
    Head,
    Network,
    flatten,
    gradcheck,
    load,
    mlp,
    save,
    split,
)

KINKED = {"relu"}  # activations whose derivative jumps at z = 0


def random_problem(sizes, activation, output_activation, loss, n_samples, seed):
    """An mlp (default initialisation plus N(0, 0.3^2) noise, so biases are not zero),
    inputs in [-3, 3] and targets."""
    rng = np.random.default_rng(seed)
    net = mlp(sizes, activation, loss, output_activation, seed=rng)
    net = net.with_params(flatten(net.params) + rng.normal(0.0, 0.3, size=net.n_params))
    X = rng.uniform(-3.0, 3.0, size=(n_samples, sizes[0]))  # (N, n_in)
    if loss == "mse":
        y = rng.uniform(-3.0, 3.0, size=(n_samples, sizes[-1]))  # (N, k)
    else:
        y = rng.integers(0, sizes[-1], size=n_samples)  # (N,)
    return net, X, y


def pre_activations(net, X):
    """Z of every Dense layer, in order."""
    out, A = [], X
    for layer in net.layers:
        A, (_, Z, _) = layer.forward(A)
        out.append((layer.act.name, Z))
    return out


def near_kink(net, X, margin=1e-3):
    """True if some kinked neuron sits within ``margin`` of its kink.

    Finite differences with step 1e-5 in a unit direction move Z by at most
    1e-5 * (|x| + 1), far below the margin.
    """
    return any(name in KINKED and np.min(np.abs(Z)) < margin for name, Z in pre_activations(net, X))


def resolvable(net, X, y):
    """False for a saturated network whose gradient drowns in finite-difference round-off.

    A central difference of L carries round-off ~ eps |L| / h ~ 2e-11 |L|; against a
    gradient norm below 1e-3 max(|L|, 1) that is no longer 1e4 below TOLERANCE.
    """
    value, grads = net.loss_and_grad(X, y)
    return np.linalg.norm(flatten(grads)) > 1e-3 * max(abs(value), 1.0)


@settings(max_examples=30, deadline=None)
@given(
    activation=st.sampled_from(sorted(ACTIVATIONS)),
    output_activation=st.sampled_from(sorted(ACTIVATIONS)),
    loss=st.sampled_from(sorted(LOSSES)),
    n_in=st.integers(1, 5),
    hidden=st.lists(st.integers(1, 5), min_size=1, max_size=3),
    n_out=st.integers(2, 3),
    n_samples=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
)
@example(
    activation="tanh", output_activation="identity", loss="mse",
    n_in=1, hidden=[1], n_out=2, n_samples=1, seed=0,
)  # fmt: skip
@example(
    activation="relu", output_activation="identity", loss="cross_entropy",
    n_in=5, hidden=[5, 5, 5], n_out=3, n_samples=4, seed=1,
)  # fmt: skip
def test_dense_stack_derivatives_match_finite_differences(
    activation, output_activation, loss, n_in, hidden, n_out, n_samples, seed
):
    sizes = [n_in, *hidden, n_out]
    net, X, y = random_problem(sizes, activation, output_activation, loss, n_samples, seed)
    assume(not near_kink(net, X) and resolvable(net, X, y))
    errors = gradcheck.check_network(net, X, y, seed=seed)
    assert set(errors) == {"gradient", "hvp", "hessian_symmetry", "hessian_vs_hvp"}
    for name, error in errors.items():
        assert error < gradcheck.TOLERANCE, (name, error)


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_hessian_is_symmetric_and_agrees_with_hvp(loss):
    net, X, y = random_problem([3, 4, 2, 3], "swish", "tanh", loss, 4, seed=7)
    H = net.hessian(X, y)
    assert H.shape == (net.n_params, net.n_params)
    np.testing.assert_allclose(H, H.T, rtol=0, atol=1e-14 * np.abs(H).max())
    v = np.random.default_rng(0).standard_normal(net.n_params)
    np.testing.assert_allclose(H @ v, flatten(net.hvp(X, y, v)), rtol=1e-12, atol=1e-14)
    # the curvature is not trivially zero off the output layer
    assert np.abs(H[:12, :12]).max() > 1e-3


def test_hand_worked_2_2_1_tanh_network_with_mse():
    # One sample x = [1, 2], target y = -1.
    # Hidden layer: z = W1 x + b1
    #   z_1 = 0.5 * 1 + (-0.25) * 2 + 0.5   = 0.5
    #   z_2 = 0.25 * 1 + (-0.5) * 2 - 0.25  = -1.0
    #   h = tanh(z) = [tanh 0.5, tanh(-1)] = [0.46211715726000974, -0.7615941559557649]
    # Output (identity): f = W2 h + b2 = 1 * 0.46211715726000974 + 2 * (-0.7615941559557649) + 0.5
    #                      = -0.5610711546515199
    # Loss: e = f - y = 0.4389288453484801, L = e^2 / 2 = 0.09632926563947497  (N = 1)
    # Backward: dL/df = e
    #   dW2 = e * h = [0.20283655025185807, -0.33428564349781414],  db2 = e
    #   dL/dh = e * W2 = [0.4389288453484801, 0.8778576906969602]
    #   tanh' = 1 - h^2 = [0.7864477329659274, 0.41997434161402614]
    #   dz = dL/dh * (1 - h^2) = [0.34519459535766434, 0.36867770568126523]
    #   dW1 = dz x^T = [[dz_1, 2 dz_1], [dz_2, 2 dz_2]],  db1 = dz
    W1, b1 = np.array([[0.5, -0.25], [0.25, -0.5]]), np.array([0.5, -0.25])
    W2, b2 = np.array([[1.0, 2.0]]), np.array([0.5])
    net = mlp([2, 2, 1], activation="tanh", loss="mse", seed=0).with_params([W1, b1, W2, b2])
    X, y = np.array([[1.0, 2.0]]), np.array([[-1.0]])

    np.testing.assert_allclose(net.forward(X), [[-0.5610711546515199]], rtol=0, atol=1e-12)
    value, (dW1, db1, dW2, db2) = net.loss_and_grad(X, y)
    assert abs(value - 0.09632926563947497) < 1e-12
    dz = np.array([0.34519459535766434, 0.36867770568126523])
    np.testing.assert_allclose(dW1, [[dz[0], 2 * dz[0]], [dz[1], 2 * dz[1]]], rtol=0, atol=1e-12)
    np.testing.assert_allclose(db1, dz, rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        dW2, [[0.20283655025185807, -0.33428564349781414]], rtol=0, atol=1e-12
    )
    np.testing.assert_allclose(db2, [0.4389288453484801], rtol=0, atol=1e-12)
    # and the same numbers from the math module, to catch a slip in the literals above
    assert abs(value - 0.5 * (math.tanh(0.5) + 2 * math.tanh(-1.0) + 1.5) ** 2) < 1e-15


# ----------------------------------------------------------------------------- bad input


@pytest.fixture
def small():
    """A 3-4-2 tanh network with cross-entropy, 5 samples, valid labels."""
    net = mlp([3, 4, 2], activation="tanh", loss="cross_entropy", seed=0)
    X = np.random.default_rng(0).uniform(-1, 1, size=(5, 3))  # (5, 3)
    return net, X, np.array([0, 1, 1, 0, 1])


@pytest.mark.parametrize(
    ("X", "error", "message"),
    [
        (np.zeros((5, 4)), ValueError, r"Dense input must have shape \(N, 3\), got \(5, 4\)"),
        (np.zeros(3), ValueError, r"Dense input must have shape \(N, 3\), got \(3,\)"),
        (np.zeros((0, 3)), ValueError, "X must hold at least one sample, got 0"),
        (np.full((5, 3), "a"), TypeError, "X must hold real numbers, got dtype <U1"),
        (np.zeros((5, 3), dtype=object), TypeError, "X must hold real numbers, got dtype object"),
        (
            np.zeros((5, 3), dtype=complex),
            TypeError,
            "X must hold real numbers, got dtype complex128",
        ),
        (np.array([[np.nan, 0, 0]] * 5), ValueError, "X must be finite, got 5 NaN/inf"),
        (np.array([[0, -np.inf, 0]] * 5), ValueError, "X must be finite, got 5 NaN/inf"),
    ],
)
def test_bad_X_is_rejected_by_every_entry_point(small, X, error, message):
    net, _, y = small
    for call in (
        lambda: net.forward(X),
        lambda: net.loss(X, y),
        lambda: net.loss_and_grad(X, y),
        lambda: net.hvp(X, y, flatten(net.params)),
        lambda: net.hessian(X, y),
    ):
        with pytest.raises(error, match=message):
            call()


@pytest.mark.parametrize(
    ("y", "error", "message"),
    [
        (
            np.array([0, 1, 2, 0, 1]),
            ValueError,
            r"labels must lie in \[0, 2\), got values in \[0, 2\]",
        ),
        (np.array([0, -1, 1, 0, 1]), ValueError, r"labels must lie in \[0, 2\)"),
        (np.array([0, 1, 1, 0]), ValueError, r"y must have shape \(5,\) .* got \(4,\)"),
        (np.zeros((5, 2), dtype=int), ValueError, r"y must have shape \(5,\) .* got \(5, 2\)"),
        (np.array([0.0, 1.0, np.nan, 0.0, 1.0]), ValueError, "y must be finite"),
        (
            np.array(list("01101")),
            TypeError,
            "y must hold integer class labels for cross_entropy, got dtype <U1",
        ),
    ],
)
def test_bad_labels_are_rejected(small, y, error, message):
    net, X, _ = small
    with pytest.raises(error, match=message):
        net.loss_and_grad(X, y)


def test_bad_mse_targets_are_rejected():
    net = mlp([2, 3, 2], loss="mse", seed=0)
    X = np.zeros((4, 2))
    with pytest.raises(ValueError, match=r"y must have shape \(4, 2\) for mse, got \(4,\)"):
        net.loss(X, np.zeros(4))
    with pytest.raises(ValueError, match="y must be finite"):
        net.loss(X, np.full((4, 2), np.inf))


def test_unknown_names_and_bad_sizes_are_rejected():
    with pytest.raises(ValueError, match=r"activation must be one of .* got 'tahn'"):
        mlp([2, 3, 1], activation="tahn")
    with pytest.raises(ValueError, match=r"loss must be one of .* got 'l2'"):
        mlp([2, 3, 1], loss="l2")
    with pytest.raises(ValueError, match=r"loss must be one of .* got 'l2'"):
        Network([Dense(2, 1, seed=0)], loss="l2")
    with pytest.raises(ValueError, match=r"sizes\[1\] must be an integer >= 1, got 0"):
        mlp([2, 0, 1])
    with pytest.raises(ValueError, match=r"sizes\[0\] must be an integer >= 1, got -3"):
        mlp([-3, 1])
    with pytest.raises(TypeError, match=r"sizes\[0\] must be an integer >= 1, got 2.5"):
        mlp([2.5, 1])
    with pytest.raises(ValueError, match=r"sizes must list at least an input and an output"):
        mlp([3])
    with pytest.raises(ValueError, match="n_out must be an integer >= 1, got 0"):
        Dense(2, 0)
    with pytest.raises(ValueError, match="layers must be a non-empty list"):
        Network([])


def test_hessian_refuses_large_networks():
    net = mlp([60, 50, 1], seed=0)
    assert net.n_params > MAX_HESSIAN_PARAMS
    with pytest.raises(ValueError, match=rf"at most {MAX_HESSIAN_PARAMS} parameters, .* has 3101"):
        net.hessian(np.zeros((1, 60)), np.zeros((1, 1)))


def test_bad_directions_and_params_are_rejected(small):
    net, X, y = small
    with pytest.raises(ValueError, match=r"vector must have shape \(26,\), got \(21,\)"):
        net.hvp(X, y, np.zeros(21))
    with pytest.raises(ValueError, match=r"V entries must match params shapes: \(4, 3\), got"):
        net.hvp(X, y, [np.zeros((3, 4)), np.zeros(4), np.zeros((2, 4)), np.zeros(2)])
    with pytest.raises(ValueError, match="params must hold 4 arrays, got 3"):
        net.with_params(net.params[:3])
    with pytest.raises(ValueError, match=r"W must have shape \(4, 3\), got \(3, 4\)"):
        net.with_params([np.zeros((3, 4)), np.zeros(4), np.zeros((2, 4)), np.zeros(2)])


# ----------------------------------------------------------------------- copies, no mutation


def test_no_function_modifies_the_callers_arrays(small):
    net, X, y = small
    V = [np.ones_like(p) for p in net.params]
    params = [p + 1.0 for p in net.params]
    before = [a.copy() for a in (X, y, *V, *params, *net.params)]
    net.forward(X)
    net.loss_and_grad(X, y)
    net.hvp(X, y, V)
    net.hvp(X, y, flatten(V))
    net.hessian(X, y)
    gradcheck.check_network(net, X, y)
    other = net.with_params(params)
    after = [X, y, *V, *params, *net.params]
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)
    # the new network does not share memory with the arrays it was given
    assert not any(np.shares_memory(p, q) for p in params for q in other.params)


def test_copy_is_independent(small):
    net, X, y = small
    clone = net.copy()
    assert clone.loss(X, y) == net.loss(X, y)
    clone.layers[0].W[0, 0] += 1.0
    assert clone.loss(X, y) != net.loss(X, y)
    assert not any(np.shares_memory(p, q) for p in net.params for q in clone.params)


def test_with_params_flat_and_list_agree(small):
    net, X, y = small
    params = [np.full_like(p, 0.1 * (i + 1)) for i, p in enumerate(net.params)]
    from_list = net.with_params(params)
    from_flat = net.with_params(flatten(params))
    for p, q, r in zip(params, from_list.params, from_flat.params, strict=True):
        np.testing.assert_array_equal(p, q)
        np.testing.assert_array_equal(p, r)
    assert from_list.loss(X, y) == from_flat.loss(X, y) != net.loss(X, y)
    np.testing.assert_array_equal(flatten(net.with_params(flatten(net.params)).params),
                                  flatten(net.params))  # fmt: skip


# ---- heads: a reconstruction branch beside the trunk ---------------------------------------


def _autoencoder(seed, loss_weight=2.0, weight=0.7):
    """Encoder 4 -> 3 (tanh) -> 2 classes, and a decoder head 3 -> 4 (sigmoid) on the latent."""
    rng = np.random.default_rng(seed)
    encoder = Dense(4, 3, "tanh", seed=rng)
    head = Head(0, [Dense(3, 5, "swish", seed=rng), Dense(5, 4, "sigmoid", seed=rng)], weight)
    net = Network([encoder, Dense(3, 2, "identity", seed=rng)], "cross_entropy", [head],
                  loss_weight=loss_weight)
    net = net.with_params(flatten(net.params) + 0.3 * rng.standard_normal(net.n_params))
    X = rng.uniform(0, 1, size=(6, 4))
    return net, X, np.arange(6) % 2


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16), loss_weight=st.floats(0.1, 20), weight=st.floats(0, 3))
def test_a_network_with_a_head_has_exact_derivatives(seed, loss_weight, weight):
    net, X, y = _autoencoder(seed, loss_weight, weight)
    errors = gradcheck.check_network(net, X, y, seed=seed)
    assert max(errors.values()) < gradcheck.TOLERANCE, errors


def test_a_heads_loss_is_its_weighted_reconstruction_error():
    net, X, y = _autoencoder(0)
    trunk = Network(net.layers, "cross_entropy")
    H = net.reconstruct(X)
    expected = 2.0 * trunk.loss(X, y) + 0.7 * 0.5 * np.sum((H - X) ** 2) / X.shape[0]
    assert net.loss(X, y) == pytest.approx(expected, rel=1e-14)
    assert net.loss_and_grad(X, y)[0] == pytest.approx(expected, rel=1e-14)
    assert [g.shape for g in net.loss_and_grad(X, y)[1]] == [p.shape for p in net.params]


def test_a_network_with_a_head_saves_loads_and_copies(tmp_path):
    net, X, y = _autoencoder(1)
    save(net, tmp_path / "ae.npz")
    back = load(tmp_path / "ae.npz")
    assert back.loss(X, y) == net.loss(X, y)
    assert back.heads[0].at == 0 and back.heads[0].weight == 0.7 and back.loss_weight == 2.0
    np.testing.assert_array_equal(back.reconstruct(X), net.reconstruct(X))
    twin = net.copy()
    twin.heads[0].layers[0].W[0, 0] += 1.0
    assert net.loss(X, y) != twin.loss(X, y)  # the copy's head is its own


def test_a_layer_a_head_reads_cannot_be_grown():
    net, X, y = _autoencoder(2)
    with pytest.raises(ValueError, match="a head reads the output of layer 0"):
        split(net, 0, [0], np.ones((1, 5)) / np.sqrt(5), 0.1)


def test_bad_heads_are_refused():
    with pytest.raises(ValueError, match=r"heads\[0\].at must be a trunk layer index"):
        Network([Dense(2, 2)], "mse", [Head(3, [Dense(2, 2)])])
    with pytest.raises(TypeError, match=r"heads\[0\] must be a Head"):
        Network([Dense(2, 2)], "mse", ["decoder"])
    with pytest.raises(ValueError, match="weight must be a finite number >= 0"):
        Head(0, [Dense(2, 2)], weight=-1.0)
    net = Network([Dense(2, 3), Dense(3, 1)], "mse", [Head(0, [Dense(3, 5)])])
    with pytest.raises(ValueError, match=r"head 0 must output the input's shape \(4, 2\)"):
        net.loss(np.zeros((4, 2)), np.zeros((4, 1)))
