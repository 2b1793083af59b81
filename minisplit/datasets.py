"""Small built-in data sets for growing networks by splitting.

Conventions, used by every function here:

- ``X`` is float64 with one sample per row, shape ``(n, n_features)`` (``digits`` can also
  give images in NCHW order, ``(n, 1, 8, 8)``).
- Regression targets are float64 of shape ``(n, n_out)``; class labels are int64 of shape
  ``(n,)`` with values in ``[0, n_classes)``.
- Randomness comes only from the ``seed`` argument: a non-negative int or an
  ``np.random.Generator``. The same int always gives the same arrays; the global NumPy state is
  never read or changed. Rows come out in random order, so a slice is not one class.
- Nothing here modifies an array it was given.

The formulas of every data set are in ``docs/datasets.md``.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from minisplit._checks import check_bool, check_choice, check_int, check_real, make_rng

__all__ = [
    "DATASETS",
    "Dataset",
    "blobs",
    "digits",
    "load",
    "moons",
    "rbf_teacher",
    "spirals",
    "teacher_student",
    "train_test_split",
]

DATASETS = ("rbf_teacher", "spirals", "moons", "blobs", "teacher_student", "digits")

_DIGITS_PATH = Path(__file__).parent / "data" / "digits.npz"
_DIGITS_SHAPE = (1797, 64)


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


def _read_digits(path):
    """Load and validate the stored digits arrays: X uint8 (1797, 64) in 0..16, y uint8 0..9."""
    problem = f"{path} is corrupt or incomplete (reinstall minisplit)"
    try:
        # opened here, not by np.load, so the file is closed even when the zip is unreadable
        with open(path, "rb") as file, np.load(file, allow_pickle=False) as archive:
            if sorted(archive.files) != ["X", "y"]:
                raise OSError(f"{problem}: expected arrays ['X', 'y'], found {archive.files}")
            X, y = archive["X"], archive["y"]
    except (ValueError, zipfile.BadZipFile, EOFError) as error:
        raise OSError(f"{problem}: {error}") from error
    if X.dtype != np.uint8 or X.shape != _DIGITS_SHAPE:
        raise OSError(f"{problem}: X must be uint8 {_DIGITS_SHAPE}, got {X.dtype} {X.shape}")
    if y.dtype != np.uint8 or y.shape != _DIGITS_SHAPE[:1]:
        raise OSError(f"{problem}: y must be uint8 {_DIGITS_SHAPE[:1]}, got {y.dtype} {y.shape}")
    if X.max() > 16 or y.max() > 9:
        raise OSError(f"{problem}: pixel values must be 0..16 and labels 0..9")
    return X, y


def digits(images=False):
    """The UCI optical handwritten digits: 1,797 grey 8x8 images of the digits 0-9.

    x = pixel count / 16, so every value is in [0, 1] (each pixel counts the set pixels of a
    4x4 block of the original 32x32 bitmap, 0..16).

    Parameters
    ----------
    images : bool
        Return X as NCHW images (1797, 1, 8, 8) instead of flat rows (1797, 64).

    Returns
    -------
    X : ndarray, shape (1797, 64) or (1797, 1, 8, 8)
    y : ndarray of int64, shape (1797,)

    Notes
    -----
    No randomness: always the same 1,797 samples in the stored order. Data by E. Alpaydin and
    C. Kaynak, UCI Machine Learning Repository (1998), DOI 10.24432/C50P49, licence CC BY 4.0;
    see ``minisplit/data/DIGITS.md`` for how the shipped file was made.

    Examples
    --------
    >>> X, y = digits(images=True)
    >>> X.shape, int(y.max())
    ((1797, 1, 8, 8), 9)
    """
    check_bool(images, "images")
    X, y = _read_digits(_DIGITS_PATH)
    X = X.astype(np.float64) / 16.0  # (1797, 64)
    if images:
        X = X.reshape(-1, 1, 8, 8)  # (1797, 1, 8, 8), rows of the image are consecutive
    return X, y.astype(np.int64)


# ----------------------------------------------------------------------------- splitting


def train_test_split(X, y, test_fraction=0.25, seed=0):
    """Split rows into a random training part and test part.

    The test part gets round(test_fraction * n) rows chosen by a seeded permutation; the
    training part gets the rest. Both parts are new arrays.

    Parameters
    ----------
    X : array_like, shape (n, ...)
    y : array_like, shape (n, ...)
    test_fraction : float
        Fraction of rows held out, strictly between 0 and 1.
    seed : int or np.random.Generator
        Source of randomness.

    Returns
    -------
    X_train, y_train, X_test, y_test : ndarray
        Rows of X and y; together the two parts hold every row exactly once.

    Examples
    --------
    >>> X, y = moons(n=8)
    >>> X_train, y_train, X_test, y_test = train_test_split(X, y, test_fraction=0.25)
    >>> X_train.shape, X_test.shape
    ((6, 2), (2, 2))
    """
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim == 0 or y.ndim == 0:
        raise ValueError(f"X and y must have one row per sample, got shapes {X.shape}, {y.shape}")
    if X.shape[0] != y.shape[0]:
        raise ValueError(
            f"X and y must have the same number of rows, got {X.shape[0]} and {y.shape[0]}"
        )
    test_fraction = check_real(
        test_fraction, "test_fraction", low=0, high=1, low_open=True, high_open=True
    )
    n = X.shape[0]
    n_test = int(round(test_fraction * n))
    if not 0 < n_test < n:
        raise ValueError(
            f"test_fraction={test_fraction} of {n} rows gives {n_test} test and "
            f"{n - n_test} training rows; both parts must be nonempty"
        )
    order = make_rng(seed).permutation(n)  # (n,)
    test, train = order[:n_test], order[n_test:]
    return X[train], y[train], X[test], y[test]  # fancy indexing copies


# ----------------------------------------------------------------------------- registry


@dataclass(frozen=True, repr=False)
class Dataset:
    """A named data set already split into training and test parts.

    Attributes
    ----------
    name : str
        One of ``DATASETS``.
    task : str
        ``"regression"`` (y float64, (n, n_out)) or ``"classification"`` (y int64, (n,)).
    X_train, y_train, X_test, y_test : ndarray
    n_classes : int or None
        Number of classes; None for regression.
    """

    name: str
    task: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int | None

    def __repr__(self):
        return (
            f"Dataset(name={self.name!r}, task={self.task!r}, "
            f"X_train={self.X_train.shape}, X_test={self.X_test.shape}, "
            f"n_classes={self.n_classes})"
        )


def load(name, seed=0, test_fraction=0.25, **kwargs):
    """Make (or read) a built-in data set and split it into training and test parts.

    Parameters
    ----------
    name : str
        One of ``DATASETS``: "rbf_teacher", "spirals", "moons", "blobs", "teacher_student",
        "digits".
    seed : int or np.random.Generator
        Drives both the data (for generated sets) and the split.
    test_fraction : float
        Fraction of samples in the test part, strictly between 0 and 1.
    **kwargs
        Passed to the data set's function, e.g. ``n_classes=3`` for "spirals" or
        ``images=True`` for "digits".

    Returns
    -------
    Dataset

    Examples
    --------
    >>> data = load("spirals", n=100, n_classes=3)
    >>> data.task, data.n_classes, data.X_train.shape
    ('classification', 3, (75, 2))
    """
    check_choice(name, "name", DATASETS)
    if "return_teacher" in kwargs:
        raise TypeError("load does not take return_teacher; call the data set's function")
    function, task = _REGISTRY[name]
    rng = make_rng(seed)
    X, y = function(**kwargs) if name == "digits" else function(seed=rng, **kwargs)
    # every generator gives each class at least one sample, so the largest label is K - 1
    n_classes = int(y.max()) + 1 if task == "classification" else None
    parts = train_test_split(X, y, test_fraction=test_fraction, seed=rng)
    return Dataset(name, task, *parts, n_classes=n_classes)


_REGISTRY = {
    "rbf_teacher": (rbf_teacher, "regression"),
    "spirals": (spirals, "classification"),
    "moons": (moons, "classification"),
    "blobs": (blobs, "classification"),
    "teacher_student": (teacher_student, "regression"),
    "digits": (digits, "classification"),
}
