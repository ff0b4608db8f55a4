"""HistFactory logpdf + gradient: hepprob vs pyhf (numpy and jax backends), one run.

Plain script: ``python benchmarks/histfactory.py [--quick]``. Generated
workspaces from 10 to 1000 bins and 10 to 500 nuisance parameters (half normsys,
half histosys, plus a staterror per channel and the POI). Times are the best of
several repeats of one call after compilation, in microseconds:

* hepprob: ``jax.jit(jax.value_and_grad(model.logpdf_fn()))``;
* pyhf jax: ``jax.jit(jax.value_and_grad(lambda p: model.logpdf(p, data)[0]))``
  (pyhf's fastest way to get both);
* pyhf numpy: ``model.logpdf`` alone (the numpy backend has no gradient; a
  finite-difference gradient would cost ``npars + 1`` such calls).

The ratios are pyhf time / hepprob time (> 1: hepprob faster).
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np
import pyhf

import hepprob  # noqa: F401  (x64)
from hepprob.histfactory import Model

SIZES = [(10, 10), (50, 50), (200, 100), (500, 250), (1000, 500)]


def make_spec(nbins: int, n_np: int, seed: int = 0) -> dict:
    """``nbins`` bins over up to 5 channels, 3 samples, ``n_np`` shape/norm systematics."""
    rng = np.random.default_rng(seed)
    n_chan = min(5, max(1, nbins // 100))
    edges = np.linspace(0, nbins, n_chan + 1).astype(int)
    channels = []
    for c in range(n_chan):
        nb = int(edges[c + 1] - edges[c])
        samples = []
        for s in ("bkg1", "bkg2", "sig"):
            nom = rng.uniform(5.0, 100.0, nb)
            mods = []
            if s == "sig":
                mods.append({"name": "mu", "type": "normfactor", "data": None})
            else:
                err = np.sqrt(nom) * 0.5
                mods.append(
                    {"name": f"stat_{c}", "type": "staterror", "data": err.tolist()}
                )
                for k in range(n_np):
                    if rng.uniform() > 0.5:
                        continue
                    if k % 2:
                        lo, hi = rng.uniform(0.85, 0.98), rng.uniform(1.02, 1.15)
                        mods.append({"name": f"np_{k}", "type": "normsys",
                                     "data": {"hi": hi, "lo": lo}})  # fmt: skip
                    else:
                        up = nom * rng.uniform(1.0, 1.1, nb)
                        dn = nom * rng.uniform(0.9, 1.0, nb)
                        mods.append({"name": f"np_{k}", "type": "histosys",
                                     "data": {"hi_data": up.tolist(), "lo_data": dn.tolist()}})  # fmt: skip
            samples.append({"name": s, "data": nom.tolist(), "modifiers": mods})
        channels.append({"name": f"ch{c}", "samples": samples})
    # every systematic must appear at least once
    first = channels[0]["samples"][0]["modifiers"]
    present = {
        m["name"] for ch in channels for s in ch["samples"] for m in s["modifiers"]
    }
    for k in range(n_np):
        if f"np_{k}" not in present:
            first.append(
                {"name": f"np_{k}", "type": "normsys", "data": {"hi": 1.05, "lo": 0.95}}
            )
    return {"channels": channels}


def _calls_for(fn, args, target: float) -> int:
    """Number of calls of ``fn(*args)`` lasting about ``target`` seconds."""
    jax.block_until_ready(fn(*args))
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            jax.block_until_ready(fn(*args))
        if time.perf_counter() - t0 > target or n > 10**5:
            return n
        n *= 4


def best_times(cases: dict, target: float, rounds: int) -> dict:
    """Best per-call time of each ``name: (fn, args)``, measured round-robin.

    Interleaving the candidates and keeping the minimum over rounds makes the
    ratios robust against a busy machine (other processes slow all of them).
    """
    calls = {k: _calls_for(fn, args, target) for k, (fn, args) in cases.items()}
    best = dict.fromkeys(cases, np.inf)
    for _ in range(rounds):
        for k, (fn, args) in cases.items():
            t0 = time.perf_counter()
            for _ in range(calls[k]):
                jax.block_until_ready(fn(*args))
            best[k] = min(best[k], (time.perf_counter() - t0) / calls[k])
    return best


def bench(nbins: int, n_np: int, quick: bool) -> dict:
    spec = make_spec(nbins, n_np)
    ours = Model(spec)
    pyhf.set_backend("numpy")
    ref_np = pyhf.Model(spec)
    pars = np.asarray(ref_np.config.suggested_init()) * 1.01
    data = np.asarray(ref_np.expected_data(pars))
    vg = jax.jit(jax.value_and_grad(ours.logpdf_fn()))
    p_j, d_j = jax.numpy.asarray(pars), jax.numpy.asarray(data)
    pyhf.set_backend("jax")
    ref_jax = pyhf.Model(spec)
    vg_ref = jax.jit(jax.value_and_grad(lambda p, d: ref_jax.logpdf(p, d)[0]))
    check = float(vg(p_j, d_j)[0]) - float(vg_ref(p_j, d_j)[0])
    pyhf.set_backend("numpy")
    cases = {
        "ours": (vg, (p_j, d_j)),
        "pyhf_jax": (vg_ref, (p_j, d_j)),
        "pyhf_numpy": (ref_np.logpdf, (pars, data)),
    }
    times = best_times(cases, 0.01 if quick else 0.05, 3 if quick else 15)
    return {
        "bins": nbins,
        "nps": n_np,
        "npars": ours.config.npars,
        **times,
        "diff": check,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short timing loops")
    args = parser.parse_args()
    print(f"device: {jax.devices()[0]}")
    head = (
        f"{'bins':>5} {'NPs':>4} {'npars':>5} | {'hepprob v+g':>12} {'pyhf-jax v+g':>13} "
        f"{'pyhf-np logpdf':>15} | {'jax/ours':>8} {'np/ours':>8} | {'|dlogpdf|':>9}"
    )
    print(head)
    print("-" * len(head))
    for nbins, n_np in SIZES:
        r = bench(nbins, n_np, args.quick)
        print(
            f"{r['bins']:>5} {r['nps']:>4} {r['npars']:>5} | {r['ours'] * 1e6:>10.1f}us "
            f"{r['pyhf_jax'] * 1e6:>11.1f}us {r['pyhf_numpy'] * 1e6:>13.1f}us | "
            f"{r['pyhf_jax'] / r['ours']:>8.1f} {r['pyhf_numpy'] / r['ours']:>8.1f} | "
            f"{abs(r['diff']):>9.1e}"
        )


if __name__ == "__main__":
    main()
