"""``lumi``: the luminosity factor, Gaussian-constrained with the measurement's width."""

from __future__ import annotations

from typing import Any

import numpy as np

from hepprob.histfactory.modifiers._base import (
    AbstractModifier,
    Requirement,
    check_null,
)

__all__ = ["Lumi"]


class Lumi(AbstractModifier):
    """Multiply the sample by the lumi parameter.

    Its init, bounds, auxdata and sigma have no defaults: they come from the
    measurement's parameter configuration (``{"name": "lumi", "auxdata": [1.0],
    "sigmas": [0.02], "bounds": [[0.5, 1.5]], "inits": [1.0]}``).
    """

    type = "lumi"
    family = "factor"

    @staticmethod
    def check_data(data: Any, nominal: np.ndarray, path: str) -> None:
        """Data must be ``null``."""
        check_null(data, path, "lumi")

    @staticmethod
    def requirement(nominal: np.ndarray, data: Any) -> Requirement:
        """One Normal-constrained scalar configured by the measurement."""
        return Requirement(
            "normal",
            1,
            True,
            None,
            None,
            (False,),
            None,
            None,
            unused=frozenset({"factors"}),
        )
