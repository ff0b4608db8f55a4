"""``shapesys``: uncorrelated per-bin uncertainties of one sample, Poisson-constrained."""

from __future__ import annotations

from typing import Any

import numpy as np

from hepprob.histfactory.modifiers._base import (
    AbstractModifier,
    Requirement,
    check_vector,
)

__all__ = ["ShapeSys"]


class ShapeSys(AbstractModifier):
    r"""Multiply bin ``j`` by :math:`\gamma_j`, constrained by Pois(tau_j | gamma_j tau_j).

    :math:`\tau_j = (n_j/\sigma_j)^2` from the nominal yield and absolute
    uncertainty (Barlow-Beeston-lite, CERN-OPEN-2012-016 sec. 4.2); bins with
    no yield or no uncertainty get tau = 1 and a fixed gamma (as pyhf 0.7).
    Not shared: one sample owns it.
    """

    type = "shapesys"
    family = "factor"
    shared = False

    @staticmethod
    def check_data(data: Any, nominal: np.ndarray, path: str) -> np.ndarray:
        """Absolute uncertainties, one per bin."""
        return check_vector(data, len(nominal), path, "shapesys data")

    @staticmethod
    def requirement(nominal: np.ndarray, data: Any) -> Requirement:
        """``nbins`` Poisson-constrained gammas, init 1, bounds [1e-10, 10]."""
        valid = (nominal > 0) & (data > 0)
        safe = np.where(valid, data, 1.0)
        tau = np.where(valid, nominal**2 / safe**2, 1.0)
        n = len(nominal)
        return Requirement(
            "poisson",
            n,
            False,
            (1.0,) * n,
            ((1e-10, 10.0),) * n,
            tuple(bool(v) for v in ~valid),
            tuple(tau.tolist()),
            None,
            tuple(tau.tolist()),
            unused=frozenset({"sigmas"}),
        )
