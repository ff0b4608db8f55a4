"""Programs kept on disk across processes, so a new process skips tracing them.

JAX's persistent compilation cache (:mod:`hepprob._compilation_cache`) saves
the XLA compile, but a new process must still trace and lower a program to
find its executable there: for a NUTS loop that takes longer than 2000 draws,
and several seconds for vectorised chains. Here a program is saved as
``jax.export`` StableHLO under a key naming what it computes, and a later
process with the same key deserialises it and calls it (the executable itself
then comes from the compilation cache).

The key is a hash of a *probe*: a small function the caller traces instead of
the program (for NUTS, the model's start-point search with its log density,
gradient and constraining transforms, see :mod:`hepprob._sampler`), whose
jaxpr and closed-over constants pin down everything model-specific in the
program. Added to it: the caller's settings, the jax, jaxlib and numpyro
versions, the backend and device kind, and the source of the modules that
build the programs. A program that cannot be exported (or a store that is
off, with the compilation cache) falls back to a plain ``jax.jit``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import os
import pathlib
import pickle
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

__all__ = ["probe_key", "stored_program"]

_FORMAT = 1
_SUFFIX = ".hepprob-program"
# oldest files (by last use) are removed beyond these
_MAX_FILES = 200
_MAX_BYTES = 1024**3


def directory() -> pathlib.Path | None:
    """``programs/`` inside JAX's compilation cache directory; None when it is off."""
    root = jax.config.jax_compilation_cache_dir
    return pathlib.Path(root) / "programs" if root else None


def probe_key(
    probe: Callable[..., Any], example_args: Sequence[Any], *settings: Any
) -> str | None:
    """A hex key for the programs ``probe`` stands for; None if it cannot be traced.

    ``settings`` must have a stable ``repr`` (numbers, strings, tuples). None
    too when the store is off: nothing is traced then.
    """
    if directory() is None:
        return None
    try:
        closed = jax.make_jaxpr(probe)(*example_args)
    except Exception:  # noqa: BLE001 - an untraceable probe: no key, the program is jitted plainly
        return None
    digest = hashlib.sha256()
    digest.update(str(closed).encode())
    for const in closed.consts:
        value = np.asarray(const)
        digest.update(f"{value.dtype}{value.shape}".encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    digest.update(repr((settings, _environment())).encode())
    return digest.hexdigest()[:40]


def stored_program(
    key: str | None, fn: Callable[..., Any], example_args: Sequence[Any]
) -> Callable[..., Any]:
    """``jax.jit(fn)``, loaded from the store under ``key`` or exported into it.

    The returned function takes arguments with the tree structure, shapes and
    dtypes of ``example_args``, the ones the key was made for.
    """
    folder = directory()
    if key is None or folder is None:
        return jax.jit(fn)
    leaves, in_tree = jax.tree_util.tree_flatten(tuple(example_args))
    path = folder / f"{key}{_SUFFIX}"
    record = _read(path, key)
    if record is None:
        record = _export(fn, leaves, in_tree)
        if record is None:
            return jax.jit(fn)
        _write(folder, path, key, record)
    exported, out_tree = record
    call = jax.jit(exported.call)

    def run(*args: Any) -> Any:
        return jax.tree_util.tree_unflatten(
            out_tree, call(*jax.tree_util.tree_leaves(args))
        )

    return run


def _export(
    fn: Callable[..., Any], leaves: list[Any], in_tree: Any
) -> tuple[Any, Any] | None:
    box = {}

    def flat(*leaves: Any) -> list[Any]:
        out, box["out_tree"] = jax.tree_util.tree_flatten(
            fn(*jax.tree_util.tree_unflatten(in_tree, leaves))
        )
        return out

    try:
        exported = jax.export.export(jax.jit(flat))(*leaves)
    except Exception:  # noqa: BLE001 - e.g. an operation jax.export does not serialise
        return None
    return exported, box["out_tree"]


def _read(path: pathlib.Path, key: str) -> tuple[Any, Any] | None:
    try:
        with path.open("rb") as f:
            record = pickle.load(f)
        if record.get("format") != _FORMAT or record.get("key") != key:
            return None
        exported = jax.export.deserialize(bytearray(record["exported"]))
        os.utime(path)  # marks it recently used
    except Exception:  # noqa: BLE001 - missing, half-written by a crash, or from another jax
        return None
    return exported, record["out_tree"]


def _write(
    folder: pathlib.Path, path: pathlib.Path, key: str, record: tuple[Any, Any]
) -> None:
    """Write atomically (a temporary file renamed), then trim the store."""
    exported, out_tree = record
    temporary = None
    try:
        payload = {
            "format": _FORMAT,
            "key": key,
            "exported": bytes(exported.serialize()),
            "out_tree": out_tree,
        }
        folder.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=folder)
        with os.fdopen(handle, "wb") as f:
            pickle.dump(payload, f)
        os.replace(temporary, path)
    except Exception:  # noqa: BLE001 - a full or read-only disk, an unpicklable tree: no storing
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
        return
    _trim(folder)


def _trim(folder: pathlib.Path) -> None:
    entries = []
    for p in folder.glob(f"*{_SUFFIX}"):
        with contextlib.suppress(OSError):
            stat = p.stat()
            entries.append((stat.st_mtime, stat.st_size, p))
    entries.sort(reverse=True)  # most recently used first
    total = 0
    for i, (_, size, p) in enumerate(entries):
        total += size
        if i >= _MAX_FILES or total > _MAX_BYTES:
            with contextlib.suppress(OSError):
                p.unlink()


@functools.cache
def _environment() -> tuple[Any, ...]:
    """What else decides the program: versions, device, and our program builders."""
    here = pathlib.Path(__file__).parent
    sources = hashlib.sha256()
    for name in ("_program_store.py", "_sampler.py"):
        sources.update((here / name).read_bytes())
    device = jax.devices()[0]
    return (
        jax.__version__,
        importlib.metadata.version("jaxlib"),
        importlib.metadata.version("numpyro"),
        device.platform,
        device.device_kind,
        bool(jax.config.jax_enable_x64),
        sources.hexdigest(),
    )
