"""Differentiable fits, CLs and limits: gradients through profile fits by implicit differentiation.

What to use when:

* :func:`argmin` — the minimiser as a differentiable function of the objective's
  inputs (data, template yields, shape parameters that are not fitted). The
  building block of everything below.
* :func:`fit` — best-fit values and Hesse errors of a hepprob model (``hepprob.param``
  sites), differentiable in the model's arguments.
* :func:`hypotest` and :func:`upper_limit` — asymptotic CLs (observed and
  expected band) and upper limits of a HistFactory model as pure JAX functions.
  ``hepprob.infer.hypotest`` and ``hepprob.infer.upper_limit`` call them by
  themselves when their data or model hold JAX tracers, so
  ``jax.grad(lambda s: hepprob.infer.hypotest(1.0, data, build(s)))`` works.

The derivative of a minimum :math:`\\hat x(\\theta) = \\arg\\min_x f(x, \\theta)`
follows from its optimality condition :math:`\\nabla_x f(\\hat x, \\theta) = 0`
(the implicit function theorem), restricted to the free parameters not held at
a bound:

.. math::
    \\frac{\\partial \\hat x}{\\partial \\theta} =
    -\\left[\\nabla_x^2 f\\right]^{-1} \\nabla_\\theta \\nabla_x f,

so the minimiser is never unrolled (B. Amos, J. Z. Kolter, arXiv:1703.00443,
Sec. 3; M. Blondel et al., arXiv:2105.15183, eq. (2)). A root
:math:`\\mu^*(\\theta)` of :math:`h(\\mu, \\theta) = \\mathrm{CL}_s - \\alpha` is
differentiated the same way: :math:`d\\mu^*/d\\theta = -h_\\theta / h_\\mu`.
The test statistics and p-values are those of Cowan et al., arXiv:1007.1727,
computed as pyhf 0.7 does (see :mod:`hepprob.infer.asymptotics`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from hepprob._typing import Array, ArrayLike
from hepprob.errors import ParameterError
from hepprob.infer import asymptotics
from hepprob.infer.minimize import minimize_with_hessian, moving

__all__ = [
    "Hypotest",
    "argmin",
    "fit",
    "hypotest",
    "is_traced",
    "upper_limit",
]


def __dir__() -> list[str]:
    return __all__


# The fits whose minima are differentiated converge tighter than ordinary fits:
# the implicit derivative is exact only at the minimum (error ~ sqrt(EDM)).
TOL = 1e-14
MAX_ITER = 500
# bisection steps of a limit search, in log(mu): the bracket shrinks 2^-n
LIMIT_STEPS = 45


def is_traced(*values: Any) -> bool:
    """Whether any array leaf of ``values`` is a JAX tracer (inside grad/jit/vmap)."""
    leaves = jax.tree_util.tree_leaves(values)
    return any(isinstance(v, jax.core.Tracer) for v in leaves)


def argmin(
    objective: Callable[..., Array],
    x0: ArrayLike,
    lower: ArrayLike,
    upper: ArrayLike,
    fixed: ArrayLike | None,
    *args: Any,
    tol: float = TOL,
    max_iter: int = MAX_ITER,
) -> Array:
    """The bounded minimum of ``objective(x, *args)``, differentiable in ``args``.

    The forward pass is hepprob's bounded Newton minimiser; derivatives with
    respect to ``args``, to anything ``objective`` closes over (e.g. a model's
    templates), and to the values of the ``fixed`` entries of ``x0`` follow
    from the optimality condition, not from the iterations. Entries held at a
    bound by the gradient have zero derivative (the active set is locally
    constant). Works under ``jax.jit``, ``jax.vmap``, ``jax.grad`` and
    ``jax.jacobian``, to any order.

    Args:
        objective: scalar function of the flat vector ``x`` and ``args``.
        x0: start point; its ``fixed`` entries are the values they are held at.
        lower: lower bounds (``-inf`` allowed).
        upper: upper bounds.
        fixed: boolean mask of entries held at ``x0`` (``None``: none).
        *args: further inputs of ``objective`` (arrays or pytrees of arrays).
        tol: EDM tolerance of the forward minimisation.
        max_iter: iteration limit of the forward minimisation.

    Returns:
        The minimum ``x`` (same shape as ``x0``).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> f = lambda x, a: jnp.sum((x - a) ** 2)
        >>> g = jax.grad(lambda a: argmin(f, jnp.zeros(2), -1.0, 1.0, None, a)[0])
        >>> float(g(jnp.array([0.5, 2.0])))  # x0 follows a inside the box
        1.0
    """
    x0 = jnp.asarray(x0, dtype=jnp.float64)
    lower = jnp.broadcast_to(jnp.asarray(lower, dtype=jnp.float64), x0.shape)
    upper = jnp.broadcast_to(jnp.asarray(upper, dtype=jnp.float64), x0.shape)
    fixed = (
        jnp.zeros(x0.shape, bool)
        if fixed is None
        else jnp.broadcast_to(jnp.asarray(fixed, bool), x0.shape)
    )
    # values the objective closes over (traced templates, data) become explicit
    # inputs, so that the derivative rule sees them
    converted, consts = jax.closure_convert(
        lambda x, a: objective(x, *a), x0, tuple(args)
    )
    theta = (tuple(args), tuple(consts))
    return _argmin(converted, tol, max_iter, x0, lower, upper, fixed, theta)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0, 1, 2))
def _argmin(
    fun: Callable[..., Array],
    tol: float,
    max_iter: int,
    x0: Array,
    lower: Array,
    upper: Array,
    fixed: Array,
    theta: Any,
) -> Array:
    args, consts = theta
    res, _ = minimize_with_hessian(
        lambda x: fun(x, args, *consts),
        x0,
        lower,
        upper,
        fixed,
        tol=tol,
        max_iter=max_iter,
    )
    return res.x


@_argmin.defjvp
def _argmin_jvp(
    fun: Callable[..., Array],
    tol: float,
    max_iter: int,
    primals: tuple[Any, ...],
    tangents: tuple[Any, ...],
) -> tuple[Array, Array]:
    x0, lower, upper, fixed, theta = primals
    dx0, _, _, _, dtheta = tangents
    x = _argmin(fun, tol, max_iter, x0, lower, upper, fixed, theta)

    def grad_x(x_: Array, theta_: Any) -> Array:
        args, consts = theta_
        return jax.grad(lambda v: fun(v, args, *consts))(x_)

    # held entries move with their values; the others solve H dx = -(mixed term)
    dx_held = jnp.where(fixed, dx0, 0.0)
    g, mixed = jax.jvp(grad_x, (x, theta), (dx_held, dtheta))
    hess = jax.jacfwd(grad_x)(x, theta)
    move = moving(x, g, lower, upper, ~fixed)
    both = move[:, None] & move[None, :]
    eye = jnp.eye(x.shape[0], dtype=x.dtype)
    step = jnp.linalg.solve(jnp.where(both, hess, eye), jnp.where(move, mixed, 0.0))
    return x, jnp.where(move, -step, dx_held)


# --- generic models ------------------------------------------------------------------


class FitValues(NamedTuple):
    """Best-fit values and Hesse errors (flat vectors in ``par_names`` order)."""

    values: Array
    errors: Array


def fit(
    model: Callable[..., Any],
    *model_args: Any,
    fixed: Mapping[str, ArrayLike] | Sequence[str] | None = None,
    **model_kwargs: Any,
) -> FitValues:
    """Best-fit values and Hesse errors of a model, differentiable in its arguments.

    Args:
        model: a NumPyro model with ``hepprob.param`` sites.
        *model_args: its arguments; any of them may be traced (e.g. a shape
            parameter that is not fitted, or the data).
        fixed: parameters held constant: names (held at their ``init``) or
            ``{name: value}`` (values may be traced too).
        **model_kwargs: its keyword arguments.

    Returns:
        :class:`FitValues` with flat ``values`` and ``errors`` (0 for fixed
        entries) in the order of ``hepprob.infer.nll(model, ...).par_names``.

    Example:
        >>> import jax, numpy as np, numpyro, numpyro.distributions as nd, hepprob
        >>> def model(x, sigma):
        ...     mu = hepprob.param("mu", 0.0, -5.0, 5.0)
        ...     numpyro.sample("x", nd.Normal(mu, sigma), obs=x)
        >>> x = np.array([0.5, 1.5, 2.5, 3.5])
        >>> err = lambda s: fit(model, x, s).errors[0]   # sigma / sqrt(n)
        >>> round(float(jax.grad(err)(2.0)), 9)
        0.5
    """
    from hepprob.model import ModelStructure, log_likelihood

    structure = ModelStructure.from_model(model, *model_args, **model_kwargs)
    start = jnp.asarray(structure.init, dtype=jnp.float64)
    mask = np.zeros(start.shape, bool)
    if fixed is not None:
        values = fixed if isinstance(fixed, Mapping) else dict.fromkeys(fixed)
        for name, value in values.items():
            idx = _indices(structure, name)
            mask[idx] = True
            if value is not None:
                start = start.at[idx].set(
                    jnp.broadcast_to(jnp.asarray(value, jnp.float64), (len(idx),))
                )

    def nll(x: Array, args: Any, kwargs: Any) -> Array:
        return -log_likelihood(model, structure, args, kwargs)(x)

    x = argmin(
        nll,
        start,
        structure.lower,
        structure.upper,
        mask,
        tuple(model_args),
        dict(model_kwargs),
    )
    hess = jax.hessian(nll)(x, tuple(model_args), dict(model_kwargs))
    return FitValues(x, _hesse_errors(hess, jnp.asarray(mask)))


def _indices(structure: Any, name: str) -> list[int]:
    start = 0
    for p in structure.params:
        if p.name == name:
            return list(range(start, start + p.size))
        start += p.size
    msg = f"fit: unknown parameter {name!r} in fixed; known: {structure.names}"
    raise ParameterError(msg)


def _hesse_errors(hess: Array, fixed: Array) -> Array:
    """Square roots of the diagonal of the inverse free Hessian (0 where fixed)."""
    free = ~fixed
    eye = jnp.eye(hess.shape[0], dtype=hess.dtype)
    cov = jnp.linalg.inv(jnp.where(free[:, None] & free[None, :], hess, eye))
    var = jnp.where(free, jnp.diag(cov), 1.0)
    return jnp.where(free, jnp.sqrt(var), 0.0)


# --- HistFactory: CLs and limits --------------------------------------------------------


class Hypotest(NamedTuple):
    """Asymptotic test of one POI value: observed and expected p-values.

    ``cls``, ``clsb``, ``clb``: observed (for ``q0``, ``cls`` is the discovery
    p-value); ``cls_expected``: the band at :math:`-2\\ldots+2\\sigma` (lowest
    first, as pyhf); ``mu_hat`` and ``mu_hat_error``: the free fit's POI and
    its Hesse error.
    """

    cls: Array
    clsb: Array
    clb: Array
    cls_expected: Array
    mu_hat: Array
    mu_hat_error: Array


class _Settings(NamedTuple):
    """Start values, bounds and fixed flags of every fit (arrays: program inputs)."""

    init: Array
    lower: Array
    upper: Array
    fixed: Array
    arrays: Any  # the model's arrays (kernel input), or () for a closure


class _Stage(NamedTuple):
    """The POI-independent pieces: Asimov data and the free fits."""

    data: Array
    asimov: Array
    free_data: Array
    free_asimov: Array


class _Calculator:
    """The traceable fits and tails of one HistFactory model and test statistic."""

    def __init__(self, model: Any, test_stat: str) -> None:
        if _has_kernels(model):  # hepprob models: arrays are a program input
            logpdf, expected = model.logpdf_kernel(), model.expected_kernel()
            self._logpdf = logpdf
            self._expected = expected
        else:  # pyhf-like models: the program closes over the model
            pure = getattr(model, "logpdf_fn", None)
            closed = pure() if callable(pure) else model.logpdf
            self._logpdf = lambda pars, data, _: closed(pars, data)
            self._expected = lambda pars, _: model.expected_data(pars)
        self.test_stat = test_stat
        self.poi = int(model.config.poi_index)

    def twice_nll(self, pars: Array, data: Array, arrays: Any) -> Array:
        return -2.0 * jnp.sum(self._logpdf(pars, data, arrays))

    def fits(self, s: _Settings, mus: Array, free: Array, datas: Array) -> Array:
        """One batch of fits: row ``i`` fits ``datas[i]`` with the POI at
        ``mus[i]`` held fixed where ``~free[i]``."""

        init, held = jnp.asarray(s.init), jnp.asarray(s.fixed)

        def one(mu: Array, is_free: Array, data: Array) -> Array:
            x0 = jnp.where(is_free, init, init.at[self.poi].set(mu))
            fixed = held.at[self.poi].set(~is_free)
            return argmin(self.twice_nll, x0, s.lower, s.upper, fixed, data, s.arrays)

        return jax.vmap(one)(mus, free, datas)

    def stage(self, s: _Settings, data: Array) -> _Stage:
        mu_a = jnp.asarray(asymptotics.asimov_mu(self.test_stat), jnp.float64)
        two = jnp.stack([data, data])
        x = self.fits(s, jnp.stack([mu_a, mu_a]), jnp.array([False, True]), two)
        asimov = jnp.asarray(self._expected(x[0], s.arrays), dtype=jnp.float64)
        free_asimov = self.fits(s, mu_a[None], jnp.array([True]), asimov[None])[0]
        return _Stage(data, asimov, x[1], free_asimov)

    def tails(self, s: _Settings, st: _Stage, mu: Array) -> tuple[Array, ...]:
        """Observed (CLsb, CLb, CLs) and the expected band at ``mu``."""
        two = jnp.stack([st.data, st.asimov])
        cond = self.fits(s, jnp.stack([mu, mu]), jnp.array([False, False]), two)
        sq = self._sqrt_q(mu, cond[0], st.free_data, st.data, s.arrays)
        sq_a = self._sqrt_q(mu, cond[1], st.free_asimov, st.asimov, s.arrays)
        clsb, clb, cls = asymptotics.asymptotic_pvalues(sq, sq_a, self.test_stat)
        exp_sb, _, exp_s = asymptotics.expected_pvalues(sq_a)
        band = exp_sb if self.test_stat == "q0" else exp_s
        return clsb, clb, cls, band

    def _sqrt_q(
        self, mu: Array, cond: Array, free: Array, data: Array, arrays: Any
    ) -> Array:
        """sqrt of q_mu / q~_mu (0 where mu_hat > mu), or of q0 (0 where mu_hat < 0)."""
        t = self.twice_nll(cond, data, arrays) - self.twice_nll(free, data, arrays)
        mu_hat = free[self.poi]
        zero = mu_hat < mu if self.test_stat == "q0" else mu_hat > mu
        return _safe_sqrt(jnp.where(zero, 0.0, t))

    def hypotest(self, mu: Array, data: Array, s: _Settings) -> Hypotest:
        st = self.stage(s, data)
        clsb, clb, cls, band = self.tails(s, st, mu)
        hess = 0.5 * jax.hessian(self.twice_nll)(st.free_data, data, s.arrays)
        err = _hesse_errors(hess, s.fixed)[self.poi]
        observed = clsb if self.test_stat == "q0" else cls
        return Hypotest(observed, clsb, clb, band, st.free_data[self.poi], err)

    def limits(
        self, data: Array, s: _Settings, level: Array, lo: Array, hi: Array
    ) -> Array:
        """The six roots (observed, then the band) of CLs = level in [lo, hi]."""
        st = self.stage(s, data)

        def excess(mu: Array, theta: Any) -> Array:
            settings, stage, alpha = theta
            _, _, cls, band = self.tails(settings, stage, mu)
            return jnp.log(jnp.concatenate([cls[None], band])) - jnp.log(alpha)

        return _roots(excess, lo, hi, (s, st, level))


def _calculator(model: Any, test_stat: str) -> tuple[_Calculator, Any, Any]:
    """The model's calculator and its jitted hypotest and limit programs (cached)."""
    from hepprob._program_cache import cached

    def build() -> tuple[_Calculator, Any, Any]:
        calc = _Calculator(model, test_stat)
        return calc, jax.jit(calc.hypotest), jax.jit(calc.limits)

    if _has_kernels(model):  # one program per structure: patches share it
        owner = model.logpdf_kernel()
        return cached(("differentiable", owner, test_stat), build, owner=owner)
    return cached(("differentiable", model, test_stat), build)


def _has_kernels(model: Any) -> bool:
    return all(
        hasattr(model, name) for name in ("logpdf_kernel", "expected_kernel", "arrays")
    )


def _settings(
    model: Any,
    init_pars: Sequence[float] | None,
    par_bounds: Sequence[Sequence[float]] | None,
    fixed_params: Sequence[bool] | None,
    what: str,
    arrays: Any = None,
) -> _Settings:
    cfg = model.config
    if getattr(cfg, "poi_index", None) is None:
        msg = (
            f"{what}: the model has no parameter of interest (config.poi_index is None)"
        )
        raise ParameterError(msg)
    npars = int(cfg.npars)
    # host arrays: the checks below must not depend on traced values
    init = np.asarray(
        cfg.suggested_init() if init_pars is None else init_pars, dtype=np.float64
    )
    bounds = np.asarray(
        cfg.suggested_bounds() if par_bounds is None else par_bounds, dtype=np.float64
    )
    fixed = np.asarray(
        cfg.suggested_fixed() if fixed_params is None else fixed_params, dtype=bool
    )
    if init.shape != (npars,) or bounds.shape != (npars, 2) or fixed.shape != (npars,):
        msg = (
            f"{what}: init_pars, par_bounds and fixed_params need {npars} entries, got "
            f"shapes {init.shape}, {bounds.shape} and {fixed.shape}"
        )
        raise ParameterError(msg)
    if fixed[int(cfg.poi_index)]:
        msg = f"{what}: the POI is fixed (fixed_params); it must be free"
        raise ParameterError(msg)
    if arrays is None:
        arrays = model.arrays if _has_kernels(model) else ()
    elif not _has_kernels(model):
        msg = f"{what}: arrays= needs a hepprob HistFactory model (with model.arrays)"
        raise ParameterError(msg)
    elif jax.tree_util.tree_structure(arrays) != jax.tree_util.tree_structure(
        model.arrays
    ):
        msg = f"{what}: arrays must have the structure of model.arrays"
        raise ParameterError(msg)
    return _Settings(init, bounds[:, 0], bounds[:, 1], fixed, arrays)


def _safe_sqrt(q: Array) -> Array:
    """sqrt(max(q, 0)) with a finite derivative at q = 0 (where q is clipped)."""
    positive = q > 0.0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, q, 1.0)), 0.0)


def hypotest(
    poi_value: ArrayLike,
    data: ArrayLike,
    model: Any,
    init_pars: Sequence[float] | None = None,
    par_bounds: Sequence[Sequence[float]] | None = None,
    fixed_params: Sequence[bool] | None = None,
    *,
    test_stat: str = "qtilde",
    arrays: Any = None,
) -> Hypotest:
    """Asymptotic CLs of a HistFactory model as a pure, differentiable JAX function.

    The same test as ``hepprob.infer.hypotest(..., calctype="asymptotic")``
    (pyhf 0.7's asymptotic calculator): the Asimov dataset from the nuisances
    profiled at POI 0 (1 for ``q0``), free and fixed-POI fits on data and
    Asimov data. Every fit is :func:`argmin`, so ``jax.grad``/``jax.jacobian``
    of any output with respect to ``data``, ``poi_value`` or the arrays the
    model was built from (template yields, modifier data) is exact up to the
    fit tolerance. One compiled program per model and test statistic.

    Args:
        poi_value: tested POI value (ignored for ``q0``).
        data: main + auxiliary data.
        model: a HistFactory ``Model`` (its arrays may be traced).
        init_pars, par_bounds, fixed_params: fit settings (default: the model's).
        test_stat: ``"qtilde"``, ``"q"`` or ``"q0"``.
        arrays: the model's arrays to use instead of ``model.arrays`` (same
            structure): differentiate with respect to template yields and
            modifier data through them, e.g. ``arrays["nominal"]``.

    Returns:
        A :class:`Hypotest`.

    Example:
        >>> import jax, hepprob  # doctest: +SKIP
        >>> dcls = jax.grad(lambda d: hypotest(1.0, d, model).cls)(data)  # doctest: +SKIP
    """
    asymptotics._check_test_stat(test_stat)
    s = _settings(model, init_pars, par_bounds, fixed_params, "hypotest", arrays)
    _, program, _ = _calculator(model, test_stat)
    mu = jnp.asarray(0.0 if test_stat == "q0" else poi_value, dtype=jnp.float64)
    return program(mu, jnp.asarray(data, dtype=jnp.float64), s)


def upper_limit(
    data: ArrayLike,
    model: Any,
    level: float = 0.05,
    init_pars: Sequence[float] | None = None,
    par_bounds: Sequence[Sequence[float]] | None = None,
    fixed_params: Sequence[bool] | None = None,
    *,
    test_stat: str = "qtilde",
    bracket: tuple[float, float] | None = None,
    arrays: Any = None,
) -> tuple[Array, Array]:
    """Observed and expected (-2..+2 sigma) CLs upper limits, differentiable.

    Each limit is the root of :math:`\\mathrm{CL}_s(\\mu) = \\alpha`, found by
    bisection in :math:`\\log\\mu` inside ``bracket`` (default: from 1e-3 of the
    POI's upper bound to the bound) and differentiated by the implicit function
    theorem: :math:`d\\mu^*/d\\theta = -(\\partial \\mathrm{CL}_s/\\partial\\theta)
    / (\\partial \\mathrm{CL}_s/\\partial\\mu)`. ``arrays`` as in :func:`hypotest`.

    Returns:
        ``(observed, expected)`` with ``expected`` of shape ``(5,)``, lowest
        first (as ``hepprob.infer.upper_limit``).
    """
    if test_stat not in ("qtilde", "q"):
        msg = f"upper_limit: test_stat must be 'qtilde' or 'q', got {test_stat!r}"
        raise ParameterError(msg)
    if not 0.0 < float(level) < 1.0:
        msg = f"upper_limit: level must lie in (0, 1), got {level!r}"
        raise ParameterError(msg)
    s = _settings(model, init_pars, par_bounds, fixed_params, "upper_limit", arrays)
    hi = float(s.upper[model.config.poi_index]) if bracket is None else bracket[1]
    lo = 1e-3 * hi if bracket is None else bracket[0]
    if not 0.0 < float(lo) < float(hi) < np.inf:
        msg = f"upper_limit: need a finite bracket 0 < low < high, got ({lo}, {hi})"
        raise ParameterError(msg)
    _, _, program = _calculator(model, test_stat)
    roots = program(
        jnp.asarray(data, dtype=jnp.float64),
        s,
        jnp.asarray(level, jnp.float64),
        jnp.asarray(lo, jnp.float64),
        jnp.asarray(hi, jnp.float64),
    )
    return roots[0], roots[1:]


def _roots(
    fun: Callable[[Array, Any], Array], lo: Array, hi: Array, theta: Any
) -> Array:
    """Roots in ``mu`` of each entry of ``fun(mu, theta)`` (decreasing in mu), differentiable."""
    converted, consts = jax.closure_convert(fun, lo, theta)
    return _bisect(converted, lo, hi, (theta, tuple(consts)))


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _bisect(fun: Callable[..., Array], lo: Array, hi: Array, theta: Any) -> Array:
    """Vectorised bisection in log(mu); every entry keeps its own bracket."""
    inner, consts = theta
    k = jax.eval_shape(lambda: fun(lo, inner, *consts)).shape[0]

    def step(_: Any, bracket: tuple[Array, Array]) -> tuple[Array, Array]:
        a, b = bracket
        mid = 0.5 * (a + b)
        values = jax.vmap(lambda m, i: fun(jnp.exp(m), inner, *consts)[i])(
            mid, jnp.arange(k)
        )
        above = values > 0.0  # CLs still above the level: the root is higher
        return jnp.where(above, mid, a), jnp.where(above, b, mid)

    start = (jnp.full(k, jnp.log(lo)), jnp.full(k, jnp.log(hi)))
    a, b = jax.lax.fori_loop(0, LIMIT_STEPS, step, start)
    return jnp.exp(0.5 * (a + b))


@_bisect.defjvp
def _bisect_jvp(
    fun: Callable[..., Array], primals: tuple[Any, ...], tangents: tuple[Any, ...]
) -> tuple[Array, Array]:
    lo, hi, theta = primals
    dtheta = tangents[2]
    mu = _bisect(fun, lo, hi, theta)
    k = mu.shape[0]

    def h(m: Array, i: Array, th: Any) -> Array:
        inner, consts = th
        return fun(m, inner, *consts)[i]

    def one(m: Array, i: Array) -> Array:
        dh_dmu = jax.grad(h)(m, i, theta)
        _, dh = jax.jvp(lambda th: h(m, i, th), (theta,), (dtheta,))
        return -dh / dh_dmu

    return mu, jax.vmap(one)(mu, jnp.arange(k))
