# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 03 — CLs, upper limits, discovery and toys
#
# The frequentist toolbox of `hepprob.infer` on a small HistFactory workspace:
#
# 1. maximum-likelihood fit with Hesse errors (`hepprob.infer.mle`, pyhf API);
# 2. a CLs hypothesis test with the asymptotic formulas (`hypotest`);
# 3. observed and expected upper limits, by root finding and by a scan
#    drawn as a Brazil band (`upper_limit`);
# 4. the discovery significance (`discovery`);
# 5. toy-based CLs (`calctype="toybased"`);
# 6. CLs for an unbinned NumPyro model (`hypotest_model`).
#
# Every fit is a pure-JAX program: a scan over POI values or a batch of toys
# runs as one vectorised (vmapped) program, compiled once per model.

# %%
import os
import pathlib
import sys

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import numpyro
import numpyro.distributions as npd

import hepprob
from hepprob import plot as hplot
from hepprob.histfactory import Workspace
from hepprob.infer import mle

QUICK = bool(os.environ.get("HEPPROB_TUTORIAL_QUICK"))
NTOYS = 300 if QUICK else 5000


# Figures: a notebook shows them under the cell; run as a script they are saved
# as PNG files in ``figures/`` (or ``$HEPPROB_TUTORIAL_OUTPUT``).
FIGURES = pathlib.Path(os.environ.get("HEPPROB_TUTORIAL_OUTPUT", "figures"))


def show(fig, name):
    FIGURES.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIGURES / f"{name}.png", dpi=100, bbox_inches="tight")
    if "ipykernel" not in sys.modules:  # a script: free the figure once saved
        plt.close(fig)


# %% [markdown]
# ## A two-channel workspace
# A signal region with a signal (normalised by the POI `mu`) over a background
# with a per-bin uncertainty (`shapesys`), and a control region sharing the
# background normalisation uncertainty (`normsys`).

# %%
bkg_norm = {"name": "bkg_norm", "type": "normsys", "data": {"hi": 1.08, "lo": 0.92}}
spec = {
    "channels": [
        {
            "name": "signal_region",
            "samples": [
                {
                    "name": "signal",
                    "data": [5.0, 10.0, 4.0],
                    "modifiers": [{"name": "mu", "type": "normfactor", "data": None}],
                },
                {
                    "name": "background",
                    "data": [50.0, 42.0, 30.0],
                    "modifiers": [
                        bkg_norm,
                        {"name": "sr_mc", "type": "shapesys", "data": [4.0, 3.5, 3.0]},
                    ],
                },
            ],
        },
        {
            "name": "control_region",
            "samples": [
                {"name": "background", "data": [160.0], "modifiers": [bkg_norm]}
            ],
        },
    ],
    "observations": [
        {"name": "signal_region", "data": [53.0, 47.0, 29.0]},
        {"name": "control_region", "data": [158.0]},
    ],
    "measurements": [{"name": "meas", "config": {"poi": "mu", "parameters": []}}],
    "version": "1.0.0",
}
workspace = Workspace(spec)
model = workspace.model()
data = workspace.data(model)
print(model.config.par_names)

# %% [markdown]
# ## Best fit and Hesse errors
# `mle.fit` has pyhf's signature; `return_uncertainties=True` gives rows
# `[value, error]`, the errors from the exact (autodiff) Hessian.

# %%
rows, twice_nll = mle.fit(
    data, model, return_uncertainties=True, return_fitted_val=True
)
for name, (value, error) in zip(model.config.par_names, np.asarray(rows), strict=True):
    print(f"{name:>10s} = {value:7.3f} ± {error:.3f}")
print("-2 ln L at the minimum:", float(twice_nll))

# %% [markdown]
# ## A CLs test of mu = 1
# The test statistic is $\tilde q_\mu$ (Cowan et al., arXiv:1007.1727); the
# expected band is ordered from −2σ to +2σ as in pyhf.

# %%
cls_obs, (clsb, clb), band = hepprob.infer.hypotest(
    1.0, data, model, return_tail_probs=True, return_expected_set=True
)
print(
    f"CLs = {float(cls_obs):.4f}  (CLs+b = {float(clsb):.4f}, CLb = {float(clb):.4f})"
)
print("expected CLs, -2..+2 sigma:", np.round(np.asarray(band, dtype=float), 4))

# %% [markdown]
# ## Upper limits
# With a scan, `upper_limit` evaluates CLs at every point in one vectorised
# program and interpolates the crossings of CLs = 0.05 (as pyhf); the scan also
# draws the Brazil band. Without a scan it finds the six crossings by a
# vectorised root search instead.

# %%
scan = np.linspace(0.0, 4.0, 21 if QUICK else 41)
obs_limit, exp_limits, (mus, results) = hepprob.infer.upper_limit(
    data, model, scan=scan, return_results=True
)
print(f"observed 95% CL limit on mu: {float(obs_limit):.3f}")
print("expected:", np.round(np.asarray(exp_limits, dtype=float), 3))
cls_scan = np.array([float(r[0]) for r in results])
band_scan = np.array([[float(v) for v in r[1]] for r in results])
ax = hplot.brazil_band(mus, cls_scan, band_scan)
ax.set_xlabel("mu")
show(ax.figure, "03_brazil")

if not QUICK:
    obs_root, exp_root = hepprob.infer.upper_limit(data, model)
    print(f"root finding: observed {float(obs_root):.4f}")

# %% [markdown]
# ## Discovery significance
# $Z_0 = \sqrt{q_0}$ observed, and the median expected for mu = 1.

# %%
z_obs, z_exp = hepprob.infer.discovery(data, model, return_expected=True)
print(f"Z observed = {float(z_obs):.2f} sigma, expected = {float(z_exp):.2f} sigma")

# %% [markdown]
# ## Toy-based CLs
# Pseudo-data are drawn with `jax.random` (Poisson main data, auxiliary data
# from their constraints) at the nuisances profiled under each hypothesis;
# all toys are fitted in one vmapped program.

# %%
cls_toys, (clsb_toys, clb_toys) = hepprob.infer.hypotest(
    1.0, data, model, calctype="toybased", ntoys=NTOYS, seed=1, return_tail_probs=True
)
print(f"toys: CLs = {float(cls_toys):.4f} (asymptotic {float(cls_obs):.4f})")

# %% [markdown]
# ## Any NumPyro model: an unbinned search
# A Gaussian peak of `nsig` events on an exponential background of `nbkg`
# events in [0, 10], as an extended unbinned likelihood. A generic model has no
# Asimov dataset of its own: `hypotest_model` takes the asymptotic width of
# the POI from the exact Hessian at the best fit (or from an Asimov dataset you
# pass as `asimov_args`).

# %%
LOW, HIGH = 0.0, 10.0


def peak_model(x):
    nsig = hepprob.param("nsig", 10.0, 0.0, 500.0)
    nbkg = hepprob.param("nbkg", 400.0, 0.0, 5000.0)
    slope = hepprob.param("slope", -0.2, -2.0, -0.01)
    signal_pdf = jnp.exp(npd.TruncatedNormal(5.0, 0.3, low=LOW, high=HIGH).log_prob(x))
    expo_norm = (jnp.exp(slope * HIGH) - jnp.exp(slope * LOW)) / slope
    background_pdf = jnp.exp(slope * x) / expo_norm
    # extended likelihood: Poisson(N; nsig + nbkg) x prod_i f(x_i), up to a constant
    density = nsig * signal_pdf + nbkg * background_pdf
    numpyro.factor("extended", jnp.sum(jnp.log(density)) - (nsig + nbkg))


rng = np.random.default_rng(3)
background = LOW - np.log(1 - rng.uniform(size=380) * (1 - np.exp(-0.2 * HIGH))) / 0.2
events = np.concatenate([background, rng.normal(5.0, 0.3, size=12)])
cls_unbinned, band_unbinned = hepprob.infer.hypotest_model(
    peak_model, events, poi="nsig", poi_value=30.0, return_expected_set=True
)
print(f"unbinned: CLs(nsig = 30) = {float(cls_unbinned):.4f}")
p0 = hepprob.infer.hypotest_model(
    peak_model, events, poi="nsig", poi_value=0.0, test_stat="q0"
)
print(f"unbinned: p0 = {float(p0):.3g}")

# %% [markdown]
# ## What to check
#
# The pulls of the constrained nuisance parameters with their constraints
# (post-fit error over pre-fit width): pulls within ±1 and bars shorter than 1
# where the data measure the parameter; and the limits above.

# %%
from hepprob.infer import diagnostics

ax = hplot.pulls(diagnostics.pulls(data, model))
show(ax.figure, "03_pulls")
print(
    f"95% CL upper limit on mu: observed {float(obs_limit):.3f}, expected "
    f"{float(exp_limits[2]):.3f} [{float(exp_limits[1]):.3f}, {float(exp_limits[3]):.3f}]"
)
