"""Generated HistFactory specs and parameter points for parity tests against pyhf."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import numpy as np
import pytest

SAMPLES = ["bkg1", "bkg2", "bkg3", "bkg4", "sig"]
LUMI_CONFIG = {
    "name": "lumi",
    "auxdata": [1.0],
    "sigmas": [0.04],
    "bounds": [[0.5, 1.5]],
    "inits": [1.0],
}


def generate_spec(seed: int) -> dict[str, Any]:
    """A random pyhf model spec: 1-4 channels, 1-5 samples, 1-30 bins, every modifier.

    Zero-yield bins, modifiers shared across samples and channels, a name used by
    both a normsys and a histosys, and measurement parameter configurations.
    """
    rng = np.random.default_rng(seed)
    n_chan = int(rng.integers(1, 5))
    channels = []
    use_lumi = bool(rng.integers(0, 2))
    for ci in range(n_chan):
        cname = f"ch{ci}"
        nb = int(rng.integers(1, 31)) if ci == 0 else int(rng.integers(1, 12))
        n_samp = int(rng.integers(1, 6))
        names = sorted(rng.choice(SAMPLES, size=n_samp, replace=False).tolist())
        if ci == 0 and "sig" not in names:
            names[-1] = "sig"
        stat_samples = set(
            rng.choice(
                names, size=int(rng.integers(0, len(names) + 1)), replace=False
            ).tolist()
        )
        samples = []
        for sname in names:
            nom = rng.uniform(0.5, 60.0, nb)
            if sname != "sig":
                nom[rng.uniform(size=nb) < 0.15] = 0.0
            mods: list[dict[str, Any]] = []
            if sname == "sig":
                mods.append({"name": "mu", "type": "normfactor", "data": None})
            if sname == "bkg1":
                mods.append({"name": "k_bkg1", "type": "normfactor", "data": None})
            for ns in ("ns_a", "ns_b", "shared_sys"):
                if rng.uniform() < 0.5:
                    lo, hi = rng.uniform(0.75, 0.98), rng.uniform(1.02, 1.3)
                    if rng.uniform() < 0.2:  # same-side variation
                        lo = 1.0 + 0.5 * (hi - 1.0)
                    mods.append(
                        {"name": ns, "type": "normsys", "data": {"hi": hi, "lo": lo}}
                    )
            for hs in ("hs_a", "shared_sys"):
                if rng.uniform() < 0.5:
                    up = nom * (1.0 + rng.uniform(0.0, 0.2, nb))
                    dn = nom * (1.0 - rng.uniform(-0.05, 0.2, nb))
                    mods.append(
                        {"name": hs, "type": "histosys",
                         "data": {"hi_data": up.tolist(), "lo_data": dn.tolist()}}
                    )  # fmt: skip
            if sname in stat_samples:
                err = np.sqrt(nom) * rng.uniform(0.1, 0.5, nb)
                if rng.uniform() < 0.3:
                    err[0] = 0.0
                mods.append({"name": f"stat_{cname}", "type": "staterror",
                             "data": err.tolist()})  # fmt: skip
            if rng.uniform() < 0.3:
                err = nom * rng.uniform(0.02, 0.2, nb)
                mods.append({"name": f"shape_{cname}_{sname}", "type": "shapesys",
                             "data": err.tolist()})  # fmt: skip
            if sname == "bkg2" and rng.uniform() < 0.4:
                mods.append(
                    {"name": f"sf_{cname}", "type": "shapefactor", "data": None}
                )
            if use_lumi and rng.uniform() < 0.7:
                mods.append({"name": "lumi", "type": "lumi", "data": None})
            samples.append({"name": sname, "data": nom.tolist(), "modifiers": mods})
        channels.append({"name": cname, "samples": samples})
    parameters = [dict(LUMI_CONFIG)]
    if rng.uniform() < 0.5:
        parameters.append({"name": "k_bkg1", "inits": [1.2], "bounds": [[0.1, 5.0]]})
    if rng.uniform() < 0.3:
        parameters.append({"name": "ns_b", "fixed": True})
    # channel order in the list need not be sorted: pyhf sorts
    channels = channels[::-1] if rng.uniform() < 0.5 else channels
    return json.loads(json.dumps({"channels": channels, "parameters": parameters}))


def random_points(pyhf_model: Any, rng: np.random.Generator, n: int, alpha_max: float):
    """Parameter points near the start values, within bounds."""
    init = np.asarray(pyhf_model.config.suggested_init(), dtype=float)
    bounds = np.asarray(pyhf_model.config.suggested_bounds(), dtype=float)
    out = []
    for _ in range(n):
        p = np.where(
            init == 0.0,
            rng.uniform(-alpha_max, alpha_max, init.size),
            init * rng.uniform(0.8, 1.25, init.size),
        )
        out.append(np.clip(p, bounds[:, 0], bounds[:, 1]))
    return np.array(out)


@pytest.fixture(scope="session")
def spec_factory():
    """``seed -> spec`` for the generated battery."""
    return generate_spec


@pytest.fixture(scope="session")
def points_factory():
    """``(pyhf_model, rng, n, alpha_max) -> (n, npars)`` parameter points."""
    return random_points


@pytest.fixture
def bindata(validation_dir: pathlib.Path):
    """``name -> parsed ../shared/validation/pyhf_json/<name>.json``."""

    def load(name: str) -> dict[str, Any]:
        return json.loads((validation_dir / "pyhf_json" / f"{name}.json").read_text())

    return load
