"""The persistent compilation cache: where it goes, how to turn it off, reuse.

Each case runs a fresh interpreter, since the cache is configured at import.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

# Prints where JAX caches and a value with a closed form: d²/dx² sum(x^4) = 12x².
# The program caches every compile (threshold 0), so that a tiny one is written.
PROGRAM = """
import json, jax, jax.numpy as jnp
import hepprob
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
x = jnp.linspace(0.1, 1.0, 4)
h = jax.jit(jax.hessian(lambda y: jnp.sum(y**4)))(x)
print(json.dumps({"dir": jax.config.jax_compilation_cache_dir,
                  "diag": [float(v) for v in jnp.diag(h)], "x": x.tolist()}))
"""


def _run(env_updates: dict[str, str | None]) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION")}
    env.pop("HEPPROB_COMPILATION_CACHE", None)
    for key, value in env_updates.items():
        if value is not None:
            env[key] = value
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_cache_in_given_directory_is_written_and_reused(tmp_path: pathlib.Path) -> None:
    cache = tmp_path / "cc"
    first = _run({"HEPPROB_COMPILATION_CACHE": str(cache)})
    assert first["dir"] == str(cache)
    entries = sorted(p.name for p in cache.iterdir() if p.name.endswith("-cache"))
    assert entries, "the program was not written to the cache"
    second = _run({"HEPPROB_COMPILATION_CACHE": str(cache)})
    # Results from a loaded executable equal the closed form 12 x^2.
    for got, x in zip(second["diag"], second["x"], strict=True):
        assert got == pytest.approx(12 * x**2, rel=1e-14)
    after = sorted(p.name for p in cache.iterdir() if p.name.endswith("-cache"))
    assert after == entries, "the second process compiled again instead of loading"


@pytest.mark.parametrize("word", ["off", "0", "False"])
def test_cache_can_be_switched_off(word: str) -> None:
    assert _run({"HEPPROB_COMPILATION_CACHE": word})["dir"] is None


def test_default_directory_follows_xdg(tmp_path: pathlib.Path) -> None:
    got = _run({"XDG_CACHE_HOME": str(tmp_path)})["dir"]
    assert got == str(tmp_path / "hepprob" / "jax")


def test_users_own_jax_setting_wins(tmp_path: pathlib.Path) -> None:
    mine = tmp_path / "mine"
    got = _run(
        {"JAX_COMPILATION_CACHE_DIR": str(mine), "HEPPROB_COMPILATION_CACHE": "x"}
    )["dir"]
    assert got == str(mine)
