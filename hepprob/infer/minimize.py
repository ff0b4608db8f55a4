"""(being written)."""

from __future__ import annotations

__all__ = ["MinimizeResult", "minimize"]


def minimize(*args, **kwargs):  # placeholder until written
    raise NotImplementedError
MinimizeResult = None
