"""The DS-CNN builder (minisplit/models.py, docs/models.md): shapes, sizes, growable layers,
a function-preserving split, one growth round on keyword clips, refused arguments."""

import numpy as np
import pytest

import minisplit as ms
from minisplit import Conv2d, DepthwiseConv2d
from minisplit.growth import count_flops, growable_layers
from minisplit.splitting import is_growable

CLIP = (1, 49, 10)


def _shapes(net, X):
    """The output shape of every layer, one forward pass."""
    shapes, A = [], X
    for obj in net.layers:
        A, _ = obj.forward(A)
        shapes.append(A.shape)
    return shapes


def test_shapes_of_the_s_model_on_mfcc_clips():
    net = ms.dscnn(seed=0)
    # 49 + 2*5 - 10 = 49, 49 // 2 + 1 = 25 rows; 10 + 2*1 - 4 = 8, 8 // 2 + 1 = 5 columns;
    # a 3x3 depthwise with padding 1 and a 1x1 pointwise keep 25 x 5
    assert net.layers[0].padding == (5, 1)
    assert _shapes(net, np.zeros((2, *CLIP))) == [(2, 64, 25, 5)] * 9 + [(2, 64), (2, 12)]
    assert [type(obj).__name__ for obj in net.layers] == (
        ["Conv2d"] + ["DepthwiseConv2d", "Conv2d"] * 4 + ["GlobalAvgPool2d", "Dense"])
    assert net.loss_fn.name == "cross_entropy" and net.mode == "train"


def test_narrow_seed_with_widths_per_block_and_no_batch_norm():
    net = ms.dscnn(width=[4, 6, 8], n_blocks=2, batch_norm=False, n_classes=5, seed=0)
    assert _shapes(net, np.zeros((3, *CLIP))) == [
        (3, 4, 25, 5), (3, 4, 25, 5), (3, 6, 25, 5), (3, 6, 25, 5), (3, 8, 25, 5), (3, 8),
        (3, 5)]
    assert net.layers[2].W.shape == (6, 4, 1, 1) and net.layers[3].W.shape == (6, 3, 3)
    assert all(obj.param_names == ("W", "b") for obj in net.layers[:5])
    assert not net.has_batch_norm


def test_odd_and_even_inputs_get_ceil_half_maps():
    # (7 + 2*5 - 10) // 2 + 1 = 4 = ceil(7/2); (6 + 2*1 - 4) // 2 + 1 = 3 = ceil(6/2)
    net = ms.dscnn(input_shape=(2, 7, 6), width=3, n_blocks=1, seed=0)
    assert _shapes(net, np.zeros((1, 2, 7, 6)))[0] == (1, 3, 4, 3)


def test_s_model_parameters_and_multiply_adds_by_hand():
    net = ms.dscnn(seed=0)
    # first conv: W 64*1*10*4 = 2560, BN gamma + beta 2*64 = 128          -> 2688
    # per block: depthwise 64*3*3 = 576 + 128 = 704; pointwise 64*64 = 4096 + 128 = 4224
    #            -> 4928, times 4 blocks = 19712
    # Dense: 64*12 + 12 = 780;  total 2688 + 19712 + 780 = 23180
    assert net.n_params == 23180
    # multiply-adds over the 25*5 = 125 output positions: first conv 40*64*125 = 320000;
    # depthwise 9*64*125 = 72000, pointwise 64*64*125 = 512000, 4 blocks -> 2336000;
    # Dense 64*12 = 768; total 2656768
    assert count_flops(net, np.zeros((1, *CLIP))) == 2656768


def test_growable_layers_are_the_first_conv_and_the_pointwise_convs():
    net = ms.dscnn(width=4, n_blocks=3, seed=0)
    assert growable_layers(net) == [0, 2, 4, 6]
    assert all(isinstance(net.layers[i], Conv2d) for i in growable_layers(net))
    depthwise = [i for i, obj in enumerate(net.layers) if isinstance(obj, DepthwiseConv2d)]
    assert depthwise == [1, 3, 5]
    assert not any(is_growable(net, i) for i in depthwise)
    assert not is_growable(net, len(net.layers) - 1)  # the Dense head is the output layer


def test_split_of_a_pointwise_layer_at_eps_zero_preserves_the_function_in_eval_mode():
    rng = np.random.default_rng(1)
    net = ms.dscnn(input_shape=(1, 9, 6), width=3, n_blocks=2, n_classes=4, seed=0)
    # random parameters (gamma away from 0) so that no channel is a copy of another
    params = [rng.uniform(0.5, 1.5, p.shape) if name == "gamma" else rng.normal(size=p.shape)
              for obj in net.layers for name, p in zip(obj.param_names, obj.params)]
    X = rng.normal(size=(5, 1, 9, 6))
    net = ms.set_running_statistics(net.with_params(params), X).set_mode("eval")
    layer, neurons = 2, [0, 2]  # block 1's pointwise conv, read through block 2's depthwise
    directions = rng.normal(size=(2, net.layers[layer].neuron_dim))
    grown = ms.split(net, layer, neurons, directions, eps=0.0)
    assert grown.layers[layer].n_neurons == 5 and grown.layers[3].channels == 5
    np.testing.assert_array_equal(grown.layers[3].W[3:], net.layers[3].W[neurons])
    np.testing.assert_allclose(grown.forward(X), net.forward(X), rtol=1e-12, atol=1e-12)
    moved = ms.split(net, layer, neurons, directions, eps=0.1)
    assert np.max(np.abs(moved.forward(X) - net.forward(X))) > 1e-6


def test_one_growth_round_on_keyword_clips_grows_the_network():
    data = ms.datasets.load("keywords", images=True)
    X, y = data.X_train[:32], data.y_train[:32]
    net = ms.dscnn(width=4, n_blocks=1, seed=0)
    config = ms.GrowthConfig(steps_per_round=2, max_rounds=1, plateau_window=None,
                             budget=None, early_steps=1, seed=0)
    result = ms.grow(net, X, y, config)
    first, last = result.history.rounds[0], result.history.rounds[-1]
    assert last.surgery == "split"
    assert last.n_neurons > first.n_neurons == 8  # 4 + 4 neurons in the two growable layers
    assert np.isfinite(last.train_loss)
    grown = result.net.layers
    assert grown[1].channels == grown[0].n_neurons  # the depthwise layer carried the split


def test_same_seed_same_network():
    a, b = ms.dscnn(width=4, n_blocks=1, seed=3), ms.dscnn(width=4, n_blocks=1, seed=3)
    assert all(np.array_equal(p, q) for p, q in zip(a.params, b.params))


@pytest.mark.parametrize("kwargs, error, message", [
    ({"n_classes": 1}, ValueError, "n_classes must be an integer >= 2, got 1"),
    ({"n_classes": 12.0}, TypeError, "n_classes must be an integer >= 2, got 12.0"),
    ({"width": 0}, ValueError, "width must be an integer >= 1, got 0"),
    ({"width": "64"}, TypeError, "width must be an integer >= 1, got '64' of type str"),
    ({"width": [8, 8]}, ValueError, r"n_blocks \+ 1 = 5 integers, got \[8, 8\]"),
    ({"width": [8, 0], "n_blocks": 1}, ValueError, r"width\[1\] must be an integer >= 1"),
    ({"n_blocks": -1}, ValueError, "n_blocks must be an integer >= 0, got -1"),
    ({"n_blocks": True}, TypeError, "n_blocks must be an integer >= 0, got True"),
    ({"input_shape": (49, 10)}, ValueError, r"input_shape must be a triple of integers"),
    ({"input_shape": (1, 0, 10)}, ValueError, r"input_shape\[1\] must be an integer >= 1"),
    ({"activation": "elu"}, ValueError, "activation must be one of"),
    ({"batch_norm": 1}, TypeError, "batch_norm must be True or False, got 1"),
    ({"mode": "test"}, ValueError, "mode must be one of 'train', 'eval', got 'test'"),
    ({"seed": -1}, ValueError, "seed must be an integer >= 0"),
])
def test_bad_arguments_are_refused(kwargs, error, message):
    with pytest.raises(error, match=message):
        ms.dscnn(**kwargs)
