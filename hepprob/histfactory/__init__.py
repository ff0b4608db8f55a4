"""HistFactory models: pyhf JSON workspaces compiled to pure-JAX likelihoods.

What to use when:

* ``Workspace(spec)`` reads a pyhf JSON workspace; ``ws.model()`` builds its
  :class:`Model` and ``ws.data(model)`` its observed data.
* ``Model(spec)`` builds a model from ``{"channels": ..., "parameters": ...}``
  directly; ``model.logpdf``/``expected_data`` follow pyhf 0.7.
* ``model.numpyro_model()`` gives a NumPyro model function for ``hepprob.fit``
  and ``hepprob.mcmc``; :class:`HistFactory` is the data distribution (toys).
"""

from __future__ import annotations

from hepprob.histfactory.distribution import HistFactory
from hepprob.histfactory.model import Model
from hepprob.histfactory.workspace import PatchSet, Workspace

__all__ = [
    "HistFactory",
    "Model",
    "PatchSet",
    "Workspace",
]


def __dir__() -> list[str]:
    return __all__
