"""minisplit.interop: networks from arrays laid out as PyTorch lays them out, and splitting
matrices in the framework's order (docs/checking-your-implementation.md).

Every reference here is written the way a framework computes it, not with minisplit's code:
``framework_forward`` is ``x @ W.T + b`` and a convolution by explicit loops over the output
positions, on arrays drawn the PyTorch way (``rng.normal(size=(out, in))``). The splitting
matrix S_i is checked against the second derivative of the loss of the *split* network
computed by that forward, with the split direction built in the framework's order
(``theta_i = [weight[i].ravel(), bias[i]]``) by hand:

    f(eps) = L(network with a_i -> (a_i(theta_i + eps delta) + a_i(theta_i - eps delta)) / 2)
    f''(0) = delta^T S_i delta                                   (docs/splitting.md, section 5)

f is even (eps -> -eps swaps the two terms), so D(h) = 2 (f(h) - f(0)) / h^2 = q + a h^2 + b h^4
+ ...; Richardson's R(h) = (4 D(h/2) - D(h)) / 3 leaves R(h) - q = -b h^4 / 4, so with
R1 = R(h), R2 = R(h/2) the remainder of R2 is |R1 - R2| / 15 to leading order and
``|R2 - q| <= |R1 - R2| + round-off`` holds with a margin of 15 for the right q, while a q
off by O(1) (a wrong order, a missing 1/N) fails it. Round-off: each f is exact to
~eps_mach |f|, D divides by (h/4)^2: the floor ``64 eps_mach max(1, |f(0)|) / (h/4)^2``
(as in test_splitting.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import minisplit as ms
from minisplit.interop import (
    ACTIVATION_NAMES,
    NeuronSplitting,
    from_state_dict,
    neuron_splitting,
    to_state_dict,
)

EPS_MACH = np.finfo(np.float64).eps
#: Smooth activations in framework spellings (splitting needs f'' != 0).
SMOOTH = ("tanh", "Tanh", "sigmoid", "logistic", "softplus", "Softplus", "silu", "SiLU", "swish")
OUTPUT = (None, "identity", "linear", "Identity")


# ---- the framework's forward pass, written as PyTorch computes it -------------------------


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


#: Each activation as its textbook formula (lower-case spelling -> function).
FORMULAS = {
    "identity": lambda z: z,
    "linear": lambda z: z,
    "tanh": np.tanh,
    "sigmoid": _sigmoid,
    "logistic": _sigmoid,
    "softplus": lambda z: np.log1p(np.exp(z)),
    "silu": lambda z: z * _sigmoid(z),
    "swish": lambda z: z * _sigmoid(z),
    "relu": lambda z: np.maximum(z, 0.0),
}


def activate(name, Z):
    return FORMULAS["identity" if name is None else name.lower()](Z)


def loop_conv2d(X, W, b, stride, padding):
    """Z[n, o, r, c] = b[o] + sum(W[o] * Xp[n, :, r sh : r sh + kh, c sw : c sw + kw]), by
    loops; ``stride`` (sh, sw), ``padding`` (ph, pw)."""
    N, _, H, Wd = X.shape
    n_out, _, kh, kw = W.shape
    (sh, sw), (ph, pw) = stride, padding
    Xp = np.pad(X, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    Ho, Wo = (H + 2 * ph - kh) // sh + 1, (Wd + 2 * pw - kw) // sw + 1
    Z = np.empty((N, n_out, Ho, Wo))
    for n in range(N):
        for o in range(n_out):
            for r in range(Ho):
                for c in range(Wo):
                    window = Xp[n, :, r * sh : r * sh + kh, c * sw : c * sw + kw]
                    Z[n, o, r, c] = b[o] + np.sum(W[o] * window)
    return Z


def loop_avgpool2d(X, k):
    N, C, H, W = X.shape
    kh, kw = as_pair(k)
    out = np.empty((N, C, H // kh, W // kw))
    for r in range(H // kh):
        for c in range(W // kw):
            window = X[:, :, r * kh : (r + 1) * kh, c * kw : (c + 1) * kw]
            out[:, :, r, c] = window.mean(axis=(2, 3))
    return out


def as_pair(value):
    """PyTorch keeps stride, padding and windows as pairs (h, w); an int s is (s, s)."""
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def neuron_layer(kind, A, W, b, activation, options):
    if kind == "linear":
        return activate(activation, A @ W.T + b)
    stride, padding = as_pair(options.get("stride", 1)), as_pair(options.get("padding", 0))
    return activate(activation, loop_conv2d(A, W, b, stride, padding))


def framework_forward(layers, state, X, split=None):
    """The network's output as a framework computes it.

    ``split = (name, i, d_weight, d_bias, eps)``: neuron i of layer ``name`` is replaced by
    two copies at ``weight[i] +- eps d_weight``, ``bias[i] +- eps d_bias``, mixed 1/2, 1/2.
    """
    A = X
    for item in layers:
        kind, name = item[0].lower(), item[1]
        if kind == "flatten":
            A = A.reshape(A.shape[0], -1)  # torch.flatten(x, 1)
            continue
        if kind == "avgpool2d":
            A = loop_avgpool2d(A, item[2])
            continue
        if kind == "globalavgpool2d":  # nn.AdaptiveAvgPool2d(1), then nn.Flatten()
            A = np.array([[A[n, c].sum() / A[n, c].size for c in range(A.shape[1])]
                          for n in range(A.shape[0])])
            continue
        W, b = state[f"{name}.weight"], state[f"{name}.bias"]
        options = item[3] if len(item) == 4 else {}
        out = neuron_layer(kind, A, W, b, item[2], options)
        if split is not None and split[0] == name:
            _, i, d_weight, d_bias, eps = split
            copies = []
            for sign in (1.0, -1.0):
                W2, b2 = W.copy(), b.copy()
                W2[i] += sign * eps * d_weight
                b2[i] += sign * eps * d_bias
                copies.append(neuron_layer(kind, A, W2, b2, item[2], options)[:, i])
            out[:, i] = 0.5 * (copies[0] + copies[1])
        A = out
    return A


def framework_loss(F, y, loss, reduction="minisplit"):
    """minisplit's mean losses, or PyTorch's ``nn.MSELoss()`` / sum-reduced ones."""
    N = F.shape[0]
    if loss == "mse":
        squares = np.sum((F - y) ** 2)
        return {"minisplit": 0.5 * squares / N, "torch_mean": squares / F.size,
                "sum": 0.5 * squares}[reduction]
    shifted = F - F.max(axis=1, keepdims=True)
    nll = np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(N), y]
    return {"minisplit": nll.mean(), "torch_mean": nll.mean(), "sum": nll.sum()}[reduction]


# ---- problems drawn the way a framework user has them -------------------------------------


@dataclass(frozen=True, eq=False)
class Problem:
    layers: list
    state: dict
    X: np.ndarray
    y: np.ndarray
    loss: str
    input_shape: tuple
    hidden: tuple  # names of the hidden neuron layers

    def net(self, **kwargs):
        return from_state_dict(self.layers, self.state, self.loss, **kwargs)


def draw_data(draw, rng, input_shape, n_out):
    loss = draw(st.sampled_from(["mse", "cross_entropy"]))
    n = draw(st.integers(2, 4))
    X = rng.uniform(-3.0, 3.0, size=(n, *input_shape))
    if loss == "mse":
        return X, rng.normal(size=(n, n_out)), loss
    return X, rng.integers(0, n_out, size=n), loss


def linear_arrays(rng, state, name, n_out, n_in):
    state[f"{name}.weight"] = rng.normal(0.0, 1.0 / np.sqrt(n_in), size=(n_out, n_in))
    state[f"{name}.bias"] = rng.normal(0.0, 0.5, size=n_out)


@st.composite
def mlps(draw, activations=SMOOTH, min_linear=2):
    """``fc1 -> ... -> fcL`` with widths 1-5, hidden activations from ``activations``."""
    depth = draw(st.integers(min_linear, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    sizes = [draw(st.integers(1, 5)) for _ in range(depth)]
    n_out = draw(st.integers(2, 3))
    sizes.append(n_out)
    layers, state = [], {}
    for index in range(depth):
        name = f"fc{index + 1}"
        last = index == depth - 1
        activation = draw(st.sampled_from(OUTPUT if last else activations))
        layers.append(("linear", name, activation))
        linear_arrays(rng, state, name, sizes[index + 1], sizes[index])
    X, y, loss = draw_data(draw, rng, (sizes[0],), n_out)
    hidden = tuple(item[1] for item in layers[:-1])
    return Problem(layers, state, X, y, loss, (sizes[0],), hidden)


@st.composite
def conv_geometry(draw, out_h, out_w):
    """``(H, W), (kh, kw), (sh, sw), (ph, pw)`` of a convolution whose output is out_h x out_w:
    each axis drawn on its own."""
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    ph, pw = draw(st.integers(0, (kh - 1) // 2)), draw(st.integers(0, (kw - 1) // 2))
    H = (out_h - 1) * sh + kh - 2 * ph + draw(st.integers(0, sh - 1))
    W = (out_w - 1) * sw + kw - 2 * pw + draw(st.integers(0, sw - 1))
    return (H, W), (kh, kw), (sh, sw), (ph, pw)


@st.composite
def conv_options(draw, stride, padding):
    """The options as a user may write them: PyTorch's pairs (h, w), ints where both axes
    agree, or left off at the defaults."""
    form = draw(st.sampled_from(["int", "pair", "default"]))
    if form == "default" and (stride, padding) == ((1, 1), (0, 0)):
        return None
    options = {"stride": stride, "padding": padding}
    if form == "int":  # an int where the pair is equal
        options = {key: value[0] if value[0] == value[1] else value
                   for key, value in options.items()}
    return options


@st.composite
def convnets(draw, activations=SMOOTH):
    """``conv1 [-> pool] [-> conv2] -> flatten or globalavgpool2d -> fc`` with 1-5 channels,
    images up to ~9x9, every geometry per axis (the pooling window (kh, kw) too)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    pool = draw(st.sampled_from([None, 1, 2, (1, 2), (2, 1)]))
    pool = as_pair(pool) if pool else None
    global_pool = draw(st.booleans())
    second = draw(st.booleans())
    side = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))  # the last image's H x W
    convs = []  # (side in, kernel, stride, padding), built from the output backwards
    if second:
        side_in, kernel, stride, padding = draw(conv_geometry(*side))
        convs.insert(0, (kernel, stride, padding))
        side_after_first = side_in
    else:
        side_after_first = side
    pooled = side_after_first
    if pool:
        side_after_first = (pooled[0] * pool[0], pooled[1] * pool[1])
    side_in, kernel, stride, padding = draw(conv_geometry(*side_after_first))
    convs.insert(0, (kernel, stride, padding))
    c_in = draw(st.integers(1, 3))
    channels = [c_in] + [draw(st.integers(1, 5)) for _ in convs]
    layers, state = [], {}
    for index, (kernel, stride, padding) in enumerate(convs):
        name = f"conv{index + 1}"
        options = draw(conv_options(stride, padding))
        activation = draw(st.sampled_from(activations))
        item = ("conv2d", name, activation) + (() if options is None else (options,))
        layers.append(item)
        fan_in = channels[index] * kernel[0] * kernel[1]
        state[f"{name}.weight"] = rng.normal(0.0, 1.0 / np.sqrt(fan_in),
                                             size=(channels[index + 1], channels[index], *kernel))
        state[f"{name}.bias"] = rng.normal(0.0, 0.5, size=channels[index + 1])
        if index == 0 and pool:
            layers.append(("avgpool2d", "pool", pool if pool[0] != pool[1] else pool[0]))
    layers.append(("globalavgpool2d", "gap") if global_pool else ("flatten", "flat"))
    n_out = draw(st.integers(2, 3))
    layers.append(("linear", "fc", draw(st.sampled_from(OUTPUT))))
    n_in = channels[-1] if global_pool else channels[-1] * side[0] * side[1]
    linear_arrays(rng, state, "fc", n_out, n_in)
    input_shape = (c_in, *side_in)
    X, y, loss = draw_data(draw, rng, input_shape, n_out)
    hidden = tuple(f"conv{index + 1}" for index in range(len(convs)))
    return Problem(layers, state, X, y, loss, input_shape, hidden)


problems = st.one_of(mlps(), convnets())


# ---- conversion: the forward pass in the framework's conventions --------------------------


def assert_close(actual, expected):
    """Equal to float rounding: a few ulps of the largest magnitude involved."""
    scale = max(1.0, float(np.max(np.abs(expected))))
    assert np.max(np.abs(actual - expected)) <= 1e3 * EPS_MACH * scale


@settings(max_examples=50)
@given(problem=st.one_of(mlps(activations=SMOOTH + ("relu", "ReLU"), min_linear=1),
                         convnets(activations=SMOOTH + ("relu",))))
def test_forward_matches_the_framework_forward(problem):
    for input_shape in (None, problem.input_shape):
        net = problem.net(input_shape=input_shape)
        assert_close(net.forward(problem.X), framework_forward(problem.layers, problem.state,
                                                               problem.X))


def test_conv_forward_rectangular_kernel_stride_and_padding():
    # a 2x3 kernel, stride 2, padding 1 on a 5x6 image: the loops above, not im2col
    rng = np.random.default_rng(1)
    layers = [("Conv2d", "c", "tanh", {"stride": 2, "padding": 1}), ("Flatten", "f"),
              ("Linear", "o", None)]
    state = {"c.weight": rng.normal(size=(4, 2, 2, 3)), "c.bias": rng.normal(size=4),
             "o.weight": rng.normal(size=(3, 4 * 3 * 3)), "o.bias": rng.normal(size=3)}
    X = rng.normal(size=(3, 2, 5, 6))  # Ho = (5 + 2 - 2) // 2 + 1 = 3, Wo = (6 + 2 - 3) // 2 + 1
    net = from_state_dict(layers, state, input_shape=(2, 5, 6))
    assert_close(net.forward(X), framework_forward(layers, state, X))


def test_per_axis_options_and_the_global_pool():
    # a 3x2 kernel, stride (1, 2), padding (1, 0) on a 4x7 image: Ho = (4 + 2 - 3) // 1 + 1 = 4,
    # Wo = (7 - 2) // 2 + 1 = 3; a (2, 3) window pools it to 2x1, the global pool to (N, 4)
    rng = np.random.default_rng(13)
    layers = [("conv2d", "c", "softplus", {"stride": (1, 2), "padding": (1, 0)}),
              ("avgpool2d", "p", (2, 3)), ("GlobalAvgPool2d", "g"), ("linear", "o", None)]
    state = {"c.weight": rng.normal(size=(4, 2, 3, 2)), "c.bias": rng.normal(size=4),
             "o.weight": rng.normal(size=(3, 4)), "o.bias": rng.normal(size=3)}
    X = rng.normal(size=(3, 2, 4, 7))
    net = from_state_dict(layers, state, input_shape=(2, 4, 7))
    conv, pool, gap = net.layers[:3]
    assert (conv.stride, conv.padding, pool.k) == ((1, 2), (1, 0), (2, 3))
    assert isinstance(gap, ms.GlobalAvgPool2d)
    assert_close(net.forward(X), framework_forward(layers, state, X))
    assert bits(to_state_dict(net, layers)) == bits(state)
    other = [("conv2d", "c", "softplus", {"stride": (2, 1), "padding": (1, 0)})] + layers[1:]
    with pytest.raises(ValueError, match=r"net\.layers\[0\] must be what layers\[0\]"):
        to_state_dict(net, other)  # the axes swapped: not the same layer
    # the conv before the global pool is hidden: its splitting matrices are minisplit's
    y = rng.normal(size=(3, 3))
    result = neuron_splitting(net, layers, X, y, "c")
    assert result.weight_shape == (2, 3, 2) and result.matrices.shape == (4, 13, 13)
    assert np.array_equal(result.matrices, ms.splitting_matrices(net, X, y, 0))


@pytest.mark.parametrize("spelling, expected", [
    *ACTIVATION_NAMES.items(), (None, "identity"), ("SiLU", "swish"), ("ReLU", "relu"),
    ("Tanh", "tanh"), ("Sigmoid", "sigmoid"), ("Softplus", "softplus"), ("Identity", "identity"),
])
def test_activation_spellings(spelling, expected):
    state = {"fc.weight": np.ones((1, 1)), "fc.bias": np.zeros(1)}
    net = from_state_dict([("linear", "fc", spelling)], state)
    assert net.layers[0].act.name == expected


# ---- round trips ----------------------------------------------------------------------------


def bits(state):
    return {key: (value.dtype, value.shape, value.tobytes()) for key, value in state.items()}


@settings(max_examples=20)
@given(problem=problems)
def test_round_trip_arrays_network_arrays_is_bit_identical(problem):
    net = problem.net()
    back = to_state_dict(net, problem.layers)
    assert list(back) == list(problem.state)  # same keys, in layer order, weight then bias
    assert bits(back) == bits(problem.state)
    rebuilt = from_state_dict(problem.layers, back, problem.loss)
    for p, q in zip(net.params, rebuilt.params):
        assert p.tobytes() == q.tobytes()


def test_round_trip_of_float32_arrays_keeps_their_values():
    rng = np.random.default_rng(2)
    layers = [("linear", "a", "tanh"), ("linear", "b", None)]
    state = {"a.weight": rng.normal(size=(3, 2)).astype(np.float32),
             "a.bias": rng.normal(size=3).astype(np.float32),
             "b.weight": rng.normal(size=(1, 3)).astype(np.float32),
             "b.bias": rng.normal(size=1).astype(np.float32)}
    back = to_state_dict(from_state_dict(layers, state), layers)
    assert all(value.dtype == np.float64 for value in back.values())
    assert bits({k: v.astype(np.float32) for k, v in back.items()}) == bits(state)


def test_no_array_is_shared_with_the_caller():
    rng = np.random.default_rng(3)
    layers = [("linear", "a", "tanh"), ("linear", "b", None)]
    state = {"a.weight": rng.normal(size=(3, 2)), "a.bias": rng.normal(size=3),
             "b.weight": rng.normal(size=(1, 3)), "b.bias": rng.normal(size=1)}
    X = rng.normal(size=(4, 2))
    net = from_state_dict(layers, state)
    before = net.forward(X)
    state["a.weight"][:] = 0.0  # the caller's array changes: the network must not
    assert np.array_equal(net.forward(X), before)
    back = to_state_dict(net, layers)
    back["b.bias"][:] = 7.0
    assert np.array_equal(net.forward(X), before)


def test_a_grown_network_exports_under_the_same_names():
    rng = np.random.default_rng(4)
    layers = [("conv2d", "conv", "tanh", {"padding": 1}), ("avgpool2d", "pool", 2),
              ("flatten", "flat"), ("linear", "fc", None)]
    state = {"conv.weight": rng.normal(size=(2, 1, 3, 3)), "conv.bias": rng.normal(size=2),
             "fc.weight": rng.normal(size=(3, 2 * 2 * 2)), "fc.bias": rng.normal(size=3)}
    net = from_state_dict(layers, state, loss="cross_entropy", input_shape=(1, 4, 4))
    d = 1 * 3 * 3 + 1
    grown = ms.split(net, 0, [1], rng.normal(size=(1, d)), 0.1)
    exported = to_state_dict(grown, layers)
    assert exported["conv.weight"].shape == (3, 1, 3, 3)
    assert exported["fc.weight"].shape == (3, 3 * 2 * 2)
    X = rng.normal(size=(2, 1, 4, 4))
    assert np.array_equal(from_state_dict(layers, exported).forward(X), grown.forward(X))
    assert_close(framework_forward(layers, exported, X), grown.forward(X))


# ---- splitting matrices in the framework's order ------------------------------------------


def split_second_derivative(problem, name, i, d_weight, d_bias, reduction="minisplit", h=0.02):
    """``(R1, R2, round-off)``: Richardson estimates of f''(0) for the split network's loss."""
    def f(eps):
        split = None if eps == 0 else (name, i, d_weight, d_bias, eps)
        F = framework_forward(problem.layers, problem.state, problem.X, split)
        return framework_loss(F, problem.y, problem.loss, reduction)

    f0 = f(0.0)
    D1, D2, D3 = (2.0 * (f(e) - f0) / e**2 for e in (h, h / 2, h / 4))
    R1, R2 = (4 * D2 - D1) / 3, (4 * D3 - D2) / 3
    return R1, R2, 64 * EPS_MACH * max(1.0, abs(f0)) / (h / 4) ** 2


def random_direction(rng, weight_shape):
    """A unit direction as a framework holds it: a weight-shaped part and a bias part."""
    d_weight, d_bias = rng.normal(size=weight_shape), float(rng.normal())
    norm = np.sqrt(np.sum(d_weight**2) + d_bias**2)
    return d_weight / norm, d_bias / norm


@settings(max_examples=50)
@given(problem=problems, data=st.data())
def test_splitting_matrix_is_the_split_loss_curvature_in_framework_order(problem, data):
    name = data.draw(st.sampled_from(problem.hidden))
    result = neuron_splitting(problem.net(), problem.layers, problem.X, problem.y, name)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    i = int(rng.integers(result.values.shape[0]))
    weight_shape = problem.state[f"{name}.weight"].shape[1:]
    d_weight, d_bias = random_direction(rng, weight_shape)
    theta = np.concatenate([d_weight.ravel(), [d_bias]])  # the framework's order, bias last
    q = float(theta @ result.matrices[i] @ theta)
    R1, R2, roundoff = split_second_derivative(problem, name, i, d_weight, d_bias)
    assert abs(R2 - q) <= abs(R1 - R2) + roundoff, (q, R1, R2)


def conv_problem(seed=5):
    rng = np.random.default_rng(seed)
    layers = [("conv2d", "conv1", "tanh", {"stride": 1, "padding": 1}), ("flatten", "flat"),
              ("linear", "fc1", "softplus"), ("linear", "fc2", None)]
    state = {"conv1.weight": rng.normal(size=(3, 2, 3, 2)), "conv1.bias": rng.normal(size=3),
             "fc1.weight": rng.normal(0, 0.3, size=(4, 3 * 3 * 4)), "fc1.bias": rng.normal(size=4),
             "fc2.weight": rng.normal(size=(2, 4)), "fc2.bias": rng.normal(size=2)}
    X = rng.normal(size=(5, 2, 3, 3))  # Ho = 3 + 2 - 3 + 1 = 3, Wo = 3 + 2 - 2 + 1 = 4
    y = rng.normal(size=(5, 2))
    return Problem(layers, state, X, y, "mse", (2, 3, 3), ("conv1", "fc1"))


@pytest.mark.parametrize("name", ["conv1", "fc1"])
def test_a_bias_first_reading_fails_the_same_check(name):
    # The check above has the power to see the order: read the same S with the bias FIRST
    # (a common slip) and the second derivative no longer matches.
    problem = conv_problem()
    result = neuron_splitting(problem.net(), problem.layers, problem.X, problem.y, name)
    rng = np.random.default_rng(6)
    d_weight, d_bias = random_direction(rng, result.weight_shape)
    R1, R2, roundoff = split_second_derivative(problem, name, 1, d_weight, d_bias)
    right = np.concatenate([d_weight.ravel(), [d_bias]])
    wrong = np.concatenate([[d_bias], d_weight.ravel()])
    assert abs(R2 - right @ result.matrices[1] @ right) <= abs(R1 - R2) + roundoff
    assert abs(R2 - wrong @ result.matrices[1] @ wrong) > 100 * (abs(R1 - R2) + roundoff)


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_the_documented_scale_factors_of_other_reductions(loss):
    # A summed loss has N times minisplit's S; PyTorch's nn.MSELoss() (a mean over N*k
    # entries, no 1/2) has 2/k times it; nn.CrossEntropyLoss() (a mean) has S itself.
    problem = conv_problem()
    if loss == "cross_entropy":
        problem = Problem(problem.layers, problem.state, problem.X,
                          np.array([0, 1, 1, 0, 1]), loss, problem.input_shape, problem.hidden)
    result = neuron_splitting(problem.net(), problem.layers, problem.X, problem.y, "fc1")
    d_weight, d_bias = random_direction(np.random.default_rng(7), result.weight_shape)
    theta = result.join(d_weight, d_bias)
    q = float(theta @ result.matrices[2] @ theta)
    N, k = problem.X.shape[0], 2
    factors = {"sum": N, "torch_mean": 2.0 / k if loss == "mse" else 1.0}
    for reduction, factor in factors.items():
        R1, R2, roundoff = split_second_derivative(problem, "fc1", 2, d_weight, d_bias, reduction)
        assert abs(R2 - factor * q) <= abs(R1 - R2) + roundoff, (reduction, factor * q, R2)


@settings(max_examples=20)
@given(problem=problems, data=st.data())
@example(problem=conv_problem(), data=None).via("the fixed convolutional network")
def test_results_are_minisplits_own(problem, data):
    # minisplit's theta_i is already [W[i].ravel(), b[i]]: nothing is reordered, and the
    # eigenpairs are those of splitting_indices(solver="dense").
    net = problem.net()
    which = "min" if data is None else data.draw(st.sampled_from(["min", "max"]))
    for name in problem.hidden:
        result = neuron_splitting(net, problem.layers, problem.X, problem.y, name, which=which)
        layer = [item[1] for item in problem.layers].index(name)
        assert result.layer == layer and result.name == name and result.which == which
        S = ms.splitting_matrices(net, problem.X, problem.y, layer)
        values, vectors = ms.splitting_indices(net, problem.X, problem.y, layer, which=which)
        assert np.array_equal(result.matrices, S)
        assert np.array_equal(result.values, values) and np.array_equal(result.vectors, vectors)
        weight, bias = problem.state[f"{name}.weight"], problem.state[f"{name}.bias"]
        assert np.array_equal(result.join(weight, bias), net.layers[layer].neuron_params())


def test_hand_worked_splitting_matrix():
    # fc1: one softplus neuron, weight [[0.5, -1]], bias [0]; fc2: weight [[2]], bias [0].
    # x = [2, 1]: z = 0.5 * 2 - 1 * 1 + 0 = 0, a = softplus(0) = ln 2, F = 2 ln 2.
    # mse with y = 2 ln 2 - 0.5 and N = 1: dL/dF = (F - y) / N = 0.5, g = dL/da = 0.5 * 2 = 1.
    # softplus''(0) = s (1 - s) at s = 1/2: 0.25.  theta = [w_0, w_1, b], h~ = [2, 1, 1]:
    # S = g f''(z) h~ h~^T = 0.25 * [[4, 2, 2], [2, 1, 1], [2, 1, 1]].
    layers = [("linear", "fc1", "softplus"), ("linear", "fc2", None)]
    state = {"fc1.weight": np.array([[0.5, -1.0]]), "fc1.bias": np.array([0.0]),
             "fc2.weight": np.array([[2.0]]), "fc2.bias": np.array([0.0])}
    X, y = np.array([[2.0, 1.0]]), np.array([[2 * np.log(2) - 0.5]])
    result = neuron_splitting(from_state_dict(layers, state), layers, X, y, "fc1")
    expected = 0.25 * np.array([[4.0, 2.0, 2.0], [2.0, 1.0, 1.0], [2.0, 1.0, 1.0]])
    assert np.allclose(result.matrices[0], expected, rtol=1e-14, atol=1e-15)
    # rank one: lambda_min = 0, lambda_max = trace = 1.5 along h~ / |h~|
    top = neuron_splitting(from_state_dict(layers, state), layers, X, y, "fc1", which="max")
    assert np.isclose(top.values[0], 1.5, rtol=1e-14)
    assert np.allclose(top.vectors[0], np.array([2.0, 1.0, 1.0]) / np.sqrt(6), rtol=1e-14)


def test_parts_cut_vectors_in_c_order_with_the_bias_last():
    problem = conv_problem()
    result = neuron_splitting(problem.net(), problem.layers, problem.X, problem.y, "conv1")
    assert result.weight_shape == (2, 3, 2) and result.dim == 13
    assert "bias last" in NeuronSplitting.ORDER
    v = np.arange(13.0)
    weight, bias = result.parts(v)
    assert bias == 12.0  # the last entry
    for c in range(2):  # weight[i][c, a, e] sits at (c * kh + a) * kw + e: C order
        for a in range(3):
            for e in range(2):
                assert weight[c, a, e] == (c * 3 + a) * 2 + e
    weights, biases = result.parts(result.vectors)
    assert weights.shape == problem.state["conv1.weight"].shape
    assert biases.shape == problem.state["conv1.bias"].shape
    assert np.array_equal(result.join(weights, biases), result.vectors)
    assert np.array_equal(result.join(weight, bias), v)


def test_parts_and_join_refuse_wrong_shapes():
    result = neuron_splitting(*_mlp_for_errors(), "fc1")
    with pytest.raises(ValueError, match=r"v must have shape \(\.\.\., 3\)"):
        result.parts(np.zeros(4))
    with pytest.raises(ValueError, match=r"v must have shape"):
        result.parts(1.0)
    with pytest.raises(ValueError, match=r"weight must have shape \(\.\.\., 2\)"):
        result.join(np.zeros((3, 3)), np.zeros(3))
    with pytest.raises(ValueError, match=r"bias must have shape \(3,\)"):
        result.join(np.zeros((3, 2)), np.zeros(2))


# ---- errors -----------------------------------------------------------------------------------


MLP = [("linear", "fc1", "tanh"), ("linear", "fc2", None)]
CONV = [("conv2d", "conv1", "tanh", {"padding": 1}), ("avgpool2d", "pool", 2),
        ("flatten", "flat"), ("linear", "fc", None)]


def mlp_state(n_in=2, width=3, n_out=1):
    rng = np.random.default_rng(8)
    return {"fc1.weight": rng.normal(size=(width, n_in)), "fc1.bias": rng.normal(size=width),
            "fc2.weight": rng.normal(size=(n_out, width)), "fc2.bias": rng.normal(size=n_out)}


def conv_state(channels=3, side=2):
    rng = np.random.default_rng(9)
    return {"conv1.weight": rng.normal(size=(channels, 2, 3, 3)),
            "conv1.bias": rng.normal(size=channels),
            "fc.weight": rng.normal(size=(2, channels * side * side)),
            "fc.bias": rng.normal(size=2)}


def _mlp_for_errors():
    rng = np.random.default_rng(10)
    return from_state_dict(MLP, mlp_state()), MLP, rng.normal(size=(4, 2)), rng.normal(size=(4, 1))


def replaced(state, **arrays):
    return {**state, **{key.replace("__", "."): value for key, value in arrays.items()}}


@pytest.mark.parametrize("layers, state, kwargs, match", [
    # keys
    (MLP, {k: v for k, v in mlp_state().items() if k != "fc1.bias"}, {},
     r"state_dict must hold .*\['fc1\.bias'\].*bias=False"),
    (MLP, {**mlp_state(), "fc3.weight": np.ones((1, 1))}, {},
     r"state_dict must hold only .*got also \['fc3\.weight'\]"),
    (MLP, {**mlp_state(), "bn.num_batches_tracked": np.array(0)}, {},
     r"bn\.num_batches_tracked"),
    # shapes
    (MLP, replaced(mlp_state(), fc1__weight=mlp_state()["fc1.weight"].T), {},
     r"fc1\.bias must have shape \(2,\).*\(in, out\).*Transpose it"),
    (MLP, replaced(mlp_state(), fc1__weight=mlp_state()["fc1.weight"].T), {"input_shape": (2,)},
     r"fc1\.bias must have shape \(2,\)"),
    (MLP, replaced(mlp_state(), fc1__weight=np.ones(3)), {},
     r"fc1\.weight must have shape \(out, in\) \(PyTorch's layout\), got \(3,\)"),
    (MLP, replaced(mlp_state(), fc2__bias=np.ones(2)), {}, r"fc2\.bias must have shape \(1,\)"),
    (MLP, replaced(mlp_state(), fc2__weight=np.ones((1, 4))), {},
     r"fc2\.weight must have shape \(1, 3\) = \(out, in\) to read the 3 features of "
     r"layer 'fc1', got \(1, 4\)"),
    (MLP, mlp_state(n_in=2), {"input_shape": (5,)},
     r"fc1\.weight must have shape \(3, 5\) .* of the input, got \(3, 2\)"),
    (CONV, replaced(conv_state(), conv1__weight=np.ones((3, 2, 3))), {},
     r"conv1\.weight must have shape \(out, in, kh, kw\)"),
    (CONV, conv_state(), {"input_shape": (1, 4, 4)},
     r"conv1\.weight must have shape \(3, 1, 3, 3\) .* 1 channels of the input"),
    (CONV, conv_state(side=3), {"input_shape": (2, 4, 4)},
     r"fc\.weight must have shape \(2, 12\) = \(out, in\) to read the 12 features of "
     r"layer 'flat'"),
    (CONV, replaced(conv_state(), fc__weight=np.ones((2, 13))), {},
     r"fc\.weight must have shape \(out, in\) with in a multiple of the 3 channels"),
    (CONV, conv_state(), {"input_shape": (2, 5, 4)},
     r"height is a multiple of 2 and width a multiple of 2 \(its 2x2 window.*got 5x4"),
    ([("conv2d", "conv1", "tanh"), ("flatten", "flat"), ("linear", "fc", None)],
     conv_state(side=1), {"input_shape": (2, 2, 2)}, r"3x3 kernel does not fit the 2x2 image"),
    ([("conv2d", "conv1", "tanh"), ("linear", "fc", None)], conv_state(), {},
     r"'fc' \(linear\) reads layer 'conv1', an image .*\('flatten', name\)"),
    ([("linear", "fc", None), ("conv2d", "conv1", "tanh")], conv_state(), {},
     r"'conv1' \(conv2d\) reads layer 'fc', a vector"),
    ([("linear", "fc", None), ("flatten", "flat")],
     {k: conv_state()[k] for k in ("fc.weight", "fc.bias")}, {}, r"flatten needs an image"),
    ([("conv2d", "conv1", "tanh")], {k: conv_state()[k] for k in ("conv1.weight", "conv1.bias")},
     {}, r"must output \(N, k\), got an image from layer 'conv1'"),
    # the layer list
    ([("dense", "fc1", "tanh")], mlp_state(), {}, r"layers\[0\] must start with a layer kind"),
    ([("linear", "fc1", "gelu"), MLP[1]], mlp_state(), {},
     r"activation of layer 'fc1' \(linear\) must be one of None, 'identity', .*'silu'.*"
     r"got 'gelu'"),
    ([("linear", "fc1"), MLP[1]], mlp_state(), {},
     r"layers\[0\] must be \('linear', name, activation\)"),
    ([MLP[0], ("linear", "fc1", None)], mlp_state(), {}, r"distinct names.*\['fc1'\]"),
    ([("conv2d", "conv1", "tanh", {"dilation": 2})] + CONV[1:], conv_state(), {},
     r"must be among \['stride', 'padding'\], got \['dilation'\]"),
    ([("conv2d", "conv1", "tanh", {"stride": (1, 2, 1)})] + CONV[1:], conv_state(), {},
     r"the stride of layer 'conv1' \(conv2d\) must be an integer or a pair of integers "
     r"\(h, w\), got \(1, 2, 1\)"),
    ([("conv2d", "conv1", "tanh", {"padding": (1, -1)})] + CONV[1:], conv_state(), {},
     r"the padding of layer 'conv1' \(conv2d\) must be an integer >= 0, got -1"),
    ([("conv2d", "conv1", "tanh", {"padding": (1, 0)})] + CONV[1:], conv_state(),
     {"input_shape": (2, 4, 2)},
     r"3x3 kernel does not fit the 4x2 image of the input with padding \(h, w\) = \(1, 0\) "
     r"along its width$"),
    (CONV[:1] + [("avgpool2d", "pool", (2, 3))] + CONV[2:], conv_state(),
     {"input_shape": (2, 4, 4)},
     r"'pool' \(avgpool2d\) must read an image whose height is a multiple of 2 and width a "
     r"multiple of 3 \(its 2x3 window.*got 4x4 from layer 'conv1'"),
    ([("linear", "fc", None), ("globalavgpool2d", "gap")],
     {k: conv_state()[k] for k in ("fc.weight", "fc.bias")}, {},
     r"'gap' \(globalavgpool2d\) reads layer 'fc', a vector"),
    (CONV[:1] + [("globalavgpool2d", "gap", 1), CONV[3]], conv_state(), {},
     r"layers\[1\] must be \('globalavgpool2d', name\)"),
    (CONV[:1] + [("globalavgpool2d", "gap"), CONV[3]], conv_state(), {},
     r"fc\.weight must have shape \(2, 3\) = \(out, in\) to read the 3 features of "
     r"layer 'gap', got \(2, 12\)"),
    ([], {}, {}, r"at least one layer"),
    (MLP, mlp_state(), {"input_shape": (2, 3)}, r"input_shape must be \(features,\) or"),
    (MLP, mlp_state(), {"loss": "nll"}, r"loss must be one of"),
])
def test_from_state_dict_refuses_with_a_message_naming_the_problem(layers, state, kwargs, match):
    with pytest.raises(ValueError, match=match):
        from_state_dict(layers, state, **kwargs)


@pytest.mark.parametrize("layers, state, match", [
    ("fc1", mlp_state(), r"layers must be a list of tuples"),
    (MLP, [("fc1.weight", np.ones((3, 2)))], r"state_dict must be a mapping"),
    ([("linear", "fc1", 3), MLP[1]], mlp_state(), r"activation of layer 'fc1'"),
    ([("linear", 1, "tanh"), MLP[1]], mlp_state(), r"non-empty string"),
    (MLP, replaced(mlp_state(), fc1__bias=np.array(["a", "b", "c"])), r"fc1\.bias must hold"),
    ([("conv2d", "conv1", "tanh", [1, 1])] + CONV[1:], conv_state(), r"options of layer"),
])
def test_from_state_dict_refuses_wrong_types(layers, state, match):
    with pytest.raises(TypeError, match=match):
        from_state_dict(layers, state)


@pytest.mark.parametrize("name, match", [
    ("pool", r"'pool' \(avgpool2d\) has no neurons to split.*\['conv1'\]"),
    ("flat", r"'flat' \(flatten\) has no neurons"),
    ("fc", r"'fc' is the output layer.*one of \['conv1'\]"),
    ("fc9", r"name must be a layer name, one of \['conv1', 'pool', 'flat', 'fc'\], got 'fc9'"),
])
def test_splitting_refuses_layers_without_neurons_and_the_output_layer(name, match):
    rng = np.random.default_rng(11)
    net = from_state_dict(CONV, conv_state(), input_shape=(2, 4, 4))
    X, y = rng.normal(size=(3, 2, 4, 4)), rng.normal(size=(3, 2))
    with pytest.raises(ValueError, match=match):
        neuron_splitting(net, CONV, X, y, name)


def test_splitting_refuses_flat_curvature_unless_the_surrogate_is_asked_for():
    rng = np.random.default_rng(12)
    layers = [("linear", "fc1", "ReLU"), ("linear", "fc2", None)]
    net = from_state_dict(layers, mlp_state())
    X, y = rng.normal(size=(4, 2)), rng.normal(size=(4, 1))
    with pytest.raises(ValueError, match=r"relu has zero second derivative"):
        neuron_splitting(net, layers, X, y, "fc1")
    result = neuron_splitting(net, layers, X, y, "fc1", relu_surrogate=3.0)
    assert np.array_equal(result.matrices, ms.splitting_matrices(net, X, y, 0, relu_surrogate=3.0))


def test_splitting_refuses_bad_arguments():
    net, layers, X, y = _mlp_for_errors()
    with pytest.raises(TypeError, match=r"name must be a layer name"):
        neuron_splitting(net, layers, X, y, 0)
    with pytest.raises(ValueError, match=r"which must be one of 'min', 'max'"):
        neuron_splitting(net, layers, X, y, "fc1", which="smallest")
    with pytest.raises(ValueError, match=r"X must|Dense input must have shape \(N, 2\)"):
        neuron_splitting(net, layers, X[:, :1], y, "fc1")


@pytest.mark.parametrize("layers, match", [
    ([("linear", "fc1", "sigmoid"), MLP[1]], r"net\.layers\[0\] must be what layers\[0\] "
                                             r"\('fc1', linear\) describes, got Dense"),
    (MLP[:1], r"net must have one layer per entry of layers \(1\), got 2"),
    ([("conv2d", "fc1", "tanh"), MLP[1]], r"net\.layers\[0\] must be what layers\[0\]"),
])
def test_to_state_dict_refuses_a_network_the_list_does_not_describe(layers, match):
    net = from_state_dict(MLP, mlp_state())
    with pytest.raises(ValueError, match=match):
        to_state_dict(net, layers)
    with pytest.raises(ValueError, match=match):
        neuron_splitting(net, layers, np.zeros((2, 2)), np.zeros((2, 1)), "fc1")


def test_to_state_dict_refuses_other_options_and_types():
    net = from_state_dict(CONV, conv_state(), input_shape=(2, 4, 4))
    other = [("conv2d", "conv1", "tanh", {"padding": 0})] + CONV[1:]
    with pytest.raises(ValueError, match=r"net\.layers\[0\] must be what layers\[0\]"):
        to_state_dict(net, other)
    other = CONV[:1] + [("avgpool2d", "pool", 1)] + CONV[2:]
    with pytest.raises(ValueError, match=r"net\.layers\[1\] must be what layers\[1\]"):
        to_state_dict(net, other)
    with pytest.raises(TypeError, match=r"net must be a Network"):
        to_state_dict(to_state_dict(net, CONV), CONV)
