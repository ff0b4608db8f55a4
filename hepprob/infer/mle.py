"""pyhf-compatible maximum-likelihood fits of HistFactory models (pyhf 0.7 signatures)."""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from hepprob._typing import Array, ArrayLike
from hepprob.errors import ConvergenceWarning, DataError, ParameterError

__all__ = ["fit", "fixed_poi_fit", "twice_nll"]

# Convergence settings of every fit made through hepprob.infer's pyhf-style API.
# The objective is twice the NLL; ``tol`` is handed to the minimiser.
FIT_TOL = 1e-10
FIT_MAX_ITER = 500

# Rows times parameters squared of one compiled batch of fits on CPU, and the
# largest CPU batch: small enough that a padded limit-search step stays cheap
# (see Engine.max_rows).
_ROW_BUDGET = 4096
_MAX_ROWS = 64


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
    gradients and Hessians); the compiled program is cached per model.

    Args:
        data: main + auxiliary data, length ``len(model.expected_data(pars))``.
        model: a HistFactory ``Model`` (``hepprob.histfactory`` or any object with
            pyhf's ``config``/``logpdf``/``expected_data`` interface in JAX).
        init_pars: start values (default ``model.config.suggested_init()``).
        par_bounds: ``(npars, 2)`` bounds (default ``suggested_bounds()``).
        fixed_params: ``npars`` flags holding a parameter at its start value
            (default ``suggested_fixed()``).
        return_uncertainties: return ``(npars, 2)`` rows ``[value, error]``, the
            errors from the inverse exact Hessian of the NLL (0 for fixed ones).
        return_fitted_val: also return :math:`-2\ln L` at the minimum.

    Returns:
        The best-fit parameters, and ``twice_nll`` if ``return_fitted_val``.

    Raises:
        DataError: data of the wrong length, non-finite or negative counts.
        ParameterError: wrong lengths of the options, or a start value outside its
            bounds.

    Warns:
        ConvergenceWarning: the minimiser did not converge.
    """
    eng = engine(model)
    setup = eng.setup(data, init_pars, par_bounds, fixed_params)
    x, fval, ok = eng.fit_one(setup)
    warn_unconverged(ok, "mle.fit")
    return _returns(eng, setup, x, fval, return_uncertainties, return_fitted_val)


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
    x, fval, ok = eng.fit_one(setup)
    warn_unconverged(ok, "mle.fixed_poi_fit")
    return _returns(eng, setup, x, fval, return_uncertainties, return_fitted_val)


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
    """Compiled programs of one model, built lazily and cached.

    Holds the traceable objective and its fit; the public functions of
    ``hepprob.infer`` jit programs built from these once per model and reuse them.
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self._programs: dict[Any, Callable[..., Any]] = {}
        self._sizes: tuple[int, int] | None = None
        # hepprob models expose their unchecked scalar log-likelihood; pyhf-like
        # models (e.g. pyhf's own with the jax backend) go through logpdf
        pure = getattr(model, "logpdf_fn", None)
        self._logpdf = pure() if callable(pure) else model.logpdf

    # -- the traceable pieces ------------------------------------------------
    def objective(self, pars: Array, data: Array) -> Array:
        """:math:`-2\\ln L` as a scalar."""
        return -2.0 * jnp.sum(self._logpdf(pars, data))

    def fit_rows(
        self, data: Array, init: Array, lower: Array, upper: Array, fixed: Array
    ) -> tuple[Array, Array, Array]:
        """A batch of bounded fits (leading axis: rows), traceable: ``(x, twice_nll, ok)``.

        Newton's method can stop on a saddle point (gradient zero, one direction
        of negative curvature: HistFactory shape interpolations make them). Each
        fit checks the curvature at its end with a Cholesky factorisation of the
        Hessian the minimiser already evaluated; only when some row is not
        positive definite does the batch find the most negative eigenvector
        (``eigh``), step down along it and minimise again, keeping the deeper
        point. A saddle it cannot leave is reported as not converged. Without
        saddles the batch is one minimisation and no eigendecomposition.
        """
        minimize_rows = jax.vmap(self._minimize)

        def cond(carry: tuple[Array, ...]) -> Array:
            r, *_, active = carry
            return (r < 2) & jnp.any(active)

        def round_(carry: tuple[Array, ...]) -> tuple[Array, ...]:
            r, x_best, f_best, ok_best, start, active = carry
            # inactive rows (no saddle to leave) stop after one iteration
            max_iter = jnp.where(active, FIT_MAX_ITER, 0)
            x, f, ok, hess = minimize_rows(data, start, lower, upper, fixed, max_iter)
            saddle, escape = self._saddle_escape(x, f, hess, data, lower, upper, fixed)
            take = active & (f < f_best)  # the first round always (f_best = inf)
            x_best = jnp.where(take[:, None], x, x_best)
            ok_best = jnp.where(take, ok & ~saddle, ok_best)
            f_best = jnp.where(take, f, f_best)
            start = jnp.where(saddle[:, None], escape, x)
            return r + 1, x_best, f_best, ok_best, start, take & saddle

        n = init.shape[0]
        inf = jnp.full(n, jnp.inf, dtype=jnp.float64)
        no = jnp.zeros(n, dtype=bool)
        carry = (jnp.asarray(0), init, inf, no, init, ~no)
        _, x, f, ok, _, _ = jax.lax.while_loop(cond, round_, carry)
        return x, f, ok

    def _minimize(
        self,
        data: Array,
        init: Array,
        lower: Array,
        upper: Array,
        fixed: Array,
        max_iter: Any = FIT_MAX_ITER,
    ) -> tuple[Array, Array, Array, Array]:
        """One fit: ``(x, twice_nll, converged, Hessian at x)``."""
        from hepprob.infer.minimize import minimize_with_hessian

        res, hess = minimize_with_hessian(
            self.objective,
            init,
            lower,
            upper,
            fixed=fixed,
            args=(data,),
            tol=FIT_TOL,
            max_iter=max_iter,
        )
        return res.x, res.fun, jnp.asarray(res.converged, dtype=bool), hess

    def _saddle_escape(
        self,
        x: Array,
        f: Array,
        hess: Array,
        data: Array,
        lower: Array,
        upper: Array,
        fixed: Array,
    ) -> tuple[Array, Array]:
        """Per row: whether ``x`` is a saddle, and a lower start along its descent."""
        inside = ~fixed & (x > lower) & (x < upper)
        both = inside[:, :, None] & inside[:, None, :]
        scale = jnp.maximum(jnp.max(jnp.abs(jnp.diagonal(hess, 0, 1, 2)), axis=1), 1.0)
        eye = jnp.eye(x.shape[1], dtype=x.dtype)
        reduced = jnp.where(both, hess, scale[:, None, None] * eye)
        # a saddle has an eigenvalue below -1e-8 scale; half that shift keeps
        # the Cholesky gate from missing one to rounding
        chol = jnp.linalg.cholesky(reduced + 0.5e-8 * scale[:, None, None] * eye)
        maybe = ~jnp.all(jnp.isfinite(chol), axis=(1, 2))

        def escape(_: None) -> tuple[Array, Array]:
            return jax.vmap(self._descent)(
                x, f, reduced, scale, inside, data, lower, upper
            )

        def stay(_: None) -> tuple[Array, Array]:
            return jnp.zeros_like(maybe), x

        return jax.lax.cond(jnp.any(maybe), escape, stay, None)

    def _descent(
        self,
        x: Array,
        f: Array,
        reduced: Array,
        scale: Array,
        inside: Array,
        data: Array,
        lower: Array,
        upper: Array,
    ) -> tuple[Array, Array]:
        """Saddle flag and the better of two steps along the most negative curvature."""
        eigval, eigvec = jnp.linalg.eigh(reduced)
        lam, direction = eigval[0], jnp.where(inside, eigvec[:, 0], 0.0)
        saddle = lam < -1e-8 * scale
        # along the direction f ~ f0 + lam t^2 / 2: a step that gains about 1
        step = jnp.sqrt(2.0 / jnp.maximum(jnp.abs(lam), 1e-12))
        cands = jnp.clip(
            x[None] + step * jnp.array([[1.0], [-1.0]]) * direction, lower, upper
        )
        f_c = jax.vmap(self.objective, in_axes=(0, None))(cands, data)
        f_c = jnp.where(jnp.isfinite(f_c), f_c, jnp.inf)
        best = cands[jnp.argmin(f_c)]
        return saddle & (jnp.min(f_c) < f), best

    def expected(self, pars: Array) -> Array:
        """Expected main + auxiliary data (the Asimov dataset at ``pars``), traceable."""
        return jnp.asarray(self.model.expected_data(pars), dtype=jnp.float64)

    def errors(self, x: Array, data: Array, fixed: Array) -> Array:
        """Hesse errors: square roots of the diagonal of the inverse NLL Hessian."""
        hess = 0.5 * jax.hessian(self.objective)(x, data)
        free = ~fixed
        both = free[:, None] & free[None, :]
        eye = jnp.eye(x.shape[0], dtype=x.dtype)
        cov = jnp.linalg.inv(jnp.where(both, hess, eye))
        var = jnp.where(free, jnp.diag(cov), 0.0)
        return jnp.sqrt(jnp.maximum(var, 0.0))

    def jitted(self, key: Any, builder: Callable[[Engine], Callable[..., Any]]) -> Any:
        """The jitted program ``builder(self)``, compiled once per ``key``."""
        if key not in self._programs:
            self._programs[key] = jax.jit(builder(self))
        return self._programs[key]

    def run_rows(self, rows: Setup) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fit a batch of rows (a :class:`Setup` with a leading axis) by compiled calls.

        Exactly two batch sizes are compiled per model: one row, and
        :meth:`max_rows` rows. One or two rows run one by one (a fit, a
        hypotest); more go in chunks of ``max_rows``, the last padded by
        repeating its last row (scans, limit searches, toys). A new dataset,
        POI value, scan length or number of toys never recompiles. Returns
        NumPy ``(x, twice_nll, converged)``.
        """
        rows = Setup(*(np.asarray(a) for a in rows))
        n = int(rows.init.shape[0])
        program = self.jitted("rows", _build_rows)
        cap = self.max_rows()
        chunks = []
        for start in range(0, n, cap):
            size = min(cap, n - start)
            if size <= 2:
                chunks += [(start + i, 1, 1) for i in range(size)]
            else:
                chunks.append((start, size, cap))
        parts = []
        for start, size, bucket in chunks:
            idx = np.minimum(np.arange(bucket), size - 1) + start
            out = program(*(a[idx] for a in rows))
            parts.append([np.asarray(o)[:size] for o in out])
        return tuple(np.concatenate([p[j] for p in parts]) for j in range(3))  # type: ignore[return-value]

    def fit_one(self, setup: Setup) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One fit of ``setup`` (the batch program with a single row)."""
        x, f, ok = self.run_rows(Setup(*(a[None] for a in setup)))
        return x[0], f[0], ok[0]

    def max_rows(self) -> int:
        """Rows per compiled batch call: a power of two, 1 for large models.

        On CPU a batch costs about the sum of its rows, and every row runs as
        long as the slowest one, so models with more than about 60 parameters
        fit row by row; small models gain from batches (the per-iteration
        overhead is shared). Accelerators run rows in parallel: larger batches.
        """
        cpu = jax.default_backend() == "cpu"
        budget, most = (_ROW_BUDGET, _MAX_ROWS) if cpu else (64 * _ROW_BUDGET, 4096)
        npars = max(int(self.model.config.npars), 1)
        rows = min(max(budget // npars**2, 1), most)
        return 1 << (rows.bit_length() - 1)

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


_ENGINES: weakref.WeakKeyDictionary[Any, Engine] = weakref.WeakKeyDictionary()
_ENGINES_BY_ID: dict[int, tuple[Any, Engine]] = {}


def engine(model: Any) -> Engine:
    """The cached :class:`Engine` of ``model`` (one per model object)."""
    for attr in ("config", "logpdf", "expected_data"):
        if not hasattr(model, attr):
            msg = (
                f"model: expected a HistFactory Model (with config, logpdf and "
                f"expected_data), got {type(model).__name__} without {attr!r}"
            )
            raise ParameterError(msg)
    try:
        eng = _ENGINES.get(model)
        if eng is None:
            eng = _ENGINES[model] = Engine(model)
    except TypeError:  # not weak-referenceable: keep it alive alongside its engine
        held = _ENGINES_BY_ID.get(id(model))
        if held is None or held[0] is not model:
            held = _ENGINES_BY_ID[id(model)] = (model, Engine(model))
        eng = held[1]
    return eng


def warn_unconverged(converged: ArrayLike, what: str) -> None:
    """Warn with :class:`ConvergenceWarning` when any fit flag is false."""
    flags = np.asarray(converged)
    if not np.all(flags):
        msg = (
            f"{what}: {int(np.size(flags) - np.sum(flags))} of {np.size(flags)} fit(s) "
            "did not converge; the result may be inaccurate"
        )
        warnings.warn(msg, ConvergenceWarning, stacklevel=3)


def _build_rows(eng: Engine) -> Callable[..., Any]:
    return eng.fit_rows


def _build_errors(eng: Engine) -> Callable[..., Any]:
    return eng.errors


def _returns(
    eng: Engine,
    setup: Setup,
    x: Array,
    fval: Array,
    return_uncertainties: bool,
    return_fitted_val: bool,
) -> Any:
    pars = np.asarray(x)
    if return_uncertainties:
        err = eng.jitted("errors", _build_errors)(x, setup.data, setup.fixed)
        pars = np.stack([pars, np.asarray(err)], axis=1)
    if return_fitted_val:
        return jnp.asarray(pars), jnp.asarray(fval)
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
