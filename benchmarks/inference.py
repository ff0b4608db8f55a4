"""Benchmark: fit, asymptotic hypotest and a 20-point limit scan, hepprob vs pyhf.

Plain script (not a test). Builds a multi-channel workspace with about 100
nuisance parameters (shapesys, normsys, histosys, staterror, lumi) and times

* one maximum-likelihood fit (``mle.fit``),
* one asymptotic CLs test (``hypotest`` with the expected band),
* a 20-point upper-limit scan (``upper_limit(scan=...)``),

for hepprob (compiled once, then timed) and pyhf 0.7 with the numpy and the jax
backends (scipy optimiser, pyhf's defaults). Prints a Markdown table and the
agreement of the numbers.

    python benchmarks/inference.py [--channels 4] [--bins 10] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pyhf

import hepprob
from hepprob.histfactory import Workspace
from hepprob.infer import mle


def make_spec(n_channels: int, n_bins: int, seed: int = 0) -> dict[str, Any]:
    """A random but reproducible workspace; nuisances: 2 per bin + 3 per channel + lumi."""
    rng = np.random.default_rng(seed)
    lumi = {"name": "lumi", "type": "lumi", "data": None}
    channels, observations = [], []
    for c in range(n_channels):
        sig = rng.uniform(2, 12, n_bins)
        bkg1 = rng.uniform(30, 120, n_bins)
        bkg2 = rng.uniform(10, 40, n_bins)
        shift = rng.uniform(0.02, 0.08, n_bins)
        channels.append(
            {
                "name": f"ch{c}",
                "samples": [
                    {
                        "name": "signal",
                        "data": sig.tolist(),
                        "modifiers": [
                            {"name": "mu", "type": "normfactor", "data": None},
                            lumi,
                        ],
                    },
                    {
                        "name": "bkg1",
                        "data": bkg1.tolist(),
                        "modifiers": [
                            {
                                "name": f"shape_ch{c}",
                                "type": "shapesys",
                                "data": (0.08 * bkg1).tolist(),
                            },
                            {
                                "name": "bkg1_norm",
                                "type": "normsys",
                                "data": {"hi": 1.06, "lo": 0.95},
                            },
                            {
                                "name": f"bkg1_shape_ch{c}",
                                "type": "histosys",
                                "data": {
                                    "hi_data": (bkg1 * (1 + shift)).tolist(),
                                    "lo_data": (bkg1 * (1 - shift)).tolist(),
                                },
                            },
                            lumi,
                        ],
                    },
                    {
                        "name": "bkg2",
                        "data": bkg2.tolist(),
                        "modifiers": [
                            {
                                "name": f"stat_ch{c}",
                                "type": "staterror",
                                "data": (0.1 * bkg2).tolist(),
                            },
                            {
                                "name": f"bkg2_norm_ch{c}",
                                "type": "normsys",
                                "data": {"hi": 1.1, "lo": 0.9},
                            },
                            lumi,
                        ],
                    },
                ],
            }
        )
        observations.append(
            {"name": f"ch{c}", "data": rng.poisson(bkg1 + bkg2 + 0.3 * sig).tolist()}
        )
    return {
        "channels": channels,
        "observations": observations,
        "measurements": [
            {
                "name": "meas",
                "config": {
                    "poi": "mu",
                    "parameters": [
                        {
                            "name": "lumi",
                            "auxdata": [1.0],
                            "sigmas": [0.02],
                            "bounds": [[0.9, 1.1]],
                            "inits": [1.0],
                        }
                    ],
                },
            }
        ],
        "version": "1.0.0",
    }


def best_time(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Smallest wall time of ``repeat`` calls (results blocked until ready)."""
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        _block(out)
        best = min(best, time.perf_counter() - t0)
    return best, out


def _block(out: Any) -> None:
    if isinstance(out, (tuple, list)):
        for o in out:
            _block(o)
    elif hasattr(out, "block_until_ready"):
        out.block_until_ready()


def time_pyhf(
    backend: str,
    spec: dict[str, Any],
    data: np.ndarray,
    scan: np.ndarray,
    repeat: int,
    scan_points: int,
) -> tuple[dict[str, float], dict[str, Any]]:
    """Times and results of pyhf with one backend.

    pyhf's scan is one hypotest per point, timed once; with ``scan_points`` below
    ``len(scan)`` only that many points (spread over the scan) are run and the
    time is scaled to the full scan (reported as extrapolated).
    """
    sub = scan[np.linspace(0, len(scan) - 1, min(scan_points, len(scan))).astype(int)]
    pyhf.set_backend(backend)
    pmodel = pyhf.Workspace(spec).model()
    pdata = pyhf.tensorlib.astensor(data)
    pyhf.infer.mle.fit(pdata, pmodel)  # warm-up (the jax backend traces)
    tasks = {
        "fit": lambda: pyhf.infer.mle.fit(pdata, pmodel, return_fitted_val=True),
        "hypotest": lambda: pyhf.infer.hypotest(
            1.0, pdata, pmodel, return_expected_set=True
        ),
        "scan": lambda: pyhf.infer.intervals.upper_limits.upper_limit(
            pdata, pmodel, scan=sub
        ),
    }
    times, results = {}, {}
    for label, fn in tasks.items():
        reps = 1 if label == "scan" else repeat
        times[label], results[label] = best_time(fn, reps)
    times["scan"] *= len(scan) / len(sub)
    return times, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=4)
    parser.add_argument("--bins", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--points", type=int, default=20)
    parser.add_argument(
        "--pyhf-scan-points",
        type=int,
        default=20,
        help="points of the scan that pyhf runs (time scaled to --points)",
    )
    args = parser.parse_args()

    spec = make_spec(args.channels, args.bins)
    ws = Workspace(spec)
    model = ws.model()
    data = np.asarray(ws.data(model))
    print(f"workspace: {model.config.npars} parameters, {len(data)} data entries")
    scan = np.linspace(0.0, 3.0, args.points)
    hyp_kw = {"return_expected_set": True}

    # hepprob: first calls compile, then timed
    t0 = time.perf_counter()
    mle.fit(data, model)
    hepprob.infer.hypotest(1.0, data, model, **hyp_kw)
    hepprob.infer.upper_limit(data, model, scan=scan)
    compile_s = time.perf_counter() - t0
    rows: dict[str, dict[str, float]] = {"hepprob": {}}
    results: dict[str, dict[str, Any]] = {"hepprob": {}}
    for label, fn in (
        ("fit", lambda: mle.fit(data, model, return_fitted_val=True)),
        ("hypotest", lambda: hepprob.infer.hypotest(1.0, data, model, **hyp_kw)),
        ("scan", lambda: hepprob.infer.upper_limit(data, model, scan=scan)),
    ):
        rows["hepprob"][label], results["hepprob"][label] = best_time(fn, args.repeat)

    for backend in ("numpy", "jax"):
        name = f"pyhf {backend}"
        rows[name], results[name] = time_pyhf(
            backend, spec, data, scan, args.repeat, args.pyhf_scan_points
        )

    print(f"\nhepprob compile (first calls of the three programs): {compile_s:.1f} s\n")
    print(
        "| task | hepprob [s] | pyhf numpy [s] | pyhf jax [s] | speed-up vs fastest pyhf |"
    )
    print("| --- | --- | --- | --- | --- |")
    for label in ("fit", "hypotest", "scan"):
        ours = rows["hepprob"][label]
        ref = min(rows["pyhf numpy"][label], rows["pyhf jax"][label])
        print(
            f"| {label} | {ours:.4f} | {rows['pyhf numpy'][label]:.4f} | "
            f"{rows['pyhf jax'][label]:.4f} | {ref / ours:.1f}x |"
        )

    # agreement of the numbers
    f_ours = float(results["hepprob"]["fit"][1])
    f_ref = float(results["pyhf numpy"]["fit"][1])
    cls_ours = float(results["hepprob"]["hypotest"][0])
    cls_ref = float(results["pyhf numpy"]["hypotest"][0])
    print(f"\n-2lnL min: hepprob {f_ours:.6f}, pyhf {f_ref:.6f}")
    print(f"CLs(mu=1): hepprob {cls_ours:.6f}, pyhf {cls_ref:.6f}")
    if args.pyhf_scan_points >= args.points:
        lim_ours = float(results["hepprob"]["scan"][0])
        lim_ref = float(results["pyhf numpy"]["scan"][0])
        print(f"observed limit (scan): hepprob {lim_ours:.5f}, pyhf {lim_ref:.5f}")
    else:
        print(
            f"pyhf scan times extrapolated from {args.pyhf_scan_points} of "
            f"{args.points} points"
        )


if __name__ == "__main__":
    main()
