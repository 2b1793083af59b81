"""DepthwiseConv2d: its passes, its own splitting matrices, and the separable-block surgery
(docs/derivatives.md, docs/splitting.md "Separable blocks", docs/surgery.md)."""

import numpy as np
import pytest
from _nets import SMOOTH, layer_direction, loglog_slope, problems, unit_vector
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

import minisplit as ms
from minisplit import AvgPool2d, Conv2d, Dense, DepthwiseConv2d, GlobalAvgPool2d, gradcheck
from minisplit.growth.sizes import count_flops, unit_costs
from minisplit.testnets import depthwise, depthwise_bn, depthwise_bn_train

DEPTHWISE = ("depthwise", "depthwise_bn", "depthwise_bn_train")
EVAL_BUILDS = {"plain": depthwise, "bn": depthwise_bn}
PW, DW, PW2 = 0, 1, 2  # layer indices of the separable block


# ---------------------------------------------------------------------- the forward pass


def test_hand_worked_example():
    # one 2x2 filter per channel on a 1x2x3x3 input, stride 1, no padding, identity f:
    # channel 0: filter [[1, 0], [0, 1]] adds the main diagonal of each 2x2 window of
    #   [[0, 1, 2], [3, 4, 5], [6, 7, 8]]: [[0+4, 1+5], [3+7, 4+8]] = [[4, 6], [10, 12]], b = 0
    # channel 1: filter [[0, 0], [0, 2]] doubles the window's bottom-right entry of the
    #   same numbers plus 9: [[2*13, 2*14], [2*16, 2*17]] = [[26, 28], [32, 34]], b = 1
    dw = DepthwiseConv2d(2, kernel_size=2, activation="identity")
    dw.set_params([np.array([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 0.0], [0.0, 2.0]]]),
                   np.array([0.0, 1.0])])
    X = np.arange(18.0).reshape(1, 2, 3, 3)
    A, _ = dw.forward(X)
    np.testing.assert_array_equal(A[0, 0], [[4.0, 6.0], [10.0, 12.0]])
    np.testing.assert_array_equal(A[0, 1], [[27.0, 29.0], [33.0, 35.0]])


@pytest.mark.parametrize("stride, padding", [(1, 0), ((2, 1), (1, 0)), ((1, 2), (0, 1)), (2, 1)])
@pytest.mark.parametrize("batch_norm", [False, True])
def test_forward_is_conv2d_with_a_block_diagonal_filter(stride, padding, batch_norm):
    # Conv2d whose W[c, c'] is zero unless c = c' computes the same maps, in both BN modes
    rng = np.random.default_rng(0)
    dw = DepthwiseConv2d(3, (3, 2), stride, padding, "swish", batch_norm=batch_norm, seed=1)
    conv = Conv2d(3, 3, (3, 2), stride, padding, "swish", batch_norm=batch_norm)
    W = np.zeros(conv.W.shape)
    W[np.arange(3), np.arange(3)] = dw.W
    rest = [p + rng.uniform(0.5, 1.0, p.shape) for p in dw.params[1:]]  # b, or gamma, beta
    dw.set_params([dw.W, *rest])
    conv.set_params([W, *rest])
    if batch_norm:
        stats = [rng.uniform(-0.5, 0.5, 3), rng.uniform(0.5, 2.0, 3)]
        dw.set_buffers(stats)
        conv.set_buffers(stats)
    X = rng.uniform(-1, 1, (2, 3, 5, 6))
    for mode in ("train", "eval") if batch_norm else ("train",):
        np.testing.assert_allclose(dw.in_mode(mode).forward(X)[0],
                                   conv.in_mode(mode).forward(X)[0], rtol=1e-13, atol=1e-13)


@settings(max_examples=40, deadline=None)
@given(geometry=st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(1, 4),
                          st.integers(1, 4), st.integers(1, 3), st.integers(1, 3),
                          st.integers(0, 4), st.integers(0, 4), st.integers(1, 3)),
       seed=st.integers(0, 2**16))
@example(geometry=(3, 2, 3, 3, 1, 1, 3, 0, 2), seed=0)  # output rows that read only padding
@example(geometry=(6, 5, 3, 3, 2, 2, 1, 1, 2), seed=1)  # stride 2, an inside run and edges
def test_row_bands_are_the_convolution_its_adjoint_and_its_filter_gradient(geometry, seed):
    # the matrix form of docs/derivatives.md against the definition, one tap at a time:
    # Z[y, x] = sum_{a, b} F[a, b] Xp[y sh + a, x sw + b]; <Z, G> = <X, adjoint(G)>; and
    # dF[a, b] = sum_{y, x} G[y, x] Xp[y sh + a, x sw + b], the gradient of <Z, G>
    from minisplit.layers._rows import RowBands

    H, W, kh, kw, sh, sw, ph, pw, R = geometry
    assume(H + 2 * ph >= kh and W + 2 * pw >= kw)
    rng = np.random.default_rng(seed)
    X, F = rng.uniform(-3, 3, (H, W, R)), rng.uniform(-3, 3, (kh, kw))
    bands = RowBands.of(H, W, (kh, kw), (sh, sw), (ph, pw))
    Ho, Wo = bands.Ho, bands.Wo
    Xp = np.zeros((H + 2 * ph, W + 2 * pw, R))
    Xp[ph : ph + H, pw : pw + W] = X
    expected = np.zeros((Ho, Wo, R))
    for a in range(kh):
        for b in range(kw):
            expected += F[a, b] * Xp[a : a + sh * (Ho - 1) + 1 : sh, b : b + sw * (Wo - 1) + 1 : sw]
    B = bands.matrices(F[None])[0]
    Z = bands.convolve(B, X, np.full((Ho, Wo, R), np.nan))
    np.testing.assert_allclose(Z, expected, rtol=1e-12, atol=1e-12)
    G = rng.uniform(-3, 3, (Ho, Wo, R))
    adjoint = bands.adjoint(B, G, np.full((H, W, R), np.nan))
    np.testing.assert_allclose(np.vdot(X, adjoint), np.vdot(Z, G), rtol=1e-12, atol=1e-10)
    dF = np.array([[np.vdot(G, Xp[a : a + sh * (Ho - 1) + 1 : sh, b : b + sw * (Wo - 1) + 1 : sw])
                    for b in range(kw)] for a in range(kh)])
    np.testing.assert_allclose(bands.filter_gradient(G, X), dF, rtol=1e-12, atol=1e-10)


# ------------------------------------------------------------------ derivatives (table)


@settings(max_examples=15, deadline=None)
@given(problem=problems(DEPTHWISE))
def test_gradient_hvp_and_hessian_against_finite_differences(problem):
    errors = gradcheck.check_network(problem.net, problem.X, problem.y, seed=problem.seed,
                                     n_directions=2)
    assert max(errors.values()) < gradcheck.TOLERANCE, errors


# ------------------------------------------------ the depthwise layer as a neuron layer


def test_a_depthwise_layer_is_not_growable_on_its_own():
    net, X, y = depthwise()
    assert not ms.splitting.is_growable(net, DW)
    with pytest.raises(ValueError, match="carries the units of the layer before it"):
        ms.split(net, DW, [0], np.zeros((1, net.layers[DW].neuron_dim)), 0.0)
    # its splitting matrices exist all the same: S_c of channel c's filter and bias
    assert ms.splitting_matrices(net, X, y, DW).shape == (3, 7, 7)  # d = 3 * 2 + 1


def depthwise_pair(net, u, v, eps):
    """Copy pointwise unit u exactly (eps = 0: the depthwise channel and its input are
    duplicated), then move the two depthwise copies to theta +- eps v: the split of depthwise
    neuron u, which needs the second input channel the pointwise split made."""
    grown = ms.split(net, PW, [u], np.zeros((1, net.layers[PW].neuron_dim)), 0.0)
    n = net.layers[DW].n_neurons
    theta = grown.layers[DW].neuron_params()
    theta[u] += eps * v
    theta[n] -= eps * v
    grown.layers[DW] = grown.layers[DW].with_neuron_params(theta, parents=np.arange(n + 1))
    return grown


@pytest.mark.parametrize("kind", list(EVAL_BUILDS))
def test_depthwise_S_is_the_split_networks_hessian_and_gives_the_eps2_law(kind):
    net, X, y = EVAL_BUILDS[kind](seed=4)
    S = ms.splitting_matrices(net, X, y, DW)
    rng = np.random.default_rng(0)
    u, n = 1, net.layers[DW].n_neurons
    v = unit_vector(rng, S.shape[1])
    # second-derivative identity: delta = (+v on copy u, -v on copy n) gives delta^T H delta
    # = v^T S_u v on the split network at eps = 0
    split = depthwise_pair(net, u, v, 0.0)
    delta = layer_direction(split, DW, {u: v, n: -v})
    Hdelta = ms.flatten(split.hvp(X, y, delta))
    np.testing.assert_allclose(delta @ Hdelta, v @ S[u] @ v, rtol=1e-10, atol=1e-14)
    # the eps^2 law: Delta L / (eps^2 v^T S v / 2) -> 1 with an O(eps^2) gap (slope 4)
    eps = np.array([0.2, 0.1, 0.05, 0.025])
    L0 = net.loss(X, y)
    delta_loss = np.array([depthwise_pair(net, u, v, e).loss(X, y) - L0 for e in eps])
    predicted = eps**2 / 2 * (v @ S[u] @ v)
    assert abs(predicted[-1]) > 1e-8
    assert loglog_slope(eps, delta_loss - predicted) == pytest.approx(4.0, abs=0.3)
    assert abs(delta_loss[-1] / predicted[-1] - 1.0) < 1e-2


def test_depthwise_matrix_free_product_is_S_times_v():
    net, X, y = depthwise_bn(seed=2)
    bp = net.backprop(X, y)
    obj, dA, cache = net.layers[DW], bp.douts[DW], bp.caches[DW]
    S = obj.splitting_matrices(dA, cache)
    V = np.random.default_rng(1).standard_normal((obj.n_neurons, obj.neuron_dim))
    np.testing.assert_allclose(obj.splitting_matvec(dA, cache, V),
                               np.einsum("nij,nj->ni", S, V), rtol=1e-12, atol=1e-15)


# ------------------------------------------------ the separable block: the pointwise split


@pytest.mark.parametrize("build", [depthwise, depthwise_bn, depthwise_bn_train], ids=str)
def test_a_pointwise_split_at_eps_zero_copies_the_depthwise_channel(build):
    net, X, y = build(seed=3)
    u, n = 2, net.layers[PW].n_neurons
    v = np.random.default_rng(0).standard_normal((1, net.layers[PW].neuron_dim))
    grown = ms.split(net, PW, [u], v, 0.0)
    F = net.forward(X)
    np.testing.assert_allclose(grown.forward(X), F, rtol=0, atol=1e-13 * np.abs(F).max())
    old, new = net.layers[DW], grown.layers[DW]
    assert new.channels == n + 1
    for name in (*old.param_names, *old.buffer_names):  # W, b or gamma, beta, running stats
        np.testing.assert_array_equal(getattr(new, name)[:n], getattr(old, name))
        np.testing.assert_array_equal(getattr(new, name)[n], getattr(old, name)[u])
    # the next pointwise conv reads the two copies with half the weight each
    W_old, W_new = net.layers[PW2].W, grown.layers[PW2].W
    np.testing.assert_array_equal(W_new[:, u], W_old[:, u] / 2)
    np.testing.assert_array_equal(W_new[:, n], W_old[:, u] / 2)
    # at eps > 0 the function moves, and the input network is untouched
    assert np.abs(ms.split(net, PW, [u], v, 0.5).forward(X) - F).max() > 1e-8
    np.testing.assert_array_equal(net.forward(X), F)


def test_brand_new_removed_and_carried_units_follow_the_surgery():
    net, X, y = depthwise(seed=5)
    n, d = net.layers[PW].n_neurons, net.layers[PW].neuron_dim
    added = ms.add_neurons(net, PW, np.ones((1, d)), np.zeros((1, 3, 1, 1)))
    np.testing.assert_allclose(added.forward(X), net.forward(X), rtol=0, atol=1e-15)
    np.testing.assert_array_equal(added.layers[DW].W[n], [[0, 0], [0, 1], [0, 0]])  # centre tap
    assert added.layers[DW].b[n] == 0.0
    small = ms.remove_units(net, PW, [0])
    np.testing.assert_array_equal(small.layers[DW].W, net.layers[DW].W[1:])
    with pytest.raises(ValueError, match="in between, whose filters change them"):
        ms.remove_units(net, PW, [0], fold_constant=True)
    # optimiser state shaped like the parameters: the copy takes its parent's rows
    state = [np.full(p.shape, float(i + 1)) for i, p in enumerate(net.params)]
    carried = ms.carry_state(net, PW, state, np.array([1, -1]))
    dw_W = carried[2]  # after W, b of the pointwise layer
    np.testing.assert_array_equal(dw_W[:n], state[2])
    np.testing.assert_array_equal(dw_W[n], state[2][1])
    np.testing.assert_array_equal(dw_W[n + 1], 0.0)  # a brand-new unit's state is zero


def test_sizes_count_the_depthwise_layer():
    net, X, y = depthwise()
    # 5x6 input: 1x1 pointwise 2 -> 3 on 30 positions = 2 * 3 * 30 = 180;
    # depthwise 3 channels * 3x2 taps on 5x3 maps = 3 * 6 * 15 = 270; pointwise 3 -> 3 on
    # 5x3 = 9 * 15 = 135; Dense 3 -> 2 = 6
    assert count_flops(net, X) == 180 + 270 + 135 + 6
    # one more pointwise unit: its 2 weights + b, the depthwise filter 6 + b, the reader's 3
    assert unit_costs(net, X, [PW], "params") == {PW: 3 + 7 + 3}
    # flops: 2 * 30 (its own) + 6 * 15 (depthwise channel) + 3 * 15 (reader)
    assert unit_costs(net, X, [PW], "flops") == {PW: 60 + 90 + 45}


# ----------------------------------- S of a pointwise neuron read through a depthwise layer


@pytest.mark.parametrize("kind", list(EVAL_BUILDS))
@pytest.mark.parametrize("activation", SMOOTH)
def test_pointwise_S_holds_the_depthwise_curvature_and_is_the_split_hessian(kind, activation):
    net, X, y = EVAL_BUILDS[kind](activation=activation, seed=6)
    S = ms.splitting_matrices(net, X, y, PW)
    bp = net.backprop(X, y)
    own = net.layers[PW].splitting_matrices(bp.douts[PW], bp.caches[PW])
    # the depthwise activation's curvature is a real part of S: a reader-is-linear S misses it
    assert np.abs(S - own).max() > 1e-3 * np.abs(S).max()
    rng = np.random.default_rng(1)
    u, n = 0, net.layers[PW].n_neurons
    v = unit_vector(rng, S.shape[1])
    split = ms.split(net, PW, [u], np.zeros((1, S.shape[1])), 0.0)
    delta = layer_direction(split, PW, {u: v, n: -v})
    Hdelta = ms.flatten(split.hvp(X, y, delta))
    np.testing.assert_allclose(delta @ Hdelta, v @ S[u] @ v, rtol=1e-10, atol=1e-14)
    values, _ = ms.splitting_indices(net, X, y, PW, solver="matrix_free", seed=0)
    np.testing.assert_allclose(values, np.linalg.eigvalsh(S)[:, 0], rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("batch_norm", [False, True])
def test_S_through_two_depthwise_layers_and_a_pool_is_the_split_hessian(batch_norm):
    # pointwise -> depthwise -> pool -> depthwise -> pointwise: each depthwise activation adds
    # its term, the pool carries the Jacobian maps linearly; and the first depthwise layer's
    # own S holds the second one's term
    rng = np.random.default_rng(7)
    layers = [Conv2d(2, 2, 1, activation="tanh", batch_norm=batch_norm, seed=1),
              DepthwiseConv2d(2, 3, padding=1, activation="swish", batch_norm=batch_norm,
                              seed=2),
              AvgPool2d(2),
              DepthwiseConv2d(2, 2, padding=1, activation="sigmoid", batch_norm=batch_norm,
                              seed=3),
              Conv2d(2, 2, 1, activation="tanh", seed=4), GlobalAvgPool2d(),
              Dense(2, 2, "identity", seed=5)]
    net = ms.Network(layers, "mse", mode="eval")
    net = net.with_params(ms.flatten(net.params) + 0.3 * rng.standard_normal(net.n_params))
    X, y = rng.uniform(-1, 1, (3, 2, 4, 4)), rng.uniform(-1, 1, (3, 2))
    assert ms.splitting.carriers(net, PW) == [1, 3]
    S = ms.splitting_matrices(net, X, y, PW)
    v = unit_vector(rng, S.shape[1])
    split = ms.split(net, PW, [1], np.zeros((1, S.shape[1])), 0.0)
    delta = layer_direction(split, PW, {1: v, 2: -v})
    np.testing.assert_allclose(delta @ ms.flatten(split.hvp(X, y, delta)), v @ S[1] @ v,
                               rtol=1e-10, atol=1e-14)
    S_dw = ms.splitting_matrices(net, X, y, DW)
    w = unit_vector(rng, S_dw.shape[1])
    pair = depthwise_pair(net, 1, w, 0.0)
    delta = layer_direction(pair, DW, {1: w, 2: -w})
    np.testing.assert_allclose(delta @ ms.flatten(pair.hvp(X, y, delta)), w @ S_dw[1] @ w,
                               rtol=1e-10, atol=1e-14)


def test_train_mode_batch_norm_is_refused_for_the_splitting_matrices():
    net, X, y = depthwise_bn_train()
    with pytest.raises(ValueError, match="eval mode"):
        ms.splitting_matrices(net, X, y, PW)


# --------------------------------------------------------------------- files and errors


def test_save_and_load_round_trip(tmp_path):
    net, X, y = depthwise_bn()
    ms.save(net, tmp_path / "dw.npz")
    loaded = ms.load(tmp_path / "dw.npz")
    assert isinstance(loaded.layers[DW], DepthwiseConv2d)
    np.testing.assert_array_equal(loaded.forward(X), net.forward(X))


@pytest.mark.parametrize("kwargs, error, message", [
    ({"channels": 0, "kernel_size": 3}, ValueError, "channels must be an integer >= 1, got 0"),
    ({"channels": 2, "kernel_size": (3, 0)}, ValueError, "kernel_size must be an integer >= 1"),
    ({"channels": 2, "kernel_size": 3, "stride": 1.5}, TypeError, "stride must be an integer"),
    ({"channels": 2, "kernel_size": 3, "padding": -1}, ValueError, "padding must be an integer"),
])
def test_constructor_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        DepthwiseConv2d(**kwargs)


def test_input_errors():
    dw = DepthwiseConv2d(2, kernel_size=(3, 2))
    with pytest.raises(ValueError, match=r"must have shape \(N, 2, H, W\), got \(1, 3, 4, 4\)"):
        dw.check_input(np.zeros((1, 3, 4, 4)))
    with pytest.raises(ValueError, match="kernel 3x2 does not fit the 2x4 input"):
        dw.check_input(np.zeros((1, 2, 2, 4)))


def test_carried_terms_in_chunks_of_samples_sum_to_the_whole_batch(monkeypatch):
    # S is a sum over samples: the chunks, rows of the one pass, add up to the whole batch
    from minisplit.splitting import matrices

    net = ms.dscnn(width=[3, 4], n_blocks=1, input_shape=(1, 9, 6), seed=0)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((11, 1, 9, 6)), rng.integers(0, 12, size=11)
    net = ms.set_running_statistics(net, X).set_mode("eval")
    whole = ms.splitting_matrices(net, X, y, 0)
    assert matrices._carried_chunk(net, net.backprop(X, y), 0) >= len(X)  # one chunk here
    for chunk in (1, 4, 10):  # 11 samples: chunks that do not divide N
        monkeypatch.setattr(matrices, "_carried_chunk", lambda net, bp, layer, c=chunk: c)
        parts = ms.splitting_matrices(net, X, y, 0)
        assert np.allclose(parts, whole, rtol=1e-12, atol=1e-14 * np.max(np.abs(whole)))


def test_the_chunk_follows_the_memory_cap(monkeypatch):
    # per sample: 6 copies of one unit's maps (H W d) and 3 arrays of all n units' (n H W)
    from minisplit.splitting import matrices

    net = ms.dscnn(width=[3, 4], n_blocks=1, input_shape=(1, 9, 6), seed=0)
    X = np.random.default_rng(0).standard_normal((4, 1, 9, 6))
    net = ms.set_running_statistics(net, X).set_mode("eval")
    bp = net.backprop(X, np.zeros(4, dtype=int))
    n, H, W = bp.douts[0].shape[1:]
    per_sample = 8 * H * W * (6 * net.layers[0].neuron_dim + 3 * n)
    monkeypatch.setattr(matrices, "CARRIED_BYTES", 3 * per_sample)
    assert matrices._carried_chunk(net, bp, 0) == 3
    monkeypatch.setattr(matrices, "CARRIED_BYTES", 1)
    assert matrices._carried_chunk(net, bp, 0) == 1


def test_indices_of_several_layers_equal_one_call_per_layer():
    net = ms.dscnn(width=[3, 4], n_blocks=1, input_shape=(1, 9, 6), seed=1)
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((6, 1, 9, 6)), rng.integers(0, 12, size=6)
    net = ms.set_running_statistics(net, X).set_mode("eval")
    layers = ms.growth.growable_layers(net)
    for solver in ("dense", "matrix_free"):
        together = ms.splitting_indices_of_layers(net, X, y, layers, solver=solver)
        for layer in layers:
            alone = ms.splitting_indices(net, X, y, layer, solver=solver)
            assert np.array_equal(together[layer][0], alone[0])
            assert np.array_equal(together[layer][1], alone[1])
    with pytest.raises(ValueError, match="distinct"):
        ms.splitting_indices_of_layers(net, X, y, [0, 0])


def _chunk_of(matrices, net, bp, layer, samples):
    """The CARRIED_BYTES that gives chunks of ``samples`` samples at ``layer``."""
    return samples * matrices._carried_bytes(net, bp, layer)


@pytest.mark.parametrize("layer", [0, 2])
def test_chunks_within_the_cap_equal_the_whole_batch_for_both_solvers(monkeypatch, layer):
    # 11 samples in chunks of 3 (the last one 2), each its rows of the whole batch's caches
    # and gradients; the matrix-free product forms the carried part alike
    from minisplit.splitting import matrices

    net = ms.dscnn(width=[3, 4, 2], n_blocks=2, input_shape=(1, 9, 6), seed=0)
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((11, 1, 9, 6)), rng.integers(0, 12, size=11)
    net = ms.set_running_statistics(net, X).set_mode("eval")
    bp = net.backprop(X, y)
    whole = ms.splitting_matrices(net, X, y, layer)
    V = rng.standard_normal(whole.shape[:2])
    monkeypatch.setattr(matrices, "CARRIED_BYTES", _chunk_of(matrices, net, bp, layer, 3))
    assert matrices._carried_chunk(net, bp, layer) == 3
    parts = ms.splitting_matrices(net, X, y, layer)
    scale = np.max(np.abs(whole))
    assert np.allclose(parts, whole, rtol=1e-12, atol=1e-13 * scale)
    carried = matrices._carried_matrices(net, bp, [layer])
    product = matrices._layer_operator(net, bp, layer, None, carried)(V)
    assert np.allclose(product, np.einsum("cij,cj->ci", whole, V), rtol=1e-12,
                       atol=1e-13 * scale * np.max(np.abs(V)))


def test_chunks_take_rows_of_the_whole_batch_so_train_mode_batch_norm_stays_exact(monkeypatch):
    # a train-mode BN before the neuron couples the samples through the batch statistics:
    # S of the batch is not the mean of the samples' own S. The chunks slice the one pass's
    # caches and gradients, so their sum is exact there too
    from minisplit.layers import Conv2d, DepthwiseConv2d, GlobalAvgPool2d
    from minisplit.splitting import matrices

    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((7, 1, 5, 4)), rng.integers(0, 3, size=7)
    for batch_norm in (False, True):
        layers = [Conv2d(1, 2, 3, padding=1, activation="softplus", batch_norm=batch_norm,
                         seed=1),
                  Conv2d(2, 3, 1, activation="tanh", seed=2),
                  DepthwiseConv2d(3, 3, padding=1, activation="softplus", seed=3),
                  Conv2d(3, 4, 1, activation="softplus", seed=4),
                  GlobalAvgPool2d(), ms.layers.Dense(4, 3, "identity", seed=5)]
        net = ms.Network(layers, "cross_entropy")  # train mode
        whole = ms.splitting_matrices(net, X, y, 1)
        scale = np.max(np.abs(whole))
        alone = sum(ms.splitting_matrices(net, X[i : i + 1], y[i : i + 1], 1)
                    for i in range(len(X))) / len(X)
        assert np.allclose(alone, whole, rtol=1e-12, atol=1e-13 * scale) is not batch_norm
        monkeypatch.setattr(matrices, "CARRIED_BYTES", 1)  # chunks of one sample
        assert matrices._carried_chunk(net, net.backprop(X, y), 1) == 1
        parts = ms.splitting_matrices(net, X, y, 1)
        monkeypatch.undo()
        assert np.allclose(parts, whole, rtol=1e-12, atol=1e-13 * scale)


def test_the_carried_part_stays_within_the_cap_whatever_the_batch(monkeypatch):
    import tracemalloc

    from minisplit.splitting import matrices

    net = ms.dscnn(width=[3, 4], n_blocks=1, input_shape=(1, 9, 6), seed=0)
    X = np.random.default_rng(4).standard_normal((600, 1, 9, 6))
    net = ms.set_running_statistics(net, X).set_mode("eval")
    bp = net.backprop(X, np.zeros(600, dtype=int))
    cap = _chunk_of(matrices, net, bp, 0, 20)  # 30 chunks; one map array of the batch: 6 cap
    monkeypatch.setattr(matrices, "CARRIED_BYTES", cap)
    tracemalloc.start()
    matrices._carried_matrices(net, bp, [0])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # the chunk's maps and working copies (the cap), its forward caches (less than the maps)
    assert peak < 2 * cap
