"""The table of test networks (minisplit.testnets): what each record promises, its input
checks, the strategy that draws from it, and its agreement with ``minisplit verify``."""

import numpy as np
import pytest
from _nets import SIZES, problems
from hypothesis import given, settings
from hypothesis import strategies as st

import minisplit as ms
from minisplit import LOSSES, NeuronLayer
from minisplit.cli import verify
from minisplit.layers.base import BatchNormMixin
from minisplit.testnets import (
    ARCHITECTURES,
    conv_conv,
    conv_flatten,
    conv_gap,
    conv_pool,
    dense,
    rbf,
)

TABLE = list(ARCHITECTURES.values())


# ------------------------------------------------------------ what every record promises


def assert_keeps_its_promises(arch, net, X, y, sizes, activation, loss):
    n, n_out = sizes["n"], sizes["n_out"]
    assert net.loss_fn.name == loss
    assert net.forward(X).shape == (n, n_out)
    if "side" in sizes:
        assert X.shape == (n, sizes["c_in"], sizes["side"], sizes["side"])
        assert np.abs(X).max() <= 1.0
    elif "height" in sizes:
        assert X.shape == (n, sizes["c_in"], sizes["height"], sizes["width"])
        assert np.abs(X).max() <= 1.0
    else:
        assert X.shape == (n, sizes["n_in"])
        assert np.abs(X).max() <= 2.0
    if loss == "mse":
        assert y.shape == (n, n_out) and np.abs(y).max() <= 1.0
    else:
        np.testing.assert_array_equal(y, np.arange(n) % n_out)
    neuron_layers = [i for i, obj in enumerate(net.layers) if isinstance(obj, NeuronLayer)]
    for i in neuron_layers:
        obj = net.layers[i]
        if i == neuron_layers[-1]:
            assert obj.act.name == "identity"  # the output layer
        elif obj.act is not None:
            assert obj.act.name == activation
        for name, p in zip(obj.param_names, obj.params):
            if name == "b":
                assert np.all(p != 0)  # random biases: none at the special point b = 0
    # growable: exactly the neuron layers that split surgery can grow
    for i in neuron_layers:
        d = net.layers[i].neuron_dim
        if i in arch.growable:
            grown = ms.split(net, i, [0], np.zeros((1, d)), 0.0)
            assert grown.layers[i].n_neurons == net.layers[i].n_neurons + 1
        elif net.has_batch_norm and net.mode == "train" and ms.splitting.is_growable(net, i):
            # surgery works in train mode; the splitting matrices refuse it (eval mode folds BN)
            assert ms.split(net, i, [0], np.zeros((1, d)), 0.0).layers[i].n_neurons == \
                net.layers[i].n_neurons + 1
            with pytest.raises(ValueError, match="eval mode|zero second derivative"):
                ms.splitting_matrices(net, X, y, i)
        else:
            with pytest.raises(ValueError):
                ms.split(net, i, [0], np.zeros((1, d)), 0.0)


@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("arch", TABLE, ids=str)
def test_a_plain_call_builds_the_default_problem(arch, loss):
    activation = "swish" if arch.activations else None
    net, X, y = arch.build(activation=activation, loss=loss)
    assert_keeps_its_promises(arch, net, X, y, arch.sizes, activation, loss)
    assert arch.build()[0].loss_fn.name == "mse"  # every argument has a default


@pytest.mark.parametrize("arch", TABLE, ids=str)
@settings(max_examples=4, deadline=None)
@given(data=st.data())
def test_drawn_problems_keep_the_promises_too(arch, data):
    p = data.draw(problems([arch], activations=arch.activations))
    assert_keeps_its_promises(arch, p.net, p.X, p.y, p.sizes, p.activation, p.loss)


def flat(problem):
    net, X, y = problem
    return np.concatenate([ms.flatten(net.params), X.ravel(), y.ravel()])


@pytest.mark.parametrize("arch", TABLE, ids=str)
def test_the_seed_fixes_the_problem(arch):
    np.testing.assert_array_equal(flat(arch.build(seed=3)), flat(arch.build(seed=3)))
    np.testing.assert_array_equal(flat(arch.build(seed=3)),
                                  flat(arch.build(seed=np.random.default_rng(3))))
    assert not np.array_equal(flat(arch.build(seed=3)), flat(arch.build(seed=4)))


def test_the_default_geometry_of_the_convolutions():
    # conv_flatten: 5x5, k3 s2 p1 -> 3x3 maps: Dense(3 * 9 -> 2);
    # conv_pool: 7x7 -> 4x4 -> pooled 2x2: Dense(3 * 4 -> 2);
    # conv_conv: 5x5, k3 p1 -> 5x5, then k2 s2 -> 2x2: Dense(2 * 4 -> 2);
    # conv_gap: 6x7, k (3, 2) s (1, 2) p (1, 0) -> Ho = (6 + 2 - 3) // 1 + 1 = 6,
    # Wo = (7 - 2) // 2 + 1 = 3 -> pooled (3, 1) to 2x3 -> one mean per channel: Dense(3 -> 2).
    assert conv_flatten()[0].layers[2].W.shape == (2, 27)
    assert conv_pool()[0].layers[3].W.shape == (2, 12)
    assert conv_conv()[0].layers[3].W.shape == (2, 8)
    net, X, _ = conv_gap()
    conv, pool = net.layers[:2]
    assert X.shape[2:] == (6, 7)
    assert (conv.kernel_size, conv.stride, conv.padding, pool.k) == ((3, 2), (1, 2), (1, 0), (3, 1))
    maps = conv.forward(X)[0]
    assert maps.shape[2:] == (6, 3) and pool.forward(maps)[0].shape[2:] == (2, 3)
    assert net.layers[3].W.shape == (2, 3)


@settings(max_examples=3, deadline=None)
@given(data=st.data())
def test_the_strategy_draws_every_size_of_every_architecture(data):
    # a new architecture (or a new size) in the package table needs its strategy in _nets
    assert set(SIZES) == set(ARCHITECTURES)
    for name, arch in ARCHITECTURES.items():
        drawn = data.draw(SIZES[name])
        assert set(drawn) | {"n", "n_out"} == set(arch.sizes), name


@settings(max_examples=20, deadline=None)
@given(problem=problems())
def test_drawn_problems_are_small(problem):
    # STYLE.md: widths 1-5, a handful of samples, small images, values in [-3, 3]
    sizes = problem.sizes
    assert 2 <= sizes["n"] <= 6 and 1 <= sizes["n_out"] <= 3
    for obj in problem.net.layers:
        if isinstance(obj, NeuronLayer) and obj is not problem.net.layers[-1]:
            assert 1 <= obj.n_neurons <= 5
    assert problem.X.ndim == 2 or max(problem.X.shape[2:]) <= 14
    assert np.abs(problem.X).max() <= 3.0


# -------------------------------------------------------------------------- input checks


@pytest.mark.parametrize(
    "build, kwargs, error, message",
    [
        (dense, {"n": 0}, ValueError, "n must be an integer >= 1, got 0"),
        (dense, {"width": 2.0}, TypeError, "width must be an integer >= 1, got 2.0 of type float"),
        (dense, {"n_in": True}, TypeError, "n_in must be an integer >= 1, got True"),
        (dense, {"n_out": "2"}, TypeError, "n_out must be an integer >= 1, got '2'"),
        (conv_flatten, {"padding": -1}, ValueError, "padding must be an integer >= 0, got -1"),
        (conv_conv, {"stride2": 0}, ValueError, "stride2 must be an integer >= 1, got 0"),
        (dense, {"activation": "cosine"}, ValueError, "activation must be one of 'identity',"),
        (dense, {"activation": None}, TypeError, "activation must be one of .* got None"),
        (rbf, {"activation": "tanh"}, ValueError, "activation must be None .* got 'tanh'"),
        (dense, {"loss": "hinge"}, ValueError,
         "loss must be one of 'cross_entropy', 'mse', got 'hinge'"),
        (dense, {"loss": "cross_entropy", "n_out": 1}, ValueError,
         "n_out must be >= 2 with the cross_entropy loss"),
        (dense, {"seed": -1}, ValueError, "seed must be an integer >= 0 or a np.random.Generator"),
        (dense, {"seed": 0.5}, TypeError, "seed must be an integer >= 0 or a np.random.Generator"),
        (dense, {"seed": None}, TypeError, "seed must be an integer >= 0 or a np.random.Generator"),
        (conv_flatten, {"side": 1, "padding": 0}, ValueError,
         r"side must be >= kernel - 2 \* padding = 3, got 1"),
        (conv_pool, {"pool": 3}, ValueError,
         "pool must divide the convolution's output side 4, got 3"),
        (conv_conv, {"kernel1": 8}, ValueError,
         r"side must be >= kernel1 - 2 \* padding1 = 6, got 5"),
        (conv_conv, {"kernel2": 6}, ValueError,
         r"the first convolution's output side must be >= kernel2 - 2 \* padding2 = 6, got 5"),
        (conv_gap, {"padding_w": -1}, ValueError, "padding_w must be an integer >= 0, got -1"),
        (conv_gap, {"stride_h": (1, 2)}, TypeError, "stride_h must be an integer >= 1"),
        (conv_gap, {"width": 1}, ValueError,
         r"width must be >= kernel_w - 2 \* padding_w = 2, got 1"),
        (conv_gap, {"kernel_h": 9}, ValueError,
         r"height must be >= kernel_h - 2 \* padding_h = 7, got 6"),
        (conv_gap, {"pool_h": 4}, ValueError,
         "pool_h must divide the convolution's output height 6, got 4"),
        (conv_gap, {"pool_w": 2}, ValueError,
         "pool_w must divide the convolution's output width 3, got 2"),
        (rbf, {"kernel": 3}, TypeError, "unexpected keyword argument 'kernel'"),
    ],
)
def test_bad_arguments(build, kwargs, error, message):
    with pytest.raises(error, match=message):
        build(**kwargs)


# ------------------------------------------------------------- the table and verify agree


def test_every_layer_type_verify_reports_comes_from_the_table():
    def kind(obj, net):
        bn = isinstance(obj, BatchNormMixin) and obj.batch_norm
        return type(obj).__name__, bn, net.mode if bn else None

    for spec in verify.LAYER_TYPES.values():
        arch = ARCHITECTURES[spec.architecture]
        activation = arch.activations[0] if arch.activations else None
        net, _, _ = arch.build(activation=activation)
        assert kind(net.layers[spec.index], net) == spec.kind
        assert spec.activations == (arch.activations or (verify.NO_ACTIVATION,))
    # and every layer type with neurons that the table builds (with batch norm: in each
    # mode) is verified
    built = set()
    for arch in TABLE:
        net = arch.build(activation="tanh" if arch.activations else None)[0]
        built |= {kind(obj, net) for obj in net.layers if isinstance(obj, NeuronLayer)}
    assert built == {spec.kind for spec in verify.LAYER_TYPES.values()}


def test_verify_rows_are_the_table_layer_types_activations_and_losses(monkeypatch):
    monkeypatch.setattr(verify, "verify_case", lambda *args: dict.fromkeys(verify.CHECKS, 0.0))
    rows = [(row["layer"], row["activation"], row["loss"]) for row in verify.verify_table()]
    expected = [
        (layer_type, activation, loss)
        for layer_type, spec in verify.LAYER_TYPES.items()
        for activation in (ARCHITECTURES[spec.architecture].activations or ("-",))
        for loss in LOSSES
    ]
    assert rows == expected


@pytest.mark.parametrize("layer_type", list(verify.LAYER_TYPES))
def test_verify_checks_the_table_network(monkeypatch, layer_type):
    checked = []
    monkeypatch.setattr(ms.gradcheck, "check_network",
                        lambda net, X, y, **kwargs: checked.append((net, X, y)) or {})
    spec = verify.LAYER_TYPES[layer_type]
    activation = spec.activations[0]
    verify.verify_case(layer_type, activation, "cross_entropy", seed=5)
    [(net, X, y)] = checked
    expected, X_expected, y_expected = ARCHITECTURES[spec.architecture].build(
        activation=None if activation == verify.NO_ACTIVATION else activation,
        loss="cross_entropy",
        seed=np.random.default_rng(5),
        n=verify.N_SAMPLES,
        n_out=verify.N_OUT["cross_entropy"],
    )
    np.testing.assert_array_equal(ms.flatten(net.params), ms.flatten(expected.params))
    np.testing.assert_array_equal(X, X_expected)
    np.testing.assert_array_equal(y, y_expected)
