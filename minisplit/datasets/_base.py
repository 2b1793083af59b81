"""The record every loader returns, and the random train/test split (docs/datasets.md)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from minisplit._checks import check_real, make_rng


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
    >>> from minisplit.datasets import moons
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



@dataclass(frozen=True, repr=False)
class Dataset:
    """A named data set already split into training and test parts.

    Attributes
    ----------
    name : str
        One of ``DATASETS``, ``"cifar10"`` (from ``load_cifar10``) or ``"speech_commands"``
        (from ``load_speech_commands``).
    task : str
        ``"regression"`` (y float64, (n, n_out)) or ``"classification"`` (y int64, (n,)).
    X_train, y_train, X_test, y_test : ndarray
    n_classes : int or None
        Number of classes; None for regression.
    class_names : tuple of str or None
        The name of each label 0 .. n_classes - 1 where the data has them ("fashion_mnist",
        "keywords", "cifar10", "speech_commands"); None otherwise.
    """

    name: str
    task: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int | None
    class_names: tuple[str, ...] | None = None

    def __repr__(self):
        return (
            f"Dataset(name={self.name!r}, task={self.task!r}, "
            f"X_train={self.X_train.shape}, X_test={self.X_test.shape}, "
            f"n_classes={self.n_classes})"
        )


