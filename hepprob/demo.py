"""The built-in example behind ``hepprob demo``: fit, CLs and MCMC on one spectrum.

1. An unbinned Crystal Ball + exponential fit of a generated B-mass spectrum,
   with Hesse errors and Minos intervals.
2. A search for a second, narrow resonance at 5.45 GeV in the same spectrum:
   a binned HistFactory model (background shape and yield from the fit, with a
   10% normalisation uncertainty) gives CLs at signal strength 1 with its
   expected band, a CLs scan, and the 95% CL upper limit.
3. The NUTS posterior of the peak position and width of the same unbinned
   model (four vectorised chains, so that R-hat exists).

:func:`run` returns the numbers (JSON-ready), :func:`report` prints them as
tables and :func:`plots` draws them.
"""

from __future__ import annotations

import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro

from hepprob import _display
from hepprob import distributions as dist
from hepprob.bayes import mcmc, summary
from hepprob.errors import ParameterError
from hepprob.histfactory import Workspace
from hepprob.infer.fit import fit
from hepprob.infer.hypotest import hypotest
from hepprob.infer.limits import upper_limit
from hepprob.model import param

__all__ = ["TRUTH", "mass_model", "plots", "report", "run", "search_workspace"]


def __dir__() -> list[str]:
    return __all__


LOW, HIGH = 5.0, 5.6
#: the parameters the demo sample is generated with (GeV)
TRUTH = {"mu": 5.28, "sigma": 0.02, "lam": -3.0, "frac": 0.3}
ALPHA, N_TAIL = 1.5, 3.0


def mass_model(mass: Any) -> None:
    """Crystal Ball signal + exponential background on [5.0, 5.6] GeV.

    .. math::
        p(m) = f\\,\\mathrm{CB}(m; \\mu, \\sigma, \\alpha=1.5, n=3)
        + (1 - f)\\,\\frac{\\lambda e^{\\lambda m}}{e^{5.6 \\lambda} - e^{5 \\lambda}}

    both normalised on the range. Free parameters: ``mu``, ``sigma``, ``lam``,
    ``frac``; ``lam`` is the slope of the exponential, as everywhere in
    hepprob (density ∝ exp(lam·m): negative is falling). The tail parameters
    ``alpha = 1.5`` and ``n = 3`` are held fixed, as one does with tails taken
    from simulation (the background hides the tail, so free tail parameters
    would be poorly constrained).
    """
    mu = param("mu", 5.27, 5.2, 5.35)
    sigma = param("sigma", 0.03, 0.005, 0.1)
    lam = param("lam", -2.0, -20.0, 20.0)
    frac = param("frac", 0.5, 0.0, 1.0)
    signal = dist.CrystalBall(mu, sigma, ALPHA, N_TAIL, low=LOW, high=HIGH)
    numpyro.sample("mass", dist.Mixture([signal, _background(lam)], frac), obs=mass)


def run(
    *,
    seed: int = 0,
    n_events: int = 10_000,
    search: bool = True,
    mcmc_samples: int = 250,
    num_chains: int = 4,
    minos: bool = False,
) -> dict[str, Any]:
    """Generate a Crystal Ball + exponential mass sample, fit it, search, sample.

    Args:
        seed: seed of the ``jax.random`` key used to generate the sample.
        n_events: number of events.
        search: also run the CLs search for a second resonance (step 2).
        mcmc_samples: NUTS draws per chain (and as many warm-up steps) for
            step 3; 0 skips it.
        num_chains: NUTS chains, vectorised (R-hat needs two or more).
        minos: also compute Minos intervals of all fit parameters.

    Returns:
        A JSON-serialisable dict: ``n_events``, ``seed``, ``truth``, ``values``,
        ``errors``, ``nll``, ``converged``, ``edm``, ``n_iter``, ``message``;
        with ``minos``: ``"minos"`` (``{name: [lower, upper]}``); with
        ``search``: ``"search"`` (the workspace, CLs, expected band, a CLs scan,
        upper limits); with ``mcmc_samples``: ``"posterior"`` (mean, sd, HDI,
        ESS and, with several chains, R-hat).

    Example:
        >>> out = run(seed=1, n_events=2000, mcmc_samples=0)
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
    if minos:
        report["minos"] = {k: list(v) for k, v in result.minos().items()}
    if search:
        report["search"] = _search(mass, result.values)
    if mcmc_samples > 0:
        idata = mcmc(
            mass_model,
            mass,
            num_warmup=mcmc_samples,
            num_samples=mcmc_samples,
            num_chains=num_chains,
            chain_method="vectorized",
            seed=seed,
            progress_bar=False,
        )
        table = summary(idata, var_names=["mu", "sigma"], round_to="none")
        keep = ["mean", "sd", "hdi_16%", "hdi_84%", "ess_bulk", "r_hat"]
        report["posterior"] = {
            str(name): {k: float(row[k]) for k in keep if k in row}
            for name, row in table.iterrows()
        }
        report["posterior_draws"] = {"chains": num_chains, "draws": mcmc_samples}
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
    # the scan reaches past the +2 sigma limit, but not past the POI's bound
    top = float(model.config.suggested_bounds()[model.config.poi_index][1])
    scan = np.linspace(0.0, min(1.5 * max(limit_exp[-1], limit_obs), top), 16)[1:]
    *_, (_, rows) = upper_limit(data, model, scan=scan, return_results=True)
    scan_obs = [float(r[0]) for r in rows]
    scan_exp = np.array([np.asarray(r[1], dtype=float) for r in rows]).T
    return {
        "workspace": spec,
        "CLs_obs": float(cls_obs),
        "CLs_exp": [float(v) for v in cls_exp],
        "upper_limit_obs": float(limit_obs),
        "upper_limit_exp": [float(v) for v in limit_exp],
        "scan": {
            "mu": scan.tolist(),
            "CLs_obs": np.asarray(scan_obs, dtype=float).tolist(),
            "CLs_exp": np.asarray(scan_exp, dtype=float).tolist(),
        },
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
    lam = TRUTH["lam"]  # cdf (e^{lam (m-LOW)} - 1) / (e^{lam (HIGH-LOW)} - 1)
    background = LOW + jnp.log1p(u * jnp.expm1(lam * (HIGH - LOW))) / lam
    return np.asarray(jnp.concatenate([signal, background]))


def _background(lam: Any) -> Any:
    """Exponential with slope ``lam`` (density ∝ exp(lam·m)) on [LOW, HIGH]."""
    return dist.Exponential(lam, LOW, HIGH)


# -- output ---------------------------------------------------------------------


def report(out: dict[str, Any], plot_files: list[str] | None = None) -> str:
    """The results of :func:`run` as a few tables for people."""
    names = list(out["values"])
    state = "converged" if out["converged"] else "DID NOT CONVERGE: " + out["message"]
    blocks = [
        (
            f"hepprob demo: {out['n_events']} events of a B-mass spectrum on "
            f"[{LOW}, {HIGH}] GeV, Crystal Ball signal + exponential background "
            f"(seed {out['seed']})"
        ),
        _display.fit_table(
            names,
            [out["values"][n] for n in names],
            [out["errors"][n] for n in names],
            minos=out.get("minos"),
            truth=out["truth"],
            title=f"1. unbinned fit: {state}, -ln L = {out['nll']:.2f}, "
            f"{out['n_iter']} Newton steps",
            notes=(
                (
                    "errors from the exact Hessian (Hesse); minos: profile-likelihood"
                    " interval, 68% CL"
                ),
            )
            if "minos" in out
            else (),
        ).text(),
    ]
    if "search" in out:
        s = out["search"]
        blocks.append(
            _display.cls_table(1.0, s["CLs_obs"], s["CLs_exp"], poi_name="mu")
            .text()
            .replace(
                "CLs at mu = 1",
                "2. search for a resonance at 5.45 GeV "
                f"({SEARCH_SIGNAL_EVENTS:g} signal events at mu = 1): CLs at mu = 1",
                1,
            )
        )
        blocks.append(
            _display.limit_table(
                s["upper_limit_obs"], s["upper_limit_exp"], poi_name="mu"
            ).text()
        )
    if "posterior" in out:
        draws = out.get("posterior_draws", {})
        blocks.append(
            _display.posterior_table(
                out["posterior"].items(),
                title=f"3. NUTS posterior ({draws.get('chains', 1)} chains x "
                f"{draws.get('draws', '?')} draws, flat priors)",
            ).text()
        )
    if plot_files:
        folder = pathlib.Path(plot_files[0]).parent
        blocks.append(
            f"plots written to {folder}/: "
            + ", ".join(pathlib.Path(f).name for f in plot_files)
        )
    blocks.append("(hepprob demo --json for every number)")
    return "\n\n".join(blocks)


def plots(out: dict[str, Any], folder: str | pathlib.Path) -> list[str]:
    """Draw the fit projection, the search histogram and the Brazil band as PNGs.

    Returns the paths written. Needs matplotlib (``pip install "hepprob[plot]"``).
    """
    from hepprob import plot
    from hepprob._optional import require

    matplotlib = require("matplotlib", "the demo's plots")
    if matplotlib.get_backend().lower() not in (
        "agg",
        "module://matplotlib_inline.backend_inline",
    ):
        matplotlib.use("Agg")
    plt = require("matplotlib.pyplot", "the demo's plots")
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    v = out["values"]
    mass = generate(jax.random.key(out["seed"]), out["n_events"])
    signal = dist.CrystalBall(v["mu"], v["sigma"], ALPHA, N_TAIL, low=LOW, high=HIGH)
    background = _background(v["lam"])

    def density(x: np.ndarray) -> np.ndarray:
        return v["frac"] * np.exp(signal.log_prob(x)) + (1 - v["frac"]) * np.exp(
            background.log_prob(x)
        )

    main, _ = plot.projection(
        density,
        mass,
        bins=60,
        range=(LOW, HIGH),
        components={
            "signal": lambda x: v["frac"] * np.exp(signal.log_prob(x)),
            "background": lambda x: (1 - v["frac"]) * np.exp(background.log_prob(x)),
        },
    )
    main.set_title("unbinned fit")
    main.figure.axes[-1].set_xlabel("mass [GeV]")
    written.append(_save(main.figure, folder / "fit.png", plt))
    if "search" in out:
        s = out["search"]
        ws = Workspace(s["workspace"])
        model = ws.model()
        stacks = plot.channel_stacks(
            model, ws.data(model), edges={"search": SEARCH_EDGES.tolist()}
        )
        main, ratio = stacks["search"]
        ratio.set_xlabel("mass [GeV]")
        written.append(_save(main.figure, folder / "search.png", plt))
        scan = s["scan"]
        ax = plot.brazil_band(scan["mu"], scan["CLs_obs"], scan["CLs_exp"])
        ax.set_xlabel("signal strength mu")
        ax.set_title(f"95% CL upper limit: mu < {s['upper_limit_obs']:.3g}")
        written.append(_save(ax.figure, folder / "cls_scan.png", plt))
    return written


def _save(fig: Any, path: pathlib.Path, plt: Any) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)
