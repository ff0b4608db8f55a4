"""Weighted unbinned fits: closed forms, hand-written numpy sandwich matrices, coverage."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as npd
import pytest
import scipy.stats as st

import hepprob
from hepprob import dist
from hepprob.errors import DataError, ParameterError
from hepprob.infer import weighted


def decay(t):
    lam = hepprob.param("lam", 1.0, 0.01, 10.0)
    with numpyro.plate("events", t.shape[0]):
        numpyro.sample("t", npd.Exponential(lam), obs=t)


def efficiency(t):
    """An acceptance rising with decay time: 1/eff weights correct it."""
    return 0.1 + 0.9 * (1.0 - np.exp(-2.0 * t))


def accepted(rng, shape):
    """Events of Exp(1) seen through ``efficiency``: ``shape = (toys, n)``."""
    toys, n = shape
    t = rng.exponential(1.0, (toys, 4 * n))
    keep = rng.uniform(size=t.shape) < efficiency(t)
    assert keep.sum(axis=1).min() >= n
    first = np.argsort(~keep, axis=1, kind="stable")[:, :n]
    return np.take_along_axis(t, first, axis=1)


def decay_errors(t, w):
    """Closed forms for the weighted exponential fit: estimate and three errors."""
    lam = w.sum() / (w * t).sum()
    hess = w.sum() / lam**2  # -d2/dlam2 of sum w log(lam e^{-lam t})
    return lam, {
        "hesse": 1.0 / np.sqrt(hess),
        "sumw2": np.sqrt((w**2).sum() / lam**2) / hess,
        "asymptotic": np.sqrt(np.sum(w**2 * (1.0 / lam - t) ** 2)) / hess,
    }


@pytest.mark.parametrize("errors", ["hesse", "sumw2", "asymptotic"])
def test_weighted_decay_closed_form(errors):
    t = accepted(np.random.default_rng(3), (1, 600))[0]
    w = 1.0 / efficiency(t)
    res = hepprob.fit(decay, t, weights=w, errors=errors)
    lam, expected = decay_errors(t, w)
    assert res.converged
    np.testing.assert_allclose(res.values["lam"], lam, rtol=1e-9)
    np.testing.assert_allclose(res.errors["lam"], expected[errors], rtol=1e-9)
    np.testing.assert_allclose(
        res.nll, -np.sum(w * st.expon(scale=1.0 / lam).logpdf(t)), rtol=1e-12
    )


# --- the matrices against a numpy implementation of the formulas ----------------


def extended_model(x, n_control):
    """Gaussian signal over a flat background, the background yield also measured
    in an unweighted counting channel (n_control ~ Pois(2 nb))."""
    ns = hepprob.param("ns", 300.0, 0.0, 5000.0)
    nb = hepprob.param("nb", 700.0, 0.0, 5000.0)
    m = hepprob.param("m", 0.0, -2.0, 2.0)
    shapes = [npd.Normal(m, 1.0), npd.Uniform(-5.0, 5.0)]
    numpyro.sample("x", dist.Extended(shapes, [ns, nb]), obs=x)
    numpyro.sample("control", npd.Poisson(2.0 * nb), obs=n_control)


def numpy_matrices(x, w, n_control, ns, nb, m):
    """H, H(w^2) and D of extended_model, by hand (NLL = nu - sum w log g + control)."""
    phi = st.norm(m, 1.0).pdf(x)
    g = ns * phi + nb / 10.0
    dg = np.stack([phi, np.full_like(x, 0.1), ns * phi * (x - m)], axis=1)
    d2g = np.zeros((x.size, 3, 3))
    d2g[:, 0, 2] = d2g[:, 2, 0] = phi * (x - m)
    d2g[:, 2, 2] = ns * phi * ((x - m) ** 2 - 1.0)
    score = dg / g[:, None]  # d log g
    per_event = score[:, :, None] * score[:, None, :] - d2g / g[:, None, None]
    control = np.zeros((3, 3))
    control[1, 1] = n_control / nb**2  # -d2/dnb2 log Pois(n; 2 nb)
    hess = np.einsum("e,ejk->jk", w, per_event) + control
    hess_w2 = np.einsum("e,ejk->jk", w**2, per_event) + control
    middle = np.einsum("e,ej,ek->jk", w**2, score, score) + control
    return hess, hess_w2, middle


def test_covariances_against_numpy():
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.normal(0.2, 1.0, 300), rng.uniform(-5.0, 5.0, 700)])
    w = rng.uniform(0.3, 2.0, x.size)
    n_control = 1420.0
    x_at = np.array([310.0, 690.0, 0.15])  # any point: the formulas need no minimum
    hess, hess_w2, middle = numpy_matrices(x, w, n_control, *x_at)
    inv = np.linalg.inv(hess)
    expected = {
        "hesse": inv,
        "sumw2": inv @ hess_w2 @ inv,
        "asymptotic": inv @ middle @ inv,
    }
    for errors, cov in expected.items():
        got = weighted.covariance(
            extended_model, x_at, x, n_control, errors=errors, weights={"x": w}
        )
        np.testing.assert_allclose(got, cov, rtol=1e-9, err_msg=errors)
    # a fixed parameter: the sandwich of the free block, zeros elsewhere
    fixed = np.array([False, False, True])
    got = weighted.covariance(
        extended_model, x_at, x, n_control, errors="asymptotic", fixed=fixed,
        weights={"x": w},
    )  # fmt: skip
    inv2 = np.linalg.inv(hess[:2, :2])
    np.testing.assert_allclose(got[:2, :2], inv2 @ middle[:2, :2] @ inv2, rtol=1e-9)
    np.testing.assert_array_equal(got[2], 0.0)


def test_weights_on_the_site_equal_fit_weights():
    """Extended(weights=w) in the model is the same fit as hepprob.fit(weights=w)."""
    rng = np.random.default_rng(8)
    x = np.concatenate([rng.normal(0.0, 1.0, 200), rng.uniform(-5.0, 5.0, 500)])
    w = rng.uniform(0.5, 1.5, x.size)

    def on_site(x, w, n_control):
        ns = hepprob.param("ns", 300.0, 0.0, 5000.0)
        nb = hepprob.param("nb", 700.0, 0.0, 5000.0)
        m = hepprob.param("m", 0.0, -2.0, 2.0)
        shapes = [npd.Normal(m, 1.0), npd.Uniform(-5.0, 5.0)]
        numpyro.sample("x", dist.Extended(shapes, [ns, nb], weights=w), obs=x)
        numpyro.sample("control", npd.Poisson(2.0 * nb), obs=n_control)

    a = hepprob.fit(on_site, x, w, 1000.0, errors="asymptotic")
    b = hepprob.fit(extended_model, x, 1000.0, weights={"x": w}, errors="asymptotic")
    np.testing.assert_allclose(a.x, b.x, rtol=1e-8)
    np.testing.assert_allclose(a.covariance, b.covariance, rtol=1e-6)
    hess, _, middle = numpy_matrices(x, w, 1000.0, *b.x)
    inv = np.linalg.inv(hess)
    np.testing.assert_allclose(b.covariance, inv @ middle @ inv, rtol=1e-6)


# --- coverage from vmapped toys ---------------------------------------------------


def test_coverage_asymptotic_covers_sumw2_does_not():
    """10^4 toys of efficiency-weighted decays (Langenbruch's acceptance case):
    the asymptotic error covers at 68.3 % within 1 %; sumw2 overcovers."""
    t = accepted(np.random.default_rng(11), (10_000, 1000))
    w = 1.0 / efficiency(t)
    lam = w.sum(axis=1) / (w * t).sum(axis=1)  # the weighted MLE, closed form

    def errors_of(kind):
        def one(lam_hat, t_toy, w_toy):
            cov = weighted.covariance(
                decay, lam_hat[None], t_toy, errors=kind, weights={"t": w_toy}
            )
            return jnp.sqrt(cov[0, 0])

        return np.asarray(jax.jit(jax.vmap(one))(lam, t, w))

    target = st.chi2.cdf(1.0, 1)  # 0.6827
    covered = {
        k: np.mean(np.abs(lam - 1.0) < errors_of(k)) for k in ("asymptotic", "sumw2")
    }
    assert abs(covered["asymptotic"] - target) < 0.01, covered
    assert covered["sumw2"] - target > 0.02, covered
    # one toy through hepprob.fit gives the same numbers
    res = hepprob.fit(decay, t[0], weights=w[0], errors="asymptotic")
    np.testing.assert_allclose(res.values["lam"], lam[0], rtol=1e-9)
    np.testing.assert_allclose(res.errors["lam"], errors_of("asymptotic")[0], rtol=1e-7)


# --- bad input ----------------------------------------------------------------------


def test_bad_weighted_input():
    t = np.array([0.5, 1.0, 2.0])
    with pytest.raises(ParameterError, match="errors must be one of"):
        hepprob.fit(decay, t, weights=np.ones(3), errors="minos")
    with pytest.raises(ParameterError, match="needs weighted data"):
        hepprob.fit(decay, t, errors="sumw2")
    with pytest.raises(DataError, match=r"weights have shape \(2,\)"):
        hepprob.fit(decay, t, weights=np.ones(2))
    with pytest.raises(DataError, match="must be finite"):
        hepprob.fit(decay, t, weights=np.array([1.0, np.nan, 1.0]))
    x = np.array([0.1, 0.5, -1.0])
    with pytest.raises(DataError, match=r"give weights as \{site name: array\}"):
        hepprob.fit(two_channels, x, t, weights=np.ones(3))
    with pytest.raises(DataError, match="'control' is not an unbinned data site"):
        hepprob.fit(extended_model, x, 10.0, weights={"control": np.ones(1)})


def two_channels(x, t):
    mu = hepprob.param("mu", 0.0, -5.0, 5.0)
    lam = hepprob.param("lam", 1.0, 0.01, 10.0)
    with numpyro.plate("a", x.shape[0]):
        numpyro.sample("x", npd.Normal(mu, 1.0), obs=x)
    with numpyro.plate("b", t.shape[0]):
        numpyro.sample("t", npd.Exponential(lam), obs=t)
