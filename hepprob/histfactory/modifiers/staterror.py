"""``staterror``: MC statistical uncertainty per bin, shared by samples, Gaussian-constrained."""

from __future__ import annotations

from typing import Any

import numpy as np

from hepprob.histfactory.modifiers._base import (
    AbstractModifier,
    Requirement,
    check_vector,
)

__all__ = ["StatError", "staterror_requirement"]


class StatError(AbstractModifier):
    r"""Multiply bin ``b`` of every subscribed sample by :math:`\gamma_b \sim N(1, \delta_b)`.

    :math:`\delta_b = \sqrt{\sum_s \sigma_{sb}^2} / \sum_s n_{sb}` over the
    subscribed samples (CERN-OPEN-2012-016 sec. 4.2); bins with
    :math:`\delta_b = 0` get a fixed gamma with width 1 (as pyhf 0.7).
    """

    type = "staterror"
    family = "factor"

    @staticmethod
    def check_data(data: Any, nominal: np.ndarray, path: str) -> np.ndarray:
        """Absolute uncertainties, one per bin."""
        return check_vector(data, len(nominal), path, "staterror data")

    @staticmethod
    def requirement(nominal: np.ndarray, data: Any) -> None:
        """Decided from all subscribed samples: see :func:`staterror_requirement`."""


def staterror_requirement(
    nominals: np.ndarray, uncertainties: np.ndarray, mask: np.ndarray
) -> Requirement:
    """The parameter set of one staterror name.

    Args:
        nominals: ``(n_subscribed_samples, nbins_total)`` nominal yields of the
            samples that use this staterror anywhere.
        uncertainties: same shape, the uncertainties (0 where not subscribed).
        mask: ``(nbins_total,)`` bins the parameter covers.
    """
    total = nominals.sum(axis=0)
    safe = np.where(total > 0, total, 1.0)
    rel2 = np.where(total > 0, (uncertainties / safe) ** 2, 0.0).sum(axis=0)
    sigmas = np.sqrt(rel2)[mask]
    fixed = sigmas == 0
    sigmas = np.where(fixed, 1.0, sigmas)
    n = int(mask.sum())
    return Requirement(
        "normal",
        n,
        False,
        (1.0,) * n,
        ((1e-10, 10.0),) * n,
        tuple(bool(f) for f in fixed),
        (1.0,) * n,
        tuple(sigmas.tolist()),
        unused=frozenset({"factors"}),
    )
