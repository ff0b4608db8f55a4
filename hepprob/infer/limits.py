"""CLs upper limits (scan or root finding) and discovery significance of HistFactory models."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np
from scipy.stats import norm

from hepprob._typing import Array, ArrayLike
from hepprob.errors import FitError, ParameterError
from hepprob.infer import asymptotics, mle
from hepprob.infer.hypotest import _check_calctype, asymptotic_tail, hypotest
from hepprob.infer.test_statistics import check_poi_bound, check_poi_free

__all__ = ["discovery", "upper_limit"]

# Root finding of the limits: relative tolerance on the POI, and iteration caps.
_RTOL = 1e-7
_MAX_ITER = 80
_MAX_EXPAND = 30


def upper_limit(
    data: ArrayLike,
    model: Any,
    scan: ArrayLike | None = None,
    level: float = 0.05,
    return_results: bool = False,
    **hypotest_kwargs: Any,
) -> Any:
    r"""Observed and expected CLs upper limits on the POI (pyhf 0.7 ``upper_limit``).

    The limit is the POI value where :math:`\mathrm{CL}_s = ` ``level`` (95% CL
    for 0.05), for the observed CLs and each of the five expected-band curves.

    * ``scan`` given: CLs at every scan point, all fits as one vmapped program,
      then linear interpolation of each curve at ``level`` (as pyhf's
      ``linear_grid_scan``).
    * ``scan=None``: root finding, vectorised over the six curves: the bracket
      starts at the POI bounds and is widened as pyhf does; each step is an
      Illinois (modified regula falsi) step, in :math:`\ln\mathrm{CL}_s` for the
      observed curve and in :math:`\sqrt{q_{\mu,A}}` for the expected ones, whose
      crossings are closed-form: :math:`\Phi(-(N+\sqrt{q_A}))/\Phi(-N) = \alpha`
      (arXiv:1007.1727, eq. (89)). Asymptotic calculator only.

    Args:
        data: main + auxiliary data.
        model: a HistFactory ``Model``.
        scan: increasing POI values, or ``None`` for root finding.
        level: the CLs level (``alpha``), in (0, 1).
        return_results: also return ``(scan, results)`` with ``results[i]`` =
            ``(CLs_obs, [expected set])`` at ``scan[i]``; with root finding,
            ``scan`` holds the six limits found (observed first).
        **hypotest_kwargs: ``init_pars``, ``par_bounds``, ``fixed_params``,
            ``test_stat`` (``"qtilde"`` or ``"q"``), ``calctype``, ``ntoys``,
            ``seed`` as :func:`hepprob.infer.hypotest`.

    Returns:
        ``(observed, [expected -2, -1, 0, +1, +2 sigma])``, then the results
        when asked.

    Raises:
        ParameterError: bad ``scan``/``level``/options; ``calctype="toybased"``
            without a scan.
        FitError: no POI value up to ``2**30`` times the upper bound reaches
            ``level``.
    """
    opts = _options(hypotest_kwargs)
    alpha = _check_level(level)
    eng = mle.engine(model)
    poi = eng.poi_index()
    setup = eng.setup(data, opts["init_pars"], opts["par_bounds"], opts["fixed_params"])
    check_poi_free(eng, setup.fixed)
    test_stat = opts["test_stat"]
    if test_stat not in ("q", "qtilde"):
        msg = f"test_stat: upper limits need 'qtilde' or 'q', got {test_stat!r}"
        raise ParameterError(msg)
    check_poi_bound(test_stat, eng, setup.lower, stacklevel=3)
    asymptotics.check_asimov_poi(
        test_stat, float(setup.lower[poi]), float(setup.upper[poi])
    )
    calc = _check_calctype(opts["calctype"])
    if scan is not None:
        mus = _check_scan(scan, float(setup.lower[poi]), float(setup.upper[poi]))
        if calc == "toybased":
            results = [
                hypotest(
                    mu,
                    data,
                    model,
                    opts["init_pars"],
                    opts["par_bounds"],
                    opts["fixed_params"],
                    "toybased",
                    return_expected_set=True,
                    test_stat=test_stat,
                    ntoys=opts["ntoys"],
                    seed=opts["seed"],
                )
                for mu in mus
            ]
            cls_obs = np.array([float(r[0]) for r in results])
            cls_exp = np.array([[float(v) for v in r[1]] for r in results])
        else:
            cls_obs, cls_exp = _scan_cls(eng, setup, test_stat, mus)
            results = _as_results(cls_obs, cls_exp)
        curves = np.concatenate([cls_obs[:, None], cls_exp], axis=1).T
        limits = [float(np.interp(alpha, c[::-1], mus[::-1])) for c in curves]
    else:
        if calc == "toybased":
            msg = "calctype='toybased': upper_limit needs a scan (scan=None uses asymptotics)"
            raise ParameterError(msg)
        limits = _root_limits(eng, setup, test_stat, alpha)
        mus = np.asarray(limits)
        if return_results:
            cls_obs, cls_exp = _scan_cls(eng, setup, test_stat, mus)
            results = _as_results(cls_obs, cls_exp)
    obs, exp = _f64(limits[0]), [_f64(v) for v in limits[1:]]
    if return_results:
        return obs, exp, (mus, results)
    return obs, exp


def discovery(
    data: ArrayLike,
    model: Any,
    init_pars: Sequence[float] | None = None,
    par_bounds: Sequence[Sequence[float]] | None = None,
    fixed_params: Sequence[bool] | None = None,
    return_expected: bool = False,
    return_pvalues: bool = False,
) -> Any:
    r"""Discovery significance :math:`Z_0 = \sqrt{q_0}`, observed and expected.

    :math:`q_0` of arXiv:1007.1727, eq. (12); asymptotically
    :math:`Z_0 = \Phi^{-1}(1 - p_0) = \sqrt{q_0}` (eq. (54)). The expected (median)
    significance is :math:`\sqrt{q_{0,A}}` on the Asimov dataset with POI 1 and the
    nuisances profiled on the data (eq. (97) generalised, the pyhf convention).

    Args:
        data, model, init_pars, par_bounds, fixed_params: as :func:`hypotest`.
        return_expected: also return the median expected significance.
        return_pvalues: also return the p-values (observed, then expected).

    Returns:
        ``Z_obs``; or a tuple ``(Z_obs[, Z_exp][, p0_obs[, p0_exp]])``.
    """
    eng = mle.engine(model)
    setup = eng.setup(data, init_pars, par_bounds, fixed_params)
    check_poi_free(eng, setup.fixed)
    poi = eng.poi_index()
    asymptotics.check_asimov_poi("q0", float(setup.lower[poi]), float(setup.upper[poi]))
    t = asymptotic_tail(eng, setup, "q0", [0.0], [0.0], "discovery")
    out: list[Array] = [_f64(t.sqrtq[0])]
    if return_expected:
        out.append(_f64(t.sqrtq_asimov[0]))
    if return_pvalues:
        out.append(_f64(t.observed[0][0]))
        if return_expected:
            out.append(_f64(t.expected[0][0, 2]))
    return tuple(out) if len(out) > 1 else out[0]


# --- helpers -------------------------------------------------------------------------


def _options(kwargs: dict[str, Any]) -> dict[str, Any]:
    allowed = {
        "init_pars": None,
        "par_bounds": None,
        "fixed_params": None,
        "test_stat": "qtilde",
        "calctype": "asymptotic",
        "ntoys": 2000,
        "seed": 0,
    }
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        msg = f"upper_limit: unknown keyword argument(s) {unknown}; allowed: {sorted(allowed)}"
        raise ParameterError(msg)
    allowed.update(kwargs)
    return allowed


def _check_level(level: Any) -> float:
    alpha = mle._as_scalar(level, "level")
    if not 0.0 < alpha < 1.0:
        msg = f"level: expected a CLs level in (0, 1), got {level!r}"
        raise ParameterError(msg)
    return alpha


def _check_scan(scan: ArrayLike, lo: float, hi: float) -> np.ndarray:
    try:
        mus = np.asarray(scan, dtype=np.float64)
    except (TypeError, ValueError):
        msg = f"scan: expected increasing POI values, got {scan!r}"
        raise ParameterError(msg) from None
    if mus.ndim != 1 or mus.size < 2 or not np.all(np.isfinite(mus)):
        msg = f"scan: expected at least two finite POI values, got {scan!r}"
        raise ParameterError(msg)
    if np.any(np.diff(mus) <= 0):
        msg = f"scan: expected strictly increasing POI values, got {mus.tolist()}"
        raise ParameterError(msg)
    if mus[0] < lo or mus[-1] > hi:
        msg = f"scan: expected values within the POI bounds [{lo}, {hi}], got [{mus[0]}, {mus[-1]}]"
        raise ParameterError(msg)
    return mus


def _as_results(cls_obs: np.ndarray, cls_exp: np.ndarray) -> list[Any]:
    return [
        (_f64(o), [_f64(v) for v in e]) for o, e in zip(cls_obs, cls_exp, strict=True)
    ]


def _scan_cls(
    eng: mle.Engine, setup: mle.Setup, test_stat: str, mus: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Observed ``(N,)`` and expected ``(N, 5)`` CLs over a scan (one batch of fits)."""
    t = asymptotic_tail(eng, setup, test_stat, mus, mus, "upper_limit")
    return t.observed[2], t.expected[2]


def _root_limits(
    eng: mle.Engine, setup: mle.Setup, test_stat: str, alpha: float
) -> list[float]:
    """Six crossings of CLs = alpha by a vectorised, bracketed Illinois iteration."""
    poi = eng.poi_index()
    n = np.asarray(asymptotics.EXPECTED_NSIGMA)
    # expected curves cross where sqrt(q_A) = s_star (closed form in N and alpha)
    s_star = -n - norm.ppf(alpha * norm.cdf(-n))
    log_alpha = np.log(alpha)
    stage = asymptotics.stage_fits(eng, setup, asymptotics.asimov_mu(test_stat))
    mle.warn_unconverged(stage.status, "upper_limit")

    def h(mus: np.ndarray) -> np.ndarray:
        """Positive where CLs > alpha, for curve k evaluated at mus[k]."""
        t = asymptotic_tail(eng, setup, test_stat, mus[:1], mus, "upper_limit", stage)
        return np.concatenate([t.log_cls - log_alpha, s_star - t.sqrtq_asimov[1:]])

    lo, hi = float(setup.lower[poi]), float(setup.upper[poi])
    f_lo = h(np.full(6, lo))
    for _ in range(_MAX_EXPAND):
        if np.all(f_lo > 0) or lo == 0.0:
            break
        lo /= 2.0
        f_lo = h(np.full(6, lo))
    f_hi = h(np.full(6, hi))
    for _ in range(_MAX_EXPAND):
        if np.all(f_hi < 0):
            break
        hi *= 2.0
        f_hi = h(np.full(6, hi))
    if not (np.all(f_lo > 0) and np.all(f_hi < 0)):
        msg = (
            f"upper_limit: could not bracket CLs = {alpha} between POI {lo} and {hi} "
            f"(CLs-side values at the ends: {f_lo.tolist()}, {f_hi.tolist()})"
        )
        raise FitError(msg)
    a, b = np.full(6, lo), np.full(6, hi)
    fa, fb = f_lo.copy(), f_hi.copy()
    side = np.zeros(6)
    c = 0.5 * (a + b)
    for _ in range(_MAX_ITER):
        c = (a * fb - b * fa) / (fb - fa)
        bad = ~((c > a) & (c < b))
        c = np.where(bad, 0.5 * (a + b), c)
        fc = h(c)
        pos = fc > 0
        a, fa = np.where(pos, c, a), np.where(pos, fc, fa)
        b, fb = np.where(pos, b, c), np.where(pos, fb, fc)
        # Illinois: halve the stale end's value when the same end moves twice
        fb = np.where(pos & (side == 1), 0.5 * fb, fb)
        fa = np.where(~pos & (side == -1), 0.5 * fa, fa)
        side = np.where(pos, 1, -1)
        width = b - a
        if np.all((width <= _RTOL * np.maximum(np.abs(c), 1e-6)) | (fc == 0)):
            break
    return [float(v) for v in c]


def _f64(value: Any) -> Array:
    return jnp.asarray(value, dtype=jnp.float64)
