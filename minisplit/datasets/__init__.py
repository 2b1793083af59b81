"""Small built-in data sets for growing networks by splitting.

Conventions, used by every function here:

- ``X`` is float64 with one sample per row, shape ``(n, n_features)`` (``digits``,
  ``fashion_mnist`` and ``keywords`` can also give images in NCHW order, ``(n, 1, H, W)``;
  ``load_cifar10`` always does, ``(n, 3, 32, 32)``). Pixels are scaled to [0, 1]; audio comes
  as MFCCs (``minisplit.audio``), 49 frames x 10 coefficients per one-second clip.
- Regression targets are float64 of shape ``(n, n_out)``; class labels are int64 of shape
  ``(n,)`` with values in ``[0, n_classes)``.
- Randomness comes only from the ``seed`` argument: a non-negative int or an
  ``np.random.Generator``. The same int always gives the same arrays; the global NumPy state is
  never read or changed. Rows come out in random order, so a slice is not one class.
- Nothing here modifies an array it was given.

The formulas of every data set are in ``docs/datasets.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from minisplit._checks import check_choice, make_rng
from minisplit.datasets._base import Dataset, train_test_split
from minisplit.datasets.cifar10 import load_cifar10
from minisplit.datasets.generated import blobs, moons, rbf_teacher, spirals, teacher_student
from minisplit.datasets.shipped import (
    FASHION_MNIST_CLASSES,
    KEYWORD_CLASSES,
    digits,
    fashion_mnist,
    keywords,
)
from minisplit.datasets.speech_commands import load_speech_commands

__all__ = [
    "DATASETS",
    "FASHION_MNIST_CLASSES",
    "KEYWORD_CLASSES",
    "Dataset",
    "blobs",
    "digits",
    "fashion_mnist",
    "keywords",
    "load",
    "load_cifar10",
    "load_speech_commands",
    "moons",
    "rbf_teacher",
    "spirals",
    "teacher_student",
    "train_test_split",
]

DATASETS = (
    "rbf_teacher", "spirals", "moons", "blobs", "teacher_student", "digits", "fashion_mnist",
    "keywords",
)


def load(name, seed=0, test_fraction=None, **kwargs):
    """Make (or read) a built-in data set and split it into training and test parts.

    Parameters
    ----------
    name : str
        One of ``DATASETS``: "rbf_teacher", "spirals", "moons", "blobs", "teacher_student",
        "digits", "fashion_mnist", "keywords".
    seed : int or np.random.Generator
        Drives both the data (for generated sets) and the split. For "fashion_mnist" and
        "keywords", whose splits are fixed, it only shuffles the rows within each part.
    test_fraction : float or None
        Fraction of samples in the test part, strictly between 0 and 1; None means 0.25.
        "fashion_mnist" and "keywords" keep their own splits (the original test images; the
        clips of voices that never speak in training), so for them test_fraction must be None:
        any number is refused rather than ignored.
    **kwargs
        Passed to the data set's function, e.g. ``n_classes=3`` for "spirals" or
        ``images=True`` for "digits", "fashion_mnist" and "keywords".

    Returns
    -------
    Dataset

    Examples
    --------
    >>> data = load("spirals", n=100, n_classes=3)
    >>> data.task, data.n_classes, data.X_train.shape
    ('classification', 3, (75, 2))
    >>> data = load("fashion_mnist", images=True)
    >>> data.X_train.shape, data.X_test.shape, data.class_names[9]
    ((6000, 1, 14, 14), (1000, 1, 14, 14), 'Ankle boot')
    >>> data = load("keywords")
    >>> data.X_train.shape, data.X_test.shape, data.class_names[2]
    ((2400, 490), (600, 490), 'yes')
    """
    check_choice(name, "name", DATASETS)
    if "return_teacher" in kwargs:
        raise TypeError("load does not take return_teacher; call the data set's function")
    entry = _REGISTRY[name]
    rng = make_rng(seed)
    X_y = entry.function(seed=rng, **kwargs) if entry.seeded else entry.function(**kwargs)
    if entry.split:
        if test_fraction is not None:
            raise ValueError(
                f"test_fraction must be None for {name!r}, whose test part is fixed "
                f"({entry.split}), got {test_fraction!r}"
            )
        X_train, y_train, X_test, y_test = X_y
        train, test = rng.permutation(len(y_train)), rng.permutation(len(y_test))
        parts = X_train[train], y_train[train], X_test[test], y_test[test]
    else:
        test_fraction = 0.25 if test_fraction is None else test_fraction
        parts = train_test_split(*X_y, test_fraction=test_fraction, seed=rng)
    # every generator gives each class at least one sample, so the largest label is K - 1
    n_classes = None
    if entry.task == "classification":
        n_classes = int(max(parts[1].max(), parts[3].max())) + 1
    return Dataset(name, entry.task, *parts, n_classes=n_classes, class_names=entry.class_names)


class _Entry(NamedTuple):
    """How ``load`` makes one data set."""

    function: Callable  # returns (X, y), or (X_train, y_train, X_test, y_test) if split
    task: str  # "regression" or "classification"
    seeded: bool = True  # the function takes seed= (generated data)
    split: str | None = None  # what the data's own fixed test part is, if it has one
    class_names: tuple[str, ...] | None = None


_REGISTRY = {
    "rbf_teacher": _Entry(rbf_teacher, "regression"),
    "spirals": _Entry(spirals, "classification"),
    "moons": _Entry(moons, "classification"),
    "blobs": _Entry(blobs, "classification"),
    "teacher_student": _Entry(teacher_student, "regression"),
    "digits": _Entry(digits, "classification", seeded=False),
    "fashion_mnist": _Entry(
        fashion_mnist, "classification", seeded=False, split="the original test images",
        class_names=FASHION_MNIST_CLASSES,
    ),
    "keywords": _Entry(
        keywords, "classification", seeded=False,
        split="the clips of voices that never speak in training", class_names=KEYWORD_CLASSES,
    ),
}
