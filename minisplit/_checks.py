"""The one input-checking module of minisplit: every public entry point validates here.

The policy (docs/conventions.md, "Errors"):

- a value of the wrong *type* raises ``TypeError``, a value of the right type but out of
  range (or of the wrong shape) raises ``ValueError``;
- every message reads ``"<name> must be <what>, got <what came>"``;
- ``bool`` is never accepted where a number is asked for (``True`` is not the integer 1);
- a seed is an integer >= 0 or an ``np.random.Generator``; ``None`` (fresh entropy from the
  operating system) is accepted only where the caller passes ``none=True`` and its docstring
  says so;
- validation happens at the public door; inner loops (training steps, Hessian assembly) call
  unchecked internals.

Each ``check_*`` returns the value converted to its canonical type (``int``, ``float``,
float64 array), so a caller writes ``n = check_int(n, "n", low=1)``.
"""

from __future__ import annotations

import math
import numbers

import numpy as np


def _describe(value) -> str:
    """``repr`` of a value with its type when the repr alone is ambiguous (e.g. '3' vs 3)."""
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{text} of type {type(value).__name__}"


def _is_bool(value) -> bool:
    return isinstance(value, (bool, np.bool_))


def _bounds(low, high, low_open, high_open) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high:g}")
    return " and ".join(parts)


def check_int(value, name: str, low=None, high=None, none: bool = False) -> int | None:
    """``value`` as an ``int`` within [low, high] (either bound may be None).

    Raises
    ------
    TypeError
        If ``value`` is not an integer (a bool, a float such as 3.0, a string).
    ValueError
        If it lies outside the bounds.

    Examples
    --------
    >>> check_int(3, "n", low=1)
    3
    >>> check_int(0, "n", low=1)
    Traceback (most recent call last):
    ...
    ValueError: n must be an integer >= 1, got 0
    """
    if value is None and none:
        return None
    what = "an integer" + (f" {_bounds(low, high, False, False)}" if (low, high) != (None, None)
                           else "")
    if none:
        what = f"None or {what}"
    if _is_bool(value) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be {what}, got {_describe(value)}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be {what}, got {value}")
    return value


def check_int_pair(value, name: str, low=None) -> tuple[int, int]:
    """``value``, an int or a pair (h, w) of ints, as a pair of ``int`` >= ``low``.

    An int k means ``(k, k)`` (one value along both axes of an image); a tuple or list of
    two ints gives each axis its own. Each entry is checked by :func:`check_int`.

    Raises
    ------
    TypeError
        If an entry is not an integer.
    ValueError
        If a tuple or list does not hold two entries, or an entry is below ``low``.

    Examples
    --------
    >>> check_int_pair(3, "stride", low=1), check_int_pair([1, 2], "stride", low=1)
    ((3, 3), (1, 2))
    >>> check_int_pair((1, 2, 3), "stride", low=1)
    Traceback (most recent call last):
    ...
    ValueError: stride must be an integer or a pair of integers (h, w), got (1, 2, 3)
    """
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an integer or a pair of integers (h, w), "
                             f"got {value!r}")
        return check_int(value[0], name, low=low), check_int(value[1], name, low=low)
    value = check_int(value, name, low=low)
    return value, value


def check_real(
    value, name: str, low=None, high=None, low_open=False, high_open=False, none=False
) -> float | None:
    """``value`` as a finite ``float`` within the bounds (open or closed at each end).

    Raises
    ------
    TypeError
        If ``value`` is not a real number (a bool, a string, None unless ``none``).
    ValueError
        If it is NaN, infinite or outside the bounds.

    NumPy scalars are accepted and returned as a Python float; a float32 or float16 is
    read as the shortest decimal that prints it (``np.float32(0.3)`` is 0.3).

    Examples
    --------
    >>> check_real(0.5, "fraction", low=0, high=1, low_open=True)
    0.5
    >>> check_real(np.float32(0.3), "fraction")
    0.3
    >>> check_real(float("nan"), "lr", low=0, low_open=True)
    Traceback (most recent call last):
    ...
    ValueError: lr must be a finite number > 0, got nan
    """
    if value is None and none:
        return None
    bounds = _bounds(low, high, low_open, high_open)
    what = "a finite number" + (f" {bounds}" if bounds else "")
    if none:
        what = f"None or {what}"
    if _is_bool(value) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {what}, got {_describe(value)}")
    if isinstance(value, np.floating) and value.dtype.itemsize < 8:
        # a float32 0.3 means 0.3: its shortest decimal, not 0.30000001192092896
        value = float(str(value))
    value = float(value)
    bad = not math.isfinite(value)
    bad |= low is not None and (value <= low if low_open else value < low)
    bad |= high is not None and (value >= high if high_open else value > high)
    if bad:
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return value


def check_bool(value, name: str) -> bool:
    """``value`` as a ``bool``; TypeError for anything but True/False (1 and 0 included)."""
    if not _is_bool(value):
        raise TypeError(f"{name} must be True or False, got {_describe(value)}")
    return bool(value)


def check_choice(value, name: str, choices):
    """``value`` if it is one of ``choices``.

    TypeError when the choices are names (strings) and ``value`` is not a string, ValueError
    when it is of the right type but not one of them.

    Examples
    --------
    >>> check_choice("min", "which", ("min", "max"))
    'min'
    >>> check_choice(3, "which", ("min", "max"))
    Traceback (most recent call last):
    ...
    TypeError: which must be one of 'min', 'max', got 3 of type int
    """
    choices = tuple(choices)
    listed = ", ".join(repr(c) for c in choices)
    if all(isinstance(c, str) for c in choices) and not isinstance(value, str):
        raise TypeError(f"{name} must be one of {listed}, got {_describe(value)}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {listed}, got {value!r}")
    return value


def check_type(value, name: str, cls, what: str | None = None):
    """``value`` if it is an instance of ``cls`` (a class or tuple of classes), else TypeError."""
    if not isinstance(value, cls):
        if what is None:
            classes = cls if isinstance(cls, tuple) else (cls,)
            what = " or ".join(f"a {c.__name__}" for c in classes)
        raise TypeError(f"{name} must be {what}, got {_describe(value)}")
    return value


def check_callable(value, name: str, what: str = "a callable", none: bool = False):
    """``value`` if it is callable (or None when ``none``), else TypeError."""
    if value is None and none:
        return None
    if not callable(value):
        raise TypeError(f"{name} must be {what}{' or None' if none else ''}, "
                        f"got {_describe(value)}")
    return value


def check_finite(a: np.ndarray, name: str) -> np.ndarray:
    """``a`` unchanged if it holds no NaN or inf, else ValueError counting them."""
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite, got {int(np.sum(~np.isfinite(a)))} NaN/inf")
    return a


def check_array(X, name: str, ndim: int | None = None) -> np.ndarray:
    """``X`` as a finite float64 array (a copy only when the dtype changes).

    Raises
    ------
    TypeError
        If ``X`` does not hold real numbers (strings, objects, complex numbers).
    ValueError
        If it has the wrong number of dimensions or holds NaN or inf.
    """
    X = np.asarray(X)
    if not (np.issubdtype(X.dtype, np.floating) or np.issubdtype(X.dtype, np.integer)):
        raise TypeError(f"{name} must hold real numbers, got dtype {X.dtype}")
    if ndim is not None and X.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {X.shape}")
    return check_finite(X.astype(np.float64, copy=False), name)


def make_rng(seed, name: str = "seed", none: bool = False) -> np.random.Generator:
    """A Generator from a seed: an integer >= 0 or a Generator (passed through, not copied).

    ``None`` means fresh entropy from the operating system and is accepted only with
    ``none=True`` (where the public docstring says so); a bool or a float is a TypeError,
    a negative integer a ValueError.

    Examples
    --------
    >>> make_rng(0).integers(10) == make_rng(0).integers(10)
    np.True_
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None and none:
        return np.random.default_rng()
    what = "an integer >= 0 or a np.random.Generator" + (", or None" if none else "")
    if _is_bool(seed) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{name} must be {what}, got {_describe(seed)}")
    if seed < 0:
        raise ValueError(f"{name} must be {what}, got {seed}")
    return np.random.default_rng(int(seed))
