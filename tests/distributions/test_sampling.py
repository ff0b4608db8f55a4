"""Exact samplers (Argus accept-reject, numeric Truncated icdf) against scipy and quadrature."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as nd
import pytest
from scipy import integrate, stats

import hepprob  # noqa: F401  (enables x64)
from hepprob import dist

N = 100_000


def _draw(d, seed, n=N):
    x = np.asarray(jax.jit(lambda k: d.sample(k, (n,)))(jax.random.PRNGKey(seed)))
    assert np.all(np.isfinite(x))
    return x


def _quad_cdf(f, lo, hi, points=2001):
    """Reference cdf of the unnormalised density ``f`` on [lo, hi] by scipy quad."""
    grid = np.linspace(lo, hi, points)
    pieces = [
        integrate.quad(f, a, b, epsabs=0, epsrel=1e-12, limit=200)[0]
        for a, b in itertools.pairwise(grid)
    ]
    cum = np.concatenate([[0.0], np.cumsum(pieces)])
    return lambda t: np.interp(t, grid, cum / cum[-1])


# --- Argus ----------------------------------------------------------------------


@pytest.mark.parametrize("chi", [0.3, 2.0, 6.0])
def test_argus_p_half_ks_vs_scipy(chi):
    m0 = 5.29
    x = _draw(dist.Argus(m0, -(chi**2) / 2.0, 0.5), seed=11)
    assert np.all((x >= 0) & (x <= m0))
    assert stats.kstest(x, stats.argus(chi, scale=m0).cdf).pvalue > 1e-3


@pytest.mark.parametrize(
    ("c", "p", "low", "high"),
    [
        (3.0, 1.3, 0.5, 0.95),  # c > 0 on a sub-range
        (40.0, 0.7, None, None),  # strongly rising exponential factor
        (-40.0, 0.5, 0.8, 1.0),  # narrow range near the end point
        (0.0, 2.0, 0.1, 0.6),  # c = 0
        (-8.0, 3.0, 0.0, 0.4),  # range far in the low-mass tail
    ],
)
def test_argus_ks_vs_quad(c, p, low, high):
    m0 = 1.0
    lo = 0.0 if low is None else low
    hi = m0 if high is None else high

    def f(m):
        u = 1.0 - (m / m0) ** 2
        return m * u**p * np.exp(c * u) if u > 0 else 0.0

    x = _draw(dist.Argus(m0, c, p, low, high), seed=12)
    assert np.all((x >= lo) & (x <= hi))
    assert stats.kstest(x, _quad_cdf(f, lo, hi)).pvalue > 1e-3


@pytest.mark.parametrize(
    ("k", "p", "low", "high"),
    [
        (1e4, 0.5, None, None),  # huge curvature: all mass next to m0
        (1e4, 2.0, None, None),
        (3.0, -0.5, None, None),  # p < 0: density diverges at m0
        (20.0, 1.5, 0.3, 0.9),
    ],
)
def test_argus_negative_curvature_is_truncated_gamma(k, p, low, high):
    # c = -k < 0: t = k (1 - m^2/m0^2) has density t^p e^{-t}, Gamma(p + 1)
    # truncated to the image of the range: a closed form to compare with
    m0 = 2.0
    lo = 0.0 if low is None else low
    hi = m0 if high is None else high
    x = _draw(dist.Argus(m0, -k, p, low, high), seed=13)
    t = k * (1.0 - (x / m0) ** 2)
    g = stats.gamma(p + 1.0)
    g_lo, g_hi = g.cdf(k * (1 - (hi / m0) ** 2)), g.cdf(k * (1 - (lo / m0) ** 2))
    ref = lambda s: (g.cdf(s) - g_lo) / (g_hi - g_lo)
    assert stats.kstest(t, ref).pvalue > 1e-3


def test_argus_batch_columns_are_independent_and_exact():
    chis = np.array([0.5, 2.0, 4.0])
    d = dist.Argus(1.0, -(chis**2) / 2.0, 0.5)
    x = _draw(d, seed=14, n=30_000)
    assert x.shape == (30_000, 3)
    for i, chi in enumerate(chis):
        assert stats.kstest(x[:, i], stats.argus(chi).cdf).pvalue > 1e-3
    assert np.corrcoef(x[:, 0], x[:, 1])[0, 1] == pytest.approx(0.0, abs=0.03)


# --- Truncated without a base cdf ------------------------------------------------


@pytest.mark.parametrize(
    ("loc", "conc", "low", "high"),
    [(0.3, 2.0, -2.0, 2.5), (1.0, 8.0, 0.5, 3.0), (0.0, 0.5, -1.0, -0.2)],
)
def test_truncated_numeric_ks_vs_scipy(loc, conc, low, high):
    d = dist.Truncated(nd.VonMises(loc, conc), low, high)
    assert not d.analytic  # numpyro's VonMises has no cdf: the quadrature path
    ref = stats.vonmises(conc, loc=loc)
    z = ref.cdf(high) - ref.cdf(low)
    x = _draw(d, seed=15)
    assert np.all((x >= low) & (x <= high))
    assert stats.kstest(x, lambda t: (ref.cdf(t) - ref.cdf(low)) / z).pvalue > 1e-3


def test_truncated_numeric_icdf_inverts_cdf_and_batches():
    low = jnp.array([-2.0, 0.0])
    d = dist.Truncated(nd.VonMises(0.3, 2.0), low, 2.5)
    q = jnp.array([[1e-9, 0.2], [0.5, 0.999999]])
    x = d.icdf(q)
    assert x.shape == (2, 2)
    np.testing.assert_allclose(d.cdf(x), q, rtol=1e-9, atol=1e-15)
    ref = stats.vonmises(2.0, loc=0.3)
    for i, lo in enumerate(np.asarray(low)):
        z = ref.cdf(2.5) - ref.cdf(lo)
        np.testing.assert_allclose(
            (ref.cdf(np.asarray(x[:, i])) - ref.cdf(lo)) / z,
            q[:, i],
            rtol=1e-8,
            atol=1e-14,  # scipy's cdf difference rounds at ~1e-16
        )


def test_truncated_numeric_icdf_grad_vs_finite_differences():
    def icdf(loc):
        return dist.Truncated(nd.VonMises(loc, 2.0), -2.0, 2.5).icdf(0.3)

    eps = 1e-6
    fd = (icdf(0.3 + eps) - icdf(0.3 - eps)) / (2 * eps)
    assert float(jax.grad(icdf)(0.3)) == pytest.approx(float(fd), rel=1e-6)


# --- reproducible and jit-safe ----------------------------------------------------


_MAKERS = [
    lambda: dist.Argus(1.0, -2.0, 0.5),
    lambda: dist.Argus(1.0, 3.0, 1.3, 0.5, 0.95),
    lambda: dist.Truncated(nd.VonMises(0.3, 2.0), -2.0, 2.5),
    lambda: dist.Chebyshev([0.3, -0.2], 0.0, 1.0),
    lambda: dist.Truncated(nd.Normal(0.0, 1.0), -1.0, 2.0),
]


@pytest.mark.parametrize("make", _MAKERS)
def test_sampling_reproducible_from_key_and_jit_safe(make):
    d = make()
    key = jax.random.PRNGKey(7)
    eager = np.asarray(d.sample(key, (2000,)))
    jitted = np.asarray(jax.jit(lambda k: d.sample(k, (2000,)))(key))
    again = np.asarray(d.sample(key, (2000,)))
    other = np.asarray(d.sample(jax.random.PRNGKey(8), (2000,)))
    np.testing.assert_array_equal(eager, again)
    np.testing.assert_allclose(jitted, eager, rtol=1e-12)
    assert not np.allclose(other, eager)
    assert eager.shape == (2000,)


def test_argus_sample_under_jit_with_traced_parameters():
    def draw(c, key):
        return dist.Argus(1.0, c, 0.5).sample(key, (N,))

    x = np.asarray(jax.jit(draw)(-(2.0**2) / 2.0, jax.random.PRNGKey(16)))
    assert stats.kstest(x, stats.argus(2.0).cdf).pvalue > 1e-3
