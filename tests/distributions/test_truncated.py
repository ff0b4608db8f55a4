"""Truncated against scipy.stats.truncnorm, NumPyro's TruncatedDistribution and quadrature."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as nd
import pytest
from scipy import integrate, stats

import hepprob  # noqa: F401  (enables x64)
from hepprob.distributions import Truncated, range_mass
from hepprob.errors import ParameterError


class _NoCdfGamma(nd.Gamma):
    """A Gamma whose cdf/icdf are unavailable: forces the numeric path."""

    def cdf(self, value):
        raise NotImplementedError

    def icdf(self, q):
        raise NotImplementedError


@pytest.mark.parametrize(
    ("loc", "scale", "low", "high"),
    [
        (1.0, 2.0, -1.0, 4.0),
        (0.0, 1.0, -8.0, -5.0),
        (0.0, 1.0, -np.inf, 0.5),
        (3.0, 0.5, 2.0, None),
    ],
)
def test_normal_vs_truncnorm(loc, scale, low, high):
    hi = np.inf if high is None else high
    ref = stats.truncnorm((low - loc) / scale, (hi - loc) / scale, loc=loc, scale=scale)
    d = Truncated(nd.Normal(loc, scale), low, high)
    a = max(low, loc - 10 * scale)
    b = min(hi, loc + 10 * scale)
    x = np.linspace(a, b, 9)
    np.testing.assert_allclose(np.exp(d.log_prob(x)), ref.pdf(x), rtol=1e-10)
    np.testing.assert_allclose(d.cdf(x[1:]), ref.cdf(x[1:]), rtol=1e-9)
    q = np.array([0.01, 0.4, 0.95])
    np.testing.assert_allclose(d.icdf(q), ref.ppf(q), rtol=1e-9)
    sample = np.asarray(jax.jit(lambda k: d.sample(k, (20000,)))(jax.random.PRNGKey(2)))
    assert np.all((sample >= low) & (sample <= hi))
    assert stats.kstest(sample, ref.cdf).pvalue > 1e-3


def test_matches_numpyro_truncated_distribution():
    base = nd.Cauchy(jnp.array([0.0, 1.0]), 1.5)
    ours = Truncated(base, -2.0, 3.0)
    theirs = nd.TruncatedDistribution(base, low=-2.0, high=3.0)
    x = jnp.array([[-1.9, 0.2], [2.5, 2.99]])
    np.testing.assert_allclose(ours.log_prob(x), theirs.log_prob(x), rtol=1e-12)
    assert ours.batch_shape == (2,)


def test_numeric_path_vs_quad():
    base = _NoCdfGamma(2.5, 1.3)
    d = Truncated(base, 0.5, 4.0)
    assert not d.analytic
    ref = stats.gamma(2.5, scale=1 / 1.3)
    z = ref.cdf(4.0) - ref.cdf(0.5)
    x = np.array([0.5, 0.6, 1.0, 2.2, 3.9, 4.0])
    np.testing.assert_allclose(np.exp(d.log_prob(x)), ref.pdf(x) / z, rtol=1e-10)
    np.testing.assert_allclose(
        d.cdf(x), (ref.cdf(x) - ref.cdf(0.5)) / z, rtol=1e-10, atol=1e-15
    )
    pdf = lambda t: float(np.exp(d.log_prob(t)))
    assert integrate.quad(pdf, 0.5, 4.0, epsrel=1e-12)[0] == pytest.approx(
        1.0, rel=1e-10
    )
    q = np.array([0.001, 0.5, 0.99])
    np.testing.assert_allclose(d.icdf(q), ref.ppf(ref.cdf(0.5) + q * z), rtol=1e-10)
    sample = np.asarray(d.sample(jax.random.PRNGKey(0), (4000,)))
    assert stats.kstest(sample, lambda t: (ref.cdf(t) - ref.cdf(0.5)) / z).pvalue > 1e-3


def test_vonmises_without_cdf_vs_scipy():
    # numpyro's VonMises has no cdf: normalised by quadrature
    d = Truncated(nd.VonMises(0.3, 2.0), -1.0, 2.0)
    ref = stats.vonmises(2.0, loc=0.3)
    z = ref.cdf(2.0) - ref.cdf(-1.0)
    x = np.linspace(-1.0, 2.0, 7)
    np.testing.assert_allclose(np.exp(d.log_prob(x)), ref.pdf(x) / z, rtol=1e-10)
    np.testing.assert_allclose(
        d.cdf(x[1:]), (ref.cdf(x[1:]) - ref.cdf(-1.0)) / z, rtol=1e-10
    )


def test_grad_jit_vmap():
    def lp(theta):
        loc, scale, low = theta
        return Truncated(nd.Normal(loc, scale), low, 2.0).log_prob(0.7)

    theta = jnp.array([0.2, 1.1, -0.5])
    g = jax.jit(jax.grad(lp))(theta)
    h = 1e-6
    for i in range(3):
        e = jnp.zeros(3).at[i].set(h)
        np.testing.assert_allclose(
            g[i], (lp(theta + e) - lp(theta - e)) / (2 * h), rtol=1e-6
        )
    locs = jnp.array([-1.0, 0.0, 1.5])
    v = jax.vmap(lambda m: Truncated(nd.Normal(m, 1.0), -1.0, 2.0).log_prob(0.7))(locs)
    np.testing.assert_allclose(
        v, Truncated(nd.Normal(locs, 1.0), -1.0, 2.0).log_prob(0.7)
    )
    # numeric path: gradient w.r.t. the Gamma rate through the quadrature normaliser
    f = lambda r: Truncated(_NoCdfGamma(2.0, r), 0.5, 3.0).log_prob(1.0)
    fd = (f(1.3 + h) - f(1.3 - h)) / (2 * h)
    np.testing.assert_allclose(jax.grad(f)(1.3), fd, rtol=1e-6)


def test_range_mass():
    np.testing.assert_allclose(
        range_mass(nd.Normal(0.0, 1.0), -1.0, 2.0),
        stats.norm.cdf(2.0) - stats.norm.cdf(-1.0),
        rtol=1e-14,
    )


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (
            lambda: Truncated(stats.norm(), 0.0, 1.0),
            "base must be a numpyro Distribution",
        ),
        (lambda: Truncated(nd.Normal(0.0, 1.0), 1.0, 0.0), "low < high"),
        (lambda: Truncated(nd.Normal(0.0, 1.0)), "give low and/or high"),
        (lambda: Truncated(nd.Poisson(3.0), 0.0, 5.0), "continuous 1-D"),
        (
            lambda: Truncated(
                nd.MultivariateNormal(jnp.zeros(2), jnp.eye(2)), 0.0, 1.0
            ),
            "event_shape",
        ),
        (lambda: Truncated(_NoCdfGamma(2.0, 1.0), 0.0, np.inf), "must be finite"),
        (
            lambda: Truncated(nd.Normal(jnp.zeros(3), 1.0), jnp.zeros(2), 1.0),
            "does not broadcast",
        ),
    ],
)
def test_bad_input(make, match):
    with pytest.raises(ParameterError, match=match):
        make()
