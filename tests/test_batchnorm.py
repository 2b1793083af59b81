"""Batch normalisation inside Dense and Conv2d: both modes, the fold into S, surgery, state.

The derivative suites (gradient, R-operator, dense Hessian, splitting, surgery) run over the
BN architectures of :mod:`minisplit.testnets` (``dense_bn``, ``conv_bn`` in eval mode,
``dense_bn_train``, ``conv_bn_train`` in train mode); this file checks what is particular to
BN: the statistics, the mode switch, the folded splitting matrix, what a surgery copies, the
running statistics and their round trips.
"""

import numpy as np
import pytest
from _nets import problems, unit_vector
from hypothesis import given, settings

import minisplit as ms
from minisplit import Conv2d, Dense, Flatten, Network, gradcheck
from minisplit.growth import GrowthConfig, grow
from minisplit.growth import checkpoint as ckpt
from minisplit.growth.strategies import check_gradmax, net2net_widen
from minisplit.interop import to_state_dict
from minisplit.layers import _batchnorm as batchnorm
from minisplit.layers.base import BatchNormMixin
from minisplit.testnets import ARCHITECTURES, conv_bn, conv_bn_train, dense_bn, dense_bn_train

EPS = np.finfo(np.float64).eps
BN_ARCHS = ["dense_bn", "dense_bn_train", "conv_bn", "conv_bn_train"]
TANH = {"activation": "tanh"}


def has_bn(obj):
    return isinstance(obj, BatchNormMixin) and obj.batch_norm


def bn_layers(net):
    return [i for i, obj in enumerate(net.layers) if has_bn(obj)]


def assert_same_state(a, b, rows_a, rows_b):
    """gamma, beta and the running statistics of rows_a of layer a equal rows_b of b."""
    for name in ("gamma", "beta", "running_mean", "running_var"):
        np.testing.assert_array_equal(getattr(a, name)[rows_a], getattr(b, name)[rows_b])


# ------------------------------------------------------------------ a hand-worked example


def test_hand_worked_dense_batch_norm():
    # one neuron, W = [[1]], gamma = 2, beta = 1, eps = 0 would divide by the variance: use
    # the default 1e-5 and compare to the formula. X = [0, 2, 4]: mean 2, biased variance
    # (4 + 0 + 4) / 3 = 8/3, so train mode gives Zh = (x - 2) / sqrt(8/3 + 1e-5).
    layer = Dense(1, 1, "identity", batch_norm=True, seed=0)
    layer.set_params([[[1.0]], [2.0], [1.0]])
    layer.set_buffers([[1.0], [4.0]])  # running mean 1, running variance 4
    X = np.array([[0.0], [2.0], [4.0]])
    s = 1.0 / np.sqrt(8.0 / 3.0 + 1e-5)
    A, _ = layer.forward(X)  # a layer on its own computes in train mode
    np.testing.assert_allclose(A[:, 0], 2.0 * (X[:, 0] - 2.0) * s + 1.0, rtol=1e-15)
    # eval mode: (x - 1) / sqrt(4 + 1e-5), times 2, plus 1 -> about -0, 1, 2
    A, _ = layer.in_mode("eval").forward(X)
    np.testing.assert_allclose(A[:, 0], 2.0 * (X[:, 0] - 1.0) / np.sqrt(4.0 + 1e-5) + 1.0,
                               rtol=1e-15)
    assert layer.mode == "train"  # in_mode gave a twin, the layer is unchanged


def test_conv_statistics_are_over_samples_and_positions():
    net, X, _ = conv_bn_train(**TANH)
    conv = net.layers[0]
    _, cache = conv.forward(X)
    cols = conv._patches(X)  # (N, P, K)
    Z = cols @ conv.W.reshape(conv.c_out, -1).T  # (N, P, c_out), pre-BN
    bn = cache[-1]
    np.testing.assert_allclose(bn.mean, Z.mean(axis=(0, 1)), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(bn.var, Z.var(axis=(0, 1)), rtol=1e-13)  # biased (ddof 0)
    # normalised per channel: mean 0, variance var / (var + eps) over samples and positions
    Zh = bn.Zh.reshape(Z.shape)
    np.testing.assert_allclose(Zh.mean(axis=(0, 1)), 0.0, atol=1e-14)
    np.testing.assert_allclose(Zh.var(axis=(0, 1)), bn.var / (bn.var + conv.bn_eps), rtol=1e-12)


def test_train_mode_couples_the_samples_and_eval_mode_does_not():
    # the output for sample 0 changes with sample 1 only in train mode
    for mode, coupled in (("train", True), ("eval", False)):
        net, X, _ = dense_bn(**TANH)
        net.set_mode(mode)
        moved = X.copy()
        moved[1] += 1.0
        change = np.abs(net.forward(moved)[0] - net.forward(X)[0]).max()
        assert (change > 1e-3) == coupled


@settings(max_examples=12, deadline=None)
@given(p=problems(BN_ARCHS))
def test_gradient_hvp_and_hessian_against_finite_differences(p):
    # both modes (the train-mode R-operator couples the samples through mu and var): the
    # gradient against central differences of the loss, H v against central differences
    # of the exact gradient, and the dense Hessian symmetric and equal to the products
    errors = gradcheck.check_network(p.net, p.X, p.y, seed=p.seed % 1000, n_directions=2,
                                     hessian=p.net.n_params <= 200)
    assert max(errors.values()) < gradcheck.TOLERANCE, errors


@pytest.mark.parametrize("term", range(3))
def test_each_coupling_term_of_the_train_mode_r_backward_is_needed(monkeypatch, term):
    # R_dZ = rho dZ + s [P(R_dZh) - R_Zh mean(Zh dZh) - Zh mean(R_Zh dZh)]: scale one of the
    # three coupling terms by 0 and the R-operator no longer matches the finite differences
    def without(dY, R_dY, R_Z, R_Zh, gamma, v_gamma, cache):
        Zh, s = cache.Zh, cache.s
        dZ, R_dZ, R_dgamma, R_dbeta = exact(dY, R_dY, R_Z, R_Zh, gamma, v_gamma, cache)
        dZh = gamma * dY
        terms = [-s * (Zh * R_Z).mean(axis=0) * dZ, -s * R_Zh * (Zh * dZh).mean(axis=0),
                 -s * Zh * (R_Zh * dZh).mean(axis=0)]
        return dZ, R_dZ - terms[term], R_dgamma, R_dbeta

    net, X, y = dense_bn_train(**TANH)
    assert gradcheck.check_network(net, X, y, hessian=False)["hvp"] < gradcheck.TOLERANCE
    exact = batchnorm.r_backward
    monkeypatch.setattr(batchnorm, "r_backward", without)
    assert gradcheck.check_network(net, X, y, hessian=False)["hvp"] > 1e-2


@pytest.mark.parametrize("build", [dense_bn_train, conv_bn_train])
def test_train_mode_derivatives_at_the_default_eps(build):
    # the table's train-mode networks use bn_eps = 0.1; the layers' default is 1e-5
    net, X, y = build(**TANH, loss="cross_entropy")
    layers = [type(obj).from_config({**obj.config(), "bn_eps": 1e-5}, obj.params, obj.buffers)
              if has_bn(obj) else obj for obj in net.layers]
    errors = gradcheck.check_network(net.with_layers(layers), X, y, seed=0)
    assert max(errors.values()) < gradcheck.TOLERANCE, errors


# ------------------------------------------------------------------ parameters and the mode


def test_parameters_and_buffers_follow_the_configuration():
    plain, with_bn = Dense(3, 2, seed=0), Dense(3, 2, batch_norm=True, seed=0)
    assert plain.param_names == ("W", "b") and plain.buffer_names == ()
    assert with_bn.param_names == ("W", "gamma", "beta")
    assert with_bn.buffer_names == ("running_mean", "running_var")
    np.testing.assert_array_equal(with_bn.gamma, 1.0)
    np.testing.assert_array_equal(with_bn.beta, 0.0)
    np.testing.assert_array_equal(with_bn.running_mean, 0.0)
    np.testing.assert_array_equal(with_bn.running_var, 1.0)
    np.testing.assert_array_equal(with_bn.W, plain.W)  # the same draw of W
    assert with_bn.config() == {"n_in": 3, "n_out": 2, "activation": "tanh",
                                "batch_norm": True, "bn_eps": 1e-5}
    assert "batch_norm" not in plain.config()  # configs without BN are as before
    assert Dense.array_names(with_bn.config()) == (with_bn.param_names, with_bn.buffer_names)
    # an old config, without the keys, builds the layer without BN
    old = Dense.from_config({"n_in": 3, "n_out": 2, "activation": "tanh"}, plain.params)
    assert not old.batch_norm
    conv = Conv2d(2, 3, 3, batch_norm=True, seed=0)
    assert conv.param_names == ("W", "gamma", "beta") and conv.neuron_dim == 18
    assert conv.params_per_neuron() == 20  # 18 weights, gamma and beta


def test_refusals_name_the_problem():
    with pytest.raises(TypeError, match="batch_norm must be True or False, got 1"):
        Dense(2, 2, batch_norm=1)
    with pytest.raises(ValueError, match="bn_eps must be"):
        Conv2d(1, 1, 1, batch_norm=True, bn_eps=0.0)
    net, X, y = dense_bn(**TANH)
    with pytest.raises(ValueError, match="mode must be one of 'train', 'eval', got 'test'"):
        net.set_mode("test")
    with pytest.raises(TypeError, match="mode must be one of"):
        Network(net.layers, mode=None)
    with pytest.raises(ValueError, match="eval mode"):
        ms.splitting_indices(net.copy().set_mode("train"), X, y, 0)
    with pytest.raises(ValueError, match=r"parents must be \(4,\) indices in \[-1, 3\)"):
        net.layers[0].with_neuron_params(np.zeros((4, 2)), parents=[0, 1, 2, 3])
    with pytest.raises(ValueError, match="gradmax grows Dense layers without batch norm"):
        check_gradmax(net, 0)
    with pytest.raises(ValueError, match="net.layers.0. must be what layers.0."):
        to_state_dict(net, [("linear", "a", "tanh"), ("linear", "b", "tanh"),
                            ("linear", "c", None)])


def test_the_mode_travels_with_copies_and_files(tmp_path):
    net, X, _ = dense_bn(**TANH)
    assert net.mode == "eval" and net.has_batch_norm
    assert net.copy().mode == "eval"
    assert net.with_params(net.params).mode == "eval"
    assert ms.split(net, 0, [0], np.zeros((1, 2)), 0.0).mode == "eval"
    ms.save(net, tmp_path / "net.npz")
    loaded = ms.load(tmp_path / "net.npz")
    assert loaded.mode == "eval"
    np.testing.assert_array_equal(loaded.forward(X), net.forward(X))
    assert net.set_mode("train") is net and net.mode == "train"
    assert "mode=" not in repr(net) and "mode='eval'" in repr(net.set_mode("eval"))
    # a network without batch norm computes the same in both modes
    plain, X, _ = ARCHITECTURES["conv_pool"].build(**TANH)
    np.testing.assert_array_equal(plain.copy().set_mode("eval").forward(X), plain.forward(X))
    assert not plain.has_batch_norm


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_save_load_round_trip_is_bit_exact(tmp_path, name):
    arch = ARCHITECTURES[name]
    net, X, _ = arch.build(activation="tanh" if arch.activations else None)
    ms.save(net, tmp_path / "net.npz")
    loaded = ms.load(tmp_path / "net.npz")
    assert loaded.mode == net.mode
    for a, b in zip(net.all_layers, loaded.all_layers, strict=True):
        assert a.config() == b.config()
        for p, q in zip([*a.params, *a.buffers], [*b.params, *b.buffers], strict=True):
            np.testing.assert_array_equal(p, q)
    np.testing.assert_array_equal(loaded.forward(X), net.forward(X))


# ------------------------------------------------------------------ splitting: the fold


def folded(obj, bn_eps=None):
    """The layer without BN computing what ``obj`` computes in eval mode: W' = c W,
    b' = beta - c mu with c = gamma / sqrt(running_var + eps)."""
    c = obj.gamma / np.sqrt(obj.running_var + obj.bn_eps)  # (n,)
    config = {k: v for k, v in obj.config().items() if k not in ("batch_norm", "bn_eps")}
    W = obj.W * c.reshape((-1,) + (1,) * (obj.W.ndim - 1))
    return type(obj).from_config(config, [W, obj.beta - c * obj.running_mean]), c


@pytest.mark.parametrize("build, layer", [(dense_bn, 0), (dense_bn, 1), (conv_bn, 0),
                                          (conv_bn, 1)])
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_S_is_c_squared_times_the_folded_networks_S(build, layer, loss):
    net, X, y = build(activation="softplus", loss=loss)
    plain, c = folded(net.layers[layer])
    layers = list(net.layers)
    layers[layer] = plain
    fold = net.with_layers(layers)
    np.testing.assert_allclose(fold.forward(X), net.forward(X), rtol=1e-12, atol=1e-13)
    S = ms.splitting_matrices(net, X, y, layer)  # (n, d, d), d = fan-in: no bias coordinate
    S_fold = ms.splitting_matrices(fold, X, y, layer)  # (n, d + 1, d + 1), bias last
    d = S.shape[1]
    assert S_fold.shape[1] == d + 1
    expected = c[:, None, None] ** 2 * S_fold[:, :d, :d]
    scale = np.abs(expected).max()
    assert scale > 1e-6  # not a trivial zero
    np.testing.assert_allclose(S, expected, rtol=0, atol=1e-12 * scale)
    # the matrix-free product agrees with the formed matrices
    obj, bp = net.layers[layer], net.backprop(X, y)
    V = np.random.default_rng(0).standard_normal((obj.n_neurons, d))
    np.testing.assert_allclose(obj.splitting_matvec(bp.douts[layer], bp.caches[layer], V),
                               np.einsum("nij,nj->ni", S, V), rtol=1e-12, atol=1e-14 * scale)


@pytest.mark.parametrize("build, layer", [(dense_bn, 1), (conv_bn, 0)])
def test_eps_squared_law_for_a_bn_neuron(build, layer):
    # Delta L(eps) = (eps^2 / 2) lambda_min + O(eps^4) for the split along v_min, in eval mode
    net, X, y = build(activation="tanh", loss="cross_entropy", seed=4)
    values, vectors = ms.splitting_indices(net, X, y, layer)
    i = int(np.argmin(values))
    L0 = net.loss(X, y)
    eps = np.array([0.2, 0.1, 0.05, 0.025])
    delta = np.array([ms.split(net, layer, [i], vectors[i][None], e).loss(X, y) - L0 for e in eps])
    ratio = delta / (eps**2 * values[i] / 2)
    gap = np.abs(ratio - 1.0)
    assert np.all(np.diff(gap) < 0) and gap[-1] < 1e-2, ratio
    remainder = delta - eps**2 * values[i] / 2
    slope = np.polyfit(np.log(eps), np.log(np.abs(remainder)), 1)[0]
    assert slope == pytest.approx(4.0, abs=0.3)


# ------------------------------------------------------------------ surgery copies the state


@pytest.mark.parametrize("name", BN_ARCHS)
def test_a_split_copies_gamma_beta_and_the_statistics_and_keeps_the_function(name):
    net, X, y = ARCHITECTURES[name].build(**TANH)
    F = net.forward(X)
    for layer in bn_layers(net):
        obj = net.layers[layer]
        n = obj.n_neurons
        neurons = np.array([0, n - 1]) if n > 1 else np.array([0])
        directions = np.random.default_rng(1).standard_normal((neurons.size, obj.neuron_dim))
        twin = ms.split(net, layer, neurons, directions, 0.0)
        np.testing.assert_allclose(twin.forward(X), F, rtol=0, atol=64 * EPS * np.abs(F).max())
        new = twin.layers[layer]
        assert_same_state(new, obj, np.arange(n), np.arange(n))
        assert_same_state(new, obj, np.arange(n, n + neurons.size), neurons)
        # a signed split and a Net2Net widening too
        signed = ms.signed_split(net, layer, neurons, directions, 0.0)
        np.testing.assert_allclose(signed.forward(X), F, rtol=0, atol=256 * EPS * np.abs(F).max())
        assert_same_state(signed.layers[layer], obj, np.arange(n, n + neurons.size), neurons)
        widened = net2net_widen(net, layer, neurons, 0.0, np.random.default_rng(0))
        np.testing.assert_allclose(widened.forward(X), F, rtol=0,
                                   atol=64 * EPS * np.abs(F).max())


def test_new_neurons_get_the_defaults_and_removal_keeps_the_kept_rows():
    net, X, _ = dense_bn(**TANH)
    obj = net.layers[0]
    grown = ms.add_neurons(net, 0, np.ones((2, 2)), np.zeros((2, 4, 1)))
    new = grown.layers[0]
    np.testing.assert_array_equal(new.gamma[3:], 1.0)
    np.testing.assert_array_equal(new.beta[3:], 0.0)
    np.testing.assert_array_equal(new.running_mean[3:], 0.0)
    np.testing.assert_array_equal(new.running_var[3:], 1.0)
    assert_same_state(new, obj, np.arange(3), np.arange(3))
    small = ms.remove_units(net, 0, [1])
    assert_same_state(small.layers[0], obj, np.arange(2), np.array([0, 2]))


def test_carry_state_copies_parents_and_zeros_new_neurons():
    net, _, _ = dense_bn(**TANH)
    arrays = [np.random.default_rng(i).standard_normal(p.shape) for i, p in enumerate(net.params)]
    carried = ms.carry_state(net, 0, arrays, np.array([2, -1]))
    gamma, beta = carried[1], carried[2]  # layer 0: W, gamma, beta
    np.testing.assert_array_equal(gamma, np.concatenate([arrays[1], [arrays[1][2], 0.0]]))
    np.testing.assert_array_equal(beta, np.concatenate([arrays[2], [arrays[2][2], 0.0]]))
    np.testing.assert_array_equal(carried[0][4], 0.0)  # the new neuron's W row


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_a_silent_bn_unit_folds_into_the_reader(mode):
    # gamma_u = 0: the unit outputs tanh(beta_u) in both modes, folded into the Dense reader's
    # bias; layer 1 of dense_bn is read by a Dense with a bias
    net, X, _ = dense_bn(**TANH)
    net.set_mode(mode)
    layer = net.layers[1]
    gamma = layer.gamma.copy()
    gamma[[0, 2]] = 0.0
    layers = list(net.layers)
    layers[1] = Dense.from_config(layer.config(), [layer.W, gamma, layer.beta], layer.buffers)
    silent = net.with_layers(layers)
    F = silent.forward(X)
    folded_net = ms.remove_units(silent, 1, [0, 2], fold_constant=True)
    np.testing.assert_allclose(folded_net.forward(X), F, rtol=0, atol=64 * EPS * np.abs(F).max())
    assert np.abs(ms.remove_units(silent, 1, [0, 2]).forward(X) - F).max() > 1e-6


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_a_zero_weight_unit_folds_into_a_bn_reader(mode):
    # layer 0's unit 1 with zero weights is a constant; its reader (layer 1) is batch-normalised
    # and has no bias: the constant goes into its running mean (train mode: the batch mean)
    net, X, _ = dense_bn(**TANH)
    net.set_mode(mode)
    theta, out_weights = ms.splitting.grown_parts(net, 0)
    theta[1] = 0.0
    flat = ms.splitting.regrow(net, 0, theta, out_weights)
    F = flat.forward(X)
    folded_net = ms.remove_units(flat, 0, [1], fold_constant=True)
    np.testing.assert_allclose(folded_net.forward(X), F, rtol=0, atol=256 * EPS * np.abs(F).max())
    assert not np.array_equal(folded_net.layers[1].running_mean, flat.layers[1].running_mean)


# ------------------------------------------------------------------ running statistics


@pytest.mark.parametrize("name", BN_ARCHS)
def test_running_statistics_make_both_modes_agree(name):
    net, X, y = ARCHITECTURES[name].build(**TANH)
    before = [b.copy() for obj in net.layers for b in obj.buffers]
    fitted = ms.set_running_statistics(net, X)
    assert fitted.mode == net.mode
    for b, c in zip(before, [b for obj in net.layers for b in obj.buffers], strict=True):
        np.testing.assert_array_equal(b, c)  # the input network is untouched
    train = fitted.copy().set_mode("train")
    evaluation = fitted.copy().set_mode("eval")
    np.testing.assert_array_equal(train.forward(X), evaluation.forward(X))
    assert train.loss(X, y) == evaluation.loss(X, y)
    # the first layer's statistics are those of its pre-activation on X
    first = fitted.layers[0]
    pre = net.layers[0].forward(X)[1][-1]
    np.testing.assert_array_equal(first.running_mean, pre.mean)
    np.testing.assert_array_equal(first.running_var, pre.var)
    # and they differ from the drawn ones (so the test could fail)
    assert not np.allclose(first.running_mean, net.layers[0].running_mean)


@settings(max_examples=8, deadline=None)
@given(p=problems(BN_ARCHS))
def test_running_statistics_agree_on_drawn_problems(p):
    fitted = ms.set_running_statistics(p.net, p.X)
    np.testing.assert_array_equal(fitted.copy().set_mode("train").forward(p.X),
                                  fitted.copy().set_mode("eval").forward(p.X))


def test_growth_sets_running_statistics_and_splits_in_eval_mode(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, size=(40, 2))
    y = np.sin(X[:, :1] * X[:, 1:])
    net = Network([Dense(2, 2, "tanh", batch_norm=True, seed=1), Dense(2, 1, "identity", seed=1)])
    config = GrowthConfig(steps_per_round=300, budget=4, selection="k", k=1, lr=0.05, seed=0)
    result = grow(net, X, y, config, checkpoint=tmp_path / "run", keep_networks=True)
    assert result.net.mode == "train"  # the run trains in the network's mode
    assert result.history.rounds[-1].n_neurons == 4
    assert [r.surgery for r in result.history.rounds[1:]] == ["split"] * 2
    for grown in result.networks:  # every round ends with the training set's statistics
        fitted = ms.set_running_statistics(grown, X)
        np.testing.assert_array_equal(grown.layers[0].running_mean, fitted.layers[0].running_mean)
        np.testing.assert_array_equal(grown.layers[0].running_var, fitted.layers[0].running_var)
    # the split's predicted change is the eval-mode one, and it is recorded
    record = result.history.rounds[1]
    assert record.predicted_change < 0
    # the checkpoint holds the running statistics bit for bit
    saved = ckpt.load_checkpoint(tmp_path / "run")
    for a, b in zip(saved.net.all_layers, result.net.all_layers, strict=True):
        for p, q in zip([*a.params, *a.buffers], [*b.params, *b.buffers], strict=True):
            np.testing.assert_array_equal(p, q)
    assert saved.net.mode == "train"


def test_the_fingerprint_sees_the_running_statistics_and_the_mode():
    net, X, y = dense_bn(**TANH)
    stamp = ckpt.fingerprint({}, X, y, net)
    assert stamp != ckpt.fingerprint({}, X, y, ms.set_running_statistics(net, X))
    assert stamp != ckpt.fingerprint({}, X, y, net.copy().set_mode("train"))


def test_a_brand_new_conv_neuron_and_the_reader_of_flatten():
    # Conv2d BN -> Flatten -> Dense: adding a channel appends default state and columns
    conv = Conv2d(1, 2, 3, padding=1, batch_norm=True, seed=0)
    net = Network([conv, Flatten(), Dense(2 * 16, 1, "identity", seed=1)], mode="eval")
    X = np.random.default_rng(0).standard_normal((3, 1, 4, 4))
    F = net.forward(X)
    grown = ms.add_neurons(net, 0, unit_vector(np.random.default_rng(1), 9)[None],
                           np.zeros((1, 1, 16)))
    np.testing.assert_allclose(grown.forward(X), F, rtol=0, atol=16 * EPS * np.abs(F).max())
    np.testing.assert_array_equal(grown.layers[0].gamma, [1.0, 1.0, 1.0])
