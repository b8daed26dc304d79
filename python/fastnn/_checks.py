"""Input validation and conversion: the one place arrays are checked before reaching C++.

Every public entry point converts its array arguments here, once: float64 or non-contiguous
input becomes one C-contiguous float32 copy; ints, bools, objects, wrong ranks or wrong sizes
raise TypeError/ValueError naming the argument, what was expected and what was given.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np

IntOrPair = Union[int, Tuple[int, int], Sequence[int]]


def describe(x: Any) -> str:
    """Short description of a value for error messages: 'float64 array of shape (3, 4)'."""
    if isinstance(x, np.ndarray):
        return f"{x.dtype} array of shape {x.shape}"
    return f"{type(x).__name__}"


def as_float32(x: Any, name: str, ndim: Union[int, Sequence[int], None] = None,
               shape: Optional[Sequence[Optional[int]]] = None, min_ndim: Optional[int] = None,
               allow_empty: bool = True) -> np.ndarray:
    """Return `x` as a C-contiguous float32 array (a copy only when needed).

    `ndim` is a required rank (or a set of allowed ranks); `shape` may hold None for free axes.
    Integer, boolean, complex or object data raise TypeError.
    """
    if isinstance(x, np.ndarray):
        arr = x
    else:
        try:
            arr = np.asarray(x)
        except Exception as e:  # ragged lists and the like
            raise TypeError(f"{name}: expected a float array, got {describe(x)} ({e})") from None
    if arr.dtype.kind != "f":
        raise TypeError(f"{name}: expected a floating-point array (float32 or float64), "
                        f"got {describe(arr) if isinstance(x, np.ndarray) else type(x).__name__ + ' of ' + str(arr.dtype)}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            want = " or ".join(f"{d}-d" for d in allowed)
            raise ValueError(f"{name}: expected a {want} array, got shape {arr.shape}")
    if min_ndim is not None and arr.ndim < min_ndim:
        raise ValueError(f"{name}: expected at least {min_ndim} dimensions, got shape {arr.shape}")
    if shape is not None:
        if arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape)):
            want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
            raise ValueError(f"{name}: expected shape {want}, got {arr.shape}")
    if not allow_empty and arr.size == 0:
        raise ValueError(f"{name}: expected a non-empty array, got shape {arr.shape}")
    if arr.dtype != np.float32 or not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr, dtype=np.float32)
    return arr


def as_labels(y: Any, name: str, n: Optional[int] = None, num_classes: Optional[int] = None) -> np.ndarray:
    """Return integer class labels as a 1-d int64 array, checking length and range."""
    arr = np.asarray(y)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integer class indices, got {describe(arr)}")
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-d array of class indices, got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name}: expected {n} labels (one per sample), got {arr.shape[0]}")
    if num_classes is not None and arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi >= num_classes:
            raise ValueError(f"{name}: class indices must lie in [0, {num_classes}), got range [{lo}, {hi}]")
    return arr.astype(np.int64, copy=False)


def check_finite(x: np.ndarray, name: str) -> None:
    """Raise ValueError if `x` holds NaN or infinity."""
    if not np.isfinite(x).all():
        raise ValueError(f"{name}: expected finite values, found NaN or infinity")


def pair(v: Any, name: str, minimum: Optional[int] = None) -> Tuple[int, int]:
    """An int or a pair of ints -> (a, b); checks the minimum value when given."""
    if isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name}: expected an int or a pair of ints, got {v!r}")
    if isinstance(v, (int, np.integer)):
        out = (int(v), int(v))
    else:
        try:
            seq = tuple(v)
        except TypeError:
            raise TypeError(f"{name}: expected an int or a pair of ints, got {type(v).__name__}") from None
        if len(seq) != 2 or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in seq):
            raise TypeError(f"{name}: expected an int or a pair of ints, got {v!r}")
        out = (int(seq[0]), int(seq[1]))
    if minimum is not None and min(out) < minimum:
        raise ValueError(f"{name}: expected values >= {minimum}, got {v!r}")
    return out


def positive_int(v: Any, name: str, minimum: int = 1) -> int:
    """Check an integer argument (not bool) is at least `minimum`."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name}: expected an int, got {type(v).__name__} {v!r}")
    if v < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {v}")
    return int(v)


def number(v: Any, name: str, lo: Optional[float] = None, hi: Optional[float] = None,
           lo_open: bool = False, hi_open: bool = False) -> float:
    """Check a real scalar lies in the given range; returns it as float."""
    if isinstance(v, (bool, np.bool_, str, bytes)):
        raise TypeError(f"{name}: expected a number, got {type(v).__name__} {v!r}")
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a number, got {type(v).__name__} {v!r}") from None
    if f != f:
        raise ValueError(f"{name}: expected a number, got NaN")
    if lo is not None and (f < lo or (lo_open and f == lo)):
        raise ValueError(f"{name}: expected a value {'>' if lo_open else '>='} {lo}, got {v}")
    if hi is not None and (f > hi or (hi_open and f == hi)):
        raise ValueError(f"{name}: expected a value {'<' if hi_open else '<='} {hi}, got {v}")
    return f


def rng_or_default(rng: Any, name: str = "rng") -> np.random.Generator:
    """`rng` if it is a Generator, a new Generator for an int seed, else fastnn's global one."""
    from ._random import get_rng
    if rng is None:
        return get_rng()
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"{name}: expected a numpy.random.Generator, an int seed or None, got {type(rng).__name__}")
