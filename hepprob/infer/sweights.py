r"""sWeights: unfold the species of an extended unbinned fit (sPlot).

For events :math:`x_e`, species yields :math:`N_k` and normalised shapes
:math:`f_k`, with the event intensity :math:`g_e = \sum_k N_k f_k(x_e)`
(M. Pivk, F. R. Le Diberder, NIM A 555 (2005) 356, eqs. (13)-(14)):

.. math::

    V^{-1}_{jk} = \sum_e \frac{f_j(x_e) f_k(x_e)}{g_e^2}, \qquad
    {}_s\mathcal{P}_k(x_e) = \frac{\sum_j V_{kj} f_j(x_e)}{g_e}.

Here :math:`f_k / g_e = \partial \log g_e / \partial N_k`, the per-event score
of the yield, which hepprob reads off any ``Extended`` site of a model by
differentiating its log-likelihood in the event weights (it is linear in them),
so the shapes can be any distribution. Sum rules at the fitted point:
:math:`\sum_e {}_s\mathcal{P}_k(x_e) = N_k` and
:math:`\sum_k {}_s\mathcal{P}_k(x_e) = 1`. With weighted events the sums over
events carry the weights (as hepstats' ``sample_weight``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from hepprob._program_cache import cached, split_arguments
from hepprob._typing import Array
from hepprob.errors import HepprobWarning, ModelError, ParameterError
from hepprob.model import ModelStructure, Reweight, is_extended, trace_model

__all__ = ["sweights"]

# the maximum-likelihood sum rule sum_e w_e f_k / g_e = 1 (Pivk, eq. (17)) is
# checked to this absolute tolerance
_SUM_RULE_TOL = 1e-3


def __dir__() -> list[str]:
    return __all__


def sweights(
    result: Any,
    model: Callable[..., Any],
    data: Any,
    yields: Sequence[str] = ("nsig", "nbkg"),
    *model_args: Any,
    site: str | None = None,
    **model_kwargs: Any,
) -> dict[str, np.ndarray]:
    r"""Per-event sWeights of the species whose yields are ``yields``.

    Args:
        result: the :class:`~hepprob.infer.FitResult` of ``model`` on ``data``.
        model: a model with one ``Extended`` site (or give ``site``) whose
            component yields are the parameters ``yields``.
        data: the model's first argument (the events).
        yields: names of the yield parameters, one per species, all species
            of the site.
        *model_args: further positional arguments of the model.
        site: name of the ``Extended`` site, if the model has several.
        **model_kwargs: the model's keyword arguments.

    Returns:
        ``{yield name: sWeights}``, one per row of the site's dataset (NaN for
        padding rows of a padded dataset).

    Raises:
        ModelError: no (or an ambiguous) ``Extended`` site, or yields that are
            not the complete set of species yields of that site.
        ParameterError: unknown or non-scalar yield names; a result that is
            not a fit of this model.

    Example:
        >>> res = hepprob.fit(model, mass)  # doctest: +SKIP
        >>> sw = hepprob.infer.sweights(res, model, mass, ["nsig", "nbkg"])  # doctest: +SKIP
        >>> sw["nsig"].sum()  # = res.values["nsig"]  # doctest: +SKIP
    """
    args = (data, *model_args)
    structure = ModelStructure.from_model(model, *args, **model_kwargs)
    if list(result.par_names) != structure.par_names:
        msg = (
            f"sweights: the fit result has parameters {list(result.par_names)}, "
            f"the model {structure.par_names}: pass the result of fitting this model"
        )
        raise ParameterError(msg)
    names = [yields] if isinstance(yields, str) else list(yields)
    index = [_scalar_index(structure, name) for name in names]
    tr = trace_model(model, structure.unflatten(result.x), args, model_kwargs)
    name = _extended_site(tr, structure, site)
    events = tr[name]["value"]
    weights = tr[name]["fn"].weights
    if weights is None:
        weights = jnp.ones(jnp.shape(events)[0])
    arrays, rebuild, signature = split_arguments(args, model_kwargs)
    program = cached(
        ("sweights", model, name, tuple(index), signature),
        lambda: jax.jit(_scores_program(model, rebuild, name, np.asarray(index))),
    )
    score = np.asarray(program(jnp.asarray(result.x), weights, arrays))  # (N, K)
    w = np.asarray(weights, dtype=np.float64)
    _check_sum_rules(score, w, result.x[index], names)
    inverse = score.T @ (w[:, None] * score)
    sw = score @ np.linalg.inv(inverse)
    padding = _padding_rows(np.asarray(events), len(tr[name]["fn"].event_shape) - 1)
    sw[padding] = np.nan
    return {n: sw[:, k] for k, n in enumerate(names)}


def _scores_program(
    model: Callable[..., Any], rebuild: Callable[..., Any], site: str, index: Any
) -> Callable[..., Array]:
    """``(x, weights, data) -> d log g_e / d N_k`` as ``(N, K)``, jitted.

    The site's log-likelihood is sum_e w_e log g_e - nu, linear in the
    weights, so its mixed derivative in weights and yields is the score.
    """

    def program(x: Array, weights: Array, arrays: Any) -> Array:
        args, kwargs = rebuild(arrays)
        structure = ModelStructure.from_model(model, *args, **kwargs)

        def loglike(yields: Array, w: Array) -> Array:
            vec = x.at[index].set(yields)
            values = structure.unflatten(vec)
            tr = trace_model(Reweight(model, {site: w}), values, args, kwargs)
            s = tr[site]
            return jnp.sum(s["fn"].log_prob(s["value"]))

        return jax.jacfwd(jax.grad(loglike, argnums=1))(x[index], weights)

    return program


def _check_sum_rules(
    score: np.ndarray, w: np.ndarray, yields: np.ndarray, names: list[str]
) -> None:
    """Complete linear yields (``sum_k N_k s_ek = 1``) and the ML sum rule."""
    completeness = score @ yields
    real = np.any(score != 0.0, axis=1)
    if real.any() and np.max(np.abs(completeness[real] - 1.0)) > 1e-6:
        msg = (
            f"sweights: the yields {names} are not the complete set of species yields "
            "of the Extended site (each must multiply one component, and every "
            "component needs one)"
        )
        raise ModelError(msg)
    rule = w @ score
    if np.max(np.abs(rule - 1.0)) > _SUM_RULE_TOL:
        msg = (
            "sweights: the maximum-likelihood sum rule sum_e f_k/g_e = 1 fails "
            f"({dict(zip(names, np.round(rule, 4).tolist(), strict=True))}): the "
            "result is not the free fit of these yields to these data (a yield at "
            "its bound, or fixed?), so the sum rules of the sWeights do not hold"
        )
        warnings.warn(msg, HepprobWarning, stacklevel=3)


def _scalar_index(structure: ModelStructure, name: str) -> int:
    info = next((p for p in structure.params if p.name == name), None)
    if info is None or info.shape != ():
        if info is None and name in structure.par_names:
            return structure.index(name)
        msg = (
            f"sweights: yield {name!r} must be a scalar parameter of the model; "
            f"it has {structure.par_names}"
        )
        raise ParameterError(msg)
    return structure.index(name)


def _extended_site(
    tr: Mapping[str, Any], structure: ModelStructure, site: str | None
) -> str:
    found = [n for n in structure.observed if is_extended(tr[n]["fn"])]
    if site is not None:
        if site not in found:
            msg = f"sweights: site {site!r} is not an Extended site; those are {found}"
            raise ModelError(msg)
        return site
    if len(found) != 1:
        msg = (
            f"sweights: the model has {len(found)} Extended sites {found}; "
            "name one with site=..."
        )
        raise ModelError(msg)
    return found[0]


def _padding_rows(events: np.ndarray, event_ndim: int) -> np.ndarray:
    """Rows holding NaN (the padding of a padded ``Extended`` dataset)."""
    axes = tuple(range(1, 1 + event_ndim))
    return np.any(np.isnan(events), axis=axes) if axes else np.isnan(events)
