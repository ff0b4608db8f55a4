"""(being written)."""

from __future__ import annotations

__all__ = ["FitResult"]
FitResult = None
