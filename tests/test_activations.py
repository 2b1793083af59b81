"""Activations: f' and f'' against central differences, stability, and the ReLU caveat.

Element-wise central differences with step h = gradcheck.STEP: the error is the
truncation h^2/6 |f'''| plus round-off ~ eps |f| / h, both below 1e-9 for
|z| <= 3 where every activation and its derivatives are O(1). So
``|fd - exact| <= TOLERANCE * max(1, |exact|)`` flags any wrong formula
(a wrong term is an O(1) error) with a margin of a thousand.
"""

import warnings

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from minisplit import ACTIVATIONS, get_activation
from minisplit.activations import sigmoid, softplus_surrogate_d2
from minisplit.gradcheck import STEP, TOLERANCE

SMOOTH = [name for name in ACTIVATIONS if name != "relu"]

# 1 to 5 values in [-3, 3]
z_values = st.lists(
    st.floats(-3.0, 3.0, allow_nan=False, allow_infinity=False), min_size=1, max_size=5
).map(np.array)


def central_difference(f, z, h=STEP):
    """(f(z + h) - f(z - h)) / (2h), element-wise."""
    return (f(z + h) - f(z - h)) / (2.0 * h)


def assert_matches_fd(exact, fd):
    """Every |fd - exact| within TOLERANCE, relative to max(1, |exact|)."""
    error = np.abs(fd - exact) / np.maximum(1.0, np.abs(exact))
    assert np.all(error <= TOLERANCE), f"max error {error.max():.3e}"


# ------------------------------------------------------- derivatives by finite differences


@pytest.mark.parametrize("name", SMOOTH)
@settings(max_examples=25, deadline=None)
@given(z=z_values)
@example(z=np.array([0.0]))
@example(z=np.array([-3.0, 3.0]))
@example(z=np.array([1e-300, -1e-300]))
def test_first_derivative_matches_finite_differences(name, z):
    act = ACTIVATIONS[name]
    assert_matches_fd(act.df(z), central_difference(act.f, z))


@pytest.mark.parametrize("name", SMOOTH)
@settings(max_examples=25, deadline=None)
@given(z=z_values)
@example(z=np.array([0.0]))
@example(z=np.array([-3.0, 3.0]))
@example(z=np.array([1e-300, -1e-300]))
def test_second_derivative_matches_finite_differences_of_first(name, z):
    act = ACTIVATIONS[name]
    assert_matches_fd(act.d2f(z), central_difference(act.df, z))


@settings(max_examples=25, deadline=None)
@given(z=z_values)
@example(z=np.array([1e-3, -1e-3]))
@example(z=np.array([-3.0, 3.0]))
def test_relu_derivatives_away_from_the_kink(z):
    # Central differences straddling z = 0 see the kink, not a derivative.
    assume(np.all(np.abs(z) > 10 * STEP))
    relu = ACTIVATIONS["relu"]
    assert_matches_fd(relu.df(z), central_difference(relu.f, z))
    assert_matches_fd(relu.d2f(z), central_difference(relu.df, z))
    np.testing.assert_array_equal(relu.df(z), (z > 0).astype(float))


def test_relu_second_derivative_is_exactly_zero_even_at_the_kink():
    z = np.array([-2.0, -1e-12, 0.0, 1e-12, 2.0])
    np.testing.assert_array_equal(ACTIVATIONS["relu"].d2f(z), np.zeros(5))


def test_flat_curvature_flags_exactly_the_activations_with_zero_second_derivative():
    # relu'' = 0 (and identity'' = 0) make every splitting matrix zero: splitting is
    # blind there, and the flag is how the library refuses to return a silent zero.
    z = np.linspace(-3.0, 3.0, 61)
    for name, act in ACTIVATIONS.items():
        assert act.flat_curvature == (not np.any(act.d2f(z))), name
    assert ACTIVATIONS["relu"].flat_curvature
    assert not ACTIVATIONS["softplus"].flat_curvature


def test_known_values():
    # sigmoid'' = s (1 - s)(1 - 2 s), not s (1 - s)^2: at z = 1, s = 0.7310585786300049
    s = 0.7310585786300049
    assert ACTIVATIONS["sigmoid"].d2f(np.array(1.0)) == pytest.approx(s * (1 - s) * (1 - 2 * s))
    assert ACTIVATIONS["tanh"].d2f(np.array(0.0)) == 0.0
    assert ACTIVATIONS["gaussian"].d2f(np.array(0.0)) == -1.0  # (0 - 1) exp(0)
    assert ACTIVATIONS["swish"].d2f(np.array(0.0)) == 0.5  # 2 * 1/2 * 1/2
    assert ACTIVATIONS["softplus"].f(np.array(0.0)) == pytest.approx(np.log(2.0))


# ----------------------------------------------------------------------------------- stability


@pytest.mark.parametrize("name", list(ACTIVATIONS))
@settings(max_examples=20, deadline=None)
@given(z=st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=5).map(np.array))
@example(z=np.array([-1e3, 1e3, 0.0, -745.0, 710.0]))
def test_stable_for_large_inputs(name, z):
    act = ACTIVATIONS[name]
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        for fn in (act.f, act.df, act.d2f):
            assert np.all(np.isfinite(fn(z)))


def test_large_input_limits():
    z = np.array([-1e3, 1e3])
    np.testing.assert_array_equal(sigmoid(z), [0.0, 1.0])
    np.testing.assert_allclose(ACTIVATIONS["softplus"].f(z), [0.0, 1e3])
    np.testing.assert_array_equal(ACTIVATIONS["tanh"].df(z), [0.0, 0.0])
    np.testing.assert_allclose(ACTIVATIONS["swish"].f(z), [0.0, 1e3])


def test_functions_do_not_modify_their_input():
    z = np.array([-1.0, 0.5, 2.0])
    for act in ACTIVATIONS.values():
        for fn in (act.f, act.df, act.d2f):
            out = fn(z)
            out[...] = 7.0  # writing to the output must not reach the input
            np.testing.assert_array_equal(z, [-1.0, 0.5, 2.0])


# ----------------------------------------------------------------------------------- surrogate


@pytest.mark.parametrize("beta", [0.5, 3.0, 10.0])
@settings(max_examples=25, deadline=None)
@given(z=z_values)
@example(z=np.array([0.0]))
def test_softplus_surrogate_is_second_derivative_of_softplus_beta(beta, z):
    # softplus_beta(z) = softplus(beta z) / beta, whose derivative is sigmoid(beta z)
    # (checked by the softplus test above); its finite difference is the surrogate.
    def softplus_beta_d1(x):
        return sigmoid(beta * x)

    assert_matches_fd(softplus_surrogate_d2(beta)(z), central_difference(softplus_beta_d1, z))


def test_softplus_surrogate_default_and_limit():
    d2f = softplus_surrogate_d2()
    assert d2f(np.array(0.0)) == 0.75  # beta s (1 - s) = 3 * 1/2 * 1/2
    # it is a curvature ReLU does not have: positive everywhere, concentrated at the kink
    z = np.linspace(-3, 3, 13)
    assert np.all(d2f(z) > 0) and np.argmax(d2f(z)) == 6


@pytest.mark.parametrize("beta", [0.0, -1.0, np.inf, np.nan])
def test_softplus_surrogate_rejects_bad_beta(beta):
    with pytest.raises(ValueError, match="beta must be a finite number > 0, got"):
        softplus_surrogate_d2(beta)


def test_unknown_activation_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"activation must be one of .*'tanh'.*got 'tanhh'"):
        get_activation("tanhh")
    assert get_activation(ACTIVATIONS["tanh"]) is ACTIVATIONS["tanh"]


FROM_OUTPUT = [name for name, act in ACTIVATIONS.items() if act.df_out is not None]


def test_tanh_sigmoid_and_softplus_take_their_derivatives_from_the_output():
    assert FROM_OUTPUT == ["tanh", "sigmoid", "softplus"]


@pytest.mark.parametrize("name", ["tanh", "sigmoid"])
def test_derivatives_from_the_output_are_the_same_numbers_bit_for_bit(name):
    act = get_activation(name)
    z = np.linspace(-40.0, 40.0, 4001)
    a = act.f(z)
    assert np.array_equal(act.slope(z, a), act.df(z))
    assert np.array_equal(act.curvature(z, a), act.d2f(z))


def test_softplus_derivatives_from_the_output_are_accurate_to_rounding():
    # reference in extended precision: s = 1 / (1 + e^-z), s (1 - s) = e^-z / (1 + e^-z)^2
    act = get_activation("softplus")
    z = np.linspace(-700.0, 700.0, 14001)
    zl = z.astype(np.longdouble)
    s = 1 / (1 + np.exp(-zl))
    curvature = np.exp(-zl) / (1 + np.exp(-zl)) ** 2
    a = act.f(z)
    for got, want in ((act.slope(z, a), s), (act.curvature(z, a), curvature)):
        normal = np.abs(want) > np.finfo(np.float64).tiny
        error = np.abs((got - want) / want)[normal].astype(np.float64)
        # a = softplus(z) carries one rounding of size ~|z| eps; e^-a turns it into |z| eps
        assert np.all(error <= 4 * np.finfo(np.float64).eps * np.maximum(1.0, np.abs(z[normal])))


def test_the_layers_use_the_output_they_cached():
    from minisplit.layers import Dense

    layer = Dense(3, 2, activation="softplus", seed=0)
    X = np.random.default_rng(0).standard_normal((5, 3))
    A, cache = layer.forward(X)
    assert cache[2] is A  # (X, Z, A): the output itself, no copy
