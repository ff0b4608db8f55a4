"""CustomPDF / from_function against scipy.stats, scipy.integrate and closed forms."""

from __future__ import annotations

import math

import iminuit
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pytest
from numpyro.distributions import constraints
from numpyro.infer.util import log_density
from scipy import integrate, stats

import hepprob
from hepprob.errors import DataError, HepprobWarning, ParameterError
from hepprob.model import ModelStructure, log_likelihood

dist = hepprob.dist

# --- 1-D table: (id, fn, log_density, low, high, params, scipy reference) ------------


def _gauss(x, mu, sigma):
    return jnp.exp(-0.5 * ((x - mu) / sigma) ** 2)


def _gamma3(x, tau):
    return x**2 * jnp.exp(-x / tau)


def _log_expo(x, lam):
    return -lam * x


def _truncated(frozen, low, high):
    """pdf/cdf of a scipy distribution renormalised on [low, high]."""
    mass = frozen.cdf(high) - frozen.cdf(low)
    return (
        lambda x: frozen.logpdf(x) - np.log(mass),
        lambda x: (frozen.cdf(x) - frozen.cdf(low)) / mass,
    )


CASES_1D = [
    (
        "gauss",
        _gauss,
        False,
        -2.0,
        3.0,
        {"mu": 0.5, "sigma": 0.8},
        stats.truncnorm((-2.0 - 0.5) / 0.8, (3.0 - 0.5) / 0.8, loc=0.5, scale=0.8),
    ),
    (
        "gamma3",
        _gamma3,
        False,
        0.5,
        10.0,
        {"tau": 1.3},
        stats.gamma(3.0, scale=1.3),
    ),
    (
        "narrow-log-gauss",
        lambda x, mu, sigma: -0.5 * ((x - mu) / sigma) ** 2,
        True,
        -2.0,
        3.0,
        {"mu": 0.4, "sigma": 0.05},
        stats.truncnorm((-2.0 - 0.4) / 0.05, (3.0 - 0.4) / 0.05, loc=0.4, scale=0.05),
    ),
    (
        "log-expo",
        _log_expo,
        True,
        1.0,
        4.0,
        {"lam": 1.7},
        stats.expon(scale=1 / 1.7),
    ),
]
IDS_1D = [c[0] for c in CASES_1D]


def _build(case):
    name, fn, is_log, low, high, params, ref = case
    cls = dist.from_function(
        fn, low, high, log_density=is_log, name=name.replace("-", "_")
    )
    logpdf, cdf = _truncated(ref, low, high)
    return cls, params, logpdf, cdf


@pytest.fixture(params=CASES_1D, ids=IDS_1D)
def case1d(request):
    return request.param


def test_log_prob_and_cdf_match_scipy(case1d):
    cls, params, ref_logpdf, ref_cdf = _build(case1d)
    low, high = case1d[3], case1d[4]
    d = cls(**params)
    eps = 1e-9 * (high - low)
    x = np.concatenate([[low, low + eps, high - eps, high], np.linspace(low, high, 41)])
    np.testing.assert_allclose(d.log_prob(x), ref_logpdf(x), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(d.cdf(x), ref_cdf(x), rtol=1e-10, atol=1e-13)
    # outside the box: zero density, cdf clipped to 0 and 1
    assert np.all(np.isneginf(d.log_prob(np.array([low - 1.0, high + 0.1]))))
    np.testing.assert_allclose(d.cdf(np.array([low - 1.0, high + 1.0])), [0.0, 1.0])


def test_normaliser_matches_quad(case1d):
    cls, params, _, _ = _build(case1d)
    fn, is_log, low, high = case1d[1], case1d[2], case1d[3], case1d[4]

    def f(x):
        v = float(fn(x, **params))
        return math.exp(v) if is_log else v

    ref, _ = integrate.quad(f, low, high, epsabs=0, epsrel=1e-13, limit=200)
    assert float(jnp.exp(cls(**params).log_normalizer)) == pytest.approx(ref, rel=1e-10)


def test_integrates_to_one(case1d):
    cls, params, _, _ = _build(case1d)
    low, high = case1d[3], case1d[4]
    pdf = jax.jit(lambda x: jnp.exp(cls(**params).log_prob(x)))
    total, _ = integrate.quad(lambda x: float(pdf(x)), low, high, epsrel=1e-12)
    assert total == pytest.approx(1.0, abs=1e-10)


def test_integral_mean_variance(case1d):
    cls, params, _, ref_cdf = _build(case1d)
    low, high = case1d[3], case1d[4]
    d = cls(**params)
    a, b = low + 0.2 * (high - low), low + 0.7 * (high - low)
    assert float(d.integral(a, b)) == pytest.approx(ref_cdf(b) - ref_cdf(a), rel=1e-10)
    assert float(d.integral(b, a)) == 0.0
    # moments by scipy.integrate.quad of the reference density
    ref_logpdf = _truncated(case1d[6], low, high)[0]
    m1 = integrate.quad(lambda x: x * np.exp(ref_logpdf(x)), low, high, epsrel=1e-12)[0]
    m2 = integrate.quad(
        lambda x: x**2 * np.exp(ref_logpdf(x)), low, high, epsrel=1e-12
    )[0]
    assert float(d.mean) == pytest.approx(m1, rel=1e-10)
    assert float(d.variance) == pytest.approx(m2 - m1**2, rel=1e-8)


def test_sample_ks(case1d):
    cls, params, _, ref_cdf = _build(case1d)
    draws = cls(**params).sample(jax.random.PRNGKey(7), (20000,))
    assert draws.shape == (20000,)
    assert stats.kstest(np.asarray(draws), ref_cdf).pvalue > 1e-3


def test_grad_matches_finite_differences(case1d):
    cls, params, _, _ = _build(case1d)
    low, high = case1d[3], case1d[4]
    x = jnp.array([low + 0.1 * (high - low), 0.5 * (low + high), high - 1e-3])
    names = list(params)

    @jax.jit
    def total(vec):
        return jnp.sum(cls(**dict(zip(names, vec, strict=True))).log_prob(x))

    vec = np.array([params[n] for n in names])
    grad = np.asarray(jax.grad(total)(jnp.asarray(vec)))
    for i in range(len(vec)):
        h = 1e-5 * max(1.0, abs(vec[i]))
        up, dn = vec.copy(), vec.copy()
        up[i] += h
        dn[i] -= h
        fd = (float(total(jnp.asarray(up))) - float(total(jnp.asarray(dn)))) / (2 * h)
        assert grad[i] == pytest.approx(fd, rel=1e-6, abs=1e-8)
        assert np.isfinite(grad[i])


def test_jit_vmap_and_batch_agree():
    Gauss = dist.from_function(_gauss, -2.0, 3.0)
    mus = jnp.array([-0.5, 0.0, 1.2])
    x = jnp.linspace(-1.9, 2.9, 7)
    eager = np.stack([np.asarray(Gauss(mu=m, sigma=0.7).log_prob(x)) for m in mus])
    jitted = jax.jit(lambda m: Gauss(mu=m, sigma=0.7).log_prob(x))
    vmapped = jax.vmap(jitted)(mus)
    batched = Gauss(mu=mus[:, None], sigma=0.7).log_prob(x)
    np.testing.assert_allclose(vmapped, eager, rtol=1e-12)
    np.testing.assert_allclose(batched, eager, rtol=1e-12)
    np.testing.assert_allclose(jitted(mus[1]), eager[1], rtol=1e-12)
    # an instance first used under jit caches no tracer
    d = Gauss(mu=0.1, sigma=0.7)
    inside = jax.jit(lambda y: d.log_prob(y) + d.cdf(y))(x)
    np.testing.assert_allclose(d.log_prob(x) + d.cdf(x), inside, rtol=1e-12)
    ref = [
        stats.truncnorm((-2 - m) / 0.7, (3 - m) / 0.7, loc=m, scale=0.7).logpdf(x)
        for m in np.asarray(mus)
    ]
    np.testing.assert_allclose(eager, ref, rtol=1e-10)


def test_batched_sampling_per_column():
    Gauss = dist.from_function(_gauss, -2.0, 3.0)
    mus = np.array([-1.0, 1.5])
    draws = Gauss(mu=jnp.asarray(mus), sigma=0.6).sample(jax.random.PRNGKey(3), (5000,))
    assert draws.shape == (5000, 2)
    for j, m in enumerate(mus):
        ref = stats.truncnorm((-2 - m) / 0.6, (3 - m) / 0.6, loc=m, scale=0.6)
        assert stats.kstest(np.asarray(draws[:, j]), ref.cdf).pvalue > 1e-3


def test_numpyro_model_log_density():
    Gauss = dist.from_function(_gauss, -2.0, 3.0)
    data = np.array([-1.0, 0.2, 0.4, 2.5])

    def model(x):
        numpyro.sample("x", Gauss(mu=0.3, sigma=1.1), obs=x)

    lp, _ = log_density(model, (data,), {}, {})
    ref = stats.truncnorm((-2 - 0.3) / 1.1, (3 - 0.3) / 1.1, loc=0.3, scale=1.1)
    assert float(lp) == pytest.approx(np.sum(ref.logpdf(data)), rel=1e-10)


def test_fit_agrees_with_iminuit_on_scipy_nll():
    """Differentiable normalisation: a hepprob-model fit equals a scipy-NLL fit."""
    data = stats.truncnorm(-2.5, 3.0, loc=0.3, scale=0.8).rvs(
        500, random_state=np.random.default_rng(8)
    )
    Gauss = dist.from_function(_gauss, -2.0, 3.0)

    def model(x):
        mu = hepprob.param("mu", 0.0, -1.0, 1.0)
        sigma = hepprob.param("sigma", 1.0, 0.1, 3.0)
        numpyro.sample("x", Gauss(mu=mu, sigma=sigma), obs=x)

    structure = ModelStructure.from_model(model, data)
    nll = jax.jit(lambda v: -log_likelihood(model, structure, (data,))(v))
    grad = jax.jit(jax.grad(nll))

    def ref_nll(v):
        mu, sigma = v
        a, b = (-2.0 - mu) / sigma, (3.0 - mu) / sigma
        return -np.sum(stats.truncnorm(a, b, loc=mu, scale=sigma).logpdf(data))

    fits = []
    for fcn, g in (
        (
            lambda v: float(nll(jnp.asarray(v))),
            lambda v: np.asarray(grad(jnp.asarray(v))),
        ),
        (ref_nll, None),
    ):
        m = iminuit.Minuit(fcn, np.array([0.0, 1.0]), grad=g)
        m.errordef = 0.5
        m.limits = [(-1.0, 1.0), (0.1, 3.0)]
        m.tol = 1e-6
        m.migrad()
        m.hesse()
        assert m.valid
        fits.append((np.array(m.values), np.array(m.errors)))
    np.testing.assert_allclose(fits[0][0], fits[1][0], rtol=1e-5)
    np.testing.assert_allclose(fits[0][1], fits[1][1], rtol=1e-3)
    # the NLLs agree at the optimum too
    assert float(nll(jnp.asarray(fits[0][0]))) == pytest.approx(
        ref_nll(fits[0][0]), rel=1e-10
    )


def test_envelope_violation_warns():
    # a spike between the lattice points of 4 envelope cells on [0, 1]
    Spike = dist.from_function(
        lambda x, w: 1.0 + 100.0 * jnp.exp(-(((x - 0.06) / w) ** 2)),
        0.0,
        1.0,
        envelope_cells=4,
        safety=1.0,
    )
    with pytest.warns(HepprobWarning, match="envelope"):
        Spike(w=0.01).sample(jax.random.PRNGKey(0), (2000,))


def test_cluster_ends_semicircle():
    # f = sqrt(1 - x^2) (1 + a x): the a-term integrates to 0, so the pdf is
    # scipy.stats.semicircular plus 2 a x sqrt(1 - x^2) / pi (closed-form cdf)
    Semi = dist.from_function(
        lambda x, a: jnp.sqrt(1.0 - x**2) * (1.0 + a * x), -1.0, 1.0, cluster_ends=True
    )
    a = 0.4
    d = Semi(a=a)
    x = np.concatenate([[-1 + 1e-12, 1 - 1e-12], np.linspace(-0.99, 0.99, 23)])
    ref = stats.semicircular()
    ref_pdf = ref.pdf(x) * (1 + a * x)
    ref_cdf = ref.cdf(x) - 2 * a / (3 * np.pi) * (1 - x**2) ** 1.5
    np.testing.assert_allclose(np.exp(d.log_prob(x)), ref_pdf, rtol=1e-10)
    np.testing.assert_allclose(d.cdf(x), ref_cdf, rtol=1e-10, atol=1e-14)
    assert float(jnp.exp(d.log_normalizer)) == pytest.approx(np.pi / 2, rel=1e-13)
    draws = d.sample(jax.random.PRNGKey(5), (20000,))
    assert (
        stats.kstest(
            np.asarray(draws),
            lambda t: ref.cdf(t) - 2 * a / (3 * np.pi) * (1 - t**2) ** 1.5,
        ).pvalue
        > 1e-3
    )
    # the plain rule converges only algebraically here: the convergence check says so
    Plain = dist.from_function(
        lambda x, a: jnp.sqrt(1.0 - x**2) * (1.0 + a * x), -1.0, 1.0
    )
    with pytest.warns(HepprobWarning, match="not converged"):
        Plain(a=a).log_prob(0.1)


def test_zero_normaliser_raises():
    Flat = dist.from_function(lambda x, a: a * jnp.ones_like(x), 0.0, 1.0)
    with pytest.raises(ParameterError, match="integral of the density over the box"):
        Flat(a=0.0).log_prob(0.5)
    assert float(Flat(a=2.0).log_prob(0.5)) == pytest.approx(0.0, abs=1e-14)


def test_positional_defaults_and_constraints():
    Shape = dist.from_function(
        lambda x, a, b=2.0: jnp.exp(-a * x) * (1 + 0 * b),
        0.0,
        1.0,
        param_constraints={"a": constraints.positive},
    )
    d1, d2 = Shape(0.5), Shape(a=0.5, b=2.0)
    np.testing.assert_allclose(d1.log_prob(0.3), d2.log_prob(0.3))
    ref = stats.truncexpon(b=0.5, scale=2.0)  # exp(-x/2) on [0, 1]
    assert float(d1.log_prob(0.3)) == pytest.approx(ref.logpdf(0.3), rel=1e-10)
    with pytest.raises(ParameterError, match="a must be"):
        Shape(a=-1.0)


def test_subclass_interface():
    class Linear(dist.CustomPDF):
        low, high = -1.0, 1.0

        @staticmethod
        def density(x, slope):
            return 1.0 + slope * x

    d = Linear(slope=0.5)
    x = np.linspace(-1, 1, 5)
    np.testing.assert_allclose(d.log_prob(x), np.log((1 + 0.5 * x) / 2.0), rtol=1e-12)
    leaves, tree = jax.tree_util.tree_flatten(d)
    again = jax.tree_util.tree_unflatten(tree, leaves)
    np.testing.assert_allclose(again.log_prob(x), d.log_prob(x))


# --- 3-D: B0 -> K*0 mu mu angular density -------------------------------------------


def _angular(x, FL, AT2, P5p):
    """LHCb, JHEP 02 (2016) 104, arXiv:1512.04442, eq. (2) with S3 = (1-FL) AT2 / 2,
    S5 = P5' sqrt(FL (1-FL)) (eq. (4)) and the other S_i = 0; times 32 pi / 9."""
    cl, ck, phi = x[..., 0], x[..., 1], x[..., 2]
    sl2, sk2 = 1.0 - cl**2, 1.0 - ck**2
    s3 = 0.5 * (1.0 - FL) * AT2
    s5 = P5p * jnp.sqrt(FL * (1.0 - FL))
    return (
        0.75 * (1.0 - FL) * sk2
        + FL * ck**2
        + 0.25 * (1.0 - FL) * sk2 * (2.0 * cl**2 - 1.0)
        - FL * ck**2 * (2.0 * cl**2 - 1.0)
        + s3 * sk2 * sl2 * jnp.cos(2.0 * phi)
        + s5 * 2.0 * ck * jnp.sqrt(sk2) * jnp.sqrt(sl2) * jnp.cos(phi)
    )


def _angular_np(cl, ck, phi, FL, AT2, P5p):
    """The same density written independently with angles (sin 2t = 2 sin t cos t)."""
    tl, tk = np.arccos(cl), np.arccos(ck)
    s3 = 0.5 * (1 - FL) * AT2
    s5 = P5p * np.sqrt(FL * (1 - FL))
    return (
        0.75 * (1 - FL) * np.sin(tk) ** 2
        + FL * np.cos(tk) ** 2
        + 0.25 * (1 - FL) * np.sin(tk) ** 2 * np.cos(2 * tl)
        - FL * np.cos(tk) ** 2 * np.cos(2 * tl)
        + s3 * np.sin(tk) ** 2 * np.sin(tl) ** 2 * np.cos(2 * phi)
        + s5 * np.sin(2 * tk) * np.sin(tl) * np.cos(phi)
    )


Angular = dist.from_function(_angular, low=[-1.0, -1.0, -np.pi], high=[1.0, 1.0, np.pi])
BOX = [(-1.0, 1.0), (-1.0, 1.0), (-np.pi, np.pi)]
PARS = {"FL": 0.7, "AT2": 0.1, "P5p": -0.4}


def test_angular_normalisation_vs_nquad_and_constant():
    opts = {"epsabs": 1e-12, "epsrel": 1e-12}
    for pars in (PARS, {"FL": 0.3, "AT2": -0.5, "P5p": 0.8}):
        ref, _ = integrate.nquad(
            lambda phi, ck, cl, p=pars: _angular_np(cl, ck, phi, **p),
            [BOX[2], BOX[1], BOX[0]],
            opts=opts,
        )
        norm = float(jnp.exp(Angular(**pars).log_normalizer))
        assert norm == pytest.approx(ref, rel=1e-10)
        # normalised by construction: 9 / (32 pi) in LHCb's eq. (2)
        assert norm == pytest.approx(32 * np.pi / 9, rel=1e-12)


def test_angular_log_prob_closed_form_and_grad():
    rng = np.random.default_rng(1)
    x = np.column_stack(
        [
            rng.uniform(-0.99, 0.99, 20),
            rng.uniform(-0.99, 0.99, 20),
            rng.uniform(-3, 3, 20),
        ]
    )
    d = Angular(**PARS)
    ref = np.log(9 / (32 * np.pi) * _angular_np(x[:, 0], x[:, 1], x[:, 2], **PARS))
    np.testing.assert_allclose(d.log_prob(x), ref, rtol=1e-10)
    assert d.event_shape == (3,)
    assert d.log_prob(x.reshape(4, 5, 3)).shape == (4, 5)

    @jax.jit
    def total(vec):
        return jnp.sum(Angular(FL=vec[0], AT2=vec[1], P5p=vec[2]).log_prob(x))

    vec = np.array([0.7, 0.1, -0.4])
    grad = np.asarray(jax.grad(total)(jnp.asarray(vec)))
    h = 1e-6
    for i in range(3):
        e = np.zeros(3)
        e[i] = h
        fd = (
            float(total(jnp.asarray(vec + e))) - float(total(jnp.asarray(vec - e)))
        ) / (2 * h)
        assert grad[i] == pytest.approx(fd, rel=1e-6)


def test_angular_integral_vs_nquad():
    # sub-boxes touching cos = 1 meet the sqrt(1 - cos^2) edge: cluster the nodes
    ends = dist.from_function(
        _angular,
        [-1.0, -1.0, -np.pi],
        [1.0, 1.0, np.pi],
        cluster_ends=[True, True, False],
    )
    d = ends(**PARS)
    a, b = np.array([-0.5, 0.0, -1.0]), np.array([0.8, 1.0, 2.0])
    ref, _ = integrate.nquad(
        lambda phi, ck, cl: 9 / (32 * np.pi) * _angular_np(cl, ck, phi, **PARS),
        [(a[2], b[2]), (a[1], b[1]), (a[0], b[0])],
        opts={"epsabs": 1e-12, "epsrel": 1e-12},
    )
    assert float(d.integral(a, b)) == pytest.approx(ref, rel=1e-10)
    assert float(d.cdf(np.array([1.0, 1.0, np.pi]))) == pytest.approx(1.0, rel=1e-12)


def test_angular_sample_moments():
    d = Angular(**PARS)
    n = 100_000
    draws = np.asarray(d.sample(jax.random.PRNGKey(11), (n,)))
    assert draws.shape == (n, 3)
    lo, hi = np.array([b[0] for b in BOX]), np.array([b[1] for b in BOX])
    assert np.all((draws >= lo) & (draws <= hi))
    observables = {
        "cos2_k": lambda cl, ck, phi: ck**2,
        "cos2_l": lambda cl, ck, phi: cl**2,
        "s3": lambda cl, ck, phi: (1 - ck**2) * (1 - cl**2) * np.cos(2 * phi),
        "s5": lambda cl, ck, phi: (
            2 * ck * np.sqrt(1 - ck**2) * np.sqrt(1 - cl**2) * np.cos(phi)
        ),
    }
    for name, g in observables.items():
        ref, _ = integrate.nquad(
            lambda phi, ck, cl, g=g: (
                g(cl, ck, phi) * 9 / (32 * np.pi) * _angular_np(cl, ck, phi, **PARS)
            ),
            [BOX[2], BOX[1], BOX[0]],
            opts={"epsabs": 1e-10, "epsrel": 1e-10},
        )
        vals = g(draws[:, 0], draws[:, 1], draws[:, 2])
        err = vals.std() / np.sqrt(n)
        assert abs(vals.mean() - ref) < 5 * err, name


# --- bad input -------------------------------------------------------------------------


def test_bad_input():
    with pytest.raises(ParameterError, match="low < high"):
        dist.from_function(_gauss, 3.0, 1.0)
    with pytest.raises(ParameterError, match="sequences of one length d"):
        dist.from_function(_angular, [-1, -1], [1, 1, 1])
    with pytest.raises(ParameterError, match="low and high"):
        dist.from_function(_gauss, None, 1.0)
    with pytest.raises(ParameterError, match="params="):
        dist.from_function(lambda x, **kw: x, 0.0, 1.0)
    with pytest.raises(ParameterError, match="order must be a positive integer"):
        dist.from_function(_gauss, 0.0, 1.0, order=0)
    with pytest.raises(ParameterError, match="cluster_ends must be"):
        dist.from_function(_angular, [-1, -1, -1], [1, 1, 1], cluster_ends=[True])
    with pytest.raises(ParameterError, match="safety must be"):
        dist.from_function(_gauss, 0.0, 1.0, safety=0.5)
    with pytest.raises(ParameterError, match="clash"):
        dist.from_function(lambda x, mean: x * mean, 0.0, 1.0)
    with pytest.raises(ParameterError, match="from_function"):
        dist.CustomPDF()
    Gauss = dist.from_function(_gauss, -2.0, 3.0)
    with pytest.raises(ParameterError, match=r"missing parameter.*sigma"):
        Gauss(mu=0.0)
    with pytest.raises(ParameterError, match="unknown parameter 'nu'"):
        Gauss(mu=0.0, sigma=1.0, nu=2.0)
    with pytest.raises(ParameterError, match="sigma must be finite"):
        Gauss(mu=0.0, sigma=np.nan)
    with pytest.raises(DataError, match="last axis of length 3"):
        Angular(**PARS).log_prob(np.zeros((5, 2)))
    Bad = dist.from_function(lambda x, a: jnp.ones(7) * a, 0.0, 1.0)
    with pytest.raises(ParameterError, match="must broadcast"):
        Bad(a=1.0).log_normalizer
    # explicit names for a **kwargs density work
    Named = dist.from_function(
        lambda x, **kw: jnp.exp(-kw["k"] * x), 0.0, 1.0, params=["k"]
    )
    assert float(Named(k=0.0).log_prob(0.5)) == pytest.approx(0.0, abs=1e-14)
