"""The built-in example behind ``hepprob demo``: an unbinned B-mass fit."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro

from hepprob import distributions as dist
from hepprob.errors import ParameterError
from hepprob.infer.fit import fit
from hepprob.model import param

__all__ = ["TRUTH", "mass_model", "run"]


def __dir__() -> list[str]:
    return __all__


LOW, HIGH = 5.0, 5.6
#: the parameters the demo sample is generated with (GeV)
TRUTH = {"mu": 5.28, "sigma": 0.02, "lam": 3.0, "frac": 0.3}
ALPHA, N_TAIL = 1.5, 3.0


def mass_model(mass: Any) -> None:
    """Crystal Ball signal + exponential background on [5.0, 5.6] GeV.

    .. math::
        p(m) = f\\,\\mathrm{CB}(m; \\mu, \\sigma, \\alpha=1.5, n=3)
        + (1 - f)\\,\\lambda e^{-\\lambda (m - 5)} / (1 - e^{-0.6 \\lambda})

    both normalised on the range. Free parameters: ``mu``, ``sigma``, ``lam``,
    ``frac``; the tail parameters ``alpha = 1.5`` and ``n = 3`` are held fixed,
    as one does with tails taken from simulation (the background hides the
    tail, so free tail parameters would be poorly constrained).
    """
    mu = param("mu", 5.27, 5.2, 5.35)
    sigma = param("sigma", 0.03, 0.005, 0.1)
    lam = param("lam", 2.0, 0.01, 20.0)
    frac = param("frac", 0.5, 0.0, 1.0)
    signal = dist.CrystalBall(mu, sigma, ALPHA, N_TAIL, low=LOW, high=HIGH)
    numpyro.sample("mass", dist.Mixture([signal, _background(lam)], frac), obs=mass)


def run(*, seed: int = 0, n_events: int = 10_000) -> dict[str, Any]:
    """Generate a Crystal Ball + exponential mass sample and fit it.

    Args:
        seed: seed of the ``jax.random`` key used to generate the sample.
        n_events: number of events.

    Returns:
        A JSON-serialisable dict: ``n_events``, ``seed``, ``truth``, ``values``,
        ``errors``, ``nll``, ``converged``, ``edm``, ``n_iter``, ``message``.

    Example:
        >>> out = run(seed=1, n_events=2000)
        >>> out["converged"], sorted(out["values"])
        (True, ['frac', 'lam', 'mu', 'sigma'])
    """
    if isinstance(n_events, bool) or not isinstance(n_events, int) or n_events < 10:
        msg = f"demo.run: n_events must be an integer >= 10, got {n_events!r}"
        raise ParameterError(msg)
    if isinstance(seed, bool) or not isinstance(seed, int):
        msg = f"demo.run: seed must be an integer, got {seed!r}"
        raise ParameterError(msg)
    mass = generate(jax.random.key(seed), n_events)
    result = fit(mass_model, mass)
    out = result.to_dict()
    return {
        "n_events": n_events,
        "seed": seed,
        "truth": dict(TRUTH),
        "values": out["values"],
        "errors": out["errors"],
        "nll": out["nll"],
        "converged": out["converged"],
        "edm": out["edm"],
        "n_iter": out["n_iter"],
        "message": out["message"],
    }


def generate(key: Any, n_events: int) -> np.ndarray:
    """Draw the demo sample at :data:`TRUTH` (signal by the exact CB sampler,
    background by inverting the truncated exponential's cdf)."""
    k_count, k_sig, k_bkg = jax.random.split(key, 3)
    n_sig = int(jax.random.binomial(k_count, n_events, TRUTH["frac"]))
    cb = dist.CrystalBall(
        TRUTH["mu"], TRUTH["sigma"], ALPHA, N_TAIL, low=LOW, high=HIGH
    )
    signal = cb.sample(k_sig, (n_sig,))
    u = jax.random.uniform(k_bkg, (n_events - n_sig,), dtype=jnp.float64)
    lam = TRUTH["lam"]
    background = LOW - jnp.log1p(-u * -jnp.expm1(-lam * (HIGH - LOW))) / lam
    return np.asarray(jnp.concatenate([signal, background]))


def _background(lam: Any) -> Any:
    """Falling exponential ``lam * exp(-lam (m - 5))`` normalised on [LOW, HIGH]."""
    return dist.Exponential(-lam, LOW, HIGH)
