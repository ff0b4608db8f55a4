# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 — Bayesian inference: NUTS, priors, credible limits, PyMC
#
# One hepprob model serves both schools: the frequentist tutorials fit it, here
# we sample its posterior with NUTS (NumPyro) and read credible intervals and a
# Bayesian upper limit off the draws. At the end the same likelihood goes into
# a PyMC model.
#
# Set ``HEPPROB_TUTORIAL_QUICK=1`` for tiny settings (used by the test suite).

# %%
import os
import pathlib
import sys

import matplotlib.pyplot as plt
import numpy as np
import numpyro
import numpyro.distributions as npd

import hepprob
from hepprob import bayes

QUICK = os.environ.get("HEPPROB_TUTORIAL_QUICK") == "1"
N_WARMUP, N_SAMPLES = (150, 150) if QUICK else (1000, 2000)


# Figures: a notebook shows them under the cell; run as a script they are saved
# as PNG files in ``figures/`` (or ``$HEPPROB_TUTORIAL_OUTPUT``).
FIGURES = pathlib.Path(os.environ.get("HEPPROB_TUTORIAL_OUTPUT", "figures"))


def show(fig, name):
    FIGURES.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIGURES / f"{name}.png", dpi=100, bbox_inches="tight")
    if "ipykernel" not in sys.modules:  # a script: free the figure once saved
        plt.close(fig)


# %% [markdown]
# ## A three-bin search with a background uncertainty
#
# Signal template ``s``, background ``b``; the signal strength ``mu`` is the
# parameter of interest, ``alpha`` scales the background by ``1.1**alpha``
# (a ±10% systematic). Parameters are declared with ``hepprob.param``: bounds
# and start values are what fits use, ``prior`` is what MCMC uses (default:
# uniform within finite bounds, flat otherwise).

# %%
s = np.array([2.0, 5.0, 2.0])
b = np.array([20.0, 15.0, 10.0])
observed = np.array([22.0, 18.0, 11.0])


def model(data):
    mu = hepprob.param("mu", 1.0, 0.0, 10.0)  # prior: Uniform(0, 10)
    alpha = hepprob.param("alpha", 0.0, -5.0, 5.0, prior=npd.Normal(0.0, 1.0))
    expected = mu * s + b * 1.1**alpha
    numpyro.sample("data", npd.Poisson(expected).to_event(1), obs=data)


# %% [markdown]
# ## Sampling
#
# ``hepprob.mcmc`` returns ArviZ ``InferenceData`` (posterior, sample_stats,
# observed_data, log_likelihood). Several chains run vectorised on one device,
# or in parallel when JAX sees several devices.

# %%
idata = hepprob.mcmc(
    model,
    observed,
    num_warmup=N_WARMUP,
    num_samples=N_SAMPLES,
    num_chains=2,
    seed=0,
    progress_bar=False,
)
bayes.summary(idata, ["mu", "alpha"])

# %% [markdown]
# ## Credible intervals and an upper limit
#
# ``upper_limit`` is the 95% quantile of the marginal posterior of ``mu``;
# ``credible_interval`` gives the shortest (``kind="hdi"``) or equal-tailed
# (``kind="central"``) interval.

# %%
print("95% credible upper limit on mu:", bayes.upper_limit(idata, "mu", cl=0.95))
print("68% HDI of alpha:", bayes.credible_interval(idata, "alpha", 0.68))

# %% [markdown]
# ## Changing priors without touching the model
#
# ``priors=`` swaps any parameter's prior for this run only — e.g. a prior
# uniform in ``mu`` up to 20, or a log-normal background scale.

# %%
idata_wide = hepprob.mcmc(
    model,
    observed,
    num_warmup=N_WARMUP,
    num_samples=N_SAMPLES,
    seed=1,
    progress_bar=False,
    priors={"mu": npd.Uniform(0.0, 20.0)},
)
print("upper limit with Uniform(0, 20):", bayes.upper_limit(idata_wide, "mu"))

# %% [markdown]
# ## Predictive checks
#
# ``posterior_predictive`` redraws every observed site at each posterior draw
# (and recomputes ``numpyro.deterministic`` sites, such as expected yields).

# %%
replica = bayes.posterior_predictive(model, idata, observed, seed=2)
print("observed:", observed)
print("posterior predictive mean:", replica["data"].mean(axis=(0, 1)))
print("prior predictive mean:", bayes.prior_predictive(model, observed)["data"].mean(0))

# %% [markdown]
# ## A HistFactory workspace
#
# A ``hepprob.histfactory.Model`` samples directly. Its auxiliary measurements
# are read one of two ways, and the user picks:
#
# * ``model.numpyro_model("data")`` (default, also what passing ``model``
#   itself means): auxiliary data are observed data, nuisance parameters have
#   flat priors within their bounds — the frequentist likelihood, sampled;
# * ``model.numpyro_model("prior")``: each constraint becomes the nuisance
#   parameter's prior (truncated Normal; Gamma for ``shapesys``), no auxiliary
#   data are observed.
#
# For these constraint types both give the same posterior; they differ for fits
# (which ignore priors), toys and prior-predictive draws. ``priors=`` overrides
# any prior, e.g. a log-uniform prior on the signal strength.

# %%
from hepprob.histfactory import Workspace

spec = {
    "channels": [
        {
            "name": "SR",
            "samples": [
                {
                    "name": "signal",
                    "data": s.tolist(),
                    "modifiers": [{"name": "mu", "type": "normfactor", "data": None}],
                },
                {
                    "name": "background",
                    "data": b.tolist(),
                    "modifiers": [
                        {
                            "name": "bkg_unc",
                            "type": "shapesys",
                            "data": [2.0, 2.0, 1.5],
                        },
                        {
                            "name": "bkg_norm",
                            "type": "normsys",
                            "data": {"hi": 1.1, "lo": 0.9},
                        },
                    ],
                },
            ],
        }
    ],
    "observations": [{"name": "SR", "data": observed.tolist()}],
    "measurements": [{"name": "search", "config": {"poi": "mu", "parameters": []}}],
    "version": "1.0.0",
}
ws = Workspace(spec)
hf_model = ws.model()
hf_data = ws.data(hf_model)
idata_hf = hepprob.mcmc(
    hf_model.numpyro_model("prior"),
    hf_data,
    num_warmup=N_WARMUP,
    num_samples=N_SAMPLES,
    seed=4,
    progress_bar=False,
)
print("HistFactory: 95% credible upper limit on mu:", bayes.upper_limit(idata_hf, "mu"))

# %% [markdown]
# Passing the HistFactory ``Model`` to ``posterior_predictive`` adds expected
# yields per channel and sample (``"yields/<channel>/<sample>"``) and
# replicated main counts per channel (``"counts/<channel>"``).

# %%
hf_replica = bayes.posterior_predictive(hf_model, idata_hf, hf_data)
for key in ("yields/SR/signal", "yields/SR/background", "counts/SR"):
    print(key, hf_replica[key].mean(axis=(0, 1)).round(2))

# %% [markdown]
# ## The same likelihood in PyMC
#
# ``hepprob.pymc.Likelihood`` adds the model's log-likelihood (a JAX function
# wrapped as a PyTensor Op, with its gradient) to a ``pm.Model``. Parameters you
# pass in ``pars`` keep your PyMC priors; the others are created with the
# model's priors. ``pm.sample()`` and ``pm.sample(nuts_sampler="numpyro")`` both
# work. For HistFactory workspaces use ``hepprob.pymc.HistFactory(name,
# ws.model(), observed=ws.data(model), constraints="data" | "prior")``.

# %%
import pymc as pm

import hepprob.pymc

with pm.Model():
    mu = pm.HalfNormal("mu", sigma=5.0)  # your own prior on the POI
    hepprob.pymc.Likelihood("search", model, observed, pars={"mu": mu})
    idata_pymc = pm.sample(
        draws=N_SAMPLES,
        tune=N_WARMUP,
        chains=1,
        cores=1,
        random_seed=3,
        progressbar=False,
        compute_convergence_checks=False,
    )
print("PyMC, HalfNormal prior: 95% limit", bayes.upper_limit(idata_pymc, "mu"))

# %% [markdown]
# ## What to check
#
# The marginal posterior of ``mu`` from NUTS, with the 95% credible upper
# limit, and the sampler's diagnostics: effective sample size, and R-hat near
# 1 when several chains ran (``num_chains=4``).

# %%
draws = idata.posterior["mu"].values.ravel()
limit = bayes.upper_limit(idata, "mu", cl=0.95)
fig, ax = plt.subplots()
ax.hist(draws, bins=40, density=True, histtype="step", color="C0", label="posterior")
ax.axvline(limit, color="C3", label=f"95% upper limit {limit:.2f}")
ax.set_xlabel("mu")
ax.set_ylabel("density")
ax.legend()
show(fig, "04_posterior_mu")
print(bayes.summary(idata, round_to="none")[["mean", "sd", "ess_bulk"]])
