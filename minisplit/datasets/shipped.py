"""The data sets that ship with minisplit (minisplit/data): the UCI digits, a Fashion-MNIST
subset and synthetic spoken keywords, each read and checked from its .npz (docs/datasets.md)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from minisplit._checks import check_bool

#: The names of Fashion-MNIST's labels 0..9, in label order (Xiao, Rasul & Vollgraf, 2017).
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

_DATA = Path(__file__).resolve().parent.parent / "data"
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


