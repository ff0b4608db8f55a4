r"""Weighted unbinned fits: the weighted NLL and its corrected covariance matrices.

With per-event weights :math:`w_e` (efficiency corrections, sWeights) the fit
minimises the weighted NLL :math:`-\sum_e w_e \log p(x_e;\theta)` (for an
``Extended`` site :math:`\nu - \sum_e w_e \log g(x_e;\theta)`, with
:math:`g = \sum_k \nu_k p_k` the event intensity), and the inverse Hessian
:math:`H^{-1}` no longer covers. Two corrections, as ``errors=``:

``"sumw2"``
    :math:`C = H^{-1} H_2 H^{-1}`, :math:`H_2` the Hessian of the same NLL with
    the weights squared (RooFit's ``SumW2Error``; F. James, *Statistical
    Methods in Experimental Physics*, 2nd ed., sec. 8.5.2). Correct only in
    special cases (e.g. constant weights).
``"asymptotic"``
    :math:`C = H^{-1} D H^{-1}` with
    :math:`D = \sum_e w_e^2\, \partial_\theta \log g_e\, \partial_\theta \log g_e^T`
    (C. Langenbruch, Eur. Phys. J. C 82 (2022) 393, arXiv:1911.01303, eq. (18):
    the sandwich estimator of the weighted score's variance). For an extended
    site the score is that of the unnormalised intensity :math:`g`, as the
    events are a Poisson process; sites without weights (binned channels,
    constraints) add their own Hessian to :math:`D`.

The per-event scores come without knowing the distribution: a site's
log-likelihood is linear in its weights, so
:math:`\partial_{w_e}\partial_\theta \log L = \partial_\theta \log g_e`, one
forward-over-reverse derivative. Everything here is pure JAX, so
:func:`covariance` vmaps over toys.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as npd

from hepprob._program_cache import cached, on_clear, split_arguments
from hepprob._typing import Array, ArrayLike
from hepprob.errors import DataError, ParameterError
from hepprob.model import (
    ModelStructure,
    Reweight,
    is_extended,
    observed_log_probs,
    per_event_shape,
    site_weights,
    trace_model,
)

__all__ = ["ERRORS", "covariance", "fit", "weighted_sites"]

ERRORS = ("hesse", "sumw2", "asymptotic")

# keyword through which hepprob.fit hands the weights to the wrapped model
_WEIGHTS_KW = "hepprob_event_weights"


def __dir__() -> list[str]:
    return __all__


def fit(
    model: Callable[..., Any],
    model_args: tuple[Any, ...],
    model_kwargs: Mapping[str, Any],
    *,
    weights: ArrayLike | Mapping[str, ArrayLike] | None,
    errors: str,
    **fit_options: Any,
) -> Any:
    """``hepprob.fit(model, *args, weights=..., errors=...)``: see the module.

    ``weights`` is one array (for a model with one unbinned data site) or
    ``{site name: array}``; ``None`` keeps the weights the model gives its sites
    (``Extended(..., weights=w)`` or ``numpyro.handlers.scale``). The fit is the
    ordinary one of the weighted NLL; ``errors`` replaces its covariance.
    """
    from hepprob.infer.fit import fit as plain_fit

    _check_errors(errors)
    if fit_options.pop("x0", None) is not None:
        msg = "fit: weights and errors apply to models, not to plain functions (x0)"
        raise ParameterError(msg)
    kwargs = dict(model_kwargs)
    if weights is not None:
        kwargs[_WEIGHTS_KW] = _by_site(model, model_args, model_kwargs, weights)
        model = _weighted_model(model)
    result = plain_fit(model, *model_args, **fit_options, **kwargs)
    if errors == "hesse":
        return result
    fixed = np.asarray([result.fixed[n] for n in result.par_names])
    cov = covariance(model, result.x, *model_args, errors=errors, fixed=fixed, **kwargs)
    return _with_covariance(result, np.asarray(cov), errors)


def covariance(
    model: Callable[..., Any],
    x: ArrayLike,
    *model_args: Any,
    errors: str = "asymptotic",
    fixed: ArrayLike | None = None,
    weights: Mapping[str, ArrayLike] | None = None,
    **model_kwargs: Any,
) -> Array:
    r"""Covariance of a weighted fit at its minimum ``x`` (flat, ``par_names`` order).

    Pure JAX: ``jax.vmap`` it over toys (``x`` and the data batched).

    Args:
        model: the model; weighted sites carry their weights
            (``Extended(weights=...)``, ``numpyro.handlers.scale``) unless
            ``weights`` gives them.
        x: the best fit.
        *model_args: the model's arguments (the data).
        errors: ``"hesse"`` (:math:`H^{-1}`), ``"sumw2"`` or ``"asymptotic"``.
        fixed: boolean mask of fixed parameters (their rows and columns are 0).
        weights: ``{site name: per-event weights}`` replacing the model's.
        **model_kwargs: the model's keyword arguments.

    Returns:
        ``(n, n)`` covariance matrix.

    Raises:
        ParameterError: unknown ``errors``; ``"sumw2"``/``"asymptotic"`` for a
            model without weighted sites.
    """
    _check_errors(errors)
    if weights is not None:
        model_kwargs = {**model_kwargs, _WEIGHTS_KW: dict(weights)}
        model = _weighted_model(model)
    arrays, rebuild, signature = split_arguments(model_args, model_kwargs)
    program = cached(
        ("weighted.covariance", model, errors, signature),
        lambda: jax.jit(_covariance_program(model, rebuild, errors)),
    )
    x = jnp.asarray(x, dtype=jnp.float64)
    mask = jnp.zeros(x.shape, bool) if fixed is None else jnp.asarray(fixed, bool)
    return program(x, mask, arrays)


def _covariance_program(
    model: Callable[..., Any], rebuild: Callable[..., Any], errors: str
) -> Callable[..., Array]:
    """``(x, fixed, data arrays) -> covariance`` of one model and argument layout."""

    def program(x: Array, fixed: Array, arrays: Any) -> Array:
        args, kwargs = rebuild(arrays)
        structure = ModelStructure.from_model(model, *args, **kwargs)
        n = structure.size
        w = weighted_sites(model, x, structure, args, kwargs)
        if errors != "hesse" and not w:
            msg = (
                f"errors={errors!r} needs weighted data: give hepprob.fit "
                "weights=..., or weights to an observed site"
            )
            raise ParameterError(msg)

        def loglike(vec: Array, site_w: dict[str, Array]) -> dict[str, Array]:
            reweighted = Reweight(model, site_w) if site_w else model
            return observed_log_probs(reweighted, structure, args, kwargs)(vec)

        def total(vec: Array, site_w: dict[str, Array]) -> Array:
            return sum(loglike(vec, site_w).values(), jnp.zeros(()))

        hess = -jax.hessian(total)(x, w)
        if errors == "hesse":
            middle = hess
        elif errors == "sumw2":
            middle = -jax.hessian(total)(x, {s: v**2 for s, v in w.items()})
        else:

            def unweighted(vec: Array) -> Array:
                parts = loglike(vec, w)
                return sum((lp for s, lp in parts.items() if s not in w), jnp.zeros(()))

            # scores[s][e, k] = d log g_e / d theta_k (the weights enter linearly)
            scores = jax.jacfwd(lambda vec: jax.grad(total, argnums=1)(vec, w))(x)
            middle = -jax.hessian(unweighted)(x)
            for s, v in w.items():
                score = scores[s].reshape(-1, n)
                middle = middle + (score * jnp.ravel(v)[:, None] ** 2).T @ score
        return _sandwich(hess, middle, ~fixed)

    return program


def weighted_sites(
    model: Callable[..., Any],
    x: Array,
    structure: ModelStructure,
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
) -> dict[str, Array]:
    """``{observed site: its per-event weights}`` of the sites that carry weights."""
    tr = trace_model(model, structure.unflatten(x), args, kwargs)
    out = {}
    for name in structure.observed:
        w = site_weights(tr[name])
        if w is not None:
            out[name] = w
    return out


def _sandwich(hess: Array, middle: Array, free: Array) -> Array:
    """:math:`H^{-1} M H^{-1}` on the free block; zero rows/columns for fixed ones."""
    both = free[:, None] & free[None, :]
    eye = jnp.eye(hess.shape[0], dtype=hess.dtype)
    inv = jnp.linalg.inv(jnp.where(both, 0.5 * (hess + hess.T), eye))
    cov = inv @ jnp.where(both, middle, 0.0) @ inv
    return jnp.where(both, 0.5 * (cov + cov.T), 0.0)


def _check_errors(errors: str) -> None:
    if errors not in ERRORS:
        msg = f"errors must be one of {ERRORS}, got {errors!r}"
        raise ParameterError(msg)


@on_clear
@functools.lru_cache(maxsize=64)
def _weighted_model(model: Callable[..., Any]) -> Callable[..., Any]:
    """``model`` taking its sites' weights as one more keyword (one per model, so
    that compiled fits are reused across datasets and weights)."""

    def weighted(*args: Any, **kwargs: Any) -> Any:
        site_w = kwargs.pop(_WEIGHTS_KW)
        return Reweight(model, site_w)(*args, **kwargs)

    return weighted


def _by_site(
    model: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    weights: ArrayLike | Mapping[str, ArrayLike],
) -> dict[str, Array]:
    """Checked ``{site: weights}`` from ``hepprob.fit``'s ``weights`` argument."""
    tr = trace_model(model, None, args, kwargs)
    observed = ModelStructure.from_model(model, *args, **kwargs).observed
    unbinned = [
        name
        for name in observed
        if not isinstance(tr[name]["fn"], npd.Unit)
        and (
            is_extended(tr[name]["fn"])
            or per_event_shape(tr[name]["fn"], tr[name]["value"])
        )
    ]
    if not isinstance(weights, Mapping):
        if len(unbinned) != 1:
            msg = (
                "weights: the model has "
                f"{len(unbinned)} unbinned data sites {sorted(unbinned)}; give "
                "weights as {site name: array}"
            )
            raise DataError(msg)
        weights = {next(iter(unbinned)): weights}
    out = {}
    for name, w in weights.items():
        if name not in unbinned:
            msg = (
                f"weights: {name!r} is not an unbinned data site of the model; "
                f"those are {sorted(unbinned)}"
            )
            raise DataError(msg)
        arr = np.asarray(w, dtype=np.float64)
        if not np.all(np.isfinite(arr)):
            msg = f"weights of site {name!r} must be finite, got NaN or inf"
            raise DataError(msg)
        out[name] = jnp.asarray(arr)
    return out


def _with_covariance(result: Any, cov: np.ndarray, errors: str) -> Any:
    """``result`` with ``cov`` as its covariance (errors and correlation follow)."""
    return type(result)(
        groups=result._groups,
        x=result.x,
        covariance=cov,
        nll=result.nll,
        converged=result.converged,
        edm=result.edm,
        status=result.status,
        n_iter=result.n_iter,
        message=f"{result.message}; covariance: {errors}",
        method=result.method,
        problem=result._problem,
    )
