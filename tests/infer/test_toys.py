"""Toys: generated data follow the model (scipy.stats); fits match closed-form MLEs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as npd
import pytest
import scipy.stats as st

import hepprob
from hepprob.errors import ParameterError
from hepprob.infer.toys import simulate


def gauss_model(x):
    mu = hepprob.param("mu", 0.0, -10.0, 10.0)
    sigma = hepprob.param("sigma", 1.0, 0.05, 10.0)
    numpyro.sample("x", npd.Normal(mu, sigma), obs=x)


def counting_model(n, b_aux):
    s = hepprob.param("s", 5.0, 0.0, 100.0)
    b = hepprob.param("b", 10.0, 0.0, 100.0)
    numpyro.sample("n", npd.Poisson(s + b), obs=n)
    numpyro.sample("aux", npd.Poisson(3.0 * b), obs=b_aux)  # sideband, tau = 3


def test_simulated_data_follow_the_model():
    data = simulate(
        gauss_model, {"mu": 1.0, "sigma": 2.0}, 40, jax.random.PRNGKey(1), np.zeros(50)
    )
    assert data["x"].shape == (40, 50)
    ks = st.kstest(np.ravel(data["x"]), st.norm(1.0, 2.0).cdf)
    assert ks.pvalue > 1e-3
    counts = simulate(
        counting_model, {"s": 4.0, "b": 6.0}, 4000, jax.random.PRNGKey(2), 7.0, 20.0
    )
    # Poisson means and variances: n ~ Pois(10), aux ~ Pois(18)
    for name, rate in (("n", 10.0), ("aux", 18.0)):
        values = np.asarray(counts[name])
        assert abs(values.mean() - rate) < 5 * np.sqrt(rate / values.size)
        assert np.all(values == np.round(values))
    # the same key gives the same toys
    again = simulate(
        counting_model, {"s": 4.0, "b": 6.0}, 4000, jax.random.PRNGKey(2), 7.0, 20.0
    )
    np.testing.assert_array_equal(counts["n"], again["n"])


def test_toy_fits_match_closed_form_mle():
    key, n_events, n_toys = jax.random.PRNGKey(3), 40, 200
    truth = {"mu": 0.5, "sigma": 1.5}
    data = np.asarray(
        simulate(gauss_model, truth, n_toys, key, np.zeros(n_events))["x"]
    )
    res = hepprob.toys(
        gauss_model, truth, n_toys, key, np.zeros(n_events), batch_size=64
    )
    assert res.converged.all()
    # Gaussian MLE: sample mean and the biased standard deviation; Hesse error of
    # mu is sigma_hat / sqrt(N)
    sigma_hat = data.std(axis=1)
    np.testing.assert_allclose(
        res.values[:, 0], data.mean(axis=1), rtol=1e-6, atol=1e-8
    )
    np.testing.assert_allclose(res.values[:, 1], sigma_hat, rtol=1e-6)
    np.testing.assert_allclose(
        res.errors[:, 0], sigma_hat / np.sqrt(n_events), rtol=1e-5
    )
    np.testing.assert_allclose(
        res.errors[:, 1], sigma_hat / np.sqrt(2 * n_events), rtol=1e-5
    )
    summary = res.pull_summary()["mu"]
    assert abs(summary["mean"]) < 4 * summary["mean_error"]
    assert abs(summary["width"] - 1.0) < 4 * summary["width_error"] + 0.05


def test_fixed_parameters_and_bad_input():
    res = hepprob.toys(
        gauss_model,
        {"mu": 0.0, "sigma": 1.0},
        8,
        jax.random.PRNGKey(0),
        np.zeros(30),
        fixed=["sigma"],
    )
    np.testing.assert_array_equal(res.values[:, 1], 1.0)
    np.testing.assert_array_equal(res.errors[:, 1], 0.0)
    assert "sigma" not in res.pull_summary()
    with pytest.raises(ParameterError, match="n_toys"):
        hepprob.toys(gauss_model, {}, 0, jax.random.PRNGKey(0), np.zeros(3))
    with pytest.raises(ParameterError, match="unknown fixed parameter 'tau'"):
        hepprob.toys(
            gauss_model, {}, 2, jax.random.PRNGKey(0), np.zeros(3), fixed=["tau"]
        )
    with pytest.raises(ParameterError, match="unknown parameter"):
        hepprob.toys(gauss_model, {"nu": 1.0}, 2, jax.random.PRNGKey(0), np.zeros(3))


def test_simulated_counts_are_float64():
    data = simulate(counting_model, {}, 3, jax.random.PRNGKey(0), 7.0, 20.0)
    assert data["n"].dtype == jnp.float64


def test_second_toy_run_reuses_its_program_and_sees_new_inputs():
    """New truth, start values, n_toys and data values: one compiled program, and
    fits still equal the closed-form Gaussian MLE of the new toys."""
    from hepprob import _program_cache

    def model(x):
        mu = hepprob.param("mu", 0.0, -10.0, 10.0)
        sigma = hepprob.param("sigma", 1.0, 0.05, 10.0)
        numpyro.sample("x", npd.Normal(mu, sigma), obs=x)

    def programs():
        return [k for k in _program_cache.programs_of(model) if k[0] == "toys"]

    n_events = 30
    for truth, n_toys, seed in (
        ({"mu": 0.5, "sigma": 1.5}, 40, 4),
        ({"mu": -2.0, "sigma": 0.7}, 33, 5),
    ):
        key = jax.random.PRNGKey(seed)
        data = np.asarray(simulate(model, truth, n_toys, key, np.ones(n_events))["x"])
        res = hepprob.toys(
            model,
            truth,
            n_toys,
            key,
            np.ones(n_events),
            init={"mu": 0.1},
            batch_size=16,
        )
        assert res.values.shape == (n_toys, 2)
        assert res.converged.all()
        np.testing.assert_allclose(res.values[:, 0], data.mean(axis=1), rtol=1e-6)
        np.testing.assert_allclose(res.values[:, 1], data.std(axis=1), rtol=1e-6)
        assert len(programs()) == 1
