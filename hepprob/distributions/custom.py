"""User-defined densities written in ``jax.numpy``, normalised numerically on a box."""

from __future__ import annotations

import functools
import inspect
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.distributions import Distribution, constraints
from numpyro.distributions.util import promote_shapes

from hepprob._typing import Array, ArrayLike, PRNGKey
from hepprob.distributions._checks import check, is_concrete
from hepprob.distributions._quadrature import gauss_legendre
from hepprob.errors import DataError, HepprobWarning, ParameterError

__all__ = ["CustomPDF", "from_function"]

# default (Gauss-Legendre order, panels per axis, envelope cells per axis) by dimension
_DEFAULTS = {1: (32, 8, 256), 2: (24, 2, 32), 3: (16, 2, 12)}
_DEFAULTS_HIGH = (8, 1, 4)
_MAX_ROUNDS = 1000  # accept-reject rounds before giving up (then NaN + warning)
_CONVERGENCE_RTOL = 1e-9  # normaliser change on doubling the panels that warns


class CustomPDF(Distribution):
    r"""A user's unnormalised density, normalised numerically on a box.

    .. math::

        p(x \mid \theta) = \frac{f(x; \theta)}{\int_{\text{box}} f(y; \theta)\,dy},
        \qquad x \in [\text{low}, \text{high}]

    The integral is a tensor-product composite Gauss-Legendre rule (Abramowitz &
    Stegun 25.4.29) with ``order`` nodes on each of ``panels`` equal panels per
    axis, so it is exact for polynomials of degree ``2*order - 1`` per panel and
    differentiable with respect to the parameters (fits and NUTS work). With
    ``cluster_ends`` (per axis) the nodes are pulled towards the box edges by the
    substitution :math:`x = (3u - u^3)/2`, which restores fast convergence for
    square-root edge behaviour such as :math:`\sin\theta = \sqrt{1-\cos^2\theta}`
    in angular densities. Raise ``order``/``panels`` for sharply peaked shapes
    (with ``check_convergence``, the default, the first normaliser computed from
    concrete parameters is recomputed with twice the panels and a
    :class:`~hepprob.errors.HepprobWarning` says when it moved by more than
    ``1e-9`` relative). This is
    the zfit/RooFit "custom PDF" idea: write the shape, the library normalises it.

    Sampling is exact accept-reject from a piecewise-constant envelope: the box is
    cut into ``envelope_cells`` cells per axis and each cell's bound is ``safety``
    times the largest value of ``f`` on the cell's corners, edge and face
    midpoints and centre. **Assumption:** ``f`` exceeds that lattice maximum
    within a cell by less than the factor ``safety`` (true for any shape that
    varies slowly on the cell scale). When a draw shows the bound was exceeded, a
    :class:`~hepprob.errors.HepprobWarning` is issued (outside ``jit``); raise
    ``safety`` or ``envelope_cells`` then.

    Do not instantiate ``CustomPDF`` itself: build a class with
    :func:`from_function`, or subclass it with a static method ``density(x,
    **params)`` and class attributes ``low`` and ``high`` (plus the optional
    ``order``, ``panels``, ``cluster_ends``, ``envelope_cells``, ``safety``,
    ``log_density``,
    ``param_constraints``, ``param_names``). The class's instances take the
    density's parameters (positionally or by name); parameters broadcast as batch
    dimensions.

    Reference: zfit ``CustomPDF``/``ZPDF`` and RooFit ``RooGenericPdf`` (numeric
    normalisation on the observable range).

    Example:
        >>> Shape = from_function(lambda x, a: 1.0 + a * x**2, low=-1.0, high=1.0)
        >>> round(float(jnp.exp(Shape(a=0.0).log_prob(0.3))), 12)
        0.5
    """

    # --- configuration that subclasses (or from_function) set -------------------
    low: ClassVar[Any] = None
    high: ClassVar[Any] = None
    order: ClassVar[int | None] = None
    panels: ClassVar[int | None] = None
    envelope_cells: ClassVar[int | None] = None
    safety: ClassVar[float] = 1.5
    cluster_ends: ClassVar[bool | Sequence[bool]] = False
    check_convergence: ClassVar[bool] = True
    log_density: ClassVar[bool] = False
    param_names: ClassVar[tuple[str, ...] | None] = None
    param_constraints: ClassVar[Mapping[str, Any]] = {}

    # --- derived, set once per subclass by _setup --------------------------------
    _hp_ready: ClassVar[bool] = False
    _hp_fn: ClassVar[Callable[..., Any]]
    _hp_names: ClassVar[tuple[str, ...]] = ()
    _hp_defaults: ClassVar[dict[str, Any]] = {}
    _hp_dim: ClassVar[int] = 1
    _hp_vector: ClassVar[bool] = False
    _hp_lo: ClassVar[np.ndarray]
    _hp_hi: ClassVar[np.ndarray]
    _hp_nodes: ClassVar[np.ndarray]
    _hp_weights: ClassVar[np.ndarray]
    _hp_fine: ClassVar[tuple[np.ndarray, np.ndarray]]  # twice the panels: a check
    _hp_cells: ClassVar[int]
    _hp_sampler: ClassVar[Callable[..., Any]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "density" in cls.__dict__:
            _setup(cls)

    @staticmethod
    def density(x: Array, **params: Array) -> Array:
        """The unnormalised density ``f(x; params)`` (subclasses define it)."""
        msg = "CustomPDF.density: a subclass must define density(x, **params)"
        raise NotImplementedError(msg)

    def __init__(
        self, *args: ArrayLike, validate_args: bool | None = None, **params: ArrayLike
    ) -> None:
        cls = type(self)
        if not cls._hp_ready:
            msg = (
                f"{cls.__name__} has no density: build a class with "
                "hepprob.dist.from_function(fn, low, high), or subclass CustomPDF "
                "with a static method density(x, **params) and low/high"
            )
            raise ParameterError(msg)
        values = _bind(cls, args, params)
        for name, value in values.items():
            constraint = cls.arg_constraints[name]
            if constraint is constraints.real:
                check(cls.__name__, name, value, np.isfinite, "finite")
            else:
                check(
                    cls.__name__,
                    name,
                    value,
                    _as_predicate(constraint),
                    str(constraint),
                )
        arrays = promote_shapes(
            *[jnp.asarray(v, dtype=jnp.float64) for v in values.values()]
        )
        for name, value in zip(values, arrays, strict=True):
            setattr(self, name, value)
        batch_shape = jax.lax.broadcast_shapes(*[jnp.shape(a) for a in arrays], ())
        event_shape = (cls._hp_dim,) if cls._hp_vector else ()
        super().__init__(batch_shape, event_shape, validate_args=validate_args)

    # --- public methods ----------------------------------------------------------
    @property
    def params(self) -> dict[str, Array]:
        """The density's parameters, ``{name: value}``."""
        return {name: getattr(self, name) for name in self._hp_names}

    @property
    def log_normalizer(self) -> Array:
        """``log`` of the integral of ``f`` over the box (batch-shaped).

        Cached on the instance once computed from concrete parameters (a value
        computed under ``jit`` is never cached, so no tracer can leak).
        """
        cached = self.__dict__.get("_hp_log_norm")
        if cached is not None:
            return cached
        value = self._log_integral(self._hp_lo, self._hp_hi)
        if is_concrete(value):
            self._check_normaliser(value)
            self.__dict__["_hp_log_norm"] = value
        return value

    def log_prob(self, value: ArrayLike, intermediates: Any = None) -> Array:
        """Normalised log-density; ``-inf`` outside the box."""
        x = self._as_events(value, "log_prob")
        inside = self._inside(x)
        centre = jnp.asarray(0.5 * (self._hp_lo + self._hp_hi))
        if self._hp_vector:
            x_safe = jnp.where(inside[..., None], x, centre)
        else:
            x_safe = jnp.where(inside, x, centre[0])
        lf = self._log_f(x_safe, self.params)
        return jnp.where(inside, lf - self.log_normalizer, -jnp.inf)

    def integral(self, a: ArrayLike, b: ArrayLike) -> Array:
        """Probability mass of the box ``[a, b]`` (clipped to the range), numerically.

        ``a`` and ``b`` are scalars in 1-D and length-``d`` vectors in ``d``
        dimensions; leading axes broadcast with the batch shape.
        """
        a = self._as_events(a, "integral")
        b = self._as_events(b, "integral")
        if not self._hp_vector:
            a, b = a[..., None], b[..., None]
        a, b = jnp.broadcast_arrays(a, b)
        a = jnp.clip(a, self._hp_lo, self._hp_hi)
        b = jnp.clip(b, self._hp_lo, self._hp_hi)
        empty = jnp.any(b <= a, axis=-1)
        # double where: a degenerate box is swapped for the full box, then mass 0
        a_safe = jnp.where(empty[..., None], self._hp_lo, a)
        b_safe = jnp.where(empty[..., None], self._hp_hi, b)
        mass = jnp.exp(self._log_integral(a_safe, b_safe) - self.log_normalizer)
        return jnp.where(empty, 0.0, mass)

    def cdf(self, value: ArrayLike) -> Array:
        """Cumulative distribution: mass of ``[low, value]`` (joint CDF in n-D)."""
        low = self._hp_lo if self._hp_vector else self._hp_lo[0]
        return self.integral(jnp.asarray(low), value)

    @property
    def mean(self) -> Array:
        """Mean of the observables, by the same quadrature as the normaliser."""
        return self._moment(1)

    @property
    def variance(self) -> Array:
        """Variance of each observable, by quadrature."""
        m1 = self._moment(1)
        return self._moment(2) - m1**2

    def sample(self, key: PRNGKey, sample_shape: tuple[int, ...] = ()) -> Array:
        """Exact accept-reject draws inside the box (see the class docstring).

        Returns an array of shape ``sample_shape + batch_shape + event_shape``.
        """
        sample_shape = tuple(sample_shape)
        n = math.prod(sample_shape)
        batch = self.batch_shape
        k = math.prod(batch)
        flat = {
            name: jnp.reshape(jnp.broadcast_to(v, batch), (k,))
            for name, v in self.params.items()
        }
        draws, count, worst = self._hp_sampler(key, flat, n=n, k=k)
        _warn_sampling(type(self).__name__, count, worst, n)
        draws = jnp.moveaxis(draws, 0, 1)  # (n, k, d)
        ev = (self._hp_dim,) if self._hp_vector else ()
        return jnp.reshape(draws, sample_shape + batch + ev)

    # --- private helpers ------------------------------------------------------------
    def _as_events(self, value: ArrayLike, where: str) -> Array:
        x = jnp.asarray(value, dtype=jnp.float64)
        if self._hp_vector and (x.ndim == 0 or x.shape[-1] != self._hp_dim):
            msg = (
                f"{type(self).__name__}.{where}: value must have a last axis of length "
                f"{self._hp_dim} (one entry per observable), got shape {x.shape}"
            )
            raise DataError(msg)
        return x

    def _inside(self, x: Array) -> Array:
        if self._hp_vector:
            ok = (x >= self._hp_lo) & (x <= self._hp_hi)
            return jnp.all(ok, axis=-1)
        return (x >= self._hp_lo[0]) & (x <= self._hp_hi[0])

    def _log_f(self, x: Array, params: Mapping[str, Array]) -> Array:
        out = type(self)._hp_fn(x, **params)
        return out if self.log_density else jnp.log(out)

    def _check_normaliser(self, value: Array) -> None:
        """Concrete parameters: a finite normaliser, and a converged one (warning)."""
        owner = type(self).__name__
        arr = np.asarray(value)
        if not np.all(np.isfinite(arr)):
            msg = (
                f"{owner}: the integral of the density over the box is not a positive "
                f"finite number (log integral {arr}) for parameters "
                f"{ {k: np.asarray(v).tolist() for k, v in self.params.items()} }; "
                "the density must be >= 0 and not zero everywhere"
            )
            raise ParameterError(msg)
        if not self.check_convergence:
            return
        fine = np.asarray(self._log_integral(self._hp_lo, self._hp_hi, fine=True))
        diff = float(np.max(np.abs(np.expm1(fine - arr))))
        if diff > _CONVERGENCE_RTOL:
            msg = (
                f"{owner}: the numerical normalisation is not converged (relative "
                f"change {diff:.2g} when the panels are doubled); raise order or "
                "panels, or use cluster_ends for square-root edges"
            )
            warnings.warn(msg, HepprobWarning, stacklevel=4)

    def _quad_points(
        self, a: Array, b: Array, *, fine: bool = False
    ) -> tuple[Array, Array]:
        """Tensor-product rule on boxes ``[a, b]`` of shape ``(*box, d)``.

        Returns points ``(M, *box, d)`` and log weights ``(M, *box)`` including
        the Jacobian of the map from ``[-1, 1]^d``.
        """
        cls = type(self)
        t, w = cls._hp_fine if fine else (cls._hp_nodes, cls._hp_weights)
        a, b = jnp.broadcast_arrays(jnp.asarray(a), jnp.asarray(b))
        mid, half = 0.5 * (a + b), 0.5 * (b - a)
        shape = (t.shape[0],) + (1,) * (a.ndim - 1) + (self._hp_dim,)
        pts = mid + half * jnp.reshape(t, shape)
        log_w = jnp.reshape(jnp.log(w), shape[:-1]) + jnp.sum(jnp.log(half), axis=-1)
        return pts, log_w

    def _raw(self, pts: Array, log_w: Array) -> tuple[Array, Array]:
        """``fn`` at points ``(M, *box, d)``, broadcast with the batch shape.

        Returns ``fn`` values and log weights, both ``(M, *broadcast(box, batch))``.
        """
        nb = len(self.batch_shape)
        box = pts.shape[1:-1]
        lead = (pts.shape[0],) + (1,) * max(nb - len(box), 0) + box
        pts = jnp.reshape(pts, (*lead, self._hp_dim))
        log_w = jnp.reshape(log_w, lead)
        out = type(self)._hp_fn(pts if self._hp_vector else pts[..., 0], **self.params)
        expected = jax.lax.broadcast_shapes(lead, self.batch_shape)
        try:
            out = jnp.broadcast_to(out, expected)
        except ValueError:
            msg = (
                f"{type(self).__name__}: the density must broadcast over events and "
                f"parameters; for events of shape {pts.shape if self._hp_vector else lead}"
                f" it returned shape {jnp.shape(out)}, expected {expected}"
            )
            raise ParameterError(msg) from None
        return out, jnp.broadcast_to(log_w, expected)

    def _log_integral(self, a: ArrayLike, b: ArrayLike, *, fine: bool = False) -> Array:
        """``log`` of the integral of ``f`` over ``[a, b]``, batch-broadcast."""
        pts = self._quad_points(jnp.asarray(a), jnp.asarray(b), fine=fine)
        out, log_w = self._raw(*pts)
        if self.log_density:
            return jax.nn.logsumexp(out + log_w, axis=0)
        # a plain weighted sum keeps gradients finite where f vanishes at a node
        return jnp.log(jnp.sum(jnp.exp(log_w) * out, axis=0))

    def _moment(self, power: int) -> Array:
        pts, log_w = self._quad_points(self._hp_lo, self._hp_hi)
        out, log_w = self._raw(pts, log_w)
        lf = out if self.log_density else jnp.log(out)
        prob = jnp.exp(log_w + lf - self.log_normalizer)  # (M, *batch)
        xs = jnp.reshape(
            pts, (pts.shape[0],) + (1,) * (prob.ndim - 1) + (self._hp_dim,)
        )
        result = jnp.sum(prob[..., None] * xs**power, axis=0)
        return result if self._hp_vector else result[..., 0]


def from_function(
    fn: Callable[..., Any],
    low: ArrayLike,
    high: ArrayLike,
    *,
    params: Sequence[str] | None = None,
    param_constraints: Mapping[str, Any] | None = None,
    order: int | None = None,
    panels: int | None = None,
    envelope_cells: int | None = None,
    safety: float = 1.5,
    cluster_ends: bool | Sequence[bool] = False,
    check_convergence: bool = True,
    log_density: bool = False,
    name: str | None = None,
) -> type[CustomPDF]:
    r"""Turn an unnormalised density written in ``jax.numpy`` into a distribution class.

    ``fn(x, **params)`` returns :math:`f(x;\theta) \ge 0` (or :math:`\log f` with
    ``log_density=True``). In 1-D (``low``, ``high`` scalars) ``x`` is an array of
    events; in ``d`` dimensions (``low``, ``high`` length-``d`` sequences) ``x`` has
    shape ``(..., d)`` and ``fn`` reads ``x[..., 0]`` etc. ``fn`` must broadcast
    like any ``jax.numpy`` expression: parameters arrive as arrays that broadcast
    against the events.

    Args:
        fn: the density; its arguments after the first are the parameter names.
        low: lower edge(s) of the observable box.
        high: upper edge(s) of the observable box.
        params: parameter names, when ``fn`` takes ``**kwargs``.
        param_constraints: NumPyro constraints per parameter (default: real).
        order: Gauss-Legendre nodes per panel (default 32/24/16/8 in 1/2/3/more-D).
        panels: equal panels per axis (default 8/2/2/1).
        envelope_cells: accept-reject envelope cells per axis (default 256/32/12/4).
        safety: factor on each cell's lattice maximum (see :class:`CustomPDF`).
        cluster_ends: per axis (or one bool for all), cluster the nodes at the
            box edges (see :class:`CustomPDF`); use it for square-root edges
            such as :math:`\sin\theta = \sqrt{1-\cos^2\theta}`.
        check_convergence: when the normaliser is first computed from concrete
            parameters, recompute it with twice the panels and warn
            (``HepprobWarning``) if it moves by more than ``1e-9`` relative.
        log_density: ``fn`` returns ``log f`` instead of ``f``.
        name: class name (default: ``fn.__name__``).

    Returns:
        A :class:`CustomPDF` subclass; instantiate it with the parameter values.

    Raises:
        ParameterError: a bad box, rule setting or ``fn`` signature.

    Example:
        >>> Angular = from_function(lambda c, a: 1 + a * c, low=-1.0, high=1.0)
        >>> Angular(a=0.5).batch_shape
        ()
    """
    cls_name = name or getattr(fn, "__name__", "CustomPDF")
    if not cls_name.isidentifier():
        cls_name = "CustomPDF"
    if not callable(fn):
        msg = f"from_function: fn must be callable, got {type(fn).__name__}"
        raise ParameterError(msg)
    namespace = {
        "density": staticmethod(fn),
        "low": low,
        "high": high,
        "order": order,
        "panels": panels,
        "envelope_cells": envelope_cells,
        "safety": safety,
        "cluster_ends": cluster_ends,
        "check_convergence": check_convergence,
        "log_density": log_density,
        "param_names": None if params is None else tuple(params),
        "param_constraints": dict(param_constraints or {}),
        "__doc__": f"Custom density {cls_name} (built by hepprob.dist.from_function).",
        "__module__": getattr(fn, "__module__", __name__) or __name__,
    }
    return type(cls_name, (CustomPDF,), namespace)


# --- class set-up -------------------------------------------------------------------


def _setup(cls: type[CustomPDF]) -> None:
    """Read the density's signature and the box; build the rules once (NumPy)."""
    owner = cls.__name__
    raw = cls.__dict__["density"]
    fn = raw.__func__ if isinstance(raw, staticmethod) else raw
    if not callable(fn):
        msg = f"{owner}: density must be callable, got {type(fn).__name__}"
        raise ParameterError(msg)
    names, defaults = _signature(owner, fn, cls.param_names)
    reserved = {n for n in names if hasattr(CustomPDF, n) or n.startswith("_")}
    if reserved:
        msg = (
            f"{owner}: parameter name(s) {sorted(reserved)} clash with attributes of "
            "the distribution; rename them in the density"
        )
        raise ParameterError(msg)
    unknown = set(cls.param_constraints) - set(names)
    if unknown:
        msg = f"{owner}: param_constraints names {sorted(unknown)} are not parameters {names}"
        raise ParameterError(msg)

    lo, hi, vector = _box(owner, cls.low, cls.high)
    dim = lo.size
    d_order, d_panels, d_cells = _DEFAULTS.get(dim, _DEFAULTS_HIGH)
    order = _positive_int(owner, "order", cls.order, d_order)
    panels = _positive_int(owner, "panels", cls.panels, d_panels)
    cells = _positive_int(owner, "envelope_cells", cls.envelope_cells, d_cells)
    safety = float(cls.safety)
    if not (np.isfinite(safety) and safety >= 1.0):
        msg = f"{owner}: safety must be a finite number >= 1, got safety={cls.safety}"
        raise ParameterError(msg)

    cluster = _cluster_flags(owner, cls.cluster_ends, dim)
    cls._hp_nodes, cls._hp_weights = _product_rule(order, panels, cluster)
    cls._hp_fine = _product_rule(order, 2 * panels, cluster)
    cls._hp_fn = staticmethod(fn)
    cls._hp_names = tuple(names)
    cls._hp_defaults = defaults
    cls._hp_dim = dim
    cls._hp_vector = vector
    cls._hp_lo, cls._hp_hi = lo, hi
    cls._hp_cells = cells
    cls.safety = safety
    cls.arg_constraints = {
        n: cls.param_constraints.get(n, constraints.real) for n in names
    }
    cls.pytree_data_fields = tuple(names)
    if vector:
        cls.support = constraints.independent(constraints.interval(lo, hi), 1)
    else:
        cls.support = constraints.interval(float(lo[0]), float(hi[0]))
    cls._hp_sampler = staticmethod(
        jax.jit(functools.partial(_sample_columns, cls), static_argnames=("n", "k"))
    )
    cls._hp_ready = True


def _signature(
    owner: str, fn: Callable[..., Any], explicit: Sequence[str] | None
) -> tuple[list[str], dict[str, Any]]:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        sig = None
    if explicit is not None:
        names = [str(n) for n in explicit]
        if len(set(names)) != len(names) or not all(n.isidentifier() for n in names):
            msg = f"{owner}: params must be distinct identifiers, got {list(explicit)}"
            raise ParameterError(msg)
        return names, {}
    if sig is None:
        msg = f"{owner}: cannot read the signature of the density; pass params=[...]"
        raise ParameterError(msg)
    plist = list(sig.parameters.values())
    kinds = inspect.Parameter
    if not plist or plist[0].kind not in (
        kinds.POSITIONAL_ONLY,
        kinds.POSITIONAL_OR_KEYWORD,
    ):
        msg = f"{owner}: the density must take the events x as its first argument, got {sig}"
        raise ParameterError(msg)
    names, defaults = [], {}
    for p in plist[1:]:
        if p.kind in (kinds.VAR_POSITIONAL, kinds.VAR_KEYWORD):
            msg = (
                f"{owner}: the density has *args/**kwargs ({sig}); name its parameters "
                "with params=[...]"
            )
            raise ParameterError(msg)
        if p.kind is kinds.POSITIONAL_ONLY:
            msg = f"{owner}: parameter {p.name!r} of the density is positional-only"
            raise ParameterError(msg)
        names.append(p.name)
        if p.default is not inspect.Parameter.empty:
            defaults[p.name] = p.default
    return names, defaults


def _box(owner: str, low: Any, high: Any) -> tuple[np.ndarray, np.ndarray, bool]:
    if low is None or high is None:
        msg = (
            f"{owner}: give the observable box low and high, got low={low}, high={high}"
        )
        raise ParameterError(msg)
    if not (is_concrete(low) and is_concrete(high)):
        msg = f"{owner}: low and high must be concrete numbers (not traced values)"
        raise ParameterError(msg)
    try:
        lo = np.asarray(low, dtype=np.float64)
        hi = np.asarray(high, dtype=np.float64)
    except (TypeError, ValueError):
        msg = (
            f"{owner}: low and high must be numbers or sequences, got {low!r}, {high!r}"
        )
        raise ParameterError(msg) from None
    if lo.shape != hi.shape or lo.ndim > 1 or lo.size == 0:
        msg = (
            f"{owner}: low and high must be two scalars (1-D) or two sequences of one "
            f"length d, got shapes {lo.shape} and {hi.shape}"
        )
        raise ParameterError(msg)
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.all(lo < hi)):
        msg = f"{owner}: the box needs finite low < high, got low={low}, high={high}"
        raise ParameterError(msg)
    return np.atleast_1d(lo), np.atleast_1d(hi), lo.ndim == 1


def _positive_int(owner: str, name: str, value: Any, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        msg = f"{owner}: {name} must be a positive integer, got {name}={value!r}"
        raise ParameterError(msg)
    return int(value)


def _bind(
    cls: type[CustomPDF], args: tuple[Any, ...], params: dict[str, Any]
) -> dict[str, Any]:
    names = cls._hp_names
    owner = cls.__name__
    if len(args) > len(names):
        msg = f"{owner}: takes parameters {list(names)}, got {len(args)} positional values"
        raise ParameterError(msg)
    values = dict(zip(names, args, strict=False))
    for name, value in params.items():
        if name not in names:
            msg = (
                f"{owner}: unknown parameter {name!r}; the parameters are {list(names)}"
            )
            raise ParameterError(msg)
        if name in values:
            msg = f"{owner}: parameter {name!r} given twice"
            raise ParameterError(msg)
        values[name] = value
    missing = [n for n in names if n not in values and n not in cls._hp_defaults]
    if missing:
        msg = (
            f"{owner}: missing parameter(s) {missing}; the parameters are {list(names)}"
        )
        raise ParameterError(msg)
    return {n: values.get(n, cls._hp_defaults.get(n)) for n in names}


def _as_predicate(constraint: Any) -> Callable[[np.ndarray], np.ndarray]:
    def ok(value: np.ndarray) -> np.ndarray:
        with jax.ensure_compile_time_eval():
            return np.asarray(constraint(jnp.asarray(value)))

    return ok


def _cluster_flags(owner: str, value: Any, dim: int) -> list[bool]:
    if isinstance(value, (bool, np.bool_)):
        return [bool(value)] * dim
    flags = list(value) if isinstance(value, Sequence) else None
    if (
        flags is None
        or len(flags) != dim
        or not all(isinstance(f, (bool, np.bool_)) for f in flags)
    ):
        msg = (
            f"{owner}: cluster_ends must be a bool or {dim} bools (one per axis), "
            f"got cluster_ends={value!r}"
        )
        raise ParameterError(msg)
    return [bool(f) for f in flags]


def _product_rule(
    order: int, panels: int, cluster: list[bool]
) -> tuple[np.ndarray, np.ndarray]:
    """Tensor-product nodes ``(M, d)`` on ``[-1, 1]^d`` and weights ``(M,)``."""
    rules = [_composite_legendre(order, panels, ends=c) for c in cluster]
    grids = np.meshgrid(*[r[0] for r in rules], indexing="ij")
    wgrids = np.meshgrid(*[r[1] for r in rules], indexing="ij")
    nodes = np.stack([g.ravel() for g in grids], axis=-1)
    weights = np.prod(np.stack([g.ravel() for g in wgrids], axis=-1), axis=-1)
    return nodes, weights


def _composite_legendre(
    order: int, panels: int, *, ends: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    r"""Composite Gauss-Legendre nodes and weights on [-1, 1] (weights sum to 2).

    With ``ends``, the substitution :math:`x = (3u - u^3)/2` (whose derivative
    vanishes at :math:`u = \pm 1`) clusters the nodes at the ends: a
    :math:`\sqrt{1 - x}` end behaviour becomes analytic in :math:`u`, so the rule
    converges exponentially again (the classic polynomial substitution for end
    singularities; Davis & Rabinowitz, *Methods of Numerical Integration*, 1984).
    """
    x, w = gauss_legendre(order)
    edges = np.linspace(-1.0, 1.0, panels + 1)
    mids, halves = 0.5 * (edges[1:] + edges[:-1]), 0.5 * (edges[1:] - edges[:-1])
    nodes = (mids[:, None] + halves[:, None] * x[None, :]).ravel()
    weights = (halves[:, None] * w[None, :]).ravel()
    if ends:
        nodes, weights = (
            0.5 * (3.0 * nodes - nodes**3),
            weights * 1.5 * (1.0 - nodes**2),
        )
    return nodes, weights


# --- sampling ------------------------------------------------------------------------


def _sample_columns(
    cls: type[CustomPDF], key: PRNGKey, flat: dict[str, Array], *, n: int, k: int
) -> tuple[Array, Array, Array]:
    """Accept-reject ``n`` draws for each of ``k`` parameter sets (vmapped)."""
    keys = jax.random.split(key, k)
    one = functools.partial(_sample_one, cls, n=n)
    return jax.vmap(one)(keys, flat)


def _sample_one(
    cls: type[CustomPDF], key: PRNGKey, params: dict[str, Array], *, n: int
) -> tuple[Array, Array, Array]:
    dim, m = cls._hp_dim, cls._hp_cells
    lo, hi = jnp.asarray(cls._hp_lo), jnp.asarray(cls._hp_hi)
    width = (hi - lo) / m

    def log_f(x: Array) -> Array:  # x (..., d)
        out = cls._hp_fn(x if cls._hp_vector else x[..., 0], **params)
        out = out if cls.log_density else jnp.log(out)
        return jnp.where(jnp.isnan(out), -jnp.inf, out)

    # envelope: max of f over each cell's 3^d lattice (corners, midpoints, centre)
    axis = [np.linspace(cls._hp_lo[i], cls._hp_hi[i], 2 * m + 1) for i in range(dim)]
    lattice = np.stack([g.ravel() for g in np.meshgrid(*axis, indexing="ij")], -1)
    lat = jnp.reshape(log_f(jnp.asarray(lattice)), (2 * m + 1,) * dim)
    cell_max = jnp.full((m,) * dim, -jnp.inf)
    for offset in np.ndindex(*(3,) * dim):
        sl = tuple(slice(o, o + 2 * m, 2) for o in offset)
        cell_max = jnp.maximum(cell_max, lat[sl])
    log_bound = jnp.ravel(cell_max) + math.log(cls.safety)
    top = jnp.max(log_bound)
    prob = jnp.exp(log_bound - jnp.where(jnp.isfinite(top), top, 0.0))
    cdf = jnp.cumsum(prob)
    strides = np.array([m ** (dim - 1 - i) for i in range(dim)])
    size = max(2 * n, 1024)

    def body(state: tuple[Any, ...]) -> tuple[Any, ...]:
        key, buf, count, worst, rounds = state
        key, k1, k2, k3 = jax.random.split(key, 4)
        u = jax.random.uniform(k1, (size,), dtype=jnp.float64) * cdf[-1]
        cell = jnp.clip(jnp.searchsorted(cdf, u, side="right"), 0, m**dim - 1)
        idx = (cell[:, None] // strides) % m
        x = lo + (idx + jax.random.uniform(k2, (size, dim), dtype=jnp.float64)) * width
        lf = log_f(x)
        lb = log_bound[cell]
        log_u = jnp.log(jax.random.uniform(k3, (size,), dtype=jnp.float64))
        accept = log_u + lb < lf
        worst = jnp.maximum(
            worst, jnp.max(jnp.where(jnp.isfinite(lb), lf - lb, -jnp.inf))
        )
        pos = jnp.where(accept, count + jnp.cumsum(accept) - 1, n)
        buf = buf.at[pos].set(x, mode="drop")
        return key, buf, count + jnp.sum(accept), worst, rounds + 1

    def cond(state: tuple[Any, ...]) -> Array:
        return (state[2] < n) & (state[4] < _MAX_ROUNDS) & jnp.isfinite(top)

    init = (
        key,
        jnp.full((n, dim), jnp.nan),
        jnp.zeros((), dtype=jnp.int64),
        jnp.asarray(-jnp.inf),
        jnp.zeros((), dtype=jnp.int64),
    )
    _, buf, count, worst, _ = jax.lax.while_loop(cond, body, init)
    return buf, jnp.minimum(count, n), worst


def _warn_sampling(owner: str, count: Array, worst: Array, n: int) -> None:
    """Warn (outside jit) when the envelope was exceeded or sampling gave up."""
    if not (is_concrete(count) and is_concrete(worst)):
        return
    if np.any(np.asarray(worst) > 0.0):
        msg = (
            f"{owner}.sample: the density exceeded its accept-reject envelope by a "
            f"factor {float(np.exp(np.max(worst))):.3g}; the draws are biased. Raise "
            "safety or envelope_cells"
        )
        warnings.warn(msg, HepprobWarning, stacklevel=3)
    if np.any(np.asarray(count) < n):
        msg = (
            f"{owner}.sample: accept-reject gave up after {_MAX_ROUNDS} rounds "
            "(density zero or NaN on the envelope lattice?); missing draws are NaN"
        )
        warnings.warn(msg, HepprobWarning, stacklevel=3)
