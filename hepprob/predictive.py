"""Prior and posterior predictive draws of a hepprob model.

* :func:`posterior_predictive` redraws every observed site (and recomputes every
  deterministic site, e.g. expected yields) at each posterior draw of
  :func:`hepprob.mcmc`;
* :func:`prior_predictive` draws the parameters from their priors, then the data.

For a HistFactory ``Model`` both add the expected yields per channel and sample
(``"yields/c/s"``) and the replicated main counts per channel (``"counts/c"``).
Both are also importable from :mod:`hepprob.bayes`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as npd
from numpyro import handlers
from numpyro.distributions.distribution import Unit
from numpyro.primitives import Messenger

from hepprob.bayes import (
    _base_dist,
    _check_count,
    _histfactory,
    _inspect,
    _is_latent,
    _model_function,
    _pad_rows,
    _posterior,
    _prng_key,
    with_priors,
)
from hepprob.errors import ParameterError

if TYPE_CHECKING:
    import arviz as az

__all__ = ["posterior_predictive", "prior_predictive"]


def posterior_predictive(
    model: Callable[..., Any],
    idata: az.InferenceData,
    *model_args: Any,
    seed: int | jax.Array = 0,
    priors: Mapping[str, npd.Distribution] | None = None,
    batch_size: int = 256,
    **model_kwargs: Any,
) -> dict[str, np.ndarray]:
    """Replicated data drawn at each posterior draw.

    Each observed site is drawn afresh from its distribution at the draw's
    parameter values (with the shape of its observed data); each deterministic
    site is recomputed. For a HistFactory ``Model`` (given instead of its
    ``numpyro_model()``) the result also holds, per channel ``c`` and sample
    ``s``, the expected yields ``"yields/c/s"`` and the replicated main counts
    ``"counts/c"`` (parameters absent from the posterior, i.e. fixed ones, take
    their suggested init).

    Args:
        model: the model function that was sampled (``model_args`` as for it),
            or a HistFactory ``Model``.
        idata: result of :func:`mcmc` on ``model``.
        *model_args: arguments of ``model``.
        seed: integer seed or PRNG key.
        priors: the ``priors`` given to :func:`mcmc`, if any.
        batch_size: draws evaluated at once (memory vs speed).
        **model_kwargs: keyword arguments of ``model``.

    Returns:
        ``{site: array of shape (chain, draw, *site_shape)}`` for the observed
        and deterministic sites (parameters are in ``idata.posterior``); pass it to
        ``arviz.from_dict(posterior_predictive=...)`` to add it to ``idata``.

    Raises:
        ParameterError: the posterior lacks a parameter of the model.
    """
    _check_count("batch_size", batch_size, minimum=1)
    hf, model = _histfactory(model), _model_function(model)
    fn = with_priors(model, priors) if priors else model
    posterior = _posterior(idata, "posterior_predictive")
    sites = _inspect(fn, model_args, model_kwargs, "posterior_predictive")
    latent = [n for n, s in sites.items() if _is_latent(s)]
    missing = [n for n in latent if n not in posterior.data_vars]
    if missing:
        msg = (
            f"posterior_predictive: idata.posterior lacks the model parameter(s) "
            f"{missing}; it has {sorted(posterior.data_vars)}"
        )
        raise ParameterError(msg)
    nchain, ndraw = posterior.sizes["chain"], posterior.sizes["draw"]
    flat = {
        n: jnp.asarray(posterior[n].values).reshape(
            (nchain * ndraw, *sites[n]["shape"])
        )
        for n in latent
    }
    keys = jax.random.split(_prng_key(seed), nchain * ndraw)
    out = _replicate(fn, flat, keys, model_args, model_kwargs, batch_size)
    out = {n: v for n, v in out.items() if n not in flat}  # drop the inputs
    if hf is not None:
        out.update(_histfactory_yields(hf, flat, out))
    return {n: v.reshape((nchain, ndraw, *v.shape[1:])) for n, v in out.items()}


def prior_predictive(
    model: Callable[..., Any],
    *model_args: Any,
    num_samples: int = 500,
    seed: int | jax.Array = 0,
    priors: Mapping[str, npd.Distribution] | None = None,
    batch_size: int = 256,
    **model_kwargs: Any,
) -> dict[str, np.ndarray]:
    """Parameters drawn from their priors, and replicated data drawn at each.

    Args:
        model: a NumPyro model function (every prior must be proper), or a
            HistFactory ``Model``: then the result also holds ``"yields/c/s"``
            and ``"counts/c"`` per channel ``c`` and sample ``s``.
        *model_args: arguments of ``model`` (observed data fix the data shapes).
        num_samples: number of prior draws.
        seed: integer seed or PRNG key.
        priors: ``{name: distribution}`` replacing priors (see :func:`with_priors`).
        batch_size: draws evaluated at once.
        **model_kwargs: keyword arguments of ``model``.

    Returns:
        ``{site: array of shape (num_samples, *site_shape)}`` for every parameter,
        observed and deterministic site.

    Raises:
        ParameterError: a parameter has an improper prior (name it in ``priors``).
    """
    _check_count("num_samples", num_samples, minimum=1)
    _check_count("batch_size", batch_size, minimum=1)
    hf, model = _histfactory(model), _model_function(model)
    fn = with_priors(model, priors) if priors else model
    sites = _inspect(fn, model_args, model_kwargs, "prior_predictive")
    improper = [
        n
        for n, s in sites.items()
        if _is_latent(s) and isinstance(_base_dist(s["fn"]), npd.ImproperUniform)
    ]
    if improper:
        msg = (
            f"prior_predictive: parameter(s) {improper} have an improper (flat, "
            "unbounded) prior; give them finite bounds or a proper prior with "
            "priors={name: distribution}"
        )
        raise ParameterError(msg)
    keys = jax.random.split(_prng_key(seed), int(num_samples))
    out = _replicate(fn, {}, keys, model_args, model_kwargs, batch_size)
    if hf is not None:
        out.update(_histfactory_yields(hf, out, out))
    return out


# --------------------------------------------------------------------------- #
# private helpers


class _Unobserve(Messenger):
    """NumPyro handler turning observed sites into fresh draws of the same shape."""

    def process_message(self, msg: dict[str, Any]) -> None:
        if msg["type"] != "sample" or not msg["is_observed"]:
            return
        if isinstance(msg["fn"], Unit):  # numpyro.factor: nothing to draw
            return
        obs_shape = jnp.shape(msg["value"])
        extra = len(obs_shape) - len(msg["fn"].shape())
        msg["kwargs"]["sample_shape"] = tuple(obs_shape[:extra]) if extra > 0 else ()
        msg["value"] = None
        msg["is_observed"] = False


def _histfactory_yields(
    hf: Any, values: Mapping[str, Any], replicas: Mapping[str, Any]
) -> dict[str, np.ndarray]:
    """Expected yields per channel and sample, and replicated counts per channel.

    ``values`` holds parameter draws by parameter-set name, each with one leading
    draw axis; parameters it lacks take ``config.suggested_init()``.
    """
    cfg = hf.config
    n = int(np.shape(next(iter(values.values())))[0])
    pars = np.tile(np.asarray(cfg.suggested_init(), dtype=np.float64), (n, 1))
    for name in cfg.par_order:
        if name in values:
            pars[:, cfg.par_slice(name)] = np.asarray(values[name]).reshape(n, -1)
    by_sample = np.asarray(hf.main_model.expected_data(pars, return_by_sample=True))
    out = {}
    data = replicas.get("data")
    for channel, sl in cfg.channel_slices.items():
        for k, sample in enumerate(cfg.samples):
            out[f"yields/{channel}/{sample}"] = by_sample[:, k, sl]
        if data is not None:
            out[f"counts/{channel}"] = np.asarray(data)[:, sl]
    return out


def _replicate(
    model: Callable[..., Any],
    values: Mapping[str, jax.Array],
    keys: jax.Array,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    batch_size: int,
) -> dict[str, np.ndarray]:
    """Run the model once per key (with ``values`` substituted), observed sites redrawn."""

    def one(inputs: tuple[dict[str, jax.Array], jax.Array]) -> dict[str, jax.Array]:
        vals, key = inputs
        fn = handlers.seed(_Unobserve(handlers.substitute(model, data=vals)), key)
        tr = handlers.trace(fn).get_trace(*args, **kwargs)
        return {
            n: s["value"]
            for n, s in tr.items()
            if s["type"] in ("sample", "deterministic")
            and not isinstance(s.get("fn"), Unit)
        }

    n = keys.shape[0]
    inputs, size = _pad_rows((dict(values), keys), n, batch_size)
    run = jax.jit(lambda xs: jax.lax.map(one, xs, batch_size=size))
    return {k: np.asarray(a)[:n] for k, a in jax.device_get(run(inputs)).items()}
