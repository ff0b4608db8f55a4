"""(being written)."""

from __future__ import annotations

__all__ = ["hypotest", "hypotest_model"]


def hypotest(*args, **kwargs):  # placeholder until written
    raise NotImplementedError


def hypotest_model(*args, **kwargs):  # placeholder until written
    raise NotImplementedError
