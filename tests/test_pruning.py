"""Pruning: channel surgery (remove_units), L1-prune, the sensitivity analysis.

``remove_units`` drops units and the reader's weights on them (docs/pruning.md). Removing a
unit the reader gives zero weight keeps the function; so does folding a constant unit into
the reader's bias, for a Dense reader and a Conv2d reader without padding. The only
differences are summation orders, so outputs agree to a few ulps of their scale.
"""

import numpy as np
import pytest

import minisplit as ms
from minisplit import Network, pruning
from minisplit.growth.sizes import count_flops, unit_costs
from minisplit.layers import RBF, Conv2d, Dense, Flatten
from minisplit.splitting import grown_parts, reader_index, regrow
from minisplit.testnets import ARCHITECTURES, conv_conv, conv_pool, dense, rbf_dense

EPS = np.finfo(np.float64).eps

#: (architecture, layer) for every growable layer; tanh where an activation applies.
PAIRS = [(arch.name, layer) for arch in ARCHITECTURES.values() for layer in arch.growable]
#: The pairs whose neurons are Dense or Conv2d with a bias (those have constant units to
#: fold; the batch-normalised ones, without a bias, fold in tests/test_batchnorm.py).
FILTER_PAIRS = [(name, layer) for name, layer in PAIRS
                if (not name.startswith("rbf") or layer > 0) and "_bn" not in name]


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
        if isinstance(obj, Conv2d):
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
    with pytest.raises(ValueError, match="criterion must be one of 'l1', got 'bn'"):
        pruning.prune(net, {1: 0.5}, criterion="bn")


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
