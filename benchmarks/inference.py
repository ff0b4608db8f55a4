"""Benchmark: fit, asymptotic hypotest and a 20-point limit scan, hepprob vs pyhf.

Plain script (not a test). Builds a multi-channel workspace with about 100
nuisance parameters (shapesys, normsys, histosys, staterror, lumi) and times

* one maximum-likelihood fit (``mle.fit``),
* one asymptotic CLs test (``hypotest`` with the expected band),
* a 20-point upper-limit scan (``upper_limit(scan=...)``),

for hepprob and pyhf 0.7 with the numpy and the jax backends (scipy optimiser,
pyhf's defaults). Each cell shows the first call in the process (hepprob and
pyhf-jax compile then) and the steady state (best of ``--repeat`` later calls;
hepprob's on a second dataset and POI of the same shapes). Prints a Markdown
table with the ratios and the agreement of the numbers.

    HEPPROB_COMPILATION_CACHE=0 python benchmarks/inference.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import jax
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


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Wall time of one call (results blocked until ready)."""
    t0 = time.perf_counter()
    out = fn()
    _block(out)
    return time.perf_counter() - t0, out


def first_and_steady(
    tasks: dict[str, Callable[[], Any]], repeat: int
) -> tuple[dict[str, tuple[float, float]], dict[str, Any]]:
    """Per task: the first call's time and the best of ``repeat`` later calls.

    All first calls run before any repeat, in the order given, so a task may
    reuse what an earlier one compiled, as in a user's session.
    """
    first, results = {}, {}
    for label, fn in tasks.items():
        first[label], results[label] = timed(fn)
    times = {}
    for label, fn in tasks.items():
        steady = min(timed(fn)[0] for _ in range(repeat)) if repeat else np.nan
        times[label] = (first[label], steady)
    return times, results


def _block(out: Any) -> None:
    if isinstance(out, (tuple, list)):
        for o in out:
            _block(o)
    elif hasattr(out, "block_until_ready"):
        out.block_until_ready()


def time_hepprob(
    data: np.ndarray, data2: np.ndarray, model: Any, scan: np.ndarray, repeat: int
) -> tuple[dict[str, tuple[float, float]], dict[str, Any]]:
    """hepprob's first calls (compiling), then steady state on a second dataset.

    The repeats run on ``data2`` (same shapes, other counts) and POI 1.1 instead
    of 1.0: a compiled program is reused, never a cached answer.
    """
    kw = {"return_expected_set": True}
    first = {
        "fit": lambda: mle.fit(data, model, return_fitted_val=True),
        "hypotest": lambda: hepprob.infer.hypotest(1.0, data, model, **kw),
        "scan": lambda: hepprob.infer.upper_limit(data, model, scan=scan),
    }
    again = {
        "fit": lambda: mle.fit(data2, model, return_fitted_val=True),
        "hypotest": lambda: hepprob.infer.hypotest(1.1, data2, model, **kw),
        "scan": lambda: hepprob.infer.upper_limit(data2, model, scan=scan),
    }
    times, results = {}, {}
    for label, fn in first.items():
        times[label], results[label] = timed(fn)
    out = {}
    for label, fn in again.items():
        steady = min(timed(fn)[0] for _ in range(repeat))
        out[label] = (times[label], steady)
    return out, results


def time_pyhf(
    backend: str,
    spec: dict[str, Any],
    data: np.ndarray,
    scan: np.ndarray,
    repeat: int,
    scan_points: int,
) -> tuple[dict[str, tuple[float, float]], dict[str, Any]]:
    """First-call and steady-state times and results of pyhf with one backend.

    pyhf's scan is one hypotest per point; with ``scan_points`` below
    ``len(scan)`` only that many points (spread over the scan) are run and the
    time is scaled to the full scan (reported as extrapolated). The scan runs
    once, after the hypotest has compiled what pyhf-jax needs (it traces per
    call signature, not per point), so its time serves as both columns.
    """
    sub = scan[np.linspace(0, len(scan) - 1, min(scan_points, len(scan))).astype(int)]
    pyhf.set_backend(backend)
    pmodel = pyhf.Workspace(spec).model()
    pdata = pyhf.tensorlib.astensor(data)
    tasks = {
        "fit": lambda: pyhf.infer.mle.fit(pdata, pmodel, return_fitted_val=True),
        "hypotest": lambda: pyhf.infer.hypotest(
            1.0, pdata, pmodel, return_expected_set=True
        ),
    }
    times, results = first_and_steady(tasks, repeat)
    t_scan, results["scan"] = timed(
        lambda: pyhf.infer.intervals.upper_limits.upper_limit(pdata, pmodel, scan=sub)
    )
    t_scan *= len(scan) / len(sub)
    times["scan"] = (t_scan, t_scan)
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
    parser.add_argument(
        "--backends", default="numpy,jax", help="pyhf backends, comma-separated"
    )
    args = parser.parse_args()

    spec = make_spec(args.channels, args.bins)
    ws = Workspace(spec)
    model = ws.model()
    data = np.asarray(ws.data(model))
    n_main = model.config.nmaindata
    data2 = data.copy()
    data2[:n_main] = np.random.default_rng(1).poisson(data[:n_main])
    print(f"workspace: {model.config.npars} parameters, {len(data)} data entries")
    cache = jax.config.jax_compilation_cache_dir
    print(
        f"JAX persistent compilation cache: on at {cache}; first calls may load "
        "programs from disk (HEPPROB_COMPILATION_CACHE=0 for cold ones)"
        if cache
        else "JAX persistent compilation cache: off (first calls compile)"
    )
    scan = np.linspace(0.0, 3.0, args.points)

    rows: dict[str, dict[str, tuple[float, float]]] = {}
    results: dict[str, dict[str, Any]] = {}
    rows["hepprob"], results["hepprob"] = time_hepprob(
        data, data2, model, scan, args.repeat
    )
    peers = [f"pyhf {b}" for b in args.backends.split(",") if b]
    for name in peers:
        rows[name], results[name] = time_pyhf(
            name.split()[1], spec, data, scan, args.repeat, args.pyhf_scan_points
        )

    cols = ["hepprob", *peers]
    print("\ntimes in s: first call (fresh process, compiles) / steady state\n")
    print(
        "| task | " + " | ".join(cols) + " | fastest pyhf / hepprob: first | steady |"
    )
    print("| --- |" + " ---: |" * (len(cols) + 2))
    for label in ("fit", "hypotest", "scan"):
        cells = [f"{rows[c][label][0]:.3g} / {rows[c][label][1]:.3g}" for c in cols]
        ours = rows["hepprob"][label]
        ratios = [
            min(rows[c][label][i] for c in peers) / ours[i] if peers else np.nan
            for i in (0, 1)
        ]
        print(
            f"| {label} | "
            + " | ".join(cells)
            + f" | {ratios[0]:.1f}x | {ratios[1]:.1f}x |"
        )
    if peers:
        _agreement(results, peers[0], args)


def _agreement(results: dict[str, dict[str, Any]], ref: str, args: Any) -> None:
    """The numbers of the first (timed) calls, hepprob next to pyhf."""
    f_ours = float(results["hepprob"]["fit"][1])
    f_ref = float(results[ref]["fit"][1])
    cls_ours = float(results["hepprob"]["hypotest"][0])
    cls_ref = float(results[ref]["hypotest"][0])
    print(f"\n-2lnL min: hepprob {f_ours:.6f}, {ref} {f_ref:.6f}")
    print(f"CLs(mu=1): hepprob {cls_ours:.6f}, {ref} {cls_ref:.6f}")
    if args.pyhf_scan_points >= args.points:
        lim_ours = float(results["hepprob"]["scan"][0])
        lim_ref = float(results[ref]["scan"][0])
        print(f"observed limit (scan): hepprob {lim_ours:.5f}, {ref} {lim_ref:.5f}")
    else:
        print(
            f"pyhf scan times extrapolated from {args.pyhf_scan_points} of "
            f"{args.points} points"
        )


if __name__ == "__main__":
    main()
