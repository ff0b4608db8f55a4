r"""Two-sided confidence intervals by test inversion: profile likelihood and Feldman–Cousins.

``method="profile"``
    the interval where :math:`t_\mu = 2(\mathrm{NLL}(\mu, \hat{\hat\theta}) -
    \mathrm{NLL}(\hat\mu, \hat\theta))` stays below the :math:`\chi^2_1`
    quantile (Wilks; the Minos crossings of :meth:`FitResult.minos`).
``method="fc"``
    the unified construction of G. Feldman and R. Cousins, Phys. Rev. D 57
    (1998) 3873: at each POI value :math:`\mu_j` of a grid, the acceptance
    region is :math:`t_{\mu_j} \le c_j` with :math:`c_j` the ``cl`` quantile
    of :math:`t_{\mu_j}` in pseudo-experiments generated at :math:`\mu_j`
    (likelihood-ratio ordering; :math:`\hat\mu` respects the POI's bounds, the
    physical boundary). The interval is the set of :math:`\mu_j` whose region
    holds the observed :math:`t_{\mu_j}`. Nuisance parameters are set to their
    profiled values :math:`\hat{\hat\theta}(\mu_j)` on the observed data for
    generation (the "profile construction", K. Cranmer, PHYSTAT 2003, and the
    LHC Higgs combination, ATL-PHYS-PUB-2011-011, sec. 2.3), and their
    auxiliary measurements are redrawn with the toys.

All toys of all grid points — generation, the free fit and the fit at
:math:`\mu_j` — run as one vmapped, jitted program, in batches of one size.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from numpyro import handlers
from scipy import stats

from hepprob._program_cache import cached, split_arguments
from hepprob._typing import Array, ArrayLike
from hepprob.errors import HepprobWarning, ParameterError
from hepprob.infer import _batch
from hepprob.infer.minimize import SUCCESS
from hepprob.model import (
    ModelStructure,
    data_sites,
    log_likelihood,
    pseudo_data,
    trace_model,
)

__all__ = ["FCScan", "feldman_cousins", "interval"]

METHODS = ("profile", "fc")

# rows (grid points x toys) per compiled call of the toy program
_ROWS_PER_CALL = 4096
# an observed t within this of the critical value counts as accepted (both
# come from fits converged to ~1e-10; in a discrete model they coincide)
_T_TOL = 1e-6


def __dir__() -> list[str]:
    return __all__


@dataclasses.dataclass(frozen=True)
class FCScan:
    r"""A Feldman–Cousins construction on a grid of POI values.

    Attributes:
        poi: the parameter of interest.
        cl: confidence level.
        values: the grid :math:`\mu_j`.
        t_obs: observed :math:`t_{\mu_j}`.
        critical: the ``cl`` quantiles :math:`c_j` of :math:`t_{\mu_j}` in the toys.
        accepted: ``t_obs <= critical`` per grid point.
        n_toys: toys per grid point whose two fits converged (the others are
            left out of the quantile).
        interval: ``(lower, upper)``: the accepted range, its ends interpolated
            linearly in ``t_obs - critical`` between grid points.
    """

    poi: str
    cl: float
    values: np.ndarray
    t_obs: np.ndarray
    critical: np.ndarray
    accepted: np.ndarray
    n_toys: np.ndarray
    interval: tuple[float, float]


def interval(
    model: Callable[..., Any],
    *model_args: Any,
    poi: str = "mu",
    cl: float = 0.68,
    method: str = "profile",
    scan: ArrayLike | None = None,
    n_toys: int = 1000,
    seed: int = 0,
    init: Mapping[str, ArrayLike] | None = None,
    fixed: Mapping[str, ArrayLike] | Sequence[str] | None = None,
    **model_kwargs: Any,
) -> tuple[float, float]:
    """A two-sided confidence interval ``(lower, upper)`` for ``poi``.

    Args:
        model: any model with ``hepprob.param`` sites (unbinned, HistFactory,
            mixed).
        *model_args: its arguments (the observed data).
        poi: a scalar parameter (or flat entry ``name[i]``).
        cl: confidence level in (0, 1).
        method: ``"profile"`` (Wilks, from the profile likelihood) or ``"fc"``
            (Feldman–Cousins by toys; see :func:`feldman_cousins`).
        scan: the POI grid of ``"fc"`` (default: 41 points spanning a wider
            profile interval, within the bounds).
        n_toys: toys per grid point (``"fc"``).
        seed: seed of the toys (``"fc"``).
        init, fixed: fit start values and fixed parameters, as :func:`hepprob.fit`.
        **model_kwargs: the model's keyword arguments.

    Returns:
        ``(lower, upper)``; an end at a bound of the POI is that bound.

    Raises:
        ParameterError: unknown ``method``/``poi``, ``cl`` outside (0, 1).

    Example:
        >>> lo, hi = hepprob.infer.interval(model, n_obs, poi="s", cl=0.9,
        ...                                 method="fc")  # doctest: +SKIP
    """
    if method not in METHODS:
        msg = f"interval: method must be one of {METHODS}, got {method!r}"
        raise ParameterError(msg)
    _check_cl(cl)
    if method == "fc":
        construction = feldman_cousins(
            model, *model_args, poi=poi, cl=cl, scan=scan, n_toys=n_toys,
            seed=seed, init=init, fixed=fixed, **model_kwargs,
        )  # fmt: skip
        return construction.interval
    from hepprob.infer.fit import fit

    result = fit(model, *model_args, init=init, fixed=fixed, **model_kwargs)
    with warnings.catch_warnings():  # an end at a bound is the answer here
        warnings.filterwarnings("ignore", "minos: the .* crossing", HepprobWarning)
        lo, hi = result.minos([poi], cl=cl)[poi]
    return float(lo), float(hi)


def feldman_cousins(
    model: Callable[..., Any],
    *model_args: Any,
    poi: str = "mu",
    cl: float = 0.68,
    scan: ArrayLike | None = None,
    n_toys: int = 1000,
    seed: int = 0,
    init: Mapping[str, ArrayLike] | None = None,
    fixed: Mapping[str, ArrayLike] | Sequence[str] | None = None,
    **model_kwargs: Any,
) -> FCScan:
    """The Feldman–Cousins construction of ``poi`` on a grid (see the module).

    Arguments as :func:`interval`. The grid should reach beyond the interval
    (or to the POI's bounds); a warning says when it does not.

    Returns:
        An :class:`FCScan` with the observed statistic, the critical values and
        the interval.
    """
    from hepprob.infer.fit import fit

    _check_cl(cl)
    if int(n_toys) != n_toys or n_toys < 10:
        msg = f"feldman_cousins: n_toys must be an integer >= 10, got {n_toys!r}"
        raise ParameterError(msg)
    result = fit(model, *model_args, init=init, fixed=fixed, **model_kwargs)
    structure = ModelStructure.from_model(model, *model_args, **model_kwargs)
    k = structure.index(poi)
    fixed_mask = np.array([result.fixed[n] for n in result.par_names])
    if fixed_mask[k]:
        msg = f"feldman_cousins: the POI {poi!r} is fixed; nothing to construct"
        raise ParameterError(msg)
    lower, upper = structure.lower, structure.upper
    grid = _grid(result, poi, k, cl, lower[k], upper[k], scan)

    arrays, rebuild, signature = split_arguments(model_args, model_kwargs)
    tr = trace_model(model, None, model_args, model_kwargs)
    observed = {n: tr[n]["value"] for n in data_sites(tr, structure)}
    programs = cached(
        ("feldman_cousins", model, k, signature),
        lambda: _programs(model, structure, rebuild, k),
    )
    objective, toy_rows = programs

    # the observed statistic and the profiled nuisances at each grid point
    starts = np.tile(result.x, (grid.size, 1))
    starts[:, k] = grid
    held_mask = fixed_mask.copy()
    held_mask[k] = True
    fits = _batch.fit_batch(
        objective, (observed, arrays), starts, lower, upper, held_mask
    )
    held, f_held, ok_held = fits.x, fits.fun, fits.converged
    if not ok_held.all():
        msg = (
            f"feldman_cousins: profile fits at {poi}={grid[~ok_held]} did not converge"
        )
        warnings.warn(msg, HepprobWarning, stacklevel=2)
    nll_min = min(result.nll, float(f_held.min()))
    t_obs = np.clip(2.0 * (f_held - nll_min), 0.0, None)

    # toys: n_toys rows per grid point, generated at (mu_j, profiled nuisances)
    n_toys = int(n_toys)
    truths = np.repeat(held, n_toys, axis=0)
    keys = jax.random.split(jax.random.PRNGKey(seed), grid.size * n_toys)
    t, ok = _run_rows(toy_rows, keys, truths, lower, upper, fixed_mask, arrays)
    t, ok = t.reshape(grid.size, n_toys), ok.reshape(grid.size, n_toys)
    critical, n_ok = _quantiles(t, ok, cl)
    accepted = t_obs <= critical + _T_TOL
    ends = _ends(grid, t_obs - critical - _T_TOL, accepted, lower[k], upper[k], poi)
    return FCScan(poi, float(cl), grid, t_obs, critical, accepted, n_ok, ends)


# --- compiled pieces ------------------------------------------------------------------


def _programs(
    model: Callable[..., Any],
    structure: ModelStructure,
    rebuild: Callable[..., Any],
    k: int,
) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """The model's NLL ``objective(x, (data, arrays))`` for the fit driver, and
    the jitted rows of toys: generate at a truth, fit free and at its POI."""

    def objective(vec: Array, data_and_arrays: Any) -> Array:
        data, arrays = data_and_arrays
        args, kwargs = rebuild(arrays)
        conditioned = handlers.condition(model, data=data)
        return -log_likelihood(conditioned, structure, args, kwargs)(vec)

    def toy(key, truth, lower, upper, fixed, arrays):  # type: ignore[no-untyped-def]
        args, kwargs = rebuild(arrays)
        data = pseudo_data(model, structure, key, truth, args, kwargs)
        free = _batch.solve(objective, (data, arrays), truth, lower, upper, fixed)
        held = _batch.solve(
            objective, (data, arrays), truth, lower, upper, fixed.at[k].set(True)
        )
        f_free, f_held = free[1], held[1]
        t = 2.0 * (f_held - jnp.minimum(f_free, f_held))
        return t, (free[3] == SUCCESS) & (held[3] == SUCCESS)

    toy_rows = jax.jit(jax.vmap(toy, in_axes=(0, 0, None, None, None, None)))
    return objective, toy_rows


def _run_rows(
    program: Callable[..., Any],
    keys: Array,
    truths: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    fixed: np.ndarray,
    arrays: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """All toy rows in calls of one size (the last one padded by repetition)."""
    n = truths.shape[0]
    size = min(_ROWS_PER_CALL, 1 << (n - 1).bit_length())
    t_parts, ok_parts = [], []
    for start in range(0, n, size):
        idx = np.minimum(np.arange(start, start + size), n - 1)
        t, ok = program(keys[idx], truths[idx], lower, upper, fixed, arrays)
        stop = min(size, n - start)
        t_parts.append(np.asarray(t)[:stop])
        ok_parts.append(np.asarray(ok)[:stop])
    return np.concatenate(t_parts), np.concatenate(ok_parts)


# --- host-side steps ------------------------------------------------------------------


def _quantiles(
    t: np.ndarray, ok: np.ndarray, cl: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per grid point, the smallest c with (fraction of toys t <= c) >= cl."""
    crit = np.empty(t.shape[0])
    n_ok = ok.sum(axis=1)
    for j in range(t.shape[0]):
        good = np.sort(t[j][ok[j]])
        if good.size == 0:
            crit[j] = np.nan
            continue
        crit[j] = good[max(math.ceil(cl * good.size) - 1, 0)]
    if np.any(n_ok < 0.95 * t.shape[1]):
        msg = (
            f"feldman_cousins: at some grid points fewer than 95 % of the toy fits "
            f"converged (min {int(n_ok.min())} of {t.shape[1]}); their quantiles use "
            "the converged toys only"
        )
        warnings.warn(msg, HepprobWarning, stacklevel=3)
    return crit, n_ok


def _ends(
    grid: np.ndarray,
    margin: np.ndarray,
    accepted: np.ndarray,
    low: float,
    high: float,
    poi: str,
) -> tuple[float, float]:
    """Ends of the accepted set; interpolated where ``margin`` changes sign."""
    idx = np.flatnonzero(accepted)
    if idx.size == 0:
        msg = (
            f"feldman_cousins: no grid value of {poi!r} is accepted; the scan "
            f"{grid.min()}..{grid.max()} misses the interval"
        )
        warnings.warn(msg, HepprobWarning, stacklevel=3)
        return (math.nan, math.nan)
    first, last = idx[0], idx[-1]
    if idx.size != last - first + 1:
        msg = (
            f"feldman_cousins: the accepted values of {poi!r} are not one interval; "
            "reporting its hull"
        )
        warnings.warn(msg, HepprobWarning, stacklevel=3)

    def cross(a: int, b: int) -> float:
        # margin <= 0 at the accepted end a, > 0 at the rejected end b
        ma, mb = margin[a], margin[b]
        frac = ma / (ma - mb) if mb != ma else 0.0
        return float(grid[a] + np.clip(frac, 0.0, 1.0) * (grid[b] - grid[a]))

    lo = cross(first, first - 1) if first > 0 else float(grid[0])
    hi = cross(last, last + 1) if last < grid.size - 1 else float(grid[-1])
    for end, edge, bound, side in (
        (first, 0, low, "lower"),
        (last, grid.size - 1, high, "upper"),
    ):
        if end == edge and grid[edge] != bound:
            msg = (
                f"feldman_cousins: the {side} end of the interval of {poi!r} is at the "
                f"edge of the scan ({grid[edge]}); widen the scan"
            )
            warnings.warn(msg, HepprobWarning, stacklevel=3)
    return lo, hi


def _grid(
    result: Any,
    poi: str,
    k: int,
    cl: float,
    low: float,
    high: float,
    scan: ArrayLike | None,
) -> np.ndarray:
    """The given scan (checked), or 41 points over a profile interval of wider cl."""
    if scan is None:
        z = stats.norm.isf((1.0 - cl) / 2.0) + 1.5
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "minos: the .* crossing", HepprobWarning)
            lo, hi = result.minos([poi], cl=float(stats.chi2.cdf(z * z, 1)))[poi]
        pad = 0.1 * (hi - lo)
        return np.linspace(max(lo - pad, low), min(hi + pad, high), 41)
    grid = np.asarray(scan, dtype=np.float64)
    if grid.ndim != 1 or grid.size < 2 or not np.all(np.diff(grid) > 0):
        msg = f"feldman_cousins: scan must be an increasing 1-D grid of POI values, got {scan!r}"
        raise ParameterError(msg)
    if grid[0] < low or grid[-1] > high:
        msg = f"feldman_cousins: scan must lie within the bounds of {poi!r} [{low}, {high}]"
        raise ParameterError(msg)
    return grid


def _check_cl(cl: float) -> None:
    if not (isinstance(cl, (int, float)) and 0.0 < cl < 1.0):
        msg = f"cl must be a number in (0, 1), got {cl!r}"
        raise ParameterError(msg)
