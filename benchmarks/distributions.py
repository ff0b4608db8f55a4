"""Benchmark: Crystal Ball + exponential mixture, hepprob (JAX) vs scipy.stats and zfit.

Times, for 10^4, 10^5 and 10^6 events on [5.0, 5.6], the negative log-likelihood
sum and its gradient with respect to all six parameters (signal fraction, CB
loc, scale, alpha, n, exponential slope), and the sampling of 10^6 events.
scipy has no gradients: its "NLL + grad" column is one NLL plus central finite
differences (12 more NLL evaluations), what a minimiser without autodiff does.
zfit (TensorFlow graph mode, timed after a warm-up call that traces and
compiles each graph) writes the same mixture with ``zfit.pdf.CrystalBall``,
``zfit.pdf.Exponential`` and ``zfit.pdf.SumPDF`` and evaluates
``zfit.loss.UnbinnedNLL``; it is optional, its column says "n/a" when it is not
importable. Before timing, the script prints how far scipy's and zfit's NLL
(and zfit's gradient) are from hepprob's on the same events and parameters.

Run::

    python benchmarks/distributions.py            # 1e4, 1e5, 1e6 events
    python benchmarks/distributions.py --quick    # 1e3 and 1e4 events
    python benchmarks/distributions.py --sizes 10000 --sample 10000
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats as st

import hepprob  # noqa: F401  (float64)
from hepprob.distributions import CrystalBall, Exponential, Mixture

LOW, HIGH = 5.0, 5.6
TRUE = {"frac": 0.3, "loc": 5.28, "scale": 0.004, "alpha": 1.5, "n": 3.0, "lam": -20.0}
NAMES = list(TRUE)


def _hepprob_mixture(p: dict[str, jax.Array]) -> Mixture:
    cb = CrystalBall(p["loc"], p["scale"], p["alpha"], p["n"], LOW, HIGH)
    return Mixture([cb, Exponential(p["lam"], LOW, HIGH)], [p["frac"]])


def _scipy_nll(values: np.ndarray, x: np.ndarray) -> float:
    frac, loc, scale, alpha, n, lam = values
    cb = st.crystalball(alpha, n, loc=loc, scale=scale)
    norm = cb.cdf(HIGH) - cb.cdf(LOW)
    ex = st.truncexpon(b=(HIGH - LOW) * -lam, loc=LOW, scale=1.0 / -lam)
    # the exponential falls (lam < 0): truncexpon is exp(-(x - LOW) |lam|) on the range
    pdf = frac * cb.pdf(x) / norm + (1.0 - frac) * ex.pdf(x)
    return -float(np.sum(np.log(pdf)))


def _scipy_nll_and_fd_grad(values: np.ndarray, x: np.ndarray) -> np.ndarray:
    f0 = _scipy_nll(values, x)
    grad = np.empty(len(values))
    for i in range(len(values)):
        h = 1e-6 * max(1.0, abs(values[i]))
        up, dn = values.copy(), values.copy()
        up[i] += h
        dn[i] -= h
        grad[i] = (_scipy_nll(up, x) - _scipy_nll(dn, x)) / (2 * h)
    return np.append(grad, f0)


def _scipy_sample(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    cb = st.crystalball(TRUE["alpha"], TRUE["n"], loc=TRUE["loc"], scale=TRUE["scale"])
    u = rng.uniform(cb.cdf(LOW), cb.cdf(HIGH), n)
    sig = cb.ppf(u)
    lam = -TRUE["lam"]
    bkg = st.truncexpon(b=(HIGH - LOW) * lam, loc=LOW, scale=1.0 / lam).rvs(
        n, random_state=rng
    )
    return np.where(rng.uniform(size=n) < TRUE["frac"], sig, bkg)


def _zfit_mixture() -> tuple[Any, Any, Any, dict[str, Any]] | None:
    """(zfit, obs, model, parameters) of the mixture at TRUE; None without zfit."""
    try:
        import zfit
    except ImportError:
        return None
    zfit.run.set_graph_mode(True)  # compiled TensorFlow graphs, zfit's fast path
    obs = zfit.Space("x", limits=(LOW, HIGH))
    par = {k: zfit.Parameter(f"bench_{k}", v) for k, v in TRUE.items()}
    # Same parametrisation as hepprob, no mapping needed: zfit's CrystalBall has
    # its power-law tail on the left for alpha > 0 (as hepprob and scipy) with
    # the same alpha and n; zfit's Exponential is exp(lam x), hepprob's
    # exp(lam (x - low)): the same density once normalised on the range.
    cb = zfit.pdf.CrystalBall(par["loc"], par["scale"], par["alpha"], par["n"], obs=obs)
    bkg = zfit.pdf.Exponential(par["lam"], obs=obs)
    model = zfit.pdf.SumPDF([cb, bkg], fracs=par["frac"])  # frac * cb + (1-frac) * bkg
    return zfit, obs, model, par


def _zfit_loss(z: tuple, x: np.ndarray) -> tuple[Callable, Callable]:
    """(NLL, NLL + gradient) of zfit on ``x``, each traced and compiled once."""
    zfit, obs, model, par = z
    loss = zfit.loss.UnbinnedNLL(model, zfit.Data.from_numpy(obs=obs, array=x))
    params = [par[k] for k in NAMES]

    def value() -> float:
        return float(loss.value(full=True).numpy())

    def value_grad() -> tuple[float, np.ndarray]:
        v, g = loss.value_gradient(params, full=True)
        return float(v.numpy()), g.numpy()

    value(), value_grad()  # warm-up: trace + compile both graphs
    return value, value_grad


def _best_of(fn: Callable[[], object], repeats: int) -> float:
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        jax.block_until_ready(out)
        best = min(best, time.perf_counter() - t0)
    return best


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1e3 and 1e4 events")
    parser.add_argument("--sizes", type=int, nargs="+", help="event counts for NLLs")
    parser.add_argument("--sample", type=int, help="events to sample (default 1e6)")
    opts = parser.parse_args()
    default = (1_000, 10_000) if opts.quick else (10_000, 100_000, 1_000_000)
    opts.sizes = opts.sizes or list(default)
    opts.sample = opts.sample or (10_000 if opts.quick else 1_000_000)
    return opts


def main() -> None:
    """Run the benchmark and print a Markdown table."""
    opts = _parse()
    p0 = {k: jnp.asarray(v) for k, v in TRUE.items()}
    key = jax.random.PRNGKey(0)
    n_max = max(max(opts.sizes), 1_000_000)
    data = np.asarray(jax.jit(lambda k: _hepprob_mixture(p0).sample(k, (n_max,)))(key))

    def nll(p: dict[str, jax.Array], x: jax.Array) -> jax.Array:
        return -jnp.sum(_hepprob_mixture(p).log_prob(x))

    nll_jit = jax.jit(nll)
    grad_jit = jax.jit(jax.value_and_grad(nll))
    values = np.array([TRUE[k] for k in NAMES])
    z = _zfit_mixture()

    x_check = data[:10_000]
    h_nll, h_grad = grad_jit(p0, jnp.asarray(x_check))
    h_grad = np.array([h_grad[k] for k in NAMES])
    rel_scipy = abs(float(h_nll) / _scipy_nll(values, x_check) - 1)
    checks = [
        f"hepprob vs scipy NLL on 1e4 events: relative difference {rel_scipy:.1e}"
    ]
    if z is not None:
        z_nll, z_grad = _zfit_loss(z, x_check)[1]()
        checks.append(
            "hepprob vs zfit on 1e4 events: NLL relative difference "
            f"{abs(float(h_nll) / z_nll - 1):.1e}, gradient max relative difference "
            f"{np.max(np.abs(z_grad / h_grad - 1)):.1e}"
        )

    rows = []  # (task, hepprob, scipy, zfit: seconds, None if absent, or a note)
    for n_events in opts.sizes:
        x_np = data[:n_events]
        x = jnp.asarray(x_np)
        jax.block_until_ready((nll_jit(p0, x), grad_jit(p0, x)))  # compile
        reps = 5 if n_events < 1_000_000 else 3
        t_z = t_zg = None
        if z is not None:
            z_value, z_value_grad = _zfit_loss(z, x_np)
            t_z, t_zg = _best_of(z_value, reps), _best_of(z_value_grad, reps)
        rows.append(
            (
                f"NLL, {n_events:.0e} events",
                _best_of(lambda x=x: nll_jit(p0, x), reps),
                _best_of(lambda x_np=x_np: _scipy_nll(values, x_np), reps),
                t_z,
            )
        )
        rows.append(
            (
                f"NLL + gradient, {n_events:.0e} events",
                _best_of(lambda x=x: grad_jit(p0, x), reps),
                _best_of(lambda x_np=x_np: _scipy_nll_and_fd_grad(values, x_np), 1),
                t_zg,
            )
        )

    # the Crystal Ball alone (the shape this module owns) on 1e6 events
    x_np = data[:1_000_000]
    x = jnp.asarray(x_np)
    cb = CrystalBall(TRUE["loc"], TRUE["scale"], TRUE["alpha"], TRUE["n"])
    cb_sum = jax.jit(lambda x: jnp.sum(cb.log_prob(x)))
    cb_ref = st.crystalball(
        TRUE["alpha"], TRUE["n"], loc=TRUE["loc"], scale=TRUE["scale"]
    )
    jax.block_until_ready(cb_sum(x))
    rows.append(
        (
            "CrystalBall log_prob alone, 1e+06 events",
            _best_of(lambda: cb_sum(x), 3),
            _best_of(lambda: np.sum(cb_ref.logpdf(x_np)), 3),
            "—",  # no zfit counterpart: zfit's CrystalBall is normalised on obs
        )
    )

    n_s = opts.sample
    draw = jax.jit(lambda k: _hepprob_mixture(p0).sample(k, (n_s,)))
    jax.block_until_ready(draw(key))
    t_zs = None
    if z is not None:
        model = z[2]
        model.sample(n=n_s).value()  # warm-up: trace + compile the sampler
        t_zs = _best_of(lambda: model.sample(n=n_s).value().numpy(), 3)
    rows.append(
        (
            f"sample {n_s:.0e} events",
            _best_of(lambda: draw(jax.random.PRNGKey(1)), 3),
            _best_of(lambda: _scipy_sample(n_s, 1), 3),
            t_zs,
        )
    )

    zfit_note = "zfit not importable: its column is n/a"
    if z is not None:
        zfit_note = f"zfit {z[0].__version__} (graph mode)"
    print(f"device: {jax.devices()[0].device_kind}; jax {jax.__version__}; {zfit_note}")
    print("\n".join(checks))
    print()
    print(
        "| task | hepprob (s) | scipy.stats (s) | scipy / hepprob "
        "| zfit (s) | zfit / hepprob |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, t_h, t_s, t_z in rows:
        if isinstance(t_z, str):
            z_cells = f"{t_z} | {t_z}"
        else:
            z_cells = "n/a | n/a" if t_z is None else f"{t_z:.4f} | {t_z / t_h:.1f}x"
        print(f"| {name} | {t_h:.4f} | {t_s:.4f} | {t_s / t_h:.1f}x | {z_cells} |")


if __name__ == "__main__":
    main()
