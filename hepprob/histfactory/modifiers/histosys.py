"""``histosys``: a shape uncertainty, interpolated between ``lo_data`` and ``hi_data``."""

from __future__ import annotations

from typing import Any

import numpy as np

from hepprob.errors import SpecError
from hepprob.histfactory.modifiers._base import (
    UNIT_NORMAL,
    AbstractModifier,
    Requirement,
    check_vector,
)

__all__ = ["HistoSys"]


class HistoSys(AbstractModifier):
    """Add ``delta(alpha; lo, nom, hi)`` per bin (default code 4p), alpha ~ N(0, 1)."""

    type = "histosys"
    family = "histosys"

    @staticmethod
    def check_data(
        data: Any, nominal: np.ndarray, path: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """``{"hi_data": [...], "lo_data": [...]}``, one entry per bin."""
        if not isinstance(data, dict) or set(data) != {"hi_data", "lo_data"}:
            msg = (
                'a histosys modifier needs data {"hi_data": [...], "lo_data": [...]}, '
                f"got {data!r}"
            )
            raise SpecError(msg, path)
        n = len(nominal)
        lo = check_vector(data["lo_data"], n, f"{path}.lo_data", "histosys lo_data")
        hi = check_vector(data["hi_data"], n, f"{path}.hi_data", "histosys hi_data")
        return lo, hi

    @staticmethod
    def requirement(nominal: np.ndarray, data: Any) -> Requirement:
        """One N(0, 1)-constrained scalar, init 0, bounds [-5, 5]."""
        return UNIT_NORMAL
