"""The built-in example behind ``hepprob demo``: fit, CLs and MCMC on one spectrum.

1. An unbinned Crystal Ball + exponential fit of a generated B-mass spectrum.
2. A search for a second, narrow resonance at 5.45 GeV in the same spectrum:
   a binned HistFactory model (background shape and yield from the fit, with a
   10% normalisation uncertainty) gives CLs at signal strength 1 with its
   expected band, and the 95% CL upper limit.
3. The NUTS posterior of the peak position and width of the same unbinned model.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
from arviz import ess as effective_sample_size

from hepprob import distributions as dist
from hepprob.bayes import mcmc
from hepprob.errors import ParameterError
from hepprob.histfactory import Workspace
from hepprob.infer.fit import fit
from hepprob.infer.hypotest import hypotest
from hepprob.infer.limits import upper_limit
from hepprob.model import param

__all__ = ["TRUTH", "mass_model", "run", "search_workspace"]


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


def run(
    *,
    seed: int = 0,
    n_events: int = 10_000,
    search: bool = True,
    mcmc_samples: int = 500,
) -> dict[str, Any]:
    """Generate a Crystal Ball + exponential mass sample, fit it, search, sample.

    Args:
        seed: seed of the ``jax.random`` key used to generate the sample.
        n_events: number of events.
        search: also run the CLs search for a second resonance (step 2).
        mcmc_samples: NUTS draws (and as many warm-up steps) for step 3; 0 skips it.

    Returns:
        A JSON-serialisable dict: ``n_events``, ``seed``, ``truth``, ``values``,
        ``errors``, ``nll``, ``converged``, ``edm``, ``n_iter``, ``message``;
        with ``search``: ``"search"`` (the workspace, CLs, expected band, upper
        limits); with ``mcmc_samples``: ``"posterior"`` (mean, sd, r_hat, ESS).

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
    report: dict[str, Any] = {
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
    if search:
        report["search"] = _search(mass, result.values)
    if mcmc_samples > 0:
        idata = mcmc(
            mass_model,
            mass,
            num_warmup=mcmc_samples,
            num_samples=mcmc_samples,
            seed=seed,
            progress_bar=False,
        )
        ess = effective_sample_size(idata, var_names=["mu", "sigma"])
        report["posterior"] = {
            name: {
                "mean": float(idata.posterior[name].mean()),
                "sd": float(idata.posterior[name].std()),
                "ess_bulk": float(ess[name]),
            }
            for name in ("mu", "sigma")
        }
    return report


#: where the demo looks for a second resonance, and the bins of the search (GeV)
SEARCH_MASS, SEARCH_EDGES = 5.45, np.linspace(5.40, 5.50, 6)
SEARCH_SIGNAL_EVENTS = 20.0


def search_workspace(mass: np.ndarray, values: dict[str, float]) -> dict[str, Any]:
    """pyhf JSON workspace for a narrow resonance at 5.45 GeV in ``mass``.

    Background per bin: the fitted exponential's share of the events in the bin,
    with a 10% normalisation uncertainty (normsys). Signal: 20 events of a
    Gaussian of the fitted width at 5.45 GeV, scaled by the POI ``mu``.
    """
    edges = SEARCH_EDGES
    n = mass.size
    bkg_shape = _background(values["lam"])
    bkg = n * (1.0 - values["frac"]) * np.diff(np.asarray(bkg_shape.cdf(edges)))
    sig_shape = dist.Truncated(
        numpyro.distributions.Normal(SEARCH_MASS, values["sigma"]), LOW, HIGH
    )
    sig = SEARCH_SIGNAL_EVENTS * np.diff(np.asarray(sig_shape.cdf(edges)))
    observed = np.histogram(mass, bins=edges)[0].astype(float)
    normsys = {"name": "bkg_norm", "type": "normsys", "data": {"hi": 1.1, "lo": 0.9}}
    return {
        "channels": [
            {
                "name": "search",
                "samples": [
                    {
                        "name": "signal",
                        "data": sig.tolist(),
                        "modifiers": [
                            {"name": "mu", "type": "normfactor", "data": None}
                        ],
                    },
                    {
                        "name": "background",
                        "data": bkg.tolist(),
                        "modifiers": [normsys],
                    },
                ],
            }
        ],
        "observations": [{"name": "search", "data": observed.tolist()}],
        "measurements": [{"name": "search", "config": {"poi": "mu", "parameters": []}}],
        "version": "1.0.0",
    }


def _search(mass: np.ndarray, values: dict[str, float]) -> dict[str, Any]:
    spec = search_workspace(mass, values)
    ws = Workspace(spec)
    model = ws.model()
    data = ws.data(model)
    cls_obs, cls_exp = hypotest(1.0, data, model, return_expected_set=True)
    limit_obs, limit_exp = upper_limit(data, model)
    return {
        "workspace": spec,
        "CLs_obs": float(cls_obs),
        "CLs_exp": [float(v) for v in cls_exp],
        "upper_limit_obs": float(limit_obs),
        "upper_limit_exp": [float(v) for v in limit_exp],
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
