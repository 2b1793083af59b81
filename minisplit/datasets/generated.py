"""The generated problems: regression (rbf_teacher, teacher_student) and classification
(spirals, moons, blobs); every one drawn from its ``seed`` alone (docs/datasets.md)."""

from __future__ import annotations

import numpy as np

from minisplit._checks import check_int, check_real, make_rng

# ----------------------------------------------------------------------------- helpers


def _balanced_labels(n, n_classes, rng):
    """Shuffled int64 labels with class sizes differing by at most one, shape (n,)."""
    counts = np.full(n_classes, n // n_classes)
    counts[: n % n_classes] += 1
    return rng.permutation(np.repeat(np.arange(n_classes, dtype=np.int64), counts))


# ----------------------------------------------------------------------------- regression


def rbf_teacher(n=200, n_centers=4, width=0.5, noise=0.0, seed=0, return_teacher=False):
    """1-D regression whose target is a random radial-basis-function teacher network.

    y = sum_j w_j exp(-(x - c_j)^2 / (2 width^2)) + noise * e,   e ~ N(0, 1)

    with centres c_j ~ U(-3, 3), weights w_j ~ N(0, 1) and inputs x ~ U(-3, 3). This is the
    toy problem of the splitting paper: a student RBF network with too few neurons gets stuck,
    and splitting a neuron lets it reach the teacher's other bumps.

    Parameters
    ----------
    n : int
        Number of samples (>= 1).
    n_centers : int
        Number of teacher neurons (>= 1).
    width : float
        Shared teacher width (> 0).
    noise : float
        Standard deviation of the Gaussian noise added to y (>= 0).
    seed : int or np.random.Generator
        Source of randomness.
    return_teacher : bool
        Also return the teacher's parameters.

    Returns
    -------
    X : ndarray, shape (n, 1)
        Inputs in [-3, 3], in random order (sort them before drawing a line plot).
    y : ndarray, shape (n, 1)
        Targets.
    teacher : dict, only if ``return_teacher``
        ``{"centers": (n_centers,), "weights": (n_centers,), "width": float}``.

    References
    ----------
    Q. Liu, L. Wu, D. Wang, "Splitting Steepest Descent for Growing Neural Architectures",
    NeurIPS 2019, arXiv:1910.02366.

    Examples
    --------
    >>> X, y = rbf_teacher(n=50, seed=1)
    >>> X.shape, y.shape
    ((50, 1), (50, 1))
    """
    n = check_int(n, "n", low=1)
    n_centers = check_int(n_centers, "n_centers", low=1)
    width = check_real(width, "width", low=0, low_open=True)
    noise = check_real(noise, "noise", low=0)
    rng = make_rng(seed)
    centers = rng.uniform(-3.0, 3.0, size=n_centers)  # (n_centers,)
    weights = rng.standard_normal(n_centers)  # (n_centers,)
    X = rng.uniform(-3.0, 3.0, size=(n, 1))  # (n, 1)
    y = np.exp(-((X - centers) ** 2) / (2.0 * width**2)) @ weights[:, None]  # (n, 1)
    y = y + noise * rng.standard_normal((n, 1))
    if return_teacher:
        return X, y, {"centers": centers, "weights": weights, "width": width}
    return X, y


def teacher_student(
    n=500, n_in=4, teacher_width=8, n_out=1, noise=0.0, seed=0, return_teacher=False
):
    """Regression on the outputs of a random one-hidden-layer tanh teacher network.

    y = tanh(X W1^T + b1) W2^T + b2 + noise * E,   E ~ N(0, I)

    with X ~ N(0, I), W1 ~ N(0, 1/n_in), b1 ~ N(0, 1), W2 ~ N(0, 1/teacher_width),
    b2 ~ N(0, 0.1^2), entries independent. The scales keep the pre-activations and y of order
    one whatever the sizes. A student narrower than ``teacher_width`` cannot fit it
    exactly, so growth should help until the student is about as wide as the teacher.

    Parameters
    ----------
    n : int
        Number of samples (>= 1).
    n_in : int
        Input dimension (>= 1).
    teacher_width : int
        Hidden neurons of the teacher (>= 1).
    n_out : int
        Output dimension (>= 1).
    noise : float
        Standard deviation of the Gaussian noise added to y (>= 0).
    seed : int or np.random.Generator
        Source of randomness.
    return_teacher : bool
        Also return the teacher's parameters.

    Returns
    -------
    X : ndarray, shape (n, n_in)
    y : ndarray, shape (n, n_out)
    teacher : dict, only if ``return_teacher``
        ``{"W1": (teacher_width, n_in), "b1": (teacher_width,),
        "W2": (n_out, teacher_width), "b2": (n_out,)}``.

    Examples
    --------
    >>> X, y = teacher_student(n=10, n_in=3, n_out=2)
    >>> X.shape, y.shape
    ((10, 3), (10, 2))
    """
    n = check_int(n, "n", low=1)
    n_in = check_int(n_in, "n_in", low=1)
    teacher_width = check_int(teacher_width, "teacher_width", low=1)
    n_out = check_int(n_out, "n_out", low=1)
    noise = check_real(noise, "noise", low=0)
    rng = make_rng(seed)
    W1 = rng.standard_normal((teacher_width, n_in)) / np.sqrt(n_in)  # (width, n_in)
    b1 = rng.standard_normal(teacher_width)  # (width,)
    W2 = rng.standard_normal((n_out, teacher_width)) / np.sqrt(teacher_width)  # (n_out, width)
    b2 = 0.1 * rng.standard_normal(n_out)  # (n_out,)
    X = rng.standard_normal((n, n_in))  # (n, n_in)
    H = np.tanh(X @ W1.T + b1)  # (n, width)
    y = H @ W2.T + b2 + noise * rng.standard_normal((n, n_out))  # (n, n_out)
    if return_teacher:
        return X, y, {"W1": W1, "b1": b1, "W2": W2, "b2": b2}
    return X, y


# ----------------------------------------------------------------------------- classification


def spirals(n=300, n_classes=2, noise=0.1, seed=0):
    """Interleaved 2-D spirals, one arm per class.

    For a sample of class k with t ~ U(0, 1):
    x = t (cos a, sin a) + noise * e,   a = 2 pi (k / n_classes + t),   e ~ N(0, I)

    Each arm makes one full turn while its radius grows from 0 to 1, so for two classes the
    arms are 1/2 apart along any ray; the default noise blurs but does not erase them.

    Parameters
    ----------
    n : int
        Number of samples (>= n_classes); class sizes differ by at most one.
    n_classes : int
        Number of arms (>= 2).
    noise : float
        Standard deviation of the Gaussian noise added to each coordinate (>= 0).
    seed : int or np.random.Generator
        Source of randomness.

    Returns
    -------
    X : ndarray, shape (n, 2)
    y : ndarray of int64, shape (n,)

    Examples
    --------
    >>> X, y = spirals(n=30, n_classes=3)
    >>> X.shape, sorted(set(y.tolist()))
    ((30, 2), [0, 1, 2])
    """
    n_classes = check_int(n_classes, "n_classes", low=2)
    n = check_int(n, "n", low=n_classes)
    noise = check_real(noise, "noise", low=0)
    rng = make_rng(seed)
    y = _balanced_labels(n, n_classes, rng)  # (n,)
    t = rng.uniform(0.0, 1.0, size=n)  # (n,)
    angle = 2.0 * np.pi * (y / n_classes + t)  # (n,)
    X = t[:, None] * np.column_stack([np.cos(angle), np.sin(angle)])  # (n, 2)
    return X + noise * rng.standard_normal((n, 2)), y


def moons(n=300, noise=0.1, seed=0):
    """Two interleaving half circles.

    With t ~ U(0, 1) and e ~ N(0, I):
    class 0: x = (cos pi t, sin pi t) + noise * e
    class 1: x = (1 - cos pi t, 1/2 - sin pi t) + noise * e

    Parameters
    ----------
    n : int
        Number of samples (>= 2); class 0 gets the extra sample when n is odd.
    noise : float
        Standard deviation of the Gaussian noise added to each coordinate (>= 0).
    seed : int or np.random.Generator
        Source of randomness.

    Returns
    -------
    X : ndarray, shape (n, 2)
    y : ndarray of int64, shape (n,)

    Examples
    --------
    >>> X, y = moons(n=20, noise=0.0)
    >>> X.shape, int(y.sum())
    ((20, 2), 10)
    """
    n = check_int(n, "n", low=2)
    noise = check_real(noise, "noise", low=0)
    rng = make_rng(seed)
    y = _balanced_labels(n, 2, rng)  # (n,)
    s = np.pi * rng.uniform(0.0, 1.0, size=n)  # (n,)
    outer = np.column_stack([np.cos(s), np.sin(s)])  # (n, 2)
    inner = np.column_stack([1.0 - np.cos(s), 0.5 - np.sin(s)])  # (n, 2)
    X = np.where(y[:, None] == 0, outer, inner)  # (n, 2)
    return X + noise * rng.standard_normal((n, 2)), y


def blobs(n=300, n_classes=3, std=1.0, seed=0):
    """Isotropic Gaussian clusters whose centres sit evenly on a circle.

    x = c_k + std * e,   e ~ N(0, I),
    c_k = R (cos(phi + 2 pi k / n_classes), sin(phi + 2 pi k / n_classes)),
    R = 2.5 / sin(pi / n_classes),   phi ~ U(0, 2 pi)

    R is chosen so that neighbouring centres are 5 apart whatever the number of classes, so
    ``std`` alone sets how much the classes overlap.

    Parameters
    ----------
    n : int
        Number of samples (>= n_classes); class sizes differ by at most one.
    n_classes : int
        Number of clusters (>= 2).
    std : float
        Standard deviation of each cluster along each axis (>= 0).
    seed : int or np.random.Generator
        Source of randomness.

    Returns
    -------
    X : ndarray, shape (n, 2)
    y : ndarray of int64, shape (n,)

    Examples
    --------
    >>> X, y = blobs(n=12, n_classes=4)
    >>> X.shape, y.dtype.name
    ((12, 2), 'int64')
    """
    n_classes = check_int(n_classes, "n_classes", low=2)
    n = check_int(n, "n", low=n_classes)
    std = check_real(std, "std", low=0)
    rng = make_rng(seed)
    y = _balanced_labels(n, n_classes, rng)  # (n,)
    radius = 2.5 / np.sin(np.pi / n_classes)
    angle = rng.uniform(0.0, 2.0 * np.pi) + 2.0 * np.pi * np.arange(n_classes) / n_classes
    centers = radius * np.column_stack([np.cos(angle), np.sin(angle)])  # (n_classes, 2)
    return centers[y] + std * rng.standard_normal((n, 2)), y


