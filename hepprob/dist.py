"""Short alias of :mod:`hepprob.distributions`: ``from hepprob.dist import CrystalBall``."""

from __future__ import annotations

from hepprob.distributions import (
    Argus,
    Bernstein,
    BreitWigner,
    Chebyshev,
    CrystalBall,
    CustomPDF,
    DoubleCrystalBall,
    Exponential,
    Extended,
    GaussianKDE,
    HistFactory,
    HistogramPDF,
    JohnsonSU,
    Mixture,
    Product,
    RelativisticBreitWigner,
    Truncated,
    Voigtian,
    from_function,
    range_mass,
)

__all__ = [
    "Argus",
    "Bernstein",
    "BreitWigner",
    "Chebyshev",
    "CrystalBall",
    "CustomPDF",
    "DoubleCrystalBall",
    "Exponential",
    "Extended",
    "GaussianKDE",
    "HistFactory",
    "HistogramPDF",
    "JohnsonSU",
    "Mixture",
    "Product",
    "RelativisticBreitWigner",
    "Truncated",
    "Voigtian",
    "from_function",
    "range_mass",
]


def __dir__() -> list[str]:
    return __all__
