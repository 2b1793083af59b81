"""CIFAR-10's binary version, read from files the user already has (docs/datasets.md)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from minisplit._checks import check_int, check_type
from minisplit.datasets._base import Dataset

_CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
_CIFAR10_TEST_FILE = "test_batch.bin"
_CIFAR10_META_FILE = "batches.meta.txt"
_CIFAR10_RECORD = 1 + 3 * 32 * 32  # bytes: the label, then the R, G and B planes, 32x32 each
_CIFAR10_RECORDS = 10_000  # records in every file of the real data (the tests shrink it)



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


