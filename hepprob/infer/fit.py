"""Maximum-likelihood fits of hepprob models and plain functions: ``fit`` and ``nll``."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as npd

from hepprob._optional import require
from hepprob._program_cache import cached, split_arguments
from hepprob._typing import Array, ArrayLike
from hepprob.errors import ConvergenceWarning, DataError, ModelError, ParameterError
from hepprob.infer import _batch
from hepprob.infer.minimize import (
    CURVATURE_EPS,
    FitStatus,
    classify,
    moving,
    scaled_curvature,
)
from hepprob.infer.result import FitResult, _Group, _Problem
from hepprob.model import ModelStructure, log_likelihood, trace_model

__all__ = ["NLL", "fit", "nll"]


def __dir__() -> list[str]:
    return __all__


_METHODS = ("auto", "jax", "minuit")


class NLL:
    """A model's negative log-likelihood as a jitted function of a flat vector.

    Made by :func:`nll`. Call it with a vector in :attr:`par_names` order;
    :attr:`grad` and :attr:`hessian` are jitted exact derivatives. It carries
    ``errordef = 0.5`` so that ``iminuit.Minuit(nll, nll.init, grad=nll.grad,
    name=nll.par_names)`` gives likelihood errors directly.

    Attributes:
        par_names: flat parameter names.
        init: start vector declared by the model.
        lower: lower bounds.
        upper: upper bounds.
        errordef: 0.5 (an NLL, not a χ²).
    """

    errordef = 0.5

    def __init__(
        self,
        objective: Callable[[Array, Any], Array],
        data: Any,
        par_names: list[str],
        init: np.ndarray,
        lower: np.ndarray,
        upper: np.ndarray,
    ) -> None:
        self._data = data
        self._value = jitted(objective, "value")
        self._grad = jitted(objective, "grad")
        self._hessian = jitted(objective, "hessian")
        self.par_names = par_names
        self.init = init
        self.lower = lower
        self.upper = upper

    def __call__(self, x: ArrayLike) -> float:
        """NLL at ``x`` (a Python float, as external minimisers expect)."""
        return float(self._value(self._vector(x), self._data))

    def grad(self, x: ArrayLike) -> np.ndarray:
        """Exact gradient at ``x`` (NumPy array)."""
        return np.asarray(self._grad(self._vector(x), self._data))

    def hessian(self, x: ArrayLike) -> np.ndarray:
        """Exact Hessian at ``x`` (NumPy array)."""
        return np.asarray(self._hessian(self._vector(x), self._data))

    def _vector(self, x: ArrayLike) -> Array:
        vec = jnp.asarray(x, dtype=jnp.float64)
        if vec.shape != (len(self.par_names),):
            msg = (
                f"NLL: x must have shape ({len(self.par_names)},) for parameters "
                f"{self.par_names}, got shape {vec.shape}"
            )
            raise ParameterError(msg)
        return vec


def nll(model: Callable[..., Any], *args: Any, **kwargs: Any) -> NLL:
    """The jitted negative log-likelihood of ``model(*args, **kwargs)``.

    For external minimisers such as iminuit. Priors of ``hepprob.param`` sites
    are ignored; ``numpyro.factor`` terms count.

    Args:
        model: a NumPyro model function with ``hepprob.param`` sites.
        *args: the model's positional arguments (data).
        **kwargs: its keyword arguments.

    Returns:
        An :class:`NLL`: callable on a flat vector, with ``grad``, ``hessian``,
        ``par_names``, ``init``, ``lower``, ``upper`` and ``errordef``.

    Example:
        >>> import numpy as np, numpyro, numpyro.distributions as nd, hepprob
        >>> def model(x):
        ...     mu = hepprob.param("mu", 0.0)
        ...     numpyro.sample("x", nd.Normal(mu, 1.0), obs=x)
        >>> f = hepprob.infer.nll(model, np.array([1.0, 3.0]))
        >>> round(f([0.0]) - f([2.0]), 9), f.par_names
        (4.0, ['mu'])
    """
    prepared = _prepare_model(model, args, kwargs)
    s = prepared.structure
    return NLL(prepared.objective, prepared.data, s.par_names, s.init, s.lower, s.upper)


def fit(
    model: Callable[..., Any],
    *model_args: Any,
    init: Mapping[str, ArrayLike] | None = None,
    fixed: Mapping[str, ArrayLike] | Sequence[str] | None = None,
    method: str = "auto",
    x0: ArrayLike | None = None,
    options: Mapping[str, Any] | None = None,
    weights: ArrayLike | Mapping[str, ArrayLike] | None = None,
    errors: str = "hesse",
    **model_kwargs: Any,
) -> FitResult:
    """Maximum-likelihood fit of a model, or minimum of a plain function.

    **Models.** ``model`` is a NumPyro model with ``hepprob.param`` sites; the
    NLL is minus the log-likelihood of its observed sites (priors ignored).
    ``model_args``/``model_kwargs`` go to the model. The minimiser is compiled
    once per model and argument structure; later fits with new data of the same
    shapes reuse it.

    **Plain functions.** With ``x0`` given, ``model`` is an objective
    ``fun(x, *model_args) -> scalar`` of a flat vector (written in JAX); the
    keyword arguments ``lower``, ``upper`` (default ±inf) and ``par_names``
    (default ``x[0], x[1], ...``) are then read from ``model_kwargs``, and
    ``init``/``fixed`` use those names. The result's NLL is ``fun`` itself
    (Hesse errors assume it is a negative log-likelihood: ``errordef = 0.5``).

    Args:
        model: model function, or objective when ``x0`` is given.
        *model_args: positional arguments of the model (or the objective).
        init: start values by parameter name (``name[i]`` for one entry).
        fixed: parameters held constant: ``{name: value}``, or names fixed at
            their start value.
        method: ``"auto"`` (pure-JAX Newton; if it does not converge and
            iminuit is installed, Minuit is tried from its end point), ``"jax"``,
            or ``"minuit"`` (iminuit's MIGRAD with the exact gradient, and
            MINUIT's HESSE covariance: a cross-check).
        x0: start vector; switches to plain-function mode.
        options: ``{"tol": EDM tolerance in NLL units (default 1e-10),
            "max_iter": Newton iterations per round (default 500)}``.
        weights: per-event weights of unbinned data (an array for the one
            unbinned site, or ``{site: array}``): the weighted NLL; see
            :mod:`hepprob.infer.weighted`.
        errors: ``"hesse"`` (inverse Hessian), or for weighted data
            ``"sumw2"`` or ``"asymptotic"`` (Langenbruch, arXiv:1911.01303).
        **model_kwargs: keyword arguments of the model (plain-function mode:
            ``lower``, ``upper``, ``par_names``).

    Returns:
        A :class:`FitResult`. ``converged=True`` only at a true minimum: the
        gradient test passes and the Hessian of the free parameters (those not
        held by a bound) is positive definite, whichever method ran. Otherwise
        ``converged=False``, ``status`` says why (a saddle the minimiser could
        not leave, a flat direction, the iteration limit, a stall, non-finite
        values) and a :class:`ConvergenceWarning` names the parameters
        involved.

    Raises:
        ParameterError: unknown names in ``init``/``fixed``, values outside the
            bounds, a bad ``method`` or ``options``.
        DataError: an empty or non-finite observed dataset.
        ModelError: a model without parameters or observed sites.

    Example:
        >>> import jax.numpy as jnp, hepprob
        >>> res = hepprob.fit(lambda x: jnp.sum((x - 1.0) ** 2), x0=[2.5, 0.0],
        ...                   lower=[2.0, -5.0], upper=[3.0, 5.0])
        >>> res.values["x"].tolist(), res.converged
        ([2.0, 1.0], True)
    """
    if weights is not None or errors != "hesse":  # weighted data: infer/weighted.py
        from hepprob.infer import weighted

        return weighted.fit(
            model, model_args, model_kwargs, weights=weights, errors=errors,
            init=init, fixed=fixed, method=method, x0=x0, options=options,
        )  # fmt: skip
    if method not in _METHODS:
        msg = f"fit: method must be one of {_METHODS}, got {method!r}"
        raise ParameterError(msg)
    tol, max_iter = _options(options)
    if x0 is not None:
        prepared = _prepare_function(model, x0, model_args, model_kwargs)
    else:
        prepared = _prepare_model(model, model_args, model_kwargs)
    start, fixed_mask = _start(prepared, init, fixed)
    problem = _Problem(
        prepared.objective,
        prepared.data,
        prepared.lower,
        prepared.upper,
        fixed_mask,
        tol=tol,
        max_iter=max_iter,
    )
    if method == "minuit":
        result = _fit_minuit(prepared, problem, start)
    else:
        result = _fit_jax(prepared, problem, start)
        retry_from = (FitStatus.ITERATION_LIMIT, FitStatus.STALLED)
        if method == "auto" and result.status in retry_from and _has_iminuit():
            retry = _fit_minuit(prepared, problem, result.x)
            if retry.converged:
                result = retry
    if not result.converged:
        warnings.warn(
            f"fit did not converge ({result.status.value}): {result.message}",
            ConvergenceWarning,
            stacklevel=2,
        )
    return result


# --- preparation ---------------------------------------------------------------------


class _Prepared:
    """A model or function read for fitting: its objective, data and layout."""

    def __init__(
        self,
        objective: Callable[[Array, Any], Array],
        data: Any,
        groups: list[_Group],
        init: np.ndarray,
        lower: np.ndarray,
        upper: np.ndarray,
        structure: ModelStructure | None = None,
    ) -> None:
        self.objective = objective
        self.data = data
        self.groups = groups
        self.init = init
        self.lower = lower
        self.upper = upper
        self.structure = structure
        self.par_names = [n for g in groups for n in g.flat_names]


def jitted(objective: Callable[[Array, Any], Array], what: str) -> Any:
    """The jitted value, gradient or Hessian of ``objective``, kept with it."""
    transform = {"value": lambda f: f, "grad": jax.grad, "hessian": jax.hessian}[what]
    return cached((what, objective), lambda: jax.jit(transform(objective)))


def _prepare_model(
    model: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any]
) -> _Prepared:
    if not callable(model):
        msg = f"fit: model must be a callable NumPyro model, got {type(model).__name__}"
        raise ModelError(msg)
    structure = ModelStructure.from_model(model, *args, **kwargs)
    if structure.size == 0:
        msg = "fit: the model declares no free parameter (use hepprob.param(...))"
        raise ModelError(msg)
    _check_data(model, args, kwargs)
    dynamic, rebuild, signature = split_arguments(args, kwargs)
    layout = tuple((p.name, p.shape) for p in structure.params)
    key = ("objective", model, signature, layout, structure.observed)

    def make() -> Callable[[Array, Any], Array]:
        def objective(x: Array, data: Any) -> Array:
            a, kw = rebuild(data)
            return -log_likelihood(model, structure, a, kw)(x)

        return objective

    groups, start = [], 0
    for p in structure.params:
        groups.append(_Group(p.name, tuple(p.shape), start))
        start += p.size
    return _Prepared(
        cached(key, make),
        dynamic,
        groups,
        np.asarray(structure.init, dtype=np.float64),
        np.asarray(structure.lower, dtype=np.float64),
        np.asarray(structure.upper, dtype=np.float64),
        structure,
    )


def _check_data(
    model: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any]
) -> None:
    """Empty or non-finite observed data raise :class:`DataError` before tracing."""
    tr = trace_model(model, None, args, kwargs)
    for name, site in tr.items():
        if site["type"] != "sample" or not site.get("is_observed"):
            continue
        if isinstance(site["fn"], npd.distribution.Unit):  # numpyro.factor
            continue
        own_check = getattr(site["fn"], "check_data", None)
        if callable(own_check):  # e.g. Extended: NaN rows are padding, N = 0 is valid
            own_check(site["value"])
            continue
        value = np.asarray(site["value"])
        if value.size == 0:
            msg = f"fit: observed site {name!r} has an empty dataset (shape {value.shape})"
            raise DataError(msg)
        if value.dtype.kind in "fc" and not np.all(np.isfinite(value)):
            bad = int(np.sum(~np.isfinite(value)))
            msg = (
                f"fit: observed site {name!r} must hold finite numbers; got {bad} "
                f"NaN/inf value(s) out of {value.size}"
            )
            raise DataError(msg)


def _prepare_function(
    fun: Callable[..., Any],
    x0: ArrayLike,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
) -> _Prepared:
    if not callable(fun):
        msg = f"fit: with x0, the first argument must be a callable objective, got {type(fun).__name__}"
        raise ParameterError(msg)
    extra = set(kwargs) - {"lower", "upper", "par_names"}
    if extra:
        msg = (
            f"fit: with x0 (plain-function mode) only lower, upper and par_names are "
            f"accepted as keywords, got {sorted(extra)}; pass data in *args"
        )
        raise ParameterError(msg)
    start = np.atleast_1d(np.asarray(x0, dtype=np.float64))
    if start.ndim != 1 or start.size == 0 or not np.all(np.isfinite(start)):
        msg = f"fit: x0 must be a non-empty 1-D vector of finite numbers, got {x0!r}"
        raise ParameterError(msg)
    n = start.size
    lower = _bound_vector("lower", kwargs.get("lower"), -np.inf, n)
    upper = _bound_vector("upper", kwargs.get("upper"), np.inf, n)
    if np.any(lower >= upper):
        msg = f"fit: need lower < upper everywhere, got lower={lower}, upper={upper}"
        raise ParameterError(msg)
    if np.any(start < lower) or np.any(start > upper):
        msg = f"fit: x0={start} lies outside the bounds [{lower}, {upper}]"
        raise ParameterError(msg)
    names = kwargs.get("par_names")
    if names is None:
        groups = [_Group("x", (n,), 0)]
    else:
        names = [str(v) for v in names]
        if len(names) != n or len(set(names)) != n:
            msg = f"fit: par_names must be {n} distinct names (one per x0 entry), got {names}"
            raise ParameterError(msg)
        groups = [_Group(name, (), i) for i, name in enumerate(names)]
    dynamic, rebuild, signature = split_arguments(args, {})
    key = ("objective", fun, signature, "function")

    def make() -> Callable[[Array, Any], Array]:
        def objective(x: Array, data: Any) -> Array:
            return jnp.asarray(fun(x, *rebuild(data)[0]), jnp.float64)

        return objective

    return _Prepared(cached(key, make), dynamic, groups, start, lower, upper)


def _bound_vector(name: str, value: Any, default: float, n: int) -> np.ndarray:
    if value is None:
        return np.full(n, default)
    arr = np.asarray(value, dtype=np.float64)
    try:
        return np.broadcast_to(arr, (n,)).copy()
    except ValueError:
        msg = f"fit: {name} must be a scalar or have {n} entries, got shape {arr.shape}"
        raise ParameterError(msg) from None


def _options(options: Mapping[str, Any] | None) -> tuple[float, int]:
    options = dict(options or {})
    unknown = set(options) - {"tol", "max_iter"}
    if unknown:
        msg = f"fit: unknown option(s) {sorted(unknown)}; allowed: tol, max_iter"
        raise ParameterError(msg)
    tol = options.get("tol", _batch.TOL)
    max_iter = options.get("max_iter", _batch.MAX_ITER)
    if not isinstance(tol, (int, float)) or not tol > 0:
        msg = f"fit: options['tol'] must be a positive number, got {tol!r}"
        raise ParameterError(msg)
    if not isinstance(max_iter, int) or max_iter < 1:
        msg = f"fit: options['max_iter'] must be a positive integer, got {max_iter!r}"
        raise ParameterError(msg)
    return float(tol), max_iter


def _start(
    prepared: _Prepared,
    init: Mapping[str, ArrayLike] | None,
    fixed: Mapping[str, ArrayLike] | Sequence[str] | None,
    who: str = "fit",
) -> tuple[np.ndarray, np.ndarray]:
    """Start vector and fixed mask from ``init`` and ``fixed`` (checked by name).

    ``who`` names the caller in error messages.
    """
    start = prepared.init.copy()
    mask = np.zeros(start.size, bool)
    if init is not None and not isinstance(init, Mapping):
        msg = (
            f"{who}: init must be a mapping {{name: value}}, got {type(init).__name__}"
        )
        raise ParameterError(msg)
    if fixed is None:
        fixed_values: dict[str, Any] = {}
    elif isinstance(fixed, Mapping):
        fixed_values = dict(fixed)
    elif isinstance(fixed, str) or not isinstance(fixed, Sequence):
        msg = f"{who}: fixed must be a mapping {{name: value}} or a list of names, got {fixed!r}"
        raise ParameterError(msg)
    else:
        fixed_values = dict.fromkeys(fixed)
    for what, values in (("init", dict(init or {})), ("fixed", fixed_values)):
        for name, value in values.items():
            idx = _indices(prepared, name, what, who)
            if value is not None:
                arr = np.asarray(value, dtype=np.float64)
                try:
                    start[idx] = np.broadcast_to(arr, (len(idx),)).reshape(-1)
                except ValueError:
                    msg = f"{who}: {what}[{name!r}] must have {len(idx)} value(s), got shape {arr.shape}"
                    raise ParameterError(msg) from None
            if what == "fixed":
                mask[idx] = True
    bad = ~np.isfinite(start) | (start < prepared.lower) | (start > prepared.upper)
    if bad.any():
        details = ", ".join(
            f"{prepared.par_names[i]}={start[i]} not in [{prepared.lower[i]}, {prepared.upper[i]}]"
            for i in np.flatnonzero(bad)
        )
        msg = f"{who}: start values outside the parameter bounds: {details}"
        raise ParameterError(msg)
    return start, mask


def _indices(prepared: _Prepared, name: str, what: str, who: str = "fit") -> list[int]:
    for g in prepared.groups:
        if g.name == name:
            return list(range(g.start, g.start + g.size))
    if name in prepared.par_names:
        return [prepared.par_names.index(name)]
    msg = f"{who}: unknown parameter {name!r} in {what}; known: {prepared.par_names}"
    raise ParameterError(msg)


# --- back ends -----------------------------------------------------------------------


def _fit_jax(prepared: _Prepared, problem: _Problem, start: np.ndarray) -> FitResult:
    fits = _batch.fit_batch(
        problem.objective,
        problem.data,
        start,
        problem.lower,
        problem.upper,
        problem.fixed,
        tol=problem.tol,
        max_iter=problem.max_iter,
    ).take(0)
    return _result(
        prepared,
        problem,
        fits.x,
        float(fits.fun),
        fits.hess,
        FitStatus.from_code(fits.status),
        float(fits.edm),
        int(fits.n_iter),
        "jax",
    )


def _result(
    prepared: _Prepared,
    problem: _Problem,
    x: np.ndarray,
    nll: float,
    hess: np.ndarray,
    status: FitStatus,
    edm: float,
    n_iter: int,
    method: str,
    covariance: np.ndarray | None = None,
) -> FitResult:
    """A :class:`FitResult` with the Hesse covariance and a message on ``status``."""
    cov = _batch.covariance(hess, problem.fixed)
    if status is FitStatus.CONVERGED:
        message = "converged"
        if not cov.positive_definite:  # only directions held by a bound are flat
            message += "; at a bound, " + cov.describe(prepared.par_names)
    elif status in (FitStatus.SADDLE, FitStatus.DEGENERATE):
        message = cov.describe(prepared.par_names)
        if status is FitStatus.SADDLE:
            message = "stopped at a saddle point that no escape step left: " + message
    elif status is FitStatus.ITERATION_LIMIT:
        message = f"iteration limit {problem.max_iter} reached (EDM {edm:.3g})"
    elif status is FitStatus.STALLED:
        message = f"stalled with EDM {edm:.3g} above tolerance {problem.tol:g}"
    else:
        message = status.message
    matrix = cov.matrix
    if covariance is not None and cov.positive_definite:
        matrix = covariance
    return FitResult(
        groups=prepared.groups,
        x=x,
        covariance=matrix,
        nll=nll,
        converged=status is FitStatus.CONVERGED,
        status=status,
        edm=edm,
        n_iter=n_iter,
        message=message,
        method=method,
        problem=problem,
    )


def _fit_minuit(prepared: _Prepared, problem: _Problem, start: np.ndarray) -> FitResult:
    """iminuit's MIGRAD and HESSE, judged by the same test as the JAX minimiser."""
    iminuit = require("iminuit", "fit(method='minuit')")
    value_fn = jitted(problem.objective, "value")
    grad_fn = jitted(problem.objective, "grad")
    data = problem.data

    def fcn(x: np.ndarray) -> float:
        return float(value_fn(jnp.asarray(x, dtype=jnp.float64), data))

    def grad(x: np.ndarray) -> np.ndarray:
        return np.asarray(grad_fn(jnp.asarray(x, dtype=jnp.float64), data))

    m = iminuit.Minuit(fcn, np.asarray(start), grad=grad, name=prepared.par_names)
    m.errordef = iminuit.Minuit.LIKELIHOOD
    m.limits = [
        (None if not np.isfinite(lo) else lo, None if not np.isfinite(hi) else hi)
        for lo, hi in zip(problem.lower, problem.upper, strict=True)
    ]
    for i, f in enumerate(problem.fixed):
        m.fixed[i] = bool(f)
    m.migrad()
    m.hesse()
    fmin = m.fmin
    x = np.asarray(m.values, dtype=np.float64)
    status, hess = _judge(
        problem, x, fmin.is_valid, fmin.has_reached_call_limit, float(fmin.edm)
    )
    cov = None
    if m.covariance is not None and m.accurate:
        cov = np.asarray(m.covariance, dtype=np.float64)
    result = _result(
        prepared,
        problem,
        x,
        float(fmin.fval),
        hess,
        status,
        float(fmin.edm),
        int(fmin.nfcn),
        "minuit",
        covariance=cov,
    )
    if status is FitStatus.CONVERGED:
        result.message = "converged (iminuit MIGRAD + HESSE)"
    elif status in (FitStatus.ITERATION_LIMIT, FitStatus.STALLED):
        result.message = (
            f"iminuit: valid={fmin.is_valid}, accurate covariance={m.accurate}, "
            f"EDM {fmin.edm:.3g}"
        )
    return result


def _judge(
    problem: _Problem, x: np.ndarray, valid: bool, call_limit: bool, edm: float
) -> tuple[FitStatus, np.ndarray]:
    """Status of an external minimiser's end point, by the rule of the JAX one.

    Its own gradient test (``valid``), then the exact Hessian of the free
    parameters not held by a bound. An end point less tightly converged than
    Newton's sits a little off the floor of a flat valley, where the Hessian
    has a small negative eigenvalue; it counts as a saddle only if a line
    search along that direction finds a point lower by more than the EDM
    says is left (else the direction is flat: degenerate).
    """
    value_fn = jitted(problem.objective, "value")
    xj = jnp.asarray(x)
    g = np.asarray(jitted(problem.objective, "grad")(xj, problem.data))
    hess = np.asarray(jitted(problem.objective, "hessian")(xj, problem.data))
    value = float(value_fn(xj, problem.data))
    # Minuit's bound transform ends a hair inside a bound it pushes against
    lo, hi = problem.lower, problem.upper
    slack = 1e-8 * (1.0 + np.abs(np.where(np.isfinite(lo), lo, 0.0)))
    slack_lo = lo + np.where(np.isfinite(lo), slack, 0.0)
    slack = 1e-8 * (1.0 + np.abs(np.where(np.isfinite(hi), hi, 0.0)))
    slack_hi = hi - np.where(np.isfinite(hi), slack, 0.0)
    move = moving(x, g, slack_lo, slack_hi, ~problem.fixed)
    _, scale, eigval, eigvec = scaled_curvature(hess, move, np)
    lam = float(eigval[0])
    finite = np.isfinite(value) and np.all(np.isfinite(g)) and np.all(np.isfinite(hess))
    if finite and valid and lam < -CURVATURE_EPS:
        direction = np.where(move, eigvec[:, 0], 0.0) / scale
        t0 = np.sqrt(2.0 / abs(lam)) * 2.0 ** -np.arange(12)
        lowest = min(
            float(
                value_fn(jnp.asarray(np.clip(x + t * direction, lo, hi)), problem.data)
            )
            for t in np.concatenate([t0, -t0])
        )
        if not value - lowest > 10.0 * edm + problem.tol:
            lam = 0.0  # no real descent: a flat direction
    code = classify(np.bool_(finite), lam, np.bool_(valid), np.bool_(call_limit), np)
    return FitStatus.from_code(code), hess


def _has_iminuit() -> bool:
    try:
        require("iminuit")
    except ImportError:
        return False
    return True
