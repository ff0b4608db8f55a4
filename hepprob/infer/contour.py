r"""2-D profile-likelihood contours and profile scans over several parameters.

:func:`contour` finds the curve where the profiled NLL of two parameters
:math:`(x, y)` rises by :math:`\tfrac12 F^{-1}_{\chi^2_2}(\mathrm{cl})` above
its minimum (2.28/2 for 68 %, 5.99/2 for 95 %: the region that covers
:math:`(x, y)` jointly, as MINUIT's MNCONTOUR; F. James, *MINUIT Reference
Manual*, CERN D506, sec. 7.4). It searches along rays from the best fit, in
the coordinates that make the Hesse ellipse a circle, where
:math:`\sqrt{2\Delta\mathrm{NLL}}` is linear in the radius for a Gaussian
likelihood: secant steps safeguarded by bisection, every ray and every ``cl``
at once — each round is one vectorised batch of profile fits. (A region that
is not star-shaped around the best fit is reported where each ray first
crosses the level.)

:func:`profile_scan` profiles the NLL with several parameters held at given
values per row, or on their full grid.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

from hepprob._typing import ArrayLike
from hepprob.errors import HepprobWarning, ParameterError
from hepprob.infer import _batch

__all__ = ["contour", "profile_scan"]

_MAX_ROUNDS = 40


def __dir__() -> list[str]:
    return __all__


def contour(
    result: Any,
    x: str,
    y: str,
    cl: float | Sequence[float] = 0.68,
    points: int = 40,
) -> np.ndarray | dict[float, np.ndarray]:
    """Points of the 2-D profile-likelihood contour of ``x`` and ``y``.

    Args:
        result: a :class:`~hepprob.infer.FitResult` (the contour is of its NLL).
        x, y: two free scalar parameters (or flat entries ``name[i]``).
        cl: confidence level of the joint region (2 degrees of freedom), or a
            list of them.
        points: points per contour, at equal angles around the best fit.

    Returns:
        ``(points, 2)`` array of ``(x, y)``; for a list of ``cl`` a dict
        ``{cl: array}``. A ray that meets a parameter bound before the level
        ends at the bound (with a ``HepprobWarning``).

    Raises:
        ParameterError: unknown, fixed or equal parameters; ``cl`` outside
            (0, 1); ``points < 4``.
    """
    levels = [cl] if isinstance(cl, (int, float)) else list(cl)
    for c in levels:
        if not (isinstance(c, (int, float)) and 0.0 < c < 1.0):
            msg = f"contour: cl must be in (0, 1), got {c!r}"
            raise ParameterError(msg)
    if int(points) != points or points < 4:
        msg = f"contour: points must be an integer >= 4, got {points!r}"
        raise ParameterError(msg)
    problem = result._problem
    ix, iy = _free_index(result, x), _free_index(result, y)
    if ix == iy:
        msg = f"contour: x and y must be two different parameters, got {x!r} twice"
        raise ParameterError(msg)
    pair = np.array([ix, iy])
    center = result.x[pair]
    chol = _whitening(result.covariance[np.ix_(pair, pair)], result.x[pair])
    angles = 2 * np.pi * np.arange(int(points)) / int(points)
    unit = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    directions = np.tile(unit @ chol.T, (len(levels), 1))  # (rays, 2)
    target = np.repeat([math.sqrt(stats.chi2.ppf(c, 2)) for c in levels], int(points))
    room = _room(center, directions, problem.lower[pair], problem.upper[pair])
    fixed = problem.fixed.copy()
    fixed[pair] = True
    radius, hit = _search(result, pair, center, directions, target, room, fixed)
    if hit.any():
        msg = (
            f"contour: {int(hit.sum())} ray(s) of the {x!r}-{y!r} contour meet a "
            "parameter bound before the level; those points are at the bound"
        )
        warnings.warn(msg, HepprobWarning, stacklevel=2)
    pts = center + radius[:, None] * directions
    curves = pts.reshape(len(levels), int(points), 2)
    if isinstance(cl, (int, float)):
        return curves[0]
    return {float(c): curves[i] for i, c in enumerate(levels)}


def profile_scan(
    result: Any, values: Mapping[str, ArrayLike], grid: bool = False
) -> np.ndarray:
    """Profiled NLL with several parameters fixed per row, the rest refitted.

    Args:
        result: a :class:`~hepprob.infer.FitResult`.
        values: ``{name: 1-D values}``. Without ``grid`` all have one length
            and row ``i`` fixes every name at its ``i``-th value; with ``grid``
            every combination is fitted (a 2-D scan for two names).
        grid: scan the outer product of the values.

    Returns:
        The profiled NLL: shape ``(k,)``, or the grid's shape
        ``(len(v1), len(v2), ...)``. Subtract ``result.nll`` for ΔNLL. All
        rows run as one vectorised batch, each started from the best fit.

    Raises:
        ParameterError: unknown or fixed names, values outside the bounds or
            of unequal lengths.
    """
    problem = result._problem
    if not values:
        msg = "profile_scan: give at least one parameter and its values"
        raise ParameterError(msg)
    index = np.array([_free_index(result, name) for name in values])
    cols = [np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in values.values()]
    if any(c.ndim != 1 or c.size == 0 or not np.all(np.isfinite(c)) for c in cols):
        msg = "profile_scan: values must be non-empty 1-D arrays of finite numbers"
        raise ParameterError(msg)
    if grid:
        shape = tuple(c.size for c in cols)
        rows = np.stack([g.ravel() for g in np.meshgrid(*cols, indexing="ij")], 1)
    else:
        if len({c.size for c in cols}) != 1:
            sizes = {n: c.size for n, c in zip(values, cols, strict=True)}
            msg = f"profile_scan: without grid=True the values need one length, got {sizes}"
            raise ParameterError(msg)
        shape = (cols[0].size,)
        rows = np.stack(cols, axis=1)
    lo, hi = problem.lower[index], problem.upper[index]
    if np.any(rows < lo) or np.any(rows > hi):
        msg = f"profile_scan: values must lie within the bounds {dict(zip(values, zip(lo, hi, strict=True), strict=True))}"
        raise ParameterError(msg)
    fixed = problem.fixed.copy()
    fixed[index] = True
    starts = np.tile(result.x, (rows.shape[0], 1))
    starts[:, index] = rows
    fun, _, ok = _profile_rows(problem, starts, fixed)
    if not ok.all():
        msg = f"profile_scan: {int((~ok).sum())} of {ok.size} profile fits did not converge"
        warnings.warn(msg, HepprobWarning, stacklevel=2)
    return fun.reshape(shape)


# --- the search -------------------------------------------------------------------------


def _search(
    result: Any,
    pair: np.ndarray,
    center: np.ndarray,
    directions: np.ndarray,
    target: np.ndarray,
    room: np.ndarray,
    fixed: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Radius along each ray where sqrt(2 dNLL) = target (or the bound)."""
    problem = result._problem
    n = directions.shape[0]
    r = np.minimum(target, room)
    r_lo, q_lo = np.zeros(n), np.zeros(n)
    r_hi = np.full(n, np.inf)
    prev_r, prev_q = np.zeros(n), np.zeros(n)
    done, hit = np.zeros(n, bool), np.zeros(n, bool)
    answer = r.copy()
    starts = np.tile(result.x, (n, 1))
    for _ in range(_MAX_ROUNDS):
        starts[:, pair] = center + r[:, None] * directions
        fun, xs, ok = _profile_rows(problem, starts, fixed)
        q = np.sqrt(2.0 * np.clip(fun - result.nll, 0.0, None))
        starts = np.where(ok[:, None], xs, starts)
        above = q >= target
        r_hi = np.where(above, r, r_hi)
        r_lo, q_lo = np.where(above, r_lo, r), np.where(above, q_lo, q)
        newly_hit = ~done & ~above & (r >= room)
        close = np.abs(q - target) < 1e-8 * target
        narrow = np.isfinite(r_hi) & (r_hi - r_lo <= 1e-10 * (1.0 + r_hi))
        newly = ~done & (newly_hit | close | narrow)
        answer = np.where(newly, r, answer)
        hit |= newly_hit
        done |= newly
        if done.all():
            break
        slope = (q - prev_q) / np.where(r != prev_r, r - prev_r, np.nan)
        guess = r + (target - q) / slope
        bracketed = np.isfinite(r_hi)
        inside = np.isfinite(guess) & (guess > r_lo) & (guess < r_hi)
        guess = np.where(
            bracketed,
            np.where(inside, guess, 0.5 * (r_lo + r_hi)),
            np.where(np.isfinite(guess) & (guess > r), np.minimum(guess, 4 * r), 2 * r),
        )
        prev_r, prev_q = r, q
        r = np.where(done, r, np.minimum(guess, room))
    else:
        answer = np.where(done, answer, r)
    return answer, hit


def _profile_rows(
    problem: Any, starts: np.ndarray, fixed: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(nll, x, converged)`` of fits from each start row, ``fixed`` held:
    one batch of the fit driver (:func:`hepprob.infer._batch.fit_batch`)."""
    fits = _batch.fit_batch(
        problem.objective,
        problem.data,
        starts,
        problem.lower,
        problem.upper,
        fixed,
        tol=problem.tol,
        max_iter=problem.max_iter,
    )
    return fits.fun, fits.x, fits.converged


# --- small helpers --------------------------------------------------------------------


def _free_index(result: Any, name: str) -> int:
    if name not in result.par_names:
        msg = f"unknown parameter {name!r}; the fit has {list(result.par_names)}"
        raise ParameterError(msg)
    i = list(result.par_names).index(name)
    if result._problem.fixed[i]:
        msg = f"parameter {name!r} is fixed in this fit"
        raise ParameterError(msg)
    return i


def _whitening(cov: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Cholesky factor of the 2x2 Hesse block (a small diagonal if it is unusable)."""
    try:
        chol = np.linalg.cholesky(cov)
        if np.all(np.isfinite(chol)):
            return chol
    except np.linalg.LinAlgError:
        pass
    return np.diag(1e-3 * (1.0 + np.abs(x)))


def _room(
    center: np.ndarray, directions: np.ndarray, lower: np.ndarray, upper: np.ndarray
) -> np.ndarray:
    """Largest radius along each ray that stays within the two parameters' bounds."""
    with np.errstate(divide="ignore", invalid="ignore"):
        to_upper = np.where(directions > 0, (upper - center) / directions, np.inf)
        to_lower = np.where(directions < 0, (lower - center) / directions, np.inf)
    return np.min(np.minimum(to_upper, to_lower), axis=1)
