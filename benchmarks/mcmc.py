"""MCMC speed: effective samples per second of the POI, hepprob vs PyMC vs NumPyro.

The workload is a HistFactory-like binned model: ``nbins`` Poisson bins with
expectation ``mu * s_i + b_i * exp(sum_k alpha_k * log(1 + d_ik))`` (normsys-like
exponential nuisances ``alpha_k`` with Normal(0, 1) priors, a flat prior on
``mu`` in [0, 10]). The same model is sampled three ways, with the same number
of chains, warmup and kept draws, one run of this script (each sampler in
processes of its own, so none inherits another's compiled kernels):

* ``hepprob``: a model function with ``hepprob.param``, through ``hepprob.mcmc``;
* ``numpyro``: the same model written by hand with ``numpyro.sample``, NumPyro's
  ``MCMC(NUTS(model))``, started like hepprob (a prior draw), so both run the
  same algorithm and draw the same samples;
* ``pymc``: the same model written natively in PyMC, ``pm.sample`` (PyMC's own
  NUTS, default settings: with several chains, ``pm.sample``'s default of one
  process per core; ``--pymc-cores 1`` runs them in one process).

Each sampler is timed three times per model size, wall time of the whole call:

* ``cold0``: its first call at these shapes, in a fresh process of its own
  with an empty JAX persistent compilation cache (tracing and compilation
  included; the sampler ran once before at other, tiny shapes, so imports and
  other one-off costs of the process are not in);
* ``cold``: the same in a second fresh process, whose JAX disk cache holds
  what the first compiled (hepprob turns that cache on at import, so it serves
  the hand-written NumPyro model too; PyMC caches its compiled C on disk);
* ``warm``: a second call at the same shapes with another dataset and seed, as
  in a scan over toys: hepprob gets the same model function again (and reuses
  its compiled sampler), NumPyro the same ``MCMC`` object with
  ``jit_model_args=True``, PyMC the same ``pm.Model`` with ``pm.set_data``.

PyMC's compiledir is left as it is (warm after any earlier PyMC run). ESS is
ArviZ's bulk ESS of ``mu``. Run::

    python benchmarks/mcmc.py                 # 1000 + 1000 draws, three sizes
    python benchmarks/mcmc.py --draws 5000    # longer chains (compilation amortised)
    python benchmarks/mcmc.py --quick         # tiny settings, for a smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import arviz as az
import jax
import numpy as np
import numpyro
import numpyro.distributions as npd
from numpyro.infer import MCMC, NUTS, init_to_sample

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


def make_data(problem: dict[str, np.ndarray], seed: int) -> np.ndarray:
    """Another Poisson dataset of the same model (for the warm call)."""
    rng = np.random.default_rng(1000 + seed)
    return rng.poisson(problem["sig"] + problem["bkg"]).astype(np.float64)


class HepprobRunner:
    """``hepprob.mcmc`` on one model function, called again for the warm run."""

    def __init__(self, problem, warmup, draws, chains):
        self.model = hepprob_model(problem)
        self.settings = {"num_warmup": warmup, "num_samples": draws}
        self.settings["num_chains"] = chains

    def __call__(self, data, seed):
        idata = hepprob.mcmc(
            self.model,
            data,
            seed=seed,
            progress_bar=False,
            log_likelihood=False,
            **self.settings,
        )
        return idata.posterior["mu"].values


class NumpyroRunner:
    """One ``MCMC`` object (``jit_model_args``: data as arguments), run again."""

    def __init__(self, problem, warmup, draws, chains):
        kernel = NUTS(numpyro_model(problem), init_strategy=init_to_sample)
        self.sampler = MCMC(
            kernel,
            num_warmup=warmup,
            num_samples=draws,
            num_chains=chains,
            chain_method="vectorized",
            progress_bar=False,
            jit_model_args=True,
        )

    def __call__(self, data, seed):
        self.sampler.run(jax.random.PRNGKey(seed), jax.numpy.asarray(data))
        return np.asarray(self.sampler.get_samples(group_by_chain=True)["mu"])


class PymcRunner:
    """One ``pm.Model`` with the data in ``pm.Data``; ``pm.sample`` each call."""

    def __init__(self, problem, warmup, draws, chains):
        import pymc as pm
        import pytensor.tensor as pt

        self.pm = pm
        nnp = problem["log_shift"].shape[0]
        self.settings = {"draws": draws, "tune": warmup, "chains": chains}
        cores = os.environ.get("BENCH_PYMC_CORES")
        self.cores = {"cores": int(cores)} if cores else {}
        with pm.Model() as self.model:
            data = pm.Data("obs", problem["data"])
            mu = pm.Uniform("mu", 0.0, 10.0)
            alpha = pm.Normal("alpha", 0.0, 1.0, shape=nnp)
            expected = mu * problem["sig"] + problem["bkg"] * pt.exp(
                pt.dot(alpha, problem["log_shift"])
            )
            pm.Poisson("data", mu=expected, observed=data)

    def __call__(self, data, seed):
        with self.model:
            self.pm.set_data({"obs": data})
            idata = self.pm.sample(
                random_seed=seed,
                progressbar=False,
                compute_convergence_checks=False,
                **self.settings,
                **self.cores,
            )
        return idata.posterior["mu"].values


def ess(draws: np.ndarray) -> float:
    data = az.convert_to_dataset({"mu": np.atleast_2d(draws)})
    return float(az.ess(data, method="bulk")["mu"])


RUNNERS = {"hepprob": HepprobRunner, "numpyro": NumpyroRunner, "pymc": PymcRunner}


def measure(name: str, nbins: int, nnp: int, draws: int, chains: int) -> list:
    """Cold and warm call of one sampler in this (fresh) process."""
    make = RUNNERS[name]
    # untimed warm-up at other shapes: imports, PyMC's C modules, JAX's eager
    # kernels of the scalar bookkeeping are then not charged to the cold call
    tiny = make_problem(3, 2)
    make(tiny, 20, 20, chains)(tiny["data"], 0)
    problem = make_problem(nbins, nnp)
    run = make(problem, draws, draws, chains)
    rows = []
    for call, data, seed in (
        ("cold", problem["data"], 1),
        ("warm", make_data(problem, 2), 2),
    ):
        t = time.perf_counter()
        mu = run(data, seed)
        wall = time.perf_counter() - t
        rows.append([call, wall, ess(mu), float(mu.mean())])
    return rows


def _child(cmd: list[str], env: dict[str, str], name: str) -> list:
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    lines = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
    if not lines:
        print(out.stderr[-3000:])
        raise SystemExit(f"{name}: {' '.join(cmd[2:4])} failed")
    return json.loads(lines[-1][len("RESULT ") :])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny settings")
    parser.add_argument("--draws", type=int, default=1000, help="warmup = draws")
    parser.add_argument("--chains", type=int, default=1)
    parser.add_argument(
        "--pymc-cores", type=int, help="PyMC processes (default: pm.sample's own)"
    )
    parser.add_argument(
        "--sizes", default="20x10,50x30,200x100", help="bins x NPs, comma separated"
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)  # child: "name,bins,nps"
    args = parser.parse_args()
    draws = 200 if args.quick else args.draws
    if args.one:
        name, nbins, nnp = args.one.split(",")
        rows = measure(name, int(nbins), int(nnp), draws, args.chains)
        print("RESULT " + json.dumps(rows))
        return
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    if args.quick:
        sizes = [(20, 10)]
    print(
        f"jax devices: {jax.devices()}; warmup={draws}, draws={draws}, "
        f"chains={args.chains}; cold0/cold: first call in a fresh process with "
        "an empty / a filled JAX disk cache; warm: second call"
    )
    header = (
        f"{'bins':>5} {'NPs':>4} {'sampler':>8} {'call':>5} {'wall [s]':>9} "
        f"{'ESS(mu)':>8} {'ESS/s':>8} {'mean mu':>8}"
    )
    print(header)
    print("-" * len(header))
    rates = {}
    for nbins, nnp in sizes:
        for name in RUNNERS:
            cmd = [sys.executable, __file__, "--one", f"{name},{nbins},{nnp}"]
            cmd += ["--draws", str(draws), "--chains", str(args.chains)]
            with tempfile.TemporaryDirectory() as jax_cache:
                # a fresh JAX disk cache: empty for the first process, holding
                # what the first compiled for the second
                env = {**os.environ, "HEPPROB_COMPILATION_CACHE": jax_cache}
                if args.pymc_cores:
                    env["BENCH_PYMC_CORES"] = str(args.pymc_cores)
                first, second = (_child(cmd, env, name) for _ in range(2))
            rows = [("cold0", *first[0][1:]), *second]
            for call, wall, e, mean in rows:
                rates[nbins, nnp, name, call] = e / wall
                print(
                    f"{nbins:5d} {nnp:4d} {name:>8} {call:>5} {wall:9.2f} {e:8.0f} "
                    f"{e / wall:8.1f} {mean:8.3f}",
                    flush=True,
                )
    print("\nESS/s ratios, hepprob / peer (goal: >= 1 vs numpyro, >= 3 vs pymc)")
    for nbins, nnp in sizes:
        for call in ("cold0", "cold", "warm"):
            ours = rates[nbins, nnp, "hepprob", call]
            vs = "  ".join(
                f"vs {peer} {ours / rates[nbins, nnp, peer, call]:5.2f}"
                for peer in ("numpyro", "pymc")
            )
            print(f"{nbins:5d} {nnp:4d} {call:>5}  {vs}")


if __name__ == "__main__":
    main()
