"""Benchmark: Crystal Ball + exponential mixture, hepprob (JAX) vs scipy.stats (and zfit).

Times, for 10^4, 10^5 and 10^6 events on a range, the log-likelihood sum and
its gradient with respect to all six parameters (signal fraction, CB loc,
scale, alpha, n, exponential slope), and the sampling of 10^6 events. scipy has
no gradients: its "NLL + grad" column is one NLL plus central finite
differences (12 more NLL evaluations), what a minimiser without autodiff does.
zfit is optional: its column says "n/a" when it is not installed.

Run: ``python benchmarks/distributions.py`` (prints a Markdown table).
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats as st

import hepprob  # noqa: F401  (float64)
from hepprob.distributions import CrystalBall

LOW, HIGH = 5.20, 5.30
TRUE = {"frac": 0.3, "loc": 5.28, "scale": 0.004, "alpha": 1.5, "n": 3.0, "lam": -20.0}
NAMES = list(TRUE)


def _hepprob_mixture(p: dict[str, jax.Array]) -> tuple[Callable, Callable]:
    """(log_prob, sample) of the mixture, with hepprob's Exponential/Mixture if present."""
    cb = CrystalBall(p["loc"], p["scale"], p["alpha"], p["n"], LOW, HIGH)
    try:
        from hepprob.distributions import Exponential, Mixture

        mix = Mixture([cb, Exponential(p["lam"], LOW, HIGH)], [p["frac"]])
        return mix.log_prob, mix.sample
    except ImportError:  # written by hand while those are not there yet
        lam, width = p["lam"], HIGH - LOW

        def log_exp(x: jax.Array) -> jax.Array:
            return jnp.log(-lam / -jnp.expm1(lam * width)) + lam * (x - LOW)

        def log_prob(x: jax.Array) -> jax.Array:
            return jnp.logaddexp(
                jnp.log(p["frac"]) + cb.log_prob(x), jnp.log1p(-p["frac"]) + log_exp(x)
            )

        def sample(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
            k1, k2, k3 = jax.random.split(key, 3)
            u = jax.random.uniform(k2, shape)
            x_exp = LOW + jnp.log1p(u * jnp.expm1(lam * width)) / lam
            return jnp.where(
                jax.random.uniform(k3, shape) < p["frac"], cb.sample(k1, shape), x_exp
            )

        return log_prob, sample


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


def _best_of(fn: Callable[[], object], repeats: int) -> float:
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        jax.block_until_ready(out)
        best = min(best, time.perf_counter() - t0)
    return best


def _zfit_note() -> str:
    if importlib.util.find_spec("zfit") is None:
        return "zfit not installed: its column is n/a (pip install zfit to compare)"
    return "zfit installed but not wired into this script yet: column n/a"


def main() -> None:
    """Run the benchmark and print a Markdown table."""
    p0 = {k: jnp.asarray(v) for k, v in TRUE.items()}
    key = jax.random.PRNGKey(0)
    _, sample = _hepprob_mixture(p0)
    data = np.asarray(jax.jit(lambda k: sample(k, (1_000_000,)))(key))

    def nll(p: dict[str, jax.Array], x: jax.Array) -> jax.Array:
        return -jnp.sum(_hepprob_mixture(p)[0](x))

    nll_jit = jax.jit(nll)
    grad_jit = jax.jit(jax.value_and_grad(nll))
    values = np.array([TRUE[k] for k in NAMES])

    check = abs(
        float(nll_jit(p0, jnp.asarray(data[:10_000])))
        / _scipy_nll(values, data[:10_000])
        - 1
    )
    rows = []
    for n_events in (10_000, 100_000, 1_000_000):
        x_np = data[:n_events]
        x = jnp.asarray(x_np)
        jax.block_until_ready((nll_jit(p0, x), grad_jit(p0, x)))  # compile
        reps = 5 if n_events < 1_000_000 else 3
        t_h = _best_of(lambda x=x: nll_jit(p0, x), reps)
        t_hg = _best_of(lambda x=x: grad_jit(p0, x), reps)
        t_s = _best_of(lambda x_np=x_np: _scipy_nll(values, x_np), reps)
        t_sg = _best_of(lambda x_np=x_np: _scipy_nll_and_fd_grad(values, x_np), 1)
        rows.append(
            (f"NLL, {n_events:.0e} events", t_h, t_s),
        )
        rows.append((f"NLL + gradient, {n_events:.0e} events", t_hg, t_sg))

    # the Crystal Ball alone (the shape this module owns) on 1e6 events
    x_np = data
    x = jnp.asarray(x_np)
    cb_sum = jax.jit(
        lambda x: jnp.sum(
            CrystalBall(TRUE["loc"], TRUE["scale"], TRUE["alpha"], TRUE["n"]).log_prob(
                x
            )
        )
    )
    cb_ref = st.crystalball(
        TRUE["alpha"], TRUE["n"], loc=TRUE["loc"], scale=TRUE["scale"]
    )
    jax.block_until_ready(cb_sum(x))
    rows.append(
        (
            "CrystalBall log_prob alone, 1e+06 events",
            _best_of(lambda: cb_sum(x), 3),
            _best_of(lambda: np.sum(cb_ref.logpdf(x_np)), 3),
        )
    )

    draw = jax.jit(lambda k: _hepprob_mixture(p0)[1](k, (1_000_000,)))
    jax.block_until_ready(draw(key))
    t_samp = _best_of(lambda: draw(jax.random.PRNGKey(1)), 3)
    t_samp_s = _best_of(lambda: _scipy_sample(1_000_000, 1), 3)
    rows.append(("sample 1e6 events", t_samp, t_samp_s))

    print(f"device: {jax.devices()[0].device_kind}; {_zfit_note()}")
    print(f"hepprob vs scipy NLL on 1e4 events: relative difference {check:.1e}")
    print()
    print("| task | hepprob (s) | scipy.stats (s) | scipy / hepprob | zfit (s) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, t_h, t_s in rows:
        print(f"| {name} | {t_h:.4f} | {t_s:.4f} | {t_s / t_h:.1f}x | n/a |")


if __name__ == "__main__":
    main()
