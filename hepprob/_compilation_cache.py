"""JAX's persistent compilation cache, switched on for hepprob by default.

Compiling a fit, a hypotest or a NUTS sampler costs seconds; running it often
costs milliseconds. With the cache on, a compiled program outlives its process,
so the second ``hepprob cls ws.json`` (or notebook restart, or test run) loads
it from disk instead of compiling it again. The NUTS programs are also kept,
traced, in ``programs/`` inside the same directory (:mod:`hepprob._program_store`),
so a new process does not even trace them. The cache key is the program, the
compile options and the jax version, so a stale entry cannot be served.

Control it with the environment variable ``HEPPROB_COMPILATION_CACHE``:

* unset: cache in ``$XDG_CACHE_HOME/hepprob/jax`` (``~/.cache/hepprob/jax``);
* a path: cache there;
* ``0``, ``off``, ``false`` or ``no``: no persistent cache.

A cache directory the user already gave JAX (``JAX_COMPILATION_CACHE_DIR`` or
``jax.config``) is left as it is.
"""

from __future__ import annotations

import os
import pathlib

import jax

__all__ = ["configure"]

ENV_VAR = "HEPPROB_COMPILATION_CACHE"
_OFF = {"0", "off", "false", "no"}
# Every program is cached, the small ones too: a NumPyro start-up compiles ~100
# tiny kernels (seconds in all), each read back from disk in about a millisecond.
_MIN_COMPILE_SECONDS = 0.0
# A size limit turns on JAX's LRU eviction, which also takes a file lock around
# reads and writes: parallel processes (pytest-xdist, Dask workers) share safely.
_MAX_BYTES = 2 * 1024**3


def default_dir() -> pathlib.Path:
    """``$XDG_CACHE_HOME/hepprob/jax``, falling back to ``~/.cache``."""
    root = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(root) / "hepprob" / "jax"


def configure() -> str | None:
    """Point JAX's persistent cache at hepprob's directory; return it (None: off)."""
    setting = os.environ.get(ENV_VAR, "").strip()
    if setting.lower() in _OFF:
        return None
    existing = jax.config.jax_compilation_cache_dir
    if existing:
        return str(existing)
    path = pathlib.Path(setting).expanduser() if setting else default_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # a read-only home: run without the cache, as plain JAX does
    if not os.access(path, os.W_OK):
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update(
        "jax_persistent_cache_min_compile_time_secs", _MIN_COMPILE_SECONDS
    )
    jax.config.update("jax_compilation_cache_max_size", _MAX_BYTES)
    return str(path)
