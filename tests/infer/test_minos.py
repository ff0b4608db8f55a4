"""Minos intervals and profiles against iminuit's MINOS and closed-form profiles."""

from __future__ import annotations

import iminuit
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as nd
import pytest
from scipy import optimize, stats

import hepprob
from hepprob.errors import HepprobWarning, ParameterError
from hepprob.infer import fit

LOW, HIGH = 0.0, 4.0


def gauss_exp_model(x):
    mu = hepprob.param("mu", 1.8, 0.5, 3.5)
    sigma = hepprob.param("sigma", 0.5, 0.05, 2.0)
    lam = hepprob.param("lam", 1.0, 0.05, 5.0)
    f = hepprob.param("f", 0.5, 0.0, 1.0)
    signal = nd.TruncatedNormal(mu, sigma, low=LOW, high=HIGH).log_prob(x)
    background = jnp.log(lam) - lam * x - jnp.log1p(-jnp.exp(-lam * (HIGH - LOW)))
    numpyro.factor(
        "events",
        jnp.sum(jnp.logaddexp(jnp.log(f) + signal, jnp.log1p(-f) + background)),
    )


def scipy_nll(p, x):
    mu, sigma, lam, f = p
    a, b = (LOW - mu) / sigma, (HIGH - mu) / sigma
    sig = stats.truncnorm(a, b, loc=mu, scale=sigma).pdf(x)
    bkg = stats.truncexpon(b=lam * (HIGH - LOW), loc=LOW, scale=1 / lam).pdf(x)
    return -np.sum(np.log(f * sig + (1 - f) * bkg))


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(5)
    n_sig = 300
    sig = stats.truncnorm(-4, 4, loc=2.0, scale=0.4).rvs(n_sig, random_state=rng)
    bkg = stats.truncexpon(b=0.8 * 4, scale=1 / 0.8).rvs(700, random_state=rng)
    return np.concatenate([sig, bkg])


def test_minos_matches_iminuit(data):
    res = fit(gauss_exp_model, data)
    assert res.converged
    m = iminuit.Minuit(
        lambda p: scipy_nll(p, data), list(res.x), name=["mu", "sigma", "lam", "f"]
    )
    m.errordef = iminuit.Minuit.LIKELIHOOD
    m.limits = [(0.5, 3.5), (0.05, 2.0), (0.05, 5.0), (0.0, 1.0)]
    m.strategy = 2
    m.tol = 1e-6
    m.migrad()
    m.minos(cl=0.68)
    intervals = res.minos(cl=0.68)
    assert set(intervals) == {"mu", "sigma", "lam", "f"}
    for name, (lo, hi) in intervals.items():
        me = m.merrors[name]
        assert me.is_valid
        value = m.values[name]
        np.testing.assert_allclose(lo - res.values[name], me.lower, rtol=1e-2)
        np.testing.assert_allclose(hi - res.values[name], me.upper, rtol=1e-2)
        np.testing.assert_allclose(res.values[name], value, rtol=1e-4)
    # the profile at the Minos end points sits at the requested ΔNLL
    mu_lo, mu_hi = intervals["mu"]
    delta = res.profile("mu", [mu_lo, mu_hi]) - res.nll
    np.testing.assert_allclose(delta, stats.chi2.ppf(0.68, 1) / 2, rtol=1e-5)


def gauss_model(x):
    mu = hepprob.param("mu", 0.0)
    sigma = hepprob.param("sigma", 1.0, 1e-3, 100.0)
    numpyro.sample("x", nd.Normal(mu, sigma), obs=x)


@pytest.mark.parametrize("cl", [0.68, 0.95])
def test_gaussian_minos_closed_form(cl):
    x = np.random.default_rng(8).normal(1.0, 2.0, size=40)
    res = fit(gauss_model, x)
    n, s2 = x.size, x.var()
    delta = stats.chi2.ppf(cl, 1) / 2
    # profiled NLL(mu) = n/2 log(s2 + (mu - mean)^2) + const
    half_width = np.sqrt(s2 * np.expm1(2 * delta / n))
    lo, hi = res.minos("mu", cl=cl)["mu"]
    np.testing.assert_allclose(lo, x.mean() - half_width, rtol=1e-7)
    np.testing.assert_allclose(hi, x.mean() + half_width, rtol=1e-7)
    # sigma: the profile over mu is the mu = mean slice; cross it with brentq
    sig_hat = np.sqrt(s2)

    def excess(sig):
        return (
            stats.norm(x.mean(), sig_hat).logpdf(x).sum()
            - stats.norm(x.mean(), sig).logpdf(x).sum()
            - delta
        )

    ref_lo = optimize.brentq(excess, 1e-2, sig_hat, xtol=1e-14)
    ref_hi = optimize.brentq(excess, sig_hat, 10 * sig_hat, xtol=1e-14)
    np.testing.assert_allclose(
        res.minos(["sigma"], cl=cl)["sigma"], (ref_lo, ref_hi), rtol=1e-7
    )


def test_profile_closed_form():
    x = np.random.default_rng(9).normal(0.0, 1.0, size=40)
    res = fit(gauss_model, x)
    mus = np.linspace(-0.6, 0.6, 7)
    prof = res.profile("mu", mus)
    ref = [-stats.norm(m, np.sqrt(np.mean((x - m) ** 2))).logpdf(x).sum() for m in mus]
    np.testing.assert_allclose(prof, ref, rtol=1e-10)
    assert prof.shape == (7,)


def counting_model(n):
    mu = hepprob.param("mu", 1.0, 0.0, 10.0)
    numpyro.sample("n", nd.Poisson(mu * 3.0 + 5.0), obs=n)


def test_minos_at_bound_reports_the_bound():
    res = fit(counting_model, np.array(6.0))  # mu_hat = 1/3 close to the bound 0
    with pytest.warns(
        HepprobWarning, match=r"lower crossing of 'mu' lies beyond its bound 0"
    ):
        lo, hi = res.minos()["mu"]
    assert lo == 0.0
    delta = stats.chi2.ppf(0.68, 1) / 2
    best = stats.poisson.logpmf(6, 6.0)

    def excess(mu):
        return best - stats.poisson.logpmf(6, 3 * mu + 5) - delta

    np.testing.assert_allclose(
        hi, optimize.brentq(excess, 1 / 3, 10, xtol=1e-14), rtol=1e-7
    )


def test_minos_and_profile_errors():
    x = np.random.default_rng(10).normal(size=40)
    res = fit(gauss_model, x, fixed={"sigma": 1.0})
    with pytest.raises(ParameterError, match=r"\['sigma'\] are fixed"):
        res.minos("sigma")
    with pytest.raises(ParameterError, match="unknown parameter 'nope'"):
        res.minos("nope")
    with pytest.raises(
        ParameterError, match=r"cl must be a number in \(0, 1\), got 1.5"
    ):
        res.minos(cl=1.5)
    with pytest.raises(ParameterError, match=r"values for 'sigma' must lie within"):
        res.profile("sigma", [-1.0])
    with pytest.raises(ParameterError, match="non-empty 1-D array of finite numbers"):
        res.profile("mu", [np.nan])
    assert set(res.minos()) == {"mu"}
