"""Input checks shared by layers, losses and the network ("must be X, got Y")."""

from __future__ import annotations

import numbers

import numpy as np


def check_finite(a: np.ndarray, name: str) -> np.ndarray:
    """Raise ValueError if ``a`` holds NaN or inf; return it unchanged otherwise."""
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite, got {int(np.sum(~np.isfinite(a)))} NaN/inf")
    return a


def check_array(X, name: str, ndim: int | None = None) -> np.ndarray:
    """Return ``X`` as a finite float64 array (a copy only when the dtype changes)."""
    X = np.asarray(X)
    if X.dtype == object or not (
        np.issubdtype(X.dtype, np.floating) or np.issubdtype(X.dtype, np.integer)
    ):
        raise ValueError(f"{name} must hold real numbers, got dtype {X.dtype}")
    if ndim is not None and X.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {X.shape}")
    return check_finite(X.astype(np.float64, copy=False), name)


def check_positive_int(value, name: str) -> int:
    """Return ``value`` as int if it is a positive integer, else raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_nonnegative_int(value, name: str) -> int:
    """Return ``value`` as int if it is a non-negative integer, else raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def check_positive_float(value, name: str) -> float:
    """Return ``value`` as float if it is a positive finite number, else raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return value


def make_rng(seed) -> np.random.Generator:
    """An explicit Generator from a seed (int or None) or a Generator passed through."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)
