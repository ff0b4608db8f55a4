"""NUTS programs stored on disk: a new process loads them and samples correctly.

Each case runs fresh interpreters sharing one cache directory. The reference is
NumPyro's own ``MCMC`` on a hand-written copy of the model with the same key:
a program served from the store must give the same draws (to rounding for
vectorised chains, whose programs XLA compiles differently from NumPyro's), and
one that was stored for other constants must not be served.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hepprob import _program_store

PROGRAM = """
import json, sys
import jax, numpy as np, numpyro, numpyro.distributions as dist
from numpyro.infer import MCMC, NUTS, init_to_sample
import hepprob
from hepprob import _program_store

scale, chains, forbid_export = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
if forbid_export:  # the programs must come from the store
    def _refuse(*args):
        raise AssertionError("a stored program was traced and exported again")
    _program_store._export = _refuse
sig, bkg = np.array([1.0, 3.0, 1.0]), scale * np.array([20.0, 10.0, 5.0])

def model(n):
    mu = hepprob.param("mu", 1.0, 0.0, 10.0)
    numpyro.sample("n", dist.Poisson(mu * sig + bkg).to_event(1), obs=n)

def hand_written(n):
    mu = numpyro.sample("mu", dist.Uniform(0.0, 10.0))
    numpyro.sample("n", dist.Poisson(mu * sig + bkg).to_event(1), obs=n)

data = np.array([22.0, 16.0, 6.0]) * scale
settings = dict(num_warmup=150, num_samples=150, num_chains=chains)
ours = hepprob.mcmc(model, data, seed=3, progress_bar=False, **settings)
ref = MCMC(NUTS(hand_written, init_strategy=init_to_sample), progress_bar=False,
           chain_method="vectorized", jit_model_args=True, **settings)
ref.run(jax.random.PRNGKey(3), jax.numpy.asarray(data))
np.testing.assert_allclose(ours.posterior["mu"].values,
                           np.asarray(ref.get_samples(group_by_chain=True)["mu"]),
                           rtol=1e-9 if chains == 1 else 1e-6, atol=1e-12)
folder = _program_store.directory()
print(json.dumps(None if folder is None else sorted(p.name for p in folder.iterdir())))
"""


def _run(cache: str, scale: float, chains: int, forbid_export: bool) -> list | None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION")}
    env["HEPPROB_COMPILATION_CACHE"] = cache
    args = [str(scale), str(chains), "1" if forbid_export else "0"]
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("chains", [1, 3])
def test_stored_programs_are_loaded_and_sample_like_numpyro(
    tmp_path: pathlib.Path, chains: int
) -> None:
    cache = str(tmp_path / "cc")
    first = _run(cache, 1.0, chains, forbid_export=False)
    assert len(first) == 2  # the start-point search and the NUTS loop
    assert all(name.endswith(".hepprob-program") for name in first)
    # a new process loads both instead of tracing them, and draws the same
    assert _run(cache, 1.0, chains, forbid_export=True) == first
    if chains > 1:
        return
    # other constants in the model: other programs, not the stored ones
    other = _run(cache, 2.0, chains, forbid_export=False)
    assert set(first) < set(other)
    assert len(other) == 4
    # damaged entries are rebuilt, and then served
    for name in first:
        (tmp_path / "cc" / "programs" / name).write_bytes(b"not a program")
    assert _run(cache, 1.0, chains, forbid_export=False) == other
    assert _run(cache, 1.0, chains, forbid_export=True) == other


def test_no_store_when_the_compilation_cache_is_off(tmp_path: pathlib.Path) -> None:
    assert _run("off", 1.0, 1, forbid_export=False) is None


def test_probe_key_names_the_constants_and_settings(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(_program_store, "directory", lambda: tmp_path)

    def probe_of(template: np.ndarray):
        return lambda x: jnp.sum(template * x)

    x = (jnp.ones(3),)
    a = np.array([1.0, 2.0, 3.0])
    key = _program_store.probe_key(probe_of(a), x, "settings")
    assert key == _program_store.probe_key(probe_of(a.copy()), x, "settings")
    assert key != _program_store.probe_key(probe_of(a + 1e-12), x, "settings")
    assert key != _program_store.probe_key(probe_of(a), x, "other settings")
    assert key != _program_store.probe_key(probe_of(a), (jnp.ones(4),), "settings")
    # an untraceable probe gives no key (the program is then jitted as usual)
    assert _program_store.probe_key(lambda x: float(x[0]), x) is None


def test_models_with_unbounded_parameters_get_a_key(monkeypatch, tmp_path) -> None:
    """An improper (flat) prior cannot be sampled; the probe draws as the start
    rule does, so such models are stored too, under keys of their own."""
    monkeypatch.setattr(_program_store, "directory", lambda: tmp_path)
    import numpyro
    import numpyro.distributions as dist

    import hepprob
    from hepprob._program_cache import split_arguments
    from hepprob._sampler import _probe

    def model_of(upper):
        def model(x):
            m = hepprob.param("m", 0.0, None, upper)
            numpyro.sample("x", dist.Normal(m, 1.0), obs=x)

        return model

    arrays, rebuild, _ = split_arguments((jnp.ones(5),), {})
    example = (jax.random.PRNGKey(0), arrays)
    flat = _program_store.probe_key(_probe(model_of(None), rebuild), example)
    bounded = _program_store.probe_key(_probe(model_of(3.0), rebuild), example)
    assert flat is not None
    assert bounded is not None
    assert flat != bounded


def test_no_key_and_no_tracing_when_the_store_is_off(monkeypatch) -> None:
    monkeypatch.setattr(_program_store, "directory", lambda: None)

    def probe(x):
        raise AssertionError("traced although the store is off")

    assert _program_store.probe_key(probe, (jnp.ones(2),)) is None
