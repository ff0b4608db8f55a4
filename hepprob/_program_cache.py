"""Compiled programs kept per model structure, so a new call never recompiles.

``jax.jit`` caches by function identity, and hepprob builds its programs (a NUTS
loop, a toy batch) as new closures per call. Here each program is stored under a
key: the model function, the tree structure of its arguments, the shapes and
dtypes of their array leaves and the values of the other leaves. Array leaves
become arguments of the program, never constants in it, so a cached program run
on new data computes on the new data.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["cached", "clear_cache", "split_arguments"]

_MAX_ENTRIES = 16
_CACHE: OrderedDict[Any, Callable[..., Any]] = OrderedDict()


def clear_cache() -> None:
    """Forget every compiled program (the next call of each model compiles again)."""
    _CACHE.clear()


def split_arguments(
    args: Sequence[Any], kwargs: Mapping[str, Any]
) -> tuple[list[Any], Callable[[Sequence[Any]], Any], Any]:
    """Array leaves of ``(args, kwargs)``, a function rebuilding both from new
    arrays, and a hashable signature (tree structure, array shapes and dtypes,
    values of the other leaves)."""
    leaves, treedef = jax.tree_util.tree_flatten((tuple(args), dict(kwargs)))
    dynamic = tuple(isinstance(x, (jax.Array, np.ndarray)) for x in leaves)
    arrays = [jnp.asarray(x) for x, d in zip(leaves, dynamic, strict=True) if d]
    static = tuple(None if d else x for x, d in zip(leaves, dynamic, strict=True))

    def rebuild(arrays: Sequence[Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        it = iter(arrays)
        values = [next(it) if d else x for x, d in zip(static, dynamic, strict=True)]
        return jax.tree_util.tree_unflatten(treedef, values)

    shapes = tuple((a.shape, a.dtype, a.weak_type) for a in arrays)
    return arrays, rebuild, (treedef, static, shapes)


def cached(key: Any, build: Callable[[], Callable[..., Any]]) -> Callable[..., Any]:
    """The compiled function stored under ``key``, built by ``build()`` if absent.

    An unhashable key (e.g. an unhashable static leaf) builds a fresh one.
    """
    try:
        fn = _CACHE.pop(key, None)
    except TypeError:
        return build()
    if fn is None:
        fn = build()
    _CACHE[key] = fn  # most recently used last
    while len(_CACHE) > _MAX_ENTRIES:
        _CACHE.popitem(last=False)
    return fn
