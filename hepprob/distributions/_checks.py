"""Argument checks shared by the distributions: raise at once on concrete bad values.

NumPyro's ``validate_args`` only runs when asked; these checks run whenever the
value is concrete (not traced), so bad input always gets a clear
:class:`~hepprob.errors.ParameterError` naming the argument. Traced values pass
through unchecked (inside jit the model's own validation applies).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from hepprob.errors import ParameterError

__all__ = ["check", "check_range", "is_concrete"]


def is_concrete(value: Any) -> bool:
    """True when ``value`` holds numbers (not a JAX tracer inside jit/grad/vmap)."""
    leaves = jax.tree_util.tree_leaves(value)
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in leaves)


def check(
    owner: str,
    name: str,
    value: Any,
    ok: Callable[[np.ndarray], np.ndarray],
    expectation: str,
) -> None:
    """Raise ``ParameterError`` if concrete ``value`` fails ``ok`` anywhere.

    Args:
        owner: the distribution's name, e.g. ``"CrystalBall"``.
        name: the argument's name, e.g. ``"scale"``.
        value: the argument (array-like, maybe traced).
        ok: elementwise predicate on the NumPy value.
        expectation: what is required, e.g. ``"> 0"``.

    Example:
        >>> check("CrystalBall", "scale", 1.0, lambda v: v > 0, "> 0")
    """
    if value is None or not is_concrete(value):
        return
    arr = np.asarray(value, dtype=np.float64)
    good = np.asarray(ok(arr)) & ~np.isnan(arr)
    if not np.all(good):
        bad = arr[~np.broadcast_to(good, arr.shape)] if arr.ndim else arr
        msg = f"{owner}: {name} must be {expectation}, got {name}={bad}"
        raise ParameterError(msg)


def check_range(owner: str, low: Any, high: Any) -> None:
    """Raise ``ParameterError`` unless concrete ``low < high`` (both finite)."""
    if low is None and high is None:
        return
    if (low is None) != (high is None):
        msg = f"{owner}: give both low and high for a range, got low={low}, high={high}"
        raise ParameterError(msg)
    if not (is_concrete(low) and is_concrete(high)):
        return
    lo, hi = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.all(lo < hi)):
        msg = f"{owner}: the range needs finite low < high, got low={low}, high={high}"
        raise ParameterError(msg)
