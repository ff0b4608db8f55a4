"""CLs hypothesis tests: pyhf-compatible ``hypotest`` and ``hypotest_model`` for any model."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np

from hepprob._typing import Array, ArrayLike
from hepprob.errors import FitError, HepprobWarning, ParameterError
from hepprob.infer import _batch, asymptotics, mle
from hepprob.infer.test_statistics import check_poi_bound, check_poi_free

__all__ = ["hypotest", "hypotest_model"]

CALCTYPES = ("asymptotic", "asymptotics", "toybased")


def hypotest(
    poi_value: float,
    data: ArrayLike,
    model: Any,
    init_pars: Sequence[float] | None = None,
    par_bounds: Sequence[Sequence[float]] | None = None,
    fixed_params: Sequence[bool] | None = None,
    calctype: str = "asymptotic",
    return_tail_probs: bool = False,
    return_expected: bool = False,
    return_expected_set: bool = False,
    test_stat: str = "qtilde",
    ntoys: int = 2000,
    *,
    seed: int = 0,
) -> Any:
    r"""Frequentist hypothesis test of ``poi_value``: CLs (``pyhf.infer.hypotest``).

    :math:`\mathrm{CL}_s = \mathrm{CL}_{s+b}/\mathrm{CL}_b` (Read, J. Phys. G 28
    (2002) 2693) with the test statistic ``"qtilde"`` (:math:`\tilde q_\mu`),
    ``"q"`` (:math:`q_\mu`) or ``"q0"`` (discovery; then the p-value
    :math:`p_0 = \mathrm{CL}_{s+b}` replaces CLs, as in pyhf).

    * ``calctype="asymptotic"`` (or pyhf's ``"asymptotics"``): the asymptotic
      formulas of Cowan et al., arXiv:1007.1727, with the Asimov dataset built as
      pyhf does (nuisances profiled on the data at POI 0, or 1 for ``q0``). The
      four fits run as two batched calls of one compiled program.
    * ``calctype="toybased"``: ``ntoys`` pseudo-experiments under each
      hypothesis, generated with ``jax.random`` from ``seed`` and fitted in one
      vmapped batch; p-values are the empirical tail fractions, as pyhf's
      ``ToyCalculator``.

    Args:
        poi_value: the tested POI value (within the POI's bounds).
        data: main + auxiliary data.
        model: a HistFactory ``Model``.
        init_pars, par_bounds, fixed_params: fit settings (default: the model's).
        calctype: ``"asymptotic"`` or ``"toybased"``.
        return_tail_probs: also return ``[CLsb, CLb]`` (``[CLb]`` for ``q0``).
        return_expected: also return the median expected CLs.
        return_expected_set: also return the expected CLs at
            :math:`-2,-1,0,+1,+2\sigma` (a list of five, lowest first).
        test_stat: ``"qtilde"``, ``"q"`` or ``"q0"``.
        ntoys: pseudo-experiments per hypothesis (``toybased`` only).
        seed: seed of the toys' ``jax.random`` key (``toybased`` only).

    Returns:
        ``CLs_obs``, followed (in this order, when asked for) by the tail
        probabilities, the median expected CLs and the expected set; a single
        value when nothing else is asked for, otherwise a tuple.

    Raises:
        ParameterError: unknown ``calctype``/``test_stat``, a fixed POI, or a
            ``poi_value`` outside the POI's bounds.
        DataError: malformed data.

    Example:
        >>> ws = hepprob.histfactory.Workspace(spec)  # doctest: +SKIP
        >>> model = ws.model()  # doctest: +SKIP
        >>> cls, band = hepprob.infer.hypotest(  # doctest: +SKIP
        ...     1.0, ws.data(model), model, return_expected_set=True)
    """
    calc = _check_calctype(calctype)
    asymptotics._check_test_stat(test_stat)
    eng = mle.engine(model)
    poi = eng.poi_index()
    setup = eng.setup(data, init_pars, par_bounds, fixed_params)
    check_poi_free(eng, setup.fixed)
    mu = mle._as_scalar(poi_value, "poi_value")
    lo, hi = float(setup.lower[poi]), float(setup.upper[poi])
    if not lo <= mu <= hi:
        msg = (
            f"poi_value: expected a value within the POI bounds [{lo}, {hi}], got {mu}"
        )
        raise ParameterError(msg)
    check_poi_bound(test_stat, eng, setup.lower, stacklevel=3)
    asymptotics.check_asimov_poi(test_stat, lo, hi)
    if test_stat == "q0":
        mu = 0.0
    if calc == "toybased":
        from hepprob.infer import _toycalc

        obs, exp = _toycalc.toy_pvalues(eng, setup, test_stat, mu, int(ntoys), seed)
    else:
        obs, exp = asymptotic_hypotest(eng, setup, test_stat, mu)
    return assemble(
        test_stat, obs, exp, return_tail_probs, return_expected, return_expected_set
    )


def asymptotic_hypotest(
    eng: mle.Engine, setup: mle.Setup, test_stat: str, mu: float
) -> tuple[tuple[Array, Array, Array], tuple[Array, Array, Array]]:
    """Observed and expected ``(CLsb, CLb, CLs)`` at ``mu`` (host arrays)."""
    t = asymptotic_tail(eng, setup, test_stat, [mu], [mu], "hypotest")
    obs = tuple(v[0] for v in t.observed)
    exp = tuple(v[0] for v in t.expected)
    return obs, exp  # type: ignore[return-value]


def asymptotic_tail(
    eng: mle.Engine,
    setup: mle.Setup,
    test_stat: str,
    mus_data: Any,
    mus_asimov: Any,
    what: str,
    stage: asymptotics.AsimovStage | None = None,
) -> asymptotics.Tail:
    """Fits and p-values of an asymptotic test at ``mus_data`` / ``mus_asimov``.

    Two batched calls of the engine's fit program (the POI-independent
    ``stage``, unless given, then the fixed-POI fits) and one compiled tail.
    """
    if stage is None:
        stage = asymptotics.stage_fits(eng, setup, asymptotics.asimov_mu(test_stat))
        mle.warn_unconverged(stage.status, what)
    fits = asymptotics.fixed_fits(eng, setup, stage, mus_data, mus_asimov)
    mle.warn_unconverged(fits, what)
    return asymptotics.tail(
        test_stat, stage, fits.twice_nll, mus_data, mus_asimov, eng.poi_index()
    )


def assemble(
    test_stat: str,
    obs: tuple[Array, Array, Array],
    exp: tuple[Array, Array, Array],
    return_tail_probs: bool,
    return_expected: bool,
    return_expected_set: bool,
) -> Any:
    """pyhf 0.7's return layout of ``hypotest`` from observed and expected p-values."""
    clsb, clb, cls = (jnp.asarray(v) for v in obs)
    is_q0 = test_stat == "q0"
    out: list[Any] = [clsb if is_q0 else cls]
    if return_tail_probs:
        out.append([clb] if is_q0 else [clsb, clb])
    band = np.asarray(exp[0] if is_q0 else exp[2])  # host indexing: no compile
    if return_expected:
        out.append(jnp.asarray(band[..., 2]))
    if return_expected_set:
        out.append([jnp.asarray(band[..., i]) for i in range(5)])
    return tuple(out) if len(out) > 1 else out[0]


def hypotest_model(
    model: Callable[..., Any],
    *args: Any,
    poi: str = "mu",
    poi_value: float,
    test_stat: str = "qtilde",
    calctype: str = "asymptotic",
    init: Mapping[str, ArrayLike] | None = None,
    fixed: Mapping[str, ArrayLike] | Sequence[str] | None = None,
    asimov_args: Sequence[Any] | None = None,
    asimov_kwargs: Mapping[str, Any] | None = None,
    asimov_poi: float | None = None,
    return_tail_probs: bool = False,
    return_expected: bool = False,
    return_expected_set: bool = False,
    **kwargs: Any,
) -> Any:
    r"""Asymptotic CLs (or :math:`p_0`) for any NumPyro model with ``hepprob.param`` sites.

    The observed test statistic comes from a free and a fixed-POI fit of
    ``model(*args, **kwargs)`` (both in one vmapped, compiled program). Its
    asymptotic distribution needs :math:`\sqrt{q_{\mu,A}}`, the statistic on an
    Asimov dataset, which a generic model cannot build by itself. Two choices:

    * default (Hessian): :math:`\sqrt{q_{\mu,A}} = |\mu - \mu'|/\sigma` with
      :math:`\sigma^2 = (H^{-1})_{\mu\mu}`, :math:`H` the exact Hessian of the
      NLL at the best fit to the observed data (Wald's approximation,
      arXiv:1007.1727, eqs. (17)-(18) and (29)-(32)). :math:`\mu'` is
      ``asimov_poi``: 0 by default for ``"q"``/``"qtilde"``, and the observed
      best fit :math:`\hat\mu` by default for ``"q0"`` (the significance expected
      for a signal as large as the one seen).
    * ``asimov_args`` / ``asimov_kwargs``: the model arguments of an Asimov
      dataset you built (e.g. expected counts, or weighted events); then
      :math:`q_{\mu,A}` is computed by fitting it, exactly as for HistFactory.

    Args:
        model: a NumPyro model function.
        *args: the model's arguments (the observed data).
        poi: name of the parameter of interest (a scalar ``hepprob.param``).
        poi_value: tested POI value (0 for ``"q0"``), or a 1-D array of values:
            all of them are tested in one vmapped program and every returned
            quantity is an array over them.
        test_stat: ``"qtilde"`` (POI lower bound 0), ``"q"`` or ``"q0"``.
        calctype: ``"asymptotic"`` (the only one here; toys: :func:`hepprob.toys`).
        init: fit start values by name.
        fixed: parameters held fixed: names (at their init) or ``{name: value}``.
        asimov_args, asimov_kwargs: an Asimov dataset (see above).
        asimov_poi: :math:`\mu'` of the Hessian method.
        return_tail_probs, return_expected, return_expected_set: as
            :func:`hypotest`, with the same return layout.
        **kwargs: the model's keyword arguments.

    Raises:
        ParameterError: unknown POI or option, a fixed POI, ``poi_value``
            outside the POI's bounds.
    """
    if _check_calctype(calctype) != "asymptotic":
        msg = (
            "hypotest_model: calctype must be 'asymptotic' (use hepprob.toys for toys)"
        )
        raise ParameterError(msg)
    asymptotics._check_test_stat(test_stat)
    sqrtq, sqrtq_a = _model_sqrt_stats(
        model,
        args,
        kwargs,
        poi,
        poi_value,
        test_stat,
        init,
        fixed,
        asimov_args,
        asimov_kwargs,
        asimov_poi,
    )
    obs = asymptotics.asymptotic_pvalues(sqrtq, sqrtq_a, test_stat)
    exp = asymptotics.expected_pvalues(sqrtq_a)
    return assemble(
        test_stat, obs, exp, return_tail_probs, return_expected, return_expected_set
    )


def _check_calctype(calctype: str) -> str:
    if calctype not in CALCTYPES:
        msg = f"calctype must be one of {CALCTYPES}, got {calctype!r}"
        raise ParameterError(msg)
    return "toybased" if calctype == "toybased" else "asymptotic"


def _model_sqrt_stats(
    model: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    poi: str,
    poi_value: float,
    test_stat: str,
    init: Mapping[str, ArrayLike] | None,
    fixed: Mapping[str, ArrayLike] | Sequence[str] | None,
    asimov_args: Sequence[Any] | None,
    asimov_kwargs: Mapping[str, Any] | None,
    asimov_poi: float | None,
) -> tuple[Array, Array]:
    """Observed and Asimov :math:`\\sqrt{q}` of a generic model (see hypotest_model).

    The fits run in the model's one compiled fit program (that of
    :func:`hepprob.fit`): new data of the same shapes reuse it.
    """
    from hepprob.infer.fit import _prepare_model, _start

    prepared = _prepare_model(model, args, kwargs)
    structure = prepared.structure
    k = structure.index(poi)
    names = [fixed] if isinstance(fixed, str) else fixed
    start, mask = _start(prepared, init, names, who="hypotest_model")
    if mask[k]:
        msg = f"fixed: the POI {poi!r} is fixed, which makes a profile-likelihood test impossible"
        raise ParameterError(msg)
    lower, upper = prepared.lower, prepared.upper
    mus = _poi_values(poi_value)
    if np.any(mus < lower[k]) or np.any(mus > upper[k]):
        msg = (
            f"poi_value: expected values within the bounds of {poi!r} "
            f"[{lower[k]}, {upper[k]}], got {mus.tolist() if mus.size > 1 else mus[0]}"
        )
        raise ParameterError(msg)
    if test_stat == "q0":
        mus = np.zeros_like(mus)
    _warn_model_bound(test_stat, poi, lower[k])
    name = {"q": "qmu", "qtilde": "qmu_tilde", "q0": "q0"}[test_stat]
    rows = _model_rows(start, mask, lower, upper, k, mus)
    q, muhat, fits = _model_stat(prepared, rows, name, k)
    mle.warn_unconverged(fits, "hypotest_model")
    if asimov_args is not None or asimov_kwargs is not None:
        a_args = tuple(args if asimov_args is None else asimov_args)
        a_kwargs = dict(kwargs if asimov_kwargs is None else asimov_kwargs)
        asimov = _prepare_model(model, a_args, a_kwargs)
        q_a, _, fits_a = _model_stat(asimov, rows, name, k)
        mle.warn_unconverged(fits_a, "hypotest_model (Asimov)")
        sqrtq_a = asymptotics._clip_sqrt(q_a)
    else:
        var = float(_batch.covariance(fits.hess[0], rows[1][0]).matrix[k, k])
        if not var > 0.0:
            msg = (
                f"hypotest_model: the NLL Hessian at the best fit gives no positive "
                f"variance for {poi!r} (got {float(var)}); give an Asimov dataset"
            )
            raise FitError(msg)
        default = float(muhat) if test_stat == "q0" else 0.0
        mu_prime = (
            default if asimov_poi is None else mle._as_scalar(asimov_poi, "asimov_poi")
        )
        sqrtq_a = jnp.abs(jnp.asarray(mus) - mu_prime) / jnp.sqrt(var)
    shape = np.shape(poi_value)
    return (
        asymptotics._clip_sqrt(q).reshape(shape),
        jnp.asarray(sqrtq_a).reshape(shape),
    )


def _poi_values(poi_value: Any) -> np.ndarray:
    try:
        mus = np.atleast_1d(np.asarray(poi_value, dtype=np.float64))
    except (TypeError, ValueError):
        msg = (
            f"poi_value: expected a number or a 1-D array of numbers, got {poi_value!r}"
        )
        raise ParameterError(msg) from None
    if mus.ndim != 1 or mus.size == 0 or not np.all(np.isfinite(mus)):
        msg = f"poi_value: expected a finite number or a 1-D array of them, got {poi_value!r}"
        raise ParameterError(msg)
    return mus


def _model_rows(
    start: np.ndarray,
    mask: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    k: int,
    mus: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Free fit (row 0) and fits with the POI fixed at each of ``mus`` (rows 1..)."""
    n = 1 + mus.size
    inits = np.tile(start, (n, 1))
    inits[1:, k] = mus
    masks = np.tile(mask, (n, 1))
    masks[1:, k] = True
    return inits, masks, np.tile(lower, (n, 1)), np.tile(upper, (n, 1))


def _model_stat(
    prepared: Any, rows: tuple[np.ndarray, ...], name: str, k: int
) -> tuple[Array, Array, _batch.BatchFit]:
    """The rows' fits, the statistic at each fixed row and the free fit's POI."""
    from hepprob.infer.test_statistics import _host_stat

    inits, masks, lowers, uppers = rows
    fits = _batch.fit_batch(
        prepared.objective, prepared.data, inits, lowers, uppers, masks
    )
    f2 = fits.twice_nll
    q = _host_stat(name)(f2[1:], f2[0], fits.x[0, k], inits[1:, k])
    return q, fits.x[0, k], fits


def _warn_model_bound(test_stat: str, poi: str, low: float) -> None:
    if test_stat == "qtilde" and low != 0.0:
        msg = (
            f"qmu_tilde needs the lower bound of {poi!r} at 0, got {low}: "
            "use test_stat='q'"
        )
        warnings.warn(msg, HepprobWarning, stacklevel=4)
    elif test_stat == "q" and low == 0.0:
        msg = f"qmu with {poi!r} bounded at zero: use test_stat='qtilde'"
        warnings.warn(msg, HepprobWarning, stacklevel=4)
