"""Pruning: channel surgery (remove_units), L1-prune, the sensitivity analysis, Bn-prune.

``remove_units`` drops units and the reader's weights on them (docs/pruning.md). Removing a
unit the reader gives zero weight keeps the function; so does folding a constant unit into
the reader's bias, for a Dense reader and a Conv2d reader without padding. The only
differences are summation orders, so outputs agree to a few ulps of their scale.
"""

import numpy as np
import pytest
from _nets import default_problem

import minisplit as ms
from minisplit import Network, gradcheck, pruning
from minisplit.growth.sizes import count_flops, unit_costs
from minisplit.layers import RBF, Conv2d, Dense, DepthwiseConv2d, Flatten
from minisplit.network import flatten
from minisplit.splitting import carriers, grown_parts, reader_index, regrow
from minisplit.testnets import (
    ARCHITECTURES,
    conv_bn,
    conv_bn_train,
    conv_conv,
    conv_pool,
    dense,
    dense_bn,
    dense_bn_train,
    depthwise_bn,
    depthwise_bn_train,
    rbf_dense,
)

EPS = np.finfo(np.float64).eps

#: (architecture, layer) for every growable layer; tanh where an activation applies.
PAIRS = [(arch.name, layer) for arch in ARCHITECTURES.values() for layer in arch.growable]
#: The pairs whose neurons are Dense or Conv2d with a bias, read with no unit-carrying
#: layer in between (those have constant units to fold; the batch-normalised ones, without a
#: bias, fold in tests/test_batchnorm.py; through a depthwise layer folding is refused,
#: tests/test_depthwise.py).
FILTER_PAIRS = [(name, layer) for name, layer in PAIRS
                if (not name.startswith("rbf") or layer > 0) and "_bn" not in name
                and not carriers(default_problem(ARCHITECTURES[name])[0], layer)]


def build(name, **sizes):
    arch = ARCHITECTURES[name]
    return arch.build(activation="tanh" if arch.activations else None, **sizes)


def units_for(n):
    """Two units to remove when the layer has at least three, else one."""
    return np.array([0, n - 1]) if n >= 3 else np.array([0])


def params_of(net):
    return [p.copy() for p in net.params]


def assert_untouched(net, before):
    for p, q in zip(net.params, before, strict=True):
        np.testing.assert_array_equal(p, q)


def with_zero_reader_weights(net, layer, units):
    theta, out_weights = grown_parts(net, layer)
    out_weights[units] = 0.0
    return regrow(net, layer, theta, out_weights)


def with_constant_units(net, layer, units):
    """The units' incoming weights set to zero (bias kept): each outputs tanh(b_u) everywhere."""
    theta, out_weights = grown_parts(net, layer)
    theta[units, :-1] = 0.0
    return regrow(net, layer, theta, out_weights)


# ------------------------------------------------------------------ remove_units: exactness


@pytest.mark.parametrize("name, layer", PAIRS)
def test_removing_units_the_reader_ignores_keeps_the_function(name, layer):
    net, X, _ = build(name)
    n = net.layers[layer].n_neurons
    units = units_for(n)
    keep = np.setdiff1d(np.arange(n), units)
    zeroed = with_zero_reader_weights(net, layer, units)
    before = params_of(zeroed)
    small = ms.remove_units(zeroed, layer, units)
    F = zeroed.forward(X)
    np.testing.assert_allclose(small.forward(X), F, rtol=0, atol=8 * EPS * np.abs(F).max())
    # the kept units and the reader's weights on them are the old ones, in order
    theta, out_weights = grown_parts(zeroed, layer)
    new_theta, new_out = grown_parts(small, layer)
    np.testing.assert_array_equal(new_theta, theta[keep])
    np.testing.assert_array_equal(new_out, out_weights[keep])
    assert_untouched(zeroed, before)
    # the same removal where the reader does read the units changes the function
    assert np.abs(ms.remove_units(net, layer, units).forward(X) - net.forward(X)).max() > 1e-6


@pytest.mark.parametrize("name, layer", FILTER_PAIRS)
def test_folding_a_constant_unit_keeps_the_function(name, layer):
    # conv_conv's layer 0 is read by an unpadded Conv2d (padding2=0 by default)
    net, X, _ = build(name)
    units = units_for(net.layers[layer].n_neurons)
    flat = with_constant_units(net, layer, units)
    before = params_of(flat)
    folded = ms.remove_units(flat, layer, units, fold_constant=True)
    F = flat.forward(X)
    r = reader_index(flat, layer)
    c = np.tanh(flat.layers[layer].b[units])  # the constants
    scale = np.abs(F).max() + np.abs(c) @ np.abs(grown_parts(flat, layer)[1][units]).reshape(
        units.size, -1).sum(axis=1)
    np.testing.assert_allclose(folded.forward(X), F, rtol=0, atol=64 * EPS * scale)
    assert folded.layers[layer].n_neurons == flat.layers[layer].n_neurons - units.size
    assert not np.array_equal(folded.layers[r].b, flat.layers[r].b)  # the bias moved
    assert_untouched(flat, before)
    # without folding, the constants are lost: the function changes
    dropped = ms.remove_units(flat, layer, units)
    assert np.abs(dropped.forward(X) - F).max() > 1e-6


def test_folding_into_an_unpadded_conv_reader_is_exact():
    net, X, _ = conv_conv(kernel2=3, stride2=1, padding2=0)  # 5x5 maps -> 3x3
    flat = with_constant_units(net, 0, [1])
    folded = ms.remove_units(flat, 0, [1], fold_constant=True)
    F = flat.forward(X)
    np.testing.assert_allclose(folded.forward(X), F, rtol=0, atol=64 * EPS * np.abs(F).max())
    # the reader's bias moved by c * (the sum of its taps on channel 1), per output channel
    c = np.tanh(flat.layers[0].b[1])
    np.testing.assert_allclose(folded.layers[1].b - flat.layers[1].b,
                               c * flat.layers[1].W[:, 1].sum(axis=(1, 2)), rtol=1e-15)


def test_a_padded_conv_reader_would_be_wrong_on_its_border():
    # what docs/pruning.md says: with padding, the constant is seen only at in-image taps
    net, X, _ = conv_conv(kernel2=3, stride2=1, padding2=1)  # 5x5 maps, stay 5x5
    flat = with_constant_units(net, 0, [1])
    with pytest.raises(ValueError, match=r"layer 1 \(Conv2d\) with padding \(1, 1\): its "
                                         r"padded border reads zeros"):
        ms.remove_units(flat, 0, [1], fold_constant=True)
    dropped = ms.remove_units(flat, 0, [1])
    reader = dropped.layers[1]
    c = np.tanh(flat.layers[0].b[1])
    b = reader.b + c * flat.layers[1].W[:, 1].sum(axis=(1, 2))
    forced = Conv2d.from_config(reader.config(), [reader.W, b])  # folding done anyway

    def second(layers):
        return layers[1].forward(layers[0].forward(X)[0])[0]  # (N, c2, 5, 5)

    want = second(flat.layers)
    error = np.abs(second([dropped.layers[0], forced]) - want)
    assert error[:, :, 1:-1, 1:-1].max() < 64 * EPS * np.abs(want).max()  # exact inside
    assert error[:, :, 0].min() > 1e-6 and error[:, :, -1].min() > 1e-6  # wrong on the border


# ------------------------------------------------------------------ remove_units: sizes


@pytest.mark.parametrize("name, layer", PAIRS)
def test_sizes_after_removal_match_the_arrays(name, layer):
    net, X, _ = build(name)
    units = units_for(net.layers[layer].n_neurons)
    small = ms.remove_units(net, layer, units)
    m = units.size
    assert small.n_params == sum(p.size for p in small.params)
    assert small.n_params == net.n_params - m * unit_costs(net, X, [layer], "params")[layer]
    assert count_flops(small, X) == count_flops(net, X) - m * unit_costs(
        net, X, [layer], "flops")[layer]
    # the FLOPs counted by hand from the arrays: weights x output positions per layer
    A, by_hand = X[:1], 0
    for obj in small.layers:
        A = obj.forward(A)[0]
        if isinstance(obj, (Conv2d, DepthwiseConv2d)):
            by_hand += obj.W.size * A.shape[2] * A.shape[3]
        elif isinstance(obj, (Dense, RBF)):
            by_hand += obj.params[0].size
    assert count_flops(small, X) == by_hand


# ------------------------------------------------------------------ remove_units: refusals


def test_remove_units_refusals_name_the_problem():
    net, X, _ = dense(width=3)
    refusals = [
        (ValueError, r"units must leave at least one of the 3 units of layer 0 \(Dense\), "
                     "got all of them", dict(units=[0, 1, 2])),
        (ValueError, r"units must be distinct indices, got \[1 1\]", dict(units=[1, 1])),
        (ValueError, r"units must be indices in \[0, 3\), got \[3\]", dict(units=[3])),
        (ValueError, r"units must be indices in \[0, 3\), got \[-1\]", dict(units=[-1])),
        (TypeError, "units must be integer indices, got dtype float64", dict(units=[1.0])),
        (TypeError, "units must be integer indices, got dtype bool", dict(units=[True])),
        (ValueError, r"units must be a 1-D array of indices, got shape \(\)", dict(units=1)),
        (TypeError, "fold_constant must be True or False, got 1 of type int",
         dict(units=[0], fold_constant=1)),
        (ValueError, r"fold_constant needs every removed unit of layer 0 to output a constant "
                     r"\(a Dense or Conv2d neuron whose incoming weights are all zero, or a "
                     r"batch-normalised one with gamma = 0\), got units \[0\] that are not",
         dict(units=[0], fold_constant=True)),
    ]
    for error, message, kwargs in refusals:
        with pytest.raises(error, match=message):
            ms.remove_units(net, 0, **kwargs)
    with pytest.raises(ValueError, match="layer 1 is the output layer"):
        ms.remove_units(net, 1, [0])
    with pytest.raises(TypeError, match="layer must be an integer index"):
        ms.remove_units(net, 0.0, [0])
    conv, _, _ = conv_pool()
    with pytest.raises(ValueError, match=r"layer 1 \(AvgPool2d\) has no neurons"):
        ms.remove_units(conv, 1, [0])
    rbf_net, _, _ = rbf_dense()
    with pytest.raises(ValueError, match=r"got units \[1\] that are not"):  # an RBF unit
        ms.remove_units(rbf_net, 0, [1], fold_constant=True)


def test_removing_nothing_is_a_copy():
    net, X, _ = dense()
    same = ms.remove_units(net, 0, [])
    assert same is not net and same.layers[0] is not net.layers[0]
    np.testing.assert_array_equal(same.forward(X), net.forward(X))


# ------------------------------------------------------------------ L1 norms and L1-prune


def test_l1_norms_sum_absolute_values_over_channels_and_taps():
    conv = Conv2d(2, 3, kernel_size=2, seed=0)
    conv.W = np.zeros((3, 2, 2, 2))
    conv.W[0] = -1.0  # 8 weights of -1: norm 8 (a signed sum would say -8, the lowest)
    conv.W[1, 0, 0, 0], conv.W[1, 1, 1, 1] = 2.0, 0.5  # norm 2.5
    conv.W[2, 1] = 0.25  # 4 weights: norm 1
    conv.b = np.array([0.0, 0.0, 100.0])  # the bias is not counted
    net = Network([conv, Flatten(), Dense(12, 1, "identity", seed=0)])
    np.testing.assert_array_equal(pruning.l1_norms(net, 0), [8.0, 2.5, 1.0])
    # ...so the prune removes filter 2, then 1: never the all-negative filter 0
    np.testing.assert_array_equal(pruning.l1_prune(net, {0: 0.34}).layers[0].W, conv.W[:2])
    np.testing.assert_array_equal(pruning.l1_prune(net, {0: 0.67}).layers[0].W, conv.W[:1])


@pytest.mark.parametrize("name, layer", FILTER_PAIRS)
def test_l1_norms_match_a_loop_over_each_weight(name, layer):
    net, _, _ = build(name)
    W = net.layers[layer].W
    expected = [sum(abs(w) for w in W[i].ravel()) for i in range(W.shape[0])]
    np.testing.assert_allclose(pruning.l1_norms(net, layer), expected, rtol=1e-14)


def test_the_rounding_rule_never_empties_a_layer():
    table = {(10, 0.25): 2, (10, 0.3): 3, (100, 0.29): 29, (4, 0.1): 0, (4, 0.24): 0,
             (4, 0.25): 1, (3, 0.99): 2, (3, 1.0): 2, (1, 1.0): 0, (5, 0.0): 0}
    assert {key: pruning.n_removed(*key) for key in table} == table
    np.testing.assert_array_equal(pruning.lowest_units([2.0, 1.0, 1.0, 3.0], 0.25), [1])
    net, X, _ = dense(width=4)
    last = pruning.l1_prune(net, {0: 1.0})
    keep = np.argmax(pruning.l1_norms(net, 0))
    np.testing.assert_array_equal(last.layers[0].W, net.layers[0].W[[keep]])


def test_l1_prune_scores_every_layer_on_the_input_network():
    net, X, _ = conv_conv(channels1=4, channels2=3)
    before = params_of(net)
    pruned = pruning.l1_prune(net, {0: 0.5, 1: 0.34})
    drop0 = np.argsort(pruning.l1_norms(net, 0), kind="stable")[:2]
    drop1 = np.argsort(pruning.l1_norms(net, 1), kind="stable")[:1]
    keep0, keep1 = np.setdiff1d(np.arange(4), drop0), np.setdiff1d(np.arange(3), drop1)
    W0, W1 = net.layers[0].W, net.layers[1].W
    np.testing.assert_array_equal(pruned.layers[0].W, W0[keep0])
    np.testing.assert_array_equal(pruned.layers[1].W, W1[keep1][:, keep0])
    np.testing.assert_array_equal(pruned.layers[1].b, net.layers[1].b[keep1])
    assert pruned.layers[3].W.shape == (2, 2 * 4)  # 2 channels left x 2x2 maps
    assert_untouched(net, before)


def test_l1_prune_refusals():
    net, _, _ = rbf_dense()
    with pytest.raises(TypeError, match=r"ratios must be a dict \{layer: fraction\}, got"):
        pruning.l1_prune(net, [0.5])
    with pytest.raises(ValueError, match=r"ratios\[1\] must be a finite number >= 0 and <= 1, "
                                         "got 1.5"):
        pruning.l1_prune(net, {1: 1.5})
    with pytest.raises(ValueError, match=r"layer 0 \(RBF\) has no filters W for an L1 norm"):
        pruning.l1_prune(net, {0: 0.5})
    with pytest.raises(ValueError, match="layer 2 is the output layer"):
        pruning.l1_prune(net, {2: 0.5})
    with pytest.raises(ValueError, match="criterion must be one of 'l1', 'bn', got 'l2'"):
        pruning.prune(net, {1: 0.5}, criterion="l2")


# ------------------------------------------------------------------ sensitivity


def accuracy(net, X, y):
    return np.mean(np.argmax(net.forward(X), axis=1) == y)


def test_sensitivity_prunes_one_layer_at_a_time():
    net, X, y = conv_conv(loss="cross_entropy", n=12, channels1=4, channels2=3, n_out=3)
    before = params_of(net)
    ratios = (0.25, 0.5, 0.75)
    result = pruning.sensitivity(net, X, y, ratios=ratios)
    assert result.metric == "accuracy" and result.ratios == ratios
    assert result.baseline == accuracy(net, X, y)
    assert result.removed == {0: (1, 2, 3), 1: (0, 1, 2)} and result.n_units == {0: 4, 1: 3}
    for layer in (0, 1):
        expected = [accuracy(pruning.l1_prune(net, {layer: r}), X, y) for r in ratios]
        assert result.curves[layer] == tuple(expected)
    assert result.curves[1][0] == result.baseline  # floor(0.25 * 3) = 0: nothing removed
    assert_untouched(net, before)


def test_sensitivity_of_a_regression_network_is_its_loss():
    net, X, y = ms.testnets.deep_dense(n=8, width1=4, width2=5, width3=4)
    result = pruning.sensitivity(net, X, y, layers=[1], ratios=(0.2, 0.6))
    assert result.metric == "loss" and result.baseline == net.loss(X, y)
    assert result.curves == {1: tuple(pruning.l1_prune(net, {1: r}).loss(X, y)
                                      for r in (0.2, 0.6))}
    np.testing.assert_array_equal(result.drops(1), np.array(result.curves[1]) - net.loss(X, y))


def test_sensitivity_refusals():
    net, X, y = conv_conv(loss="cross_entropy")
    with pytest.raises(ValueError, match="ratios must be a non-empty, strictly increasing"):
        pruning.sensitivity(net, X, y, ratios=(0.5, 0.3))
    with pytest.raises(ValueError, match="ratios must be a finite number > 0 and <= 1, got 0.0"):
        pruning.sensitivity(net, X, y, ratios=(0.0, 0.5))
    with pytest.raises(ValueError, match=r"layers must be distinct, got \[0, 0\]"):
        pruning.sensitivity(net, X, y, layers=[0, 0])
    with pytest.raises(ValueError, match=r"layer 2 \(Flatten\) has no neurons"):
        pruning.sensitivity(net, X, y, layers=[2])
    with pytest.raises(ValueError, match="y must have shape"):
        pruning.sensitivity(net, X, y[:-1])


def test_choose_ratios_stops_where_the_curve_first_leaves_the_tolerance():
    result = pruning.Sensitivity(
        "accuracy", 0.8, (0.25, 0.5, 0.75),
        curves={0: (0.8, 0.79, 0.5), 1: (0.7, 0.8, 0.8), 2: (0.81, 0.8, 0.78)},
        removed={0: (1, 2, 3), 1: (1, 2, 3), 2: (1, 2, 3)}, n_units={0: 4, 1: 4, 2: 4})
    # drops: layer 0: 0, 0.01, 0.3; layer 1: 0.1 first (a later recovery does not count);
    # layer 2: -0.01, 0, 0.02 (all within 0.05)
    assert pruning.choose_ratios(result, 0.05) == {0: 0.5, 1: 0.0, 2: 0.75}
    assert pruning.choose_ratios(result, 0.0) == {0: 0.25, 1: 0.0, 2: 0.5}
    loss = pruning.Sensitivity("loss", 1.0, (0.5, 1.0), {0: (1.1, 0.9)}, {0: (1, 1)}, {0: 2})
    assert pruning.choose_ratios(loss, 0.05) == {0: 0.0}  # a loss that rises is worse
    assert pruning.choose_ratios(loss, 0.2) == {0: 1.0}
    with pytest.raises(ValueError, match="tolerance must be a finite number >= 0, got -0.1"):
        pruning.choose_ratios(result, -0.1)
    with pytest.raises(TypeError, match="result must be a Sensitivity"):
        pruning.choose_ratios(result.curves, 0.1)


def test_chosen_ratios_prune_and_fine_tune():
    net, X, y = conv_pool(loss="cross_entropy", n=12, channels=4)
    result = pruning.sensitivity(net, X, y, ratios=(0.25, 0.5))
    ratios = pruning.choose_ratios(result, tolerance=1.0)  # anything goes: the last ratio
    assert ratios == {0: 0.5}
    pruned = pruning.l1_prune(net, ratios)
    assert pruned.layers[0].n_neurons == 2
    tuned = ms.train(pruned, X, y, ms.Adam(lr=0.01), steps=30)
    assert tuned.net.loss(X, y) < pruned.loss(X, y)


# ------------------------------------------------------------------ Bn-prune: the penalty

BN_BUILDERS = {"dense_bn": dense_bn, "dense_bn_train": dense_bn_train, "conv_bn": conv_bn,
               "conv_bn_train": conv_bn_train, "depthwise_bn": depthwise_bn,
               "depthwise_bn_train": depthwise_bn_train}


def with_gammas(net, gammas):
    """A copy of net with these gamma arrays ({layer: (n,)}), everything else kept."""
    new = net.copy()
    for layer, gamma in gammas.items():
        obj = new.layers[layer]
        obj.set_params([np.asarray(gamma, dtype=np.float64) if name == "gamma" else p
                        for name, p in zip(obj.param_names, obj.params)])
    return new


def signed_gammas(net, seed=0):
    """Every BN layer's gamma with mixed signs, |gamma| in [0.2, 1.2]: away from the kink."""
    rng = np.random.default_rng(seed)
    return with_gammas(net, {layer: rng.choice([-1.0, 1.0], net.layers[layer].n_neurons)
                             * rng.uniform(0.2, 1.2, net.layers[layer].n_neurons)
                             for layer in pruning.bn_layers(net)})


def gamma_slots(net):
    """Mask (P,) of the gamma entries of the flat parameter vector."""
    return flatten([np.full(p.shape, name == "gamma") for obj in net.all_layers
                    for name, p in zip(obj.param_names, obj.params)]).astype(bool)


@pytest.mark.parametrize("name", BN_BUILDERS)
def test_the_gamma_penalty_is_in_the_objective_and_its_gradient(name):
    net, X, y = BN_BUILDERS[name]()
    plain = signed_gammas(net)
    lam = 0.3
    slim = pruning.with_gamma_l1(plain, lam)
    gammas = np.concatenate([plain.layers[i].gamma for i in pruning.bn_layers(plain)])
    assert (gammas < 0).any() and (gammas > 0).any()
    # the value: L + lambda sum |gamma|
    penalty = lam * np.abs(gammas).sum()
    assert pruning.gamma_penalty(slim) == pytest.approx(penalty, rel=1e-15)
    value, grads = slim.loss_and_grad(X, y)
    plain_value, plain_grads = plain.loss_and_grad(X, y)
    assert value == pytest.approx(plain_value + penalty, rel=1e-14)
    assert slim.loss(X, y) == value
    terms = pruning.penalised_loss(slim, X, y)
    assert (terms.total, terms.loss) == (value, plain_value)
    assert terms.penalty == pruning.gamma_penalty(slim)
    # the gradient: + lambda sign(gamma) in the gamma slots, nothing elsewhere
    g, g0, mask = flatten(grads), flatten(plain_grads), gamma_slots(slim)
    np.testing.assert_array_equal(g[~mask], g0[~mask])
    np.testing.assert_allclose(g[mask] - g0[mask], lam * np.sign(gammas), rtol=0, atol=4 * EPS)
    # ...and it is the gradient of the penalised objective: central differences (h = 1e-5
    # moves no gamma across 0, as |gamma| >= 0.2)
    x0 = flatten(slim.params)

    def fun(x):
        return slim.with_params(x).loss(X, y)

    def grad(x):
        return flatten(slim.with_params(x).loss_and_grad(X, y)[1])

    assert gradcheck.gradient_error(fun, grad, x0, seed=1) < gradcheck.TOLERANCE
    # without the penalty term the gradient would be wrong there: the check can fail
    assert gradcheck.gradient_error(fun, lambda x: flatten(plain.with_params(x).loss_and_grad(
        X, y)[1]), x0, seed=1) > 1e-3


@pytest.mark.parametrize("name", BN_BUILDERS)
def test_the_gamma_penalty_has_no_curvature(name):
    net, X, y = BN_BUILDERS[name]()
    plain = signed_gammas(net, seed=2)
    slim = pruning.with_gamma_l1(plain, 0.3)
    V = np.random.default_rng(3).standard_normal(slim.n_params)
    for a, b in zip(slim.hvp(X, y, V), plain.hvp(X, y, V), strict=True):
        np.testing.assert_array_equal(a, b)  # H V of L_s is H V of L: |gamma| is flat

    def grad(x):
        return flatten(slim.with_params(x).loss_and_grad(X, y)[1])

    def hvp(x, u):
        return flatten(slim.with_params(x).hvp(X, y, u))

    assert gradcheck.hvp_error(grad, hvp, flatten(slim.params), seed=4) < gradcheck.TOLERANCE


def test_the_subgradient_at_gamma_zero_is_zero():
    net, X, y = dense_bn()
    plain = with_gammas(net, {0: [0.0, 0.7, -0.4]})
    grads = pruning.with_gamma_l1(plain, 0.5).loss_and_grad(X, y)[1]
    plain_grads = plain.loss_and_grad(X, y)[1]
    # params: W0, gamma0, beta0, W1, gamma1, ...: gamma0 is entry 1
    np.testing.assert_allclose(grads[1] - plain_grads[1], [0.0, 0.5, -0.5], rtol=0, atol=4 * EPS)


def test_train_reports_the_penalised_objective_and_shrinks_gamma():
    net, X, y = dense_bn(n=12)
    start = pruning.init_gamma(net, 0.5)
    slim = pruning.with_gamma_l1(start, 0.05)
    result = ms.train(slim, X, y, ms.SGD(lr=0.05, momentum=0.0), steps=40)
    assert result.losses[0] == slim.loss(X, y)  # full batch: the objective before step 0
    assert result.losses[0] == pytest.approx(start.loss(X, y) + 0.05 * 7 * 0.5, rel=1e-14)
    assert result.net.layers[0].gamma_l1 == 0.05  # training keeps the setting
    plain = ms.train(start, X, y, ms.SGD(lr=0.05, momentum=0.0), steps=40).net
    assert pruning.gamma_penalty(plain) == 0.0
    shrunk = sum(np.abs(result.net.layers[i].gamma).sum() for i in (0, 1))
    free = sum(np.abs(plain.layers[i].gamma).sum() for i in (0, 1))
    assert shrunk < free - 0.05  # each of 40 steps moves every |gamma| 0.05 * 0.05 = 0.0025


def test_the_penalty_setting_survives_copies_surgery_and_files(tmp_path):
    net, X, y = conv_bn()
    slim = pruning.with_gamma_l1(net, 1e-4, layers=[1])
    assert [obj.config().get("gamma_l1") for obj in slim.layers[:2]] == [None, 1e-4]
    assert slim.layers[1].penalty(None) == pytest.approx(1e-4 * np.abs(net.layers[1].gamma).sum())
    path = tmp_path / "slim.npz"
    ms.save(slim, path)
    loaded = ms.load(path)
    assert loaded.layers[1].gamma_l1 == 1e-4 and loaded.loss(X, y) == slim.loss(X, y)
    assert ms.remove_units(slim, 1, [0]).layers[1].gamma_l1 == 1e-4
    assert slim.copy().loss(X, y) == slim.loss(X, y)
    assert pruning.with_gamma_l1(slim, 0.0).loss(X, y) == net.loss(X, y)


def test_a_split_keeps_the_loss_but_adds_the_copy_s_penalty():
    net, X, y = dense_bn()
    slim = pruning.with_gamma_l1(signed_gammas(net), 0.1)
    split = ms.split(slim, 0, [1], np.zeros((1, slim.layers[0].neuron_dim)), 0.0)
    before, after = pruning.penalised_loss(slim, X, y), pruning.penalised_loss(split, X, y)
    assert after.loss == pytest.approx(before.loss, rel=1e-13, abs=1e-15)  # eps = 0: same f
    assert after.penalty - before.penalty == pytest.approx(0.1 * abs(slim.layers[0].gamma[1]),
                                                           rel=1e-12)


def test_init_gamma_and_the_default():
    net, X, y = conv_bn()
    assert np.array_equal(Dense(2, 3, batch_norm=True, seed=0).gamma, np.ones(3))  # the default
    half = pruning.init_gamma(net, 0.5)
    for layer in (0, 1):
        np.testing.assert_array_equal(half.layers[layer].gamma, 0.5)
        np.testing.assert_array_equal(half.layers[layer].beta, net.layers[layer].beta)
        np.testing.assert_array_equal(half.layers[layer].W, net.layers[layer].W)
    assert not np.array_equal(net.layers[0].gamma, 0.5)  # the input is untouched
    np.testing.assert_array_equal(pruning.init_gamma(net, 2.0, layers=[0]).layers[1].gamma,
                                  net.layers[1].gamma)


def test_penalty_refusals():
    with pytest.raises(ValueError, match="gamma_l1 must be 0 for a layer without batch_norm"):
        Dense(2, 3, gamma_l1=0.1)
    with pytest.raises(ValueError, match="gamma_l1 must be a finite number >= 0, got -0.1"):
        Dense(2, 3, batch_norm=True, gamma_l1=-0.1)
    net, _, _ = dense()
    with pytest.raises(ValueError, match="net must have a batch-normalised layer"):
        pruning.with_gamma_l1(net, 0.1)
    bn_net, _, _ = dense_bn()
    with pytest.raises(ValueError, match=r"layer 2 \(Dense\) is not batch-normalised"):
        pruning.with_gamma_l1(bn_net, 0.1, layers=[2])
    with pytest.raises(ValueError, match="value must be a finite number, got nan"):
        pruning.init_gamma(bn_net, float("nan"))


# ------------------------------------------------------------------ Bn-prune: which units


def hand_net():
    """dense_bn with |gamma| = (0.9, 0.1, 0.5) in layer 0 and (0.3, 0.05, 2.0, 0.7) in layer 1."""
    net, X, y = dense_bn()
    return with_gammas(net, {0: [0.9, -0.1, 0.5], 1: [0.3, -0.05, 2.0, 0.7]}), X, y


def test_the_bn_criterion_is_abs_gamma():
    net, _, _ = hand_net()
    np.testing.assert_array_equal(pruning.bn_scales(net, 1), [0.3, 0.05, 2.0, 0.7])
    assert pruning.CRITERIA["bn"].applies(net.layers[0])
    assert not pruning.CRITERIA["bn"].applies(net.layers[2])
    assert pruning.prunable_layers(net, "bn") == [0, 1]
    # the per-layer prune of the table: floor(0.5 * 4) = 2 smallest |gamma| of layer 1
    pruned = pruning.prune(net, {1: 0.5}, criterion="bn")
    np.testing.assert_array_equal(pruned.layers[1].gamma, [2.0, 0.7])
    with pytest.raises(ValueError, match=r"layer 0 \(Dense\) is not batch-normalised: the bn "
                                         "criterion scores"):
        pruning.bn_scales(dense()[0], 0)


def test_the_global_threshold_picks_the_smallest_gamma_across_layers():
    net, X, y = hand_net()
    # pooled |gamma|, sorted: 0.05 (1:1), 0.1 (0:1), 0.3 (1:0) | 0.5 (0:2), 0.7, 0.9, 2.0
    # fraction 0.43 of 7 units: floor(3.01) = 3 go, the threshold is 0.3
    plan = pruning.bn_plan(net, 0.43)
    assert plan.threshold == 0.3 and plan.guarded == ()
    np.testing.assert_array_equal(plan.units[0], [1])
    np.testing.assert_array_equal(plan.units[1], [0, 1])  # layer 1 loses 2 of 4, layer 0 1 of 3
    assert (plan.n_removed, plan.n_units) == (3, 7) and plan.removed_fraction == 3 / 7
    slim = pruning.bn_prune(net, 0.43)
    np.testing.assert_array_equal(slim.layers[0].gamma, [0.9, 0.5])
    np.testing.assert_array_equal(slim.layers[1].gamma, [2.0, 0.7])
    np.testing.assert_array_equal(slim.layers[1].W, net.layers[1].W[[2, 3]][:, [0, 2]])
    np.testing.assert_array_equal(slim.layers[2].W, net.layers[2].W[:, [2, 3]])
    # the per-layer scope at the same fraction: floor(0.43 * 3) = 1 and floor(0.43 * 4) = 1
    per_layer = pruning.bn_plan(net, 0.43, scope="layer")
    assert per_layer.threshold is None and per_layer.n_removed == 2
    np.testing.assert_array_equal(per_layer.units[0], [1])
    np.testing.assert_array_equal(per_layer.units[1], [1])
    np.testing.assert_array_equal(pruning.bn_prune(net, 0.43, scope="layer").layers[1].gamma,
                                  [0.3, 2.0, 0.7])
    # nothing asked, nothing removed
    assert pruning.bn_plan(net, 0.1).threshold is None  # floor(0.7) = 0
    np.testing.assert_array_equal(pruning.bn_prune(net, 0.0).forward(X), net.forward(X))


def test_the_guard_keeps_the_largest_gamma_of_every_layer():
    net, X, y = dense_bn()
    net = with_gammas(net, {0: [0.01, -0.03, 0.02], 1: [0.3, 0.4, 2.0, 0.7]})
    # 3 of 7 go globally: exactly layer 0's three; the guard keeps its largest, unit 1
    plan = pruning.bn_plan(net, 0.43)
    assert plan.guarded == (0,) and plan.threshold == 0.03
    np.testing.assert_array_equal(plan.units[0], [0, 2])
    assert plan.units[1].size == 0 and plan.removed_fraction == 2 / 7  # below the 3/7 asked
    np.testing.assert_array_equal(pruning.bn_prune(net, 0.43).layers[0].gamma, [-0.03])
    # fraction 1: every layer keeps exactly its largest |gamma|, in both scopes
    for scope in pruning.SCOPES:
        everything = pruning.bn_plan(net, 1.0, scope=scope)
        assert everything.guarded == (0, 1) and everything.n_removed == 5
        slim = pruning.bn_prune(net, 1.0, scope=scope)
        assert [slim.layers[i].gamma.tolist() for i in (0, 1)] == [[-0.03], [2.0]]


@pytest.mark.parametrize("build", [conv_bn, conv_bn_train])
def test_removing_zero_gamma_units_keeps_the_function_exactly(build):
    # conv_bn: layer 0 read by an unpadded Conv2d, layer 1 by a Dense through Flatten
    net, X, y = build(channels1=4, channels2=3)
    net = with_gammas(net, {0: [0.8, 0.0, 1.1, 0.6], 1: [0.0, -0.9, 0.7]})
    slim = pruning.bn_prune(net, 2 / 7)  # the two zeros are the two smallest |gamma|
    F = net.forward(X)
    np.testing.assert_allclose(slim.forward(X), F, rtol=0, atol=64 * EPS * np.abs(F).max())
    assert [slim.layers[i].n_neurons for i in (0, 1)] == [3, 2]
    assert slim.layers[1].W.shape[1] == 3 and slim.layers[3].W.shape == (2, 2 * 4)
    # by hand: conv 0: 3 filters of 2x3x3 + gamma, beta = 54 + 6; conv 1: 2 filters of
    # 3x2x2 + 4 = 28; Dense 2 x (2 channels x 2x2) + 2 = 18: 106 parameters. Multiply-adds
    # per sample: 54 x 25 positions + 24 x 4 positions + 16 = 1462
    assert slim.n_params == sum(p.size for p in slim.params) == 60 + 28 + 18
    assert count_flops(slim, X[:1]) == 54 * 25 + 24 * 4 + 16
    # without the fold the constants f(beta) are lost: the function changes
    assert np.abs(pruning.bn_prune(net, 2 / 7, fold="none").forward(X) - F).max() > 1e-3


def test_the_beta_fold_replaces_a_small_gamma_unit_by_its_constant():
    net, X, y = dense_bn()
    net = with_gammas(net, {0: [0.9, -0.02, 0.5], 1: [0.3, 0.01, 2.0, 0.7]})
    silenced = with_gammas(net, {0: [0.9, 0.0, 0.5], 1: [0.3, 0.0, 2.0, 0.7]})
    beta = pruning.bn_prune(net, 2 / 7, fold="beta")
    exact = pruning.bn_prune(silenced, 2 / 7)  # gamma = 0 exactly: the exact fold
    for a, b in zip(beta.params, exact.params, strict=True):
        np.testing.assert_array_equal(a, b)
    F = net.forward(X)
    error = {fold: np.abs(pruning.bn_prune(net, 2 / 7, fold=fold).forward(X) - F).max()
             for fold in ("beta", "none", "exact")}
    assert error["exact"] == error["none"]  # no gamma is exactly 0: nothing to fold
    assert error["beta"] < 0.1 * error["none"]  # losing only gamma's part costs far less


def test_a_padded_conv_reader_gets_no_fold():
    net, X, y = conv_bn(padding2=1)
    net = with_gammas(net, {0: [0.8, 0.0, 1.1]})
    slim = pruning.bn_prune(net, 0.34, layers=[0])  # floor(0.34 * 3) = 1: unit 1
    dropped = ms.remove_units(net, 0, [1])
    for a, b in zip(slim.params, dropped.params, strict=True):
        np.testing.assert_array_equal(a, b)


def test_bn_prune_refusals():
    net, X, y = hand_net()
    with pytest.raises(ValueError, match="fraction must be a finite number >= 0 and <= 1, got 1.5"):
        pruning.bn_prune(net, 1.5)
    with pytest.raises(ValueError, match="scope must be one of 'global', 'layer', got 'net'"):
        pruning.bn_prune(net, 0.5, scope="net")
    with pytest.raises(TypeError, match="fold must be one of 'exact', 'beta', 'none', got True"):
        pruning.bn_prune(net, 0.5, fold=True)
    with pytest.raises(ValueError, match="net must have a batch-normalised layer"):
        pruning.bn_prune(dense()[0], 0.5)
    with pytest.raises(ValueError, match=r"layer 2 \(Dense\) is not batch-normalised"):
        pruning.bn_prune(net, 0.5, layers=[2])
    with pytest.raises(ValueError, match=r"layers must be distinct, got \[0, 0\]"):
        pruning.bn_prune(net, 0.5, layers=[0, 0])


def test_slimming_end_to_end():
    net, X, y = conv_bn(loss="cross_entropy", n=12, channels1=4, channels2=3, n_out=3)
    slim = pruning.with_gamma_l1(pruning.init_gamma(net, 0.5), 1e-2)
    trained = ms.train(slim, X, y, ms.Adam(lr=0.01), steps=30).net
    plan = pruning.bn_plan(trained, 0.5)
    pruned = pruning.bn_prune(trained, 0.5)
    assert sum(pruned.layers[i].n_neurons for i in (0, 1)) == 7 - plan.n_removed == 4
    tuned = ms.train(pruned, X, y, ms.Adam(lr=0.01), steps=30).net
    assert pruning.penalised_loss(tuned, X, y).loss < pruning.penalised_loss(pruned, X, y).loss
