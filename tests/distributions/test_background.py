"""Argus, Exponential, Chebyshev and Bernstein against scipy, closed forms and quadrature."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

import hepprob  # noqa: F401  (enables x64)
from hepprob.distributions import Argus, Bernstein, Chebyshev, Exponential
from hepprob.errors import ParameterError


def _quad(f, a, b, points=None):
    return integrate.quad(f, a, b, epsabs=0, epsrel=1e-13, limit=200, points=points)[0]


# --- Argus -------------------------------------------------------------------


@pytest.mark.parametrize("chi", [0.05, 1.0, 3.0, 6.0])
def test_argus_matches_scipy_p_half(chi):
    # scipy.stats.argus(chi, scale=m0) is RooArgusBG with p = 1/2, c = -chi^2/2
    m0 = 5.29
    d = Argus(m0, -(chi**2) / 2)
    x = m0 * np.array([0.05, 0.2, 0.5, 0.8, 0.95, 0.999, 0.999999])
    ref = stats.argus(chi, scale=m0)
    np.testing.assert_allclose(np.exp(d.log_prob(x)), ref.pdf(x), rtol=1e-10)
    # scipy's own cdf loses digits in the low tail (checked against quad below)
    np.testing.assert_allclose(d.cdf(x[2:]), ref.cdf(x[2:]), rtol=1e-10)


@pytest.mark.parametrize(
    ("c", "p", "low", "high"),
    [
        (-20.0, 0.5, None, None),
        (-3.0, -0.5, None, None),
        (-1.5, 2.3, None, None),
        (0.0, 0.5, None, None),
        (1e-9, 1.0, None, None),
        (4.0, 0.5, None, None),
        (40.0, 0.7, None, None),
        (-8.0, 0.5, 0.5, 0.99),
        (-150.0, 0.5, 0.9, 1.0),
    ],
)
def test_argus_cdf_and_norm_vs_quad(c, p, low, high):
    import mpmath as mp

    mp.mp.dps = 20

    def f_mp(m):
        return m * (1 - m * m) ** p * mp.exp(c * (1 - m * m))

    def f(m):
        return m * (1 - m * m) ** p * np.exp(c * (1 - m * m))

    d = Argus(1.0, c, p, low, high)
    lo = 0.0 if low is None else low
    hi = 1.0 if high is None else high
    total = mp.quad(f_mp, [lo, 0.5 * (lo + hi), hi])
    xs = lo + (hi - lo) * np.array([1e-4, 0.01, 0.3, 0.7, 0.99, 0.9999])
    ref = np.array([float(mp.quad(f_mp, [lo, x]) / total) for x in xs])
    np.testing.assert_allclose(d.cdf(xs), ref, rtol=1e-10)
    np.testing.assert_allclose(np.exp(d.log_prob(xs)), f(xs) / float(total), rtol=1e-10)
    # integrates to 1 over its range, and integral(a, b) is the mass of [a, b]
    # pdf == f / (mpmath integral of f) above is the normalisation check over the
    # full support; on a sub-range also integrate our pdf directly
    if high is not None:
        pdf = lambda x: float(np.exp(d.log_prob(x)))
        assert _quad(pdf, lo, hi) == pytest.approx(1.0, rel=1e-9)
    np.testing.assert_allclose(d.integral(xs[1], xs[3]), ref[3] - ref[1], rtol=1e-10)
    # icdf inverts the cdf
    q = np.array([1e-6, 0.2, 0.5, 0.9])
    np.testing.assert_allclose(d.cdf(d.icdf(q)), q, rtol=1e-9)


def test_argus_outside_support_and_range_clipping():
    d = Argus(1.0, -2.0, low=-1.0, high=3.0)  # clipped to [0, m0]
    with pytest.warns(UserWarning, match="Out-of-support"):
        assert float(d.log_prob(1.2)) == -np.inf
    with pytest.warns(UserWarning, match="Out-of-support"):
        assert float(d.log_prob(-0.1)) == -np.inf
    np.testing.assert_allclose(d.cdf(0.7), stats.argus(2.0).cdf(0.7), rtol=1e-10)


@pytest.mark.parametrize(
    "dist_ref",
    [
        (lambda: Argus(1.0, -4.5), lambda x: stats.argus(3.0).cdf(x)),
        (
            lambda: Argus(1.0, -4.5, 0.5, 0.3, 0.95),
            lambda x: (
                (stats.argus(3.0).cdf(x) - stats.argus(3.0).cdf(0.3))
                / (stats.argus(3.0).cdf(0.95) - stats.argus(3.0).cdf(0.3))
            ),
        ),
    ],
)
def test_argus_sampling_ks(dist_ref):
    make, ref_cdf = dist_ref
    x = np.asarray(make().sample(jax.random.PRNGKey(3), (4000,)))
    assert stats.kstest(x, ref_cdf).pvalue > 1e-3


# --- Exponential ---------------------------------------------------------------


@pytest.mark.parametrize("lam", [-800.0, -3.0, -1e-9, 0.0, 1e-7, 0.4, 5.0, 900.0])
def test_exponential_closed_form(lam):
    low, high = -1.0, 2.0
    x = np.array([-1.0, -0.999, -0.5, 0.0, 1.0, 1.999, 2.0])
    # reference: closed form in extended precision
    import mpmath as mp

    mp.mp.dps = 50
    if lam == 0:
        pdf = [1.0 / 3.0] * x.size
        cdf = (x - low) / 3.0
    else:
        z = mp.exp(lam * (high - low)) - 1
        pdf = [float(lam * mp.exp(lam * (mp.mpf(t) - low)) / z) for t in x]
        cdf = [float((mp.exp(lam * (mp.mpf(t) - low)) - 1) / z) for t in x]
    d = Exponential(lam, low, high)
    np.testing.assert_allclose(np.exp(d.log_prob(x)), pdf, rtol=1e-10, atol=0)
    np.testing.assert_allclose(d.cdf(x), cdf, rtol=1e-10, atol=1e-300)
    q = np.array([1e-9, 0.25, 0.5, 0.999])
    if lam == 0:
        x_ref = low + 3.0 * q
    else:
        x_ref = [
            float(low + mp.log1p(mp.mpf(v) * mp.expm1(lam * 3.0)) / lam) for v in q
        ]
    np.testing.assert_allclose(d.icdf(q), x_ref, rtol=1e-13, atol=1e-15)
    if abs(lam) < 10:
        assert _quad(
            lambda t: float(np.exp(d.log_prob(t))), low, high
        ) == pytest.approx(1, rel=1e-10)
        np.testing.assert_allclose(d.integral(-0.5, 1.0), cdf[4] - cdf[2], rtol=1e-10)


def test_exponential_matches_scipy_truncexpon_and_samples():
    # density ∝ exp(-x/s) on [0, b s] is scipy.stats.truncexpon(b, scale=s)
    s, b = 0.7, 3.0
    ref = stats.truncexpon(b, scale=s)
    d = Exponential(-1.0 / s, 0.0, b * s)
    x = np.linspace(0, b * s, 9)
    np.testing.assert_allclose(np.exp(d.log_prob(x)), ref.pdf(x), rtol=1e-10)
    np.testing.assert_allclose(d.cdf(x), ref.cdf(x), rtol=1e-10, atol=1e-300)
    sample = jax.jit(lambda k: d.sample(k, (20000,)))(jax.random.PRNGKey(0))
    assert stats.kstest(np.asarray(sample), ref.cdf).pvalue > 1e-3


def test_exponential_grad_smooth_through_zero():
    f = jax.grad(lambda lam: Exponential(lam, 0.0, 2.0).log_prob(0.5))
    for lam in [-1e-6, 0.0, 1e-6, 0.8]:
        h = 1e-5
        fd = (
            Exponential(lam + h, 0.0, 2.0).log_prob(0.5)
            - Exponential(lam - h, 0.0, 2.0).log_prob(0.5)
        ) / (2 * h)
        np.testing.assert_allclose(f(lam), fd, rtol=1e-7, atol=1e-9)


# --- polynomials ------------------------------------------------------------


def _cheb_ref(coeffs, low, high):
    return np.polynomial.Chebyshev(np.concatenate([[1.0], coeffs]), domain=[low, high])


def _bern_ref(coeffs, low, high):
    n = len(coeffs) - 1

    def f(x):
        s = (np.asarray(x) - low) / (high - low)
        return sum(c * stats.binom.pmf(k, n, s) for k, c in enumerate(coeffs))

    return f


POLYS = [
    (Chebyshev, _cheb_ref, [0.3], 0.0, 1.0),
    (Chebyshev, _cheb_ref, [-0.4, 0.2, 0.1, -0.05], -2.0, 3.0),
    (Chebyshev, _cheb_ref, [], 1.0, 2.0),
    (Bernstein, _bern_ref, [1.0, 2.0, 0.5], 0.0, 1.0),
    (Bernstein, _bern_ref, [0.2, 1.0, -0.1, 2.0, 0.7], 5.0, 9.0),
    (Bernstein, _bern_ref, [3.0], -1.0, 1.0),
]


@pytest.mark.parametrize(("cls", "ref", "coeffs", "low", "high"), POLYS)
def test_polynomial_pdf_cdf_sampling(cls, ref, coeffs, low, high):
    f = ref(np.asarray(coeffs, float), low, high)
    total = _quad(f, low, high)
    d = cls(coeffs, low, high)
    x = low + (high - low) * np.array([0.0, 1e-3, 0.25, 0.6, 0.999, 1.0])
    np.testing.assert_allclose(np.exp(d.log_prob(x)), f(x) / total, rtol=1e-10)
    cdf_ref = np.array([_quad(f, low, t) for t in x[1:]]) / total
    np.testing.assert_allclose(d.cdf(x[1:]), cdf_ref, rtol=1e-10)
    assert _quad(lambda t: float(np.exp(d.log_prob(t))), low, high) == pytest.approx(
        1, rel=1e-10
    )
    with pytest.warns(UserWarning, match="Out-of-support"):
        assert float(d.log_prob(high + 0.1)) == -np.inf
    q = np.array([0.01, 0.5, 0.97])
    np.testing.assert_allclose(d.cdf(d.icdf(q)), q, rtol=1e-12)
    sample = np.asarray(d.sample(jax.random.PRNGKey(1), (5000,)))
    cdf = lambda t: np.array([_quad(f, low, v) for v in np.atleast_1d(t)]) / total
    grid = np.linspace(low, high, 401)
    table = cdf(grid)
    assert stats.kstest(sample, lambda t: np.interp(t, grid, table)).pvalue > 1e-3


def test_polynomial_batch_jit_vmap_and_grad():
    coeffs = jnp.array([[0.3, 0.1], [-0.2, 0.05], [0.0, 0.0]])
    x = jnp.array(0.37)
    batched = Chebyshev(coeffs, 0.0, 1.0)
    assert batched.batch_shape == (3,)
    one = lambda c: Chebyshev(c, 0.0, 1.0).log_prob(x)
    np.testing.assert_allclose(jax.vmap(one)(coeffs), batched.log_prob(x), rtol=1e-14)
    np.testing.assert_allclose(jax.jit(one)(coeffs[0]), one(coeffs[0]), rtol=1e-14)
    g = jax.grad(one)(coeffs[0])
    h = 1e-6
    for i in range(2):
        e = jnp.zeros(2).at[i].set(h)
        np.testing.assert_allclose(
            g[i], (one(coeffs[0] + e) - one(coeffs[0] - e)) / (2 * h), rtol=1e-6
        )
    bern = lambda c: Bernstein(c, 0.0, 2.0).log_prob(1.3)
    c0 = jnp.array([1.0, 0.5, 2.0])
    gb = jax.grad(bern)(c0)
    for i in range(3):
        e = jnp.zeros(3).at[i].set(h)
        np.testing.assert_allclose(
            gb[i], (bern(c0 + e) - bern(c0 - e)) / (2 * h), rtol=1e-6
        )


def test_argus_grad_vs_finite_differences():
    def lp(theta):
        m0, c, p = theta
        return Argus(m0, c, p, 0.2, 0.95).log_prob(0.6)

    theta = jnp.array([1.0, -3.0, 0.7])
    g = jax.jit(jax.grad(lp))(theta)
    h = 1e-6
    for i in range(3):
        e = jnp.zeros(3).at[i].set(h)
        np.testing.assert_allclose(
            g[i], (lp(theta + e) - lp(theta - e)) / (2 * h), rtol=1e-6
        )
    # batch of curvatures through vmap equals the batched distribution
    cs = jnp.array([-5.0, -0.5, 2.0])
    v = jax.vmap(lambda c: Argus(1.0, c).log_prob(0.6))(cs)
    np.testing.assert_allclose(v, Argus(1.0, cs).log_prob(0.6), rtol=1e-13)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Argus(-1.0, -2.0), "m0"),
        (lambda: Argus(1.0, 60.0), "c must be <= 50"),
        (lambda: Argus(1.0, -1.0, -1.5), "p must be"),
        (lambda: Argus(1.0, -1.0, 0.5, 0.5, 0.2), "low < high"),
        (lambda: Argus(1.0, -1.0, 0.5, 2.0, 3.0), "overlap the support"),
        (lambda: Exponential(1.0, 2.0, 1.0), "low < high"),
        (lambda: Exponential(1.0, None, 1.0), "range"),
        (lambda: Exponential(np.nan, 0.0, 1.0), "lam"),
        (lambda: Chebyshev([2.0], 0.0, 1.0), "density >= 0"),
        (lambda: Chebyshev([0.1], 0.0, np.inf), "finite low < high"),
        (lambda: Bernstein([1.0, -3.0, 1.0], 0.0, 1.0), "density >= 0"),
        (lambda: Bernstein([0.0, 0.0], 0.0, 1.0), "not all be zero"),
        (lambda: Bernstein([], 0.0, 1.0), "at least 1"),
        (lambda: Chebyshev(np.zeros((2, 1)), np.zeros(3), 1.0), "does not broadcast"),
    ],
)
def test_bad_input(make, match):
    with pytest.raises(ParameterError, match=match):
        make()
