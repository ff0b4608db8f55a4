"""Compiled programs kept per model, so a new call never recompiles.

``jax.jit`` caches by function identity, and hepprob builds its programs (a fit
driver, a NUTS loop, a toy batch) as new closures per call. Here each program
is stored under a key ``(tag, owner, *rest)``: ``owner`` is the object the
program belongs to (a model function, a HistFactory model, an objective), and
the program lives as long as the owner does — the store hangs on the owner
itself, so a model that goes out of scope takes its programs with it (weakly
keyed). Owners that take no attribute (a bound method, a builtin) share one
small least-recently-used store instead.

One rule says which arguments of a model are data (:func:`split_arguments`):
NumPy and JAX arrays, NumPy scalars and Python floats are data — arguments of
the program, never constants in it, so a cached program run on new data
computes on the new data, and a new value never recompiles. Everything else
(ints, bools, strings, None, other objects) is static configuration and part
of the key: a model may use it in Python control flow.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["cached", "clear_cache", "is_data", "on_clear", "split_arguments"]

_ATTRIBUTE = "__hepprob_programs__"
_PER_OWNER = 32  # programs per owner (tolerances, batch sizes, statistics ...)
_SHARED_ENTRIES = 16  # the fallback store for owners without attributes


class _Store:
    """Programs of one owner, most recently used last."""

    __slots__ = ("__weakref__", "programs", "size")

    def __init__(self, size: int) -> None:
        self.programs: OrderedDict[Any, Any] = OrderedDict()
        self.size = size


_STORES: weakref.WeakSet[_Store] = weakref.WeakSet()
_SHARED = _Store(_SHARED_ENTRIES)
_STORES.add(_SHARED)
_CLEARERS: list[Callable[[], None]] = []


def clear_cache() -> None:
    """Forget every compiled program hepprob holds (``hepprob.clear_caches``).

    The next fit, hypotest, toy run or sampler of each model compiles again
    (from JAX's persistent compilation cache on disk, when it is on). Programs
    also go away by themselves with the model they belong to.
    """
    for store in list(_STORES):
        store.programs.clear()
    for clear in _CLEARERS:
        clear()


def on_clear(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Register a ``functools.cache``-d function to be emptied by :func:`clear_cache`."""
    _CLEARERS.append(fn.cache_clear)  # type: ignore[attr-defined]
    return fn


def is_data(leaf: Any) -> bool:
    """Whether an argument leaf is data (traced) rather than configuration (static)."""
    if isinstance(leaf, jax.Array):
        return True
    if isinstance(leaf, (np.ndarray, np.generic)):
        return leaf.dtype.kind in "biufc" and not isinstance(leaf, np.bool_)
    return isinstance(leaf, float)


def split_arguments(
    args: Sequence[Any], kwargs: Mapping[str, Any]
) -> tuple[list[Any], Callable[[Sequence[Any]], Any], Any]:
    """Data leaves of ``(args, kwargs)``, a function rebuilding both from new
    data, and a hashable signature (tree structure, data shapes and dtypes,
    values of the static leaves). Floating data become float64."""
    leaves, treedef = jax.tree_util.tree_flatten((tuple(args), dict(kwargs)))
    dynamic = tuple(is_data(x) for x in leaves)
    arrays = [_as_array(x) for x, d in zip(leaves, dynamic, strict=True) if d]
    static = tuple(None if d else x for x, d in zip(leaves, dynamic, strict=True))

    def rebuild(arrays: Sequence[Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        it = iter(arrays)
        values = [next(it) if d else x for x, d in zip(static, dynamic, strict=True)]
        return jax.tree_util.tree_unflatten(treedef, values)

    shapes = tuple((a.shape, a.dtype) for a in arrays)
    return arrays, rebuild, (treedef, static, shapes)


def cached(
    key: Any, build: Callable[[], Any], *, owner: Any = None
) -> Callable[..., Any] | Any:
    """The program stored under ``key``, built by ``build()`` if absent.

    ``owner`` (default ``key[1]``) bounds the program's lifetime. An
    unhashable key (e.g. an unhashable static leaf) builds a fresh one.
    """
    if owner is None and isinstance(key, tuple) and len(key) > 1:
        owner = key[1]
    store = _store_of(owner)
    try:
        fn = store.programs.pop(key, None)
    except TypeError:
        return build()
    if fn is None:
        fn = build()
    store.programs[key] = fn  # most recently used last
    while len(store.programs) > store.size:
        store.programs.popitem(last=False)
    return fn


def programs_of(owner: Any) -> dict[Any, Any]:
    """The programs stored for ``owner`` (a copy; for tests and diagnostics)."""
    store = _store_of(owner)
    if store is _SHARED:
        return {
            k: v
            for k, v in store.programs.items()
            if isinstance(k, tuple) and len(k) > 1 and k[1] is owner
        }
    return dict(store.programs)


def _store_of(owner: Any) -> _Store:
    if owner is None:
        return _SHARED
    store = getattr(owner, _ATTRIBUTE, None)
    if isinstance(store, _Store):
        return store
    store = _Store(_PER_OWNER)
    try:
        object.__setattr__(owner, _ATTRIBUTE, store)
    except (AttributeError, TypeError):
        return _SHARED
    if getattr(owner, _ATTRIBUTE, None) is not store:  # e.g. a __setattr__ override
        return _SHARED
    _STORES.add(store)
    return store


def _as_array(leaf: Any) -> Any:
    """A device array; floating data as float64 (converted on the host)."""
    if isinstance(leaf, jax.Array):
        return leaf.astype(jnp.float64) if leaf.dtype.kind == "f" else leaf
    arr = np.asarray(leaf)
    return jnp.asarray(arr.astype(np.float64) if arr.dtype.kind == "f" else arr)
