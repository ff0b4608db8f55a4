"""CLs hypothesis tests: pyhf-compatible ``hypotest`` and ``hypotest_model`` for any model."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax.numpy as jnp

from hepprob._typing import Array, ArrayLike
from hepprob.errors import ParameterError
from hepprob.infer import asymptotics, mle
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
      five fits run as two vmapped batches of one compiled program.
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
        >>> import hepprob
        >>> model = hepprob.histfactory.simplemodels.uncorrelated_background(
        ...     signal=[5.0], bkg=[10.0], bkg_uncertainty=[2.0])  # doctest: +SKIP
        >>> hepprob.infer.hypotest(1.0, [12.0, 25.0], model)  # doctest: +SKIP
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
    """Observed and expected ``(CLsb, CLb, CLs)`` from the compiled asymptotic program."""
    sqrtq, sqrtq_a, ok = eng.jitted(
        ("hypotest", test_stat), _build_asymptotic(test_stat)
    )(*setup, jnp.asarray(mu, dtype=jnp.float64))
    mle.warn_unconverged(ok, "hypotest")
    obs = asymptotics.asymptotic_pvalues(sqrtq, sqrtq_a, test_stat)
    exp = asymptotics.expected_pvalues(sqrtq_a)
    return obs, exp


def assemble(
    test_stat: str,
    obs: tuple[Array, Array, Array],
    exp: tuple[Array, Array, Array],
    return_tail_probs: bool,
    return_expected: bool,
    return_expected_set: bool,
) -> Any:
    """pyhf 0.7's return layout of ``hypotest`` from observed and expected p-values."""
    clsb, clb, cls = obs
    is_q0 = test_stat == "q0"
    out: list[Any] = [clsb if is_q0 else cls]
    if return_tail_probs:
        out.append([clb] if is_q0 else [clsb, clb])
    band = exp[0] if is_q0 else exp[2]
    if return_expected:
        out.append(band[2])
    if return_expected_set:
        out.append([band[i] for i in range(5)])
    return tuple(out) if len(out) > 1 else out[0]


def hypotest_model(
    model: Callable[..., Any],
    *args: Any,
    poi: str = "mu",
    poi_value: float,
    test_stat: str = "qtilde",
    calctype: str = "asymptotic",
    **kwargs: Any,
) -> Any:
    """Asymptotic CLs for any NumPyro model with ``hepprob.param`` sites.

    See :mod:`hepprob.infer._generic` for the method.
    """
    from hepprob.infer import _generic

    return _generic.hypotest_model(
        model,
        *args,
        poi=poi,
        poi_value=poi_value,
        test_stat=test_stat,
        calctype=calctype,
        **kwargs,
    )


def _check_calctype(calctype: str) -> str:
    if calctype not in CALCTYPES:
        msg = f"calctype must be one of {CALCTYPES}, got {calctype!r}"
        raise ParameterError(msg)
    return "toybased" if calctype == "toybased" else "asymptotic"


def _build_asymptotic(test_stat: str) -> Callable[[mle.Engine], Callable[..., Any]]:
    def build(eng: mle.Engine) -> Callable[..., Any]:
        def program(data, init, lower, upper, fixed, mu):  # type: ignore[no-untyped-def]
            stage = asymptotics.asimov_stage(
                eng, test_stat, data, init, lower, upper, fixed
            )
            sq, sqa, _, ok = asymptotics.mu_stage(
                eng,
                test_stat,
                stage,
                data,
                init,
                lower,
                upper,
                fixed,
                mu[None],
                mu[None],
            )
            return sq[0], sqa[0], jnp.concatenate([stage.converged, ok])

        return program

    return build
