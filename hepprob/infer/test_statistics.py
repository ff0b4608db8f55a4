"""Profile-likelihood test statistics q0, qmu, qmu_tilde, tmu, tmu_tilde (pyhf 0.7 API)."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from hepprob._program_cache import on_clear
from hepprob._typing import Array, ArrayLike
from hepprob.errors import HepprobWarning, ParameterError
from hepprob.infer import mle

__all__ = ["q0", "qmu", "qmu_tilde", "tmu", "tmu_tilde"]


def tmu(
    mu: float,
    data: ArrayLike,
    pdf: Any,
    init_pars: Sequence[float] | None,
    par_bounds: Sequence[Sequence[float]] | None,
    fixed_params: Sequence[bool] | None,
    return_fitted_pars: bool = False,
) -> Array | tuple[Array, tuple[Array, Array]]:
    r"""Two-sided test statistic :math:`t_\mu = -2\ln\lambda(\mu)`.

    arXiv:1007.1727, eq. (8), with the profile likelihood ratio of eq. (7),
    :math:`\lambda(\mu) = L(\mu, \hat{\hat\theta}) / L(\hat\mu, \hat\theta)`,
    clipped at 0 against rounding. Warns (:class:`HepprobWarning`) when the POI is
    bounded at zero: use :func:`tmu_tilde` then.

    Args:
        mu: tested POI value.
        data: main + auxiliary data.
        pdf: a HistFactory ``Model``.
        init_pars, par_bounds, fixed_params: fit settings as
            :func:`hepprob.infer.mle.fit` (``None``: the model's suggestions).
        return_fitted_pars: also return the fixed-POI and the free best fits
            :math:`(\mu, \hat{\hat\theta})` and :math:`(\hat\mu, \hat\theta)`.
    """
    return _run(
        "tmu", mu, data, pdf, init_pars, par_bounds, fixed_params, return_fitted_pars
    )


def tmu_tilde(
    mu: float,
    data: ArrayLike,
    pdf: Any,
    init_pars: Sequence[float] | None,
    par_bounds: Sequence[Sequence[float]] | None,
    fixed_params: Sequence[bool] | None,
    return_fitted_pars: bool = False,
) -> Array | tuple[Array, tuple[Array, Array]]:
    r"""Two-sided test statistic for a non-negative POI, :math:`\tilde t_\mu`.

    arXiv:1007.1727, eqs. (10)-(11): :math:`-2\ln\tilde\lambda(\mu)` where the
    free fit is restricted to :math:`\hat\mu \ge 0` by the POI's lower bound 0.
    Warns when that bound is not 0. Arguments as :func:`tmu`.
    """
    return _run(
        "tmu_tilde",
        mu,
        data,
        pdf,
        init_pars,
        par_bounds,
        fixed_params,
        return_fitted_pars,
    )


def qmu(
    mu: float,
    data: ArrayLike,
    pdf: Any,
    init_pars: Sequence[float] | None,
    par_bounds: Sequence[Sequence[float]] | None,
    fixed_params: Sequence[bool] | None,
    return_fitted_pars: bool = False,
) -> Array | tuple[Array, tuple[Array, Array]]:
    r"""One-sided test statistic for upper limits, :math:`q_\mu`.

    arXiv:1007.1727, eq. (14): :math:`q_\mu = -2\ln\lambda(\mu)` for
    :math:`\hat\mu \le \mu`, else 0. Warns when the POI is bounded at zero (use
    :func:`qmu_tilde`). Arguments as :func:`tmu`.
    """
    return _run(
        "qmu", mu, data, pdf, init_pars, par_bounds, fixed_params, return_fitted_pars
    )


def qmu_tilde(
    mu: float,
    data: ArrayLike,
    pdf: Any,
    init_pars: Sequence[float] | None,
    par_bounds: Sequence[Sequence[float]] | None,
    fixed_params: Sequence[bool] | None,
    return_fitted_pars: bool = False,
) -> Array | tuple[Array, tuple[Array, Array]]:
    r"""One-sided test statistic for upper limits with :math:`\mu \ge 0`, :math:`\tilde q_\mu`.

    arXiv:1007.1727, eq. (16): as :func:`qmu` with :math:`\tilde\lambda` of
    eq. (10), i.e. the free fit bounded by :math:`\hat\mu \ge 0`. The bound comes
    from ``par_bounds``: warns when the POI's lower bound is not 0 (use
    :func:`qmu` then). Arguments as :func:`tmu`.
    """
    return _run(
        "qmu_tilde",
        mu,
        data,
        pdf,
        init_pars,
        par_bounds,
        fixed_params,
        return_fitted_pars,
    )


def q0(
    mu: float,
    data: ArrayLike,
    pdf: Any,
    init_pars: Sequence[float] | None,
    par_bounds: Sequence[Sequence[float]] | None,
    fixed_params: Sequence[bool] | None,
    return_fitted_pars: bool = False,
) -> Array | tuple[Array, tuple[Array, Array]]:
    r"""Discovery test statistic :math:`q_0`.

    arXiv:1007.1727, eq. (12): :math:`q_0 = -2\ln\lambda(0)` for
    :math:`\hat\mu \ge 0`, else 0. ``mu`` must be 0; another value warns and is
    replaced by 0 (as pyhf). Arguments as :func:`tmu`.
    """
    if float(np.asarray(mu)) != 0.0:
        warnings.warn(
            f"q0: the discovery test statistic tests mu=0, got mu={mu}; using mu=0",
            HepprobWarning,
            stacklevel=2,
        )
    return _run(
        "q0", 0.0, data, pdf, init_pars, par_bounds, fixed_params, return_fitted_pars
    )


# --- traceable pieces shared by the calculators ------------------------------------


def stat_from_fits(
    name: str, twice_nll_fixed: Array, twice_nll_free: Array, muhat: Array, mu: Array
) -> Array:
    r"""A test statistic from the fixed-POI and free fits (traceable).

    :math:`t = \max(-2\ln L(\mu,\hat{\hat\theta}) + 2\ln L(\hat\mu,\hat\theta), 0)`;
    the one-sided ``q*`` set it to 0 for :math:`\hat\mu > \mu`, ``q0`` for
    :math:`\hat\mu < 0` (arXiv:1007.1727, eqs. (12), (14), (16)).
    """
    t = jnp.maximum(twice_nll_fixed - twice_nll_free, 0.0)
    if name in ("qmu", "qmu_tilde", "q", "qtilde"):
        return jnp.where(muhat > mu, 0.0, t)
    if name == "q0":
        return jnp.where(muhat < 0.0, 0.0, t)
    return t


def fixed_rows(
    init: ArrayLike,
    lower: ArrayLike,
    upper: ArrayLike,
    fixed: ArrayLike,
    poi: int,
    mus: ArrayLike,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Batched fit settings with the POI fixed at each of ``mus`` (host arrays).

    The POI's bounds are widened to include its fixed value, so POI values beyond
    the fit range (as reached by limit searches) are fits of the nuisances only.
    """
    mus = np.atleast_1d(np.asarray(mus, dtype=np.float64))
    n = mus.shape[0]
    inits, lowers, uppers = (
        np.tile(np.asarray(a, dtype=np.float64), (n, 1)) for a in (init, lower, upper)
    )
    fixeds = np.tile(np.asarray(fixed, dtype=bool), (n, 1))
    inits[:, poi] = mus
    lowers[:, poi] = np.minimum(lowers[:, poi], mus)
    uppers[:, poi] = np.maximum(uppers[:, poi], mus)
    fixeds[:, poi] = True
    return inits, lowers, uppers, fixeds


def profile_rows(setup: mle.Setup, poi: int, mus: ArrayLike) -> mle.Setup:
    """Rows of a free fit (row 0) and of fixed-POI fits at ``mus`` (rows 1..)."""
    fixed = fixed_rows(*setup[1:], poi, mus)
    data = np.tile(setup.data, (1 + fixed[0].shape[0], 1))
    return mle.Setup(
        data,
        *(np.concatenate([a[None], b]) for a, b in zip(setup[1:], fixed, strict=True)),
    )


def check_poi_bound(
    name: str, eng: mle.Engine, lower: ArrayLike, stacklevel: int = 3
) -> None:
    """pyhf's advice on the POI bound as a :class:`HepprobWarning`."""
    low = float(np.asarray(lower)[eng.poi_index()])
    advice = {
        "qmu": (
            low == 0.0,
            "qmu with the POI bounded at zero: use qmu_tilde (test_stat='qtilde')",
        ),
        "q": (
            low == 0.0,
            "qmu with the POI bounded at zero: use qmu_tilde (test_stat='qtilde')",
        ),
        "tmu": (low == 0.0, "tmu with the POI bounded at zero: use tmu_tilde"),
        "qmu_tilde": (
            low != 0.0,
            f"qmu_tilde needs the POI's lower bound at 0, got {low}: use qmu (test_stat='q')",
        ),
        "qtilde": (
            low != 0.0,
            f"qmu_tilde needs the POI's lower bound at 0, got {low}: use qmu (test_stat='q')",
        ),
        "tmu_tilde": (
            low != 0.0,
            f"tmu_tilde needs the POI's lower bound at 0, got {low}: use tmu",
        ),
    }
    bad, msg = advice.get(name, (False, ""))
    if bad:
        warnings.warn(msg, HepprobWarning, stacklevel=stacklevel)


def check_poi_free(eng: mle.Engine, fixed: ArrayLike) -> None:
    """A fixed POI makes a profile-likelihood test impossible: raise."""
    poi = eng.poi_index()
    if bool(np.asarray(fixed)[poi]):
        msg = (
            f"fixed_params: the POI (index {poi}) is fixed, which makes a "
            "profile-likelihood test impossible; leave it free"
        )
        raise ParameterError(msg)


def _run(
    name: str,
    mu: float,
    data: ArrayLike,
    pdf: Any,
    init_pars: Sequence[float] | None,
    par_bounds: Sequence[Sequence[float]] | None,
    fixed_params: Sequence[bool] | None,
    return_fitted_pars: bool,
) -> Any:
    eng = mle.engine(pdf)
    setup = eng.setup(data, init_pars, par_bounds, fixed_params)
    check_poi_free(eng, setup.fixed)
    mu_val = mle._as_scalar(mu, "mu")
    check_poi_bound(name, eng, setup.lower, stacklevel=4)
    fits = eng.run_rows(profile_rows(setup, eng.poi_index(), mu_val))
    mle.warn_unconverged(fits, name)
    xs, fs = fits.x, fits.twice_nll
    stat = _host_stat(name)(fs[1], fs[0], xs[0, eng.poi_index()], mu_val)
    fixed_fit, free_fit = jnp.asarray(xs[1]), jnp.asarray(xs[0])
    if return_fitted_pars:
        return stat, (fixed_fit, free_fit)
    return stat


@on_clear
@functools.cache
def _host_stat(name: str) -> Callable[..., Array]:
    """:func:`stat_from_fits` jitted per statistic: one compile, not one per operation."""
    return jax.jit(functools.partial(stat_from_fits, name))
