"""Peaking distributions against scipy.stats and independent numpy + quad references."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats as st
from scipy.integrate import quad
from scipy.special import voigt_profile

import hepprob
from hepprob.distributions import (
    BreitWigner,
    CrystalBall,
    DoubleCrystalBall,
    JohnsonSU,
    RelativisticBreitWigner,
    Voigtian,
)
from hepprob.errors import ParameterError

INF = np.inf


# --------------------------------------------------------------------------
# independent references, written here in numpy from the published formulas


def cb_density(t: np.ndarray, a: float, n: float) -> np.ndarray:
    """Unnormalised one-sided Crystal Ball (tail below -a), Oreglia's A, B form."""
    t = np.asarray(t, dtype=float)
    big_a = (n / a) ** n * np.exp(-0.5 * a * a)
    big_b = n / a - a
    tail = big_a * np.abs(big_b - np.minimum(t, -a)) ** (-n)
    return np.where(t > -a, np.exp(-0.5 * t * t), tail)


def dcb_density(
    t: np.ndarray, al: float, nl: float, ah: float, nh: float
) -> np.ndarray:
    """Unnormalised double-sided Crystal Ball."""
    t = np.asarray(t, dtype=float)
    left = (nl / al) ** nl * np.exp(-0.5 * al * al)
    left = left * (nl / al - al - np.minimum(t, -al)) ** (-nl)
    right = (nh / ah) ** nh * np.exp(-0.5 * ah * ah)
    right = right * (nh / ah - ah + np.maximum(t, ah)) ** (-nh)
    core = np.exp(-0.5 * t * t)
    return np.where(t < -al, left, np.where(t > ah, right, core))


@dataclass
class Reference:
    """Normalised reference pdf/cdf on [lo, hi] from an unnormalised pdf.

    With ``cdf`` (an unbounded closed form from scipy) the range is applied by
    the cdf difference; otherwise everything comes from scipy.integrate.quad,
    split at ``points``.
    """

    pdf: Callable[[np.ndarray], np.ndarray]
    lo: float
    hi: float
    points: tuple[float, ...] = ()
    cdf: Callable[[np.ndarray], np.ndarray] | None = None
    sf: Callable[[np.ndarray], np.ndarray] | None = None
    norm: float = field(init=False)

    def __post_init__(self) -> None:
        if self.cdf is not None:
            self.norm = float(self.cdf(self.hi) - self.cdf(self.lo))
        else:
            self.norm = self._quad(self.lo, self.hi)

    def _quad(self, a: float, b: float) -> float:
        if a == b:
            return 0.0
        pts = [p for p in self.points if a < p < b]
        edges = [a, *pts, b]
        total = 0.0
        for x0, x1 in itertools.pairwise(edges):
            val, _ = quad(
                lambda v: float(self.pdf(np.asarray(v))),
                x0,
                x1,
                epsabs=0.0,
                epsrel=1e-13,
                limit=400,
            )
            total += val
        return total

    def density(self, x: np.ndarray) -> np.ndarray:
        return self.pdf(x) / self.norm

    def _cumulative(self, x: np.ndarray, *, upper: bool) -> np.ndarray:
        """Integrals from lo to each x (or from each x to hi): quad between sorted points."""
        order = np.argsort(x)
        xs = np.asarray(x, dtype=float)[order]
        if upper:
            knots = [*xs, self.hi]
            pieces = [self._quad(a, b) for a, b in itertools.pairwise(knots)]
            vals = np.cumsum(pieces[::-1])[::-1]
        else:
            knots = [self.lo, *xs]
            vals = np.cumsum([self._quad(a, b) for a, b in itertools.pairwise(knots)])
        out = np.empty_like(vals)
        out[order] = vals
        return out / self.norm

    def cdf_at(self, x: np.ndarray) -> np.ndarray:
        if self.cdf is not None:
            return (self.cdf(x) - self.cdf(self.lo)) / self.norm
        return self._cumulative(x, upper=False)

    def ccdf_at(self, x: np.ndarray) -> np.ndarray:
        """1 - cdf, for relative checks in the upper tail."""
        if self.sf is not None:
            return (self.sf(x) - self.sf(self.hi)) / self.norm
        return self._cumulative(x, upper=True)


@dataclass
class Case:
    """One row of the reference table."""

    id: str
    cls: type
    params: dict[str, float]
    ref: Callable[[], Reference]
    grid: np.ndarray
    has_icdf: bool = True

    def make(self, **overrides: Any) -> Any:
        return self.cls(**{**self.params, **overrides})


def _cb_case(
    cid: str, loc: float, scale: float, alpha: float, n: float, rng=None
) -> Case:
    a = abs(alpha)
    params = {"loc": loc, "scale": scale, "alpha": alpha, "n": n}
    lo, hi = (-INF, INF) if rng is None else rng
    if rng is not None:
        params |= {"low": lo, "high": hi}
    if alpha > 0:
        pdf = lambda x: cb_density((x - loc) / scale, a, n)
        junction = loc - a * scale
    else:
        pdf = lambda x: cb_density((loc - x) / scale, a, n)
        junction = loc + a * scale
    if rng is None and alpha > 0:
        frozen = st.crystalball(a, n, loc=loc, scale=scale)
        ref = lambda: Reference(frozen.pdf, lo, hi, cdf=frozen.cdf, sf=frozen.sf)
    elif rng is None:
        frozen = st.crystalball(a, n, loc=0.0, scale=scale)
        ref = lambda: Reference(
            lambda x: frozen.pdf(loc - x),
            lo,
            hi,
            cdf=lambda x: frozen.sf(loc - x),
            sf=lambda x: frozen.cdf(loc - x),
        )
    else:
        ref = lambda: Reference(pdf, lo, hi, points=(junction, loc))
    if rng is None:
        grid = loc + scale * np.concatenate([np.linspace(-40, 9, 50), [-a, a, 0.0]])
        grid = grid if alpha > 0 else 2 * loc - grid
    else:
        grid = np.concatenate([np.linspace(lo, hi, 50), [junction, loc]])
    return Case(cid, CrystalBall, params, ref, grid)


def _dcb_case(cid: str, p: tuple[float, ...], rng=None) -> Case:
    loc, scale, al, nl, ah, nh = p
    names = ("loc", "scale", "alpha_low", "n_low", "alpha_high", "n_high")
    params = dict(zip(names, p, strict=True))
    lo, hi = (-INF, INF) if rng is None else rng
    if rng is not None:
        params |= {"low": lo, "high": hi}
    pdf = lambda x: dcb_density((x - loc) / scale, al, nl, ah, nh)
    pts = (loc - al * scale, loc, loc + ah * scale)
    ref = lambda: Reference(pdf, lo, hi, points=pts)
    if rng is None:
        grid = loc + scale * np.concatenate([np.linspace(-30, 30, 41), [-al, ah]])
    else:
        grid = np.concatenate([np.linspace(lo, hi, 41), pts])
    return Case(cid, DoubleCrystalBall, params, ref, grid)


def _scipy_case(
    cid: str, cls: type, params: dict, frozen: Any, grid: np.ndarray, rng=None
):
    lo, hi = (-INF, INF) if rng is None else rng
    if rng is not None:
        params = params | {"low": lo, "high": hi}
    ref = lambda: Reference(frozen.pdf, lo, hi, cdf=frozen.cdf, sf=frozen.sf)
    return Case(cid, cls, params, ref, grid)


def _rbw_case(cid: str, mass: float, width: float, rng=None) -> Case:
    params = {"mass": mass, "width": width}
    lo, hi = (0.0, INF) if rng is None else rng
    if rng is not None:
        params |= {"low": lo, "high": hi}
    pdf = lambda m: 1.0 / ((m * m - mass * mass) ** 2 + (mass * width) ** 2)
    ref = lambda: Reference(pdf, lo, hi, points=(mass,))
    grid = np.concatenate(
        [np.linspace(lo, min(hi, 3 * mass), 40), [mass - width, mass, mass + width]]
    )
    if rng is None:
        grid = np.concatenate([grid, [10 * mass, 100 * mass]])
    return Case(cid, RelativisticBreitWigner, params, ref, grid)


def _voigt_case(cid: str, loc: float, sigma: float, gamma: float, rng=None) -> Case:
    params = {"loc": loc, "sigma": sigma, "gamma": gamma}
    lo, hi = (-INF, INF) if rng is None else rng
    if rng is not None:
        params |= {"low": lo, "high": hi}
    pdf = lambda x: voigt_profile(x - loc, sigma, gamma)
    ref = lambda: Reference(pdf, lo, hi, points=(loc,))
    if rng is None:
        grid = loc + np.concatenate([np.linspace(-40, 40, 41), [0.1, -0.3]])
    else:
        grid = np.linspace(lo, hi, 41)
    return Case(cid, Voigtian, params, ref, grid, has_icdf=False)


CASES = [
    _cb_case("cb_low_tail", 0.3, 1.7, 1.5, 3.0),
    _cb_case("cb_high_tail", -1.0, 0.6, -0.8, 2.2),
    _cb_case("cb_range_n<1", 0.0, 1.0, 1.0, 0.6, rng=(-10.0, 4.0)),
    _cb_case("cb_range_n=1_high_tail", 5.0, 0.5, -2.0, 1.0, rng=(3.0, 12.0)),
    _dcb_case("dcb", (0.1, 1.2, 1.3, 2.5, 1.8, 4.0)),
    _dcb_case("dcb_range", (0.0, 1.0, 0.8, 0.9, 1.1, 1.0), rng=(-6.0, 7.0)),
    _scipy_case(
        "bw",
        BreitWigner,
        {"loc": 1.0, "width": 2.0},
        st.cauchy(1.0, 1.0),
        np.concatenate(
            [-np.logspace(0, 5, 20), np.linspace(-3, 5, 17), np.logspace(0, 5, 20)]
        ),
    ),
    _scipy_case(
        "bw_range",
        BreitWigner,
        {"loc": 91.19, "width": 2.5},
        st.cauchy(91.19, 1.25),
        np.linspace(80.0, 100.0, 41),
        rng=(80.0, 100.0),
    ),
    _rbw_case("rbw", 91.19, 2.5),
    _rbw_case("rbw_range_wide", 3.1, 0.8, rng=(1.0, 6.0)),
    _voigt_case("voigt", 0.5, 1.0, 0.3),
    _voigt_case("voigt_range", 0.0, 1.0, 2.0, rng=(-4.0, 9.0)),
    _scipy_case(
        "jsu",
        JohnsonSU,
        {"gamma": 0.4, "delta": 1.3, "loc": -0.5, "scale": 2.0},
        st.johnsonsu(0.4, 1.3, loc=-0.5, scale=2.0),
        np.linspace(-200.0, 60.0, 53),
    ),
    _scipy_case(
        "jsu_range",
        JohnsonSU,
        {"gamma": -1.0, "delta": 0.7, "loc": 0.0, "scale": 1.0},
        st.johnsonsu(-1.0, 0.7),
        np.linspace(-3.0, 20.0, 47),
        rng=(-3.0, 20.0),
    ),
]
IDS = [c.id for c in CASES]


GRID_SIZE = 64
QUANTILES = np.concatenate([np.logspace(-12, -1, 12), np.linspace(0.1, 0.9, 9)])


@dataclass
class Evaluated:
    """One case with its reference and every method evaluated in one compiled call."""

    case: Case
    ref: Reference
    grid: np.ndarray
    out: dict[str, np.ndarray]


# Module-level compiled helpers with the class as a static argument: cases of
# one class and one parameter structure share a single compilation.


@functools.partial(jax.jit, static_argnums=(0, 1))
def _evaluate(cls: type, has_icdf: bool, params: dict, grid: jax.Array) -> dict:
    d = cls(**params)
    half = GRID_SIZE // 2
    a, b = jnp.minimum(grid[:half], grid[half:]), jnp.maximum(grid[:half], grid[half:])
    out = {
        "log_prob": d.log_prob(grid),
        "cdf": d.cdf(grid),
        "upper": d.integral(grid, d.support.upper_bound),
        "integral": d.integral(a, b),
        "integral_reversed": d.integral(b, a),
    }
    if has_icdf:
        x = d.icdf(jnp.asarray(QUANTILES))
        out["roundtrip"] = d.cdf(x)
    return out


@pytest.fixture(scope="module", params=CASES, ids=IDS)
def case(request: pytest.FixtureRequest) -> Evaluated:
    c = request.param
    grid = np.resize(c.grid, GRID_SIZE)  # equal sizes: compiled pieces are reused
    params = {k: jnp.asarray(v, dtype=jnp.float64) for k, v in c.params.items()}
    out = _evaluate(c.cls, c.has_icdf, params, jnp.asarray(grid))
    out = {k: np.asarray(v) for k, v in out.items()}
    return Evaluated(c, c.ref(), grid, out)


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


# --------------------------------------------------------------------------
# values


def test_density_matches_reference(case):
    got = np.exp(case.out["log_prob"])
    assert _rel(got, case.ref.density(case.grid)) < 1e-10


def test_cdf_matches_reference(case):
    want = case.ref.cdf_at(case.grid)
    lower = want <= 0.5
    assert _rel(case.out["cdf"][lower], want[lower]) < 1e-10
    # upper half: 1 - cdf through integral(x, high) against the reference survival
    want_sf = case.ref.ccdf_at(case.grid[~lower])
    assert _rel(case.out["upper"][~lower], want_sf) < 1e-9


def test_integrates_to_one(case):
    c, ref = case.case, case.ref
    lp = jax.jit(c.make().log_prob)
    total = Reference(
        lambda x: np.exp(np.asarray(lp(x))), ref.lo, ref.hi, points=ref.points
    ).norm
    assert abs(total - 1.0) < 1e-10


def test_outside_range_is_minus_inf():
    d = CrystalBall(0.0, 1.0, 1.0, 2.0, low=-3.0, high=3.0, validate_args=False)
    lp = np.asarray(d.log_prob(jnp.array([-3.5, -3.0, 3.0, 4.0])))
    assert np.isneginf(lp[0])
    assert np.isneginf(lp[3])
    assert np.all(np.isfinite(lp[1:3]))
    assert float(d.cdf(-5.0)) == 0.0
    assert float(d.cdf(5.0)) == pytest.approx(1.0, abs=1e-15)


def test_integral_matches_cdf_difference(case):
    half = GRID_SIZE // 2
    lo = np.minimum(case.grid[:half], case.grid[half:])
    hi = np.maximum(case.grid[:half], case.grid[half:])
    want = case.ref.cdf_at(hi) - case.ref.cdf_at(lo)
    np.testing.assert_allclose(case.out["integral"], want, rtol=1e-9, atol=1e-14)
    np.testing.assert_array_equal(case.out["integral_reversed"], -case.out["integral"])


def test_icdf_inverts_cdf(case):
    if not case.case.has_icdf:
        with pytest.raises(NotImplementedError, match="icdf"):
            case.case.make().icdf(0.5)
        return
    np.testing.assert_allclose(case.out["roundtrip"], QUANTILES, rtol=1e-9, atol=1e-15)


# --------------------------------------------------------------------------
# sampling


def _reference_cdf_on(samples: np.ndarray, ref: Reference) -> np.ndarray:
    """Reference cdf at sorted samples: exact at 400 knots, linear in between."""
    s = np.sort(samples)
    knots = np.unique(np.concatenate([s[:: max(1, len(s) // 400)], s[-1:]]))
    return np.interp(s, knots, ref.cdf_at(knots))


@functools.partial(jax.jit, static_argnums=0)
def _draw(cls: type, params: dict, key: jax.Array) -> jax.Array:
    return cls(**params).sample(key, (20_000,))


def test_sample_ks(case):
    ref = case.ref
    params = {k: jnp.asarray(v) for k, v in case.case.params.items()}
    x = np.asarray(_draw(case.case.cls, params, jax.random.PRNGKey(7)))
    assert x.shape == (20_000,)
    assert np.all(np.isfinite(x))
    assert np.all((x >= ref.lo) & (x <= ref.hi))
    stat = st.kstest(_reference_cdf_on(x, ref), "uniform")
    assert stat.pvalue > 1e-3, stat


def test_sample_shapes_and_reproducible():
    def draw(key: jax.Array) -> jax.Array:
        d = DoubleCrystalBall(
            jnp.zeros((2, 1)),
            1.0,
            1.0,
            3.0,
            2.0,
            3.0,
            low=jnp.array([-5.0, -4.0, -3.0]),
            high=5.0,
        )
        assert d.batch_shape == (2, 3)
        return d.sample(key, (4,))

    k = jax.random.PRNGKey(3)
    x = jax.jit(draw)(k)
    assert x.shape == (4, 2, 3)
    np.testing.assert_array_equal(np.asarray(x), np.asarray(jax.jit(draw)(k)))
    assert np.all(np.asarray(x) >= np.array([-5.0, -4.0, -3.0]))


# --------------------------------------------------------------------------
# autodiff, jit, vmap


def _points(case: Evaluated) -> jax.Array:
    """Eight finite interior points of the grid (same size for every case)."""
    g = np.sort(np.unique(case.grid))
    g = g[np.isfinite(g) & (g > case.ref.lo) & (g < case.ref.hi)]
    # shifted off the grid so that no point sits on a C1 junction (FD would be O(h))
    g = g[np.linspace(0, len(g) - 2, 8).astype(int)]
    return jnp.asarray(g + 1e-3 * np.pi)


@functools.partial(jax.jit, static_argnums=0)
def _value_and_grad(cls: type, params: dict, x: jax.Array) -> tuple:
    """Sum of log_prob and its gradient (one compile serves the FD values too)."""
    return jax.value_and_grad(lambda p: jnp.sum(cls(**p).log_prob(x)))(params)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _vmapped(cls: type, name: str, params: dict, values: jax.Array, x: jax.Array):
    return jax.vmap(lambda v: cls(**{**params, name: v}).log_prob(x))(values)


def test_grad_matches_finite_differences(case):
    c = case.case
    x = _points(case)

    p0 = {k: jnp.asarray(v, dtype=jnp.float64) for k, v in c.params.items()}
    _, grad = _value_and_grad(c.cls, p0, x)
    for name in c.params:
        h = 1e-5 * max(1.0, abs(c.params[name]))
        up, _ = _value_and_grad(c.cls, {**p0, name: p0[name] + h}, x)
        dn, _ = _value_and_grad(c.cls, {**p0, name: p0[name] - h}, x)
        fd = float((up - dn) / (2 * h))
        assert np.isfinite(float(grad[name])), name
        assert float(grad[name]) == pytest.approx(fd, rel=2e-6, abs=1e-6), name


def test_jit_equals_eager_and_vmap(case):
    c = case.case
    x = _points(case)
    # the fixture evaluated log_prob under jit on the grid: eager agrees
    head = jnp.asarray(case.grid[:8])
    np.testing.assert_allclose(
        np.asarray(c.make().log_prob(head)), case.out["log_prob"][:8], rtol=1e-13
    )
    eager = np.asarray(c.make().log_prob(x))
    # a batch of three parameter points through vmap == one at a time
    first = next(k for k in c.params if k not in ("low", "high"))
    values = c.params[first] + np.array([0.0, 0.05, 0.1])
    params = {k: jnp.asarray(v, dtype=jnp.float64) for k, v in c.params.items()}
    batched = _vmapped(c.cls, first, params, jnp.asarray(values), x)
    np.testing.assert_allclose(np.asarray(batched[0]), eager, rtol=1e-12)
    # a batched distribution built directly equals the vmapped one
    direct = c.make(**{first: jnp.asarray(values)[:, None]}).log_prob(x)
    np.testing.assert_allclose(np.asarray(direct), np.asarray(batched), rtol=1e-12)


def test_distribution_is_a_pytree_through_jit():
    d = CrystalBall(0.0, 1.0, 1.2, 2.5, low=-4.0, high=4.0)
    out = jax.jit(lambda dist, v: dist.log_prob(v))(d, jnp.array([0.0, -3.0]))
    np.testing.assert_allclose(
        np.asarray(out), np.asarray(d.log_prob(jnp.array([0.0, -3.0])))
    )
    # and a distribution without a range flattens too (low/high are None)
    free = hepprob.dist.CrystalBall(0.0, 1.0, 1.2, 2.5)
    leaves = jax.tree_util.tree_leaves(free)
    assert len(leaves) == 4
    again = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(free), leaves)
    assert again.low is None


def test_support_follows_the_range():
    ranged = CrystalBall(0.0, 1.0, 1.2, 2.5, low=-4.0, high=jnp.array([3.0, 4.0]))
    inside = np.asarray(ranged.support(jnp.array([3.5, 3.5])))
    np.testing.assert_array_equal(inside, [False, True])
    assert bool(CrystalBall(0.0, 1.0, 1.2, 2.5).support(-1e300))
    rbw = RelativisticBreitWigner(91.0, 2.5)
    assert not bool(rbw.support(-1.0))
    assert bool(rbw.support(0.0))


EXTREMES = [
    (
        "cb_junction",
        lambda a: CrystalBall(0.0, 1.0, a, 3.0),
        1.3,
        np.array([-1.3, -1.3 + 1e-12]),
    ),
    (
        "cb_tiny_alpha",
        lambda a: CrystalBall(0.0, 1.0, a, 1.5),
        1e-4,
        np.array([-1e3, 0.0, 1.0]),
    ),
    (
        "cb_big_alpha",
        lambda a: CrystalBall(0.0, 1.0, a, 40.0),
        8.0,
        np.array([-30.0, 30.0]),
    ),
    (
        "cb_n_one_range",
        lambda n: CrystalBall(0.0, 1.0, 1.0, n, -50.0, 5.0),
        1.0,
        np.array([-40.0, 0.0]),
    ),
    (
        "dcb_far_tails",
        lambda a: DoubleCrystalBall(0.0, 1.0, a, 2.0, a, 2.0),
        0.5,
        np.array([-1e6, 1e6]),
    ),
    ("bw_far", lambda w: BreitWigner(0.0, w), 1e-3, np.array([1e8, -1e8, 0.0])),
    (
        "rbw_narrow",
        lambda w: RelativisticBreitWigner(91.0, w),
        1e-4,
        np.array([0.0, 91.0, 1e4]),
    ),
    (
        "voigt_small_gamma",
        lambda g: Voigtian(0.0, 1.0, g),
        1e-3,
        np.array([0.0, 5.0, 30.0]),
    ),
    ("jsu_far", lambda d: JohnsonSU(0.0, d, 0.0, 1.0), 0.3, np.array([-1e12, 1e12])),
]


@pytest.mark.parametrize(
    ("make", "p", "x"), [e[1:] for e in EXTREMES], ids=[e[0] for e in EXTREMES]
)
def test_gradient_finite_at_extremes(make, p, x):
    xs = jnp.asarray(x)

    def both(q: jax.Array) -> tuple:
        value_grad = jax.value_and_grad(lambda r: jnp.sum(make(r).log_prob(xs)))(q)
        return value_grad, jax.vmap(jax.grad(lambda v: make(q).log_prob(v)))(xs)

    (val, grad), g_x = jax.jit(both)(jnp.asarray(p))
    assert np.isfinite(float(val))
    assert np.isfinite(float(grad))
    assert np.all(np.isfinite(np.asarray(g_x)))


# --------------------------------------------------------------------------
# bad input


BAD = [
    (lambda: CrystalBall(0.0, -1.0, 1.0, 2.0), "scale"),
    (lambda: CrystalBall(0.0, 1.0, 0.0, 2.0), "alpha"),
    (lambda: CrystalBall(0.0, 1.0, 1.0, 1.0), "n must be > 1 without a range"),
    (
        lambda: CrystalBall(0.0, 1.0, 1.0, -0.5, low=-1.0, high=1.0),
        "n must be finite and > 0",
    ),
    (lambda: CrystalBall(0.0, 1.0, 1.0, 2.0, low=1.0, high=1.0), "low < high"),
    (lambda: CrystalBall(0.0, 1.0, 1.0, 2.0, low=1.0), "both low and high"),
    (
        lambda: CrystalBall(jnp.zeros(2), jnp.ones(3), 1.0, 2.0),
        r"broadcast.*loc\(2,\).*scale\(3,\)",
    ),
    (lambda: CrystalBall(jnp.nan, 1.0, 1.0, 2.0), "loc"),
    (lambda: DoubleCrystalBall(0.0, 1.0, -1.0, 2.0, 1.0, 2.0), "alpha_low"),
    (lambda: DoubleCrystalBall(0.0, 1.0, 1.0, 2.0, 1.0, 0.9), "n_high"),
    (lambda: BreitWigner(0.0, 0.0), "width"),
    (lambda: RelativisticBreitWigner(-1.0, 1.0), "mass"),
    (lambda: Voigtian(0.0, 1.0, 0.0), "gamma"),
    (lambda: Voigtian(0.0, -1.0, 1.0), "sigma"),
    (lambda: JohnsonSU(0.0, 0.0, 0.0, 1.0), "delta"),
    (lambda: JohnsonSU(0.0, 1.0, 0.0, jnp.array([1.0, -2.0])), r"scale=\[-2.\]"),
]


@pytest.mark.parametrize(("build", "pattern"), BAD)
def test_bad_input_raises_parameter_error(build, pattern):
    with pytest.raises(ParameterError, match=pattern):
        build()


def test_validate_args_flags_out_of_support():
    d = BreitWigner(0.0, 1.0, low=-1.0, high=1.0, validate_args=True)
    with pytest.warns(UserWarning, match="Out-of-support"):
        lp = d.log_prob(2.0)
    assert np.isneginf(float(lp))
