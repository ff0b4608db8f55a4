"""Short alias of :mod:`hepprob.distributions`: ``from hepprob.dist import CrystalBall``."""

from __future__ import annotations

from hepprob.distributions import *  # the alias re-exports everything
from hepprob.distributions import __all__, __dir__  # noqa: F401
