"""Feldman–Cousins constructions, 2-D contours and profile grids, side by side.

1. FC construction of an on/off counting experiment (n ~ Pois(s + b),
   m ~ Pois(tau b), b a nuisance profiled in every fit): ``grid`` POI values x
   ``toys`` toys, each toy fitted twice (free and at its s). hepprob:
   ``hepprob.infer.intervals.feldman_cousins`` (one vmapped generate + fit
   program). Peer: the same work as a loop of iminuit fits (MIGRAD on a numpy
   NLL with its analytic gradient, toys drawn with numpy), timed on
   ``--peer-toys`` toys per grid point and scaled.
2. The 68 % contour (40 points) of two parameters of a 4-parameter extended
   unbinned fit (Gaussian peak over a flat background, 280 events): hepprob
   ``FitResult.contour`` vs iminuit ``mncontour`` (MNCONTOUR, and iminuit's
   "experimental" ray search) on hepprob's own jitted NLL with its exact
   gradient.
3. A 20 x 20 profile grid of the same two parameters: hepprob
   ``infer.profile_scan(..., grid=True)`` vs a loop of 400 iminuit fits.

hepprob is timed on its first call in this process (compilation included:
run with ``HEPPROB_COMPILATION_CACHE=0`` for a cold start) and in steady state
(a second call on other data or levels). Run::

    HEPPROB_COMPILATION_CACHE=0 python benchmarks/intervals.py
    HEPPROB_COMPILATION_CACHE=0 python benchmarks/intervals.py --toys 200 --peer-toys 5  # quick
"""

from __future__ import annotations

import argparse
import time

import iminuit
import numpy as np
import numpyro
import numpyro.distributions as npd
from scipy.special import gammaln

import hepprob
from hepprob import dist
from hepprob.infer.intervals import feldman_cousins

TAU = 2.0


def on_off(n, m):
    s = hepprob.param("s", 1.0, 0.0, 50.0)
    b = hepprob.param("b", 5.0, 0.01, 100.0)
    numpyro.sample("n", npd.Poisson(s + b), obs=n)
    numpyro.sample("m", npd.Poisson(TAU * b), obs=m)


def _nll(p, n, m):
    s, b = p
    return (
        s
        + b
        - n * np.log(s + b)
        + TAU * b
        - m * np.log(TAU * b)
        + gammaln(n + 1)
        + gammaln(m + 1)
    )


def _grad(p, n, m):
    s, b = p
    return np.array([1 - n / (s + b), 1 - n / (s + b) + TAU - m / b])


def _minuit_fit(n, m, start, fixed_s=None):
    fit = iminuit.Minuit(
        lambda p: _nll(p, n, m), start, grad=lambda p: _grad(p, n, m), name=["s", "b"]
    )
    fit.errordef = iminuit.Minuit.LIKELIHOOD
    fit.limits = [(0.0, 50.0), (0.01, 100.0)]
    if fixed_s is not None:
        fit.values["s"] = fixed_s
        fit.fixed["s"] = True
    fit.migrad()
    return fit.fval, np.array(fit.values)


def fc_iminuit(n_obs, m_obs, grid, n_toys, peer_toys, seed=0):
    """The FC construction as a loop of iminuit fits; seconds scaled to n_toys."""
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    _, x_hat = _minuit_fit(n_obs, m_obs, [1.0, 5.0])
    held = [_minuit_fit(n_obs, m_obs, x_hat, fixed_s=s)[1] for s in grid]
    t_setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    for s, b in held:
        for _ in range(peer_toys):
            n, m = rng.poisson(s + b), rng.poisson(TAU * b)
            free, _ = _minuit_fit(n, m, [s, b])
            fixed, _ = _minuit_fit(n, m, [s, b], fixed_s=s)
            _ = 2 * (fixed - min(free, fixed))
    return t_setup + (time.perf_counter() - t0) * n_toys / peer_toys


LOW, HIGH = -5.0, 5.0


def peak(x):
    nsig = hepprob.param("nsig", 30.0, 0.0, 500.0)
    nbkg = hepprob.param("nbkg", 200.0, 0.0, 2000.0)
    m = hepprob.param("m", 0.0, -2.0, 2.0)
    s = hepprob.param("s", 0.5, 0.05, 3.0)
    signal = dist.Truncated(npd.Normal(m, s), LOW, HIGH)
    ext = dist.Extended([signal, npd.Uniform(LOW, HIGH)], [nsig, nbkg])
    numpyro.sample("x", ext, obs=x)


def _peak_data(seed):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(0.3, 0.4, 80), rng.uniform(LOW, HIGH, 200)])


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=int, default=41)
    parser.add_argument("--toys", type=int, default=1000)
    parser.add_argument("--peer-toys", type=int, default=20)
    args = parser.parse_args()
    rows = []

    grid = np.linspace(0.0, 15.0, args.grid)
    first, scan = _timed(
        lambda: feldman_cousins(
            on_off, 8.0, 10.0, poi="s", cl=0.9, scan=grid, n_toys=args.toys
        )
    )
    steady, scan2 = _timed(
        lambda: feldman_cousins(
            on_off, 9.0, 10.0, poi="s", cl=0.9, scan=grid, n_toys=args.toys, seed=1
        )
    )
    peer = fc_iminuit(8, 10, grid, args.toys, args.peer_toys)
    what = f"FC on/off, {args.grid} points x {args.toys} toys, 2 fits each"
    rows.append((what, first, steady, f"iminuit loop: {peer:.1f} s", peer))
    print(f"FC intervals: n=8 {scan.interval}, n=9 {scan2.interval}")

    x = _peak_data(9)
    result = hepprob.fit(peak, x)
    first, _ = _timed(lambda: result.contour("nsig", "m", cl=0.68, points=40))
    result2 = hepprob.fit(peak, _peak_data(19))
    steady, _ = _timed(lambda: result2.contour("nsig", "m", cl=0.68, points=40))
    nll = hepprob.infer.nll(peak, x)
    limits = list(zip(nll.lower, nll.upper, strict=True))
    m = iminuit.Minuit(nll, result.x, grad=nll.grad, name=nll.par_names)  # errordef 0.5
    m.limits = limits
    m.migrad()
    t_mn, _ = _timed(lambda: m.mncontour("nsig", "m", cl=0.68, size=40))
    t_ex, _ = _timed(
        lambda: m.mncontour("nsig", "m", cl=0.68, size=40, experimental=True)
    )
    rows.append(
        ("68 % contour, 40 points", first, steady, f"mncontour: {t_mn:.2f} s", t_mn)
    )
    rows.append(("same", first, steady, f"mncontour experimental: {t_ex:.2f} s", t_ex))

    nsig = np.linspace(50.0, 110.0, 20)
    mean = np.linspace(0.05, 0.3, 20)
    first, _ = _timed(
        lambda: hepprob.infer.profile_scan(result, {"nsig": nsig, "m": mean}, grid=True)
    )
    steady, _ = _timed(
        lambda: hepprob.infer.profile_scan(
            result2, {"nsig": nsig, "m": mean}, grid=True
        )
    )

    def loop():
        for u in nsig:
            for v in mean:
                f = iminuit.Minuit(nll, result.x, grad=nll.grad, name=nll.par_names)
                f.limits = limits
                f.values["nsig"], f.values["m"] = u, v
                f.fixed["nsig"] = f.fixed["m"] = True
                f.migrad()

    t_loop, _ = _timed(loop)
    rows.append(
        ("20 x 20 profile grid", first, steady, f"iminuit loop: {t_loop:.2f} s", t_loop)
    )

    print(
        "\n| workload | hepprob first call | hepprob steady | peer | peer / first | peer / steady |"
    )
    print("| --- | ---: | ---: | --- | ---: | ---: |")
    for what, t1, t2, peer_text, t_peer in rows:
        print(
            f"| {what} | {t1:.2f} s | {t2:.3f} s | {peer_text} | "
            f"{t_peer / t1:.1f}x | {t_peer / t2:.0f}x |"
        )


if __name__ == "__main__":
    main()
