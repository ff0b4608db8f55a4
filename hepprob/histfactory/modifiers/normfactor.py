"""``normfactor``: a free, unconstrained scale factor of a sample (e.g. the POI mu)."""

from __future__ import annotations

from typing import Any

import numpy as np

from hepprob.histfactory.modifiers._base import (
    AbstractModifier,
    Requirement,
    check_null,
)

__all__ = ["NormFactor"]


class NormFactor(AbstractModifier):
    """Multiply the sample by a free parameter; default init 1, bounds [0, 10]."""

    type = "normfactor"
    family = "factor"

    @staticmethod
    def check_data(data: Any, nominal: np.ndarray, path: str) -> None:
        """Data must be ``null``."""
        check_null(data, path, "normfactor")

    @staticmethod
    def requirement(nominal: np.ndarray, data: Any) -> Requirement:
        """One unconstrained scalar."""
        return Requirement("none", 1, True, (1.0,), ((0.0, 10.0),), (False,))
