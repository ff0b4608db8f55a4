"""(being written)."""

from __future__ import annotations

__all__ = ["discovery", "upper_limit"]


def discovery(*args, **kwargs):  # placeholder until written
    raise NotImplementedError


def upper_limit(*args, **kwargs):  # placeholder until written
    raise NotImplementedError
