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

import math
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from minisplit._checks import (
    check_bool,
    check_choice,
    check_int,
    check_real,
    check_type,
    make_rng,
)

# minisplit.audio is imported inside the keyword functions: scipy only when audio is read

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
#: The names of Fashion-MNIST's labels 0..9, in label order (Xiao, Rasul & Vollgraf, 2017).
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

_DATA = Path(__file__).parent / "data"
_DIGITS_PATH = _DATA / "digits.npz"
_DIGITS_SHAPE = (1797, 64)
_FASHION_PATH = _DATA / "fashion_mnist.npz"
# name -> (dtype, shape) of every array in fashion_mnist.npz (minisplit/data/FASHION_MNIST.md)
_FASHION_ARRAYS = {
    "X_train": (np.uint8, (6000, 14, 14)),
    "y_train": (np.uint8, (6000,)),
    "X_test": (np.uint8, (1000, 14, 14)),
    "y_test": (np.uint8, (1000,)),
    "train_index": (np.int32, (6000,)),
    "test_index": (np.int32, (1000,)),
}

#: The 12 classes of keyword spotting on Speech Commands, in TensorFlow's ``speech_commands``
#: label order (as Hello Edge): silence, unknown word, then the ten keywords.
KEYWORD_CLASSES = (
    "_silence_", "_unknown_", "yes", "no", "up", "down", "left", "right", "on", "off", "stop",
    "go",
)
_KEYWORDS_PATH = _DATA / "keywords.npz"
_KEYWORD_FRAMES, _KEYWORD_COEFFICIENTS = 49, 10  # minisplit.audio's defaults, one second
_KEYWORD_PARTS = {"train": 2400, "test": 600}  # clips (minisplit/data/KEYWORDS.md)
# name -> (dtype, shape) of every array in keywords.npz
_KEYWORDS_ARRAYS = {
    "classes": (np.dtype("<U9"), (12,)),
    "voices": (np.dtype("<U33"), (197,)),
    "words": (np.dtype("<U6"), (30,)),
}
for _part, _n in _KEYWORD_PARTS.items():
    _KEYWORDS_ARRAYS.update({
        f"X_{_part}": (np.float16, (_n, _KEYWORD_FRAMES, _KEYWORD_COEFFICIENTS)),
        f"y_{_part}": (np.uint8, (_n,)),
        f"voice_{_part}": (np.int16, (_n,)),
        f"word_{_part}": (np.int8, (_n,)),
    })
del _part, _n

_SPEECH_RATE = 16000  # Speech Commands: one-second clips, 16 kHz mono 16-bit PCM
_SPEECH_NOISE = "_background_noise_"
_SPEECH_LISTS = {"validation": "validation_list.txt", "testing": "testing_list.txt"}
# where each part cuts its silence clips in a background-noise file, in tenths of its length:
# disjoint spans, so no stretch of noise is in two parts
_SILENCE_SPANS = {"training": (0, 8), "validation": (8, 9), "testing": (9, 10)}
_SPEECH_CHUNK = 512  # clips read and turned into MFCCs at a time: 65 MB of float64 audio

_CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
_CIFAR10_TEST_FILE = "test_batch.bin"
_CIFAR10_META_FILE = "batches.meta.txt"
_CIFAR10_RECORD = 1 + 3 * 32 * 32  # bytes: the label, then the R, G and B planes, 32x32 each
_CIFAR10_RECORDS = 10_000  # records in every file of the real data (the tests shrink it)


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


def _read_npz(path, arrays):
    """The arrays of a shipped .npz, checked against ``arrays`` = {name: (dtype, shape)}."""
    problem = f"{path} is corrupt or incomplete (reinstall minisplit)"
    names = sorted(arrays)
    try:
        # opened here, not by np.load, so the file is closed even when the zip is unreadable
        with open(path, "rb") as file, np.load(file, allow_pickle=False) as archive:
            if sorted(archive.files) != names:
                raise OSError(f"{problem}: expected arrays {names}, found {archive.files}")
            found = {name: archive[name] for name in names}
    except (ValueError, zipfile.BadZipFile, EOFError) as error:
        raise OSError(f"{problem}: {error}") from error
    for name, (dtype, shape) in arrays.items():
        a = found[name]
        if a.dtype != dtype or a.shape != shape:
            raise OSError(
                f"{problem}: {name} must be {np.dtype(dtype)} {shape}, got {a.dtype} {a.shape}"
            )
    return found


def _read_digits(path):
    """Load and validate the stored digits arrays: X uint8 (1797, 64) in 0..16, y uint8 0..9."""
    found = _read_npz(path, {"X": (np.uint8, _DIGITS_SHAPE), "y": (np.uint8, _DIGITS_SHAPE[:1])})
    X, y = found["X"], found["y"]
    if X.max() > 16 or y.max() > 9:
        raise OSError(f"{path} is corrupt or incomplete (reinstall minisplit): "
                      "pixel values must be 0..16 and labels 0..9")
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


def _read_fashion_mnist(path):
    """Load and validate the stored Fashion-MNIST subset (see minisplit/data/FASHION_MNIST.md)."""
    found = _read_npz(path, _FASHION_ARRAYS)
    for part in ("train", "test"):
        if found[f"y_{part}"].max() > 9:
            raise OSError(f"{path} is corrupt or incomplete (reinstall minisplit): "
                          f"y_{part} must hold labels 0..9, got {found[f'y_{part}'].max()}")
    return found


def fashion_mnist(images=False):
    """A class-balanced subset of Fashion-MNIST: grey 14x14 images of ten kinds of clothing.

    x = pixel / 255, so every value is in [0, 1]. Each pixel is the rounded mean of a 2x2 block
    of the original 28x28 image (0..255). The split is the original one: the 6,000 training
    images (600 per class) come from Fashion-MNIST's training file, the 1,000 test images
    (100 per class) from its test file. The label names are ``FASHION_MNIST_CLASSES``.

    Parameters
    ----------
    images : bool
        Return X as NCHW images (n, 1, 14, 14) instead of flat rows (n, 196).

    Returns
    -------
    X_train : ndarray, shape (6000, 196) or (6000, 1, 14, 14)
    y_train : ndarray of int64, shape (6000,)
    X_test : ndarray, shape (1000, 196) or (1000, 1, 14, 14)
    y_test : ndarray of int64, shape (1000,)

    Notes
    -----
    No randomness: always the same images in the stored order (their order in the original
    files). ``load("fashion_mnist", seed=s)`` keeps this split and shuffles the rows of each
    part. Data by H. Xiao, K. Rasul and R. Vollgraf, Zalando SE (2017), MIT licence; see
    ``minisplit/data/FASHION_MNIST.md`` for the licence notice and how the shipped file was made.

    References
    ----------
    H. Xiao, K. Rasul, R. Vollgraf, "Fashion-MNIST: a Novel Image Dataset for Benchmarking
    Machine Learning Algorithms", 2017, arXiv:1708.07747.

    Examples
    --------
    >>> X_train, y_train, X_test, y_test = fashion_mnist(images=True)
    >>> X_train.shape, X_test.shape, FASHION_MNIST_CLASSES[int(y_test[0])]
    ((6000, 1, 14, 14), (1000, 1, 14, 14), 'Dress')
    """
    check_bool(images, "images")
    found = _read_fashion_mnist(_FASHION_PATH)
    shape = (-1, 1, 14, 14) if images else (-1, 14 * 14)
    parts = []
    for part in ("train", "test"):
        X = (found[f"X_{part}"].astype(np.float64) / 255.0).reshape(shape)  # (n, 196) or NCHW
        parts += [X, found[f"y_{part}"].astype(np.int64)]
    return tuple(parts)


def _read_keywords(path):
    """Load and validate the stored keyword features (see minisplit/data/KEYWORDS.md)."""
    found = _read_npz(path, _KEYWORDS_ARRAYS)
    problem = f"{path} is corrupt or incomplete (reinstall minisplit)"
    if tuple(found["classes"].tolist()) != KEYWORD_CLASSES:
        raise OSError(f"{problem}: classes must be {list(KEYWORD_CLASSES)}, "
                      f"got {found['classes'].tolist()}")
    n_voices = len(found["voices"])
    for part in _KEYWORD_PARTS:
        y, voice = found[f"y_{part}"], found[f"voice_{part}"]
        if y.max() >= len(KEYWORD_CLASSES):
            raise OSError(f"{problem}: y_{part} must hold labels 0..11, got {y.max()}")
        if voice.min() < -1 or voice.max() >= n_voices or np.any((voice < 0) != (y == 0)):
            raise OSError(f"{problem}: voice_{part} must index voices (0..{n_voices - 1}) for "
                          "spoken clips and be -1 exactly for the _silence_ clips")
        if not np.all(np.isfinite(found[f"X_{part}"])):
            raise OSError(f"{problem}: X_{part} must be finite")
    return found


def keywords(images=False):
    """Synthetic spoken keywords as MFCCs: Speech Commands' 12 classes, voices unseen in test.

    Each clip is one second of a word said by espeak-ng or flite, resampled to 16 kHz, shifted
    at random, in white, pink or brown noise (or noise alone for "_silence_"), and turned into
    ``minisplit.audio.mfcc_batch``'s 49 x 10 features (Hello Edge's recipe), stored as float16.
    Labels follow ``KEYWORD_CLASSES``: 0 "_silence_", 1 "_unknown_" (20 other Speech Commands
    words), 2..11 "yes" ... "go". The split is fixed and keeps voices apart: 2,400 training
    clips (200 per class) and 600 test clips (50 per class), and no voice (an espeak-ng language
    with a variant, or a flite voice) speaks in both parts.

    Parameters
    ----------
    images : bool
        Return X as NCHW images (n, 1, 49, 10), frames down and coefficients across, instead
        of flat rows (n, 490) (frame t's 10 coefficients are columns 10 t .. 10 t + 9).

    Returns
    -------
    X_train : ndarray, shape (2400, 490) or (2400, 1, 49, 10)
    y_train : ndarray of int64, shape (2400,)
    X_test : ndarray, shape (600, 490) or (600, 1, 49, 10)
    y_test : ndarray of int64, shape (600,)

    Notes
    -----
    No randomness: always the same clips in the stored order. ``load("keywords", seed=s)``
    keeps this split and shuffles the rows of each part. The float16 features differ from the
    float64 ones by at most 0.031 (half a float16 step at |c| < 64), under 0.5 % of any
    coefficient's standard deviation. The features are not standardised: c0 (the log energy)
    ranges over about -105 .. 32, the others over a few tens; scale them before training a
    network. How the file was made (engines, voices, parameter ranges, seed), its licence, and
    the voice and word of every clip: ``minisplit/data/KEYWORDS.md``.

    References
    ----------
    P. Warden, "Speech Commands: A Dataset for Limited-Vocabulary Speech Recognition", 2018,
    arXiv:1804.03209. Y. Zhang, N. Suda, L. Lai, V. Chandra, "Hello Edge: Keyword Spotting on
    Microcontrollers", 2017, arXiv:1711.07128.

    Examples
    --------
    >>> X_train, y_train, X_test, y_test = keywords(images=True)
    >>> X_train.shape, X_test.shape, KEYWORD_CLASSES[int(y_test[-1])]
    ((2400, 1, 49, 10), (600, 1, 49, 10), 'go')
    """
    check_bool(images, "images")
    found = _read_keywords(_KEYWORDS_PATH)
    shape = (-1, 1, _KEYWORD_FRAMES, _KEYWORD_COEFFICIENTS) if images else (
        -1, _KEYWORD_FRAMES * _KEYWORD_COEFFICIENTS)
    parts = []
    for part in _KEYWORD_PARTS:
        X = found[f"X_{part}"].astype(np.float64).reshape(shape)  # (n, 490) or (n, 1, 49, 10)
        parts += [X, found[f"y_{part}"].astype(np.int64)]
    return tuple(parts)


# ----------------------------------------------------------------------------- CIFAR-10 files


def _cifar10_check_size(path):
    """Raise unless ``path`` is a CIFAR-10 batch file of _CIFAR10_RECORDS whole records."""
    size = path.stat().st_size
    if size % _CIFAR10_RECORD:
        raise OSError(
            f"{path} must hold whole records of {_CIFAR10_RECORD:,} bytes (1 label byte + "
            f"3,072 pixel bytes), got {size:,} bytes: truncated, or not CIFAR-10's binary version"
        )
    if size // _CIFAR10_RECORD != _CIFAR10_RECORDS:
        raise OSError(
            f"{path} must hold {_CIFAR10_RECORDS:,} records, got {size // _CIFAR10_RECORD:,}"
        )


def _cifar10_read(paths, n):
    """Images (n, 3, 32, 32) in [0, 1] and int64 labels (n,) of the first n records of paths."""
    X = np.empty((n, 3, 32, 32))  # (n, 3, 32, 32), filled file by file: no concatenated copy
    y = np.empty(n, dtype=np.int64)  # (n,)
    start = 0
    for path in paths:
        count = min(_CIFAR10_RECORDS, n - start)
        if count == 0:
            break
        with open(path, "rb") as file:
            raw = np.frombuffer(file.read(count * _CIFAR10_RECORD), dtype=np.uint8)
        raw = raw.reshape(count, _CIFAR10_RECORD)  # (count, 3073)
        bad = np.flatnonzero(raw[:, 0] > 9)
        if bad.size:
            raise OSError(
                f"{path}: labels must be 0..9, got {raw[bad[0], 0]} in record {bad[0]} "
                f"({bad.size} of the {count:,} records read have a label > 9)"
            )
        y[start : start + count] = raw[:, 0]
        # bytes 1..3072 are the R, G, B planes, each 32x32 row-major: exactly NCHW
        np.divide(raw[:, 1:].reshape(count, 3, 32, 32), 255.0, out=X[start : start + count])
        start += count
    return X, y


def _cifar10_names(path):
    """The 10 class names of ``batches.meta.txt``, one per line (blank lines ignored)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise OSError(f"{path} must be text listing the 10 class names: {error}") from error
    names = tuple(line.strip() for line in text.splitlines() if line.strip())
    if len(names) != 10:
        raise OSError(f"{path} must list 10 class names, one per line, got {len(names)}: "
                      f"{list(names)}")
    return names


def load_cifar10(path, n_train=None, n_test=None):
    """Read CIFAR-10's binary version from a folder you already have; nothing is downloaded.

    x = byte / 255, so every value is in [0, 1]. The split is CIFAR-10's own: the training part
    is ``data_batch_1.bin`` ... ``data_batch_5.bin`` (50,000 images) in that order, the test part
    ``test_batch.bin`` (10,000 images). Each file holds 10,000 records of 3,073 bytes: the label
    (0..9), then 1,024 red, 1,024 green and 1,024 blue bytes, each plane 32x32 row-major, so a
    record's pixels are already one NCHW image (3, 32, 32).

    Parameters
    ----------
    path : str or os.PathLike
        The ``cifar-10-batches-bin`` folder: the six ``.bin`` files and ``batches.meta.txt``
        (the 10 class names, one per line).
    n_train : int or None
        Read only the first ``n_train`` training records (1..50,000); None reads them all.
    n_test : int or None
        Read only the first ``n_test`` test records (1..10,000); None reads them all.

    Returns
    -------
    Dataset
        ``name="cifar10"``, ``task="classification"``, ``n_classes=10``, X_train
        (n_train, 3, 32, 32) and X_test (n_test, 3, 32, 32) float64, y_train and y_test int64,
        ``class_names`` from ``batches.meta.txt``.

    Raises
    ------
    FileNotFoundError
        If the folder or one of its seven files is missing.
    OSError
        If a ``.bin`` file is not 10,000 whole records, a record read has a label > 9, or the
        meta file does not list 10 names. The message names the file.

    Notes
    -----
    Memory: float64 images take 3,072 * 8 = 24,576 bytes each, so all 50,000 training images
    take 1.23 GB and the 10,000 test images 0.25 GB (the networks compute in float64, so a
    float32 copy would be converted back on the first forward pass). ``n_train`` and ``n_test``
    cap this; only the records asked for are read (every file's size is checked first). No
    randomness: CIFAR-10's files are already in random order, so the first records of a part
    are a random sample of it (not exactly class-balanced).

    References
    ----------
    A. Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", technical report,
    University of Toronto, 2009; the files: https://www.cs.toronto.edu/~kriz/cifar.html.

    Examples
    --------
    Not run by the doctests (it needs the real files, 184 MB)::

        data = load_cifar10("cifar-10-batches-bin", n_train=1000)
        data.X_train.shape, data.X_test.shape, data.class_names[0]
        # ((1000, 3, 32, 32), (10000, 3, 32, 32), 'airplane')
    """
    check_type(path, "path", (str, os.PathLike), "a str or os.PathLike (the cifar-10-batches-bin "
               "folder)")
    n_files = len(_CIFAR10_TRAIN_FILES)
    n_train = check_int(n_train, "n_train", low=1, high=n_files * _CIFAR10_RECORDS, none=True)
    n_test = check_int(n_test, "n_test", low=1, high=_CIFAR10_RECORDS, none=True)
    folder = Path(path)
    if not folder.is_dir():
        state = "is not a folder" if folder.exists() else "does not exist"
        raise FileNotFoundError(f"CIFAR-10 folder {folder} {state} (expected the "
                                "cifar-10-batches-bin folder of CIFAR-10's binary version)")
    files = [folder / name for name in (*_CIFAR10_TRAIN_FILES, _CIFAR10_TEST_FILE)]
    for file in (*files, folder / _CIFAR10_META_FILE):
        if not file.is_file():
            raise FileNotFoundError(f"{file} is missing (a CIFAR-10 binary folder holds "
                                    f"{', '.join(_CIFAR10_TRAIN_FILES)}, {_CIFAR10_TEST_FILE} "
                                    f"and {_CIFAR10_META_FILE})")
    names = _cifar10_names(folder / _CIFAR10_META_FILE)
    for file in files:  # before reading anything, so a broken folder fails fast
        _cifar10_check_size(file)
    X_train, y_train = _cifar10_read(files[:-1], n_train or n_files * _CIFAR10_RECORDS)
    X_test, y_test = _cifar10_read(files[-1:], n_test or _CIFAR10_RECORDS)
    return Dataset("cifar10", "classification", X_train, y_train, X_test, y_test,
                   n_classes=10, class_names=names)


# ----------------------------------------------------------------------------- Speech Commands


def _wav(path):
    """The samples of a 16 kHz mono 16-bit WAV file as float64 in [-1, 1): int16 / 32768."""
    import scipy.io.wavfile  # scipy only when audio is read

    try:
        rate, samples = scipy.io.wavfile.read(path)
    except (ValueError, EOFError) as error:  # scipy's complaint about a file that is not WAV
        raise OSError(f"{path} must be a WAV file: {error}") from error
    if rate != _SPEECH_RATE:
        raise OSError(f"{path} must be sampled at {_SPEECH_RATE} Hz, got {rate} Hz")
    if samples.ndim != 1:
        raise OSError(f"{path} must be mono, got {samples.shape[1]} channels")
    if samples.dtype != np.int16:
        raise OSError(f"{path} must hold 16-bit integer samples, got {samples.dtype}")
    return samples.astype(np.float64) / 32768.0  # (n_samples,)


def _one_second(x):
    """x padded with zeros at the end, or cut after its first second: (16000,)."""
    clip = np.zeros(_SPEECH_RATE)  # (16000,)
    n = min(_SPEECH_RATE, x.size)
    clip[:n] = x[:n]
    return clip


def _speech_list(folder, name):
    """The clips a split list names ("word/file.wav" per line), each checked to exist."""
    path = folder / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing (a Speech Commands folder holds "
                                f"{' and '.join(_SPEECH_LISTS.values())})")
    names = {line.strip() for line in path.read_text(encoding="utf-8").splitlines()
             if line.strip()}
    for entry in sorted(names):
        if not (folder / entry).is_file():
            raise FileNotFoundError(f"{path} names {entry}, which is missing from {folder}")
    return names


def _speech_clips(folder):
    """{part: [(relative path, label)]} for "training", "validation" and "testing"."""
    words = sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("_"))
    missing = [word for word in KEYWORD_CLASSES[2:] if word not in words]
    if missing:
        raise FileNotFoundError(f"{folder} must hold a folder of WAV files per keyword, "
                                f"missing: {', '.join(missing)}")
    lists = {part: _speech_list(folder, name) for part, name in _SPEECH_LISTS.items()}
    both = lists["validation"] & lists["testing"]
    if both:
        raise OSError(f"{folder}: a clip must be in at most one of {_SPEECH_LISTS['validation']} "
                      f"and {_SPEECH_LISTS['testing']}, got {len(both)} in both, e.g. "
                      f"{sorted(both)[0]}")
    clips = {"training": [], "validation": [], "testing": []}
    for word in words:
        label = KEYWORD_CLASSES.index(word) if word in KEYWORD_CLASSES[2:] else 1
        for file in sorted((folder / word).glob("*.wav")):
            entry = f"{word}/{file.name}"
            part = next((p for p, names in lists.items() if entry in names), "training")
            clips[part].append((entry, label))
    return clips


def _silence(noises, part, count, rng):
    """``count`` one-second cuts (count, 16000) from the part's tenths of random noise files."""
    low, high = _SILENCE_SPANS[part]
    cuts = np.empty((count, _SPEECH_RATE))  # (count, 16000)
    for i in range(count):
        noise = noises[rng.integers(len(noises))]
        start = rng.integers(noise.size * low // 10, noise.size * high // 10 - _SPEECH_RATE + 1)
        cuts[i] = noise[start : start + _SPEECH_RATE]
    return cuts


def _speech_part(folder, clips, part, noises, silence_fraction, unknown_fraction, rng):
    """MFCCs (n, 49, 10) and int64 labels (n,) of one part, rows shuffled."""
    from minisplit.audio import mfcc_batch  # scipy only when audio is read

    chosen = [clip for clip in clips if clip[1] >= 2]
    n_keywords = len(chosen)
    if n_keywords == 0:
        raise OSError(f"{folder}: the {part} part must hold keyword clips, got none")
    unknown = [clip for clip in clips if clip[1] == 1]
    if unknown_fraction is not None:
        n_unknown = min(len(unknown), math.ceil(unknown_fraction * n_keywords))
        unknown = [unknown[i] for i in np.sort(rng.choice(len(unknown), n_unknown,
                                                          replace=False))]
    chosen += unknown
    n_silence = math.ceil(silence_fraction * n_keywords)
    features = []
    for start in range(0, len(chosen), _SPEECH_CHUNK):
        audio = np.stack([_one_second(_wav(folder / entry))
                          for entry, _ in chosen[start : start + _SPEECH_CHUNK]])  # (m, 16000)
        features.append(mfcc_batch(audio))  # (m, 49, 10)
    if n_silence:
        features.append(mfcc_batch(_silence(noises, part, n_silence, rng)))
    X = np.concatenate(features)  # (n, 49, 10)
    y = np.array([label for _, label in chosen] + [0] * n_silence, dtype=np.int64)  # (n,)
    order = rng.permutation(len(y))
    return X[order], y[order]


def _speech_noises(folder):
    """The background-noise recordings, each long enough for every part's silence cuts."""
    noise_folder = folder / _SPEECH_NOISE
    files = sorted(noise_folder.glob("*.wav")) if noise_folder.is_dir() else []
    if not files:
        raise FileNotFoundError(f"{noise_folder} must hold the background-noise WAV files the "
                                "_silence_ clips are cut from (or pass silence_fraction=0)")
    noises = [_wav(file) for file in files]
    shortest = min(_SILENCE_SPANS.values(), key=lambda span: span[1] - span[0])
    need = _SPEECH_RATE * 10 // (shortest[1] - shortest[0])
    for file, noise in zip(files, noises):
        if noise.size < need:
            raise OSError(f"{file} must hold at least {need} samples ({need // _SPEECH_RATE} s, "
                          f"so that each part's tenth holds a one-second cut), got {noise.size}")
    return noises


def load_speech_commands(path, validation=False, images=False, silence_fraction=0.1,
                         unknown_fraction=0.1, seed=0):
    """Read Google Speech Commands (v0.02 layout) from a folder you already have, as MFCCs.

    The 12 classes of ``KEYWORD_CLASSES``: the ten keywords, "_unknown_" for every other word
    folder, "_silence_" for one-second cuts of the background noise. Each WAV becomes
    x = int16 / 32768, padded with zeros at the end or cut after its first second, then
    ``minisplit.audio.mfcc_batch`` (49 x 10), as the shipped ``keywords`` data. The split is the
    official one: ``testing_list.txt`` (or ``validation_list.txt``) is the test part, every clip
    in neither list is training.

    Per part, as TensorFlow's ``speech_commands`` input pipeline (used by Hello Edge) with its
    default percentages: with K keyword clips in the part, ceil(unknown_fraction K) unknown
    clips drawn at random from the part's other words (all of them if fewer), and
    ceil(silence_fraction K) silence clips, each a one-second stretch at a random place in a
    random file of ``_background_noise_``. Each noise file is cut in tenths of its length:
    training silence comes from the first eight, validation from the ninth, testing from the
    tenth, so no noise is in two parts.

    Parameters
    ----------
    path : str or os.PathLike
        The folder: one subfolder of 16 kHz mono 16-bit WAVs per word, ``_background_noise_``,
        ``validation_list.txt`` and ``testing_list.txt`` (paths like ``yes/0a7c2a8d_nohash_0.wav``).
        Subfolders whose names start with ``_`` are not words; other files are ignored.
    validation : bool
        Make the test part the validation list (for choosing settings) instead of the testing
        list. The training part is the same either way.
    images : bool
        Return X as NCHW images (n, 1, 49, 10) instead of flat rows (n, 490).
    silence_fraction : float
        Silence clips per keyword clip in each part (>= 0; 0 needs no noise folder).
    unknown_fraction : float or None
        Unknown-word clips per keyword clip in each part (>= 0); None keeps them all.
    seed : int or np.random.Generator
        Draws the unknown clips and the silence cuts, and shuffles the rows of each part.

    Returns
    -------
    Dataset
        ``name="speech_commands"``, ``n_classes=12``, ``class_names=KEYWORD_CLASSES``, X float64
        (n, 490) or (n, 1, 49, 10), y int64.

    Raises
    ------
    FileNotFoundError
        If the folder, a list, a keyword's folder, a listed clip or the noise files are missing.
    OSError
        If a WAV is not a WAV file, not 16 kHz, not mono or not 16-bit; a noise file is shorter
        than 10 s; a clip is in both lists; or a part has no keyword clips. The message names the
        file.

    Notes
    -----
    All of v0.02 (105,829 clips) takes about 0.4 GB as float64 MFCCs and minutes to read; the
    audio is read and transformed 512 clips at a time, so it never all sits in memory.

    References
    ----------
    P. Warden, "Speech Commands: A Dataset for Limited-Vocabulary Speech Recognition", 2018,
    arXiv:1804.03209.

    Examples
    --------
    Not run by the doctests (it needs the real folder, 2.3 GB)::

        data = load_speech_commands("speech_commands_v0.02")
        data.X_train.shape[1], data.class_names[:3]
        # (490, ('_silence_', '_unknown_', 'yes'))
    """
    check_type(path, "path", (str, os.PathLike), "a str or os.PathLike (the Speech Commands "
               "folder)")
    check_bool(validation, "validation")
    check_bool(images, "images")
    silence_fraction = check_real(silence_fraction, "silence_fraction", low=0)
    unknown_fraction = check_real(unknown_fraction, "unknown_fraction", low=0, none=True)
    rng = make_rng(seed)
    folder = Path(path)
    if not folder.is_dir():
        state = "is not a folder" if folder.exists() else "does not exist"
        raise FileNotFoundError(f"Speech Commands folder {folder} {state} (expected one folder "
                                "per word, _background_noise_ and the two split lists)")
    clips = _speech_clips(folder)
    noises = _speech_noises(folder) if silence_fraction > 0 else []
    shape = (-1, 1, _KEYWORD_FRAMES, _KEYWORD_COEFFICIENTS) if images else (
        -1, _KEYWORD_FRAMES * _KEYWORD_COEFFICIENTS)
    parts = []
    for part in ("training", "validation" if validation else "testing"):
        X, y = _speech_part(folder, clips[part], part, noises, silence_fraction,
                            unknown_fraction, rng)
        parts += [X.reshape(shape), y]
    return Dataset("speech_commands", "classification", *parts, n_classes=12,
                   class_names=KEYWORD_CLASSES)


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
