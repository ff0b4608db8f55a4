"""(being written)."""

from __future__ import annotations

__all__ = ["fit", "nll"]


def fit(*args, **kwargs):  # placeholder until written
    raise NotImplementedError


def nll(*args, **kwargs):  # placeholder until written
    raise NotImplementedError
