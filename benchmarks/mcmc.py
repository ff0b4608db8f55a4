"""MCMC speed: effective samples per second of the POI, hepprob vs PyMC vs NumPyro.

The workload is a HistFactory-like binned model: ``nbins`` Poisson bins with
expectation ``mu * s_i + b_i * exp(sum_k alpha_k * log(1 + d_ik))`` (normsys-like
exponential nuisances ``alpha_k`` with Normal(0, 1) priors, a flat prior on
``mu`` in [0, 10]). The same model is sampled three ways, with the same number
of warmup and kept draws, one chain:

* ``hepprob``: a model function with ``hepprob.param``, through ``hepprob.mcmc``;
* ``numpyro``: the same model written by hand with ``numpyro.sample``, NUTS;
* ``pymc``: the same model written natively in PyMC, ``pm.sample`` (PyMC's NUTS).

ESS is ArviZ's bulk ESS of ``mu``; the time is the wall time of the whole call,
compilation of the sampler included (that is what a user waits for), after a
short warm-up run of every sampler at the same shapes. Run::

    python benchmarks/mcmc.py            # the full table
    python benchmarks/mcmc.py --quick    # tiny settings, for a smoke test
"""

from __future__ import annotations

import argparse
import time

import arviz as az
import jax
import numpy as np
import numpyro
import numpyro.distributions as npd
from numpyro.infer import MCMC, NUTS

import hepprob


def make_problem(nbins: int, nnp: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Templates, relative systematic shifts and one Asimov-like dataset."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0.0, 1.0, nbins)
    sig = 10.0 * np.exp(-0.5 * ((x - 0.5) / 0.08) ** 2)
    bkg = 100.0 * np.exp(-2.0 * x) + 5.0
    shift = rng.uniform(-0.05, 0.05, size=(nnp, nbins))  # per nuisance, per bin
    data = rng.poisson(1.0 * sig + bkg).astype(np.float64)
    return {"sig": sig, "bkg": bkg, "log_shift": np.log1p(shift), "data": data}


def hepprob_model(problem: dict[str, np.ndarray]):
    sig, bkg, log_shift = problem["sig"], problem["bkg"], problem["log_shift"]
    nnp = log_shift.shape[0]

    def model(data):
        mu = hepprob.param("mu", 1.0, 0.0, 10.0)
        alpha = hepprob.param(
            "alpha",
            np.zeros(nnp),
            -5.0,
            5.0,
            prior=npd.Normal(0.0, 1.0).expand([nnp]).to_event(1),
        )
        expected = mu * sig + bkg * jax.numpy.exp(alpha @ log_shift)
        numpyro.sample("data", npd.Poisson(expected).to_event(1), obs=data)

    return model


def numpyro_model(problem: dict[str, np.ndarray]):
    sig, bkg, log_shift = problem["sig"], problem["bkg"], problem["log_shift"]
    nnp = log_shift.shape[0]

    def model(data):
        mu = numpyro.sample("mu", npd.Uniform(0.0, 10.0))
        alpha = numpyro.sample("alpha", npd.Normal(0.0, 1.0).expand([nnp]).to_event(1))
        expected = mu * sig + bkg * jax.numpy.exp(alpha @ log_shift)
        numpyro.sample("data", npd.Poisson(expected).to_event(1), obs=data)

    return model


def run_hepprob(problem, warmup, draws, seed):
    t = time.perf_counter()
    idata = hepprob.mcmc(
        hepprob_model(problem),
        problem["data"],
        num_warmup=warmup,
        num_samples=draws,
        seed=seed,
        progress_bar=False,
        log_likelihood=False,
    )
    return time.perf_counter() - t, idata.posterior["mu"].values


def run_numpyro(problem, warmup, draws, seed):
    t = time.perf_counter()
    sampler = MCMC(
        NUTS(numpyro_model(problem)),
        num_warmup=warmup,
        num_samples=draws,
        progress_bar=False,
    )
    sampler.run(jax.random.PRNGKey(seed), problem["data"])
    mu = np.asarray(sampler.get_samples()["mu"])[None, :]
    return time.perf_counter() - t, mu


def run_pymc(problem, warmup, draws, seed):
    import pymc as pm
    import pytensor.tensor as pt

    t = time.perf_counter()
    nnp = problem["log_shift"].shape[0]
    with pm.Model():
        mu = pm.Uniform("mu", 0.0, 10.0)
        alpha = pm.Normal("alpha", 0.0, 1.0, shape=nnp)
        expected = mu * problem["sig"] + problem["bkg"] * pt.exp(
            pt.dot(alpha, problem["log_shift"])
        )
        pm.Poisson("data", mu=expected, observed=problem["data"])
        idata = pm.sample(
            draws=draws,
            tune=warmup,
            chains=1,
            cores=1,
            random_seed=seed,
            progressbar=False,
            compute_convergence_checks=False,
        )
    return time.perf_counter() - t, idata.posterior["mu"].values


def ess(draws: np.ndarray) -> float:
    data = az.convert_to_dataset({"mu": np.atleast_2d(draws)})
    return float(az.ess(data, method="bulk")["mu"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny settings")
    args = parser.parse_args()
    if args.quick:
        sizes, warmup, draws = [(20, 10)], 200, 200
    else:
        sizes, warmup, draws = [(20, 10), (50, 30), (200, 100)], 1000, 1000
    runners = {"hepprob": run_hepprob, "numpyro": run_numpyro, "pymc": run_pymc}
    print(f"jax devices: {jax.devices()}; warmup={warmup}, draws={draws}, 1 chain")
    header = f"{'bins':>5} {'NPs':>4} {'sampler':>8} {'wall [s]':>9} {'ESS(mu)':>8} {'ESS/s':>8} {'mean mu':>8}"
    print(header)
    print("-" * len(header))
    for nbins, nnp in sizes:
        problem = make_problem(nbins, nnp)
        # warm-up at the same shapes: imports and the first-use compilation of
        # small eager ops are paid here, not by whichever sampler runs first
        for runner in runners.values():
            runner(problem, 20, 20, seed=0)
        for name, runner in runners.items():
            wall, mu = runner(problem, warmup, draws, seed=1)
            e = ess(mu)
            print(
                f"{nbins:5d} {nnp:4d} {name:>8} {wall:9.2f} {e:8.0f} {e / wall:8.1f} {mu.mean():8.3f}"
            )


if __name__ == "__main__":
    main()
