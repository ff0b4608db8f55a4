"""HEP probability distributions as NumPyro ``Distribution`` subclasses.

Also importable as ``hepprob.dist``. Every distribution broadcasts its
parameters, checks them with clear errors, samples exactly from a JAX key, and
takes an optional observable range ``low``, ``high`` on which it is normalised.

* peaking: CrystalBall, DoubleCrystalBall, BreitWigner, RelativisticBreitWigner,
  Voigtian, JohnsonSU
* background: Argus, Exponential, Chebyshev, Bernstein
* Truncated (any 1-D distribution on a range), HistogramPDF, GaussianKDE
* CustomPDF / from_function (a user's density, normalised numerically, n-D)
* Mixture, Extended, Product; HistFactory (a binned model over its data)
"""

from __future__ import annotations

from hepprob.distributions.background import (
    Argus,
    Bernstein,
    Chebyshev,
    Exponential,
)
from hepprob.distributions.composite import (
    Extended,
    Mixture,
    Product,
)
from hepprob.distributions.custom import (
    CustomPDF,
    from_function,
)
from hepprob.distributions.nonparametric import (
    GaussianKDE,
    HistogramPDF,
)
from hepprob.distributions.peaking import (
    BreitWigner,
    CrystalBall,
    DoubleCrystalBall,
    JohnsonSU,
    RelativisticBreitWigner,
    Voigtian,
)
from hepprob.distributions.truncated import (
    Truncated,
    range_mass,
)
from hepprob.histfactory.distribution import HistFactory

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
