"""(being written)."""

from __future__ import annotations

__all__ = ["fit", "fixed_poi_fit"]


def fit(*args, **kwargs):  # placeholder until written
    raise NotImplementedError


def fixed_poi_fit(*args, **kwargs):  # placeholder until written
    raise NotImplementedError
