"""HistogramPDF (exact piecewise forms) and GaussianKDE against scipy.stats.gaussian_kde."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

import hepprob  # noqa: F401  (enables x64)
from hepprob.distributions import GaussianKDE, HistogramPDF
from hepprob.errors import ParameterError

EDGES = np.array([-1.0, 0.0, 0.5, 2.0, 2.1, 4.0])
COUNTS = np.array([3.0, 0.0, 7.0, 1.0, 4.0])


def test_histogram_matches_scipy_rv_histogram():
    ref = stats.rv_histogram((COUNTS, EDGES), density=False)
    d = HistogramPDF(EDGES, COUNTS)
    x = np.array([-1.0, -0.3, 0.7, 2.05, 3.99, 4.0])
    # the last bin includes its upper edge here (scipy's is half-open)
    np.testing.assert_allclose(np.exp(d.log_prob(x[:-1])), ref.pdf(x[:-1]), rtol=1e-13)
    np.testing.assert_allclose(np.exp(d.log_prob(4.0)), ref.pdf(3.99), rtol=1e-13)
    np.testing.assert_allclose(d.cdf(x), ref.cdf(x), rtol=1e-13, atol=1e-16)
    assert float(d.log_prob(0.25)) == -np.inf  # empty bin
    q = np.array([0.0, 0.1, 0.2, 0.5, 0.93, 1.0])
    np.testing.assert_allclose(d.icdf(q), ref.ppf(q), rtol=1e-13)
    total = sum(
        integrate.quad(lambda t: float(np.exp(d.log_prob(t))), a, b)[0]
        for a, b in itertools.pairwise(EDGES)
    )
    assert total == pytest.approx(1.0, rel=1e-12)
    np.testing.assert_allclose(
        d.integral(-0.3, 2.05), ref.cdf(2.05) - ref.cdf(-0.3), rtol=1e-13
    )
    sample = np.asarray(jax.jit(lambda k: d.sample(k, (20000,)))(jax.random.PRNGKey(0)))
    assert not np.any((sample > 0.0) & (sample < 0.5))  # never in the empty bin
    assert stats.kstest(sample, ref.cdf).pvalue > 1e-3


def test_histogram_batched_counts_and_grad():
    counts = np.array([COUNTS, [1.0, 2.0, 3.0, 4.0, 5.0]])
    d = HistogramPDF(EDGES, counts)
    assert d.batch_shape == (2,)
    for i in range(2):
        ref = stats.rv_histogram((counts[i], EDGES), density=False)
        np.testing.assert_allclose(
            d.cdf(jnp.array([1.3, 1.3]))[i], ref.cdf(1.3), rtol=1e-13
        )
        np.testing.assert_allclose(
            d.icdf(jnp.array([0.6, 0.6]))[i], ref.ppf(0.6), rtol=1e-13
        )
    sample = np.asarray(d.sample(jax.random.PRNGKey(1), (4000,)))
    assert sample.shape == (4000, 2)
    assert (
        stats.kstest(
            sample[:, 1], stats.rv_histogram((counts[1], EDGES), density=False).cdf
        ).pvalue
        > 1e-3
    )
    # log p = log n_k - log width_k - log sum n: gradient w.r.t. the counts
    g = jax.grad(lambda c: HistogramPDF(EDGES, c).log_prob(0.7))(jnp.asarray(counts[1]))
    expected = -np.ones(5) / counts[1].sum()
    expected[2] += 1.0 / counts[1][2]
    np.testing.assert_allclose(g, expected, rtol=1e-12)
    v = jax.vmap(lambda c: HistogramPDF(EDGES, c).log_prob(0.7))(jnp.asarray(counts))
    np.testing.assert_allclose(v, d.log_prob(0.7), rtol=1e-14)


@pytest.mark.parametrize("bandwidth", ["scott", "silverman", 0.35])
@pytest.mark.parametrize("weighted", [False, True])
def test_kde_matches_scipy(bandwidth, weighted):
    rng = np.random.default_rng(7)
    data = np.concatenate([rng.normal(0, 1, 40), rng.normal(4, 0.5, 20)])
    w = rng.uniform(0.2, 2.0, data.size) if weighted else None
    ref = stats.gaussian_kde(data, bw_method=bandwidth, weights=w)
    d = GaussianKDE(data, bandwidth, weights=w)
    x = np.linspace(-8, 12, 11)
    np.testing.assert_allclose(np.exp(d.log_prob(x)), ref(x), rtol=1e-10)
    for t in [-2.0, 1.0, 4.5]:
        np.testing.assert_allclose(
            d.cdf(t), ref.integrate_box_1d(-np.inf, t), rtol=1e-10
        )
    np.testing.assert_allclose(d.bw, np.sqrt(ref.covariance[0, 0]), rtol=1e-12)


def test_kde_range_normalised_and_sampled():
    rng = np.random.default_rng(3)
    data = rng.exponential(1.0, 60)
    ref = stats.gaussian_kde(data)
    low, high = 0.0, 3.0
    z = ref.integrate_box_1d(low, high)
    d = GaussianKDE(data, low=low, high=high)
    x = np.linspace(low, high, 7)
    np.testing.assert_allclose(np.exp(d.log_prob(x)), ref(x) / z, rtol=1e-10)
    np.testing.assert_allclose(
        d.cdf(1.2), ref.integrate_box_1d(low, 1.2) / z, rtol=1e-10
    )
    pdf = lambda t: float(np.exp(d.log_prob(t)))
    assert integrate.quad(pdf, low, high, limit=200)[0] == pytest.approx(1.0, rel=1e-8)
    grid = np.linspace(low, high, 301)
    table = np.array([ref.integrate_box_1d(low, t) for t in grid]) / z
    sample = np.asarray(jax.jit(lambda k: d.sample(k, (20000,)))(jax.random.PRNGKey(5)))
    assert np.all((sample >= low) & (sample <= high))
    assert stats.kstest(sample, lambda t: np.interp(t, grid, table)).pvalue > 1e-3
    q = np.array([0.05, 0.5, 0.9])
    np.testing.assert_allclose(d.cdf(d.icdf(q)), q, rtol=1e-10)


def test_kde_grad_jit_wrt_data():
    data = jnp.array([-0.5, 0.1, 0.9, 1.4])

    def lp(dat):
        return GaussianKDE(dat, 0.6).log_prob(0.3)

    g = jax.jit(jax.grad(lp))(data)
    h = 1e-6
    for i in range(4):
        e = jnp.zeros(4).at[i].set(h)
        np.testing.assert_allclose(
            g[i], (lp(data + e) - lp(data - e)) / (2 * h), rtol=1e-6
        )


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: HistogramPDF([0.0, 1.0, 0.5], [1.0, 1.0]), "strictly increasing"),
        (lambda: HistogramPDF([0.0, 1.0], [1.0, 1.0]), "len\\(edges\\) - 1"),
        (lambda: HistogramPDF([0.0, 1.0, 2.0], [1.0, -1.0]), "counts must be >= 0"),
        (lambda: HistogramPDF([0.0, 1.0, 2.0], [0.0, 0.0]), "positive sum"),
        (lambda: HistogramPDF([[0.0, 1.0]], [1.0]), "edges must be 1-D"),
        (lambda: GaussianKDE([1.0]), "at least 2 points"),
        (lambda: GaussianKDE([1.0, 2.0], "wide"), "bandwidth must be"),
        (lambda: GaussianKDE([1.0, 2.0], -0.1), "bandwidth must be > 0"),
        (lambda: GaussianKDE([1.0, 2.0], weights=[1.0]), "weights must have the shape"),
        (lambda: GaussianKDE([1.0, 2.0], weights=[1.0, -1.0]), "weights must be >= 0"),
        (lambda: GaussianKDE([1.0, 1.0]), "all equal"),
        (lambda: GaussianKDE([1.0, 2.0], low=2.0, high=1.0), "low < high"),
    ],
)
def test_bad_input(make, match):
    with pytest.raises(ParameterError, match=match):
        make()
