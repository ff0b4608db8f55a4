"""``normsys``: a normalisation uncertainty, interpolated between ``lo`` and ``hi`` factors."""

from __future__ import annotations

from typing import Any

import numpy as np

from hepprob.errors import SpecError
from hepprob.histfactory.modifiers._base import (
    UNIT_NORMAL,
    AbstractModifier,
    Requirement,
    check_number,
)

__all__ = ["NormSys"]


class NormSys(AbstractModifier):
    """Multiply the sample by ``f(alpha; lo, hi)`` (default code 4), alpha ~ N(0, 1).

    ``hi``/``lo`` are the yield ratios at alpha = +-1; they must be positive
    (the exponential codes take their logarithm: pyhf silently returns NaN).
    """

    type = "normsys"
    family = "normsys"

    @staticmethod
    def check_data(data: Any, nominal: np.ndarray, path: str) -> tuple[float, float]:
        """``{"hi": float, "lo": float}`` with positive values; returns ``(lo, hi)``."""
        if not isinstance(data, dict) or set(data) != {"hi", "lo"}:
            msg = f'a normsys modifier needs data {{"hi": number, "lo": number}}, got {data!r}'
            raise SpecError(msg, path)
        lo = check_number(data["lo"], f"{path}.lo", "normsys lo")
        hi = check_number(data["hi"], f"{path}.hi", "normsys hi")
        for key, val in (("lo", lo), ("hi", hi)):
            if val <= 0:
                msg = f"normsys {key} must be a positive yield ratio, got {val!r}"
                raise SpecError(msg, f"{path}.{key}")
        return lo, hi

    @staticmethod
    def requirement(nominal: np.ndarray, data: Any) -> Requirement:
        """One N(0, 1)-constrained scalar, init 0, bounds [-5, 5]."""
        return UNIT_NORMAL
