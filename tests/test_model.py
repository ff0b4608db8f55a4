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


# --- parameters shared by name ---------------------------------------------------


def shared_model(x, y):
    mu = hepprob.param("mu", 1.0, 0.0, 10.0)
    numpyro.sample("x", npd.Normal(mu, 1.0), obs=x)
    again = hepprob.param("mu", 1.0, 0.0, 10.0)  # the second channel's declaration
    sigma = hepprob.param("sigma", 2.0, 0.1, 10.0)
    numpyro.sample("y", npd.Normal(2.0 * again, sigma), obs=y)


def test_shared_param_is_one_parameter():
    x, y = np.array([0.5, 1.5, 2.0]), np.array([1.0, 3.0])
    s = ModelStructure.from_model(shared_model, x, y)
    assert s.par_names == ["mu", "sigma"]
    assert s.observed == ("x", "y")
    loglike = log_likelihood(shared_model, s, (x, y))
    expected = st.norm(1.3, 1.0).logpdf(x).sum() + st.norm(2.6, 0.7).logpdf(y).sum()
    np.testing.assert_allclose(loglike(jnp.array([1.3, 0.7])), expected, rtol=1e-12)


def test_shared_param_under_numpyro_inference():
    """NumPyro's own trace and log density see one site, with one prior term."""
    x, y = np.array([0.5]), np.array([1.0])
    tr = handlers.trace(handlers.seed(shared_model, 0)).get_trace(x, y)
    assert [n for n, s in tr.items() if not s["is_observed"]] == ["mu", "sigma"]
    values = {"mu": 2.0, "sigma": 1.0}
    lp, _ = numpyro.infer.util.log_density(shared_model, (x, y), {}, values)
    expected = (
        st.uniform(0.0, 10.0).logpdf(2.0)
        + st.uniform(0.1, 9.9).logpdf(1.0)
        + st.norm(2.0, 1.0).logpdf(0.5)
        + st.norm(4.0, 1.0).logpdf(1.0)
    )
    np.testing.assert_allclose(lp, expected, rtol=1e-12)


@pytest.mark.parametrize(
    ("second", "match"),
    [
        ({"init": 2.0, "lower": 0.0, "upper": 10.0}, r"init 1\.0 vs 2\.0"),
        ({"init": 1.0, "lower": -1.0, "upper": 10.0}, r"lower 0\.0 vs -1\.0"),
        ({"init": 1.0, "lower": 0.0, "upper": 5.0}, r"upper 10\.0 vs 5\.0"),
        ({"init": np.ones(2), "lower": 0.0, "upper": 10.0}, r"shape \(\) vs \(2,\)"),
        (
            {"init": 1.0, "lower": 0.0, "upper": 10.0, "prior": npd.Uniform(0, 10)},
            "give the prior at the first declaration",
        ),
    ],
)
def test_shared_param_must_agree(second, match):
    def model(x):
        mu = hepprob.param("mu", 1.0, 0.0, 10.0)
        hepprob.param("mu", **second)
        numpyro.sample("x", npd.Normal(mu, 1.0), obs=x)

    with pytest.raises(ParameterError, match=match):
        ModelStructure.from_model(model, 0.0)


def test_shared_param_priors():
    def same_prior(x):
        mu = hepprob.param("mu", 1.0, 0.0, 10.0, prior=npd.Normal(1.0, 2.0))
        hepprob.param("mu", 1.0, 0.0, 10.0, prior=npd.Normal(1.0, 2.0))
        hepprob.param("mu", 1.0, 0.0, 10.0)  # no prior: takes the first one's
        numpyro.sample("x", npd.Normal(mu, 1.0), obs=x)

    tr = handlers.trace(handlers.seed(same_prior, 0)).get_trace(0.0)
    np.testing.assert_allclose(
        tr["mu"]["fn"].log_prob(0.3), st.norm(1.0, 2.0).logpdf(0.3), rtol=1e-12
    )

    def other_prior(x):
        mu = hepprob.param("mu", 1.0, 0.0, 10.0, prior=npd.Normal(1.0, 2.0))
        hepprob.param("mu", 1.0, 0.0, 10.0, prior=npd.Normal(1.0, 3.0))
        numpyro.sample("x", npd.Normal(mu, 1.0), obs=x)

    with pytest.raises(ParameterError, match="differs from the first one's"):
        ModelStructure.from_model(other_prior, 0.0)


def test_shared_name_with_a_plain_site():
    def model(x):
        numpyro.sample("mu", npd.Normal(0.0, 1.0), obs=0.0)
        mu = hepprob.param("mu", 1.0, 0.0, 10.0)
        numpyro.sample("x", npd.Normal(mu, 1.0), obs=x)

    with pytest.raises(ModelError, match=r"not a hepprob\.param"):
        ModelStructure.from_model(model, 0.0)


def test_one_naming_rule_for_matrix_entries():
    """Fits, toys and the model structure name entries alike: m[i,j] row-major."""

    def matrix_model(x):
        m = hepprob.param("m", np.zeros((2, 2)), -5.0, 5.0)
        numpyro.sample("x", npd.Normal(m, 1.0).to_event(2), obs=x)

    x = np.array([[0.1, 0.2], [0.3, 0.4]])
    s = ModelStructure.from_model(matrix_model, x)
    expected = ["m[0,0]", "m[0,1]", "m[1,0]", "m[1,1]"]
    assert s.par_names == expected
    res = hepprob.fit(matrix_model, x)
    assert res.par_names == expected
    np.testing.assert_allclose(res.x, x.ravel(), atol=1e-8)  # the MLE is x itself
    toys = hepprob.toys(matrix_model, {"m": x}, 2, jax.random.PRNGKey(0), x)
    assert toys.par_names == expected
    assert s.index("m[1,0]") == 2
