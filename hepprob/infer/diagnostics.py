"""Fit diagnostics for HistFactory models: pulls, impacts, goodness of fit, yields.

What to use when:

* :func:`pulls` — (θ̂ − θ₀)/σ₀ and post-fit/pre-fit widths of every constrained
  nuisance parameter.
* :func:`impacts` — ΔPOI when each nuisance is fixed at θ̂ ± σ (pre- and
  post-fit widths), all refits as one vectorised program; ``.ranked()`` sorts.
* :func:`goodness_of_fit` — the saturated-model test statistic and its p-value.
* :func:`postfit_yields` — expected yields per channel and sample with
  uncertainties from the AD Jacobian and the covariance (and sampled).

All take ``(data, model)`` in pyhf's order; ``model`` is a HistFactory model
(``hepprob.histfactory.Model`` or anything with pyhf's interface in JAX).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats

from hepprob._typing import ArrayLike, PRNGKey
from hepprob.infer import _batch
from hepprob.infer.mle import _par_names, engine, warn_unconverged

__all__ = [
    "GoodnessOfFit",
    "Impacts",
    "Pulls",
    "goodness_of_fit",
    "impacts",
    "postfit_yields",
    "prefit_widths",
    "pulls",
]


@dataclasses.dataclass(frozen=True)
class _BestFit:
    values: np.ndarray
    covariance: np.ndarray
    fixed: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    data: Any


def _best_fit(data: ArrayLike, model: Any) -> _BestFit:
    """Unconditional fit with its covariance (inverse Hessian of the NLL)."""
    eng = engine(model)
    setup = eng.setup(data, None, None, None)
    one = eng.fit_one(setup)
    warn_unconverged(one, "diagnostics best fit", _par_names(model), setup.fixed)
    return _BestFit(
        np.asarray(one.x),
        _batch.covariance(one.hess, setup.fixed).matrix,
        np.asarray(setup.fixed),
        np.asarray(setup.lower),
        np.asarray(setup.upper),
        setup.data,
    )


def prefit_widths(model: Any) -> np.ndarray:
    """Pre-fit width σ₀ of each parameter from its constraint term (NaN if free).

    σ₀ = (−∂² ln C/∂θ²)^(−1/2) at the nominal values: exact for Gaussian
    constraints (normsys, histosys, lumi, staterror) and 1/√τ for the Poisson
    constraint of shapesys, as in pyhf.
    """
    init = jnp.asarray(model.config.suggested_init(), dtype=jnp.float64)
    aux = jnp.asarray(model.config.auxdata, dtype=jnp.float64)

    def constraint(pars: jax.Array) -> jax.Array:
        return jnp.sum(model.constraint_model.logpdf(aux, pars))

    curvature = -np.diag(np.asarray(jax.hessian(constraint)(init)))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(curvature > 0, 1.0 / np.sqrt(curvature), np.nan)


@dataclasses.dataclass(frozen=True)
class Pulls:
    """Pulls of the constrained parameters.

    Attributes:
        names: parameter names (flat, ``name[i]`` for vector sets).
        pulls: (θ̂ − θ₀)/σ₀.
        constraints: post-fit error / σ₀ (1 means the data add nothing).
    """

    names: list[str]
    pulls: np.ndarray
    constraints: np.ndarray


def pulls(data: ArrayLike, model: Any) -> Pulls:
    """Fit, then pulls (θ̂ − θ₀)/σ₀ and constraints σ̂/σ₀ of constrained parameters."""
    best = _best_fit(data, model)
    widths = prefit_widths(model)
    nominal = np.asarray(model.config.suggested_init(), dtype=float)
    keep = np.isfinite(widths) & ~best.fixed
    errors = np.sqrt(np.clip(np.diag(best.covariance), 0.0, None))
    names = [n for n, k in zip(model.config.par_names, keep, strict=True) if k]
    return Pulls(
        names,
        ((best.values - nominal) / widths)[keep],
        (errors / widths)[keep],
    )


@dataclasses.dataclass(frozen=True)
class Impacts:
    """Shift of the POI when each nuisance is fixed at θ̂ ± σ and the rest refitted.

    Attributes:
        names: nuisance-parameter names.
        poi_hat: the POI at the best fit.
        prefit: (n, 2) ΔPOI for θ̂ + σ₀ and θ̂ − σ₀.
        postfit: (n, 2) ΔPOI for θ̂ + σ̂ and θ̂ − σ̂.
        converged: (n, 4) fit flags of the refits.
    """

    names: list[str]
    poi_hat: float
    prefit: np.ndarray
    postfit: np.ndarray
    converged: np.ndarray

    def ranked(self) -> Impacts:
        """The same impacts sorted by the largest |post-fit ΔPOI|, largest first."""
        order = np.argsort(-np.max(np.abs(self.postfit), axis=1), kind="stable")
        return Impacts(
            [self.names[i] for i in order],
            self.poi_hat,
            self.prefit[order],
            self.postfit[order],
            self.converged[order],
        )


def impacts(data: ArrayLike, model: Any) -> Impacts:
    """Pre- and post-fit impacts of every constrained nuisance on the POI.

    The 4·n constrained refits (θ_k fixed at θ̂_k ± σ₀_k and θ̂_k ± σ̂_k, clipped
    into the bounds) run as batches of the model's one compiled fit program.
    """
    eng = engine(model)
    poi = eng.poi_index()
    best = _best_fit(data, model)
    widths = prefit_widths(model)
    errors = np.sqrt(np.clip(np.diag(best.covariance), 0.0, None))
    which = np.flatnonzero(np.isfinite(widths) & ~best.fixed)
    which = which[which != poi]
    shifts = np.stack(
        [widths[which], -widths[which], errors[which], -errors[which]], axis=1
    )
    n = which.size
    index = np.repeat(which, 4)
    starts = np.tile(best.values, (4 * n, 1))
    starts[np.arange(4 * n), index] = np.clip(
        best.values[index] + shifts.ravel(), best.lower[index], best.upper[index]
    )
    fixed = np.tile(best.fixed, (4 * n, 1))
    fixed[np.arange(4 * n), index] = True

    fits = _batch.fit_batch(
        eng.objective, best.data, starts, best.lower, best.upper, fixed
    )
    warn_unconverged(fits, "impacts")
    converged = fits.converged
    delta = (fits.x[:, poi] - best.values[poi]).reshape(n, 4)
    names = [model.config.par_names[i] for i in which]
    return Impacts(
        names,
        float(best.values[poi]),
        delta[:, :2],
        delta[:, 2:],
        np.asarray(converged).reshape(n, 4),
    )


@dataclasses.dataclass(frozen=True)
class GoodnessOfFit:
    """Saturated-model goodness of fit: statistic, degrees of freedom, p-value."""

    statistic: float
    ndof: int
    p_value: float


def goodness_of_fit(data: ArrayLike, model: Any) -> GoodnessOfFit:
    """Saturated-model test: t = −2 ln(L(θ̂)/L_sat), t ~ χ²(n_bins − n_free_unconstrained).

    L_sat has every main bin's expectation equal to its count and every
    constraint at its auxiliary measurement, so only the main Poisson terms and
    the constraint terms' departures from their maxima enter (S. Baker and
    R. D. Cousins, Nucl. Instrum. Meth. 221 (1984) 437, eq. 9). Constrained
    nuisances come with their own auxiliary measurement, so only the free
    (unconstrained) parameters reduce the degrees of freedom.
    """
    best = _best_fit(data, model)
    cfg = model.config
    n_main = int(cfg.nmaindata) if hasattr(cfg, "nmaindata") else None
    full = np.asarray(best.data)
    if n_main is None:
        n_main = full.size - len(cfg.auxdata)
    counts = full[:n_main]
    aux = jnp.asarray(full[n_main:])
    expected = np.asarray(model.expected_data(best.values, include_auxdata=False))
    poisson = 2.0 * np.sum(
        expected
        - counts
        + np.where(counts > 0, counts * np.log(counts / expected), 0.0)
    )
    nominal = jnp.asarray(cfg.suggested_init(), dtype=jnp.float64)
    constraint_fit = float(
        jnp.sum(model.constraint_model.logpdf(aux, jnp.asarray(best.values)))
    )
    constraint_sat = float(jnp.sum(model.constraint_model.logpdf(aux, nominal)))
    statistic = poisson + 2.0 * (constraint_sat - constraint_fit)
    unconstrained = ~np.isfinite(prefit_widths(model)) & ~best.fixed
    ndof = int(n_main - np.sum(unconstrained))
    return GoodnessOfFit(
        float(statistic), ndof, float(scipy.stats.chi2.sf(statistic, max(ndof, 1)))
    )


def postfit_yields(
    data: ArrayLike,
    model: Any,
    *,
    n_samples: int = 0,
    key: PRNGKey | None = None,
) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """Post-fit yields per channel and sample, with uncertainties.

    The error is √diag(J Σ Jᵀ), J the autodiff Jacobian of the yields and Σ the
    fit covariance (correlations between bins, samples and parameters included).
    With ``n_samples > 0`` a sampled error is added: the standard deviation of
    the yields over parameter draws from N(θ̂, Σ) (clipped into the bounds).

    Returns:
        ``{channel: {sample or "total": {"yield", "error"[, "error_sampled"]}}}``.
    """
    best = _best_fit(data, model)
    cfg = model.config

    def by_sample(pars: jax.Array) -> jax.Array:
        return jnp.asarray(model.main_model.expected_data(pars, return_by_sample=True))

    pars = jnp.asarray(best.values)
    yields = np.asarray(by_sample(pars))  # (samples, bins)
    jac = np.asarray(jax.jacfwd(by_sample)(pars))  # (samples, bins, npars)
    cov = best.covariance

    def linear_error(j: np.ndarray) -> np.ndarray:
        return np.sqrt(np.clip(np.einsum("...i,ij,...j->...", j, cov, j), 0.0, None))

    sample_err = linear_error(jac)
    total_err = linear_error(jac.sum(axis=0))
    draws = None
    if n_samples > 0:
        key = jax.random.PRNGKey(0) if key is None else key
        theta = jax.random.multivariate_normal(
            key, pars, jnp.asarray(cov), shape=(n_samples,), method="svd"
        )
        theta = jnp.clip(theta, best.lower, best.upper)
        draws = np.asarray(jax.vmap(by_sample)(theta))  # (draws, samples, bins)
    out: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    for channel in cfg.channels:
        sl = cfg.channel_slices[channel]
        entry: dict[str, dict[str, np.ndarray]] = {}
        for s, sample in enumerate(cfg.samples):
            entry[sample] = {"yield": yields[s, sl], "error": sample_err[s, sl]}
            if draws is not None:
                entry[sample]["error_sampled"] = draws[:, s, sl].std(axis=0, ddof=1)
        entry["total"] = {"yield": yields[:, sl].sum(axis=0), "error": total_err[sl]}
        if draws is not None:
            entry["total"]["error_sampled"] = (
                draws[:, :, sl].sum(axis=1).std(axis=0, ddof=1)
            )
        out[channel] = entry
    return out
