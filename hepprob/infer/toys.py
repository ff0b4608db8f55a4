"""(being written)."""

from __future__ import annotations

__all__ = ["toys"]


def toys(*args, **kwargs):  # placeholder until written
    raise NotImplementedError
