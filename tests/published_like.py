"""Generated pyhf-JSON workspaces shaped like published ATLAS search likelihoods.

Published SUSY search likelihoods (HEPData; e.g. ATLAS 1Lbb, arXiv:1909.09226)
share one structure: several one-bin control regions and a few multi-bin
signal regions, about nine background samples, each sample-channel carrying
one histosys *and* one normsys for most of ~100 experimental systematics (so
thousands of modifiers over ~120 parameters), a staterror per channel, lumi on
the Monte Carlo samples, a few background normfactors, a data-driven sample
with shapesys, and a background-only workspace plus a patchset that adds one
signal sample per channel (normfactor ``mu_SIG`` and its own systematics) per
grid point.

Everything here is deterministic from a seed. ``size`` picks a preset:

* ``"big"``: 8 channels (5 one-bin CRs, 3 three-bin SRs, 14 bins), 9
  backgrounds, ~5,500 histosys, ~3,900 normsys, 70 staterror, 46 lumi, 24
  normfactor, 6 shapesys; 121 parameters, 126 with a signal patch;
* ``"medium"``: 5 channels, 6 backgrounds, 30 systematics (~45 parameters);
* ``"small"``: 3 channels, 3 backgrounds, 6 systematics (tests: seconds);
* ``"tiny"``: 2 channels, 2 backgrounds, 3 systematics.

Importable from tests (``from published_like import ...`` with ``tests/`` on
``sys.path``) and from ``benchmarks/`` (which add ``tests/`` to ``sys.path``).
Run as a script to write a workspace and its patchset::

    python tests/published_like.py --size big --patches 125 --out /tmp/pub
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import pathlib
from typing import Any

import numpy as np

__all__ = [
    "SIZES",
    "Shape",
    "patch_names",
    "patchset",
    "signal_patch",
    "workspace",
]

POI = "mu_SIG"
SIGNAL = "signal"
LUMI = {
    "name": "lumi",
    "auxdata": [1.0],
    "sigmas": [0.017],
    "bounds": [[0.915, 1.085]],
    "inits": [1.0],
}


@dataclasses.dataclass(frozen=True)
class Shape:
    """Dimensions of a generated workspace.

    ``n_histosys`` experimental systematics act on every background
    sample-channel as histosys; ``n_normsys`` names (the histosys names first,
    then normsys-only theory names) give each sample-channel about
    ``normsys_fraction * n_normsys`` normsys. ``absent`` lists
    ``(channel, sample)`` pairs without that background.
    """

    n_cr: int
    n_sr: int
    sr_bins: int
    n_bkg: int
    n_norm_bkg: int  # backgrounds with a normfactor (present everywhere)
    n_histosys: int
    n_normsys: int
    normsys_fraction: float
    n_signal_sys: int  # signal-only normsys names added by a patch
    absent: tuple[tuple[int, int], ...] = ()
    data_driven: int = -1  # the background with shapesys (-1: none) ...
    data_driven_channels: tuple[int, ...] = (0,)  # ... present in these channels only


SIZES: dict[str, Shape] = {
    "big": Shape(
        n_cr=5, n_sr=3, sr_bins=3, n_bkg=9, n_norm_bkg=3, n_histosys=78,
        n_normsys=95, normsys_fraction=0.59, n_signal_sys=4, data_driven=8,
        data_driven_channels=(0, 1, 2, 3, 4, 5),
    ),
    "medium": Shape(
        n_cr=3, n_sr=2, sr_bins=3, n_bkg=6, n_norm_bkg=2, n_histosys=24,
        n_normsys=30, normsys_fraction=0.6, n_signal_sys=3, absent=((4, 3),),
        data_driven=5, data_driven_channels=(0, 3),
    ),
    "small": Shape(
        n_cr=2, n_sr=1, sr_bins=3, n_bkg=3, n_norm_bkg=1, n_histosys=4,
        n_normsys=6, normsys_fraction=0.7, n_signal_sys=2, absent=((2, 1),),
        data_driven=2, data_driven_channels=(0, 2),
    ),
    "tiny": Shape(
        n_cr=1, n_sr=1, sr_bins=2, n_bkg=2, n_norm_bkg=1, n_histosys=2,
        n_normsys=3, normsys_fraction=0.8, n_signal_sys=1, data_driven=1,
        data_driven_channels=(0, 1),
    ),
}  # fmt: skip


def _shape(size: str | Shape) -> Shape:
    if isinstance(size, Shape):
        return size
    if size not in SIZES:
        msg = f"size must be one of {sorted(SIZES)} or a Shape, got {size!r}"
        raise ValueError(msg)
    return SIZES[size]


def _channels(shape: Shape) -> list[tuple[str, int]]:
    crs = [(f"CR{i}_cuts", 1) for i in range(shape.n_cr)]
    srs = [(f"SR{chr(65 + i)}_bins", shape.sr_bins) for i in range(shape.n_sr)]
    return crs + srs


def _bkg_names(shape: Shape) -> list[str]:
    return [f"bkg{i}" for i in range(shape.n_bkg)]


def _sys_names(shape: Shape) -> list[str]:
    """Experimental names (histosys + normsys), then normsys-only theory names."""
    exp = [f"EXP_{i:02d}" for i in range(shape.n_histosys)]
    theo = [f"THEO_{i:02d}" for i in range(shape.n_normsys - shape.n_histosys)]
    return exp + theo


def _r(x: np.ndarray | float) -> Any:
    """Round to 6 significant digits (as published files are) and to JSON."""
    arr = np.asarray(x, dtype=np.float64)
    out = np.array([float(f"{v:.6g}") for v in arr.ravel()]).reshape(arr.shape)
    return out.tolist()


def _systematics(
    rng: np.random.Generator,
    shape: Shape,
    nominal: np.ndarray,
    scale: float,
    extra: tuple[str, ...] | list[str] = (),
) -> list[dict[str, Any]]:
    """histosys on every experimental name, normsys on a random part of all names."""
    names = _sys_names(shape)
    mods: list[dict[str, Any]] = []
    for name in names[: shape.n_histosys]:
        if rng.uniform() < 0.15:  # a null variation, common in published files
            hi = lo = nominal
        else:
            up = rng.normal(0.0, scale, nominal.size)
            ratio = rng.uniform(0.5, 1.5, nominal.size)
            down = np.where(rng.uniform(size=nominal.size) < 0.2, up * 0.3, -up * ratio)
            hi, lo = nominal * (1.0 + up), nominal * np.maximum(1.0 + down, 0.05)
        mods.append({"name": name, "type": "histosys",
                     "data": {"hi_data": _r(hi), "lo_data": _r(lo)}})  # fmt: skip
    for name in [*names, *extra]:
        if name not in extra and rng.uniform() > shape.normsys_fraction:
            continue
        up = rng.normal(0.0, scale)
        down = up * 0.4 if rng.uniform() < 0.2 else -up * rng.uniform(0.6, 1.4)
        hi, lo = 1.0 + up, max(1.0 + down, 0.05)
        mods.append({"name": name, "type": "normsys",
                     "data": {"hi": _r(hi), "lo": _r(lo)}})  # fmt: skip
    return mods


def workspace(size: str | Shape = "big", seed: int = 0) -> dict[str, Any]:
    """The background-only workspace (pyhf JSON 1.0.0) of ``size``, from ``seed``.

    Its measurement names ``mu_SIG`` as POI, which only the signal patches
    define (as published background-only files do).
    """
    shape = _shape(size)
    rng = np.random.default_rng(seed)
    chans = _channels(shape)
    bkgs = _bkg_names(shape)
    channels, observations = [], []
    for ci, (cname, nb) in enumerate(chans):
        is_cr = nb == 1
        samples = []
        for si, sname in enumerate(bkgs):
            if (ci, si) in shape.absent:
                continue
            dd = si == shape.data_driven
            if dd and ci not in shape.data_driven_channels:
                continue
            level = rng.uniform(50.0, 600.0) if is_cr else rng.uniform(0.5, 15.0)
            if si < shape.n_norm_bkg and is_cr and si == ci % max(shape.n_norm_bkg, 1):
                level *= 5.0  # each CR is enriched in one normalised background
            nominal = level * rng.uniform(0.5, 1.5, nb)
            mods: list[dict[str, Any]] = []
            if si < shape.n_norm_bkg:  # normalised in the CRs: no lumi
                mods.append({"name": f"mu_{sname}", "type": "normfactor", "data": None})
            else:
                mods.append({"name": "lumi", "type": "lumi", "data": None})
            stat = nominal * rng.uniform(0.02, 0.3, nb) / np.sqrt(1.0 + level / 50.0)
            mods.append({"name": f"staterror_{cname}", "type": "staterror",
                         "data": _r(stat)})  # fmt: skip
            if dd:
                mods.append({"name": f"shape_{sname}_{cname}", "type": "shapesys",
                             "data": _r(nominal * rng.uniform(0.1, 0.4, nb))})  # fmt: skip
            mods += _systematics(rng, shape, nominal, 0.04 if is_cr else 0.08)
            samples.append({"name": sname, "data": _r(nominal), "modifiers": mods})
        total = np.sum([s["data"] for s in samples], axis=0)
        observations.append(
            {"name": cname, "data": rng.poisson(total).astype(float).tolist()}
        )
        channels.append({"name": cname, "samples": samples})
    parameters = [dict(LUMI)]
    measurement = {"name": "NormalMeasurement",
                   "config": {"poi": POI, "parameters": parameters}}  # fmt: skip
    return {
        "channels": channels,
        "observations": observations,
        "measurements": [measurement],
        "version": "1.0.0",
    }


def signal_patch(
    bkg_workspace: dict[str, Any], point: int, size: str | Shape = "big", seed: int = 0
) -> list[dict[str, Any]]:
    """JSON Patch adding one signal sample (with ``mu_SIG``) to every channel.

    Grid point ``point`` sets the signal's strength and shape (heavier points:
    smaller, more signal-region-like yields). The signal has lumi, the
    channel's staterror, a histosys on every experimental systematic and
    normsys on some of them plus ``n_signal_sys`` signal-only ones.
    """
    shape = _shape(size)
    rng = np.random.default_rng([seed, 1_000_003, point])
    strength = 20.0 * np.exp(-0.02 * point) + 0.5
    extra = [f"SIG_{i}" for i in range(shape.n_signal_sys)]
    ops = []
    for ci, ch in enumerate(bkg_workspace["channels"]):
        nb = len(ch["samples"][0]["data"])
        is_cr = nb == 1
        level = strength * (rng.uniform(0.01, 0.2) if is_cr else rng.uniform(0.3, 1.5))
        nominal = level * rng.uniform(0.3, 1.7, nb)
        mods: list[dict[str, Any]] = [
            {"name": POI, "type": "normfactor", "data": None},
            {"name": "lumi", "type": "lumi", "data": None},
            {"name": f"staterror_{ch['name']}", "type": "staterror",
             "data": _r(nominal * rng.uniform(0.03, 0.15, nb))},
        ]  # fmt: skip
        mods += _systematics(rng, shape, nominal, 0.05, extra)
        value = {"name": SIGNAL, "data": _r(nominal), "modifiers": mods}
        path = f"/channels/{ci}/samples/{len(ch['samples'])}"
        ops.append({"op": "add", "path": path, "value": value})
    return ops


def patch_names(n_patches: int) -> list[tuple[str, list[float]]]:
    """``(name, [m1, m2])`` of ``n_patches`` grid points, as SUSY mass grids."""
    out = []
    side = int(np.ceil(np.sqrt(n_patches)))
    for k in range(n_patches):
        m1 = 200.0 + 50.0 * (k // side)
        m2 = 25.0 * (k % side)
        out.append((f"SIG_{m1:g}_{m2:g}", [m1, m2]))
    return out


def patchset(
    bkg_workspace: dict[str, Any],
    n_patches: int,
    size: str | Shape = "big",
    seed: int = 0,
) -> dict[str, Any]:
    """A pyhf patchset (format 1.0.0) of ``n_patches`` signal points for ``bkg_workspace``.

    The digest is sha256 of the workspace JSON with sorted keys (pyhf's
    convention), so ``pyhf.PatchSet.verify`` accepts it.
    """
    text = json.dumps(bkg_workspace, sort_keys=True, ensure_ascii=False)
    patches = []
    for k, (name, values) in enumerate(patch_names(n_patches)):
        ops = signal_patch(bkg_workspace, k, size, seed)
        patches.append({"metadata": {"name": name, "values": values}, "patch": ops})
    return {
        "metadata": {
            "description": "generated signal grid (tests/published_like.py)",
            "digests": {"sha256": hashlib.sha256(text.encode("utf8")).hexdigest()},
            "labels": ["m1", "m2"],
            "references": {"hepdata": "ins0000000"},  # a placeholder record
        },
        "patches": patches,
        "version": "1.0.0",
    }


def main() -> None:
    """Write ``BkgOnly.json``, ``patchset.json`` and ``patch.json`` (the first patch)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="big", choices=sorted(SIZES))
    parser.add_argument("--patches", type=int, default=125)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=".")
    args = parser.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ws = workspace(args.size, args.seed)
    ps = patchset(ws, args.patches, args.size, args.seed)
    (out / "BkgOnly.json").write_text(json.dumps(ws))
    (out / "patchset.json").write_text(json.dumps(ps))
    (out / "patch.json").write_text(json.dumps(ps["patches"][0]["patch"]))
    print(f"wrote {out}/BkgOnly.json, patchset.json ({args.patches}), patch.json")


if __name__ == "__main__":
    main()
