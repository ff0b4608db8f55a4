"""A HistFactory model as a NumPyro distribution, and as a NumPyro model function.

* :class:`HistFactory` is the distribution of the full data vector (main counts
  followed by auxiliary data) at given parameters: ``log_prob`` equals
  ``Model.logpdf``; ``sample`` draws exact toys (Poisson main counts; Normal or
  Poisson auxiliary data, as pyhf). It is a pytree, so ``jax.vmap`` over
  parameter points or keys works.
* :func:`make_numpyro_model` (``Model.numpyro_model()``) declares every
  parameter set with :func:`hepprob.param` and observes the data, so the same
  model serves ``hepprob.fit`` and ``hepprob.mcmc``.

Two readings of the auxiliary measurements, chosen by ``constraints=``:

``"data"`` (default, the frequentist reading, as pyhf)
    the auxiliary data are observed; fits include the constraint terms. Under
    MCMC a constrained nuisance parameter gets a flat prior within its bounds,
    so its posterior is the constraint times the main likelihood.
``"prior"`` (the Bayesian reading)
    no auxiliary data are observed; each constraint becomes the parameter's
    prior: ``TruncatedNormal(aux, sigma)`` within the bounds for Gaussian
    constraints, ``Gamma(aux + 1, tau)`` (the posterior of the Poisson auxiliary
    count under a flat prior) for shapesys. MCMC samples the same posterior as
    with ``"data"``, but a fit ignores priors, so its nuisance parameters are
    unconstrained; toys and prior-predictive draws keep the auxiliary values
    fixed instead of fluctuating them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as npd
from numpyro.distributions import constraints

from hepprob._typing import Array, ArrayLike, PRNGKey
from hepprob.errors import DataError, ModelError, ParameterError
from hepprob.model import param

if TYPE_CHECKING:
    from hepprob.histfactory.model import Model

__all__ = ["HistFactory", "make_numpyro_model"]


def __dir__() -> list[str]:
    return __all__


class HistFactory(npd.Distribution):
    """Distribution of HistFactory data at parameters ``pars`` (flat, pyhf order).

    Args:
        model: a :class:`hepprob.histfactory.Model`.
        pars: ``(..., npars)``; leading axes are the batch shape.
        include_auxdata: ``True``: events are ``(nmaindata + nauxdata,)`` main
            counts then auxiliary data; ``False``: main counts only.

    Example:
        >>> d = HistFactory(model, model.config.suggested_init())  # doctest: +SKIP
        >>> toys = d.sample(jax.random.key(0), (1000,))            # doctest: +SKIP
    """

    arg_constraints: ClassVar[dict[str, Any]] = {"pars": constraints.real_vector}
    support = constraints.real_vector
    pytree_data_fields = ("pars",)
    pytree_aux_fields = ("model", "include_auxdata")

    def __init__(
        self,
        model: Model,
        pars: ArrayLike,
        include_auxdata: bool = True,
        *,
        validate_args: bool | None = None,
    ) -> None:
        self.model = model
        self.include_auxdata = bool(include_auxdata)
        self.pars = model._check_pars(pars)
        n = model.config.nmaindata + (model.config.nauxdata if include_auxdata else 0)
        super().__init__(
            batch_shape=tuple(self.pars.shape[:-1]),
            event_shape=(n,),
            validate_args=validate_args,
        )

    @property
    def mean(self) -> Array:
        """Expected data (main, then auxiliary)."""
        fn = self.model._full if self.include_auxdata else self.model._main
        return _over_batch(fn, self.pars)

    def log_prob(self, value: ArrayLike) -> Array:
        """``Model.logpdf`` (or the main part only), per batch entry."""
        value = jnp.asarray(value, dtype=jnp.float64)
        if value.shape[-1:] != self.event_shape:
            msg = f"HistFactory.log_prob: value must end with {self.event_shape}, got {value.shape}"
            raise DataError(msg)
        fn = (
            self.model._logpdf_single
            if self.include_auxdata
            else self.model._main_logpdf
        )
        return jnp.vectorize(fn, signature="(p),(d)->()")(self.pars, value)

    def sample(self, key: PRNGKey, sample_shape: tuple[int, ...] = ()) -> Array:
        """Exact toys: Poisson main counts; Normal/Poisson auxiliary data."""
        shape = tuple(sample_shape) + self.batch_shape
        k_main, k_norm, k_pois = jax.random.split(key, 3)
        lam = _over_batch(self.model._main, self.pars)
        main = jax.random.poisson(k_main, lam, shape + lam.shape[-1:]).astype(
            jnp.float64
        )
        if not self.include_auxdata:
            return main
        m = self.model
        a = m._arrays
        aux_mean = _over_batch(m._aux, self.pars)
        gauss = aux_mean + m._gauss_noise(k_norm, shape)
        pois = jax.random.poisson(k_pois, aux_mean, shape + aux_mean.shape[-1:])
        aux = jnp.where(a["aux_poisson"], pois.astype(jnp.float64), gauss)
        return jnp.concatenate([main, aux], axis=-1)


def make_numpyro_model(
    model: Model,
    constraints: str = "data",
    *,
    priors: Mapping[str, npd.Distribution] | None = None,
    fixed: str | Mapping[str, ArrayLike] | None = None,
    site_name: str = "data",
) -> Callable[[ArrayLike], None]:
    """A NumPyro model function ``f(data)`` of a HistFactory model.

    Every parameter set is a :func:`hepprob.param` site named as in pyhf (a
    vector site for per-bin modifiers), with pyhf's init and bounds; the data
    are observed at ``site_name`` under :class:`HistFactory`.

    Args:
        model: the :class:`~hepprob.histfactory.Model`.
        constraints: ``"data"`` (auxiliary data observed; default) or
            ``"prior"`` (constraints become priors): see the module docstring.
        priors: override priors by parameter-set name, e.g.
            ``{"mu": dist.Uniform(0, 5)}`` (used by MCMC; fits ignore priors).
        fixed: ``"suggested"`` (hold ``config.suggested_fixed()`` entries at
            their init) or ``{name: value}``; fully fixed sets are not declared.
        site_name: name of the observed site.

    Returns:
        ``f(data)`` where ``data`` is main + auxiliary data (as
        ``Workspace.data(model)``) or the main counts only (auxiliary data then
        default to ``config.auxdata``).

    Raises:
        ModelError: unknown ``constraints``.
        ParameterError: unknown names in ``priors``/``fixed``.
    """
    if constraints not in ("data", "prior"):
        msg = f"constraints must be 'data' or 'prior', got {constraints!r}"
        raise ModelError(msg)
    sets = model.compiled.paramsets
    names = [p.name for p in sets]
    priors = dict(priors or {})
    unknown = sorted(set(priors) - set(names))
    if unknown:
        msg = f"priors: unknown parameter set(s) {unknown}; the model has {names}"
        raise ParameterError(msg)
    fixed_mask, fixed_val = _fixed(model, fixed)
    decls = []
    for p in sets:
        mask, val = fixed_mask[p.slice], fixed_val[p.slice]
        prior = priors.get(p.name)
        if prior is None and constraints == "prior" and p.constrained:
            prior = _constraint_prior(p)
        decls.append((p, mask, val, prior))
    if constraints == "prior" and model._corr is not None:
        msg = (
            "constraints='prior' with correlated nuisance parameters is not supported; "
            "use constraints='data' (the multivariate Gaussian constraint is observed)"
        )
        raise ModelError(msg)
    nmain, naux = model.config.nmaindata, model.config.nauxdata
    auxdata = jnp.asarray(model.compiled.auxdata)

    def hepprob_histfactory_model(data: ArrayLike) -> None:
        d = jnp.asarray(data, dtype=jnp.float64)
        if d.ndim != 1 or d.shape[0] not in (nmain, nmain + naux):
            msg = (
                f"data must be main ({nmain}) or main + aux ({nmain + naux}) values, "
                f"got shape {tuple(d.shape)}"
            )
            raise DataError(msg)
        if d.shape[0] == nmain and constraints == "data":
            d = jnp.concatenate([d, auxdata])
        if not isinstance(d, jax.core.Tracer):
            model._check_data(d, d.shape[0], _kind(d, nmain))
        parts = []
        for p, mask, val, prior in decls:
            if mask.all():
                parts.append(jnp.asarray(val))
                continue
            init = p.inits[0] if p.is_scalar else p.inits
            lo = p.bounds[0, 0] if p.is_scalar else p.bounds[:, 0]
            hi = p.bounds[0, 1] if p.is_scalar else p.bounds[:, 1]
            value = param(p.name, init, lo, hi, prior=prior)
            flat = jnp.ravel(value)
            if mask.any():
                flat = jnp.where(mask, val, flat)
            parts.append(flat)
        pars = jnp.concatenate(parts)
        if constraints == "data":
            numpyro.sample(site_name, HistFactory(model, pars), obs=d)
        else:
            numpyro.sample(site_name, HistFactory(model, pars, False), obs=d[:nmain])
            if model._tikhonov:  # the penalty is part of the likelihood
                numpyro.factor(
                    f"{site_name}_regularisation", model._regularisation(pars)
                )

    return hepprob_histfactory_model


# ---------------------------------------------------------------- helpers


def _kind(d: Array, nmain: int) -> str:
    return "maindata" if d.shape[0] == nmain else "data"


def _over_batch(fn: Callable[[Array], Array], pars: Array) -> Array:
    if pars.ndim == 1:
        return fn(pars)
    flat = pars.reshape(-1, pars.shape[-1])
    out = jax.vmap(fn)(flat)
    return out.reshape(*pars.shape[:-1], *out.shape[1:])


def _fixed(model: Model, fixed: Any) -> tuple[np.ndarray, np.ndarray]:
    init = np.asarray(model.config.suggested_init(), dtype=np.float64)
    mask = np.zeros(model.config.npars, dtype=bool)
    if fixed is None:
        return mask, init
    if isinstance(fixed, str):
        if fixed != "suggested":
            msg = f"fixed must be None, 'suggested' or a dict {{name: value}}, got {fixed!r}"
            raise ParameterError(msg)
        return np.asarray(model.config.suggested_fixed(), dtype=bool), init
    for name, value in dict(fixed).items():
        sl = model.config.par_slice(name)
        init[sl] = np.broadcast_to(
            np.asarray(value, dtype=np.float64), (sl.stop - sl.start,)
        )
        mask[sl] = True
    return mask, init


def _constraint_prior(p: Any) -> npd.Distribution:
    """The constraint term of a parameter set as its prior (see module docstring)."""
    idx = 0 if p.is_scalar else slice(None)
    if p.constraint == "normal":
        base = npd.TruncatedNormal(
            jnp.asarray(p.auxdata[idx]),
            jnp.asarray(p.sigmas[idx]),
            low=jnp.asarray(p.bounds[idx, 0]),
            high=jnp.asarray(p.bounds[idx, 1]),
        )
    else:
        base = npd.Gamma(jnp.asarray(p.auxdata[idx]) + 1.0, jnp.asarray(p.factors[idx]))
    return base if p.is_scalar else base.to_event(1)
