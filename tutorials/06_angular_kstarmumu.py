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
# # 06 — An angular analysis: B⁰ → K*⁰μ⁺μ⁻ with FL, AT2 and P5′
#
# The decay is described by three angles (cos θ_L, cos θ_K, φ) and the B mass.
# We write the three-angle differential decay rate as a custom density
# (`hepprob.dist.from_function`, normalised numerically on the box), multiply it
# with a mass shape (`hepprob.dist.Product`), add a background that is flat in
# the angles and exponential in mass, fit everything at once, and finally ask
# how well P5′ is measured with a toy study (`hepprob.toys`).
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
import numpyro
import numpyro.distributions as npd

import hepprob

QUICK = os.environ.get("HEPPROB_TUTORIAL_QUICK") == "1"
N_EVENTS = 600 if QUICK else 5_000
N_TOYS = 6 if QUICK else 200

# Figures: a notebook shows them under the cell; run as a script they are saved
# as PNG files in ``figures/`` (or ``$HEPPROB_TUTORIAL_OUTPUT``).
FIGURES = pathlib.Path(os.environ.get("HEPPROB_TUTORIAL_OUTPUT", "figures"))


def show(fig, name):
    FIGURES.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIGURES / f"{name}.png", dpi=100, bbox_inches="tight")
    if "ipykernel" not in sys.modules:  # a script: free the figure once saved
        plt.close(fig)


# %% [markdown]
# ## The angular density
#
# In the "P′ basis" with massless leptons and the S-wave neglected, the
# CP-averaged rate folded to the three observables FL, AT2 = 2 S3/(1 − FL) and
# P5′ = S5/√(FL(1 − FL)) reads (LHCb, JHEP 02 (2016) 104, eq. (2), with
# S3 = ½(1 − FL) AT2):
#
# $$\frac{1}{\Gamma}\frac{d^3\Gamma}{d\cos\theta_L\,d\cos\theta_K\,d\phi} \propto
# \tfrac34(1-F_L)\sin^2\theta_K + F_L\cos^2\theta_K
# + \tfrac14(1-F_L)\sin^2\theta_K\cos2\theta_L - F_L\cos^2\theta_K\cos2\theta_L
# + S_3\sin^2\theta_K\sin^2\theta_L\cos2\phi
# + S_5\sin2\theta_K\sin\theta_L\cos\phi .$$
#
# ``from_function`` turns the unnormalised shape into a distribution over
# ``(cos θ_L, cos θ_K, φ)``; its normaliser is a Gauss–Legendre quadrature,
# differentiable in FL, AT2 and P5′, so the fit gets exact gradients.


# %%
def angular_rate(x, FL, AT2, P5p):
    cos_l, cos_k, phi = x[..., 0], x[..., 1], x[..., 2]
    sin2_l, sin2_k = 1.0 - cos_l**2, 1.0 - cos_k**2
    cos2_l = 2.0 * cos_l**2 - 1.0
    s3 = 0.5 * (1.0 - FL) * AT2
    s5 = P5p * jnp.sqrt(FL * (1.0 - FL))
    return (
        0.75 * (1.0 - FL) * sin2_k
        + FL * cos_k**2
        + 0.25 * (1.0 - FL) * sin2_k * cos2_l
        - FL * cos_k**2 * cos2_l
        + s3 * sin2_k * sin2_l * jnp.cos(2.0 * phi)
        + s5 * 2.0 * cos_k * jnp.sqrt(sin2_k) * jnp.sqrt(sin2_l) * jnp.cos(phi)
    )


Angular = hepprob.dist.from_function(
    angular_rate, low=[-1.0, -1.0, -np.pi], high=[1.0, 1.0, np.pi]
)
FLAT_ANGLES = [
    npd.Uniform(-1.0, 1.0),
    npd.Uniform(-1.0, 1.0),
    npd.Uniform(-np.pi, np.pi),
]

# %% [markdown]
# ## Mass × angles, signal and background
#
# Signal: a Crystal Ball in the B mass times the angular rate. Background: an
# exponential in mass (``lam`` is its slope, negative = falling) times flat
# angles. ``Product`` joins independent densities of different observables
# into one 4-D density with events ``(mass, cos θ_L, cos θ_K, φ)``.

# %%
LOW, HIGH = 5.17, 5.70


def shapes(mu, sigma, lam, FL, AT2, P5p):
    mass_sig = hepprob.dist.CrystalBall(mu, sigma, 1.5, 5.0, low=LOW, high=HIGH)
    signal = hepprob.dist.Product([mass_sig, Angular(FL=FL, AT2=AT2, P5p=P5p)])
    background = hepprob.dist.Product(
        [hepprob.dist.Exponential(lam, LOW, HIGH), *FLAT_ANGLES]
    )
    return signal, background


def model(events):
    mu = hepprob.param("mu", 5.28, 5.25, 5.31)
    sigma = hepprob.param("sigma", 0.02, 0.005, 0.05)
    lam = hepprob.param("lam", -2.0, -10.0, 10.0)
    frac = hepprob.param("frac", 0.5, 0.0, 1.0)
    FL = hepprob.param("FL", 0.6, 0.05, 0.95)
    AT2 = hepprob.param("AT2", 0.0, -1.0, 1.0)
    P5p = hepprob.param("P5p", 0.0, -1.0, 1.0)
    signal, background = shapes(mu, sigma, lam, FL, AT2, P5p)
    numpyro.sample(
        "events", hepprob.dist.Mixture([signal, background], frac), obs=events
    )


TRUTH = {"mu": 5.28, "sigma": 0.02, "lam": -2.5, "frac": 0.6,
         "FL": 0.7, "AT2": -0.1, "P5p": -0.5}  # fmt: skip
signal, background = shapes(
    *(TRUTH[k] for k in ("mu", "sigma", "lam", "FL", "AT2", "P5p"))
)
truth_pdf = hepprob.dist.Mixture([signal, background], TRUTH["frac"])
events = truth_pdf.sample(jax.random.key(1), (N_EVENTS,))
print("events:", events.shape, "(mass, cos θ_L, cos θ_K, φ)")

# %% [markdown]
# ## The fit
#
# All seven parameters at once: the mass separates signal from background,
# the angles of the signal events measure FL, AT2 and P5′.

# %%
result = hepprob.fit(model, events)
result

# %%
result.minos(["P5p"])
for name in ("FL", "AT2", "P5p"):
    print(f"{name}: {result.values[name]:+.3f} ± {result.errors[name]:.3f}"
          f"   (truth {TRUTH[name]:+.2f})")  # fmt: skip

# %% [markdown]
# ## Projections
#
# The marginal of each observable, data against the fitted model: the model
# curve is the histogram of a large sample drawn from the fitted density
# (the exact marginals would need the integral over the other three axes).

# %%
v = result.values
fit_sig, fit_bkg = shapes(*(v[k] for k in ("mu", "sigma", "lam", "FL", "AT2", "P5p")))
fitted = hepprob.dist.Mixture([fit_sig, fit_bkg], v["frac"])
n_mc = 20 * N_EVENTS
model_sample = np.asarray(fitted.sample(jax.random.key(2), (n_mc,)))
data = np.asarray(events)
fig, axes = plt.subplots(1, 4, figsize=(14, 3.2))
labels = ["mass [GeV]", r"$\cos\theta_L$", r"$\cos\theta_K$", r"$\phi$"]
ranges = [(LOW, HIGH), (-1, 1), (-1, 1), (-np.pi, np.pi)]
for k, ax in enumerate(axes):
    counts, edges = np.histogram(data[:, k], bins=25, range=ranges[k])
    expected = np.histogram(model_sample[:, k], bins=edges)[0] * N_EVENTS / n_mc
    centres = 0.5 * (edges[1:] + edges[:-1])
    ax.errorbar(centres, counts, yerr=np.sqrt(counts), fmt="ko", ms=3, label="data")
    ax.stairs(expected, edges, color="C0", label="fit")
    ax.set_xlabel(labels[k])
axes[0].legend()
show(fig, "06_projections")

# %% [markdown]
# ## How well is P5′ measured? A toy study
#
# ``hepprob.toys`` generates pseudo-experiments from the model at the fitted
# values and refits each, all toys in one vectorised program. The spread of
# the fitted P5′ is its expected uncertainty at this sample size; the pulls
# (fitted − truth)/error check that the Hesse error covers it (mean 0, width 1).

# %%
toys = hepprob.toys(model, result.values, N_TOYS, jax.random.PRNGKey(3), events)
toys

# %%
i = toys.par_names.index("P5p")
ok = toys.converged
p5 = toys.values[ok, i]
summary = toys.pull_summary()["P5p"]
print(f"P5′: toy spread {np.std(p5, ddof=1):.3f}, mean Hesse error "
      f"{np.mean(toys.errors[ok, i]):.3f}, pull mean {summary['mean']:+.2f} ± "
      f"{summary['mean_error']:.2f}, pull width {summary['width']:.2f} ± "
      f"{summary['width_error']:.2f}")  # fmt: skip

# %% [markdown]
# ## What to check
#
# The fitted P5′ of the toys around the value they were generated at, with the
# Gaussian of the fit's Hesse error on top: the two widths agree when the
# error is right, and the toy mean sits on the generated value when the fit is
# unbiased.

# %%
fig, ax = plt.subplots()
ax.hist(p5, bins=max(5, ok.sum() // 8), density=True, histtype="step", label="toys")
width = float(np.mean(toys.errors[ok, i]))
grid = np.linspace(v["P5p"] - 4 * width, v["P5p"] + 4 * width, 200)
ax.plot(grid, np.exp(-0.5 * ((grid - v["P5p"]) / width) ** 2) / (width * np.sqrt(2 * np.pi)),
        label=f"N({v['P5p']:.2f}, {width:.3f}²) (Hesse)")  # fmt: skip
ax.axvline(v["P5p"], color="k", lw=1)
ax.set_xlabel("fitted P5′")
ax.legend()
show(fig, "06_p5p_toys")
print(f"P5′ = {v['P5p']:+.3f} ± {result.errors['P5p']:.3f} from {N_EVENTS} events; "
      f"converged toys: {int(ok.sum())}/{N_TOYS}")  # fmt: skip
