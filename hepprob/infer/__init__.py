"""Frequentist inference (being written)."""

from __future__ import annotations

__all__ = ["fit", "toys"]


def fit(*args, **kwargs):  # placeholder until infer/fit.py lands
    raise NotImplementedError


def toys(*args, **kwargs):  # placeholder until infer/toys.py lands
    raise NotImplementedError
