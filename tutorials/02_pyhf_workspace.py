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
# # 02 — A pyhf JSON workspace in hepprob
#
# A HistFactory workspace (the pyhf JSON format) compiles into one pure-JAX
# likelihood: ``logpdf``, its gradient and ``expected_data`` are single jitted
# array programs, with the same parameter order and numbers as pyhf 0.7. The
# same model is a NumPyro model, so ``hepprob.fit`` and ``hepprob.mcmc`` work on
# it directly.
#
# Set ``HEPPROB_TUTORIAL_QUICK=1`` for tiny settings (used by the test suite).

# %%
import os
import pathlib
import sys

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import numpyro.distributions as npd

import hepprob
from hepprob import plot as hplot
from hepprob.histfactory import HistFactory, Workspace

QUICK = os.environ.get("HEPPROB_TUTORIAL_QUICK") == "1"


# Figures: a notebook shows them under the cell; run as a script they are saved
# as PNG files in ``figures/`` (or ``$HEPPROB_TUTORIAL_OUTPUT``).
FIGURES = pathlib.Path(os.environ.get("HEPPROB_TUTORIAL_OUTPUT", "figures"))


def show(fig, name):
    FIGURES.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIGURES / f"{name}.png", dpi=100, bbox_inches="tight")
    if "ipykernel" not in sys.modules:  # a script: free the figure once saved
        plt.close(fig)


# %% [markdown]
# ## A workspace
#
# Two channels: a signal region with a signal (scaled by ``mu``) over a
# background with a normalisation uncertainty (``normsys``), a shape
# uncertainty (``histosys``) and MC statistical uncertainties (``staterror``);
# a control region that constrains the background normalisation ``k_bkg``.

# %%
spec = {
    "channels": [
        {
            "name": "SR",
            "samples": [
                {"name": "signal", "data": [2.0, 6.0, 3.0], "modifiers": [
                    {"name": "mu", "type": "normfactor", "data": None},
                    {"name": "lumi", "type": "lumi", "data": None}]},
                {"name": "background", "data": [40.0, 25.0, 10.0], "modifiers": [
                    {"name": "k_bkg", "type": "normfactor", "data": None},
                    {"name": "bkg_norm", "type": "normsys", "data": {"hi": 1.08, "lo": 0.93}},
                    {"name": "bkg_shape", "type": "histosys",
                     "data": {"hi_data": [43.0, 25.5, 9.0], "lo_data": [38.0, 24.5, 11.0]}},
                    {"name": "staterror_SR", "type": "staterror", "data": [3.0, 2.5, 1.5]}]},
            ],
        },
        {
            "name": "CR",
            "samples": [
                {"name": "background", "data": [200.0, 150.0], "modifiers": [
                    {"name": "k_bkg", "type": "normfactor", "data": None},
                    {"name": "staterror_CR", "type": "staterror", "data": [8.0, 6.0]}]},
            ],
        },
    ],
    "observations": [{"name": "SR", "data": [45.0, 33.0, 12.0]},
                     {"name": "CR", "data": [207.0, 149.0]}],
    "measurements": [{"name": "meas", "config": {"poi": "mu", "parameters": [
        {"name": "lumi", "auxdata": [1.0], "sigmas": [0.02], "bounds": [[0.9, 1.1]],
         "inits": [1.0]}]}}],
    "version": "1.0.0",
}  # fmt: skip

ws = Workspace(spec)
model = ws.model()
data = np.asarray(ws.data(model))
print(model)
print("parameters:", model.config.par_names)
print("POI:", model.config.poi_name, "at index", model.config.poi_index)

# %% [markdown]
# ## pyhf's interface, in JAX
#
# ``logpdf`` returns shape ``(1,)`` as pyhf does. ``logpdf_fn()`` is the bare
# function ``(pars, data) -> logpdf``: jit it, differentiate it, vmap it.

# %%
init = jnp.asarray(model.config.suggested_init())
print("logpdf at init:", model.logpdf(init, data))
print("expected main data:", model.expected_actualdata(init))

value_and_grad = jax.jit(jax.value_and_grad(model.logpdf_fn()))
value, grad = value_and_grad(init, jnp.asarray(data))
print("gradient d logpdf / d mu:", float(grad[model.config.poi_index]))

# %% [markdown]
# A scan over the POI is one vectorised call.

# %%
mus = jnp.linspace(0.0, 3.0, 7)
scan_pars = jnp.tile(init, (mus.size, 1)).at[:, model.config.poi_index].set(mus)
print("logpdf along mu:", np.round(np.asarray(model.logpdf(scan_pars, data)), 3))

# %% [markdown]
# ## Toys
#
# ``HistFactory(model, pars)`` is the distribution of the full data vector: main
# counts are Poisson, auxiliary data Normal (or Poisson for ``shapesys``).

# %%
n_toys = 200 if QUICK else 5000
toys = HistFactory(model, init).sample(jax.random.key(0), (n_toys,))
sr0 = model.config.channel_slices["SR"].start  # channels are sorted: CR, SR
print("toy shape:", toys.shape, " mean of SR bin 0:", float(toys[:, sr0].mean()))

# %% [markdown]
# ## Fit and posterior
#
# ``numpyro_model()`` declares every parameter set with ``hepprob.param`` (same
# names, inits and bounds as pyhf) and observes the data. With the default
# ``constraints="data"`` the auxiliary measurements are observed, as in pyhf;
# ``constraints="prior"`` turns each constraint into the parameter's prior
# instead (Normal, or Gamma for ``shapesys``), which is a Bayesian choice: a fit
# then ignores the constraints. Priors can be overridden by name.

# %%
numpyro_model = model.numpyro_model()
result = hepprob.fit(numpyro_model, data)
print(f"mu = {result.values['mu']:.3f} +- {result.errors['mu']:.3f}")

# %%
bayesian = model.numpyro_model(priors={"mu": npd.Uniform(0.0, 5.0)})
n = 100 if QUICK else 1000
idata = hepprob.mcmc(bayesian, data, num_warmup=n, num_samples=n, seed=1)
print("posterior mean of mu:", float(idata.posterior["mu"].mean()))

# %% [markdown]
# ## Interpolation codes
#
# pyhf 0.7's defaults are ``code4`` (normsys) and ``code4p`` (histosys). Also
# available: codes 0, 1, 2 and CMS Combine's smooth interpolations,
# ``lnN_smooth`` (asymmetric log-normal with a continuous second derivative) and
# ``poly6`` (smooth vertical template morphing with a ``smooth_region``).

# %%
combine_like = ws.model(
    modifier_settings={"normsys": {"interpcode": "lnN_smooth"},
                       "histosys": {"interpcode": "poly6", "smooth_region": 1.0}}
)  # fmt: skip
print("logpdf (Combine-style interpolation):", combine_like.logpdf(init, data))

# %% [markdown]
# ## What to check
#
# The post-fit yields of each channel stacked over the data, with the
# uncertainty band propagated from the fit covariance (``result.x`` and
# ``result.covariance`` are in ``model.config.par_names`` order), and the
# fitted POI with its error. The data/prediction panel should scatter around 1
# within the band and the data errors.

# %%
assert result.par_names == model.config.par_names
stacks = hplot.channel_stacks(model, data, result.x, result.covariance)
for channel, (main, _) in stacks.items():
    show(main.figure, f"02_postfit_{channel}")
print(
    f"mu = {result.values['mu']:.3f} ± {result.errors['mu']:.3f}, "
    f"converged: {result.converged}"
)
