"""A mixed analysis: an unbinned signal region and binned HistFactory control regions
sharing mu, a luminosity and a background normalisation by name.

References: the unbinned part written with scipy, the binned part by pyhf's own
``logpdf`` on the same workspace, iminuit minimising their sum.
"""

from __future__ import annotations

import jax
import numpy as np
import numpyro
import numpyro.distributions as npd
import pytest
import scipy.stats as st
from scipy.special import gammaln

import hepprob
from hepprob import dist
from hepprob.histfactory import Workspace

pyhf = pytest.importorskip("pyhf")
iminuit = pytest.importorskip("iminuit")

LOW, HIGH = 5.0, 5.6
S0, B0 = 100.0, 400.0  # expected SR yields at mu = kb = lumi = 1
MAX_EVENTS = 900

SPEC = {
    "channels": [
        {
            "name": "CR_low",
            "samples": [
                {
                    "name": "bkg",
                    "data": [100.0, 80.0],
                    "modifiers": [
                        {"name": "kb", "type": "normfactor", "data": None},
                        {"name": "lumi", "type": "lumi", "data": None},
                    ],
                },
                {
                    "name": "sig",
                    "data": [5.0, 3.0],
                    "modifiers": [
                        {"name": "mu", "type": "normfactor", "data": None},
                        {"name": "lumi", "type": "lumi", "data": None},
                    ],
                },
            ],
        },
        {
            "name": "CR_high",
            "samples": [
                {
                    "name": "bkg",
                    "data": [60.0, 40.0, 20.0],
                    "modifiers": [
                        {"name": "kb", "type": "normfactor", "data": None},
                        {"name": "lumi", "type": "lumi", "data": None},
                        {
                            "name": "bkg_shape",
                            "type": "normsys",
                            "data": {"hi": 1.05, "lo": 0.95},
                        },
                    ],
                }
            ],
        },
    ],
    "observations": [
        {"name": "CR_low", "data": [110.0, 79.0]},
        {"name": "CR_high", "data": [66.0, 38.0, 24.0]},
    ],
    "measurements": [
        {
            "name": "meas",
            "config": {
                "poi": "mu",
                "parameters": [
                    {
                        "name": "lumi",
                        "auxdata": [1.0],
                        "sigmas": [0.02],
                        "bounds": [[0.8, 1.2]],
                        "inits": [1.0],
                    },
                    {"name": "kb", "bounds": [[0.1, 5.0]], "inits": [1.0]},
                    {"name": "mu", "bounds": [[0.0, 10.0]], "inits": [1.0]},
                ],
            },
        }
    ],
    "version": "1.0.0",
}

WS = Workspace(SPEC)
BINNED = WS.model().numpyro_model()
COUNTS = np.asarray(WS.data(WS.model()), dtype=np.float64)


def mixed_model(mass, counts):
    mu = hepprob.param("mu", 1.0, 0.0, 10.0)  # the same declaration as pyhf's
    BINNED(counts)  # declares mu (again), lumi, kb, bkg_shape
    lumi = hepprob.param("lumi", 1.0, 0.8, 1.2)
    kb = hepprob.param("kb", 1.0, 0.1, 5.0)
    m = hepprob.param("m", 5.28, 5.2, 5.35)
    lam = hepprob.param("lam", -1.0, -10.0, 10.0)
    signal = dist.Truncated(npd.Normal(m, 0.02), LOW, HIGH)
    background = dist.Exponential(lam, low=LOW, high=HIGH)
    yields = [S0 * mu * lumi, B0 * kb * lumi]
    ext = dist.Extended([signal, background], yields, max_events=MAX_EVENTS)
    numpyro.sample("mass", ext, obs=mass)


PYHF_MODEL = pyhf.Workspace(SPEC).model()
PYHF_DATA = np.asarray(pyhf.Workspace(SPEC).data(PYHF_MODEL))


def reference_nll(values):
    """-log L by hand: scipy for the signal region, pyhf for the control regions."""
    mu, lumi, kb, m, lam = (values[k] for k in ("mu", "lumi", "kb", "m", "lam"))
    x = MASS[~np.isnan(MASS)]
    f_sig = st.truncnorm((LOW - m) / 0.02, (HIGH - m) / 0.02, loc=m, scale=0.02).pdf(x)
    f_bkg = lam * np.exp(lam * (x - LOW)) / np.expm1(lam * (HIGH - LOW))
    ns, nb = S0 * mu * lumi, B0 * kb * lumi
    unbinned = np.sum(np.log(ns * f_sig + nb * f_bkg)) - ns - nb - gammaln(x.size + 1)
    pars = np.array([values[name] for name in PYHF_MODEL.config.par_order])
    binned = float(PYHF_MODEL.logpdf(pars, PYHF_DATA)[0])
    return -(unbinned + binned)


def _events():
    rng = np.random.default_rng(21)
    sig = st.truncnorm.rvs(-8, 8, loc=5.28, scale=0.02, size=120, random_state=rng)
    u = rng.uniform(size=410)
    bkg = LOW + np.log1p(u * np.expm1(-1.5 * (HIGH - LOW))) / -1.5
    return np.asarray(dist.Extended.pad(np.concatenate([sig, bkg]), MAX_EVENTS))


MASS = _events()
NAMES = ["mu", "lumi", "kb", "bkg_shape", "m", "lam"]


@pytest.fixture(scope="module")
def result():
    return hepprob.fit(mixed_model, MASS, COUNTS)


@pytest.fixture(scope="module")
def reference():
    """iminuit (MIGRAD, strategy 2, tight tolerance) on the hand-written sum.

    No limits: the minimum is interior, and MINUIT's transformation of bounded
    parameters would bias its numerical Hesse errors at the 0.5 % level.
    """

    def fcn(v):
        return reference_nll(dict(zip(NAMES, v, strict=True)))

    start = [1.0, 1.0, 1.0, 0.0, 5.28, -1.0]
    m = iminuit.Minuit(fcn, start, name=NAMES)
    m.errordef = iminuit.Minuit.LIKELIHOOD
    m.strategy = 2
    m.tol = 1e-6
    m.migrad()
    m.hesse()
    assert m.valid
    m.minos("mu")
    return m


def test_parameters_are_shared():
    s = hepprob.model.ModelStructure.from_model(mixed_model, MASS, COUNTS)
    assert s.par_names == NAMES
    assert s.observed == ("data", "mass")


def test_joint_nll_is_the_sum_of_scipy_and_pyhf():
    nll = hepprob.infer.nll(mixed_model, MASS, COUNTS)
    assert nll.par_names == NAMES
    for point in (
        [1.0, 1.0, 1.0, 0.0, 5.28, -1.0],
        [0.3, 0.93, 1.4, -1.2, 5.27, -3.0],
        [2.5, 1.1, 0.7, 0.8, 5.29, 2.0],
    ):
        expected = reference_nll(dict(zip(NAMES, point, strict=True)))
        np.testing.assert_allclose(nll(point), expected, rtol=1e-10)


def test_fit_matches_iminuit_on_the_hand_written_sum(result, reference):
    assert result.converged
    errors = np.array([reference.errors[n] for n in NAMES])
    values = np.array([reference.values[n] for n in NAMES])
    got = np.array([result.values[n] for n in NAMES])
    np.testing.assert_allclose((got - values) / errors, 0.0, atol=1e-4)
    np.testing.assert_allclose([result.errors[n] for n in NAMES], errors, rtol=1e-3)
    lo, hi = result.minos("mu")["mu"]
    me = reference.merrors["mu"]
    np.testing.assert_allclose(
        [lo, hi], [values[0] + me.lower, values[0] + me.upper], rtol=1e-3
    )


def test_hypotest_model_on_the_mixed_model(result, reference):
    """q~_mu from iminuit fits of the reference NLL (mu_hat > 0, so q~ = q), CLs
    by Cowan et al., arXiv:1007.1727, eqs. (59) and (65) in the branch q~ <= q~_A."""
    mu_test = 1.4
    cls = hepprob.infer.hypotest_model(
        mixed_model, MASS, COUNTS, poi="mu", poi_value=mu_test
    )
    fixed = iminuit.Minuit(
        lambda v: reference_nll(dict(zip(NAMES, [mu_test, *v], strict=True))),
        [reference.values[n] for n in NAMES[1:]],
        name=NAMES[1:],
    )
    fixed.errordef, fixed.strategy, fixed.tol = 0.5, 2, 1e-6
    fixed.migrad()
    sqrt_q = np.sqrt(2.0 * (fixed.fval - reference.fval))
    sqrt_qa = mu_test / reference.errors["mu"]
    assert 0.0 < sqrt_q < sqrt_qa
    expected = st.norm.sf(sqrt_q) / st.norm.cdf(sqrt_qa - sqrt_q)
    np.testing.assert_allclose(float(cls), expected, rtol=2e-3)


def test_toys_of_the_mixed_model_have_unit_pulls(result):
    truth = dict(result.values)
    toys = hepprob.toys(mixed_model, truth, 256, jax.random.PRNGKey(3), MASS, COUNTS)
    assert toys.converged.mean() > 0.97
    for name, s in toys.pull_summary().items():
        assert abs(s["mean"]) < 3.5 * s["mean_error"], (name, s)
        assert abs(s["width"] - 1.0) < 3.5 * s["width_error"], (name, s)


def test_mcmc_of_the_mixed_model(result):
    idata = hepprob.mcmc(
        mixed_model, MASS, COUNTS, num_warmup=200, num_samples=300, seed=2
    )
    draws = np.asarray(idata.posterior["mu"]).ravel()
    sigma = result.errors["mu"]
    # flat priors within the bounds: the posterior is the likelihood, near Gaussian
    assert abs(draws.mean() - result.values["mu"]) < 0.4 * sigma
    assert 0.7 < draws.std() / sigma < 1.3
