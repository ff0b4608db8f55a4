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
# # 01 — An unbinned maximum-likelihood fit
#
# A B-meson mass peak (Crystal Ball) on a falling exponential background, fitted
# event by event: values and Hesse errors, Minos intervals, a profile scan, a
# cross-check with iminuit, and a batch of pseudo-experiments fitted as one
# vectorised program.
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

import hepprob
from hepprob import plot as hplot
from hepprob.infer import minimize
from hepprob.model import ModelStructure, log_likelihood

QUICK = os.environ.get("HEPPROB_TUTORIAL_QUICK") == "1"


# Figures: a notebook shows them under the cell; run as a script they are saved
# as PNG files in ``figures/`` (or ``$HEPPROB_TUTORIAL_OUTPUT``).
FIGURES = pathlib.Path(os.environ.get("HEPPROB_TUTORIAL_OUTPUT", "figures"))


def show(fig, name):
    FIGURES.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIGURES / f"{name}.png", dpi=100, bbox_inches="tight")
    if "ipykernel" not in sys.modules:  # a script: free the figure once saved
        plt.close(fig)


N_EVENTS = 2_000 if QUICK else 20_000
N_TOYS, N_TOY_EVENTS = (4, 300) if QUICK else (200, 2_000)

# %% [markdown]
# ## The model
#
# A model is a plain NumPyro function. ``hepprob.param`` declares a free
# parameter with a start value and bounds; the data enter through an observed
# ``numpyro.sample`` site. The mass range is 5.0–5.6 GeV and both shapes are
# normalised on it. The tail parameters of the Crystal Ball are fixed (as if
# taken from simulation). ``Exponential(slope, low, high)`` is normalised on
# the range in closed form.

# %%
LOW, HIGH = 5.0, 5.6
ALPHA, N_TAIL = 1.5, 3.0


def mass_model(mass):
    mu = hepprob.param("mu", 5.27, 5.2, 5.35)
    sigma = hepprob.param("sigma", 0.03, 0.005, 0.1)
    lam = hepprob.param("lam", -2.0, -20.0, 20.0)  # slope: negative = falling
    frac = hepprob.param("frac", 0.5, 0.0, 1.0)
    signal = hepprob.dist.CrystalBall(mu, sigma, ALPHA, N_TAIL, low=LOW, high=HIGH)
    background = hepprob.dist.Exponential(lam, LOW, HIGH)  # density ∝ exp(lam·m)
    pdf = hepprob.dist.Mixture([signal, background], frac)
    numpyro.sample("mass", pdf, obs=mass)


# %% [markdown]
# ## A sample
#
# Signal events come from the Crystal Ball's exact sampler, background events
# from the inverse cdf of the truncated exponential.

# %%
TRUTH = {"mu": 5.28, "sigma": 0.02, "lam": -3.0, "frac": 0.3}


def generate(key, n):
    k1, k2 = jax.random.split(key)
    n_sig = round(TRUTH["frac"] * n)
    cb = hepprob.dist.CrystalBall(
        TRUTH["mu"], TRUTH["sigma"], ALPHA, N_TAIL, low=LOW, high=HIGH
    )
    u = jax.random.uniform(k2, (n - n_sig,))
    lam = TRUTH["lam"]
    bkg = LOW + jnp.log1p(u * jnp.expm1(lam * (HIGH - LOW))) / lam  # inverse cdf
    return jnp.concatenate([cb.sample(k1, (n_sig,)), bkg])


mass = generate(jax.random.key(42), N_EVENTS)
print(f"{mass.size} events, mean {float(mass.mean()):.4f} GeV")

# %% [markdown]
# ## The fit
#
# ``hepprob.fit`` minimises the negative log-likelihood with a pure-JAX
# bounded Newton method (exact gradient and Hessian from autodiff). The
# minimiser is compiled once per model; refitting new data of the same size
# reuses it. Errors come from the exact Hessian (Hesse).

# %%
result = hepprob.fit(mass_model, mass)
print(result)

# %%
print("values:", {k: round(v, 5) for k, v in result.values.items()})
print("errors:", {k: round(v, 5) for k, v in result.errors.items()})
print("correlation mu-sigma:", round(float(result.correlation[0, 1]), 3))

# %% [markdown]
# ``result.converged`` is the one flag to check; a fit that does not converge
# also raises a ``hepprob.errors.ConvergenceWarning``. ``to_dict()`` gives a
# JSON-ready summary.

# %%
assert result.converged
summary = result.to_dict()
print(sorted(summary))

# %% [markdown]
# ## Minos and profile likelihood
#
# Minos finds where the profiled NLL rises by half the χ² quantile (0.4945 for
# 68 %), both sides of all requested parameters at once. ``profile`` returns the
# profiled NLL on a grid, as one vectorised batch of fits.

# %%
intervals = result.minos(["mu", "frac"])
for name, (lo, hi) in intervals.items():
    v = result.values[name]
    print(
        f"{name}: {v:.5f}  -{v - lo:.5f} +{hi - v:.5f}  (Hesse ±{result.errors[name]:.5f})"
    )

mu_hat, mu_err = result.values["mu"], result.errors["mu"]
grid = np.linspace(mu_hat - 3 * mu_err, mu_hat + 3 * mu_err, 8)
delta = result.profile("mu", grid) - result.nll
print("2ΔNLL on the grid:", np.round(2 * delta, 2))

# %%
ax = hplot.profile_scan(grid, delta, name="mu [GeV]")
show(ax.figure, "01_profile_mu")

# %% [markdown]
# ## Fixing parameters and start values
#
# ``fixed`` takes ``{name: value}`` or a list of names (fixed at their start
# value); ``init`` moves start values. Fixed parameters get error 0.

# %%
narrow = hepprob.fit(mass_model, mass, fixed={"sigma": 0.02}, init={"frac": 0.25})
print("sigma fixed:", narrow.values["sigma"], narrow.errors["sigma"])
print("mu error with sigma fixed:", round(narrow.errors["mu"], 6))

# %% [markdown]
# ## Cross-check with iminuit
#
# ``hepprob.infer.nll`` gives the jitted NLL of a flat parameter vector with its
# exact gradient, ready for iminuit (it carries ``errordef = 0.5``).
# ``method="minuit"`` does the same inside ``hepprob.fit``.

# %%
nll = hepprob.infer.nll(mass_model, mass)
try:
    from iminuit import Minuit

    m = Minuit(nll, nll.init, grad=nll.grad, name=nll.par_names)
    m.limits = list(zip(nll.lower, nll.upper, strict=True))
    m.migrad()
    m.hesse()
    for name in nll.par_names:
        print(
            f"{name}: hepprob {result.values[name]:.6f} ± {result.errors[name]:.6f}"
            f"   iminuit {m.values[name]:.6f} ± {m.errors[name]:.6f}"
        )
except ImportError:
    print("iminuit not installed: skipping the cross-check")

# %% [markdown]
# ## Minimising a plain function
#
# With ``x0`` given, ``hepprob.fit`` minimises a JAX function of a vector
# (bounds through ``lower``/``upper``, names through ``par_names``). Hesse
# errors assume it is a negative log-likelihood.


# %%
def rosenbrock(x, a):
    return (a - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2


plain = hepprob.fit(
    rosenbrock, 1.0, x0=[-1.2, 1.0], lower=-2.0, upper=2.0, par_names=["x", "y"]
)
print(plain.values, plain.converged)

# %% [markdown]
# ## Pseudo-experiments as one program
#
# ``hepprob.infer.minimize`` is the pure, traceable minimiser behind ``fit``:
# ``jax.vmap`` over datasets turns a batch of toy fits into one vectorised,
# compiled program. Here we fit toys generated at the truth and look at the
# pulls of ``mu``.

# %%
structure = ModelStructure.from_model(mass_model, mass[:N_TOY_EVENTS])
x0 = jnp.asarray(structure.init)
lower, upper = jnp.asarray(structure.lower), jnp.asarray(structure.upper)


def toy_nll(x, data):
    return -log_likelihood(mass_model, structure, (data,))(x)


@jax.jit
def fit_toys(datasets):
    def one(data):
        res = minimize(toy_nll, x0, lower, upper, args=(data,))
        err = jnp.sqrt(jnp.diag(jnp.linalg.inv(jax.hessian(toy_nll)(res.x, data))))
        return res.x, err, res.converged

    return jax.vmap(one)(datasets)


# one big sample, shuffled and cut into toys (the signal count per toy varies
# as it would in real pseudo-experiments)
k_gen, k_perm = jax.random.split(jax.random.key(7))
pool = generate(k_gen, N_TOYS * N_TOY_EVENTS)
toys = jax.random.permutation(k_perm, pool).reshape(N_TOYS, N_TOY_EVENTS)
values, errors, ok = fit_toys(toys)
i_mu = structure.index("mu")
pulls = (values[:, i_mu] - TRUTH["mu"]) / errors[:, i_mu]
print(
    f"{int(ok.sum())}/{N_TOYS} toys converged; mu pull mean {float(pulls.mean()):.2f},"
    f" std {float(pulls.std()):.2f}"
)

# %% [markdown]
# ## What to check
#
# The fitted mass spectrum with its components and the pulls per bin (a good
# fit has pulls of order 1 without structure), the fitted values against the
# truth, and the toy pulls of ``mu`` (mean 0 and width 1 within their errors).

# %%
v = result.values
signal = hepprob.dist.CrystalBall(
    v["mu"], v["sigma"], ALPHA, N_TAIL, low=LOW, high=HIGH
)
background = hepprob.dist.Exponential(v["lam"], LOW, HIGH)


def density(x):
    return v["frac"] * np.exp(signal.log_prob(x)) + (1 - v["frac"]) * np.exp(
        background.log_prob(x)
    )


main, pull_ax = hplot.projection(
    density,
    np.asarray(mass),
    bins=60,
    range=(LOW, HIGH),
    components={
        "signal": lambda x: v["frac"] * np.exp(signal.log_prob(x)),
        "background": lambda x: (1 - v["frac"]) * np.exp(background.log_prob(x)),
    },
)
pull_ax.set_xlabel("mass [GeV]")
show(main.figure, "01_fit")
for name, truth in TRUTH.items():
    print(f"{name}: fitted {v[name]:.5f} ± {result.errors[name]:.5f}, truth {truth}")
