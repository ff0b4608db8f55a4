"""Toys, side by side: hepprob's vmapped generate + fit against loops of the peers.

1. Unbinned CB + exponential (the demo's model), 10^4 events per toy: hepprob
   ``toys`` (one vectorised program per batch) vs an iminuit loop over a
   scipy.stats NLL (toys drawn with numpy/scipy), and a zfit loop (``resample`` of a
   ``SamplerData`` + ``zfit.minimize.Minuit`` + ``hesse`` per toy, graphs
   traced on one warm-up toy first) when zfit is importable ("n/a" otherwise).
2. Toy-based CLs of a HistFactory workspace: ``hepprob.infer.hypotest(...,
   calctype="toybased")`` vs ``pyhf.infer.hypotest(..., calctype="toybased")``
   with pyhf's numpy and jax backends (jax: after a warm-up hypotest that
   compiles pyhf's jitted objective).

Peers are looped toy by toy, so they are timed on a subset and scaled to the
full count (the table says from how many). Run::

    python benchmarks/toys.py [--toys N] [--peer-toys M] [--events E]
    python benchmarks/toys.py --toys 100 --peer-toys 3 --events 1000  # quick
"""

from __future__ import annotations

import argparse
import time
import warnings

import jax
import numpy as np
from fit import START, zfit_mass_model, zfit_refit  # the sibling benchmark
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


def _numpy_toy(rng: np.random.Generator, n: int) -> np.ndarray:
    """A toy at ``demo.TRUTH`` drawn with numpy/scipy inverse cdfs (no JAX).

    The iminuit loop must not pay for ``demo.generate``, which compiles a JAX
    program for each new signal count.
    """
    t = demo.TRUTH
    n_sig = rng.binomial(n, t["frac"])
    cb = stats.crystalball(demo.ALPHA, demo.N_TAIL, loc=t["mu"], scale=t["sigma"])
    sig = cb.ppf(rng.uniform(cb.cdf(demo.LOW), cb.cdf(demo.HIGH), n_sig))
    width = demo.HIGH - demo.LOW
    bkg = stats.truncexpon(b=t["lam"] * width, loc=demo.LOW, scale=1 / t["lam"])
    return np.concatenate([sig, bkg.rvs(n - n_sig, random_state=rng)])


def _zfit_loop(n_toys: int, peer_toys: int, n_events: int) -> tuple | None:
    """Seconds for ``n_toys`` zfit toys (scaled from ``peer_toys``) and the valid share."""
    try:
        import zfit
    except ImportError:
        return None
    model, par = zfit_mass_model(zfit, f"toys{n_events}", values=demo.TRUTH)
    toy = model.create_sampler(n=n_events)  # samples at TRUTH, whatever par holds
    nll = zfit.loss.UnbinnedNLL(model, toy)
    minimizer = zfit.minimize.Minuit()
    toy.resample()
    zfit_refit(minimizer, nll, par)  # warm-up: trace the sampler and loss graphs
    valid = []
    t0 = time.perf_counter()
    for _ in range(peer_toys):
        toy.resample()
        valid.append(zfit_refit(minimizer, nll, par)[1])
    return (time.perf_counter() - t0) * n_toys / peer_toys, float(np.mean(valid))


def unbinned(n_toys: int, peer_toys: int, n_events: int) -> list[tuple]:
    data = demo.generate(jax.random.key(0), n_events)
    truth = dict(demo.TRUTH)
    hepprob.toys(demo.mass_model, truth, 8, jax.random.key(1), data)  # compile
    t0 = time.perf_counter()
    res = hepprob.toys(demo.mass_model, truth, n_toys, jax.random.key(2), data)
    t_hep = time.perf_counter() - t0
    from iminuit import Minuit

    rng = np.random.default_rng(100)
    t0 = time.perf_counter()
    for _ in range(peer_toys):
        x = _numpy_toy(rng, n_events)
        m = Minuit(_nll_of(x), list(START.values()))
        m.errordef = Minuit.LIKELIHOOD
        m.limits = [(5.2, 5.35), (0.005, 0.1), (0.01, 20.0), (0.0, 1.0)]
        m.migrad()
        m.hesse()
    t_min = (time.perf_counter() - t0) * n_toys / peer_toys
    zf = _zfit_loop(n_toys, peer_toys, n_events)
    conv = float(np.mean(res.converged))
    name = f"unbinned CB+exp, {n_toys} toys x {n_events} events"
    zfit_row = (name, t_hep, None, "zfit loop", "zfit not importable", conv)
    if zf is not None:
        note = f"zfit fits valid {zf[1]:.0%}"
        zfit_row = (
            name,
            t_hep,
            zf[0],
            f"zfit loop, scaled from {peer_toys}",
            note,
            conv,
        )
    return [
        (name, t_hep, t_min, f"iminuit loop, scaled from {peer_toys}", "", conv),
        zfit_row,
    ]


def _patch_pyhf_percentile(pyhf) -> None:
    """Let pyhf 0.7.6's toy hypotest run on numpy 2 and current jax.

    pyhf 0.7.6's backends pass the ``interpolation=`` keyword that numpy 2 and
    ``jax.numpy`` removed (renamed ``method=``) to ``percentile``; this is the
    workaround tests/infer/test_hypotest.py applies to the numpy backend, here
    for both backends. It only renames the keyword; the numbers are unchanged.
    """
    import jax.numpy as jnp

    pyhf.tensor.numpy_backend.percentile = (
        lambda self, t, q, axis=None, interpolation="linear": np.percentile(
            t, q, axis=axis, method=interpolation
        )
    )
    pyhf.tensor.jax_backend.percentile = (
        lambda self, t, q, axis=None, interpolation="linear": jnp.percentile(
            t, q, axis=axis, method=interpolation
        )
    )


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
    _patch_pyhf_percentile(pyhf)
    peer = max(n_toys // 10, 50)
    name = f"toy-based CLs, {n_toys} toys (x2 hypotheses)"
    rows = []
    for backend in ("numpy", "jax"):
        pyhf.set_backend(backend)
        pws = pyhf.Workspace(spec)
        pmodel = pws.model()
        pdata = pws.data(pmodel)
        kw = {"calctype": "toybased", "track_progress": False}
        # only the time is used: with few toys pyhf's CLb can be 0 and its
        # CLs = CLsb / CLb warns 0/0; that warning is silenced here
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            if backend == "jax":  # warm-up: compile pyhf's jitted objective
                pyhf.infer.hypotest(1.0, pdata, pmodel, ntoys=10, **kw)
            t0 = time.perf_counter()
            pyhf.infer.hypotest(1.0, pdata, pmodel, ntoys=peer, **kw)
            t_pyhf = (time.perf_counter() - t0) * n_toys / peer
        rows.append(
            (name, t_hep, t_pyhf, f"pyhf {backend}, scaled from {peer}", "", None)
        )
    pyhf.set_backend("numpy")
    return rows


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
        t_cell, ratio = ("n/a", "n/a")
        if t_peer is not None:
            t_cell, ratio = f"{t_peer:.1f}", f"{t_peer / t_hep:.1f}x"
        notes = [note] if note else []
        if conv is not None:
            notes.append(f"hepprob fits converged {conv:.1%}")
        print(
            f"| {name} | {t_hep:.2f} | {t_cell} | {peer} | {ratio} | {'; '.join(notes)} |"
        )


if __name__ == "__main__":
    main()
