r"""Dimension-6 EFT quadratic morphing of templates.

A yield depends on Wilson coefficients :math:`c_i` at most quadratically
(one insertion in amplitude, squared):

.. math:: \nu(c) = \nu_\mathrm{SM} + \sum_i c_i L_i + \sum_{i\le j} c_i c_j Q_{ij}

(e.g. Brivio and Trott, Phys. Rept. 793 (2019) 1; the ATLAS/CMS
"morphing" of templates simulated at basis points). :func:`eft_terms_from_basis`
solves for :math:`\nu_\mathrm{SM}, L, Q` from templates at enough basis points;
:class:`EFTMorphing` adds :math:`\sum c_i L_i + \sum c_i c_j Q_{ij}` to a
sample's nominal yield (before its multiplicative modifiers).
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from hepprob._typing import ArrayLike
from hepprob.errors import ModelError

__all__ = ["EFTMorphing", "eft_terms_from_basis"]


@dataclasses.dataclass(frozen=True, eq=False)
class EFTMorphing:
    """Quadratic EFT dependence of one sample in one channel.

    Args:
        channel, sample: where it applies (the sample's ``data`` is the SM yield).
        coefficients: names of the Wilson-coefficient parameters (declare them
            with ``extra_parameters`` unless the spec has them).
        linear: ``(n_coef, nbins)`` terms :math:`L_i`.
        quadratic: ``(n_coef, n_coef, nbins)`` terms :math:`Q_{ij}` (only
            ``i <= j`` is used).
    """

    channel: str
    sample: str
    coefficients: tuple[str, ...]
    linear: np.ndarray
    quadratic: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.coefficients)
        lin = np.asarray(self.linear, dtype=np.float64)
        quad = np.asarray(self.quadratic, dtype=np.float64)
        if lin.ndim != 2 or lin.shape[0] != n or quad.shape != (n, n, lin.shape[1]):
            msg = (
                f"EFTMorphing({self.channel!r}, {self.sample!r}): need linear (n, nbins) and "
                f"quadratic (n, n, nbins) for n={n} coefficients, got {lin.shape} and {quad.shape}"
            )
            raise ModelError(msg)
        object.__setattr__(self, "coefficients", tuple(self.coefficients))
        object.__setattr__(self, "linear", lin)
        object.__setattr__(
            self, "quadratic", np.triu(quad.transpose(2, 0, 1)).transpose(1, 2, 0)
        )


def eft_terms_from_basis(
    points: ArrayLike, templates: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Solve for ``(sm, linear, quadratic)`` from templates at basis points.

    Args:
        points: ``(n_points, n_coef)`` coefficient values of the simulated samples.
        templates: ``(n_points, nbins)`` yields at those points.

    Returns:
        ``sm (nbins,)``, ``linear (n_coef, nbins)``, ``quadratic (n_coef, n_coef,
        nbins)`` (upper triangle filled).

    Raises:
        ModelError: fewer points than the ``1 + n + n(n+1)/2`` unknowns, or
            points that do not determine them (singular design).
    """
    pts = np.atleast_2d(np.asarray(points, dtype=np.float64))
    tmpl = np.atleast_2d(np.asarray(templates, dtype=np.float64))
    n = pts.shape[1]
    pairs = list(itertools.combinations_with_replacement(range(n), 2))
    design = np.column_stack(
        [np.ones(len(pts)), pts, *[pts[:, i] * pts[:, j] for i, j in pairs]]
    )
    if tmpl.shape[0] != pts.shape[0] or design.shape[0] < design.shape[1]:
        msg = (
            f"eft_terms_from_basis: need >= {design.shape[1]} basis points with one template "
            f"each, got {pts.shape[0]} points and {tmpl.shape[0]} templates"
        )
        raise ModelError(msg)
    if np.linalg.matrix_rank(design) < design.shape[1]:
        msg = "eft_terms_from_basis: the basis points do not determine all terms (singular)"
        raise ModelError(msg)
    coef, *_ = np.linalg.lstsq(design, tmpl, rcond=None)
    sm, lin = coef[0], coef[1 : 1 + n]
    quad = np.zeros((n, n, tmpl.shape[1]))
    for k, (i, j) in enumerate(pairs):
        quad[i, j] = coef[1 + n + k]
    return sm, lin, quad
