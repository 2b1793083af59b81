"""Finite-difference verification of hand-derived derivatives, shipped in the package.

Central differences in random directions u (unit vectors, float64):

gradient   (L(x + h u) - L(x - h u)) / (2h)     against   grad(x) . u
HVP        (g(x + h u) - g(x - h u)) / (2h)     against   hvp(x, u)

Second derivatives difference the *exact gradient*, not the loss twice, so both
checks have the same error law: truncation ``h^2/6 * |third derivative|`` plus
round-off ``~ eps_machine * |value| / h``. With the default ``h = 1e-5`` in
float64 both are about 1e-10 relative, so :data:`TOLERANCE` = 1e-6 leaves four
orders of magnitude for the constants and flags any wrong formula (a wrong
term is an O(1) relative error).
"""

from __future__ import annotations

import numpy as np

from minisplit._checks import check_int, check_real, make_rng
from minisplit.network import flatten

#: Relative error above which a derivative is declared wrong (see module docstring).
TOLERANCE = 1e-6
#: Default central-difference step.
STEP = 1e-5


def _directions(size, n_directions, seed):
    rng = make_rng(seed)
    U = rng.standard_normal((check_int(n_directions, "n_directions", low=1), size))
    return U / np.linalg.norm(U, axis=1, keepdims=True)


def gradient_error(fun, grad, x, seed=0, n_directions=4, step=STEP) -> float:
    """Largest relative error of ``grad`` against central differences of ``fun``.

    For each random unit direction u::

        err_u = |(f(x + h u) - f(x - h u)) / (2h) - g . u| / max(||g||, tiny)

    where g = grad(x). Dividing by ||g|| (the largest any directional
    derivative can be) keeps the measure stable when g . u happens to be small.

    Parameters
    ----------
    fun : callable (P,) -> float
    grad : callable (P,) -> (P,)
    x : ndarray (P,)
        The point (not modified).
    seed : int or Generator
        Draws the directions.
    n_directions : int
    step : float
        h > 0.

    Returns
    -------
    float
        The maximum of err_u over the directions.

    Notes
    -----
    The central difference carries round-off of about ``eps_machine |f| / h``
    (~2e-11 |f| at h = 1e-5). At a point whose gradient is that small (a
    saturated network, an exact stationary point) err_u measures round-off, not
    the formula: check derivatives where ``||g||`` is well above it.

    Examples
    --------
    >>> import numpy as np
    >>> gradient_error(lambda x: float(x @ x), lambda x: 2 * x, np.ones(3)) < TOLERANCE
    True
    """
    x = np.array(x, dtype=np.float64)
    h = check_real(step, "step", low=0, low_open=True)
    g = np.asarray(grad(x), dtype=np.float64)
    scale = max(float(np.linalg.norm(g)), 1e-12)
    errors = [
        abs((fun(x + h * u) - fun(x - h * u)) / (2 * h) - float(g @ u)) / scale
        for u in _directions(x.size, n_directions, seed)
    ]
    return float(max(errors))


def hvp_error(grad, hvp, x, seed=0, n_directions=4, step=STEP) -> float:
    """Largest relative error of ``hvp`` against central differences of ``grad``.

    For each random unit direction u::

        err_u = ||(g(x + h u) - g(x - h u)) / (2h) - hvp(x, u)|| / max(||hvp(x, u)||, tiny)

    Parameters
    ----------
    grad : callable (P,) -> (P,)
    hvp : callable ((P,), (P,)) -> (P,)
    x : ndarray (P,)
    seed, n_directions, step
        As in :func:`gradient_error`.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> A = np.array([[2.0, 1.0], [1.0, 3.0]])
    >>> hvp_error(lambda x: A @ x, lambda x, u: A @ u, np.ones(2)) < TOLERANCE
    True
    """
    x = np.array(x, dtype=np.float64)
    h = check_real(step, "step", low=0, low_open=True)
    errors = []
    for u in _directions(x.size, n_directions, seed):
        fd = (np.asarray(grad(x + h * u)) - np.asarray(grad(x - h * u))) / (2 * h)
        exact = np.asarray(hvp(x, u), dtype=np.float64)
        scale = max(float(np.linalg.norm(exact)), float(np.linalg.norm(fd)), 1e-12)
        errors.append(float(np.linalg.norm(fd - exact)) / scale)
    return float(max(errors))


def check_network(net, X, y, seed=0, n_directions=4, step=STEP, hessian=True) -> dict:
    """Check a network's gradient, HVP and (optionally) dense Hessian.

    Parameters
    ----------
    net : Network
    X, y : arrays
    seed, n_directions, step
        As in :func:`gradient_error`.
    hessian : bool
        Also form ``net.hessian`` (small networks only) and report
        ``||H - H^T|| / ||H||`` and the error of ``H u`` against ``hvp``.

    Returns
    -------
    dict
        ``{"gradient": e, "hvp": e}`` plus ``"hessian_symmetry"`` and
        ``"hessian_vs_hvp"`` when ``hessian`` is True: relative errors to be
        compared with :data:`TOLERANCE`.
    """
    x0 = flatten(net.params)

    def fun(x):
        return net.with_params(x).loss(X, y)

    def grad(x):
        return flatten(net.with_params(x).loss_and_grad(X, y)[1])

    def hvp(x, u):
        return flatten(net.with_params(x).hvp(X, y, u))

    result = {
        "gradient": gradient_error(fun, grad, x0, seed, n_directions, step),
        "hvp": hvp_error(grad, hvp, x0, seed, n_directions, step),
    }
    if hessian:
        H = net.hessian(X, y)
        norm = max(float(np.linalg.norm(H)), 1e-300)
        result["hessian_symmetry"] = float(np.linalg.norm(H - H.T)) / norm
        errors = []
        for u in _directions(x0.size, n_directions, seed):
            exact = hvp(x0, u)
            scale = max(float(np.linalg.norm(exact)), 1e-300)
            errors.append(float(np.linalg.norm(H @ u - exact)) / scale)
        result["hessian_vs_hvp"] = float(max(errors))
    return result
