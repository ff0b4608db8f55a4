"""Bayesian inference: NUTS on a hepprob model into ArviZ ``InferenceData``.

What to use when:

* :func:`mcmc` samples the joint density of a model function (the ``param``
  sites with their priors, the observed sites as likelihood) with NumPyro's NUTS
  and returns ``arviz.InferenceData``; ``priors={...}`` swaps any prior by name.
* :func:`summary` is ArviZ's table (mean, sd, HDI, MC standard error, ESS, r_hat).
* :func:`credible_interval` and :func:`upper_limit` read intervals and one-sided
  credible limits off the posterior draws.
* :func:`posterior_predictive` and :func:`prior_predictive` draw replicated data
  (every observed site, and every deterministic site such as expected yields);
  they live in :mod:`hepprob.predictive` and are re-exported here.

Auxiliary measurements of HistFactory models are either observed data (the
nuisance parameter gets a flat prior within its bounds, ``constraints="data"``,
the default when a ``Model`` is passed) or the nuisance parameter's prior
(``constraints="prior"``); see ``hepprob.histfactory.Model.numpyro_model``. For
Normal and Poisson (Gamma) constraints the two posteriors agree up to the
bounds; prior-predictive draws, toys and fits differ (fits ignore priors), and
any other prior (``priors={...}``) makes them differ. The user picks.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import warnings
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as npd
from numpyro import handlers
from numpyro.distributions.distribution import Unit
from numpyro.distributions.transforms import biject_to
from numpyro.infer import MCMC, NUTS, init_to_sample, init_to_value
from numpyro.primitives import Messenger

from hepprob._gc import gc_paused
from hepprob._program_cache import cached, split_arguments
from hepprob._progress import enabled as progress_enabled
from hepprob._rhat import rank_rhat
from hepprob._sampler import run_nuts
from hepprob.errors import ConvergenceWarning, ModelError, ParameterError
from hepprob.model import PARAM_KEY

if TYPE_CHECKING:
    import arviz as az

    from hepprob.predictive import posterior_predictive, prior_predictive

__all__ = [
    "credible_interval",
    "mcmc",
    "posterior_predictive",
    "prior_predictive",
    "summary",
    "upper_limit",
    "with_priors",
]

_CHAIN_METHODS = ("parallel", "sequential", "vectorized")
# model keyword carrying ``priors={...}`` into a prior-swapping model (see mcmc)
_PRIORS_KWARG = "_hepprob_priors"
_EXTRA_FIELDS = (
    "diverging",
    "num_steps",
    "accept_prob",
    "potential_energy",
    "energy",
    "adapt_state.step_size",
)


def __dir__() -> list[str]:
    return __all__


def __getattr__(name: str) -> Any:
    """The predictives, from :mod:`hepprob.predictive` (which imports this module)."""
    if name in ("posterior_predictive", "prior_predictive"):
        from hepprob import predictive

        return getattr(predictive, name)
    msg = f"module 'hepprob.bayes' has no attribute {name!r}"
    raise AttributeError(msg)


@gc_paused
def mcmc(
    model: Callable[..., Any],
    *model_args: Any,
    num_warmup: int = 1000,
    num_samples: int = 1000,
    num_chains: int = 1,
    seed: int | jax.Array = 0,
    init: str | Mapping[str, Any] = "prior",
    priors: Mapping[str, npd.Distribution] | None = None,
    progress_bar: bool | None = None,
    chain_method: str | None = None,
    target_accept_prob: float = 0.8,
    max_tree_depth: int = 10,
    dense_mass: bool = False,
    log_likelihood: bool = True,
    **model_kwargs: Any,
) -> az.InferenceData:
    """Sample the posterior of a model with NUTS (NumPyro) into ``InferenceData``.

    The density sampled is the model's joint density: the prior of every
    ``hepprob.param`` site (default: uniform within finite bounds, improper flat
    otherwise) times the likelihood of the observed sites (``numpyro.factor``
    terms included). NUTS is the No-U-Turn sampler, Hoffman & Gelman,
    JMLR 15 (2014) 1593, with NumPyro's step-size and mass-matrix adaptation.

    Args:
        model: a NumPyro model function, e.g. ``ws.model().numpyro_model()``; a
            HistFactory ``Model`` itself stands for ``model.numpyro_model()``
            (auxiliary data as observed data).
        *model_args: arguments of ``model`` (typically the observed data).
        num_warmup: adaptation steps per chain (discarded).
        num_samples: kept draws per chain.
        num_chains: number of chains. By default they run in parallel when there
            are at least as many JAX devices, else vectorised on one device.
        seed: integer seed (or a JAX PRNG key); the same seed gives the same draws.
        init: ``"prior"`` (a draw from the prior, uniform in the unconstrained
            space for improper priors), ``"mle"`` (the maximum-likelihood point
            of :func:`hepprob.fit`) or a ``{name: value}`` mapping (other
            parameters start from the prior).
        priors: ``{name: numpyro distribution}`` replacing the priors of those
            parameters for this run (see :func:`with_priors`).
        progress_bar: show a progress bar (``None``: in a terminal or a
            notebook; ``HEPPROB_PROGRESS=0`` turns it off everywhere). Either way the compiled sampler is kept: a later call
            with the same model function (or ``Model``), the same shapes and
            settings, and new data, priors or seed does not compile again
            (as with ``jax.jit``, arrays the model function closes over are
            read once, at the first call), and a new process loads it from
            the compilation cache's directory without tracing it.
        chain_method: ``"parallel"``, ``"vectorized"`` or ``"sequential"``
            (``None``: chosen as above). Several parallel or sequential chains
            go through NumPyro's ``MCMC``, which compiles again at each call.
        target_accept_prob: NUTS target acceptance probability, in (0, 1).
        max_tree_depth: NUTS maximum tree depth.
        dense_mass: adapt a dense mass matrix (helps correlated parameters).
        log_likelihood: store the pointwise log-likelihood group (for LOO/WAIC).
        **model_kwargs: keyword arguments of ``model``.

    Returns:
        ``arviz.InferenceData`` with groups ``posterior``, ``sample_stats``,
        ``observed_data`` and ``log_likelihood``. Variables keep the model's site
        names; a vector parameter ``name`` has the dimension ``name_dim``.

    Raises:
        ParameterError: bad sampler settings, unknown names in ``priors`` or
            ``init``, or a prior whose shape does not fit its parameter.
        ModelError: the model has nothing to sample or no finite start point.

    Example:
        >>> import numpy as np, numpyro, hepprob
        >>> def model(n):
        ...     mu = hepprob.param("mu", 1.0, 0.0, 20.0)
        ...     numpyro.sample("n", numpyro.distributions.Poisson(mu), obs=n)
        >>> idata = hepprob.mcmc(model, np.array(5.0), num_warmup=100,
        ...                      num_samples=100, progress_bar=False)
        >>> idata.posterior["mu"].shape
        (1, 100)
    """
    _check_count("num_warmup", num_warmup, minimum=0)
    _check_count("num_samples", num_samples, minimum=1)
    _check_count("num_chains", num_chains, minimum=1)
    _check_count("max_tree_depth", max_tree_depth, minimum=1)
    if not 0.0 < float(target_accept_prob) < 1.0:
        msg = f"mcmc: target_accept_prob must lie in (0, 1), got {target_accept_prob!r}"
        raise ParameterError(msg)
    if chain_method is None:
        chain_method = _default_chain_method(num_chains)
    elif chain_method not in _CHAIN_METHODS:
        msg = (
            f"mcmc: chain_method must be one of {_CHAIN_METHODS}, got {chain_method!r}"
        )
        raise ParameterError(msg)
    key = _prng_key(seed)
    model = _model_function(model)
    # NumPy data become JAX arrays: support checks against traced bounds need it
    model_args, model_kwargs = jax.tree_util.tree_map(
        lambda a: jnp.asarray(a) if isinstance(a, np.ndarray) else a,
        (model_args, model_kwargs),
    )

    if priors:  # the priors travel as an argument: a cached sampler takes new ones
        with_priors(model, priors)  # checks the mapping
        try:
            sampled = _prior_swapping(model)
        except TypeError:  # an unhashable callable
            sampled = _prior_swapping.__wrapped__(model)
        model_kwargs = {**model_kwargs, _PRIORS_KWARG: dict(priors)}
    else:
        sampled = model
    # compiled when no start value needs the distributions (their supports)
    sites = _inspect(
        sampled,
        model_args,
        model_kwargs,
        "mcmc",
        compiled=isinstance(init, str) and init == "prior",
    )
    latent = {n: s for n, s in sites.items() if _is_latent(s)}
    if not latent:
        msg = "mcmc: the model has no parameter to sample (no hepprob.param site)"
        raise ModelError(msg)
    if priors:
        _check_names("priors", priors, latent)
    user_kwargs = {k: v for k, v in model_kwargs.items() if k != _PRIORS_KWARG}
    strategy = _init_strategy(init, model, sampled, latent, model_args, user_kwargs)

    nuts = {
        "target_accept_prob": float(target_accept_prob),
        "max_tree_depth": int(max_tree_depth),
        "dense_mass": bool(dense_mass),
    }
    progress_bar = progress_enabled(progress_bar)  # terminal or notebook
    try:
        if num_chains > 1 and chain_method != "vectorized":
            samples, stats = _run_mcmc(
                sampled,
                model_args,
                model_kwargs,
                key,
                strategy,
                nuts,
                num_warmup=int(num_warmup),
                num_samples=int(num_samples),
                num_chains=int(num_chains),
                chain_method=chain_method,
                progress_bar=bool(progress_bar),
            )
        else:  # the compiled loop, reused by later calls and processes
            samples, stats = run_nuts(
                sampled,
                model_args,
                model_kwargs,
                key,
                init_strategy=strategy,
                num_warmup=int(num_warmup),
                num_samples=int(num_samples),
                num_chains=int(num_chains),
                extra_fields=_EXTRA_FIELDS,
                progress_bar=bool(progress_bar),
                **nuts,
            )
    except RuntimeError as err:
        if "valid initial parameters" not in str(err):
            raise
        msg = (
            "mcmc: the log density is not finite at any start point tried; check "
            "the data, the priors and init (NumPyro said: "
            f"{str(err).splitlines()[0]})"
        )
        raise ModelError(msg) from None

    idata = _to_inference_data(
        sampled, samples, stats, sites, model_args, model_kwargs, log_likelihood
    )
    _warn_on_problems(idata, num_chains)
    return idata


def _run_mcmc(
    model: Callable[..., Any],
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    key: jax.Array,
    strategy: Callable[..., Any],
    nuts: Mapping[str, Any],
    **settings: Any,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """NumPyro's ``MCMC.run``: its progress bar, sequential and parallel chains."""
    kernel = NUTS(model, init_strategy=strategy, **nuts)
    sampler = MCMC(kernel, **settings)
    sampler.run(key, *args, extra_fields=_EXTRA_FIELDS, **kwargs)
    samples = jax.device_get(sampler.get_samples(group_by_chain=True))
    return samples, jax.device_get(sampler.get_extra_fields(group_by_chain=True))


def with_priors(
    model: Callable[..., Any], priors: Mapping[str, npd.Distribution]
) -> Callable[..., Any]:
    """Return ``model`` with the prior of each named parameter replaced.

    A scalar prior given for a vector parameter applies to each entry
    independently. Observed sites cannot be re-assigned. Fits are unaffected
    (they ignore priors); the swap matters for :func:`mcmc` and the predictives.

    Args:
        model: a NumPyro model function.
        priors: ``{site name: numpyro distribution}``.

    Raises:
        ParameterError: a value is not a NumPyro distribution; a swap on an
            observed site or with a shape that does not fit (when the model runs).
    """
    if not isinstance(priors, Mapping):
        msg = f"priors must be a mapping name -> distribution, got {type(priors).__name__}"
        raise ParameterError(msg)
    for name, prior in priors.items():
        if not isinstance(prior, npd.Distribution):
            msg = (
                f"priors[{name!r}] must be a numpyro distribution, "
                f"got {type(prior).__name__}"
            )
            raise ParameterError(msg)
    frozen = dict(priors)

    def swapped(*args: Any, **kwargs: Any) -> Any:
        with _SwapPriors(frozen):
            return model(*args, **kwargs)

    return swapped


def summary(
    idata: az.InferenceData,
    var_names: Sequence[str] | str | None = None,
    *,
    hdi_prob: float = 0.68,
    **kwargs: Any,
) -> Any:
    """Posterior summary table (``arviz.summary``): mean, sd, HDI, mcse, ESS, r_hat.

    Args:
        idata: result of :func:`mcmc` (or any ``InferenceData`` with a posterior).
        var_names: variables to show (default: all posterior variables).
        hdi_prob: probability content of the highest-density interval columns.
        **kwargs: passed on to ``arviz.summary``.

    Returns:
        A ``pandas.DataFrame``, one row per scalar entry (``name[i]`` for vectors).
        ``r_hat`` needs at least two chains: with one chain the column is left
        out and ``table.attrs["note"]`` says so (sample with ``num_chains=4``).

    Raises:
        ParameterError: unknown variable names or ``hdi_prob`` not in (0, 1).
    """
    posterior = _posterior(idata, "summary")
    if isinstance(var_names, str):
        var_names = [var_names]
    if var_names is not None:
        _check_names("summary: var_names", var_names, posterior.data_vars)
        var_names = list(var_names)
    _check_prob("summary: hdi_prob", hdi_prob)
    if posterior.sizes.get("chain", 1) > 1:
        return _arviz().summary(
            idata, var_names=var_names, hdi_prob=float(hdi_prob), **kwargs
        )
    # one chain: no r_hat (ArviZ would log a shape warning and give NaN)
    with _quiet_arviz():
        table = _arviz().summary(
            idata, var_names=var_names, hdi_prob=float(hdi_prob), **kwargs
        )
    table = table.drop(columns=["r_hat"], errors="ignore")
    table.attrs["note"] = "r_hat needs at least two chains (num_chains=4)"
    return table


@contextlib.contextmanager
def _quiet_arviz() -> Any:
    """ArviZ's logged warnings off for a block (its one-chain shape check).

    ArviZ logs through its own ``Logger`` object (``arviz._log``), which is not
    the one ``logging.getLogger("arviz")`` returns.
    """
    log = getattr(_arviz(), "_log", None) or logging.getLogger("arviz")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def credible_interval(
    idata: az.InferenceData, name: str, cl: float = 0.68, *, kind: str = "hdi"
) -> tuple[float, float]:
    """Two-sided credible interval of one scalar parameter.

    ``kind="hdi"``: the shortest interval holding ``cl`` of the draws
    (highest-density interval, ``arviz.hdi``). ``kind="central"``: the
    equal-tailed interval between the ``(1-cl)/2`` and ``(1+cl)/2`` quantiles.

    Args:
        idata: result of :func:`mcmc`.
        name: a scalar parameter, or ``"name[i]"`` for an entry of a vector one.
        cl: probability content, in (0, 1).
        kind: ``"hdi"`` or ``"central"``.

    Returns:
        ``(low, high)`` as floats.

    Raises:
        ParameterError: unknown name, ``cl`` outside (0, 1) or unknown ``kind``.
    """
    _check_prob("credible_interval: cl", cl)
    draws = _draws(idata, name, "credible_interval")
    if kind == "hdi":
        low, high = _arviz().hdi(draws, hdi_prob=float(cl))
    elif kind == "central":
        low, high = np.quantile(draws, [(1.0 - cl) / 2.0, (1.0 + cl) / 2.0])
    else:
        msg = f"credible_interval: kind must be 'hdi' or 'central', got {kind!r}"
        raise ParameterError(msg)
    return float(low), float(high)


def upper_limit(idata: az.InferenceData, name: str = "mu", cl: float = 0.95) -> float:
    """One-sided Bayesian upper limit: the ``cl`` quantile of the posterior of ``name``.

    With a prior flat in the signal strength this is the classic Bayesian limit
    of e.g. the PDG review "Statistics", section 40.4.1 (``∫_{-∞}^{up} p(μ|x) dμ = cl``).

    Args:
        idata: result of :func:`mcmc`.
        name: the parameter of interest (``"name[i]"`` for a vector entry).
        cl: credibility level, in (0, 1).

    Raises:
        ParameterError: unknown name or ``cl`` outside (0, 1).
    """
    _check_prob("upper_limit: cl", cl)
    return float(np.quantile(_draws(idata, name, "upper_limit"), float(cl)))


# --------------------------------------------------------------------------- #
# private helpers


@functools.lru_cache(maxsize=32)
def _prior_swapping(model: Callable[..., Any]) -> Callable[..., Any]:
    """``model`` taking its prior swaps as the keyword ``_PRIORS_KWARG`` (one per model).

    The distributions are then data of the model, not constants of its closure:
    a compiled sampler of the model serves any priors of the same structure.
    """

    def swapped(*args: Any, **kwargs: Any) -> Any:
        with _SwapPriors(kwargs.pop(_PRIORS_KWARG)):
            return model(*args, **kwargs)

    return swapped


class _SwapPriors(Messenger):
    """NumPyro handler replacing the distribution of named latent sample sites."""

    def __init__(self, priors: Mapping[str, npd.Distribution]) -> None:
        self.priors = priors
        super().__init__()

    def process_message(self, msg: dict[str, Any]) -> None:
        if msg["type"] != "sample" or msg["name"] not in self.priors:
            return
        name = msg["name"]
        if msg["is_observed"]:
            msg_ = f"priors[{name!r}]: {name!r} is an observed site, not a parameter"
            raise ParameterError(msg_)
        msg["fn"] = _fit_prior(name, self.priors[name], msg["fn"])


def _histfactory(model: Any) -> Any:
    """The HistFactory ``Model`` if ``model`` is one, else ``None``."""
    from hepprob.histfactory import Model

    return model if isinstance(model, Model) else None


_HF_FUNCTIONS: weakref.WeakKeyDictionary[Any, Callable[..., Any]] = (
    weakref.WeakKeyDictionary()
)


def _model_function(model: Any) -> Callable[..., Any]:
    """A NumPyro model function: HistFactory models give ``numpyro_model()``."""
    if _histfactory(model) is not None:
        try:  # one function per Model: its compiled sampler is then reused
            if model not in _HF_FUNCTIONS:
                _HF_FUNCTIONS[model] = model.numpyro_model()
            return _HF_FUNCTIONS[model]
        except TypeError:  # not weak-referenceable or unhashable
            return model.numpyro_model()
    if not callable(model):
        msg = (
            "model must be a NumPyro model function or a HistFactory Model, "
            f"got {type(model).__name__}"
        )
        raise ModelError(msg)
    return model


def _fit_prior(
    name: str, prior: npd.Distribution, old: npd.Distribution
) -> npd.Distribution:
    """Give ``prior`` the batch/event split of the site's original distribution."""
    batch, event = tuple(old.batch_shape), tuple(old.event_shape)
    if tuple(prior.batch_shape) == batch and tuple(prior.event_shape) == event:
        return prior
    try:
        if tuple(prior.event_shape) == event:
            return prior.expand(batch)
        if prior.event_shape == ():
            return prior.expand(batch + event).to_event(len(event))
    except ValueError:
        pass
    msg = (
        f"priors[{name!r}]: a prior of shape {prior.shape()} does not fit parameter "
        f"{name!r} of shape {batch + event}"
    )
    raise ParameterError(msg)


def _base_dist(fn: npd.Distribution) -> npd.Distribution:
    while isinstance(
        fn, (npd.Independent, npd.ExpandedDistribution, npd.MaskedDistribution)
    ):
        fn = fn.base_dist
    return fn


def _is_latent(site: dict[str, Any]) -> bool:
    return site["type"] == "sample" and not site["is_observed"]


def _inspect(
    model: Callable[..., Any],
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    where: str,
    *,
    compiled: bool = False,
) -> dict[str, dict[str, Any]]:
    """Run the model once at a prior draw: sites, shapes, observed data.

    This happens before the sampler traces anything, so that bad priors, names
    and arguments fail with hepprob's messages. Eagerly by default; with
    ``compiled`` inside one cached ``jax.jit`` (one program, not a dispatch per
    operation: a tenth of the time in a new process), at the price of not
    keeping the distributions (``fn`` is None; ``factor`` says which sites are
    ``numpyro.factor`` terms).
    """
    try:
        if compiled:
            tr = _compiled_trace(model, args, kwargs)
        else:
            tr = handlers.trace(_at_prior_draw(model)).get_trace(*args, **kwargs)
    except TypeError as err:
        msg = f"{where}: calling the model with the given arguments failed: {err}"
        raise ModelError(msg) from err
    out = {}
    for name, site in tr.items():
        if site["type"] not in ("sample", "deterministic"):
            continue
        fn = site.get("fn")
        out[name] = {
            "type": site["type"],
            "is_observed": bool(site.get("is_observed", False)),
            "fn": fn,
            "factor": site.get("factor", isinstance(fn, Unit)),
            "value": site["value"],
            "shape": tuple(jnp.shape(site["value"])),
            "param": (site.get("infer") or {}).get(PARAM_KEY),
        }
    return out


def _at_prior_draw(model: Callable[..., Any]) -> Callable[..., Any]:
    """``model`` with its latent sites at a fixed draw of NumPyro's start rule."""
    return handlers.substitute(handlers.seed(model, 0), substitute_fn=init_to_sample)


def _compiled_trace(
    model: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """The model's sample and deterministic sites from a cached jitted run.

    The values are the program's outputs; the rest of each site (type, observed,
    ``infer``, whether it is a factor) is read while tracing, once per model
    structure, since it does not depend on the values of the arrays.
    """
    arrays, rebuild, signature = split_arguments(args, kwargs)

    def build() -> tuple[Callable[..., Any], dict[str, Any]]:
        seeded = _at_prior_draw(model)
        sites: dict[str, Any] = {}

        def values(arrays: Sequence[Any]) -> dict[str, Any]:
            args, kwargs = rebuild(arrays)
            tr = handlers.trace(seeded).get_trace(*args, **kwargs)
            for name, site in tr.items():
                if site["type"] in ("sample", "deterministic"):
                    sites[name] = {
                        "type": site["type"],
                        "is_observed": site.get("is_observed", False),
                        "factor": isinstance(site.get("fn"), Unit),
                        "infer": site.get("infer"),
                    }
            return {name: tr[name]["value"] for name in sites}

        return jax.jit(values), sites

    run, sites = cached(("inspect", model, signature), build)
    values = run(arrays)
    return {name: {**site, "value": values[name]} for name, site in sites.items()}


def _check_names(what: str, names: Any, known: Any) -> None:
    unknown = [n for n in names if n not in known]
    if unknown:
        msg = f"{what}: unknown name(s) {unknown}; the model has {sorted(known)}"
        raise ParameterError(msg)


def _init_strategy(
    init: str | Mapping[str, Any],
    model: Callable[..., Any],
    sampled: Callable[..., Any],
    latent: dict[str, dict[str, Any]],
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
) -> Callable[..., Any]:
    if isinstance(init, str):
        if init == "prior":
            return init_to_sample
        if init == "mle":
            return init_to_value(values=_interior(_mle(model, args, kwargs), latent))
        msg = f"mcmc: init must be 'prior', 'mle' or a mapping, got {init!r}"
        raise ParameterError(msg)
    if not isinstance(init, Mapping):
        msg = (
            f"mcmc: init must be 'prior', 'mle' or a mapping, got {type(init).__name__}"
        )
        raise ParameterError(msg)
    _check_names("mcmc: init", init, latent)
    values = {}
    for name, value in init.items():
        arr = jnp.asarray(value, dtype=jnp.float64)
        if arr.shape != latent[name]["shape"]:
            msg = (
                f"mcmc: init[{name!r}] must have shape {latent[name]['shape']}, "
                f"got {arr.shape}"
            )
            raise ParameterError(msg)
        values[name] = arr
    return init_to_value(values=_interior(values, latent))


def _mle(
    model: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any]
) -> dict[str, Any]:
    """Best-fit values from :func:`hepprob.fit` as ``{name: array}``."""
    from hepprob.infer import fit
    from hepprob.model import ModelStructure

    result = fit(model, *args, **kwargs)
    values = result.values
    if isinstance(values, Mapping):
        return {k: jnp.asarray(v, dtype=jnp.float64) for k, v in values.items()}
    structure = ModelStructure.from_model(model, *args, **kwargs)
    return dict(structure.unflatten(jnp.asarray(values, dtype=jnp.float64)))


def _interior(
    values: Mapping[str, Any], latent: Mapping[str, dict[str, Any]]
) -> dict[str, Any]:
    """Move start values on the edge of a prior's support just inside it.

    NUTS works in the unconstrained space, where an edge (e.g. ``mu = 0`` at its
    lower bound) is at infinity: clip there and map back.
    """
    out = {}
    for name, value in values.items():
        if name not in latent:
            continue
        transform = biject_to(latent[name]["fn"].support)
        unconstrained = jnp.clip(transform.inv(jnp.asarray(value)), -15.0, 15.0)
        out[name] = transform(unconstrained)
    return out


def _default_chain_method(num_chains: int) -> str:
    if num_chains == 1:
        return "sequential"
    if jax.local_device_count() >= num_chains:
        return "parallel"
    return "vectorized"


def _prng_key(seed: int | jax.Array) -> jax.Array:
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        if seed < 0:
            msg = f"seed must be a non-negative integer, got {seed}"
            raise ParameterError(msg)
        return jax.random.PRNGKey(int(seed))
    if isinstance(seed, jax.Array):
        return seed
    msg = f"seed must be an integer or a JAX PRNG key, got {type(seed).__name__}"
    raise ParameterError(msg)


def _check_count(name: str, value: Any, *, minimum: int) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or value < minimum
    ):
        msg = f"{name} must be an integer >= {minimum}, got {value!r}"
        raise ParameterError(msg)


def _check_prob(name: str, value: Any) -> None:
    try:
        ok = 0.0 < float(value) < 1.0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        msg = f"{name} must be a probability in (0, 1), got {value!r}"
        raise ParameterError(msg)


def _posterior(idata: Any, where: str) -> Any:
    if (
        not isinstance(idata, _arviz().InferenceData)
        or "posterior" not in idata.groups()
    ):
        msg = f"{where}: expected arviz.InferenceData with a posterior group, got {type(idata).__name__}"
        raise ParameterError(msg)
    return idata.posterior


def _draws(idata: az.InferenceData, name: str, where: str) -> np.ndarray:
    """Flat posterior draws of a scalar ``name`` or vector entry ``name[i]``."""
    posterior = _posterior(idata, where)
    base, index = name, None
    if isinstance(name, str) and name.endswith("]") and "[" in name:
        base, _, rest = name.partition("[")
        try:
            index = tuple(int(i) for i in rest[:-1].split(","))
        except ValueError:
            index = None
    if base not in posterior.data_vars:
        msg = f"{where}: unknown parameter {name!r}; posterior has {sorted(posterior.data_vars)}"
        raise ParameterError(msg)
    values = np.asarray(posterior[base].values)
    entry_shape = values.shape[2:]
    if index is None and entry_shape != ():
        msg = f"{where}: {base!r} has shape {entry_shape}; name one entry, e.g. '{base}[0]'"
        raise ParameterError(msg)
    if index is not None:
        if len(index) != len(entry_shape) or any(
            not 0 <= i < n for i, n in zip(index, entry_shape, strict=True)
        ):
            msg = f"{where}: index in {name!r} is out of range for shape {entry_shape}"
            raise ParameterError(msg)
        values = values[(slice(None), slice(None), *index)]
    return values.reshape(-1)


def _pad_rows(tree: Any, n: int, batch_size: int) -> tuple[Any, int]:
    """Repeat the last row so ``lax.map`` batches evenly (one compiled body)."""
    size = min(batch_size, n)
    extra = -n % size

    def pad(x: Any) -> Any:
        x = jnp.asarray(x)
        return jnp.concatenate([x, jnp.repeat(x[-1:], extra, axis=0)]) if extra else x

    return jax.tree_util.tree_map(pad, tree), size


def _dims(name: str, shape: tuple[int, ...]) -> list[str]:
    if len(shape) == 1:
        return [f"{name}_dim"]
    return [f"{name}_dim_{i}" for i in range(len(shape))]


def _to_inference_data(
    model: Callable[..., Any],
    samples: dict[str, Any],
    stats: dict[str, Any],
    sites: dict[str, dict[str, Any]],
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    with_log_likelihood: bool,
) -> az.InferenceData:
    posterior = {n: np.asarray(v) for n, v in samples.items()}
    post_dims = {n: _dims(n, v.shape[2:]) for n, v in posterior.items() if v.ndim > 2}

    observed = {
        n: np.asarray(s["value"])
        for n, s in sites.items()
        if s["type"] == "sample" and s["is_observed"] and not s["factor"]
    }
    obs_dims = {n: _dims(n, v.shape) for n, v in observed.items() if v.ndim > 0}

    rename = {
        "num_steps": "n_steps",
        "accept_prob": "acceptance_rate",
        "adapt_state.step_size": "step_size",
    }
    sample_stats = {rename.get(k, k): np.asarray(v) for k, v in stats.items()}
    if "potential_energy" in sample_stats:
        sample_stats["lp"] = -sample_stats.pop("potential_energy")
    if "n_steps" in sample_stats:
        sample_stats["tree_depth"] = (
            np.floor(np.log2(np.maximum(sample_stats["n_steps"], 1))).astype(np.int64)
            + 1
        )

    attrs = {"inference_library": "numpyro", "creation_library": "hepprob"}
    groups = {
        "posterior": _arviz().dict_to_dataset(
            posterior, library=numpyro, dims=post_dims, attrs=attrs
        ),
        "sample_stats": _arviz().dict_to_dataset(
            sample_stats, library=numpyro, attrs=attrs
        ),
    }
    if observed:
        groups["observed_data"] = _arviz().dict_to_dataset(
            observed, library=numpyro, dims=obs_dims, default_dims=[], attrs=attrs
        )
    if with_log_likelihood and any(
        s["type"] == "sample" and s["is_observed"] for s in sites.values()
    ):
        loglik = _pointwise_log_likelihood(model, samples, args, kwargs)
        ll_dims = {
            n: obs_dims[n]
            if n in observed and observed[n].shape == v.shape[2:]
            else _dims(n, v.shape[2:])
            for n, v in loglik.items()
            if v.ndim > 2
        }
        groups["log_likelihood"] = _arviz().dict_to_dataset(
            loglik, library=numpyro, dims=ll_dims, attrs=attrs
        )
    return _arviz().InferenceData(**groups)


def _pointwise_log_likelihood(
    model: Callable[..., Any],
    samples: dict[str, Any],
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    batch_size: int = 256,
) -> dict[str, np.ndarray]:
    """``log p(obs_i | draw)`` for each observed site, elementwise, per draw."""
    lead = next(iter(samples.values())).shape[:2]
    flat = {n: jnp.reshape(v, (-1, *v.shape[2:])) for n, v in samples.items()}
    n = int(np.prod(lead))
    inputs, size = _pad_rows(flat, n, batch_size)
    arrays, rebuild, signature = split_arguments(args, kwargs)

    def build() -> Callable[..., Any]:
        def one(vals: dict[str, jax.Array], arrays: Any) -> dict[str, jax.Array]:
            args, kwargs = rebuild(arrays)
            fn = handlers.seed(handlers.substitute(model, data=vals), 0)
            tr = handlers.trace(fn).get_trace(*args, **kwargs)
            out = {}
            for name, site in tr.items():
                if site["type"] == "sample" and site["is_observed"]:
                    lp = site["fn"].log_prob(site["value"])
                    if site.get("scale") is not None:
                        lp = site["scale"] * lp
                    out[name] = lp
            return out

        return jax.jit(
            lambda v, a: jax.lax.map(lambda x: one(x, a), v, batch_size=size)
        )

    shapes = jax.tree_util.tree_map(lambda x: (x.shape, x.dtype), inputs)
    run = cached(("loglik", model, signature, str(shapes), size), build)
    res = run(inputs, arrays)
    return {k: np.asarray(v)[:n].reshape((*lead, *v.shape[1:])) for k, v in res.items()}


def _warn_on_problems(idata: az.InferenceData, num_chains: int) -> None:
    """ConvergenceWarning for divergent transitions and, with chains, large r_hat."""
    diverging = idata.sample_stats.get("diverging")
    if diverging is not None and int(diverging.sum()) > 0:
        n = int(diverging.sum())
        msg = (
            f"mcmc: {n} divergent transition(s) after warmup; the posterior may be "
            "biased (raise target_accept_prob, reparametrise or change priors)"
        )
        warnings.warn(msg, ConvergenceWarning, stacklevel=3)
    if num_chains > 1:
        rhat = np.concatenate(
            [np.ravel(rank_rhat(v.values)) for v in idata.posterior.data_vars.values()]
        )
        rhat = rhat[np.isfinite(rhat)]
        worst = float(rhat.max()) if rhat.size else 1.0
        if worst > 1.1:
            msg = f"mcmc: largest r_hat is {worst:.3f} (> 1.1): the chains disagree; sample longer"
            warnings.warn(msg, ConvergenceWarning, stacklevel=3)


def _arviz() -> Any:
    """ArviZ, imported on first use (it pulls in matplotlib: slow to import)."""
    import arviz

    return arviz
