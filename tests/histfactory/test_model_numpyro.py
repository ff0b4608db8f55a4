"""HistFactory distribution and NumPyro model function against pyhf and scipy."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as npd
import pyhf
import pytest
from numpyro import handlers
from numpyro.infer.util import log_density
from scipy import integrate, stats

import hepprob
from hepprob.errors import DataError, ModelError, ParameterError
from hepprob.histfactory import HistFactory, Model
from hepprob.model import ModelStructure, log_likelihood

SPEC = {
    "channels": [
        {
            "name": "sr",
            "samples": [
                {"name": "sig", "data": [4.0, 9.0, 3.0], "modifiers": [
                    {"name": "mu", "type": "normfactor", "data": None}]},
                {"name": "bkg", "data": [20.0, 15.0, 0.0], "modifiers": [
                    {"name": "ns", "type": "normsys", "data": {"hi": 1.1, "lo": 0.85}},
                    {"name": "stat", "type": "staterror", "data": [2.0, 3.0, 0.0]},
                    {"name": "shp", "type": "shapesys", "data": [4.0, 2.0, 1.0]}]},
            ],
        }
    ],
    "parameters": [{"name": "mu", "bounds": [[0.0, 10.0]]}],
}  # fmt: skip


@pytest.fixture(scope="module")
def models():
    return pyhf.Model(SPEC), Model(SPEC)


def _points(ref, n, seed):
    rng = np.random.default_rng(seed)
    init = np.asarray(ref.config.suggested_init())
    return np.where(init == 0, rng.uniform(-1.5, 1.5, (n, init.size)),
                    init * rng.uniform(0.8, 1.2, (n, init.size)))  # fmt: skip


def test_distribution_log_prob_matches_pyhf_and_vmaps(models):
    ref, ours = models
    pars = _points(ref, 3, 0)
    data = np.asarray(ref.expected_data(pars[0]))
    expected = [ref.logpdf(p, data)[0] for p in pars]
    batched = HistFactory(ours, pars)
    assert batched.batch_shape == (3,)
    assert batched.event_shape == (ref.config.nmaindata + ref.config.nauxdata,)
    np.testing.assert_allclose(batched.log_prob(data), expected, rtol=1e-8)
    via_vmap = jax.vmap(lambda p: HistFactory(ours, p).log_prob(data))(pars)
    np.testing.assert_allclose(via_vmap, expected, rtol=1e-8)
    main_only = HistFactory(ours, pars[0], include_auxdata=False)
    np.testing.assert_allclose(
        main_only.log_prob(data[:3]),
        ref.main_model.logpdf(data[:3], pars[0]),
        rtol=1e-8,
    )


def test_toys_have_the_right_distribution(models):
    ref, ours = models
    p = _points(ref, 1, 1)[0]
    toys = np.asarray(HistFactory(ours, p).sample(jax.random.key(7), (20000,)))
    mean = np.asarray(ref.expected_data(p))
    assert toys.shape == (20000, mean.size)
    nmain = ref.config.nmaindata
    # main counts: exact Poisson, chi2 goodness of fit per bin against scipy
    for b in range(nmain):
        if mean[b] == 0:
            assert np.all(toys[:, b] == 0)
            continue
        k = np.arange(0, int(mean[b] + 6 * np.sqrt(mean[b]) + 5))
        observed = np.bincount(toys[:, b].astype(int), minlength=k.size)[: k.size]
        expected = stats.poisson.pmf(k, mean[b]) * toys.shape[0]
        keep = expected > 5
        chi2 = np.sum((observed[keep] - expected[keep]) ** 2 / expected[keep])
        assert stats.chi2.sf(chi2, keep.sum() - 1) > 1e-4
    # aux: Normal(theta, sigma) for Gaussian constraints, Poisson(theta tau) for shapesys
    widths = np.concatenate(
        [np.asarray(ref.config.param_set(n).width()) for n in ref.config.auxdata_order]
    )
    pdf_types = [
        ref.config.param_set(n).pdf_type
        for n in ref.config.auxdata_order
        for _ in range(ref.config.param_set(n).n_parameters)
    ]
    for j, kind in enumerate(pdf_types):
        col = toys[:, nmain + j]
        se = np.sqrt(col.var() / col.size)
        assert abs(col.mean() - mean[nmain + j]) < 5 * se + 1e-12
        if kind == "normal":
            assert abs(col.std() / widths[j] - 1) < 0.03
        else:
            assert np.all(col == np.round(col))
            assert abs(col.var() / mean[nmain + j] - 1) < 0.05
    batch = HistFactory(ours, _points(ref, 4, 2)).sample(jax.random.key(0), (5,))
    assert batch.shape == (5, 4, mean.size)


def test_numpyro_model_data_reading_matches_pyhf(models):
    ref, ours = models
    data = np.asarray(ref.expected_data(_points(ref, 1, 3)[0]))
    data[:3] = np.round(data[:3])
    f = ours.numpyro_model()
    structure = ModelStructure.from_model(f, data)
    assert structure.par_names == ref.config.par_names
    np.testing.assert_allclose(structure.init, ref.config.suggested_init())
    np.testing.assert_allclose(
        structure.lower, [b[0] for b in ref.config.suggested_bounds()]
    )
    np.testing.assert_allclose(
        structure.upper, [b[1] for b in ref.config.suggested_bounds()]
    )
    loglike = jax.jit(log_likelihood(f, structure, (data,)))
    for p in _points(ref, 3, 4):
        np.testing.assert_allclose(
            loglike(jnp.asarray(p)), ref.logpdf(p, data)[0], rtol=1e-8
        )
    # main counts alone: the auxiliary data default to config.auxdata
    main_only = log_likelihood(f, structure, (data[:3],))
    p = _points(ref, 1, 5)[0]
    full = np.concatenate([data[:3], ref.config.auxdata])
    np.testing.assert_allclose(
        main_only(jnp.asarray(p)), ref.logpdf(p, full)[0], rtol=1e-8
    )


def _joint(f, structure, p, data):
    values = structure.unflatten(jnp.asarray(p))
    return log_density(f, (data,), {}, values)[0]


@pytest.mark.parametrize("mode", ["data", "prior"])
def test_joint_density_differences_equal_pyhf_logpdf_differences(models, mode):
    """Under MCMC both readings give prior x likelihood = pyhf's logpdf up to a constant."""
    ref, ours = models
    data = np.round(np.asarray(ref.expected_data(_points(ref, 1, 6)[0])))
    data[3:] = ref.config.auxdata
    f = ours.numpyro_model(constraints=mode)
    structure = ModelStructure.from_model(f, data)
    p0, p1 = _points(ref, 2, 7)
    ours_diff = _joint(f, structure, p1, data) - _joint(f, structure, p0, data)
    ref_diff = ref.logpdf(p1, data)[0] - ref.logpdf(p0, data)[0]
    np.testing.assert_allclose(ours_diff, ref_diff, rtol=1e-8)
    loglike = log_likelihood(f, structure, (data,))
    want = (
        ref.logpdf(p1, data)[0]
        if mode == "data"
        else ref.main_model.logpdf(data[:3], p1)
    )
    np.testing.assert_allclose(loglike(jnp.asarray(p1)), want, rtol=1e-8)


def test_prior_override_fixed_and_errors(models):
    ref, ours = models
    data = np.asarray(ref.expected_data(ref.config.suggested_init()))
    f = ours.numpyro_model(priors={"mu": npd.Uniform(0.0, 5.0)})
    tr = handlers.trace(handlers.seed(f, 0)).get_trace(data)
    assert isinstance(tr["mu"]["fn"], npd.Uniform)
    assert float(tr["mu"]["fn"].high) == 5.0
    g = ours.numpyro_model(fixed="suggested")
    structure = ModelStructure.from_model(g, data)
    fixed = np.asarray(ref.config.suggested_fixed())
    assert fixed.any()  # bins without yield or uncertainty
    p = _points(ref, 1, 8)[0]
    held = np.where(fixed, ref.config.suggested_init(), p)
    np.testing.assert_allclose(
        log_likelihood(g, structure, (data,))(jnp.asarray(p)),
        ref.logpdf(held, data)[0],
        rtol=1e-8,
    )
    h = ours.numpyro_model(fixed={"ns": 0.5})
    assert "ns" not in ModelStructure.from_model(h, data).names
    with pytest.raises(
        ParameterError, match=r"priors: unknown parameter set\(s\) \['nope'\]"
    ):
        ours.numpyro_model(priors={"nope": npd.Normal()})
    with pytest.raises(ModelError, match="constraints must be 'data' or 'prior'"):
        ours.numpyro_model(constraints="both")
    with pytest.raises(DataError, match=r"data must be main \(3\) or main \+ aux"):
        ModelStructure.from_model(f, data[:2])
    with pytest.raises(DataError, match="NaN"):
        ModelStructure.from_model(f, np.full(data.size, np.nan))


def test_mcmc_posterior_mean_of_mu_matches_numerical_integral():
    spec = {
        "channels": [{"name": "sr", "samples": [
            {"name": "sig", "data": [6.0], "modifiers": [
                {"name": "mu", "type": "normfactor", "data": None}]},
            {"name": "bkg", "data": [10.0], "modifiers": []}]}],
        "parameters": [{"name": "mu", "bounds": [[0.0, 5.0]]}],
    }  # fmt: skip
    model = Model(spec)
    n = 19.0
    idata = hepprob.mcmc(
        model.numpyro_model(), np.array([n]), num_warmup=300, num_samples=1500, seed=1
    )
    draws = np.asarray(idata.posterior["mu"]).ravel()

    def like(mu):
        return stats.poisson.pmf(n, mu * 6.0 + 10.0)

    z = integrate.quad(like, 0, 5)[0]
    mean = integrate.quad(lambda m: m * like(m), 0, 5)[0] / z
    sd = np.sqrt(integrate.quad(lambda m: m**2 * like(m), 0, 5)[0] / z - mean**2)
    assert abs(draws.mean() - mean) < 4 * sd / np.sqrt(draws.size / 5)
