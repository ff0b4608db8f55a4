"""HEP probability distributions as NumPyro ``Distribution`` subclasses.

Also importable as ``hepprob.dist``. Every distribution broadcasts its
parameters, checks them with ``validate_args=True``, samples exactly from a JAX
key, and takes an optional observable range ``low``, ``high`` on which it is
normalised.
"""

from __future__ import annotations

from hepprob.distributions import (
    background,
    composite,
    custom,
    nonparametric,
    peaking,
    truncated,
)
from hepprob.distributions.background import *  # noqa: F403
from hepprob.distributions.composite import *  # noqa: F403
from hepprob.distributions.custom import *  # noqa: F403
from hepprob.distributions.nonparametric import *  # noqa: F403
from hepprob.distributions.peaking import *  # noqa: F403
from hepprob.distributions.truncated import *  # noqa: F403

__all__ = [
    *peaking.__all__,
    *background.__all__,
    *truncated.__all__,
    *nonparametric.__all__,
    *custom.__all__,
    *composite.__all__,
]


def __dir__() -> list[str]:
    return __all__
