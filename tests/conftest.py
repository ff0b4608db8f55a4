"""Shared test settings: hepprob must have switched JAX to float64 on import."""

from __future__ import annotations

import pathlib

import jax
import pytest

import hepprob  # noqa: F401  (switches on x64)

SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared"
VALIDATION = SHARED / "validation"


def pytest_configure(config: pytest.Config) -> None:
    assert jax.config.jax_enable_x64, "hepprob must enable float64 on import"


@pytest.fixture
def validation_dir() -> pathlib.Path:
    """The real HistFactory inputs in ../shared/validation (pyhf's, Apache-2.0)."""
    if not VALIDATION.is_dir():
        pytest.fail(f"validation inputs not found at {VALIDATION}")
    return VALIDATION
