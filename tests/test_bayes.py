"""hepprob.bayes: NUTS posteriors against closed forms and hand-written NumPyro models.

Statistical comparisons use the Monte Carlo standard error that ArviZ computes
from the chains' effective sample size, never a fixed tolerance.
"""

from __future__ import annotations

import arviz as az
import jax
import numpy as np
import numpyro
import numpyro.distributions as npd
import pytest
import scipy.optimize
import scipy.stats
from numpyro.infer import MCMC, NUTS

import hepprob
from hepprob import bayes
from hepprob.errors import ModelError, ParameterError

N_OBS = 12.0
ALPHA, BETA = 2.0, 0.5  # Gamma(shape, rate) prior on the Poisson rate
POST = scipy.stats.gamma(ALPHA + N_OBS, scale=1.0 / (BETA + 1.0))  # conjugate


def counting(n):
    """Single-bin counting; the default prior of lam is Uniform(0, 100)."""
    lam = hepprob.param("lam", 5.0, 0.0, 100.0)
    numpyro.sample("n", npd.Poisson(lam), obs=n)


def counting_gamma(n):
    """The same, with the Gamma prior declared in the model."""
    lam = hepprob.param("lam", 5.0, 0.0, None, prior=npd.Gamma(ALPHA, BETA))
    numpyro.sample("n", npd.Poisson(lam), obs=n)


@pytest.fixture(scope="module")
def conjugate():
    """Gamma prior swapped in at sampling time: posterior is Gamma(α+n, β+1)."""
    return hepprob.mcmc(
        counting,
        np.array(N_OBS),
        num_warmup=400,
        num_samples=600,
        num_chains=2,
        seed=1,
        progress_bar=False,
        priors={"lam": npd.Gamma(ALPHA, BETA)},
    )


def _mcse(draws, **kwargs):
    """ArviZ Monte Carlo standard error of draws shaped (chain, draw)."""
    data = az.convert_to_dataset({"x": np.atleast_2d(np.asarray(draws, dtype=float))})
    return float(az.mcse(data, **kwargs)["x"])


def _within_mcse(draws, target, n_mcse=4.0):
    """|mean(draws) - target| within n_mcse ArviZ Monte Carlo standard errors."""
    draws = np.asarray(draws)
    err = _mcse(draws, method="mean")
    assert abs(draws.mean() - target) < n_mcse * err, (draws.mean(), target, err)


def test_conjugate_posterior_mean_and_variance(conjugate):
    lam = conjugate.posterior["lam"].values  # (chain, draw)
    _within_mcse(lam, POST.mean())
    # the variance is the mean of (lam - true mean)^2: its MC error as a mean's
    _within_mcse((lam - POST.mean()) ** 2, POST.var())


def test_conjugate_limits_and_intervals(conjugate):
    draws = conjugate.posterior["lam"].values
    for prob in (0.95,):
        mcse = _mcse(draws, method="quantile", prob=prob)
        up = bayes.upper_limit(conjugate, "lam", cl=prob)
        assert abs(up - POST.ppf(prob)) < 4 * mcse
    low, high = bayes.credible_interval(conjugate, "lam", 0.68, kind="central")
    for value, prob in ((low, 0.16), (high, 0.84)):
        mcse = _mcse(draws, method="quantile", prob=prob)
        assert abs(value - POST.ppf(prob)) < 4 * mcse

    # HDI of the Gamma posterior: equal density at both ends, content 0.68
    def ends(p_low):
        return POST.ppf(p_low), POST.ppf(p_low + 0.68)

    p_low = scipy.optimize.brentq(
        lambda p: POST.pdf(ends(p)[0]) - POST.pdf(ends(p)[1]), 1e-6, 0.32 - 1e-6
    )
    ref = ends(p_low)
    hdi = bayes.credible_interval(conjugate, "lam", 0.68, kind="hdi")
    for value, ref_value, prob in (
        (hdi[0], ref[0], p_low),
        (hdi[1], ref[1], p_low + 0.68),
    ):
        mcse = _mcse(draws, method="quantile", prob=prob)
        assert abs(value - ref_value) < 5 * mcse
    assert hdi[1] - hdi[0] < high - low  # the HDI is the shortest interval


def test_inference_data_groups_and_stats(conjugate):
    assert {"posterior", "sample_stats", "observed_data", "log_likelihood"} <= set(
        conjugate.groups()
    )
    assert conjugate.posterior["lam"].shape == (2, 600)
    # (ArviZ stores a scalar observation with one dimension of length 1)
    np.testing.assert_array_equal(conjugate.observed_data["n"].values, [N_OBS])
    # pointwise log-likelihood is scipy's Poisson log pmf at each draw
    lam = conjugate.posterior["lam"].values
    np.testing.assert_allclose(
        conjugate.log_likelihood["n"].values,
        scipy.stats.poisson.logpmf(N_OBS, lam),
        rtol=1e-12,
    )
    for stat in ("diverging", "lp", "acceptance_rate", "step_size", "tree_depth"):
        assert conjugate.sample_stats[stat].shape[:2] == (2, 600)
    table = bayes.summary(conjugate)
    assert {"mean", "sd", "r_hat", "ess_bulk", "ess_tail", "hdi_16%", "hdi_84%"} <= set(
        table.columns
    )
    assert table.loc["lam", "r_hat"] < 1.05
    assert table.loc["lam", "ess_bulk"] > 100


def test_prior_in_model_equals_prior_swap_and_seed_reproducible(conjugate):
    kwargs = {"num_warmup": 400, "num_samples": 600, "num_chains": 2, "seed": 1}
    idata = hepprob.mcmc(counting_gamma, np.array(N_OBS), progress_bar=False, **kwargs)
    # same density, same seed, same (vectorised) chains: the same draws, up to
    # the rounding of two differently fused XLA programs carried through 1000
    # NUTS steps (5e-9 relative on this CPU, also at the last landed commit)
    np.testing.assert_allclose(
        idata.posterior["lam"].values, conjugate.posterior["lam"].values, rtol=1e-7
    )
    _within_mcse(idata.posterior["lam"].values, POST.mean())


# --- a small HistFactory-like model against a hand-written NumPyro model -----------

SIG = np.array([3.0, 6.0, 2.0])
BKG = np.array([20.0, 15.0, 10.0])
BKG_UNC = np.array([2.0, 2.0, 1.5])  # absolute per-bin MC uncertainty (staterror)
NORM_UP = 1.1  # normsys +10% on the background, code-1 exponential interpolation
DATA = np.array([24.0, 22.0, 11.0])


def hf_like(data):
    """Signal strength, a normsys (Normal prior) and staterror gammas."""
    mu = hepprob.param("mu", 1.0, 0.0, 10.0)
    alpha = hepprob.param("alpha", 0.0, -5.0, 5.0, prior=npd.Normal(0.0, 1.0))
    rel = BKG_UNC / BKG
    gamma = hepprob.param(
        "gamma", np.ones(3), 1e-10, 10.0, prior=npd.Normal(1.0, rel).to_event(1)
    )
    expected = mu * SIG + BKG * NORM_UP**alpha * gamma
    numpyro.sample("data", npd.Poisson(expected).to_event(1), obs=data)


def hand_written(data):
    mu = numpyro.sample("mu", npd.Uniform(0.0, 10.0))
    alpha = numpyro.sample("alpha", npd.Normal(0.0, 1.0))
    gamma = numpyro.sample("gamma", npd.Normal(1.0, BKG_UNC / BKG).to_event(1))
    expected = mu * SIG + BKG * NORM_UP**alpha * gamma
    numpyro.sample("data", npd.Poisson(expected).to_event(1), obs=data)


def test_poi_posterior_matches_hand_written_numpyro():
    ours = hepprob.mcmc(
        hf_like, DATA, num_warmup=400, num_samples=800, seed=3, progress_bar=False
    )
    ref = MCMC(NUTS(hand_written), num_warmup=400, num_samples=800, progress_bar=False)
    ref.run(jax.random.PRNGKey(11), DATA)
    ref_mu = np.asarray(ref.get_samples()["mu"])[None, :]
    mu = ours.posterior["mu"].values
    assert ours.posterior["gamma"].dims == ("chain", "draw", "gamma_dim")
    for f in (lambda x: x, lambda x: x**2):
        a, b = f(mu), f(ref_mu)
        err = np.hypot(_mcse(a), _mcse(b))
        assert abs(a.mean() - b.mean()) < 4 * err
    # a Bayesian upper limit is a posterior quantile, like the reference's
    up, ref_up = bayes.upper_limit(ours, "mu"), np.quantile(ref_mu, 0.95)
    err = np.hypot(
        _mcse(mu, method="quantile", prob=0.95),
        _mcse(ref_mu, method="quantile", prob=0.95),
    )
    assert abs(up - ref_up) < 4 * err
    gamma1 = bayes.credible_interval(ours, "gamma[1]", 0.9, kind="central")
    draws = ours.posterior["gamma"].values[..., 1].ravel()
    np.testing.assert_allclose(gamma1, np.quantile(draws, [0.05, 0.95]), rtol=1e-12)


def test_predictives_have_the_model_distribution():
    # prior predictive of the counting model with a Gamma prior: negative binomial
    pp = bayes.prior_predictive(
        counting_gamma, np.array(N_OBS), num_samples=4000, seed=5
    )
    assert pp["lam"].shape == (4000,)
    assert pp["n"].shape == (4000,)
    nb = scipy.stats.nbinom(ALPHA, BETA / (BETA + 1.0))
    counts = np.bincount(pp["n"].astype(int), minlength=60)[:60]
    expected = nb.pmf(np.arange(60)) * 4000
    keep = expected > 5
    chi2 = np.sum((counts[keep] - expected[keep]) ** 2 / expected[keep])
    assert scipy.stats.chi2.sf(chi2, keep.sum() - 1) > 1e-3
    # posterior predictive: each replicated count is Poisson at its own draw
    post = az.from_dict(posterior={"lam": POST.rvs(size=(2, 3000), random_state=0)})
    rep = bayes.posterior_predictive(counting_gamma, post, np.array(N_OBS), seed=2)
    assert rep["n"].shape == (2, 3000)
    post_nb = scipy.stats.nbinom(ALPHA + N_OBS, (BETA + 1.0) / (BETA + 2.0))
    _within_mcse(rep["n"], post_nb.mean())
    # vector data keep their shape and deterministic sites are recomputed
    post = az.from_dict(
        posterior={
            "mu": np.full((1, 5), 2.0),
            "alpha": np.zeros((1, 5)),
            "gamma": np.ones((1, 5, 3)),
        }
    )
    rep = bayes.posterior_predictive(hf_like, post, DATA)
    assert rep["data"].shape == (1, 5, 3)


def test_bad_input_gets_named_errors():
    n = np.array(N_OBS)
    with pytest.raises(ParameterError, match=r"priors: unknown name\(s\) \['mu'\]"):
        hepprob.mcmc(counting, n, priors={"mu": npd.Normal(0, 1)}, progress_bar=False)
    with pytest.raises(ParameterError, match=r"priors\['lam'\] must be a numpyro"):
        hepprob.mcmc(counting, n, priors={"lam": 3.0})
    with pytest.raises(ParameterError, match=r"priors\['n'\]: 'n' is an observed site"):
        hepprob.mcmc(counting, n, priors={"n": npd.Normal(0, 1)})
    with pytest.raises(
        ParameterError, match=r"priors\['gamma'\]: a prior of shape \(2,\)"
    ):
        hepprob.mcmc(hf_like, DATA, priors={"gamma": npd.Normal(np.ones(2), 1.0)})
    with pytest.raises(
        ParameterError, match="num_samples must be an integer >= 1, got 0"
    ):
        hepprob.mcmc(counting, n, num_samples=0)
    with pytest.raises(ParameterError, match="target_accept_prob must lie in"):
        hepprob.mcmc(counting, n, target_accept_prob=1.5)
    with pytest.raises(ParameterError, match="chain_method must be one of"):
        hepprob.mcmc(counting, n, chain_method="threads")
    with pytest.raises(
        ParameterError, match="init must be 'prior', 'mle' or a mapping"
    ):
        hepprob.mcmc(counting, n, init="middle")
    with pytest.raises(ParameterError, match=r"init\['gamma'\] must have shape \(3,\)"):
        hepprob.mcmc(hf_like, DATA, init={"gamma": 1.0})
    with pytest.raises(ModelError, match="no parameter to sample"):
        hepprob.mcmc(lambda: numpyro.sample("x", npd.Normal(0, 1), obs=1.0))

    def flat(n):
        lam = hepprob.param("lam", 5.0, 0.0)  # improper flat prior on (0, inf)
        numpyro.sample("n", npd.Poisson(lam), obs=n)

    with pytest.raises(ParameterError, match=r"\['lam'\] have an improper"):
        bayes.prior_predictive(flat, n)

    post = az.from_dict(posterior={"lam": np.ones((1, 10))})
    with pytest.raises(ParameterError, match=r"unknown parameter 'mu'; posterior has"):
        bayes.upper_limit(post, "mu")
    with pytest.raises(ParameterError, match="cl must be a probability in"):
        bayes.upper_limit(post, "lam", cl=95)
    with pytest.raises(ParameterError, match="kind must be 'hdi' or 'central'"):
        bayes.credible_interval(post, "lam", kind="equal")
    with pytest.raises(ParameterError, match=r"summary: var_names: unknown name"):
        bayes.summary(post, ["mu"])
    vec = az.from_dict(posterior={"g": np.ones((1, 10, 3))})
    with pytest.raises(ParameterError, match=r"name one entry, e.g. 'g\[0\]'"):
        bayes.upper_limit(vec, "g")
    with pytest.raises(ParameterError, match=r"out of range for shape \(3,\)"):
        bayes.upper_limit(vec, "g[3]")
    with pytest.raises(ParameterError, match="lacks the model parameter"):
        bayes.posterior_predictive(
            counting, az.from_dict(posterior={"x": np.ones((1, 3))}), n
        )


def test_factor_and_deterministic_sites():
    """A Gaussian constraint as numpyro.factor samples as the same term observed."""
    y = np.array([0.4, 1.1, 0.7])

    def observed(y):
        m = hepprob.param("m", 0.0, -10.0, 10.0)
        numpyro.deterministic("twice", 2.0 * m)
        numpyro.sample("c", npd.Normal(m, 0.5), obs=0.2)
        numpyro.sample("y", npd.Normal(m, 1.0), obs=y)

    def factored(y):
        m = hepprob.param("m", 0.0, -10.0, 10.0)
        numpyro.deterministic("twice", 2.0 * m)
        numpyro.factor("c", npd.Normal(m, 0.5).log_prob(0.2))
        numpyro.sample("y", npd.Normal(m, 1.0), obs=y)

    kwargs = {"num_warmup": 200, "num_samples": 200, "seed": 4, "progress_bar": False}
    a = hepprob.mcmc(observed, y, **kwargs)
    b = hepprob.mcmc(factored, y, **kwargs)
    # equal densities up to a constant: NUTS takes the same path
    np.testing.assert_allclose(
        b.posterior["m"].values, a.posterior["m"].values, rtol=1e-8
    )
    np.testing.assert_allclose(b.posterior["twice"].values, 2 * b.posterior["m"].values)
    assert "c" not in b.observed_data  # a factor has no data
    np.testing.assert_allclose(
        b.log_likelihood["c"].values,
        scipy.stats.norm.logpdf(0.2, a.posterior["m"].values, 0.5),
        rtol=1e-12,
    )
    # closed form: flat prior, Gaussian likelihoods -> Gaussian posterior
    w = np.array([1 / 0.25, 1.0, 1.0, 1.0])
    mean = np.sum(w * np.array([0.2, *y])) / w.sum()
    _within_mcse(a.posterior["m"].values, mean)


# --- HistFactory models ------------------------------------------------------------

HF_SIG = [4.0, 8.0, 3.0]
HF_BKG = [30.0, 25.0, 12.0]
HF_UNC = [3.0, 5.0, 2.0]  # shapesys: absolute uncertainties -> tau = (b / unc)^2
HF_OBS = [36.0, 31.0, 13.0]
HF_SPEC = {
    "channels": [
        {
            "name": "SR",
            "samples": [
                {
                    "name": "signal",
                    "data": HF_SIG,
                    "modifiers": [{"name": "mu", "type": "normfactor", "data": None}],
                },
                {
                    "name": "background",
                    "data": HF_BKG,
                    "modifiers": [{"name": "unc", "type": "shapesys", "data": HF_UNC}],
                },
            ],
        }
    ],
    "observations": [{"name": "SR", "data": HF_OBS}],
    "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
    "version": "1.0.0",
}


def hf_hand_written(main, tau):
    """The same likelihood by hand: pyhf's shapesys is Poisson(tau | gamma tau)."""
    mu = numpyro.sample("mu", npd.Uniform(0.0, 10.0))
    gamma = numpyro.sample("unc", npd.Uniform(1e-10, 10.0).expand([3]).to_event(1))
    rate = mu * np.array(HF_SIG) + gamma * np.array(HF_BKG)
    numpyro.sample("main", npd.Poisson(rate).to_event(1), obs=main)
    numpyro.sample("aux", npd.Poisson(gamma * tau).to_event(1), obs=tau)


def test_histfactory_posterior_matches_hand_written_numpyro():
    from hepprob.histfactory import Workspace

    ws = Workspace(HF_SPEC)
    model = ws.model()
    data = np.asarray(ws.data(model))
    assert model.config.suggested_bounds()[model.config.poi_index] == (0.0, 10.0)
    ours = hepprob.mcmc(
        model, data, num_warmup=400, num_samples=800, seed=6, progress_bar=False
    )
    tau = (np.array(HF_BKG) / np.array(HF_UNC)) ** 2
    np.testing.assert_allclose(data[3:], tau)
    ref = MCMC(
        NUTS(hf_hand_written), num_warmup=400, num_samples=800, progress_bar=False
    )
    ref.run(jax.random.PRNGKey(12), np.array(HF_OBS), tau)
    ref_mu = np.asarray(ref.get_samples()["mu"])[None, :]
    mu = ours.posterior["mu"].values
    for f in (lambda x: x, lambda x: x**2):
        a, b = f(mu), f(ref_mu)
        assert abs(a.mean() - b.mean()) < 4 * np.hypot(_mcse(a), _mcse(b))
    # predictive yields per channel and sample are pyhf's at the same draws
    import pyhf

    pp = bayes.posterior_predictive(model, ours, data, seed=1)
    assert pp["data"].shape == (1, 800, 6)
    np.testing.assert_array_equal(pp["counts/SR"], pp["data"][..., :3])
    ref_model = pyhf.Workspace(HF_SPEC).model()
    gamma = ours.posterior["unc"].values[0]
    for k in (0, 399, 799):
        pars = ref_model.config.suggested_init()
        pars[ref_model.config.par_slice("mu")] = [mu[0, k]]
        pars[ref_model.config.par_slice("unc")] = gamma[k]
        by_sample = ref_model.main_model.expected_data(pars, return_by_sample=True)
        for i, sample in enumerate(ref_model.config.samples):
            np.testing.assert_allclose(
                pp[f"yields/SR/{sample}"][0, k], by_sample[i], rtol=1e-10
            )
    # the main counts are Poisson at each draw: mean over draws within MC error
    expected = pp["yields/SR/signal"] + pp["yields/SR/background"]
    _within_mcse(pp["counts/SR"][..., 1], expected[..., 1].mean())


def test_init_at_the_mle_and_from_a_mapping():
    """init="mle" starts where hepprob.fit puts the optimum (here on a bound)."""
    n = np.array([1.0, 0.0, 2.0])

    def model(n):
        lam = hepprob.param("lam", 1.0, 0.0, 20.0, prior=npd.Gamma(ALPHA, BETA))
        b = hepprob.param("b", 3.0, 0.0, 10.0)
        numpyro.sample("aux", npd.Normal(b, 0.3), obs=3.0)
        numpyro.sample("n", npd.Poisson(lam + b).expand([3]).to_event(1), obs=n)

    best = hepprob.fit(model, n).values
    assert best["lam"] < 1e-6  # the MLE sits on the lower bound
    kwargs = {"num_warmup": 50, "num_samples": 50, "seed": 7, "progress_bar": False}
    from_mle = hepprob.mcmc(model, n, init="mle", **kwargs)
    from_map = hepprob.mcmc(model, n, init=dict(best), **kwargs)
    np.testing.assert_array_equal(
        from_mle.posterior["lam"].values, from_map.posterior["lam"].values
    )
    assert np.all(np.isfinite(from_mle.sample_stats["lp"].values))


# --- the compiled sampler is reused: it must sample the new data's posterior ------


def test_cached_sampler_samples_the_posterior_of_new_data(monkeypatch):
    """Later runs reuse the compiled loop; each sees its own data and prior."""
    from hepprob import _program_cache, _sampler

    compiled = []
    build = _sampler._loop
    monkeypatch.setattr(_sampler, "_loop", lambda *a: compiled.append(1) or build(*a))
    _program_cache.clear_cache()
    kwargs = {"num_warmup": 300, "num_samples": 600, "num_chains": 2}
    kwargs["progress_bar"] = False
    for n_obs, alpha, seed in ((3.0, ALPHA, 4), (30.0, ALPHA, 5), (30.0, 7.0, 6)):
        prior = npd.Gamma(jax.numpy.asarray(alpha), BETA)  # an array: not baked in
        idata = hepprob.mcmc(
            counting, np.array(n_obs), seed=seed, priors={"lam": prior}, **kwargs
        )
        post = scipy.stats.gamma(alpha + n_obs, scale=1.0 / (BETA + 1.0))
        lam = idata.posterior["lam"].values
        _within_mcse(lam, post.mean())
        _within_mcse((lam - post.mean()) ** 2, post.var())
        np.testing.assert_array_equal(idata.observed_data["n"].values, n_obs)
    assert len(compiled) == 1  # one compiled loop served all three runs


@pytest.mark.parametrize("progress_bar", [False, True])
def test_draws_equal_numpyro_mcmc_with_the_same_key(progress_bar, capsys):
    """Same density, start rule and key as NumPyro's own MCMC: the same draws
    (with a progress bar too: the compiled loop then runs in chunks)."""
    for data in (DATA, DATA + 5.0):  # the second call reuses the compiled loop
        ours = hepprob.mcmc(
            hf_like,
            data,
            num_warmup=100,
            num_samples=100,
            seed=2,
            progress_bar=progress_bar,
        )
        assert ("sample: 100%" in capsys.readouterr().err) == progress_bar
        kernel = NUTS(hand_written, init_strategy=numpyro.infer.init_to_sample)
        ref = MCMC(
            kernel,
            num_warmup=100,
            num_samples=100,
            progress_bar=False,
            jit_model_args=True,
        )
        ref.run(jax.random.PRNGKey(2), jax.numpy.asarray(data))
        for name in ("mu", "alpha", "gamma"):
            np.testing.assert_allclose(
                ours.posterior[name].values[0],
                ref.get_samples()[name],
                rtol=1e-9,
                atol=1e-12,
            )


def test_no_finite_start_point_is_a_model_error_on_both_paths():
    def never(n):
        lam = hepprob.param("lam", 5.0, 0.0, 100.0)
        numpyro.factor("never", -np.inf * lam)

    for chains in ({}, {"num_chains": 2, "chain_method": "sequential"}):
        with pytest.raises(ModelError, match="not finite at any start point"):
            # the compiled loop; NumPyro's MCMC for sequential chains
            hepprob.mcmc(never, 1.0, num_warmup=10, num_samples=10, **chains)
