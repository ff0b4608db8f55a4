"""pyhf-compatible maximum-likelihood fits of HistFactory models (pyhf 0.7 signatures)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from hepprob._program_cache import cached
from hepprob._typing import Array, ArrayLike
from hepprob.errors import ConvergenceWarning, DataError, ParameterError
from hepprob.infer import _batch
from hepprob.infer.minimize import FitStatus

__all__ = ["fit", "fixed_poi_fit", "twice_nll"]

# Convergence settings of every fit made through hepprob.infer's pyhf-style API:
# those of the one driver (EDM in NLL units).
FIT_TOL = _batch.TOL
FIT_MAX_ITER = _batch.MAX_ITER


def twice_nll(pars: ArrayLike, data: ArrayLike, model: Any) -> Array:
    r"""Twice the negative log-likelihood, :math:`-2\ln L(\text{pars}\,|\,\text{data})`.

    The objective of every fit here, as in pyhf (``pyhf.infer.mle.twice_nll``).
    Returns shape ``(1,)`` like ``model.logpdf``.
    """
    return -2.0 * model.logpdf(pars, data)


def fit(
    data: ArrayLike,
    model: Any,
    init_pars: Sequence[float] | None = None,
    par_bounds: Sequence[Sequence[float]] | None = None,
    fixed_params: Sequence[bool] | None = None,
    return_uncertainties: bool = False,
    return_fitted_val: bool = False,
) -> Array | tuple[Array, Array]:
    r"""Maximum-likelihood fit of a HistFactory model (``pyhf.infer.mle.fit``).

    Minimises :math:`-2\ln L` with hepprob's pure-JAX bounded minimiser (exact
    gradients and Hessians, saddle escapes); the compiled program is cached
    per model.

    Args:
        data: main + auxiliary data, length ``len(model.expected_data(pars))``.
        model: a HistFactory ``Model`` (``hepprob.histfactory`` or any object with
            pyhf's ``config``/``logpdf``/``expected_data`` interface in JAX).
        init_pars: start values (default ``model.config.suggested_init()``).
        par_bounds: ``(npars, 2)`` bounds (default ``suggested_bounds()``).
        fixed_params: ``npars`` flags holding a parameter at its start value
            (default ``suggested_fixed()``).
        return_uncertainties: return ``(npars, 2)`` rows ``[value, error]``, the
            errors from the inverse exact Hessian of the NLL (0 for fixed ones;
            NaN, with a :class:`ConvergenceWarning` naming them, for
            parameters in a direction the data do not constrain).
        return_fitted_val: also return :math:`-2\ln L` at the minimum.

    Returns:
        The best-fit parameters, and ``twice_nll`` if ``return_fitted_val``.

    Raises:
        DataError: data of the wrong length, non-finite or negative counts.
        ParameterError: wrong lengths of the options, or a start value outside its
            bounds.

    Warns:
        ConvergenceWarning: the fit did not reach a true minimum (the status
            and the parameters of a flat or negative direction are named).
    """
    eng = engine(model)
    setup = eng.setup(data, init_pars, par_bounds, fixed_params)
    one = eng.fit_one(setup)
    warn_unconverged(one, "mle.fit", _par_names(model), setup.fixed)
    return _returns(eng, setup, one, return_uncertainties, return_fitted_val)


def fixed_poi_fit(
    poi_val: float,
    data: ArrayLike,
    model: Any,
    init_pars: Sequence[float] | None = None,
    par_bounds: Sequence[Sequence[float]] | None = None,
    fixed_params: Sequence[bool] | None = None,
    return_uncertainties: bool = False,
    return_fitted_val: bool = False,
) -> Array | tuple[Array, Array]:
    r"""Fit with the POI held at ``poi_val`` (``pyhf.infer.mle.fixed_poi_fit``).

    The profiled nuisance parameters :math:`\hat{\hat\theta}(\mu)` of the
    profile likelihood ratio (arXiv:1007.1727, eq. (7)). Arguments and returns as
    :func:`fit`; ``poi_val`` must lie within the POI bounds.

    Raises:
        ParameterError: the model has no POI, or ``poi_val`` is outside its bounds.
    """
    eng = engine(model)
    poi = eng.poi_index()
    setup = eng.setup(data, init_pars, par_bounds, fixed_params, poi_value=poi_val)
    fixed = setup.fixed.copy()
    fixed[poi] = True
    setup = setup._replace(fixed=fixed)
    one = eng.fit_one(setup)
    warn_unconverged(one, "mle.fixed_poi_fit", _par_names(model), setup.fixed)
    return _returns(eng, setup, one, return_uncertainties, return_fitted_val)


class Setup(NamedTuple):
    """Checked inputs of a fit: data, start values, bounds, fixed flags.

    Host (NumPy) arrays, float64 and bool: building rows from them runs no
    eager JAX operation, each of which would compile on its first use.
    """

    data: Array
    init: Array
    lower: Array
    upper: Array
    fixed: Array


class Engine:
    """The HistFactory side of the fit driver: one model's objective and inputs.

    Holds the traceable NLL of the model; every pyhf-style fit of
    ``hepprob.infer`` runs it through :func:`hepprob.infer._batch.fit_batch`
    (compiled once per model, kept with it).
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self._programs: dict[Any, Callable[..., Any]] = {}
        self._sizes: tuple[int, int] | None = None
        # hepprob models expose their unchecked scalar log-likelihood; pyhf-like
        # models (e.g. pyhf's own with the jax backend) go through logpdf
        pure = getattr(model, "logpdf_fn", None)
        logpdf = pure() if callable(pure) else model.logpdf

        def objective(pars: Array, data: Array) -> Array:
            r"""The NLL, :math:`-\ln L`, as a scalar (traceable)."""
            return -jnp.sum(logpdf(pars, data))

        self.objective = objective

    def twice_nll(self, pars: Array, data: Array) -> Array:
        r""":math:`-2\ln L` as a scalar (traceable)."""
        return 2.0 * self.objective(pars, data)

    def expected(self, pars: Array) -> Array:
        """Expected main + auxiliary data (the Asimov dataset at ``pars``), traceable."""
        return jnp.asarray(self.model.expected_data(pars), dtype=jnp.float64)

    def jitted(self, key: Any, builder: Callable[[Engine], Callable[..., Any]]) -> Any:
        """The jitted program ``builder(self)``, compiled once per ``key``.

        ``"rows"`` is the driver's batched fit program of this model.
        """
        if key not in self._programs:
            if key == "rows":
                self._programs[key] = _batch.program_of(
                    self.objective, data_per_row=True
                )
            else:
                self._programs[key] = jax.jit(builder(self))
        return self._programs[key]

    def run_rows(self, rows: Setup) -> _batch.BatchFit:
        """Fit a batch of rows (a :class:`Setup` with a leading axis, each row
        with its own dataset) with the driver; see :func:`_batch.chunks`."""
        self.jitted("rows", None)  # type: ignore[arg-type]
        rows = Setup(*(np.asarray(a) for a in rows))
        return _batch.fit_batch(
            self.objective,
            rows.data,
            rows.init,
            rows.lower,
            rows.upper,
            rows.fixed,
            data_per_row=True,
            rows_per_call=self.max_rows(),
        )

    def fit_one(self, setup: Setup) -> _batch.BatchFit:
        """One fit of ``setup`` (its row of the batch result)."""
        return self.run_rows(Setup(*(np.asarray(a)[None] for a in setup))).take(0)

    def evaluate(self, data: Any, pars: Any) -> _batch.BatchFit:
        """NLL and Hessian at fixed points (rows), by the same compiled program."""
        pars = np.atleast_2d(np.asarray(pars, dtype=np.float64))
        data = np.asarray(data, dtype=np.float64)
        data = np.broadcast_to(data, (pars.shape[0], data.shape[-1]))
        return self.run_rows(
            Setup(data, pars, pars, pars, np.ones(pars.shape, dtype=bool))
        )

    def max_rows(self) -> int:
        """Rows per compiled batch call (:func:`_batch.max_rows`)."""
        return _batch.max_rows(int(self.model.config.npars))

    # -- checked inputs ---------------------------------------------------------
    def poi_index(self) -> int:
        """The POI's position, or :class:`ParameterError` when there is none."""
        poi = getattr(self.model.config, "poi_index", None)
        if poi is None:
            msg = (
                "model has no parameter of interest (config.poi_index is None); set "
                "one with the measurement's 'poi' or Workspace.model(poi_name=...)"
            )
            raise ParameterError(msg)
        return int(poi)

    def sizes(self) -> tuple[int, int]:
        """``(n_main, n_total)``: lengths of the main and of the full data."""
        if self._sizes is None:
            pars = jnp.asarray(self.model.config.suggested_init(), dtype=jnp.float64)
            n_total = int(np.size(self.model.expected_data(pars)))
            n_main = int(np.size(self.model.expected_data(pars, include_auxdata=False)))
            self._sizes = (n_main, n_total)
        return self._sizes

    def check_data(self, data: ArrayLike, name: str = "data") -> Array:
        """``data`` as float64 of the model's length, finite, main counts >= 0."""
        n_main, n_total = self.sizes()
        try:
            arr = np.asarray(data, dtype=np.float64)
        except (TypeError, ValueError):
            msg = f"{name}: expected {n_total} numbers (main + auxiliary data), got {data!r}"
            raise DataError(msg) from None
        if arr.ndim != 1 or arr.shape[0] != n_total:
            msg = (
                f"{name}: expected a flat array of {n_total} numbers "
                f"({n_main} main + {n_total - n_main} auxiliary), got shape {arr.shape}"
            )
            raise DataError(msg)
        if not np.all(np.isfinite(arr)):
            bad = np.flatnonzero(~np.isfinite(arr)).tolist()
            msg = f"{name}: expected finite numbers, got NaN/inf at positions {bad}"
            raise DataError(msg)
        if np.any(arr[:n_main] < 0):
            bad = np.flatnonzero(arr[:n_main] < 0).tolist()
            msg = f"{name}: main-data counts must be >= 0, got negative counts at positions {bad}"
            raise DataError(msg)
        return arr

    def check_pars(
        self,
        init_pars: Sequence[float] | None,
        par_bounds: Sequence[Sequence[float]] | None,
        fixed_params: Sequence[bool] | None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Defaults from the model config, then shape and value checks."""
        cfg = self.model.config
        npars = int(cfg.npars)
        init = _as_vector(
            cfg.suggested_init() if init_pars is None else init_pars, npars, "init_pars"
        )
        bounds = np.asarray(
            cfg.suggested_bounds() if par_bounds is None else par_bounds, dtype=float
        )
        if bounds.shape != (npars, 2):
            msg = f"par_bounds: expected shape ({npars}, 2), got {bounds.shape}"
            raise ParameterError(msg)
        fixed_in = cfg.suggested_fixed() if fixed_params is None else fixed_params
        fixed = np.asarray(fixed_in)
        if fixed.shape != (npars,) or not np.all(np.isin(fixed, (0, 1))):
            msg = f"fixed_params: expected {npars} booleans, got {fixed_in!r}"
            raise ParameterError(msg)
        lower, upper = bounds[:, 0], bounds[:, 1]
        if np.any(np.isnan(bounds)) or np.any(lower > upper):
            bad = np.flatnonzero(np.isnan(lower) | np.isnan(upper) | (lower > upper))
            msg = f"par_bounds: need lower <= upper, got {bounds[bad].tolist()} at {bad.tolist()}"
            raise ParameterError(msg)
        return init, lower, upper, fixed.astype(bool)

    def setup(
        self,
        data: ArrayLike,
        init_pars: Sequence[float] | None,
        par_bounds: Sequence[Sequence[float]] | None,
        fixed_params: Sequence[bool] | None,
        poi_value: float | None = None,
    ) -> Setup:
        """Checked :class:`Setup`; with ``poi_value`` the POI starts there."""
        arr = self.check_data(data)
        init, lower, upper, fixed = self.check_pars(init_pars, par_bounds, fixed_params)
        if poi_value is not None:
            init = init.copy()
            init[self.poi_index()] = _as_scalar(poi_value, "poi_val")
        outside = (init < lower) | (init > upper)
        if np.any(outside):
            names = _par_names(self.model)
            i = int(np.flatnonzero(outside)[0])
            what = (
                "poi_val"
                if poi_value is not None and i == self.poi_index()
                else "init_pars"
            )
            msg = (
                f"{what}: start value of parameter {names[i]!r} (index {i}) is "
                f"{init[i]}, outside its bounds [{lower[i]}, {upper[i]}]"
            )
            raise ParameterError(msg)
        return Setup(arr, init, lower, upper, fixed)


def engine(model: Any) -> Engine:
    """The :class:`Engine` of ``model``, kept with the model (one per object)."""
    for attr in ("config", "logpdf", "expected_data"):
        if not hasattr(model, attr):
            msg = (
                f"model: expected a HistFactory Model (with config, logpdf and "
                f"expected_data), got {type(model).__name__} without {attr!r}"
            )
            raise ParameterError(msg)
    return cached(("engine", model), lambda: Engine(model))


def warn_unconverged(
    fits: _batch.BatchFit | ArrayLike,
    what: str,
    names: Sequence[str] | None = None,
    fixed: ArrayLike | None = None,
) -> None:
    """Warn with :class:`ConvergenceWarning` when a fit did not reach a minimum.

    ``fits`` is a :class:`~hepprob.infer._batch.BatchFit` (the statuses of the
    failed fits are named; for one fit, with ``names`` and ``fixed``, also the
    parameters of a flat or negative-curvature direction), an integer array
    of :class:`FitStatus` codes, or boolean convergence flags.
    """
    if isinstance(fits, _batch.BatchFit):
        codes = np.atleast_1d(fits.status)
    elif np.asarray(fits).dtype.kind in "iu":  # FitStatus codes
        codes = np.atleast_1d(np.asarray(fits))
    else:  # flags
        codes = np.where(np.atleast_1d(np.asarray(fits, dtype=bool)), 0, 2)
    flags = codes == FitStatus.CONVERGED.code
    if np.all(flags):
        return
    why = sorted({FitStatus.from_code(c).value for c in codes[~flags]})
    msg = (
        f"{what}: {int(np.size(flags) - np.sum(flags))} of {np.size(flags)} fit(s) "
        f"did not converge ({', '.join(why)}); the result may be inaccurate"
    )
    single = isinstance(fits, _batch.BatchFit) and np.ndim(fits.fun) == 0
    if single and names is not None and fixed is not None:
        cov = _batch.covariance(fits.hess, fixed)  # type: ignore[union-attr]
        if not cov.positive_definite:
            msg += "; " + cov.describe(names)
    warnings.warn(msg, ConvergenceWarning, stacklevel=3)


def _returns(
    eng: Engine,
    setup: Setup,
    one: _batch.BatchFit,
    return_uncertainties: bool,
    return_fitted_val: bool,
) -> Any:
    pars = np.asarray(one.x)
    if return_uncertainties:
        cov = _batch.covariance(one.hess, setup.fixed)
        if not cov.positive_definite:
            msg = (
                "uncertainties: "
                + cov.describe(_par_names(eng.model))
                + "; their errors are NaN"
            )
            warnings.warn(msg, ConvergenceWarning, stacklevel=3)
        pars = np.stack([pars, cov.errors()], axis=1)
    if return_fitted_val:
        return jnp.asarray(pars), jnp.asarray(one.twice_nll)
    return jnp.asarray(pars)


def _as_vector(values: Any, n: int, name: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        msg = f"{name}: expected {n} numbers, got {values!r}"
        raise ParameterError(msg) from None
    if arr.shape != (n,) or not np.all(np.isfinite(arr)):
        msg = f"{name}: expected {n} finite numbers, got {values!r}"
        raise ParameterError(msg)
    return arr


def _as_scalar(value: Any, name: str) -> float:
    try:
        out = float(np.asarray(value, dtype=np.float64).reshape(()))
    except (TypeError, ValueError):
        msg = f"{name}: expected a finite number, got {value!r}"
        raise ParameterError(msg) from None
    if not np.isfinite(out):
        msg = f"{name}: expected a finite number, got {value!r}"
        raise ParameterError(msg)
    return out


def _par_names(model: Any) -> list[str]:
    names = getattr(model.config, "par_names", None)
    if callable(names):  # pyhf < 0.7 had a method
        names = names()
    if names is None:
        return [f"par{i}" for i in range(int(model.config.npars))]
    return list(names)
