"""Test statistics and asymptotic formulas vs closed forms (arXiv:1007.1727) and pyhf."""

from __future__ import annotations

import jax
import numpy as np
import pyhf
import pytest
from scipy.stats import norm

from hepprob.errors import HepprobWarning, ParameterError
from hepprob.histfactory import Workspace
from hepprob.infer import asymptotics
from hepprob.infer import test_statistics as ts

# --- asymptotic formulas against Cowan et al. written out with scipy --------------


def _cowan_qtilde_pvalues(qt, mu_over_sigma):
    """CLsb, CLb of q~mu from the cdf of arXiv:1007.1727 eq. (65) (mu' = mu and 0)."""
    qa = mu_over_sigma**2

    def survival(q, shift):  # 1 - F(q~ | mu') with shift = (mu - mu') / sigma
        m = mu_over_sigma
        low = norm.sf(np.sqrt(q) - shift)
        high = norm.sf((q - (qa - 2 * m * (m - shift))) / (2 * m))
        return np.where(q <= qa, low, high)

    return survival(qt, 0.0), survival(qt, mu_over_sigma)


@pytest.mark.parametrize("mu_over_sigma", [0.4, 1.7, 3.0])
@pytest.mark.parametrize("qt", [0.0, 0.3, 2.0, 9.5, 25.0])
def test_qtilde_pvalues_match_eq65(qt, mu_over_sigma):
    clsb, clb, cls = asymptotics.asymptotic_pvalues(
        np.sqrt(qt), mu_over_sigma, "qtilde"
    )
    ref_sb, ref_b = _cowan_qtilde_pvalues(qt, mu_over_sigma)
    np.testing.assert_allclose(clsb, ref_sb, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(clb, ref_b, rtol=1e-12)
    np.testing.assert_allclose(cls, ref_sb / ref_b, rtol=1e-9)  # log-space ratio


@pytest.mark.parametrize("q", [0.0, 0.5, 4.0, 16.0])
def test_qmu_and_q0_pvalues_match_eqs_53_57(q):
    # q_mu: F(q|mu') = Phi(sqrt(q) - (mu - mu')/sigma), eq. (57); sqrt(qA) = mu/sigma
    sqa = 1.3
    clsb, clb, _ = asymptotics.asymptotic_pvalues(np.sqrt(q), sqa, "q")
    np.testing.assert_allclose(clsb, norm.sf(np.sqrt(q)), rtol=1e-12)
    np.testing.assert_allclose(clb, norm.sf(np.sqrt(q) - sqa), rtol=1e-12)
    # q0: p0 = 1 - Phi(sqrt(q0)), eq. (53)
    p0 = asymptotics.asymptotic_pvalues(np.sqrt(q), sqa, "q0")[0]
    np.testing.assert_allclose(p0, norm.sf(np.sqrt(q)), rtol=1e-12)


@pytest.mark.parametrize("sqrtq_asimov", [0.5, 2.0, 3.5])
def test_expected_band_is_quantiles_of_background_cls(sqrtq_asimov):
    """Expected CLs = percentiles of CLs when sqrt(q) follows its background law."""
    rng = np.random.default_rng(1)
    # under mu' = 0, sqrt(q_mu) ~ N(mu/sigma, 1) (eq. (31) with q_mu,A = mu^2/sigma^2),
    # continued below 0 as in pyhf's "normal" base distribution (no clipping)
    sqrtq = sqrtq_asimov + rng.standard_normal(400_000)
    cls = np.asarray(asymptotics.asymptotic_pvalues(sqrtq, sqrtq_asimov, "q")[2])
    pct = 100 * norm.cdf([-2, -1, 0, 1, 2])
    ref = np.percentile(cls, pct)
    got = np.asarray(asymptotics.expected_pvalues(sqrtq_asimov)[2])
    np.testing.assert_allclose(got, ref, rtol=2e-2, atol=1e-5)


def test_expected_band_closed_form_and_order():
    clsb, clb, cls = asymptotics.expected_pvalues(np.array([1.0, 2.5]))
    n = np.array([2.0, 1.0, 0.0, -1.0, -2.0])
    ref = norm.sf(n + np.array([[1.0], [2.5]])) / norm.sf(n)
    np.testing.assert_allclose(cls, ref, rtol=1e-12)
    assert np.all(np.diff(np.asarray(cls), axis=-1) > 0)  # lowest (-2 sigma) first
    assert cls.shape == clsb.shape == clb.shape == (2, 5)


def test_pvalues_are_differentiable_and_jittable():
    def cls(sq, sqa):
        return asymptotics.asymptotic_pvalues(sq, sqa, "qtilde")[2]

    for sq, sqa in [(1.0, 1.0), (0.0, 1.5), (2.5, 1.0), (0.5, 1e-3)]:
        g = jax.grad(cls, argnums=(0, 1))(sq, sqa)
        assert np.all(np.isfinite(g))
        np.testing.assert_allclose(jax.jit(cls)(sq, sqa), cls(sq, sqa), rtol=1e-14)
    # finite-difference check of the derivative on the upper branch
    h = 1e-6
    fd = (cls(2.5 + h, 1.0) - cls(2.5 - h, 1.0)) / (2 * h)
    np.testing.assert_allclose(jax.grad(cls)(2.5, 1.0), fd, rtol=1e-6)


def test_unknown_test_stat_is_rejected():
    with pytest.raises(ParameterError, match=r"test_stat must be one of .* got 'qq'"):
        asymptotics.asymptotic_pvalues(1.0, 1.0, "qq")


# --- the test statistics on a HistFactory model vs pyhf (numpy backend) -------------


def _spec():
    """pyhf.simplemodels.uncorrelated_background([12, 11], [50, 52], [3, 7]), data [51, 48]."""
    return {
        "channels": [
            {
                "name": "singlechannel",
                "samples": [
                    {
                        "name": "signal",
                        "data": [12.0, 11.0],
                        "modifiers": [
                            {"name": "mu", "type": "normfactor", "data": None}
                        ],
                    },
                    {
                        "name": "background",
                        "data": [50.0, 52.0],
                        "modifiers": [
                            {
                                "name": "uncorr_bkguncrt",
                                "type": "shapesys",
                                "data": [3.0, 7.0],
                            }
                        ],
                    },
                ],
            }
        ],
        "observations": [{"name": "singlechannel", "data": [51.0, 48.0]}],
        "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
        "version": "1.0.0",
    }


_BUILT: list = []


def built():
    if not _BUILT:
        ws = Workspace(_spec())
        model = ws.model()
        pyhf.set_backend("numpy")
        _BUILT.append(
            (model, np.asarray(ws.data(model)), pyhf.Workspace(_spec()).model())
        )
    return _BUILT[0]


def _settings(pmodel, poi_low):
    bounds = pmodel.config.suggested_bounds()
    bounds[pmodel.config.poi_index] = [poi_low, 10.0]
    return pmodel.config.suggested_init(), bounds, pmodel.config.suggested_fixed()


@pytest.mark.parametrize(
    ("name", "poi_low", "mu"),
    [
        ("qmu_tilde", 0.0, 1.0),
        ("qmu", -10.0, 1.0),
        ("qmu", -10.0, -0.5),  # muhat > mu: q_mu = 0
        ("tmu", -10.0, 1.0),
        ("tmu_tilde", 0.0, 0.2),
        ("q0", 0.0, 0.0),
        ("q0", -10.0, 0.0),
    ],
)
def test_statistics_match_pyhf(name, poi_low, mu):
    model, data, pmodel = built()
    init, bounds, fixed = _settings(pmodel, poi_low)
    stat, (fixed_fit, free_fit) = getattr(ts, name)(
        mu, data, model, init, bounds, fixed, return_fitted_pars=True
    )
    pyhf.set_backend("numpy")
    ref, (ref_fixed, ref_free) = getattr(pyhf.infer.test_statistics, name)(
        mu, data, pmodel, init, bounds, fixed, return_fitted_pars=True
    )
    np.testing.assert_allclose(float(stat), float(ref), atol=2e-5)
    np.testing.assert_allclose(fixed_fit, ref_fixed, atol=2e-3)
    np.testing.assert_allclose(free_fit, ref_free, atol=2e-3)
    assert np.shape(stat) == ()


def test_qmu_is_pyhf_likelihood_ratio_at_our_fitted_points():
    """q_mu = -2 ln L(fixed fit) + 2 ln L(free fit), with L evaluated by pyhf."""
    model, data, pmodel = built()
    init, bounds, fixed = _settings(pmodel, -10.0)
    q, (fixed_fit, free_fit) = ts.qmu(
        2.0, data, model, init, bounds, fixed, return_fitted_pars=True
    )
    pyhf.set_backend("numpy")

    def twice_nll(pars):
        return float(-2 * pmodel.logpdf(np.asarray(pars), data)[0])

    np.testing.assert_allclose(
        float(q), twice_nll(fixed_fit) - twice_nll(free_fit), rtol=1e-9
    )


def test_bound_advice_warns_and_q0_resets_mu():
    model, data, pmodel = built()
    init, bounds0, fixed = _settings(pmodel, 0.0)
    _, bounds_neg, _ = _settings(pmodel, -10.0)
    with pytest.warns(
        HepprobWarning, match="qmu with the POI bounded at zero: use qmu_tilde"
    ):
        ts.qmu(1.0, data, model, init, bounds0, fixed)
    with pytest.warns(
        HepprobWarning, match="qmu_tilde needs the POI's lower bound at 0, got -10.0"
    ):
        ts.qmu_tilde(1.0, data, model, init, bounds_neg, fixed)
    with pytest.warns(
        HepprobWarning, match="tmu_tilde needs the POI's lower bound at 0"
    ):
        ts.tmu_tilde(1.0, data, model, init, bounds_neg, fixed)
    with pytest.warns(
        HepprobWarning, match="q0: the discovery test statistic tests mu=0, got mu=1.0"
    ):
        q_wrong = ts.q0(1.0, data, model, init, bounds0, fixed)
    assert float(q_wrong) == float(ts.q0(0.0, data, model, init, bounds0, fixed))


def test_fixed_poi_is_rejected():
    model, data, pmodel = built()
    init, bounds, fixed = _settings(pmodel, 0.0)
    fixed[pmodel.config.poi_index] = True
    with pytest.raises(
        ParameterError, match=r"fixed_params: the POI \(index 0\) is fixed"
    ):
        ts.qmu_tilde(1.0, data, model, init, bounds, fixed)
    with pytest.raises(ParameterError, match="mu: expected a finite number, got nan"):
        ts.tmu(float("nan"), data, model, init, bounds, [False] * 3)
