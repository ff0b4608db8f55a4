"""Benchmark: drawing 10^6 events from every hepprob distribution, vs scipy.stats.

Times ``jax.jit(lambda k: d.sample(k, (N,)))`` after a warm-up call (compile
excluded; median of a few repeats, ``block_until_ready``) for each distribution
in ``hepprob.dist``, side by side with ``scipy.stats.<dist>.rvs(size=N)`` where
scipy has the same distribution (same parameters; truncated to the same range
where hepprob's range applies). The ratio is scipy time / hepprob time (> 1:
hepprob is faster).

Run: ``python benchmarks/sampling.py [--events N] [--repeats R]`` (prints a
Markdown table).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as nd
import scipy.stats as st

import hepprob  # noqa: F401  (float64)
from hepprob import dist


def _gauss(x: jax.Array, mu: jax.Array, sigma: jax.Array) -> jax.Array:
    return jnp.exp(-0.5 * ((x - mu) / sigma) ** 2)


def _angular(x: jax.Array, a: jax.Array) -> jax.Array:
    # 3-D density: 1 + a cos(theta1) cos(theta2) + a/2 cos(phi), on [-1, 1]^2 x [-pi, pi]
    return 1.0 + a * x[..., 0] * x[..., 1] + 0.5 * a * jnp.cos(x[..., 2])


def _truncated_rvs(frozen: st.rv_continuous, low: float, high: float) -> Callable:
    """scipy's own way to sample a truncated distribution: ppf of a uniform in range."""
    c_lo, c_hi = frozen.cdf(low), frozen.cdf(high)
    rng = np.random.default_rng(1)
    return lambda n: frozen.ppf(rng.uniform(c_lo, c_hi, n))


def _rejection_rvs(frozen: st.rv_continuous, low: float, high: float) -> Callable:
    """Truncation by rejection (scipy's vonmises ppf is far too slow for 10^6)."""
    keep = frozen.cdf(high) - frozen.cdf(low)
    rng = np.random.default_rng(2)

    def rvs(n: int) -> np.ndarray:
        out = np.empty(0)
        while out.size < n:
            x = frozen.rvs(
                size=int(1.2 * (n - out.size) / keep) + 100, random_state=rng
            )
            out = np.concatenate([out, x[(x >= low) & (x <= high)]])
        return out[:n]

    return rvs


def _cases() -> list[tuple[str, object, Callable | None]]:
    """(name, hepprob distribution, scipy sampler or None)."""
    rng = np.random.default_rng(0)
    data = rng.normal(0.0, 1.0, 1000)
    edges = np.linspace(0.0, 1.0, 51)
    counts = rng.uniform(1.0, 10.0, 50)
    gauss_1d = dist.from_function(_gauss, -2.0, 3.0)
    angular_3d = dist.from_function(
        _angular, low=[-1.0, -1.0, -np.pi], high=[1.0, 1.0, np.pi]
    )
    cb = dist.CrystalBall(5.28, 0.004, 1.5, 3.0, 5.20, 5.30)
    expo = dist.Exponential(-20.0, 5.20, 5.30)
    chi = 2.0
    cb_ref = st.crystalball(1.5, 3.0, loc=5.28, scale=0.004)
    jsu = st.johnsonsu(0.5, 1.5, loc=0.0, scale=2.0)
    return [
        ("CrystalBall [5.20, 5.30]", cb, _truncated_rvs(cb_ref, 5.20, 5.30)),
        (
            "DoubleCrystalBall",
            dist.DoubleCrystalBall(0.0, 1.0, 1.5, 3.0, 2.0, 5.0),
            None,
        ),
        (
            "Argus p=1/2 (chi=2)",
            dist.Argus(5.29, -(chi**2) / 2.0, 0.5),
            st.argus(chi, scale=5.29).rvs,
        ),
        ("Argus p=1.3, c=3, [0.5, 0.95]", dist.Argus(1.0, 3.0, 1.3, 0.5, 0.95), None),
        ("Argus p=1/2, c=-40, [0.8, 1]", dist.Argus(1.0, -40.0, 0.5, 0.8, 1.0), None),
        (
            "Exponential [5.20, 5.30]",
            expo,
            st.truncexpon(2.0, loc=5.20, scale=0.05).rvs,
        ),
        (
            "Truncated Normal (cdf)",
            dist.Truncated(nd.Normal(0.0, 1.0), -1.0, 2.0),
            st.truncnorm(-1.0, 2.0).rvs,
        ),
        (
            "Truncated VonMises (numeric)",
            dist.Truncated(nd.VonMises(0.3, 2.0), -2.0, 2.5),
            _rejection_rvs(st.vonmises(2.0, loc=0.3), -2.0, 2.5),
        ),
        ("Chebyshev (3 coeffs)", dist.Chebyshev([0.3, -0.2, 0.1], 0.0, 1.0), None),
        ("Bernstein (4 coeffs)", dist.Bernstein([1.0, 0.5, 2.0, 1.0], 0.0, 1.0), None),
        ("BreitWigner", dist.BreitWigner(0.0, 2.0), st.cauchy(0.0, 1.0).rvs),
        (
            "BreitWigner [-3, 5]",
            dist.BreitWigner(0.0, 2.0, -3.0, 5.0),
            _truncated_rvs(st.cauchy(0.0, 1.0), -3.0, 5.0),
        ),
        (
            "RelativisticBreitWigner [80, 100]",
            dist.RelativisticBreitWigner(91.19, 2.5, 80.0, 100.0),
            None,
        ),
        ("Voigtian", dist.Voigtian(0.0, 1.0, 0.5), None),
        ("Voigtian [-2, 3]", dist.Voigtian(0.0, 1.0, 0.5, -2.0, 3.0), None),
        ("JohnsonSU", dist.JohnsonSU(0.5, 1.5, 0.0, 2.0), jsu.rvs),
        ("GaussianKDE (1000 points)", dist.GaussianKDE(data), st.gaussian_kde(data)),
        ("HistogramPDF (50 bins)", dist.HistogramPDF(edges, counts), None),
        ("CustomPDF 1-D", gauss_1d(mu=0.5, sigma=0.7), None),
        ("CustomPDF 3-D", angular_3d(a=0.5), None),
        ("Mixture (CB + exp)", dist.Mixture([cb, expo], [0.3]), None),
        (
            "Extended (CB + exp, padded 10^6)",
            _Extended(dist.Extended([cb, expo], [3e5, 7e5], max_events=10**6)),
            None,
        ),
        ("Product (CB x exp)", dist.Product([cb, expo]), None),
    ]


class _Extended:
    """One padded dataset of ``max_events`` from an Extended (sample shape ())."""

    def __init__(self, ext: dist.Extended) -> None:
        self.ext = ext

    def sample(self, key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
        del shape  # the dataset size is max_events
        return self.ext.sample(key)


def _median_time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10**6)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    n, reps = args.events, args.repeats
    key = jax.random.PRNGKey(0)
    print(f"Sampling {n:.0e} events, median of {reps} (jit, compile excluded)\n")
    print("| distribution | hepprob [s] | scipy [s] | scipy / hepprob |")
    print("|---|---:|---:|---:|")
    for name, d, ref in _cases():
        draw = jax.jit(lambda k, d=d: d.sample(k, (n,)))
        draw(key).block_until_ready()
        t_hp = _median_time(lambda draw=draw: draw(key).block_until_ready(), reps)
        if ref is None:
            print(f"| {name} | {t_hp:.4f} | n/a | n/a |")
            continue
        sampler = ref.resample if isinstance(ref, st.gaussian_kde) else ref
        t_sp = _median_time(lambda s=sampler: s(n), reps)
        print(f"| {name} | {t_hp:.4f} | {t_sp:.4f} | {t_sp / t_hp:.2f} |")


if __name__ == "__main__":
    main()
