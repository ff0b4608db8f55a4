r"""Tikhonov regularisation of unfolding parameters.

Adds :math:`-\tau\,\lVert D_k (\theta - \theta_0)\rVert^2` to the log-likelihood,
with :math:`D_k` the :math:`k`-th order finite-difference matrix on the selected
parameters (:math:`k=2`: curvature; Hoecker and Kartvelishvili, NIM A372 (1996)
469; Schmitt, JINST 7 (2012) T10003 for TUnfold's form).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from hepprob.errors import ModelError

__all__ = ["Tikhonov"]


@dataclasses.dataclass(frozen=True)
class Tikhonov:
    r"""A Tikhonov penalty on flat parameters (names as ``config.par_names``).

    Args:
        parameters: flat parameter names in the order of the unfolded bins,
            e.g. ``["mu_0", "mu_1", ...]`` or ``["sf[0]", "sf[1]", ...]``.
        tau: strength (>= 0).
        order: 0 (size), 1 (slope) or 2 (curvature, default).
        reference: the bias vector :math:`\theta_0` (default 0 for order 0, and
            irrelevant for order >= 1 when constant).
    """

    parameters: Sequence[str]
    tau: float
    order: int = 2
    reference: Sequence[float] | None = None

    def matrix(self) -> np.ndarray:
        """The ``(n - order, n)`` finite-difference matrix."""
        n = len(self.parameters)
        if self.order not in (0, 1, 2) or n <= self.order:
            msg = f"Tikhonov: order must be 0, 1 or 2 and < number of parameters ({n})"
            raise ModelError(msg)
        if not self.tau >= 0:
            msg = f"Tikhonov: tau must be >= 0, got {self.tau!r}"
            raise ModelError(msg)
        d = np.eye(n)
        for _ in range(self.order):
            d = np.diff(d, axis=0)
        return d
