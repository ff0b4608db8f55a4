"""hepprob.param and the frequentist reading of a model, against scipy.stats."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as npd
import pytest
import scipy.stats as st
from numpyro import handlers

import hepprob
from hepprob.errors import ModelError, ParameterError
from hepprob.model import ModelStructure, log_likelihood


def gauss_model(x):
    mu = hepprob.param("mu", 0.5, -5.0, 5.0)
    sigma = hepprob.param("sigma", 1.5, lower=0.1)
    gamma = hepprob.param("gamma", np.ones(3), 0.0, 10.0)
    numpyro.sample("x", npd.Normal(mu, sigma), obs=x)
    numpyro.factor("constraint", -0.5 * jnp.sum((gamma - 1.0) ** 2))
    numpyro.deterministic("width", 2.0 * sigma)  # deterministic sites are no data


@pytest.fixture(scope="module")
def data():
    return np.random.default_rng(1).normal(0.3, 2.0, size=200)


def test_structure_layout(data):
    s = ModelStructure.from_model(gauss_model, data)
    assert s.names == ["mu", "sigma", "gamma"]
    assert s.par_names == ["mu", "sigma", "gamma[0]", "gamma[1]", "gamma[2]"]
    np.testing.assert_array_equal(s.init, [0.5, 1.5, 1.0, 1.0, 1.0])
    np.testing.assert_array_equal(s.lower, [-5.0, 0.1, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(s.upper, [5.0, np.inf, 10.0, 10.0, 10.0])
    assert s.observed == ("x", "constraint")
    vec = jnp.arange(5.0)
    back = s.flatten(s.unflatten(vec))
    np.testing.assert_array_equal(back, vec)
    assert s.unflatten(jnp.zeros((7, 5)))["gamma"].shape == (7, 3)
    assert s.index("gamma[1]") == 3


def test_log_likelihood_matches_scipy_and_ignores_priors(data):
    s = ModelStructure.from_model(gauss_model, data)
    loglike = jax.jit(log_likelihood(gauss_model, s, (data,)))
    for vec in ([0.3, 2.0, 1.0, 1.0, 1.0], [-1.0, 0.7, 0.5, 2.0, 3.0]):
        expected = st.norm(vec[0], vec[1]).logpdf(data).sum() - 0.5 * np.sum(
            (np.asarray(vec[2:]) - 1.0) ** 2
        )
        np.testing.assert_allclose(loglike(jnp.asarray(vec)), expected, rtol=1e-12)
    # gradient of the Gaussian log-likelihood in mu, closed form
    vec = jnp.asarray([0.3, 2.0, 1.0, 1.0, 1.0])
    grad_mu = jax.grad(loglike)(vec)[0]
    np.testing.assert_allclose(grad_mu, np.sum(data - 0.3) / 4.0, rtol=1e-10)


def test_default_priors():
    def model():
        hepprob.param("a", 1.0, 0.0, 4.0)
        hepprob.param("b", 1.0, lower=0.0)
        hepprob.param("c", 1.0, prior=npd.Normal(1.0, 2.0))

    values = {"a": 1.0, "b": 1.0, "c": 1.0}
    tr = handlers.trace(handlers.substitute(model, data=values)).get_trace()
    np.testing.assert_allclose(
        tr["a"]["fn"].log_prob(2.5), st.uniform(0.0, 4.0).logpdf(2.5), rtol=1e-12
    )
    assert not tr["b"]["fn"].support(-1.0)
    assert tr["b"]["fn"].support(3.0)
    assert tr["b"]["fn"].log_prob(3.0) == 0.0  # improper flat
    np.testing.assert_allclose(
        tr["c"]["fn"].log_prob(0.2), st.norm(1.0, 2.0).logpdf(0.2), rtol=1e-12
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"init": 7.0, "lower": 0.0, "upper": 5.0}, "outside its bounds"),
        ({"init": 1.0, "lower": 2.0, "upper": 1.0}, "lower < upper"),
        ({"init": np.nan}, "init must be finite"),
    ],
)
def test_param_bad_input(kwargs, match):
    def model():
        hepprob.param("mu", **kwargs)
        numpyro.sample("x", npd.Normal(0.0, 1.0), obs=0.0)

    with pytest.raises(ParameterError, match=match):
        ModelStructure.from_model(model)


def test_model_errors_name_the_site():
    def latent():
        hepprob.param("mu", 0.0)
        numpyro.sample("z", npd.Normal(0.0, 1.0))
        numpyro.sample("x", npd.Normal(0.0, 1.0), obs=0.0)

    with pytest.raises(ModelError, match="'z' is neither"):
        ModelStructure.from_model(latent)

    def no_data():
        hepprob.param("mu", 0.0)

    with pytest.raises(ModelError, match="no observed site"):
        ModelStructure.from_model(no_data)

    s = ModelStructure.from_model(gauss_model, np.zeros(3))
    with pytest.raises(ParameterError, match="unknown parameter"):
        s.flatten({"nu": 1.0})
