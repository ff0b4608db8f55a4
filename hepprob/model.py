"""Free parameters, and reading one NumPyro model function two ways.

A hepprob model is a plain NumPyro model function. Free parameters are declared
with :func:`param`; data enter through ``numpyro.sample(name, dist, obs=data)``
and ``numpyro.factor``. The same function is read

* frequentist-wise by :class:`ModelStructure` and :func:`log_likelihood`: the
  ``param`` sites are the free parameters (bounded, starting at ``init``) and the
  objective is the log-likelihood of the observed sites only (priors ignored);
* Bayesian-wise by NumPyro itself: each ``param`` site is a latent sample site
  whose distribution is its prior, so ``numpyro.infer.NUTS(model)`` samples the
  full joint density.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as npd
from numpyro import handlers
from numpyro.distributions import constraints
from numpyro.primitives import Messenger

from hepprob._typing import Array, ArrayLike
from hepprob.errors import DataError, ModelError, ParameterError

__all__ = [
    "ModelStructure",
    "ParamInfo",
    "Redraw",
    "Reweight",
    "data_sites",
    "default_prior",
    "entry_names",
    "is_extended",
    "log_likelihood",
    "observed_log_probs",
    "param",
    "per_event_shape",
    "pseudo_data",
    "site_weights",
    "trace_model",
]

# keys under which param() stores its ParamInfo, and whether a prior was given,
# in a site's ``infer`` dict
PARAM_KEY = "hepprob_param"
PRIOR_KEY = "hepprob_prior_given"


@dataclasses.dataclass(frozen=True)
class ParamInfo:
    """A free parameter: name, start value and bounds (NumPy arrays of one shape)."""

    name: str
    init: np.ndarray
    lower: np.ndarray
    upper: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the parameter value (``()`` for a scalar)."""
        return self.init.shape

    @property
    def size(self) -> int:
        """Number of scalar entries."""
        return int(self.init.size)

    @property
    def flat_names(self) -> list[str]:
        """Names of the scalar entries (:func:`entry_names`)."""
        return entry_names(self.name, self.shape)

    def differences(self, other: ParamInfo) -> list[str]:
        """How ``other`` (a second declaration of the same name) differs from this one."""
        if self.shape != other.shape:
            return [f"shape {self.shape} vs {other.shape}"]
        out = []
        for field in ("init", "lower", "upper"):
            mine, theirs = getattr(self, field), getattr(other, field)
            if not np.array_equal(mine, theirs):
                out.append(f"{field} {_show(mine)} vs {_show(theirs)}")
        return out


def entry_names(name: str, shape: tuple[int, ...]) -> list[str]:
    """The one naming rule for the scalar entries of a parameter, row-major:
    ``name`` (a scalar), ``name[i]`` (a vector, as pyhf), ``name[i,j]`` (a
    matrix, and so on). Fit results, toys, scans and samples all use it."""
    if not shape:
        return [name]
    return [f"{name}[{','.join(map(str, i))}]" for i in np.ndindex(*shape)]


def _show(value: np.ndarray) -> str:
    return repr(float(value)) if value.ndim == 0 else np.array2string(value)


def default_prior(
    lower: ArrayLike, upper: ArrayLike, shape: tuple[int, ...] = ()
) -> npd.Distribution:
    """Uniform within finite bounds, improper flat (on the bounded support) otherwise."""
    lo = np.broadcast_to(np.asarray(lower, dtype=np.float64), shape)
    hi = np.broadcast_to(np.asarray(upper, dtype=np.float64), shape)
    if np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)):
        base = npd.Uniform(jnp.asarray(lo), jnp.asarray(hi))
        return base.to_event(len(shape)) if shape else base
    if np.all(np.isfinite(lo)):
        support = constraints.greater_than(jnp.asarray(lo))
    elif np.all(np.isfinite(hi)):
        support = constraints.less_than(jnp.asarray(hi))
    elif np.any(np.isfinite(lo)) or np.any(np.isfinite(hi)):
        msg = "default prior: give each entry of a vector parameter finite bounds, or none"
        raise ParameterError(msg)
    else:
        support = constraints.real
    return npd.ImproperUniform(support, batch_shape=(), event_shape=shape)


def _param_info(
    name: str, init: ArrayLike, lower: ArrayLike | None, upper: ArrayLike | None
) -> ParamInfo:
    """Check and freeze the arguments of :func:`param` (before any tracing)."""
    if not isinstance(name, str) or not name:
        msg = f"param: name must be a non-empty string, got {name!r}"
        raise ParameterError(msg)
    if isinstance(init, jax.core.Tracer):
        msg = f"param {name!r}: init must be a concrete number or array, not a traced value"
        raise ParameterError(msg)
    init_arr = np.asarray(init, dtype=np.float64)
    lo = np.broadcast_to(
        np.asarray(-np.inf if lower is None else lower, dtype=np.float64),
        init_arr.shape,
    )
    hi = np.broadcast_to(
        np.asarray(np.inf if upper is None else upper, dtype=np.float64), init_arr.shape
    )
    if not np.all(np.isfinite(init_arr)):
        msg = f"param {name!r}: init must be finite, got {init_arr}"
        raise ParameterError(msg)
    if np.any(np.isnan(lo)) or np.any(np.isnan(hi)) or np.any(lo >= hi):
        msg = f"param {name!r}: need lower < upper, got lower={lower}, upper={upper}"
        raise ParameterError(msg)
    if np.any(init_arr < lo) or np.any(init_arr > hi):
        msg = (
            f"param {name!r}: init={init_arr} is outside its bounds [{lower}, {upper}]"
        )
        raise ParameterError(msg)
    return ParamInfo(name, init_arr, np.array(lo), np.array(hi))


def param(
    name: str,
    init: ArrayLike,
    lower: ArrayLike | None = None,
    upper: ArrayLike | None = None,
    prior: npd.Distribution | None = None,
) -> Array:
    """Declare a free parameter inside a model function and return its value.

    A second ``param(name, ...)`` in the same model returns the parameter
    declared first (its value, not a new site), so channels — a HistFactory
    model, unbinned ``Extended`` sites, your own factors — share ``mu``, a
    luminosity or an efficiency just by using one name. Every declaration must
    give the same ``init`` and bounds; a ``prior`` belongs to the first one.

    Args:
        name: site name; parameters are shared across channels by name.
        init: start value of fits (a scalar, or an array for a vector parameter).
        lower: lower bound (``None``: unbounded), broadcast to ``init``'s shape.
        upper: upper bound (``None``: unbounded).
        prior: NumPyro distribution used by MCMC. Default: uniform within finite
            bounds, improper flat otherwise. Fits ignore it.

    Returns:
        The parameter value: the fitted value in frequentist use, a posterior draw
        under MCMC.

    Raises:
        ParameterError: empty name, ``lower >= upper``, ``init`` outside bounds,
            or a repeated declaration whose init, bounds or prior differ.
        ModelError: ``name`` is already a site that is not a ``param``.

    Example:
        >>> import numpyro, hepprob
        >>> def model(x):
        ...     mu = hepprob.param("mu", 0.0, -5, 5)
        ...     numpyro.sample("x", numpyro.distributions.Normal(mu, 1.0), obs=x)
    """
    info = _param_info(name, init, lower, upper)
    earlier = _earlier_declaration(name)
    if earlier is not None:
        return _shared_value(earlier, info, prior)
    given = prior is not None
    if prior is None:
        prior = default_prior(info.lower, info.upper, info.shape)
    return numpyro.sample(name, prior, infer={PARAM_KEY: info, PRIOR_KEY: given})


def _earlier_declaration(name: str) -> dict[str, Any] | None:
    """The site of an earlier declaration of ``name`` in the model run being traced.

    Every inference (hepprob's and NumPyro's) runs a model under a
    ``handlers.trace``; its record of the sites seen so far is where a second
    ``param(name)`` finds the first one. ``None`` if there is none.
    """
    for handler in reversed(numpyro.primitives._PYRO_STACK):
        if isinstance(handler, handlers.trace) and name in handler.trace:
            return handler.trace[name]
    return None


def _shared_value(
    site: dict[str, Any], info: ParamInfo, prior: npd.Distribution | None
) -> Array:
    """The value of an already declared parameter, if the new declaration agrees."""
    first = (site.get("infer") or {}).get(PARAM_KEY)
    if first is None:
        msg = (
            f"param {info.name!r}: the model already has a site {info.name!r} that is "
            "not a hepprob.param; parameters are shared by name only between "
            "hepprob.param declarations"
        )
        raise ModelError(msg)
    differences = first.differences(info)
    if differences:
        msg = (
            f"param {info.name!r} is declared again with different settings "
            f"({'; '.join(differences)}); a shared parameter needs the same init "
            "and bounds in every declaration"
        )
        raise ParameterError(msg)
    if prior is not None and not (
        site["infer"].get(PRIOR_KEY) and _same_distribution(site["fn"], prior)
    ):
        msg = (
            f"param {info.name!r}: a later declaration gives a prior that differs from "
            "the first one's; give the prior at the first declaration (or the same "
            "prior in every declaration)"
        )
        raise ParameterError(msg)
    return site["value"]


def _same_distribution(a: npd.Distribution, b: npd.Distribution) -> bool:
    """Same type and equal (concrete) parameters; traced parameters must be identical."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    leaves_a, tree_a = jax.tree_util.tree_flatten(a)
    leaves_b, tree_b = jax.tree_util.tree_flatten(b)
    if tree_a != tree_b:
        return False
    for u, v in zip(leaves_a, leaves_b, strict=True):
        if u is v:
            continue
        if isinstance(u, jax.core.Tracer) or isinstance(v, jax.core.Tracer):
            return False
        if np.shape(u) != np.shape(v) or not np.array_equal(u, v):
            return False
    return True


def trace_model(
    model: Callable[..., Any],
    values: Mapping[str, ArrayLike] | None,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """Run ``model`` with the ``param`` sites set to ``values`` (init where absent).

    Returns the NumPyro trace. Unobserved sites that are not ``param`` sites raise
    :class:`ModelError`: a frequentist reading has no meaning for them.
    """
    values = dict(values or {})

    def set_value(site: dict[str, Any]) -> Any:
        if site["type"] != "sample" or site.get("is_observed"):
            return None
        info = (site.get("infer") or {}).get(PARAM_KEY)
        if info is None:
            msg = (
                f"model site {site['name']!r} is neither a hepprob.param nor observed "
                "(give it obs=... or declare it with hepprob.param)"
            )
            raise ModelError(msg)
        if info.name in values:
            return jnp.asarray(values[info.name], dtype=jnp.float64)
        return jnp.asarray(info.init)

    substituted = handlers.substitute(model, substitute_fn=set_value)
    seeded = handlers.seed(substituted, rng_seed=0)
    return handlers.trace(seeded).get_trace(*args, **dict(kwargs or {}))


@dataclasses.dataclass(frozen=True)
class ModelStructure:
    """The free parameters and observed sites of a model, and its flat layout.

    Fits work on one flat float64 vector; :meth:`unflatten` and :meth:`flatten`
    map between it and ``{name: value}``.
    """

    params: tuple[ParamInfo, ...]
    observed: tuple[str, ...]

    @classmethod
    def from_model(
        cls, model: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> ModelStructure:
        """Trace ``model(*args, **kwargs)`` once at the start values and read it."""
        tr = trace_model(model, None, args, kwargs)
        params, observed = [], []
        for name, site in tr.items():
            if site["type"] != "sample":
                continue
            info = (site.get("infer") or {}).get(PARAM_KEY)
            if info is not None:
                params.append(info)
            elif site["is_observed"]:
                observed.append(name)
        if not observed:
            msg = "model has no observed site: give data with numpyro.sample(..., obs=data)"
            raise ModelError(msg)
        return cls(tuple(params), tuple(observed))

    @property
    def names(self) -> list[str]:
        """Parameter names, in model order."""
        return [p.name for p in self.params]

    @property
    def par_names(self) -> list[str]:
        """Names of the flat vector's entries (``name[i]`` for vector parameters)."""
        return [n for p in self.params for n in p.flat_names]

    @property
    def size(self) -> int:
        """Length of the flat parameter vector."""
        return sum(p.size for p in self.params)

    @property
    def init(self) -> np.ndarray:
        """Flat start vector."""
        return self._concat("init")

    @property
    def lower(self) -> np.ndarray:
        """Flat lower bounds (``-inf`` where unbounded)."""
        return self._concat("lower")

    @property
    def upper(self) -> np.ndarray:
        """Flat upper bounds (``+inf`` where unbounded)."""
        return self._concat("upper")

    def _concat(self, field: str) -> np.ndarray:
        parts = [np.ravel(getattr(p, field)) for p in self.params]
        return np.concatenate(parts) if parts else np.zeros(0)

    def unflatten(self, vector: ArrayLike) -> dict[str, Array]:
        """Split a flat vector (or a batch ``(..., size)``) into ``{name: value}``."""
        vector = jnp.asarray(vector)
        out, start = {}, 0
        for p in self.params:
            piece = vector[..., start : start + p.size]
            out[p.name] = piece.reshape((*vector.shape[:-1], *p.shape))
            start += p.size
        return out

    def flatten(self, values: Mapping[str, ArrayLike]) -> Array:
        """Join ``{name: value}`` into a flat vector; missing names take ``init``."""
        unknown = set(values) - set(self.names)
        if unknown:
            msg = f"unknown parameter name(s) {sorted(unknown)}; model has {self.names}"
            raise ParameterError(msg)
        parts = [
            jnp.ravel(jnp.asarray(values.get(p.name, p.init), dtype=jnp.float64))
            for p in self.params
        ]
        return jnp.concatenate(parts) if parts else jnp.zeros(0)

    def index(self, name: str) -> int:
        """Position of a scalar parameter (or flat entry ``name[i]``) in the vector."""
        try:
            return self.par_names.index(name)
        except ValueError:
            msg = f"unknown parameter {name!r}; model has {self.par_names}"
            raise ParameterError(msg) from None


def observed_log_probs(
    model: Callable[..., Any],
    structure: ModelStructure,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
) -> Callable[[Array], dict[str, Array]]:
    """``vector -> {observed site: its summed log-probability}`` (scale applied).

    The pieces of :func:`log_likelihood`, one per observed site, e.g. to tell a
    weighted unbinned channel from a binned one.
    """

    def per_site(vector: Array) -> dict[str, Array]:
        tr = trace_model(model, structure.unflatten(vector), args, kwargs)
        out = {}
        for name in structure.observed:
            site = tr[name]
            lp = site["fn"].log_prob(site["value"])
            if site.get("scale") is not None:
                lp = site["scale"] * lp
            out[name] = jnp.sum(lp)
        return out

    return per_site


def log_likelihood(
    model: Callable[..., Any],
    structure: ModelStructure,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
) -> Callable[[Array], Array]:
    """The log-likelihood of the observed sites as a function of the flat vector.

    Priors of ``param`` sites are ignored; ``numpyro.factor`` terms count (they are
    observed sites). The returned function is pure: jit, grad and vmap it freely.
    """
    per_site = observed_log_probs(model, structure, args, kwargs)

    def loglike(vector: Array) -> Array:
        total = jnp.zeros((), dtype=jnp.float64)
        for lp in per_site(vector).values():
            total = total + lp
        return total

    return loglike


# --- event weights on observed sites ------------------------------------------------


class Reweight(Messenger):
    r"""Give the observed sites named in ``weights`` these per-event weights.

    The log-likelihood of a weighted site is :math:`\sum_i w_i \log p(x_i)`:
    an :class:`~hepprob.dist.Extended` site takes them as its ``weights`` (the
    extended term then reads :math:`\nu - \sum_i w_i \log \nu p(x_i)`); any
    other site must have one log-probability per event, which is scaled by
    :math:`w_i` (as ``numpyro.handlers.scale``). Weights replace those the
    model gave the site.

    Raises:
        DataError: weights whose shape is not the site's per-event shape.
    """

    def __init__(
        self, fn: Callable[..., Any] | None, weights: Mapping[str, ArrayLike]
    ) -> None:
        super().__init__(fn)
        self.weights = dict(weights)

    def process_message(self, msg: dict[str, Any]) -> None:
        if msg["type"] != "sample" or msg["name"] not in self.weights:
            return
        name, dist = msg["name"], msg["fn"]
        w = jnp.asarray(self.weights[name], dtype=jnp.float64)
        if not msg["is_observed"] or isinstance(dist, npd.Unit):
            msg_ = f"weights: site {name!r} is not an observed data site"
            raise DataError(msg_)
        if is_extended(dist):
            dist = copy.copy(dist)
            dist.weights = w  # Extended checks the length against the dataset
            msg["fn"] = dist
            return
        shape = per_event_shape(dist, msg["value"])
        if w.shape != shape:
            msg_ = (
                f"weights: site {name!r} has per-event log-probabilities of shape "
                f"{shape}, but its weights have shape {w.shape}"
            )
            raise DataError(msg_)
        msg["scale"] = w


def per_event_shape(dist: npd.Distribution, value: ArrayLike) -> tuple[int, ...]:
    """Shape of ``dist.log_prob(value)``: one entry per event for unbinned sites."""
    v_shape = jnp.shape(value)
    sample = v_shape[: len(v_shape) - len(dist.event_shape)]
    return tuple(jax.lax.broadcast_shapes(sample, dist.batch_shape))


def site_weights(site: dict[str, Any]) -> Array | None:
    """The per-event weights a traced observed site carries, or ``None``."""
    dist = site["fn"]
    if is_extended(dist):
        return dist.weights
    scale = site.get("scale")
    if scale is not None and jnp.ndim(scale) > 0:
        return jnp.asarray(scale, dtype=jnp.float64)
    return None


def is_extended(dist: Any) -> bool:
    """Whether ``dist`` is an :class:`~hepprob.dist.Extended` (it takes event weights)."""
    from hepprob.distributions.composite import Extended

    return isinstance(dist, Extended)


# --- pseudo-data ---------------------------------------------------------------------


class Redraw(Messenger):
    """Give every observed data site a fresh draw of its own distribution.

    The one handler that makes pseudo-experiments of any model (unbinned,
    binned, HistFactory main and auxiliary data). ``numpyro.factor`` sites are
    constants and keep their value. Each draw has the shape of the observed
    value (a padded ``Extended`` dataset stays padded), and site ``i`` uses key
    ``fold_in(key, i)``.
    """

    def __init__(self, fn: Callable[..., Any] | None, key: Array) -> None:
        super().__init__(fn)
        self.key = key
        self.count = 0

    def process_message(self, msg: dict[str, Any]) -> None:
        if msg["type"] != "sample" or not msg["is_observed"]:
            return
        dist = msg["fn"]
        if isinstance(dist, npd.Unit):
            return
        shape = jnp.shape(msg["value"])
        sample = shape[: len(shape) - len(dist.event_shape)]
        batch = jax.lax.broadcast_shapes(dist.batch_shape, sample)
        draw = dist.expand(batch).sample(jax.random.fold_in(self.key, self.count))
        self.count += 1
        msg["value"] = jnp.broadcast_to(draw, shape).astype(jnp.float64)


def data_sites(
    tr: Mapping[str, dict[str, Any]], structure: ModelStructure
) -> list[str]:
    """The observed sites that hold data (not ``numpyro.factor`` terms)."""
    return [n for n in structure.observed if not isinstance(tr[n]["fn"], npd.Unit)]


def pseudo_data(
    model: Callable[..., Any],
    structure: ModelStructure,
    key: Array,
    vector: Array,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
) -> dict[str, Array]:
    """``{data site: a fresh draw}`` of ``model`` at the flat parameters ``vector``.

    Pure (jit and vmap it over keys and vectors); condition the model on the
    result (``numpyro.handlers.condition``) to fit the pseudo-experiment.
    """
    tr = trace_model(Redraw(model, key), structure.unflatten(vector), args, kwargs)
    return {n: tr[n]["value"] for n in data_sites(tr, structure)}
