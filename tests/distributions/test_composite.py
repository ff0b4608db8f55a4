"""Mixture, Extended and Product against closed forms built from scipy.stats."""

from __future__ import annotations

import iminuit
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as nd
import pytest
from numpyro import handlers
from numpyro.infer.util import log_density
from scipy import integrate, special, stats

import hepprob
from hepprob.errors import DataError, HepprobWarning, ParameterError

dist = hepprob.dist
LOW, HIGH = 5.1, 5.5

# --- Mixture table: (id, components, fractions, scipy components, full fractions) ------

MIXTURES = [
    (
        "two-normals-free",
        lambda: [nd.Normal(0.0, 1.0), nd.Normal(3.0, 0.5)],
        [0.3],
        [stats.norm(0.0, 1.0), stats.norm(3.0, 0.5)],
        [0.3, 0.7],
    ),
    (
        "two-normals-full",
        lambda: [nd.Normal(0.0, 1.0), nd.Normal(3.0, 0.5)],
        jnp.array([0.3, 0.7]),
        [stats.norm(0.0, 1.0), stats.norm(3.0, 0.5)],
        [0.3, 0.7],
    ),
    (
        "peak-on-flat-range",
        lambda: [
            nd.TruncatedNormal(5.28, 0.03, low=LOW, high=HIGH),
            nd.Uniform(LOW, HIGH),
        ],
        [0.2, 0.8],
        [
            stats.truncnorm(
                (LOW - 5.28) / 0.03, (HIGH - 5.28) / 0.03, loc=5.28, scale=0.03
            ),
            stats.uniform(LOW, HIGH - LOW),
        ],
        [0.2, 0.8],
    ),
    (
        "three-positive",
        lambda: [nd.Gamma(3.0, 2.0), nd.Exponential(0.5), nd.LogNormal(0.2, 0.4)],
        [0.25, 0.35],
        [
            stats.gamma(3.0, scale=0.5),
            stats.expon(scale=2.0),
            stats.lognorm(0.4, scale=np.exp(0.2)),
        ],
        [0.25, 0.35, 0.4],
    ),
]
IDS = [m[0] for m in MIXTURES]


@pytest.fixture(params=MIXTURES, ids=IDS)
def mixture(request):
    _, comps, fracs, refs, full = request.param
    mix = dist.Mixture(comps(), fracs)

    def ref_pdf(x):
        return sum(f * r.pdf(x) for f, r in zip(full, refs, strict=True))

    def ref_cdf(x):
        return sum(f * r.cdf(x) for f, r in zip(full, refs, strict=True))

    support = (min(r.support()[0] for r in refs), max(r.support()[1] for r in refs))
    return mix, ref_pdf, ref_cdf, refs, full, support


def _grid(support):
    lo, hi = support
    lo = -6.0 if np.isinf(lo) else lo
    hi = 12.0 if np.isinf(hi) else hi
    eps = 1e-9 * (hi - lo)
    return np.concatenate([[lo + eps, hi - eps], np.linspace(lo + eps, hi - eps, 37)])


def test_mixture_log_prob_cdf_vs_scipy(mixture):
    mix, ref_pdf, ref_cdf, _, full, support = mixture
    x = _grid(support)
    np.testing.assert_allclose(mix.log_prob(x), np.log(ref_pdf(x)), rtol=1e-10)
    np.testing.assert_allclose(mix.cdf(x), ref_cdf(x), rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(mix.fractions, full, rtol=1e-15)
    a, b = x[5], x[20]
    assert float(mix.integral(a, b)) == pytest.approx(
        ref_cdf(b) - ref_cdf(a), rel=1e-10
    )


def test_mixture_integrates_to_one_and_moments(mixture):
    mix, _, _, refs, full, support = mixture
    pdf = jax.jit(lambda x: jnp.exp(mix.log_prob(x)))
    pieces = [(-np.inf, 0.0), (0.0, np.inf)] if np.isinf(support[0]) else [support]
    total = sum(
        integrate.quad(lambda t: float(pdf(t)), lo, hi, epsrel=1e-12, limit=200)[0]
        for lo, hi in pieces
    )
    assert total == pytest.approx(1.0, abs=1e-9)
    mean = sum(f * r.mean() for f, r in zip(full, refs, strict=True))
    second = sum(f * (r.var() + r.mean() ** 2) for f, r in zip(full, refs, strict=True))
    assert float(mix.mean) == pytest.approx(mean, rel=1e-10)
    assert float(mix.variance) == pytest.approx(second - mean**2, rel=1e-10)


def test_mixture_sample_ks(mixture):
    mix, _, ref_cdf, _, _, _ = mixture
    draws = mix.sample(jax.random.PRNGKey(2), (20000,))
    assert draws.shape == (20000,)
    assert stats.kstest(np.asarray(draws), ref_cdf).pvalue > 1e-3


def test_mixture_grad_vs_finite_differences():
    x = jnp.array([-0.5, 0.7, 2.9, 4.0])

    @jax.jit
    def total(vec):
        comps = [nd.Normal(vec[1], 1.0), nd.Normal(3.0, vec[2])]
        return jnp.sum(dist.Mixture(comps, [vec[0]]).log_prob(x))

    vec = np.array([0.3, 0.1, 0.5])
    grad = np.asarray(jax.grad(total)(jnp.asarray(vec)))
    for i in range(3):
        e = np.zeros(3)
        e[i] = 1e-6
        fd = (
            float(total(jnp.asarray(vec + e))) - float(total(jnp.asarray(vec - e)))
        ) / 2e-6
        assert grad[i] == pytest.approx(fd, rel=1e-6)
    # analytic gradient w.r.t. the free fraction: sum (p1 - p2) / p
    p1, p2 = stats.norm.pdf(x, 0.1, 1.0), stats.norm.pdf(x, 3.0, 0.5)
    ref = np.sum((p1 - p2) / (0.3 * p1 + 0.7 * p2))
    assert grad[0] == pytest.approx(ref, rel=1e-10)
    # a zero fraction keeps the gradient finite
    g0 = jax.grad(total)(jnp.array([0.0, 0.1, 0.5]))
    assert np.all(np.isfinite(np.asarray(g0)))


def test_mixture_far_tails():
    # both components underflow: the weighted logsumexp stays exact and finite
    x = jnp.array([-40.0, 60.0])

    @jax.jit
    def total(vec):
        comps = [nd.Normal(vec[1], 1.0), nd.Normal(3.0, 0.5)]
        return dist.Mixture(comps, [vec[0]]).log_prob(x)

    lp = total(jnp.array([0.3, 0.0]))
    ref = special.logsumexp(
        [stats.norm.logpdf(x, 0.0, 1.0), stats.norm.logpdf(x, 3.0, 0.5)],
        b=np.array([[0.3], [0.7]]),
        axis=0,
    )
    np.testing.assert_allclose(lp, ref, rtol=1e-12)
    jac = np.asarray(jax.jacfwd(total)(jnp.array([0.3, 0.0])))
    assert np.all(np.isfinite(jac))
    # at x = -40 the first component dominates: d/dmu log p = (x - mu)
    assert jac[0, 1] == pytest.approx(-40.0, rel=1e-10)


def test_mixture_jit_vmap_batch():
    comps = [nd.Normal(0.0, 1.0), nd.Normal(3.0, 0.5)]
    x = jnp.linspace(-2.0, 5.0, 6)
    fs = jnp.array([0.1, 0.5, 0.9])
    eager = np.stack([np.asarray(dist.Mixture(comps, [f]).log_prob(x)) for f in fs])
    fn = jax.jit(lambda f: dist.Mixture(comps, [f]).log_prob(x))
    np.testing.assert_allclose(jax.vmap(fn)(fs), eager, rtol=1e-12)
    batched = dist.Mixture(comps, fs[:, None])
    assert batched.batch_shape == (3,)
    np.testing.assert_allclose(batched.log_prob(x[:, None]).T, eager, rtol=1e-12)
    draws = batched.sample(jax.random.PRNGKey(0), (4000,))
    assert draws.shape == (4000, 3)
    for j, f in enumerate(np.asarray(fs)):
        ref = lambda t, f=f: f * stats.norm.cdf(t) + (1 - f) * stats.norm.cdf(t, 3, 0.5)
        assert stats.kstest(np.asarray(draws[:, j]), ref).pvalue > 1e-3
    leaves, tree = jax.tree_util.tree_flatten(batched)
    again = jax.tree_util.tree_unflatten(tree, leaves)
    np.testing.assert_allclose(again.log_prob(x[:, None]), batched.log_prob(x[:, None]))


def test_mixture_two_dimensional():
    covs = [np.array([[1.0, 0.3], [0.3, 0.5]]), np.array([[0.4, -0.1], [-0.1, 0.8]])]
    means = [np.array([0.0, 1.0]), np.array([2.0, -1.0])]
    comps = [
        nd.MultivariateNormal(jnp.asarray(m), jnp.asarray(c))
        for m, c in zip(means, covs, strict=True)
    ]
    mix = dist.Mixture(comps, [0.6])
    x = np.random.default_rng(0).normal(size=(10, 2))
    ref = 0.6 * stats.multivariate_normal(means[0], covs[0]).pdf(x) + 0.4 * (
        stats.multivariate_normal(means[1], covs[1]).pdf(x)
    )
    np.testing.assert_allclose(mix.log_prob(x), np.log(ref), rtol=1e-10)
    draws = np.asarray(mix.sample(jax.random.PRNGKey(1), (40000,)))
    assert draws.shape == (40000, 2)
    ref_mean = 0.6 * means[0] + 0.4 * means[1]
    np.testing.assert_allclose(np.asarray(mix.mean), ref_mean, rtol=1e-12)
    err = draws.std(axis=0) / np.sqrt(len(draws))
    assert np.all(np.abs(draws.mean(axis=0) - ref_mean) < 5 * err)


def test_mixture_bad_input():
    comps = [nd.Normal(0.0, 1.0), nd.Normal(3.0, 0.5)]
    with pytest.raises(ParameterError, match="fractions must have 2 entries"):
        dist.Mixture(comps, [0.2, 0.3, 0.5])
    with pytest.raises(ParameterError, match="must sum to 1"):
        dist.Mixture(comps, [0.2, 0.3])
    with pytest.raises(ParameterError, match=r"fractions must be in \[0, 1\]"):
        dist.Mixture(comps, [1.2])
    with pytest.raises(ParameterError, match="at most 1"):
        dist.Mixture([*comps, nd.Normal(1.0, 1.0)], [0.7, 0.6])
    with pytest.raises(ParameterError, match="at least one"):
        dist.Mixture([], [])
    with pytest.raises(ParameterError, match=r"components\[1\] must be"):
        dist.Mixture([comps[0], "normal"], [0.5])
    with pytest.raises(ParameterError, match="one event_shape"):
        dist.Mixture([comps[0], nd.MultivariateNormal(jnp.zeros(2), jnp.eye(2))], [0.5])
    with pytest.raises(ParameterError, match="list of distributions"):
        dist.Mixture(comps[0], [0.5])


# --- Extended ------------------------------------------------------------------------

SIG = stats.truncnorm((LOW - 5.28) / 0.03, (HIGH - 5.28) / 0.03, loc=5.28, scale=0.03)
BKG = stats.uniform(LOW, HIGH - LOW)


def _components(mu=5.28):
    return [nd.TruncatedNormal(mu, 0.03, low=LOW, high=HIGH), nd.Uniform(LOW, HIGH)]


def _data(n_sig=30, n_bkg=70, seed=0):
    rng = np.random.default_rng(seed)
    return np.concatenate(
        [SIG.rvs(n_sig, random_state=rng), BKG.rvs(n_bkg, random_state=rng)]
    )


def _ref_extended(x, ns, nb, weights=None):
    """log Pois(N; nu) + sum log((ns fs + nb fb) / nu), from scipy.stats."""
    nu = ns + nb
    dens = ns * SIG.pdf(x) + nb * BKG.pdf(x)
    if weights is None:
        return stats.poisson.logpmf(len(x), nu) + np.sum(np.log(dens / nu))
    w_tot = np.sum(weights)
    return -nu + np.sum(weights * np.log(dens)) - special.gammaln(w_tot + 1)


def test_extended_vs_scipy():
    x = _data()
    ext = dist.Extended(_components(), [25.0, 80.0])
    assert float(ext.log_prob(x)) == pytest.approx(
        _ref_extended(x, 25.0, 80.0), rel=1e-12
    )
    lp = jax.jit(lambda y, data: dist.Extended(_components(), y).log_prob(data))
    y0 = jnp.array([25.0, 80.0])
    # empty dataset: log Pois(0; nu) = -nu
    assert float(lp(y0, np.zeros(0))) == pytest.approx(-105.0, rel=1e-14)
    # batched datasets (leading axis) and batched yields
    two = np.stack([x, _data(seed=1)])
    np.testing.assert_allclose(
        lp(y0, two),
        [_ref_extended(two[0], 25.0, 80.0), _ref_extended(two[1], 25.0, 80.0)],
        rtol=1e-12,
    )
    ys = jnp.array([[25.0, 80.0], [40.0, 60.0]])
    assert dist.Extended(_components(), ys).batch_shape == (2,)
    ref = [_ref_extended(x, 25.0, 80.0), _ref_extended(x, 40.0, 60.0)]
    np.testing.assert_allclose(lp(ys, x), ref, rtol=1e-12)
    np.testing.assert_allclose(jax.vmap(lp, (0, None))(ys, x), ref, rtol=1e-12)


def test_extended_weights_and_mask():
    x = _data()
    w = np.random.default_rng(3).uniform(0.5, 1.5, x.size)
    ext = dist.Extended(_components(), [25.0, 80.0], weights=w)
    assert float(ext.log_prob(x)) == pytest.approx(
        _ref_extended(x, 25.0, 80.0, w), rel=1e-12
    )
    # padding: NaN and out-of-range entries, masked out, change nothing
    padded = np.concatenate([x, [np.nan, 99.0, -3.0]])
    mask = np.concatenate([np.ones(x.size, bool), np.zeros(3, bool)])
    masked = dist.Extended(_components(), [25.0, 80.0], mask=mask)
    assert float(masked.log_prob(padded)) == pytest.approx(
        _ref_extended(x, 25.0, 80.0), rel=1e-12
    )
    assert masked.event_shape == (padded.size,)

    def nll(vec, data):
        comps = _components(vec[2])
        return -dist.Extended(comps, vec[:2], mask=mask).log_prob(data)

    vec = jnp.array([25.0, 80.0, 5.28])
    grad = np.asarray(jax.jit(jax.grad(nll))(vec, padded))
    assert np.all(np.isfinite(grad))
    # d(-log L)/d ns = 1 - sum fs / (ns fs + nb fb)  (closed form)
    dens = 25.0 * SIG.pdf(x) + 80.0 * BKG.pdf(x)
    assert grad[0] == pytest.approx(1.0 - np.sum(SIG.pdf(x) / dens), rel=1e-10)
    assert grad[1] == pytest.approx(1.0 - np.sum(BKG.pdf(x) / dens), rel=1e-10)


def test_extended_in_numpyro_model_and_fit():
    x = _data(n_sig=40, n_bkg=60, seed=4)

    def model(data):
        ns = numpyro.param("ns", 20.0)
        nb = numpyro.param("nb", 70.0)
        numpyro.sample("x", dist.Extended(_components(), [ns, nb]), obs=data)

    lp, _ = log_density(model, (x,), {}, {"ns": 33.0, "nb": 71.0})
    assert float(lp) == pytest.approx(_ref_extended(x, 33.0, 71.0), rel=1e-12)

    # at the maximum of an extended likelihood the fitted yields sum to N
    nll = jax.jit(lambda v: -dist.Extended(_components(), v).log_prob(x))
    grad = jax.jit(jax.grad(lambda v: -dist.Extended(_components(), v).log_prob(x)))
    m = iminuit.Minuit(
        lambda v: float(nll(jnp.asarray(v))),
        np.array([20.0, 70.0]),
        grad=lambda v: np.asarray(grad(jnp.asarray(v))),
    )
    m.errordef = 0.5
    m.limits = [(0, None), (0, None)]
    m.tol = 1e-7
    m.migrad()
    assert m.valid
    assert sum(m.values) == pytest.approx(x.size, rel=1e-6)


def test_extended_sample_padded():
    ext = dist.Extended(_components(), [30.0, 70.0])
    draw = jax.jit(lambda k: ext.sample_padded(k, (2000,), max_events=160))
    events, mask = draw(jax.random.PRNGKey(0))
    assert events.shape == (2000, 160)
    assert mask.shape == (2000, 160)
    counts = np.asarray(mask.sum(-1))
    # mask is a prefix of length N, N ~ Pois(100)
    np.testing.assert_array_equal(np.asarray(mask), np.arange(160) < counts[:, None])
    assert abs(counts.mean() - 100.0) < 5 * np.sqrt(100.0 / 2000)
    assert stats.kstest(counts, stats.poisson(100.0).cdf).statistic < 0.05
    # all events (padding included) are draws of the mixture
    ref = lambda t: 0.3 * SIG.cdf(t) + 0.7 * BKG.cdf(t)
    assert stats.kstest(np.asarray(events[:200]).ravel(), ref).pvalue > 1e-3
    # a toy feeds straight back into the likelihood with its mask
    toy = dist.Extended(_components(), [30.0, 70.0], mask=mask[0])
    real = np.asarray(events[0])[np.asarray(mask[0])]
    assert float(toy.log_prob(events[0])) == pytest.approx(
        _ref_extended(real, 30.0, 70.0), rel=1e-12
    )
    # a max_events far below nu warns (outside jit) about truncation
    with pytest.warns(HepprobWarning, match="max_events"):
        eager = ext.sample_padded(jax.random.PRNGKey(1), (), max_events=20)
    np.testing.assert_array_equal(eager[1], np.ones(20, bool))
    assert np.all((np.asarray(eager[0]) >= LOW) & (np.asarray(eager[0]) <= HIGH))


def test_extended_padded_mode_and_numpyro_toys():
    m = 150
    x = _data()
    padded = dist.Extended.pad(x, m)
    assert padded.shape == (m,)
    ext = dist.Extended(_components(), [30.0, 70.0], max_events=m)
    assert ext.event_shape == (m,)
    assert float(ext.log_prob(padded)) == pytest.approx(
        _ref_extended(x, 30.0, 70.0), rel=1e-12
    )
    value_and_grad = jax.jit(
        jax.value_and_grad(
            lambda y: dist.Extended(_components(), y, max_events=m).log_prob(padded)
        )
    )
    lp, grad = value_and_grad(jnp.array([30.0, 70.0]))
    assert float(lp) == pytest.approx(_ref_extended(x, 30.0, 70.0), rel=1e-12)
    # d log L / d ns = -1 + sum fs / (ns fs + nb fb)  (closed form)
    dens = 30.0 * SIG.pdf(x) + 70.0 * BKG.pdf(x)
    assert float(grad[0]) == pytest.approx(-1.0 + np.sum(SIG.pdf(x) / dens), rel=1e-10)

    def model(data=None):
        ns = numpyro.param("ns", 30.0)
        numpyro.sample(
            "x", dist.Extended(_components(), [ns, 70.0], max_events=m), obs=data
        )

    # a toy drawn by NumPyro (no obs) is a NaN-padded dataset of N ~ Pois(100) events
    toy = jax.jit(
        lambda: handlers.trace(handlers.seed(model, 0)).get_trace()["x"]["value"]
    )()
    toy = np.asarray(toy)
    assert toy.shape == (m,)
    real = toy[~np.isnan(toy)]
    np.testing.assert_array_equal(np.isnan(toy), np.arange(m) >= real.size)
    assert np.all((real >= LOW) & (real <= HIGH))
    # ... and feeds straight back as observed data
    lp = jax.jit(lambda d: log_density(model, (d,), {}, {"ns": 25.0})[0])(toy)
    assert float(lp) == pytest.approx(_ref_extended(real, 25.0, 70.0), rel=1e-12)
    ext.check_data(padded)  # NaN rows are padding here: no error
    with pytest.raises(DataError, match="padded mode expects max_events=150"):
        ext.check_data(x)
    with pytest.raises(DataError, match="NaN/inf at event index"):
        dist.Extended(_components(), [30.0, 70.0]).check_data(padded)
    with pytest.raises(ParameterError, match="give max_events"):
        dist.Extended(_components(), [30.0, 70.0]).sample(jax.random.PRNGKey(0))


def test_extended_two_dimensional_events():
    # (mass, cos theta): signal peaks in mass and is flat in angle, background
    # is flat in mass and a truncated normal in angle
    sig = dist.Product(
        [nd.TruncatedNormal(5.28, 0.03, low=LOW, high=HIGH), nd.Uniform(-1.0, 1.0)]
    )
    bkg = dist.Product(
        [nd.Uniform(LOW, HIGH), nd.TruncatedNormal(0.0, 0.5, low=-1.0, high=1.0)]
    )
    rng = np.random.default_rng(6)
    x = np.column_stack([rng.uniform(LOW, HIGH, 40), rng.uniform(-1, 1, 40)])
    ang = stats.truncnorm(-2.0, 2.0, loc=0.0, scale=0.5)
    f_s = SIG.pdf(x[:, 0]) * 0.5
    f_b = BKG.pdf(x[:, 0]) * ang.pdf(x[:, 1])
    ref = stats.poisson.logpmf(40, 50.0) + np.sum(np.log((20 * f_s + 30 * f_b) / 50.0))
    ext = dist.Extended([sig, bkg], [20.0, 30.0])
    assert float(ext.log_prob(x)) == pytest.approx(ref, rel=1e-12)
    padded = dist.Extended.pad(x, 64)
    assert padded.shape == (64, 2)
    lp = jax.jit(
        lambda data: dist.Extended([sig, bkg], [20.0, 30.0], max_events=64).log_prob(
            data
        )
    )
    assert float(lp(padded)) == pytest.approx(ref, rel=1e-12)
    with pytest.raises(DataError, match=r"dataset of shape \(N, \*\(2,\)\)"):
        ext.log_prob(np.zeros((5, 3)))


def test_extended_bad_input():
    comps = _components()
    with pytest.raises(
        ParameterError, match="yields must have one entry per component"
    ):
        dist.Extended(comps, [1.0, 2.0, 3.0])
    with pytest.raises(ParameterError, match="yields must be finite and >= 0"):
        dist.Extended(comps, [-1.0, 2.0])
    with pytest.raises(ParameterError, match="total yield must be > 0"):
        dist.Extended(comps, [0.0, 0.0])
    with pytest.raises(ParameterError, match="max_events must be a positive integer"):
        dist.Extended(comps, [1.0, 2.0], max_events=0)
    with pytest.raises(DataError, match="N <= max_events=2"):
        dist.Extended.pad(np.ones(3), 2)
    with pytest.raises(DataError, match="mask must be boolean"):
        dist.Extended(comps, [1.0, 2.0], mask=np.array([0.5, 1.0]))
    with pytest.raises(DataError, match="weights must be finite"):
        dist.Extended(comps, [1.0, 2.0], weights=np.array([np.nan, 1.0]))
    with pytest.raises(DataError, match="differ in length"):
        dist.Extended(comps, [1.0, 2.0], weights=np.ones(3), mask=np.ones(4, bool))
    ext = dist.Extended(comps, [1.0, 2.0], mask=np.ones(4, bool))
    with pytest.raises(DataError, match="mask has 4 entries but the dataset has N=3"):
        ext.log_prob(np.full(3, 5.3))
    with pytest.raises(DataError, match="NaN/inf at event index"):
        dist.Extended(comps, [1.0, 2.0]).log_prob(np.array([5.2, np.nan]))
    with pytest.raises(DataError, match="dataset of shape"):
        dist.Extended(comps, [1.0, 2.0]).log_prob(5.3)


def test_crystal_ball_plus_exponential_vs_scipy():
    """hepprob's CB + exponential: Mixture and Extended vs scipy.stats on a range."""
    lo, hi = 5.0, 5.6
    cb = dist.CrystalBall(5.28, 0.02, 1.5, 3.0, low=lo, high=hi)
    ex = dist.Exponential(-2.0, low=lo, high=hi)
    ref_cb = stats.crystalball(1.5, 3.0, loc=5.28, scale=0.02)
    cb_mass = ref_cb.cdf(hi) - ref_cb.cdf(lo)
    ref_ex = stats.truncexpon(b=(hi - lo) * 2.0, loc=lo, scale=0.5)

    def pdf(t):
        return 0.3 * ref_cb.pdf(t) / cb_mass + 0.7 * ref_ex.pdf(t)

    def cdf(t):
        return 0.3 * (ref_cb.cdf(t) - ref_cb.cdf(lo)) / cb_mass + 0.7 * ref_ex.cdf(t)

    x = np.concatenate([[lo, hi, 5.2, 5.25, 5.2499], np.linspace(lo, hi, 31)])
    mix = dist.Mixture([cb, ex], [0.3])
    np.testing.assert_allclose(mix.log_prob(x), np.log(pdf(x)), rtol=1e-10)
    np.testing.assert_allclose(mix.cdf(x), cdf(x), rtol=1e-10, atol=1e-14)
    draws = np.asarray(mix.sample(jax.random.PRNGKey(0), (20000,)))
    assert stats.kstest(draws, cdf).pvalue > 1e-3
    data = draws[:300]
    ext = dist.Extended([cb, ex], [90.0, 210.0])
    ref = stats.poisson.logpmf(300, 300.0) + np.sum(np.log(pdf(data)))
    assert float(ext.log_prob(data)) == pytest.approx(ref, rel=1e-12)


# --- Product -------------------------------------------------------------------------


def test_product_vs_scipy():
    prod = dist.Product(
        [
            nd.Normal(0.5, 2.0),
            nd.MultivariateNormal(jnp.zeros(2), jnp.eye(2)),
            nd.Gamma(2.0, 3.0),
        ]
    )
    assert prod.event_shape == (4,)
    x = np.random.default_rng(2).uniform(0.1, 2.0, size=(7, 4))
    ref = (
        stats.norm(0.5, 2.0).logpdf(x[:, 0])
        + stats.multivariate_normal(np.zeros(2), np.eye(2)).logpdf(x[:, 1:3])
        + stats.gamma(2.0, scale=1 / 3.0).logpdf(x[:, 3])
    )
    np.testing.assert_allclose(prod.log_prob(x), ref, rtol=1e-10)
    np.testing.assert_allclose(prod.mean, [0.5, 0.0, 0.0, 2 / 3], atol=1e-15)
    np.testing.assert_allclose(prod.variance, [4.0, 1.0, 1.0, 2 / 9], rtol=1e-12)
    with pytest.raises(DataError, match="last axis of length 4"):
        prod.log_prob(np.zeros(3))


def test_product_on_a_box_normalised_cdf_and_sampling():
    comps = [nd.TruncatedNormal(5.28, 0.03, low=LOW, high=HIGH), nd.Uniform(-1.0, 1.0)]
    prod = dist.Product(comps)
    pdf = jax.jit(lambda x: jnp.exp(prod.log_prob(x)))
    total, _ = integrate.nquad(
        lambda m, c: float(pdf(jnp.array([m, c]))),
        [(LOW, HIGH), (-1.0, 1.0)],
        opts=[{"epsrel": 1e-10, "points": [5.28]}, {"epsrel": 1e-10}],
    )
    assert total == pytest.approx(1.0, abs=1e-8)
    pt = np.array([5.3, 0.2])
    ref_cdf = SIG.cdf(pt[0]) * stats.uniform(-1, 2).cdf(pt[1])
    assert float(prod.cdf(pt)) == pytest.approx(ref_cdf, rel=1e-10)
    a, b = np.array([5.25, -0.5]), np.array([5.3, 0.5])
    ref_mass = (SIG.cdf(b[0]) - SIG.cdf(a[0])) * 0.5
    assert float(prod.integral(a, b)) == pytest.approx(ref_mass, rel=1e-10)
    box = prod.support
    np.testing.assert_allclose(box.base_constraint.lower_bound, [LOW, -1.0])
    draws = np.asarray(prod.sample(jax.random.PRNGKey(4), (20000,)))
    assert draws.shape == (20000, 2)
    assert stats.kstest(draws[:, 0], SIG.cdf).pvalue > 1e-3
    assert stats.kstest(draws[:, 1], stats.uniform(-1, 2).cdf).pvalue > 1e-3
    assert abs(np.corrcoef(draws.T)[0, 1]) < 5 / np.sqrt(20000)


def test_product_and_mixture_of_custom_pdfs():
    # 2-D custom shape (1 + a x y) on [-1, 1]^2 (normaliser 4) times a normal
    Corr = dist.from_function(
        lambda x, a: 1 + a * x[..., 0] * x[..., 1], [-1, -1], [1, 1]
    )
    prod = dist.Product([Corr(a=0.5), nd.Normal(0.0, 2.0)])
    assert prod.event_shape == (3,)
    x = np.array([[0.2, -0.4, 1.0], [0.9, 0.9, -3.0]])
    ref = np.log((1 + 0.5 * x[:, 0] * x[:, 1]) / 4) + stats.norm(0, 2).logpdf(x[:, 2])
    np.testing.assert_allclose(prod.log_prob(x), ref, rtol=1e-12)
    a, b = np.array([0.0, 0.0, -1.0]), np.array([1.0, 1.0, 1.0])
    # mass of [0,1]^2 under (1 + a x y)/4 is (1 + a/4)/4
    ref_mass = (1 + 0.5 / 4) / 4 * (stats.norm(0, 2).cdf(1) - stats.norm(0, 2).cdf(-1))
    assert float(prod.integral(a, b)) == pytest.approx(ref_mass, rel=1e-12)
    Lin = dist.from_function(lambda x, s: 1 + s * x, -1.0, 1.0)
    mix = dist.Mixture([Lin(s=0.5), Lin(s=-0.5)], [0.25])
    t = np.linspace(-1, 1, 9)
    ref = np.log(0.25 * (1 + 0.5 * t) / 2 + 0.75 * (1 - 0.5 * t) / 2)
    np.testing.assert_allclose(mix.log_prob(t), ref, rtol=1e-12)
    # cdf of (1 + s x)/2 on [-1, 1]: (x + 1)/2 + s (x^2 - 1)/4
    ref_cdf = (t + 1) / 2 + (0.25 * 0.5 - 0.75 * 0.5) * (t**2 - 1) / 4
    np.testing.assert_allclose(mix.cdf(t), ref_cdf, rtol=1e-12, atol=1e-15)


def test_product_grad_jit_batch():
    x = jnp.array([[0.3, 1.2], [-1.0, 0.4]])

    @jax.jit
    def total(vec):
        return jnp.sum(
            dist.Product([nd.Normal(vec[0], 1.5), nd.Exponential(vec[1])]).log_prob(x)
        )

    vec = jnp.array([0.2, 1.3])
    grad = np.asarray(jax.grad(total)(vec))
    # closed forms: sum (x - mu)/sigma^2 and sum (1/lam - x)
    assert grad[0] == pytest.approx(
        np.sum((np.asarray(x[:, 0]) - 0.2) / 1.5**2), rel=1e-12
    )
    assert grad[1] == pytest.approx(np.sum(1 / 1.3 - np.asarray(x[:, 1])), rel=1e-12)
    batched = dist.Product([nd.Normal(jnp.array([0.0, 1.0]), 1.0), nd.Exponential(2.0)])
    assert batched.batch_shape == (2,)
    assert batched.sample(jax.random.PRNGKey(0), (5,)).shape == (5, 2, 2)
    lp = batched.log_prob(jnp.array([0.5, 0.5]))
    ref = stats.norm([0.0, 1.0], 1.0).logpdf(0.5) + stats.expon(scale=0.5).logpdf(0.5)
    np.testing.assert_allclose(lp, ref, rtol=1e-12)
    with pytest.raises(ParameterError, match="event_shape \\(\\) or \\(d,\\)"):
        dist.Product([nd.Normal(0.0, 1.0), nd.LKJCholesky(3, 1.0)])
