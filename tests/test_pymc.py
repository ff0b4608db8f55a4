"""hepprob.pymc: the JAX Op's value and gradient, and posteriors from PyMC's samplers.

References: JAX's own gradient and central finite differences for the Op;
``hepprob.mcmc`` (NumPyro NUTS) vs PyMC's NUTS on the same posterior, compared
within ArviZ Monte Carlo standard errors; scipy for the distribution wrapper.
"""

from __future__ import annotations

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as npd
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest
import scipy.stats

import hepprob
from hepprob import pymc as hpm
from hepprob.errors import ModelError, ParameterError

SIG = np.array([3.0, 6.0, 2.0])
BKG = np.array([20.0, 15.0, 10.0])
DATA = np.array([26.0, 23.0, 12.0])


def counting(data):
    """Signal strength, a log-normal background scale per bin (vector parameter)."""
    mu = hepprob.param("mu", 1.0, 0.0, 10.0)
    g = hepprob.param(
        "g", np.ones(3), 0.0, 5.0, prior=npd.LogNormal(0.0, 0.1).expand([3]).to_event(1)
    )
    numpyro.sample("data", npd.Poisson(mu * SIG + BKG * g).to_event(1), obs=data)


def _mcse(draws, **kwargs):
    data = az.convert_to_dataset({"x": np.atleast_2d(np.asarray(draws, dtype=float))})
    return float(az.mcse(data, **kwargs)["x"])


def _agree(a, b, n_mcse=4.0):
    """Means of two sets of draws (chain, draw) agree within n combined MCSEs."""
    err = np.hypot(_mcse(a), _mcse(b))
    assert abs(np.mean(a) - np.mean(b)) < n_mcse * err, (np.mean(a), np.mean(b), err)


def _central_difference(f, x, h=1e-6):
    grad = np.zeros_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h
        grad[i] = (f(x + e) - f(x - e)) / (2 * h)
    return grad


def test_op_value_and_gradient_match_jax_and_finite_differences():
    def fn(x, s):
        return jnp.sum(jnp.sin(x) * x**2) * s + jnp.log(s)

    x, s = pt.dvector("x"), pt.dscalar("s")
    op = hpm.logp_op(fn)
    out = op(x, s)
    f = pytensor.function([x, s], [out, *pytensor.grad(out, [x, s])])
    xv, sv = np.array([0.3, 1.2, -2.0]), 1.7
    value, gx, gs = f(xv, sv)
    np.testing.assert_allclose(value, fn(xv, sv), rtol=1e-14)
    jx, js = jax.grad(fn, argnums=(0, 1))(xv, sv)
    np.testing.assert_allclose(gx, jx, rtol=1e-12)
    np.testing.assert_allclose(gs, js, rtol=1e-12)
    fd = _central_difference(lambda v: float(fn(v, sv)), xv)
    np.testing.assert_allclose(gx, fd, rtol=1e-7)

    # elementwise output: gradient of a weighted sum goes through the VJP Op
    def elementwise(v):
        return scipy_free_logpdf(v, 0.5, 2.0)

    op_vec = hpm.logp_op(elementwise, output_ndim=1)
    w = np.array([1.0, -2.0, 0.5])
    total = pt.sum(op_vec(x) * w)
    g = pytensor.function([x], [op_vec(x), pytensor.grad(total, x)])
    vals, grad = g(xv)
    np.testing.assert_allclose(vals, scipy.stats.norm.logpdf(xv, 0.5, 2.0), rtol=1e-13)
    np.testing.assert_allclose(grad, -w * (xv - 0.5) / 4.0, rtol=1e-12)
    pytensor.gradient.verify_grad(
        lambda v: pt.sum(op_vec(v) * w), [xv], rng=np.random.default_rng(0)
    )


def scipy_free_logpdf(v, loc, scale):
    """Normal log density written in JAX (checked against scipy in the test)."""
    z = (v - loc) / scale
    return -0.5 * z**2 - jnp.log(scale) - 0.5 * jnp.log(2 * jnp.pi)


@pytest.fixture(scope="module")
def reference():
    return hepprob.mcmc(
        counting, DATA, num_warmup=400, num_samples=800, seed=2, progress_bar=False
    )


def test_pymc_nuts_agrees_with_hepprob_mcmc(reference):
    with pm.Model():
        mu = pm.Uniform("mu", 0.0, 10.0)  # the same as hepprob's default prior
        made = hpm.Likelihood("like", counting, DATA, pars={"mu": mu})
        idata = pm.sample(
            draws=500,
            tune=400,
            chains=2,
            cores=1,
            random_seed=3,
            progressbar=False,
            compute_convergence_checks=False,
        )
    assert set(made) == {"mu", "g"}
    assert idata.posterior["g"].shape[-1] == 3
    _agree(idata.posterior["mu"].values, reference.posterior["mu"].values)
    _agree(idata.posterior["g"].values[..., 0], reference.posterior["g"].values[..., 0])


def test_pymc_numpyro_sampler_runs_the_jax_function(reference):
    with pm.Model():
        hpm.Likelihood("like", counting, DATA)  # every prior from the model
        idata = pm.sample(
            draws=500,
            tune=400,
            chains=1,
            nuts_sampler="numpyro",
            random_seed=4,
            progressbar=False,
            compute_convergence_checks=False,
        )
    _agree(idata.posterior["mu"].values, reference.posterior["mu"].values)


def test_distribution_wrapper_matches_scipy():
    x = np.random.default_rng(1).normal(1.0, 2.0, size=50)
    with pm.Model() as model:
        loc = pm.Normal("loc", 0.0, 10.0)
        obs = hpm.Distribution("x", lambda a, b: npd.Normal(a, b), loc, 2.0, observed=x)
        logp = model.compile_logp(vars=[obs], sum=False)
    for point in (0.3, 1.7):
        np.testing.assert_allclose(
            logp({"loc": point})[0], scipy.stats.norm.logpdf(x, point, 2.0), rtol=1e-12
        )
    with pm.Model():
        draws = pm.draw(
            hpm.Distribution(
                "y", lambda a, b: npd.Normal(a, b), 3.0, 0.5, shape=(4000,)
            ),
            random_seed=1,
        )
    assert scipy.stats.kstest(draws, scipy.stats.norm(3.0, 0.5).cdf).pvalue > 1e-3


def test_bad_input_gets_named_errors():
    with pm.Model():
        with pytest.raises(
            ParameterError, match=r"like: pars has unknown parameter\(s\) \['nu'\]"
        ):
            hpm.Likelihood("like", counting, DATA, pars={"nu": 1.0})
        with pytest.raises(
            ParameterError,
            match=r"pars\['g'\] has shape \(2,\), parameter 'g' has shape \(3,\)",
        ):
            hpm.Likelihood("like", counting, DATA, pars={"g": np.ones(2)})
        with pytest.raises(
            ModelError, match=r"model must be a hepprob\.histfactory\.Model"
        ):
            hpm.HistFactory("hf", counting, observed=DATA)
        with pytest.raises(
            ModelError, match="factory must return a numpyro distribution"
        ):
            hpm.Distribution("x", lambda a: a, 1.0, observed=DATA)
    with pytest.raises(ModelError, match="logp_op: fn must be callable"):
        hpm.logp_op(3.0)
    with pytest.raises(
        ParameterError, match="output_ndim must be a non-negative integer"
    ):
        hpm.logp_op(jnp.sum, output_ndim=-1)


HF_SPEC = {
    "channels": [
        {
            "name": "SR",
            "samples": [
                {
                    "name": "signal",
                    "data": [4.0, 8.0, 3.0],
                    "modifiers": [{"name": "mu", "type": "normfactor", "data": None}],
                },
                {
                    "name": "background",
                    "data": [30.0, 25.0, 12.0],
                    "modifiers": [
                        {"name": "unc", "type": "shapesys", "data": [3.0, 5.0, 2.0]},
                        {
                            "name": "norm",
                            "type": "normsys",
                            "data": {"hi": 1.1, "lo": 0.9},
                        },
                    ],
                },
            ],
        }
    ],
    "observations": [{"name": "SR", "data": [36.0, 31.0, 13.0]}],
    "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
    "version": "1.0.0",
}


def test_histfactory_term_is_pyhf_logpdf_for_both_constraint_readings():
    import pyhf

    from hepprob.histfactory import Workspace

    ws = Workspace(HF_SPEC)
    model = ws.model()
    data = np.asarray(ws.data(model))
    ref = pyhf.Workspace(HF_SPEC).model()
    values = {"mu": 1.3, "unc": np.array([0.9, 1.1, 1.05]), "norm": 0.4}
    pars = np.zeros(ref.config.npars)
    for name, value in values.items():
        pars[ref.config.par_slice(name)] = value

    with pm.Model() as pmodel:
        hpm.HistFactory("hf", model, observed=data, pars=values)
    np.testing.assert_allclose(
        pmodel["hf"].eval(), ref.logpdf(pars, data)[0], rtol=1e-10
    )

    # constraints as priors: main Poisson term + the created parameters' priors
    with pm.Model() as pmodel:
        made = hpm.HistFactory(
            "hf", model, observed=data, pars={"mu": 1.3}, constraints="prior"
        )
    assert {v.name for v in pmodel.free_RVs} == {"unc", "norm"}
    term = pytensor.clone_replace(
        pmodel["hf"],
        {made["unc"]: pt.constant(values["unc"]), made["norm"]: pt.constant(0.4)},
    ).eval()
    tau = (np.array([30.0, 25.0, 12.0]) / np.array([3.0, 5.0, 2.0])) ** 2
    gamma_prior = scipy.stats.gamma(tau + 1.0, scale=1.0 / tau).logpdf(values["unc"])
    norm_prior = scipy.stats.truncnorm(-5.0, 5.0).logpdf(0.4)  # within pyhf bounds
    expected = ref.main_model.logpdf(data[:3], pars) + gamma_prior.sum() + norm_prior
    np.testing.assert_allclose(term, expected, rtol=1e-10)
    with (
        pm.Model(),
        pytest.raises(ParameterError, match="constraints must be 'data' or 'prior'"),
    ):
        hpm.HistFactory("hf", model, observed=data, constraints="both")
