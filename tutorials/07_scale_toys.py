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
# # 07 — Scale: 10⁴ pseudo-experiments as one vectorised program
#
# ``hepprob.toys`` generates and fits pseudo-experiments in batches with
# ``jax.vmap``: one compiled program draws a batch of datasets, runs the
# bounded Newton fit on each and computes the Hesse errors. The program is
# compiled once per model structure and batch size, so the first call pays the
# compilation and later calls (new truth, new seed, more toys) only run it. The
# same code runs on a GPU unchanged, where the batches are much larger.
#
# Here: an extended unbinned fit of a Gaussian peak over an exponential
# background, 10⁴ toys, their timing, and the coverage of the Hesse errors.
#
# Set ``HEPPROB_TUTORIAL_QUICK=1`` for tiny settings (used by the test suite).

# %%
import os
import pathlib
import sys
import time

import jax
import matplotlib.pyplot as plt
import numpy as np
import numpyro
import scipy.stats

import hepprob

QUICK = os.environ.get("HEPPROB_TUTORIAL_QUICK") == "1"
N_TOYS = 64 if QUICK else 10_000
MAX_EVENTS = 400  # datasets are NaN-padded to this many events

# Figures: a notebook shows them under the cell; run as a script they are saved
# as PNG files in ``figures/`` (or ``$HEPPROB_TUTORIAL_OUTPUT``).
FIGURES = pathlib.Path(os.environ.get("HEPPROB_TUTORIAL_OUTPUT", "figures"))


def show(fig, name):
    FIGURES.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIGURES / f"{name}.png", dpi=100, bbox_inches="tight")
    if "ipykernel" not in sys.modules:  # a script: free the figure once saved
        plt.close(fig)


# %% [markdown]
# ## The model
#
# ``Extended`` is the extended likelihood Pois(N; ν_s + ν_b) Π f(x_i). Its
# ``max_events`` makes every dataset the same shape (NaN rows are padding),
# which is what lets toys with different N share one program.

# %%
LOW, HIGH = 0.0, 10.0


def model(x):
    nsig = hepprob.param("nsig", 50.0, 0.0, 500.0)
    nbkg = hepprob.param("nbkg", 200.0, 0.0, 2000.0)
    mean = hepprob.param("mean", 5.0, 4.0, 6.0)
    lam = hepprob.param("lam", -0.2, -2.0, 2.0)  # slope: negative = falling
    peak = hepprob.dist.Truncated(numpyro.distributions.Normal(mean, 0.4), LOW, HIGH)
    background = hepprob.dist.Exponential(lam, LOW, HIGH)
    pdf = hepprob.dist.Extended([peak, background], [nsig, nbkg], max_events=MAX_EVENTS)
    numpyro.sample("x", pdf, obs=x)


TRUTH = {"nsig": 40.0, "nbkg": 200.0, "mean": 5.0, "lam": -0.2}
example = np.full(MAX_EVENTS, np.nan)  # the shape of one dataset

# %% [markdown]
# ## Timing
#
# The first call compiles the generate-and-fit program; the second call, with a
# new seed, reuses it. The rate of the second call is what a large study gets.

# %%
start = time.perf_counter()
first = hepprob.toys(model, TRUTH, N_TOYS, jax.random.PRNGKey(0), example)
t_first = time.perf_counter() - start
start = time.perf_counter()
toys = hepprob.toys(model, TRUTH, N_TOYS, jax.random.PRNGKey(1), example)
t_second = time.perf_counter() - start
print(f"{N_TOYS} toys: first call {t_first:.1f} s (with compilation), "
      f"second {t_second:.2f} s = {N_TOYS / t_second:,.0f} toys/s "
      f"on {jax.devices()[0].platform.upper()}")  # fmt: skip
toys

# %% [markdown]
# ## What to check
#
# The pulls (fitted − truth)/error of the signal yield: a standard normal when
# the fit is unbiased and its Hesse errors are right. Their mean and width
# have statistical errors of 1/√n and 1/√(2n); the fraction of toys whose
# ±1σ interval covers the truth should be 68.3%.

# %%
i = toys.par_names.index("nsig")
ok = toys.converged
pulls = toys.pulls[ok, i]
coverage = float(np.mean(np.abs(pulls) < 1.0))
n = pulls.size
print(f"converged {int(ok.sum())}/{N_TOYS}; nsig pull mean {pulls.mean():+.3f} ± "
      f"{1 / np.sqrt(n):.3f}, width {pulls.std(ddof=1):.3f} ± {1 / np.sqrt(2 * n):.3f}; "
      f"1σ coverage {coverage:.3f} ± {np.sqrt(0.683 * 0.317 / n):.3f} (want 0.683)")  # fmt: skip

fig, ax = plt.subplots()
ax.hist(pulls, bins=40 if not QUICK else 10, range=(-4, 4), density=True,
        histtype="step", label=f"{n} toys")  # fmt: skip
grid = np.linspace(-4, 4, 200)
ax.plot(grid, scipy.stats.norm.pdf(grid), label="N(0, 1)")
ax.set_xlabel("pull of nsig")
ax.legend()
show(fig, "07_pulls")
