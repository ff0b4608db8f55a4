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
# # 05 — A mixed analysis: an unbinned signal region, binned control regions
#
# A B-meson mass peak is fitted event by event in the signal region (SR), while
# two binned control regions (CR), written as a pyhf JSON workspace, measure the
# background normalisation. Both parts share parameters by name: the signal
# strength ``mu``, the luminosity ``lumi`` (with its 2 % constraint) and the
# background normalisation ``kb``. The simultaneous fit is one model function
# with two observed sites, and everything — Hesse, Minos, CLs, toys, a 2-D
# contour, sWeights, NUTS — works on it unchanged.
#
# Set ``HEPPROB_TUTORIAL_QUICK=1`` for tiny settings (used by the test suite).

# %%
import os

import jax
import numpy as np
import numpyro

import hepprob
from hepprob import dist
from hepprob.histfactory import Workspace

QUICK = os.environ.get("HEPPROB_TUTORIAL_QUICK") == "1"
N_TOYS = 32 if QUICK else 500
MCMC = {"num_warmup": 100, "num_samples": 100} if QUICK else {}

# %% [markdown]
# ## The control regions: a HistFactory workspace
#
# ``CR_low`` is background-dominated with a little signal leaking in;
# ``CR_high`` is pure background with a shape uncertainty. ``kb`` scales the
# background everywhere, ``mu`` the signal, and ``lumi`` both.

# %%
LUMI = {"name": "lumi", "type": "lumi", "data": None}
KB = {"name": "kb", "type": "normfactor", "data": None}
CR_SPEC = {
    "channels": [
        {
            "name": "CR_low",
            "samples": [
                {"name": "bkg", "data": [220.0, 180.0], "modifiers": [KB, LUMI]},
                {
                    "name": "signal",
                    "data": [6.0, 4.0],
                    "modifiers": [
                        {"name": "mu", "type": "normfactor", "data": None},
                        LUMI,
                    ],
                },
            ],
        },
        {
            "name": "CR_high",
            "samples": [
                {
                    "name": "bkg",
                    "data": [150.0, 90.0, 40.0],
                    "modifiers": [
                        KB,
                        LUMI,
                        {
                            "name": "bkg_shape",
                            "type": "histosys",
                            "data": {
                                "hi_data": [156.0, 90.0, 37.0],
                                "lo_data": [144.0, 90.0, 43.0],
                            },
                        },
                    ],
                }
            ],
        },
    ],
    "observations": [
        {"name": "CR_low", "data": [0.0, 0.0]},  # replaced by generated counts
        {"name": "CR_high", "data": [0.0, 0.0, 0.0]},
    ],
    "measurements": [
        {
            "name": "meas",
            "config": {
                "poi": "mu",
                "parameters": [
                    {
                        "name": "lumi",
                        "auxdata": [1.0],
                        "sigmas": [0.02],
                        "bounds": [[0.8, 1.2]],
                        "inits": [1.0],
                    },
                    {"name": "kb", "bounds": [[0.2, 5.0]], "inits": [1.0]},
                    {"name": "mu", "bounds": [[0.0, 10.0]], "inits": [1.0]},
                ],
            },
        }
    ],
    "version": "1.0.0",
}
ws = Workspace(CR_SPEC)
cr_model = ws.model()
print(cr_model)
print("parameters:", cr_model.config.par_names)
print("bounds:", cr_model.config.suggested_bounds())

# %% [markdown]
# ## The joint model
#
# ``cr_model.numpyro_model()`` declares every HistFactory parameter with
# ``hepprob.param`` (pyhf's inits and bounds) and observes the counts. The SR
# part declares ``mu``, ``lumi`` and ``kb`` again: a second ``hepprob.param``
# with a name already declared returns that parameter, so the two parts share
# it. The declarations must agree on start value and bounds; otherwise
# ``hepprob.param`` raises a ``ParameterError`` saying how they differ.
#
# The SR is an extended unbinned fit on 5.0–5.6 GeV: a Crystal Ball signal and
# an exponential background whose yields are the expected SR yields times the
# shared parameters. ``max_events`` NaN-pads datasets to a fixed size, so that
# toys with any number of events vectorise.

# %%
LOW, HIGH = 5.0, 5.6
S_SR, B_SR = 120.0, 600.0  # expected SR yields at mu = kb = lumi = 1
MAX_EVENTS = 1200
control_regions = cr_model.numpyro_model()


def analysis(mass, counts):
    control_regions(counts)  # mu, lumi, kb, bkg_shape
    mu = hepprob.param("mu", 1.0, 0.0, 10.0)  # the same parameters, by name
    lumi = hepprob.param("lumi", 1.0, 0.8, 1.2)
    kb = hepprob.param("kb", 1.0, 0.2, 5.0)
    m_b = hepprob.param("m_b", 5.28, 5.2, 5.35)
    width = hepprob.param("width", 0.02, 0.005, 0.1)
    slope = hepprob.param("slope", -2.0, -10.0, 10.0)
    signal = dist.CrystalBall(m_b, width, 1.5, 3.0, low=LOW, high=HIGH)
    background = dist.Exponential(slope, low=LOW, high=HIGH)
    sr = dist.Extended(
        [signal, background],
        [S_SR * mu * lumi, B_SR * kb * lumi],
        max_events=MAX_EVENTS,
    )
    numpyro.sample("mass", sr, obs=mass)


# %% [markdown]
# ## A dataset
#
# ``hepprob.infer.toys.simulate`` draws every observed site of a model at given
# parameter values: here the SR events (Poisson number, exact samplers) and the
# CR counts with their auxiliary measurement.

# %%
from hepprob.infer.toys import simulate

TRUTH = {"mu": 1.3, "kb": 1.1, "lumi": 1.0, "bkg_shape": 0.0}
TRUTH |= {"m_b": 5.279, "width": 0.018, "slope": -2.5}
template_mass = np.full(MAX_EVENTS, np.nan)
template_counts = np.asarray(ws.data(cr_model))
drawn = simulate(
    analysis, TRUTH, 1, jax.random.PRNGKey(7), template_mass, template_counts
)
mass, counts = np.asarray(drawn["mass"][0]), np.asarray(drawn["data"][0])
print(f"SR: {int(np.sum(~np.isnan(mass)))} events; CR counts: {counts[:5]}")

# %% [markdown]
# ## The simultaneous fit
#
# One NLL: the SR's extended likelihood plus the HistFactory likelihood of the
# CRs (including the luminosity constraint). Hesse errors come from the exact
# Hessian; Minos gives the asymmetric interval of ``mu``.

# %%
result = hepprob.fit(analysis, mass, counts)
print(result)
assert result.converged
lo, hi = result.minos("mu")["mu"]
print(f"mu = {result.values['mu']:.3f}  [{lo:.3f}, {hi:.3f}] (68 % Minos)")

# %% [markdown]
# The background normalisation is measured twice: by the CRs and by the SR's
# sidebands. The joint fit combines both (compare the CR-only fit). Fixing
# ``kb`` at its fitted value shows how much of the ``mu`` error comes from it.

# %%
cr_only = hepprob.fit(control_regions, counts)
print(f"kb from the CRs alone: {cr_only.values['kb']:.3f} ± {cr_only.errors['kb']:.3f}")
print(f"kb from the joint fit: {result.values['kb']:.3f} ± {result.errors['kb']:.3f}")
kb_fixed = hepprob.fit(analysis, mass, counts, fixed={"kb": result.values["kb"]})
print(
    f"mu error, kb floating {result.errors['mu']:.4f}, kb fixed {kb_fixed.errors['mu']:.4f}"
)

# %% [markdown]
# ## CLs for a signal hypothesis
#
# ``hypotest_model`` runs the free and fixed-``mu`` fits in one vectorised
# program and the asymptotic formulas of Cowan et al.; several ``mu`` values
# are tested at once.

# %%
mus = np.array([1.2, 1.4, 1.6, 1.8])
cls = hepprob.infer.hypotest_model(analysis, mass, counts, poi="mu", poi_value=mus)
print(
    "CLs:", dict(zip(mus.tolist(), np.round(np.asarray(cls), 4).tolist(), strict=True))
)

# %% [markdown]
# ## Toys: are the errors right?
#
# ``hepprob.toys`` redraws both the SR events and the CR counts (and the
# luminosity's auxiliary measurement) at the fitted point, and refits every
# toy, all in one vectorised program.

# %%
toys = hepprob.toys(
    analysis, result.values, N_TOYS, jax.random.PRNGKey(8), mass, counts
)
for name in ("mu", "kb", "m_b"):
    s = toys.pull_summary()[name]
    print(
        f"pull {name}: mean {s['mean']:+.2f} ± {s['mean_error']:.2f}, width {s['width']:.2f}"
    )

# %% [markdown]
# ## sWeights of the signal region
#
# With the joint fit's yields, ``hepprob.infer.sweights`` unfolds the SR events
# into signal and background weights (sPlot). The yields of the SR site are
# ``S_SR·mu·lumi`` and ``B_SR·kb·lumi``, not parameters themselves, so we refit
# the SR with its own yield parameters, the shapes fixed at the joint fit.


# %%
def sr_yields(mass):
    nsig = hepprob.param("nsig", 150.0, 0.0, 2000.0)
    nbkg = hepprob.param("nbkg", 650.0, 0.0, 5000.0)
    v = result.values
    signal = dist.CrystalBall(v["m_b"], v["width"], 1.5, 3.0, low=LOW, high=HIGH)
    background = dist.Exponential(v["slope"], low=LOW, high=HIGH)
    sr = dist.Extended([signal, background], [nsig, nbkg], max_events=MAX_EVENTS)
    numpyro.sample("mass", sr, obs=mass)


yields_fit = hepprob.fit(sr_yields, mass)
sw = hepprob.infer.sweights(yields_fit, sr_yields, mass, ["nsig", "nbkg"])
real = ~np.isnan(mass)
print(
    f"sum of signal sWeights {np.sum(sw['nsig'][real]):.2f} = nsig {yields_fit.values['nsig']:.2f}"
)

# %% [markdown]
# ## A Bayesian reading of the same model
#
# Under ``hepprob.mcmc`` every ``param`` site samples from its prior (uniform
# within the bounds), the luminosity's auxiliary measurement stays a
# likelihood term, and NUTS samples the joint posterior.

# %%
idata = hepprob.mcmc(analysis, mass, counts, seed=1, **MCMC)
post = np.asarray(idata.posterior["mu"]).ravel()
print(f"posterior mu: {post.mean():.3f} ± {post.std():.3f}")
