"""hepprob: high-energy-physics likelihoods on NumPyro and JAX.

What to use when:

* ``hepprob.param`` declares a free parameter inside a NumPyro model function.
* ``hepprob.fit`` finds the maximum-likelihood point (Hesse, Minos, profiles);
  ``hepprob.toys`` generates and fits pseudo-experiments; ``hepprob.infer`` has
  CLs, limits and the pyhf-compatible API.
* ``hepprob.mcmc`` samples the same model with NUTS into ArviZ ``InferenceData``.
* ``hepprob.dist`` (= ``hepprob.distributions``) holds the HEP shapes;
  ``hepprob.histfactory`` reads pyhf JSON workspaces.

Importing hepprob switches JAX to float64 (``jax_enable_x64``): likelihood fits
need it, and every array hepprob makes is float64. It also turns on JAX's
persistent compilation cache in ``~/.cache/hepprob/jax`` (set
``HEPPROB_COMPILATION_CACHE`` to another path, or to ``off``).
"""

from __future__ import annotations

import jax

# Likelihood fits need double precision: switch it on once, at import.
jax.config.update("jax_enable_x64", True)

from hepprob._compilation_cache import configure as _configure_compilation_cache

# Compiled programs persist on disk between processes (HEPPROB_COMPILATION_CACHE).
_configure_compilation_cache()

from hepprob import (
    distributions,
    errors,
    histfactory,
    infer,
)
from hepprob import distributions as dist
from hepprob._program_cache import clear_cache as clear_caches
from hepprob.bayes import mcmc
from hepprob.infer import fit, toys
from hepprob.model import param

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "bayes",
    "clear_caches",
    "dist",
    "distributions",
    "errors",
    "fit",
    "histfactory",
    "infer",
    "io",
    "mcmc",
    "param",
    "plot",
    "toys",
]


def __dir__() -> list[str]:
    return __all__
