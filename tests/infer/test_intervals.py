"""Intervals by test inversion: Feldman–Cousins against exact Neyman constructions
(Poisson with known background, Gaussian with a physical boundary), the profile
interval against scipy root finding, and FC on a HistFactory workspace."""

from __future__ import annotations

import math

import numpy as np
import numpyro
import numpyro.distributions as npd
import pytest
import scipy.stats as st
from scipy.optimize import brentq

import hepprob
from hepprob.errors import ParameterError
from hepprob.histfactory import Workspace
from hepprob.infer.intervals import feldman_cousins


def counting(n, b):
    s = hepprob.param("s", 1.0, 0.0, 30.0)
    numpyro.sample("n", npd.Poisson(s + b), obs=n)


def exact_poisson_acceptance(s, b, n_obs, cl):
    """FC's construction (their sec. IV): add n by decreasing likelihood ratio
    R = P(n|s+b) / P(n|max(0, n-b)+b) until the probability reaches cl.

    n_obs is accepted iff the n ranked before it hold less than cl. Returns
    that and the distance of their probability from cl (toys resolve it only
    when it exceeds a few binomial errors).
    """
    n = np.arange(0, 400)
    p = st.poisson.pmf(n, s + b)
    ratio = p / st.poisson.pmf(n, np.maximum(0.0, n - b) + b)
    before = p[ratio > ratio[n_obs]].sum()
    return before < cl, abs(before - cl)


def check_against_exact(scan, b, n_obs, cl, n_toys, resolvable=0.6):
    sigma = math.sqrt(cl * (1 - cl) / n_toys)
    agree = 0
    for s, accepted in zip(scan.values, scan.accepted, strict=True):
        exact, margin = exact_poisson_acceptance(s, b, n_obs, cl)
        if margin > 4 * sigma:  # resolvable with these toys
            assert accepted == exact, (s, accepted, exact, margin)
            agree += 1
    assert agree >= resolvable * scan.values.size


B_TINY = 1e-12  # "b = 0": the Poisson log-likelihood's gradient is 0/0 at rate 0


def test_fc_poisson_zero_background_upper_end():
    """b = 0, n = 0 at 90 %: [0, 2.44] (Feldman & Cousins, Table IV)."""
    scan = feldman_cousins(
        counting, 0.0, B_TINY, poi="s", cl=0.9, n_toys=20_000,
        scan=np.concatenate([[0.0, 1.0, 2.0], np.arange(2.2, 2.61, 0.02), [3.0, 3.5]]),
    )  # fmt: skip
    # the grid crowds the end, where the construction is a close call
    check_against_exact(scan, 0.0, 0, 0.9, 20_000, resolvable=0.3)
    lo, hi = scan.interval
    assert lo == 0.0
    # the exact end; with 2e4 toys the boundary is resolved to about +-0.08
    # (the acceptance probability changes by only 0.06 per unit of s there)
    exact_hi = brentq(
        lambda s: st.poisson.cdf(6, s) - st.poisson.pmf(0, s) - 0.9, 2.2, 2.6
    )
    assert exact_hi == pytest.approx(2.44, abs=0.005)
    assert hi == pytest.approx(exact_hi, abs=0.1)


def test_fc_poisson_with_background_matches_exact_construction():
    cl, b, n_obs, n_toys = 0.9, 3.0, 5, 4000
    grid = np.arange(0.0, 10.01, 0.25)
    scan = feldman_cousins(
        counting, float(n_obs), b, poi="s", cl=cl, scan=grid, n_toys=n_toys
    )
    check_against_exact(scan, b, n_obs, cl, n_toys)
    exact = np.array([exact_poisson_acceptance(s, b, n_obs, cl)[0] for s in grid])
    lo, hi = scan.interval
    assert lo == 0.0
    assert exact[0]
    exact_hi = grid[np.flatnonzero(exact)[-1]]
    assert exact_hi - 0.25 <= hi <= exact_hi + 0.5  # grid and toy resolution
    # the same through interval(method="fc")
    again = hepprob.infer.interval(
        counting, float(n_obs), b, poi="s", cl=cl, method="fc", scan=grid, n_toys=n_toys
    )
    assert again == scan.interval


# --- a Gaussian measurement with a physical boundary ---------------------------------


def gauss(x):
    mu = hepprob.param("mu", 1.0, 0.0, 10.0)
    numpyro.sample("x", npd.Normal(mu, 1.0), obs=x)


def gauss_region(mu, c):
    """{x: t(x; mu) <= c} = [x_lo, mu + sqrt(c)] with t = (x-mu)^2 for x >= 0 and
    mu^2 - 2 x mu for x < 0 (mu_hat = max(0, x))."""
    r = math.sqrt(c)
    x_lo = mu - r if mu >= r else (mu * mu - c) / (2 * mu)
    return x_lo, mu + r


def gauss_coverage(mu, c):
    x_lo, x_hi = gauss_region(mu, c)
    return st.norm.cdf(x_hi - mu) - st.norm.cdf(x_lo - mu)


def test_fc_gaussian_coverage_and_interval():
    cl, n_toys, x_obs = 0.9, 4000, 0.3
    grid = np.linspace(0.0, 3.0, 31)
    scan = feldman_cousins(gauss, x_obs, poi="mu", cl=cl, scan=grid, n_toys=n_toys)
    # exact coverage of each toy acceptance region (no nuisances: the region does
    # not depend on the data), within the toys' binomial error of cl
    sigma = math.sqrt(cl * (1 - cl) / n_toys)
    mus = grid[1:]  # at mu = 0 all of x < 0 has t = 0 (a mass point): skip
    coverage = np.array(
        [gauss_coverage(m, c) for m, c in zip(mus, scan.critical[1:], strict=True)]
    )
    assert np.all(np.abs(coverage - cl) < 4 * sigma), coverage
    assert abs(coverage.mean() - cl) < 4 * sigma / math.sqrt(mus.size)

    # the interval for x_obs against the exact unified construction
    def crit(mu):
        return brentq(lambda c: gauss_coverage(mu, c) - cl, 1e-9, 50.0)

    def margin(mu):  # observed t minus the critical value
        t = (x_obs - mu) ** 2 if x_obs >= 0 else mu * mu - 2 * x_obs * mu
        return t - crit(mu)

    exact_hi = brentq(margin, 1.0, 3.0)
    lo, hi = scan.interval
    assert lo == 0.0
    assert margin(1e-6) < 0
    assert hi == pytest.approx(exact_hi, abs=0.05)


def test_profile_interval_against_scipy_roots():
    cl = 0.68
    half = st.chi2.ppf(cl, 1) / 2
    b, n = 3.0, 9.0

    def dnll(s):
        s_hat = n - b
        return (s + b - n * math.log(s + b)) - (s_hat + b - n * math.log(s_hat + b))

    exact = (
        brentq(lambda s: dnll(s) - half, 0.0, 6.0),
        brentq(lambda s: dnll(s) - half, 6.0, 20.0),
    )
    got = hepprob.infer.interval(counting, n, b, poi="s", cl=cl)
    np.testing.assert_allclose(got, exact, rtol=1e-6)
    # near the boundary the lower end is the bound
    lo, hi = hepprob.infer.interval(gauss, 0.2, poi="mu", cl=st.chi2.cdf(1.0, 1))
    assert lo == 0.0
    assert hi == pytest.approx(1.2, rel=1e-6)


def test_fc_on_a_histfactory_workspace_agrees_with_wilks_far_from_bounds():
    spec = {
        "channels": [
            {
                "name": "SR",
                "samples": [
                    {
                        "name": "signal",
                        "data": [40.0, 60.0],
                        "modifiers": [
                            {"name": "mu", "type": "normfactor", "data": None},
                            {"name": "lumi", "type": "lumi", "data": None},
                        ],
                    },
                    {
                        "name": "bkg",
                        "data": [100.0, 80.0],
                        "modifiers": [{"name": "lumi", "type": "lumi", "data": None}],
                    },
                ],
            }
        ],
        "observations": [{"name": "SR", "data": [150.0, 135.0]}],
        "measurements": [
            {
                "name": "m",
                "config": {
                    "poi": "mu",
                    "parameters": [
                        {"name": "lumi", "auxdata": [1.0], "sigmas": [0.02],
                         "bounds": [[0.8, 1.2]], "inits": [1.0]},
                    ],
                },
            }
        ],
        "version": "1.0.0",
    }  # fmt: skip
    ws = Workspace(spec)
    model = ws.model()
    data = np.asarray(ws.data(model))
    nm = model.numpyro_model()
    profile = hepprob.infer.interval(nm, data, poi="mu", cl=0.68)
    grid = np.linspace(profile[0] - 0.2, profile[1] + 0.2, 21)
    fc = hepprob.infer.interval(
        nm, data, poi="mu", cl=0.68, method="fc", scan=grid, n_toys=1000
    )
    step = grid[1] - grid[0]
    np.testing.assert_allclose(fc, profile, atol=step)


def test_interval_bad_input():
    with pytest.raises(ParameterError, match="method must be one of"):
        hepprob.infer.interval(counting, 3.0, 1.0, poi="s", method="neyman")
    with pytest.raises(ParameterError, match=r"cl must be a number in \(0, 1\)"):
        hepprob.infer.interval(counting, 3.0, 1.0, poi="s", cl=1.5)
    with pytest.raises(ParameterError, match="unknown parameter 'mu'"):
        hepprob.infer.interval(counting, 3.0, 1.0, poi="mu", method="fc")
    with pytest.raises(ParameterError, match="increasing 1-D grid"):
        feldman_cousins(counting, 3.0, 1.0, poi="s", scan=[2.0, 1.0])
    with pytest.raises(ParameterError, match="within the bounds"):
        feldman_cousins(counting, 3.0, 1.0, poi="s", scan=[-1.0, 1.0])
