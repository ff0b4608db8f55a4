"""``shapefactor``: one free, unconstrained factor per bin (data-driven shapes)."""

from __future__ import annotations

from typing import Any

import numpy as np

from hepprob.histfactory.modifiers._base import (
    AbstractModifier,
    Requirement,
    check_null,
)

__all__ = ["ShapeFactor"]


class ShapeFactor(AbstractModifier):
    """Multiply bin ``j`` of the sample by parameter ``name[j]`` (init 1, [0, 10]).

    Shared across channels by bin position within the channel (channels sharing
    one must have the same number of bins), as pyhf.
    """

    type = "shapefactor"
    family = "factor"

    @staticmethod
    def check_data(data: Any, nominal: np.ndarray, path: str) -> None:
        """Data must be ``null``."""
        check_null(data, path, "shapefactor")

    @staticmethod
    def requirement(nominal: np.ndarray, data: Any) -> Requirement:
        """``nbins`` unconstrained parameters."""
        n = len(nominal)
        return Requirement(
            "none", n, False, (1.0,) * n, ((0.0, 10.0),) * n, (False,) * n
        )
