"""Activations: value, first and second derivative side by side.

Each activation is a triple of element-wise functions ``(f, df, d2f)`` of the
pre-activation ``z``. The second derivative is what the splitting matrix of a
neuron is made of (``S = sum_n g_n f''(z_n) h_n h_n^T``), so it is as much part
of an activation as its value.

All functions are numerically stable for ``|z|`` up to 1e3 and beyond: the
logistic function is computed from ``exp(-|z|)``, softplus as
``max(z, 0) + log1p(exp(-|z|))``, so no overflow warning is raised.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from minisplit._checks import check_choice, check_real

Array = np.ndarray


def sigmoid(z: Array) -> Array:
    """Logistic function s(z) = 1 / (1 + exp(-z)), stable for any float z."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


# identity: f = z, f' = 1, f'' = 0
def _identity(z):
    return z.copy()


def _identity_d1(z):
    return np.ones_like(z)


def _identity_d2(z):
    return np.zeros_like(z)


# tanh: t = tanh z, f' = 1 - t^2, f'' = -2 t (1 - t^2)
def _fresh(z):
    """An uninitialised float64 array shaped like z, for ufuncs to write into (``out=``).

    The derivatives below update one fresh array in place: each temporary of a
    large array costs a memory pass. ``out=`` keeps 0-d inputs arrays too.
    """
    return np.empty(np.shape(z))


def _tanh_d1_out(t):
    """f' = 1 - t^2 from the output t = tanh z (a fresh array)."""
    out = np.multiply(t, t, out=_fresh(t))
    return np.subtract(1.0, out, out=out)


def _tanh_d2_out(t):
    """f'' = -2 t (1 - t^2) from the output t = tanh z (a fresh array)."""
    out = _tanh_d1_out(t)
    np.multiply(out, t, out=out)
    return np.multiply(out, -2.0, out=out)


def _tanh_d1(z):
    return _tanh_d1_out(np.tanh(z))


def _tanh_d2(z):
    return _tanh_d2_out(np.tanh(z))


# sigmoid: s = sigmoid z, f' = s (1 - s), f'' = s (1 - s)(1 - 2 s)
def _sigmoid_d1_out(s):
    out = np.subtract(1.0, s, out=_fresh(s))
    return np.multiply(out, s, out=out)


def _sigmoid_d2_out(s):
    return s * (1.0 - s) * (1.0 - 2.0 * s)


def _sigmoid_d1(z):
    return _sigmoid_d1_out(sigmoid(z))


def _sigmoid_d2(z):
    return _sigmoid_d2_out(sigmoid(z))


# softplus: f = log(1 + e^z), f' = s, f'' = s (1 - s)
def _softplus(z):
    return np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))


def _softplus_d1_out(a):
    """f' = s = 1 - e^-a from the output a = softplus z (e^-a = 1 / (1 + e^z) = 1 - s),
    as -expm1(-a): accurate where s is tiny (a ~ e^z) and where it is near 1."""
    out = np.negative(a, out=_fresh(a))
    np.expm1(out, out=out)
    return np.negative(out, out=out)


def _softplus_d2_out(a):
    """f'' = s (1 - s) = -expm1(-a) e^-a from the output a = softplus z."""
    out = np.negative(a, out=_fresh(a))
    e = np.exp(out)  # 1 - s, computed directly (no cancellation where s is near 1)
    np.expm1(out, out=out)
    np.negative(out, out=out)
    return np.multiply(out, e, out=out)


# swish (SiLU): f = z s, f' = s + z s (1 - s), f'' = 2 s (1 - s) + z s (1 - s)(1 - 2 s)
def _swish(z):
    return z * sigmoid(z)


def _swish_d1(z):
    s = sigmoid(z)
    return s + z * s * (1.0 - s)


def _swish_d2(z):
    s = sigmoid(z)
    return 2.0 * s * (1.0 - s) + z * s * (1.0 - s) * (1.0 - 2.0 * s)


# gaussian: f = exp(-z^2/2), f' = -z f, f'' = (z^2 - 1) f
def _gaussian(z):
    return np.exp(-0.5 * z * z)


def _gaussian_d1(z):
    return -z * np.exp(-0.5 * z * z)


def _gaussian_d2(z):
    return (z * z - 1.0) * np.exp(-0.5 * z * z)


# relu: f = max(z, 0), f' = 1[z > 0], f'' = 0 (almost everywhere; undefined at the kink)
def _relu(z):
    return np.maximum(z, 0.0)


def _relu_d1(z):
    return (z > 0).astype(z.dtype)


def _relu_d2(z):
    return np.zeros_like(z)


@dataclass(frozen=True)
class Activation:
    """An element-wise activation with its first and second derivative.

    Parameters
    ----------
    name : str
        The registry name (``"tanh"``, ``"softplus"``, ...).
    f, df, d2f : callable
        ``z -> f(z)``, ``z -> f'(z)``, ``z -> f''(z)``, each mapping an array to
        a *new* array of the same shape (callers may update the result in place;
        the input is never modified).
    flat_curvature : bool
        True when ``f'' = 0`` almost everywhere (identity, relu): such a neuron
        has a zero splitting matrix, so splitting cannot see it.
    df_out, d2f_out : callable or None
        ``a -> f'(z)``, ``a -> f''(z)`` from the output ``a = f(z)``, where that is cheaper
        than from z: tanh 1 - a^2 and sigmoid a (1 - a), the same floating-point operations
        as ``df``/``d2f`` after their own ``f(z)`` (the same numbers); softplus
        -expm1(-a) and its product with e^-a, one exponential instead of the logistic
        function's (equal to ``df``/``d2f`` to rounding). None: only from z. Layers call
        :meth:`slope` and :meth:`curvature` with both.
    """

    name: str
    f: Callable[[Array], Array]
    df: Callable[[Array], Array]
    d2f: Callable[[Array], Array]
    flat_curvature: bool = False
    df_out: Callable[[Array], Array] | None = None
    d2f_out: Callable[[Array], Array] | None = None

    def slope(self, z, a) -> Array:
        """f'(z), given also the output ``a = f(z)`` (a new array)."""
        return self.df(z) if self.df_out is None else self.df_out(a)

    def curvature(self, z, a) -> Array:
        """f''(z), given also the output ``a = f(z)`` (a new array)."""
        return self.d2f(z) if self.d2f_out is None else self.d2f_out(a)


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("identity", _identity, _identity_d1, _identity_d2, flat_curvature=True),
        Activation("tanh", np.tanh, _tanh_d1, _tanh_d2, df_out=_tanh_d1_out,
                   d2f_out=_tanh_d2_out),
        Activation("sigmoid", sigmoid, _sigmoid_d1, _sigmoid_d2, df_out=_sigmoid_d1_out,
                   d2f_out=_sigmoid_d2_out),
        Activation("softplus", _softplus, sigmoid, _sigmoid_d1, df_out=_softplus_d1_out,
                   d2f_out=_softplus_d2_out),
        Activation("swish", _swish, _swish_d1, _swish_d2),
        Activation("gaussian", _gaussian, _gaussian_d1, _gaussian_d2),
        Activation("relu", _relu, _relu_d1, _relu_d2, flat_curvature=True),
    )
}


def get_activation(name: str | Activation) -> Activation:
    """Look up an activation by name (or pass an :class:`Activation` through).

    Raises
    ------
    ValueError
        For an unknown name, listing the known ones.

    Examples
    --------
    >>> import numpy as np
    >>> act = get_activation("tanh")
    >>> float(act.d2f(np.array(0.0)))
    -0.0
    """
    if isinstance(name, Activation):
        return name
    return ACTIVATIONS[check_choice(name, "activation", sorted(ACTIVATIONS))]


def softplus_surrogate_d2(beta: float = 3.0) -> Callable[[Array], Array]:
    """Curvature surrogate for ReLU: the second derivative of softplus with sharpness beta.

    ``softplus_beta(z) = log(1 + exp(beta z)) / beta`` tends to ``relu(z)`` as
    ``beta -> inf``; its second derivative ``beta s (1 - s)`` with
    ``s = sigmoid(beta z)`` is what the authors' code puts in place of ReLU's
    zero curvature when computing splitting matrices. It is an explicit,
    documented approximation: the true ``relu''`` is zero.

    Parameters
    ----------
    beta : float
        Sharpness, > 0 (the authors use 3).

    Returns
    -------
    callable
        ``z -> beta * s * (1 - s)`` with ``s = sigmoid(beta * z)``.
    """
    beta = check_real(beta, "beta", low=0, low_open=True)

    def d2f(z: Array) -> Array:
        s = sigmoid(beta * z)
        return beta * s * (1.0 - s)

    return d2f
