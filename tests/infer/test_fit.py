"""hepprob.fit against iminuit on independent scipy NLLs, closed forms and truth."""

from __future__ import annotations

import json
import warnings

import iminuit
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as nd
import pytest
from scipy import optimize, stats

import hepprob
from hepprob.distributions import CrystalBall
from hepprob.errors import ConvergenceWarning, DataError, ModelError, ParameterError
from hepprob.infer import FitResult, fit, nll

LOW, HIGH = 5.0, 6.0
ALPHA, N_TAIL = 1.5, 3.0
TRUTH = {"mu": 5.28, "sigma": 0.03, "lam": 2.0, "f": 0.3}
N_EVENTS = 3000


def cb_exp_model(x):
    """Crystal Ball signal + falling exponential on [LOW, HIGH], signal fraction f."""
    mu = hepprob.param("mu", 5.27, 5.2, 5.4)
    sigma = hepprob.param("sigma", 0.04, 0.005, 0.2)
    lam = hepprob.param("lam", 1.0, 0.01, 10.0)
    f = hepprob.param("f", 0.5, 0.0, 1.0)
    signal = CrystalBall(mu, sigma, ALPHA, N_TAIL, low=LOW, high=HIGH).log_prob(x)
    # exponential lam * exp(-lam (x - LOW)) normalised on [LOW, HIGH]
    background = (
        jnp.log(lam) - lam * (x - LOW) - jnp.log1p(-jnp.exp(-lam * (HIGH - LOW)))
    )
    mixed = jnp.logaddexp(jnp.log(f) + signal, jnp.log1p(-f) + background)
    numpyro.factor("events", jnp.sum(mixed))


def scipy_nll(p, x):
    """The same likelihood written independently with scipy.stats."""
    mu, sigma, lam, f = p
    cb = stats.crystalball(ALPHA, N_TAIL, loc=mu, scale=sigma)
    sig = cb.pdf(x) / (cb.cdf(HIGH) - cb.cdf(LOW))
    bkg = stats.truncexpon(b=lam * (HIGH - LOW), loc=LOW, scale=1.0 / lam).pdf(x)
    return -np.sum(np.log(f * sig + (1.0 - f) * bkg))


def generate(seed, n=N_EVENTS):
    rng = np.random.default_rng(seed)
    n_sig = rng.binomial(n, TRUTH["f"])
    cb = stats.crystalball(ALPHA, N_TAIL, loc=TRUTH["mu"], scale=TRUTH["sigma"])
    sig = cb.rvs(size=4 * n_sig, random_state=rng)
    sig = sig[(sig > LOW) & (sig < HIGH)][:n_sig]
    lam = TRUTH["lam"]
    bkg = stats.truncexpon(b=lam * (HIGH - LOW), loc=LOW, scale=1 / lam)
    return np.concatenate([sig, bkg.rvs(size=n - n_sig, random_state=rng)])


@pytest.fixture(scope="module")
def data():
    return generate(11)


@pytest.fixture(scope="module")
def result(data):
    return fit(cb_exp_model, data)


@pytest.fixture(scope="module")
def minuit_ref(data):
    m = iminuit.Minuit(
        lambda p: scipy_nll(p, data),
        [5.27, 0.04, 1.0, 0.5],
        name=["mu", "sigma", "lam", "f"],
    )
    m.errordef = iminuit.Minuit.LIKELIHOOD
    m.limits = [(5.2, 5.4), (0.005, 0.2), (0.01, 10.0), (0.0, 1.0)]
    m.strategy = 2
    m.tol = 1e-6
    m.migrad()
    m.hesse()
    assert m.valid
    return m


def test_values_and_hesse_errors_match_iminuit(result, minuit_ref):
    assert isinstance(result, FitResult)
    assert result.converged
    assert result.par_names == ["mu", "sigma", "lam", "f"]
    for name in result.par_names:
        np.testing.assert_allclose(
            result.values[name], minuit_ref.values[name], rtol=1e-4
        )
        np.testing.assert_allclose(
            result.errors[name], minuit_ref.errors[name], rtol=1e-3
        )
    np.testing.assert_allclose(
        result.covariance, np.asarray(minuit_ref.covariance), rtol=3e-3, atol=1e-10
    )
    np.testing.assert_allclose(result.nll, minuit_ref.fval, rtol=1e-9)
    assert result.edm < 1e-6


def test_recovers_truth_within_errors(result):
    for name, truth in TRUTH.items():
        pull = (result.values[name] - truth) / result.errors[name]
        assert abs(pull) < 4.0, (name, pull)


def test_correlation_is_consistent(result):
    corr = result.correlation
    np.testing.assert_allclose(np.diag(corr), 1.0)
    err = np.sqrt(np.diag(result.covariance))
    np.testing.assert_allclose(corr * np.outer(err, err), result.covariance, atol=1e-15)
    assert np.all(np.linalg.eigvalsh(result.covariance) > 0)


def test_method_minuit_agrees(data, result):
    other = fit(cb_exp_model, data, method="minuit")
    assert other.method == "minuit"
    assert other.converged
    for name in result.par_names:
        np.testing.assert_allclose(other.values[name], result.values[name], rtol=1e-3)
        np.testing.assert_allclose(other.errors[name], result.errors[name], rtol=1e-2)


def test_nll_object_for_iminuit(data, minuit_ref):
    f = nll(cb_exp_model, data)
    assert f.par_names == ["mu", "sigma", "lam", "f"]
    p = np.array([5.281, 0.031, 1.9, 0.31])
    np.testing.assert_allclose(f(p), scipy_nll(p, data), rtol=1e-10)
    numeric = optimize.approx_fprime(p, lambda q: scipy_nll(q, data), 1e-7)
    np.testing.assert_allclose(f.grad(p), numeric, rtol=1e-3, atol=1e-2)
    assert f.hessian(p).shape == (4, 4)
    m = iminuit.Minuit(f, f.init, grad=f.grad, name=f.par_names)
    m.limits = list(zip(f.lower, f.upper, strict=True))
    m.migrad()
    assert m.valid
    np.testing.assert_allclose(
        np.asarray(m.values), np.asarray(minuit_ref.values), rtol=1e-3
    )
    with pytest.raises(
        ParameterError, match=r"x must have shape \(4,\).*got shape \(3,\)"
    ):
        f([1.0, 2.0, 3.0])


def test_fixed_parameters(data):
    fixed = fit(cb_exp_model, data, fixed={"sigma": 0.03}, init={"lam": 2.0})
    assert fixed.values["sigma"] == 0.03
    assert fixed.errors["sigma"] == 0.0
    assert fixed.fixed["sigma"]
    np.testing.assert_array_equal(fixed.covariance[1], 0.0)
    m = iminuit.Minuit(lambda p: scipy_nll(p, data), [5.27, 0.03, 2.0, 0.5])
    m.errordef = 0.5
    m.limits = [(5.2, 5.4), (0.005, 0.2), (0.01, 10.0), (0.0, 1.0)]
    m.fixed[1] = True
    m.strategy = 2
    m.tol = 1e-6
    m.migrad()
    m.hesse()
    for i, name in ((0, "mu"), (2, "lam"), (3, "f")):
        np.testing.assert_allclose(fixed.values[name], m.values[i], rtol=1e-4)
        np.testing.assert_allclose(fixed.errors[name], m.errors[i], rtol=1e-3)
    listed = fit(cb_exp_model, data, fixed=["sigma"], init={"sigma": 0.03})
    np.testing.assert_allclose(listed.x, fixed.x, rtol=1e-9)


# --- simple closed-form models --------------------------------------------------------


def gauss_model(x):
    mu = hepprob.param("mu", 0.0)
    sigma = hepprob.param("sigma", 1.0, 1e-3, 100.0)
    numpyro.sample("x", nd.Normal(mu, sigma), obs=x)


def test_gaussian_closed_form_and_same_shape_reuse():
    rng = np.random.default_rng(0)
    for _ in range(2):
        x = rng.normal(2.0, 3.0, size=200)
        res = fit(gauss_model, x)
        s = x.std()
        np.testing.assert_allclose(res.values["mu"], x.mean(), rtol=1e-9)
        np.testing.assert_allclose(res.values["sigma"], s, rtol=1e-9)
        # Hesse of the normal MLE: var(mu) = s^2/n, var(sigma) = s^2/(2n)
        np.testing.assert_allclose(res.errors["mu"], s / np.sqrt(200), rtol=1e-8)
        np.testing.assert_allclose(res.errors["sigma"], s / np.sqrt(400), rtol=1e-8)
        np.testing.assert_allclose(
            res.nll, -stats.norm(x.mean(), s).logpdf(x).sum(), rtol=1e-12
        )


def test_vector_parameter():
    def model(x):
        mu = hepprob.param("mu", np.zeros(2))
        numpyro.sample("x", nd.Normal(mu, 1.0).to_event(1), obs=x)

    x = np.random.default_rng(1).normal([1.0, -2.0], 1.0, size=(50, 2))
    res = fit(model, x)
    assert res.par_names == ["mu[0]", "mu[1]"]
    np.testing.assert_allclose(res.values["mu"], x.mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose(res.errors["mu"], [1 / np.sqrt(50)] * 2, rtol=1e-9)
    fixed = fit(model, x, fixed={"mu[1]": 0.5})
    np.testing.assert_allclose(fixed.values["mu"], [x[:, 0].mean(), 0.5], rtol=1e-9)


def test_parameter_at_bound():
    # the sample mean is negative, the mean is bounded below by 0
    x = np.random.default_rng(2).normal(-0.3, 1.0, size=100)
    x = x - x.mean() - 0.3

    def model(x):
        mu = hepprob.param("mu", 1.0, 0.0, 5.0)
        sigma = hepprob.param("sigma", 1.0, 1e-3, 10.0)
        numpyro.sample("x", nd.Normal(mu, sigma), obs=x)

    res = fit(model, x)
    assert res.converged
    assert res.values["mu"] == 0.0
    sigma = np.sqrt(np.mean(x**2))  # profiled sigma at mu = 0
    np.testing.assert_allclose(res.values["sigma"], sigma, rtol=1e-9)
    # EDM on the parameter not held by its bound: g^2 / (2 H), by hand
    g = len(x) / sigma - np.sum(x**2) / sigma**3
    h = -len(x) / sigma**2 + 3 * np.sum(x**2) / sigma**4
    assert res.edm <= max(g**2 / (2 * h), 0.0) + 1e-12
    assert res.edm < 1e-9
    assert "at bound" in repr(res)


def test_ill_posed_model_warns_and_is_not_converged():
    def model(x):
        a = hepprob.param("a", 0.0)
        b = hepprob.param("b", 0.0)
        numpyro.sample("x", nd.Normal(a + b, 1.0), obs=x)

    with pytest.warns(ConvergenceWarning, match=r"not positive definite.*\['a', 'b'\]"):
        res = fit(model, np.array([1.0, 2.0, 3.0]), method="jax")
    assert not res.converged
    np.testing.assert_allclose(res.values["a"] + res.values["b"], 2.0, rtol=1e-6)


def test_unfittable_data_warns():
    # a rate parameter that the NLL pushes to infinity: iteration limit or stall
    def model(n):
        lam = hepprob.param("lam", 1.0, 0.0, np.inf)
        numpyro.factor("n", n * jnp.log(lam))

    with pytest.warns(ConvergenceWarning, match="fit did not converge"):
        res = fit(model, 3.0, method="jax", options={"max_iter": 30})
    assert not res.converged


def test_warning_points_at_caller():
    def model(x):
        a = hepprob.param("a", 0.0)
        b = hepprob.param("b", 0.0)
        numpyro.sample("x", nd.Normal(a - b, 1.0), obs=x)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit(model, np.array([0.5]), method="jax")
    assert caught[0].category is ConvergenceWarning
    assert caught[0].filename == __file__


def test_plain_function_mode():
    target = np.array([1.0, -2.0, 0.5])
    weights = np.array([1.0, 2.0, 4.0])

    def fun(x, w):
        return jnp.sum(w * (x - target) ** 2)

    res = fit(
        fun,
        weights,
        x0=[0.0, 0.0, 0.0],
        lower=[-1.0, -1.0, 0.0],
        upper=3.0,
        par_names=["a", "b", "c"],
    )
    ref = optimize.minimize(
        lambda x: np.sum(weights * (x - target) ** 2),
        np.zeros(3),
        method="L-BFGS-B",
        bounds=[(-1, 3), (-1, 3), (0, 3)],
        options={"ftol": 1e-15, "gtol": 1e-12},
    )
    np.testing.assert_allclose(res.x, ref.x, atol=1e-7)
    assert res.values["b"] == -1.0
    # errordef 0.5: sigma^2 = 1 / H = 1 / (2 w)
    np.testing.assert_allclose(res.errors["a"], 1 / np.sqrt(2 * weights[0]), rtol=1e-12)
    default = fit(fun, weights, x0=np.zeros(3))
    np.testing.assert_allclose(default.values["x"], target, atol=1e-9)
    assert default.par_names == ["x[0]", "x[1]", "x[2]"]


def test_to_dict_and_reprs(result):
    d = result.to_dict()
    again = json.loads(json.dumps(d))
    assert again["par_names"] == result.par_names
    assert again["values"]["mu"] == result.values["mu"]
    assert again["converged"] is True
    text = repr(result)
    for name in result.par_names:
        assert name in text
    assert "<table>" in result._repr_html_()


# --- bad input ------------------------------------------------------------------------


def test_bad_input(data):
    with pytest.raises(ParameterError, match=r"mu=7.0 not in \[5.2, 5.4\]"):
        fit(cb_exp_model, data, init={"mu": 7.0})
    with pytest.raises(ParameterError, match=r"unknown parameter 'nope' in init"):
        fit(cb_exp_model, data, init={"nope": 1.0})
    with pytest.raises(ParameterError, match=r"unknown parameter 'nope' in fixed"):
        fit(cb_exp_model, data, fixed=["nope"])
    with pytest.raises(ParameterError, match=r"sigma=5.0 not in"):
        fit(cb_exp_model, data, fixed={"sigma": 5.0})
    with pytest.raises(ParameterError, match="method must be one of"):
        fit(cb_exp_model, data, method="newton")
    with pytest.raises(ParameterError, match=r"unknown option\(s\) \['tolerance'\]"):
        fit(cb_exp_model, data, options={"tolerance": 1.0})
    with pytest.raises(ParameterError, match="fixed must be a mapping"):
        fit(cb_exp_model, data, fixed="sigma")


def test_bad_data():
    with pytest.raises(DataError, match=r"observed site 'x' has an empty dataset"):
        fit(gauss_model, np.zeros(0))
    with pytest.raises(DataError, match=r"'x' must hold finite numbers; got 1 NaN"):
        fit(gauss_model, np.array([1.0, np.nan, 2.0]))
    with pytest.raises(ModelError, match="no free parameter"):
        fit(lambda x: numpyro.sample("x", nd.Normal(0.0, 1.0), obs=x), np.ones(3))


def test_bad_function_mode_input():
    with pytest.raises(ParameterError, match=r"x0=\[5.\] lies outside the bounds"):
        fit(lambda x: jnp.sum(x**2), x0=[5.0], upper=1.0)
    with pytest.raises(ParameterError, match="par_names must be 2 distinct names"):
        fit(lambda x: jnp.sum(x**2), x0=[1.0, 2.0], par_names=["a"])
    with pytest.raises(ParameterError, match=r"only lower, upper and par_names"):
        fit(lambda x: jnp.sum(x**2), x0=[1.0], bounds=(0, 1))
