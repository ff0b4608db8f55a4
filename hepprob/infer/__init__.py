"""Frequentist inference for any hepprob model.

What to use when:

* :func:`fit` — maximum likelihood for a NumPyro model with ``hepprob.param``
  sites: values, Hesse errors, ``minos()``, ``profile()``.
* :func:`nll` — the jitted negative log-likelihood of a model as a function of a
  flat parameter vector, for external minimisers (iminuit).
* :func:`hypotest`, :func:`upper_limit`, :func:`discovery` and :mod:`mle` — the
  pyhf-compatible API for HistFactory models; :func:`hypotest_model` for generic
  models.
* :func:`toys` — generate and fit pseudo-experiments, vectorised.
* :func:`scan_patchset` — CLs of every patch of a patchset, one compiled
  program, optionally on a Dask cluster.
* :func:`sweights` — sPlot weights of the species of an extended fit.
* :func:`interval` — two-sided intervals by profile likelihood or Feldman–Cousins.
* :func:`profile_scan` — the profiled NLL with several parameters fixed, on rows
  or a grid; ``FitResult.contour`` for 2-D contours.
"""

from __future__ import annotations

from hepprob.infer import mle, test_statistics
from hepprob.infer.contour import profile_scan
from hepprob.infer.fit import fit, nll
from hepprob.infer.hypotest import hypotest, hypotest_model
from hepprob.infer.intervals import interval
from hepprob.infer.limits import discovery, upper_limit
from hepprob.infer.minimize import MinimizeResult, minimize
from hepprob.infer.result import FitResult
from hepprob.infer.scan import PatchScan, scan_patchset
from hepprob.infer.sweights import sweights
from hepprob.infer.toys import toys

__all__ = [
    "FitResult",
    "MinimizeResult",
    "PatchScan",
    "discovery",
    "fit",
    "hypotest",
    "hypotest_model",
    "interval",
    "minimize",
    "mle",
    "nll",
    "profile_scan",
    "scan_patchset",
    "sweights",
    "test_statistics",
    "toys",
    "upper_limit",
]


def __dir__() -> list[str]:
    return __all__
