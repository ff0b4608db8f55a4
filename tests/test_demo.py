"""The demo: JSON output, truth recovery and agreement with iminuit on a scipy NLL."""

from __future__ import annotations

import json

import iminuit
import jax
import numpy as np
import pytest
from scipy import stats

import hepprob
from hepprob import demo
from hepprob.errors import ParameterError

N = 2000


def scipy_nll(p, x):
    mu, sigma, lam, frac = p
    cb = stats.crystalball(demo.ALPHA, demo.N_TAIL, loc=mu, scale=sigma)
    sig = cb.pdf(x) / (cb.cdf(demo.HIGH) - cb.cdf(demo.LOW))
    width = demo.HIGH - demo.LOW
    bkg = stats.truncexpon(b=lam * width, loc=demo.LOW, scale=1 / lam).pdf(x)
    return -np.sum(np.log(frac * sig + (1 - frac) * bkg))


def test_demo_run_agrees_with_iminuit():
    out = demo.run(seed=3, n_events=N, search=False, mcmc_samples=0)
    again = json.loads(json.dumps(out))
    assert again == out
    assert out["converged"]
    assert set(out["values"]) == {"mu", "sigma", "lam", "frac"}
    for name, truth in demo.TRUTH.items():
        assert abs(out["values"][name] - truth) < 4 * out["errors"][name], name

    mass = demo.generate(jax.random.key(3), N)
    assert mass.shape == (N,)
    assert np.all((mass > demo.LOW) & (mass < demo.HIGH))
    names = ["mu", "sigma", "lam", "frac"]
    m = iminuit.Minuit(lambda p: scipy_nll(p, mass), [5.27, 0.03, 2.0, 0.5], name=names)
    m.errordef = iminuit.Minuit.LIKELIHOOD
    m.limits = [(5.2, 5.35), (0.005, 0.1), (0.01, 20.0), (0.0, 1.0)]
    m.strategy = 2
    m.tol = 1e-6
    m.migrad()
    m.hesse()
    assert m.valid
    for name in names:
        np.testing.assert_allclose(out["values"][name], m.values[name], rtol=1e-3)
        np.testing.assert_allclose(out["errors"][name], m.errors[name], rtol=1e-2)
    np.testing.assert_allclose(out["nll"], m.fval, rtol=1e-8)


def test_generated_sample_follows_the_truth():
    mass = demo.generate(jax.random.key(7), 4000)
    t = demo.TRUTH
    cb = stats.crystalball(demo.ALPHA, demo.N_TAIL, loc=t["mu"], scale=t["sigma"])
    width = demo.HIGH - demo.LOW
    bkg = stats.truncexpon(b=t["lam"] * width, loc=demo.LOW, scale=1 / t["lam"])
    norm = cb.cdf(demo.HIGH) - cb.cdf(demo.LOW)

    def cdf(x):
        return t["frac"] * (cb.cdf(x) - cb.cdf(demo.LOW)) / norm + (
            1 - t["frac"]
        ) * bkg.cdf(x)

    assert stats.kstest(mass, cdf).pvalue > 1e-3


def test_demo_bad_input():
    with pytest.raises(
        ParameterError, match=r"n_events must be an integer >= 10, got 5"
    ):
        demo.run(n_events=5)
    with pytest.raises(ParameterError, match=r"seed must be an integer, got 'a'"):
        demo.run(seed="a")


def test_demo_search_matches_pyhf_and_posterior_is_sane():
    import pyhf

    out = demo.run(seed=4, n_events=N, mcmc_samples=150)
    search = out["search"]
    pyhf.set_backend("numpy")
    ws = pyhf.Workspace(search["workspace"])
    model = ws.model()
    data = ws.data(model)
    cls_obs, cls_exp = pyhf.infer.hypotest(1.0, data, model, return_expected_set=True)
    assert search["CLs_obs"] == pytest.approx(float(cls_obs), abs=1e-4)
    assert search["CLs_exp"] == pytest.approx([float(c) for c in cls_exp], abs=1e-4)
    obs, exp = pyhf.infer.intervals.upper_limits.upper_limit(
        data, model, scan=np.linspace(0.05, 10.0, 200)
    )
    assert search["upper_limit_obs"] == pytest.approx(float(obs), rel=1e-2)
    assert search["upper_limit_exp"] == pytest.approx([float(e) for e in exp], rel=1e-2)
    post = out["posterior"]
    for name in ("mu", "sigma"):
        # the posterior (flat priors) sits on the likelihood peak: within 3 errors
        assert abs(post[name]["mean"] - out["values"][name]) < 3 * out["errors"][name]
        assert post[name]["sd"] == pytest.approx(out["errors"][name], rel=0.3)


def test_demo_defaults_give_limits_with_cls_at_the_level_in_pyhf():
    """`hepprob demo` as shipped (seed 0, 10^4 events): the limit search works.

    Here the fit at mu = 0 leaves a q of rounding size with q_A = 0, where the
    second branch of the qtilde formula is 0/0: CLs(0) must be 1, as in pyhf.
    """
    import pyhf

    from hepprob.histfactory import Workspace

    search = demo.run(mcmc_samples=0)["search"]
    pyhf.set_backend("numpy")
    ws = pyhf.Workspace(search["workspace"])
    model = ws.model()
    data = ws.data(model)
    ours_ws = Workspace(search["workspace"])
    ours = ours_ws.model()
    cls0 = hepprob.infer.hypotest(0.0, ours_ws.data(ours), ours)
    assert float(cls0) == pytest.approx(float(pyhf.infer.hypotest(0.0, data, model)))
    limits = [search["upper_limit_obs"], *search["upper_limit_exp"]]
    for i, mu in enumerate(limits):
        cls_obs, cls_exp = pyhf.infer.hypotest(
            mu, data, model, return_expected_set=True
        )
        got = float(cls_obs) if i == 0 else float(cls_exp[i - 1])
        assert got == pytest.approx(0.05, abs=1e-4)
