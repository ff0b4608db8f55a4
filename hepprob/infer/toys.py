"""Pseudo-experiments: generate from any model with jax.random, fit them in one vmap.

:func:`simulate` redraws every observed site of a model (unbinned, binned,
HistFactory main and auxiliary data) at given parameter values; :func:`toys`
also fits each toy with the pure-JAX minimiser (the one driver of
:mod:`hepprob.infer._batch`), all toys of a batch in one vectorised program,
and returns a :class:`ToyResult` with pulls. A toy whose fit fails is kept,
flagged by ``converged=False`` with its ``status`` (saddle, flat direction,
iteration limit, ...), and left out of the pull summary; it never aborts the
run.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as npd
from numpyro import handlers
from numpyro.primitives import Messenger

from hepprob._program_cache import cached, split_arguments
from hepprob._typing import Array, ArrayLike, PRNGKey
from hepprob.errors import ParameterError
from hepprob.infer import _batch
from hepprob.infer.minimize import FitStatus
from hepprob.model import ModelStructure, log_likelihood, trace_model

__all__ = ["ToyResult", "simulate", "toys"]


class _Redraw(Messenger):
    """Replace the value of each observed site by a fresh draw of its distribution.

    ``numpyro.factor`` sites (``Unit`` distributions) are constants and stay. The
    draw has the shape of the observed value, so a model written for a dataset of
    N events yields toys of N events.
    """

    def __init__(self, fn: Callable[..., Any], key: PRNGKey) -> None:
        super().__init__(fn)
        self.key = key
        self.count = 0

    def process_message(self, msg: dict[str, Any]) -> None:
        if msg["type"] != "sample" or not msg["is_observed"]:
            return
        dist = msg["fn"]
        if isinstance(dist, npd.Unit):
            return
        obs_shape = jnp.shape(msg["value"])
        batch = obs_shape[: len(obs_shape) - len(dist.event_shape)]
        key = jax.random.fold_in(self.key, self.count)
        self.count += 1
        draw = dist.expand(jax.lax.broadcast_shapes(dist.batch_shape, batch)).sample(
            key
        )
        msg["value"] = jnp.broadcast_to(draw, obs_shape).astype(jnp.result_type(float))


def _observed_sites(
    model: Callable[..., Any], structure: ModelStructure
) -> Callable[..., dict[str, Array]]:
    """``(key, vector, args, kwargs) -> {site: redrawn value}`` for the data sites."""

    def draw(key: PRNGKey, vector: Array, args: Any, kwargs: Any) -> dict[str, Array]:
        redraw = _Redraw(model, key)
        tr = trace_model(redraw, structure.unflatten(vector), args, kwargs)
        return {name: tr[name]["value"] for name in structure.observed}

    return draw


def simulate(
    model: Callable[..., Any],
    params: Mapping[str, ArrayLike],
    n_toys: int,
    key: PRNGKey,
    *model_args: Any,
    **model_kwargs: Any,
) -> dict[str, Array]:
    """Draw ``n_toys`` datasets from ``model`` at ``params``.

    Args:
        model: a NumPyro model with ``hepprob.param`` sites and observed data.
        params: parameter values by name (missing ones take their ``init``).
        n_toys: number of pseudo-experiments.
        key: JAX PRNG key; the same key gives the same toys.
        *model_args: the model's arguments (the observed data fix the shapes).

    Returns:
        ``{observed site: array of shape (n_toys, *data shape)}``.
    """
    structure = ModelStructure.from_model(model, *model_args, **model_kwargs)
    vector = structure.flatten(params)
    draw = _observed_sites(model, structure)
    keys = jax.random.split(key, _check_count(n_toys))
    return jax.jit(jax.vmap(lambda k: draw(k, vector, model_args, model_kwargs)))(keys)


@dataclasses.dataclass(frozen=True)
class ToyResult:
    """Fits of pseudo-experiments generated at ``truth``.

    Attributes:
        par_names: names of the flat parameter vector's entries.
        truth: generating values, shape (npar,).
        values: fitted values, shape (n_toys, npar).
        errors: Hesse errors per toy (0 for fixed parameters), shape (n_toys, npar).
        nll: minimum NLL per toy.
        converged: per toy, a true minimum; failed toys are kept, flagged, and
            left out of :meth:`pull_summary`.
        fixed: which parameters were held fixed.
        status: per toy, the :class:`~hepprob.infer.minimize.FitStatus` value
            (``"converged"``, ``"saddle"``, ``"degenerate"``,
            ``"iteration_limit"``, ``"stalled"``, ``"not_finite"``).
    """

    par_names: list[str]
    truth: np.ndarray
    values: np.ndarray
    errors: np.ndarray
    nll: np.ndarray
    converged: np.ndarray
    fixed: np.ndarray
    status: np.ndarray

    @property
    def n_toys(self) -> int:
        """Number of toys."""
        return int(self.values.shape[0])

    @property
    def pulls(self) -> np.ndarray:
        """(fitted − truth) / error per toy and parameter (NaN where error is 0)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(
                self.errors > 0, (self.values - self.truth) / self.errors, np.nan
            )

    def pull_summary(self) -> dict[str, dict[str, float]]:
        """Mean and width of the pulls of converged toys, with their standard errors.

        For Gaussian pulls of n toys: σ(mean) = s/√n and σ(width) ≈ s/√(2(n−1)).
        """
        good = self.pulls[self.converged]
        n = max(good.shape[0], 2)
        out = {}
        for i, name in enumerate(self.par_names):
            if self.fixed[i]:
                continue
            col = good[:, i]
            mean, width = float(np.mean(col)), float(np.std(col, ddof=1))
            out[name] = {
                "mean": mean,
                "mean_error": width / math.sqrt(n),
                "width": width,
                "width_error": width / math.sqrt(2 * (n - 1)),
            }
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary (per-toy arrays as lists)."""
        return {
            "par_names": list(self.par_names),
            "truth": self.truth.tolist(),
            "values": self.values.tolist(),
            "errors": self.errors.tolist(),
            "nll": self.nll.tolist(),
            "converged": self.converged.tolist(),
            "status": self.status.tolist(),
            "pulls": self.pull_summary(),
        }


def toys(
    model: Callable[..., Any],
    params: Mapping[str, ArrayLike],
    n_toys: int,
    key: PRNGKey,
    *model_args: Any,
    init: Mapping[str, ArrayLike] | None = None,
    fixed: Mapping[str, ArrayLike] | list[str] | None = None,
    batch_size: int = 1000,
    **model_kwargs: Any,
) -> ToyResult:
    """Generate ``n_toys`` datasets at ``params`` and fit each one.

    All toys of a batch are generated and fitted by one jitted, vmapped program.
    It compiles once per model structure and batch size and is kept: every
    batch, and a later call with new truth, start values or data of the same
    shapes, reuses it.

    Args:
        model: a NumPyro model with ``hepprob.param`` sites and observed data.
        params: generating parameter values by name (missing ones: ``init``).
        n_toys: number of pseudo-experiments.
        key: JAX PRNG key (reproducible).
        *model_args: the model's arguments, e.g. the observed dataset (its shape
            fixes the toys' shape).
        init: fit start values by name (default: the generating values).
        fixed: parameters held fixed in the fits: a list of names (fixed at their
            generating value) or ``{name: value}``.
        batch_size: toys per vectorised batch (memory vs speed).

    Returns:
        A :class:`ToyResult` with values, errors, pulls and convergence flags.

    Example:
        >>> import jax, numpy as np, numpyro, hepprob
        >>> def model(x):
        ...     mu = hepprob.param("mu", 0.0, -5, 5)
        ...     numpyro.sample("x", numpyro.distributions.Normal(mu, 1.0), obs=x)
        >>> res = hepprob.toys(model, {"mu": 0.5}, 20, jax.random.PRNGKey(0), np.zeros(50))
        >>> res.values.shape
        (20, 1)
    """
    n_toys = _check_count(n_toys)
    if batch_size < 1:
        msg = f"toys: batch_size must be >= 1, got {batch_size}"
        raise ParameterError(msg)
    structure = ModelStructure.from_model(model, *model_args, **model_kwargs)
    truth = structure.flatten(params)
    fixed_mask, start = _fixed_and_start(structure, truth, init, fixed)
    lower, upper = jnp.asarray(structure.lower), jnp.asarray(structure.upper)
    arrays, rebuild, signature = split_arguments(model_args, model_kwargs)
    batch = cached(
        ("toys", model, signature),
        lambda: _toy_program(model, structure, rebuild),
    )
    keys = np.asarray(jax.random.split(key, n_toys))
    pieces = []
    # the driver's padding rule (a few batch sizes per model; padded rows
    # repeat the last key and are dropped)
    for first, size, bucket in _batch.chunks(n_toys, int(batch_size)):
        idx = np.minimum(np.arange(bucket), size - 1) + first
        out = batch(keys[idx], truth, start, fixed_mask, lower, upper, arrays)
        pieces.append([np.asarray(o)[:size] for o in out])
    values, errors, nll, status = (
        np.concatenate([p[j] for p in pieces]) for j in range(4)
    )
    names = np.array([s.value for s in FitStatus])
    return ToyResult(
        par_names=structure.par_names,
        truth=np.asarray(truth),
        values=values,
        errors=errors,
        nll=nll,
        converged=status == FitStatus.CONVERGED.code,
        fixed=np.asarray(fixed_mask),
        status=names[status],
    )


def _check_count(n_toys: int) -> int:
    if int(n_toys) != n_toys or n_toys < 1:
        msg = f"n_toys must be a positive integer, got {n_toys!r}"
        raise ParameterError(msg)
    return int(n_toys)


def _toy_program(
    model: Callable[..., Any],
    structure: ModelStructure,
    rebuild: Callable[..., Any],
) -> Callable[..., tuple[Array, ...]]:
    """The jitted, vmapped generate + fit + Hesse of a batch of toy keys.

    Everything that changes between calls (truth, start, fixed mask, bounds, the
    model's array arguments) is an argument, so the program compiles once per
    model structure and batch size. Errors are those of
    :func:`hepprob.infer._batch.covariance` (NaN in a flat direction).
    """

    def program(keys, truth, start, fixed_mask, lower, upper, arrays):  # type: ignore[no-untyped-def]
        model_args, model_kwargs = rebuild(arrays)
        draw = _observed_sites(model, structure)

        def toy_nll(vector: Array, data: dict[str, Array]) -> Array:
            conditioned = handlers.condition(model, data=data)
            nll = log_likelihood(conditioned, structure, model_args, model_kwargs)
            return -nll(vector)

        def one(k: PRNGKey) -> tuple[Array, ...]:
            data = draw(k, truth, model_args, model_kwargs)
            x, fun, hess, status, _, _ = _batch.solve(
                toy_nll, data, start, lower, upper, fixed_mask
            )
            cov, _, _ = _batch.inverse_hessian(hess, ~fixed_mask, jnp)
            diag = jnp.diag(cov)
            err = jnp.where(jnp.isnan(diag), jnp.nan, jnp.sqrt(jnp.clip(diag, 0.0)))
            return x, err, fun, status

        return jax.vmap(one)(keys)

    return jax.jit(program)


def _fixed_and_start(
    structure: ModelStructure,
    truth: Array,
    init: Mapping[str, ArrayLike] | None,
    fixed: Mapping[str, ArrayLike] | list[str] | None,
) -> tuple[Array, Array]:
    """Boolean mask of fixed entries and the fit start vector."""
    start_values = dict(structure.unflatten(truth))
    start_values.update(init or {})
    mask_values = {p.name: np.zeros(p.shape, bool) for p in structure.params}
    names = list(fixed) if fixed is not None else []
    for name in names:
        if name not in mask_values:
            msg = f"toys: unknown fixed parameter {name!r}; model has {structure.names}"
            raise ParameterError(msg)
        mask_values[name] = np.ones(mask_values[name].shape, bool)
        if isinstance(fixed, Mapping):
            start_values[name] = fixed[name]
    start = structure.flatten(start_values)
    mask = jnp.concatenate(
        [jnp.ravel(jnp.asarray(mask_values[p.name])) for p in structure.params]
    )
    return mask, start
