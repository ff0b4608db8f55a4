"""Shared test settings.

* The tests compile into a temporary cache, never into the user's
  ``~/.cache/hepprob``: ``HEPPROB_COMPILATION_CACHE`` points at a fresh folder
  for the whole session (made here, before hepprob is imported, and removed at
  the end). pytest-xdist workers inherit it, so they share one cache. A
  ``HEPPROB_COMPILATION_CACHE`` set by the caller (e.g. CI keeping a cache
  between runs) is used as it is.
* hepprob must have switched JAX to float64 on import.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import tempfile

_CACHE_VAR = "HEPPROB_COMPILATION_CACHE"
_OWN_CACHE: str | None = None
if not os.environ.get(_CACHE_VAR):
    _OWN_CACHE = tempfile.mkdtemp(prefix="hepprob-test-cache-")
    os.environ[_CACHE_VAR] = _OWN_CACHE

import jax
import pytest

import hepprob  # noqa: F401  (switches on x64)

SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared"
VALIDATION = SHARED / "validation"


def pytest_configure(config: pytest.Config) -> None:
    assert jax.config.jax_enable_x64, "hepprob must enable float64 on import"


def pytest_unconfigure(config: pytest.Config) -> None:
    # Only the process that made the folder removes it (not the xdist workers).
    if _OWN_CACHE is not None and not hasattr(config, "workerinput"):
        shutil.rmtree(_OWN_CACHE, ignore_errors=True)


@pytest.fixture
def validation_dir() -> pathlib.Path:
    """The real HistFactory inputs in ../shared/validation (pyhf's, Apache-2.0)."""
    if not VALIDATION.is_dir():
        pytest.fail(f"validation inputs not found at {VALIDATION}")
    return VALIDATION
