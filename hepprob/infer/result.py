"""FitResult: best-fit values, Hesse errors, Minos intervals and profile scans."""

from __future__ import annotations

import dataclasses
import html
import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from scipy import stats

from hepprob._typing import Array, ArrayLike
from hepprob.errors import ConvergenceWarning, HepprobWarning, ParameterError
from hepprob.infer import _batch
from hepprob.infer.minimize import FitStatus
from hepprob.model import entry_names

__all__ = ["FitResult"]


def __dir__() -> list[str]:
    return __all__


@dataclasses.dataclass(frozen=True)
class _Group:
    """One named parameter: its shape and its slice of the flat vector."""

    name: str
    shape: tuple[int, ...]
    start: int

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def flat_names(self) -> list[str]:
        return entry_names(self.name, self.shape)


class _Problem:
    """What a :class:`FitResult` needs to refit: the objective, data and bounds.

    ``objective(x, data)`` is pure; ``data`` is a pytree of arrays passed as an
    argument (never closed over), so the compiled fits of
    :func:`hepprob.infer._batch.fit_batch` are shared by every fit, profile
    and Minos search of one model structure, whatever the dataset.
    """

    def __init__(
        self,
        objective: Callable[[Array, Any], Array],
        data: Any,
        lower: np.ndarray,
        upper: np.ndarray,
        fixed: np.ndarray,
        *,
        tol: float,
        max_iter: int,
    ) -> None:
        self.objective = objective
        self.data = data
        self.lower = lower
        self.upper = upper
        self.fixed = fixed
        self.tol = tol
        self.max_iter = max_iter

    def profile_fits(self) -> Callable[..., _batch.BatchFit]:
        """``(index[k], value[k], start[k, n]) -> BatchFit`` of profile fits.

        Row ``i`` fixes parameter ``index[i]`` at ``value[i]`` and minimises
        over the rest from ``start[i]``; all rows run in the batched driver.
        """

        def call(index: Any, value: Any, start: Any) -> _batch.BatchFit:
            index = np.asarray(index)
            x0 = np.array(start, dtype=np.float64)
            rows = np.arange(index.shape[0])
            x0[rows, index] = np.asarray(value, dtype=np.float64)
            fixed = np.tile(self.fixed, (index.shape[0], 1))
            fixed[rows, index] = True
            return _batch.fit_batch(
                self.objective,
                self.data,
                x0,
                self.lower,
                self.upper,
                fixed,
                tol=self.tol,
                max_iter=self.max_iter,
            )

        return call


class FitResult:
    """The outcome of :func:`hepprob.fit`.

    Attributes:
        par_names: names of the flat parameter vector (``name[i]`` for entries of
            vector parameters).
        values: ``{name: best-fit value}`` (arrays for vector parameters).
        errors: ``{name: Hesse error}``; fixed parameters have error 0.
        covariance: ``(n, n)`` covariance in ``par_names`` order, the inverse of
            the exact Hessian of the NLL on the free parameters (zero rows and
            columns for fixed ones).
        correlation: the matching correlation matrix.
        nll: negative log-likelihood at the minimum.
        converged: a true minimum: the gradient test passed and the Hessian of
            the free parameters (not held by a bound) is positive definite.
        status: a :class:`~hepprob.infer.minimize.FitStatus` (a ``str``):
            ``"converged"``, or why not — ``"saddle"``, ``"degenerate"`` (a
            flat direction), ``"iteration_limit"``, ``"stalled"``,
            ``"not_finite"``.
        edm: estimated distance to minimum, ``gᵀ H⁻¹ g / 2`` (MINUIT's EDM).
        n_iter: Newton iterations (function calls for ``method="minuit"``).
        message: a sentence on the outcome.
        method: ``"jax"`` or ``"minuit"``.
        fixed: ``{flat name: bool}`` of fixed parameters.
        x: best-fit flat vector (NumPy).

    Example:
        >>> import numpy as np, numpyro, numpyro.distributions as nd, hepprob
        >>> def model(x):
        ...     mu = hepprob.param("mu", 0.0)
        ...     numpyro.sample("x", nd.Normal(mu, 1.0), obs=x)
        >>> res = hepprob.fit(model, np.array([1.0, 2.0, 3.0]))
        >>> round(res.values["mu"], 6), round(res.errors["mu"], 6)
        (2.0, 0.57735)
    """

    def __init__(
        self,
        *,
        groups: Sequence[_Group],
        x: ArrayLike,
        covariance: ArrayLike,
        nll: float,
        converged: bool,
        edm: float,
        status: FitStatus | None = None,
        n_iter: int,
        message: str,
        method: str,
        problem: _Problem,
    ) -> None:
        self._groups = tuple(groups)
        self.par_names: list[str] = [n for g in self._groups for n in g.flat_names]
        self.x = np.asarray(x, dtype=np.float64)
        self.covariance = np.asarray(covariance, dtype=np.float64)
        self.nll = float(nll)
        self.converged = bool(converged)
        if status is None:
            status = FitStatus.CONVERGED if converged else FitStatus.STALLED
        self.status = FitStatus(status)
        self.edm = float(edm)
        self.n_iter = int(n_iter)
        self.message = message
        self.method = method
        self._problem = problem
        flat_err = np.sqrt(np.clip(np.diag(self.covariance), 0.0, None))
        self._flat_errors = flat_err
        with np.errstate(divide="ignore", invalid="ignore"):
            corr = self.covariance / np.outer(flat_err, flat_err)
        corr = np.where(np.outer(flat_err, flat_err) > 0, corr, 0.0)
        corr = np.where(np.isnan(self.covariance), np.nan, corr)
        np.fill_diagonal(corr, 1.0)
        self.correlation = corr
        self.values = self._by_name(self.x)
        self.errors = self._by_name(flat_err)
        self.fixed = dict(zip(self.par_names, map(bool, problem.fixed), strict=True))

    # -- access ---------------------------------------------------------------

    def _by_name(self, flat: np.ndarray) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for g in self._groups:
            piece = flat[g.start : g.start + g.size]
            out[g.name] = float(piece[0]) if not g.shape else piece.reshape(g.shape)
        return out

    def _flat_indices(self, names: str | Iterable[str] | None) -> list[int]:
        """Flat indices of ``names`` (scalar names, ``name[i]``, or whole vectors)."""
        if names is None:
            return [i for i, f in enumerate(self._problem.fixed) if not f]
        if isinstance(names, str):
            names = [names]
        out: list[int] = []
        for name in names:
            group = next((g for g in self._groups if g.name == name), None)
            if group is not None:
                out.extend(range(group.start, group.start + group.size))
            elif name in self.par_names:
                out.append(self.par_names.index(name))
            else:
                msg = f"unknown parameter {name!r}; the fit has {self.par_names}"
                raise ParameterError(msg)
        return out

    # -- Minos and profiles ---------------------------------------------------

    def profile(self, name: str, values: ArrayLike) -> np.ndarray:
        """Profiled NLL: ``name`` fixed at each of ``values``, the rest refitted.

        All values run as one vmapped program, each fit started from the best
        fit. Subtract :attr:`nll` for ΔNLL (``2 ΔNLL`` is the usual
        likelihood-ratio scan).

        Args:
            name: a scalar parameter or a flat entry ``name[i]``.
            values: 1-D array of values, within the parameter's bounds.

        Returns:
            NumPy array of the profiled NLL, one per value.

        Raises:
            ParameterError: unknown name, a vector name, or values outside bounds.
        """
        idx = self._flat_indices(name)
        if len(idx) != 1:
            msg = f"profile: {name!r} is a vector parameter; give one entry, e.g. {name}[0]"
            raise ParameterError(msg)
        i = idx[0]
        vals = np.atleast_1d(np.asarray(values, dtype=np.float64))
        if vals.ndim != 1 or vals.size == 0 or not np.all(np.isfinite(vals)):
            msg = f"profile: values must be a non-empty 1-D array of finite numbers, got {values!r}"
            raise ParameterError(msg)
        lo, hi = self._problem.lower[i], self._problem.upper[i]
        if np.any(vals < lo) or np.any(vals > hi):
            msg = f"profile: values for {name!r} must lie within its bounds [{lo}, {hi}], got {vals}"
            raise ParameterError(msg)
        fits = self._problem.profile_fits()(
            np.full(vals.shape, i),
            vals,
            np.broadcast_to(self.x, (vals.size, self.x.size)),
        )
        if not np.all(fits.converged):
            bad = ~fits.converged
            why = sorted({s.value for s in fits.take(bad).statuses()})
            msg = f"profile of {name!r}: the fits at {vals[bad]} did not converge ({', '.join(why)})"
            warnings.warn(msg, ConvergenceWarning, stacklevel=2)
        return np.asarray(fits.fun)

    def minos(
        self, names: str | Sequence[str] | None = None, cl: float = 0.68
    ) -> dict[str, tuple[float, float]]:
        r"""Asymmetric profile-likelihood intervals (MINOS).

        For each parameter the two values where the profiled NLL rises by
        :math:`\Delta = F^{-1}_{\chi^2_1}(\mathrm{cl})/2` above the minimum
        (0.4945 for 68 %, 0.5 for ``cl = 0.6827``). Roots are found by a
        safeguarded secant on :math:`\sqrt{2\Delta\mathrm{NLL}}`, which is linear
        in the parameter for a Gaussian likelihood, all parameters and both sides
        at once (one vmapped batch of profile fits per iteration). A crossing
        beyond a bound reports the bound and warns (``HepprobWarning``).
        Reference: F. James, *MINUIT Reference Manual*, CERN D506, sec. 7.3.

        Args:
            names: parameters (default: all free ones); vector names expand to
                their entries.
            cl: confidence level of the interval, in (0, 1).

        Returns:
            ``{flat name: (lower, upper)}`` interval end points (not offsets).

        Raises:
            ParameterError: unknown or fixed names, ``cl`` outside (0, 1).
        """
        if not (isinstance(cl, (int, float)) and 0.0 < cl < 1.0):
            msg = f"minos: cl must be a number in (0, 1), got {cl!r}"
            raise ParameterError(msg)
        idx = self._flat_indices(names)
        fixed = [self.par_names[i] for i in idx if self._problem.fixed[i]]
        if fixed:
            msg = f"minos: parameter(s) {fixed} are fixed in this fit; no interval"
            raise ParameterError(msg)
        if not idx:
            return {}
        target = math.sqrt(stats.chi2.ppf(cl, 1))
        lo, hi, hit_lo, hit_hi = _minos_search(self, np.asarray(idx), target)
        out = {}
        for k, i in enumerate(idx):
            name = self.par_names[i]
            out[name] = (float(lo[k]), float(hi[k]))
            for hit, side, bound in (
                (hit_lo[k], "lower", self._problem.lower[i]),
                (hit_hi[k], "upper", self._problem.upper[i]),
            ):
                if hit:
                    msg = (
                        f"minos: the {side} crossing of {name!r} lies beyond its "
                        f"bound {bound}; reporting the bound"
                    )
                    warnings.warn(msg, HepprobWarning, stacklevel=2)
        return out

    def contour(
        self,
        x: str,
        y: str,
        cl: float | Sequence[float] = 0.68,
        points: int = 40,
    ) -> np.ndarray | dict[float, np.ndarray]:
        """2-D profile-likelihood contour of ``x`` and ``y``: ``(points, 2)``
        ``(x, y)`` values, or ``{cl: points}`` for a list of ``cl`` (see
        :func:`hepprob.infer.contour.contour`)."""
        from hepprob.infer.contour import contour

        return contour(self, x, y, cl=cl, points=points)

    # -- output ---------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary (plain floats and lists)."""

        def plain(v: Any) -> Any:
            return float(v) if np.ndim(v) == 0 else np.asarray(v).tolist()

        return {
            "par_names": list(self.par_names),
            "values": {k: plain(v) for k, v in self.values.items()},
            "errors": {k: plain(v) for k, v in self.errors.items()},
            "covariance": self.covariance.tolist(),
            "correlation": self.correlation.tolist(),
            "fixed": [n for n, f in self.fixed.items() if f],
            "nll": self.nll,
            "converged": self.converged,
            "status": self.status.value,
            "edm": self.edm,
            "n_iter": self.n_iter,
            "message": self.message,
            "method": self.method,
        }

    def _rows(self) -> list[tuple[str, str, str, str]]:
        rows = []
        for i, name in enumerate(self.par_names):
            note = ""
            if self._problem.fixed[i]:
                note = "fixed"
            elif (
                self.x[i] <= self._problem.lower[i]
                or self.x[i] >= self._problem.upper[i]
            ):
                note = "at bound"
            rows.append((name, f"{self.x[i]:.6g}", f"{self._flat_errors[i]:.3g}", note))
        return rows

    def __repr__(self) -> str:
        head = (
            f"FitResult(converged={self.converged}, nll={self.nll:.10g}, "
            f"edm={self.edm:.3g}, n_iter={self.n_iter}, method={self.method!r})"
        )
        rows = [("parameter", "value", "error", ""), *self._rows()]
        widths = [max(len(r[c]) for r in rows) for c in range(4)]
        lines = [
            "  ".join(r[c].ljust(widths[c]) for c in range(4)).rstrip() for r in rows
        ]
        return "\n".join([head, *lines, self.message])

    def _repr_html_(self) -> str:
        esc = html.escape
        cells = "".join(
            f"<tr><td>{esc(n)}</td><td>{v}</td><td>{e}</td><td>{esc(note)}</td></tr>"
            for n, v, e, note in self._rows()
        )
        return (
            f"<p><b>FitResult</b> converged={self.converged}, nll={self.nll:.10g}, "
            f"edm={self.edm:.3g}, n_iter={self.n_iter} — {esc(self.message)}</p>"
            "<table><tr><th>parameter</th><th>value</th><th>error</th><th></th></tr>"
            f"{cells}</table>"
        )


def _minos_search(
    result: FitResult, idx: np.ndarray, target: float, max_rounds: int = 40
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Find both crossings of every parameter in ``idx`` at once.

    Works on ``r(t) = sqrt(2 (NLL_prof(x̂ + s t) - NLL_min))`` for ``t >= 0`` and
    side ``s = ±1``; the root of ``r(t) = target`` is bracketed and refined by
    secant steps with bisection as the safeguard.
    """
    prob = result._problem
    k = idx.size
    index = np.concatenate([idx, idx])
    side = np.concatenate([-np.ones(k), np.ones(k)])
    best = result.x[index]
    bound = np.where(side < 0, prob.lower[index], prob.upper[index])
    room = np.abs(bound - best)
    sigma = result._flat_errors[index]
    sigma = np.where(np.isfinite(sigma) & (sigma > 0), sigma, 1e-3 * (1 + np.abs(best)))
    starts = np.broadcast_to(result.x, (2 * k, result.x.size)).copy()
    fits = prob.profile_fits()

    t = np.minimum(target * sigma, room)
    t_lo, r_lo = np.zeros(2 * k), np.zeros(2 * k)
    t_hi, r_hi = np.full(2 * k, np.inf), np.full(2 * k, np.inf)
    prev_t, prev_r = np.zeros(2 * k), np.zeros(2 * k)
    done = np.zeros(2 * k, bool)
    at_bound = np.zeros(2 * k, bool)
    answer = best + side * t
    for _ in range(max_rounds):
        out = fits(index, best + side * t, starts)
        fun, xs = out.fun, out.x
        r = np.sqrt(2.0 * np.clip(fun - result.nll, 0.0, None))
        starts = np.where(done[:, None], starts, xs)
        above = r >= target
        t_hi, r_hi = np.where(above, t, t_hi), np.where(above, r, r_hi)
        t_lo, r_lo = np.where(above, t_lo, t), np.where(above, r_lo, r)
        hit = ~done & ~above & (t >= room)
        at_bound |= hit
        close = np.abs(r - target) < 1e-7 * target
        narrow = np.isfinite(t_hi) & (t_hi - t_lo <= 1e-12 * (1 + np.abs(best)))
        newly = ~done & (hit | close | narrow)
        answer = np.where(newly, best + side * np.where(hit, room, t), answer)
        done |= newly
        if done.all():
            break
        # secant through the last two points (the origin at first)
        slope = (r - prev_r) / np.where(t != prev_t, t - prev_t, np.nan)
        guess = t + (target - r) / slope
        bracketed = np.isfinite(t_hi)
        inside = np.isfinite(guess) & (guess > t_lo) & (guess < t_hi)
        guess = np.where(
            bracketed,
            np.where(inside, guess, 0.5 * (t_lo + t_hi)),
            np.where(np.isfinite(guess) & (guess > t), np.minimum(guess, 4 * t), 2 * t),
        )
        prev_t, prev_r = t, r
        t = np.where(done, t, np.minimum(guess, room))
    else:
        answer = np.where(done, answer, best + side * t)
    return answer[:k], answer[k:], at_bound[:k], at_bound[k:]
