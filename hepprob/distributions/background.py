"""Background shapes: ARGUS, exponential, Chebyshev and Bernstein polynomials on a range."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array, lax
from jax.scipy.special import gammainc, gammaincc, gammaln
from jax.typing import ArrayLike
from numpyro.distributions import Distribution, constraints
from numpyro.distributions.util import lazy_property, promote_shapes, validate_sample

from hepprob.distributions._checks import check, check_range, is_concrete
from hepprob.distributions._quadrature import (
    gauss_legendre,
    solve_increasing,
    table_index,
    table_take,
)
from hepprob.errors import ParameterError

__all__ = ["Argus", "Bernstein", "Chebyshev", "Exponential"]

_DEP = constraints.dependent(is_discrete=False, event_dim=0)
_MAX_ROUNDS = 200  # accept-reject rounds in Argus.sample before giving up (NaN)
# Argus envelope cells: cdf quantiles i/128, plus 40 cells halving the mass at each end
_ENVELOPE_Q = np.concatenate(
    [
        2.0 ** -np.arange(40, 0, -1) / 128,
        np.arange(1, 128) / 128,
        1.0 - 2.0 ** -np.arange(1, 41) / 128,
    ]
)


class _Ranged(Distribution):
    """Private base: a 1-D density on ``[_lo, _hi]`` from two pieces.

    Subclasses implement ``_log_unnorm(x)`` (log of an unnormalised density
    ``g`` inside the support) and ``_mass(a, b)`` (the integral of ``g`` over
    ``[a, b]`` for ``_lo <= a <= b <= _hi``) and set ``_lo``/``_hi``.
    log_prob, cdf, integral, icdf (numeric inversion of the analytic cdf to
    rounding level) and exact sampling by inverse cdf follow here.
    """

    def _broadcast(self, owner: str, params: dict[str, Any]) -> tuple[int, ...]:
        arrays = {k: jnp.asarray(v, dtype=jnp.float64) for k, v in params.items()}
        try:
            shape = lax.broadcast_shapes(*(jnp.shape(v) for v in arrays.values()))
        except ValueError:
            shapes = ", ".join(f"{k}{jnp.shape(v)}" for k, v in arrays.items())
            msg = f"{owner}: parameter shapes must broadcast, got {shapes}"
            raise ParameterError(msg) from None
        for name, value in zip(arrays, promote_shapes(*arrays.values()), strict=True):
            setattr(self, name, value)
        return tuple(shape)

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self) -> constraints.Constraint:
        """``interval`` over the observable range (clipped to the natural support)."""
        return constraints.interval(self._lo, self._hi)

    @lazy_property
    def _total(self) -> Array:
        return self._mass(self._lo, self._hi)

    def _validate_sample(self, value: ArrayLike) -> ArrayLike:
        # as a JAX array, so traced range ends compare without NumPy conversion
        return super()._validate_sample(jnp.asarray(value, dtype=jnp.float64))

    def _inside(self, x: Array) -> tuple[Array, Array]:
        inside = (x >= self._lo) & (x <= self._hi)
        return inside, jnp.where(inside, x, 0.5 * (self._lo + self._hi))

    @validate_sample
    def log_prob(self, value: ArrayLike) -> Array:
        """Log density normalised on the range, ``-inf`` outside it."""
        x = jnp.asarray(value, dtype=jnp.float64)
        inside, xs = self._inside(x)
        lp = self._log_unnorm(xs) - jnp.log(self._total)
        return jnp.where(inside, lp, -jnp.inf)

    def cdf(self, value: ArrayLike) -> Array:
        """Probability of ``[low, value]``."""
        x = jnp.clip(jnp.asarray(value, dtype=jnp.float64), self._lo, self._hi)
        return self._mass(jnp.broadcast_to(self._lo, jnp.shape(x)), x) / self._total

    def integral(self, a: ArrayLike, b: ArrayLike) -> Array:
        """Probability mass of ``[a, b]`` (clipped to the support; negative if a > b)."""
        a = jnp.clip(jnp.asarray(a, dtype=jnp.float64), self._lo, self._hi)
        b = jnp.clip(jnp.asarray(b, dtype=jnp.float64), self._lo, self._hi)
        sign = jnp.where(b >= a, 1.0, -1.0)
        return sign * self._mass(jnp.minimum(a, b), jnp.maximum(a, b)) / self._total

    _icdf_grid: int = 64  # cdf table panels that bracket the numeric inverse cdf

    def _cum_table(self, grid: Array) -> Array:
        """Unnormalised mass of ``[_lo, grid[i]]`` for the table points ``grid``."""
        return self._mass(jnp.broadcast_to(self._lo, grid.shape), grid)

    def _bracket(self) -> tuple[Array, Array]:
        """Finite interval holding all the mass (where the inverse cdf searches)."""
        return self._lo, self._hi

    def _local_mass(self, a: Array, x: Array) -> Array:
        """Unnormalised mass of the short interval ``[a, x]`` inside one table panel."""
        return self._mass(a, x)

    def icdf(self, q: ArrayLike) -> Array:
        """Inverse cdf: Newton–bisection on the cdf, to rounding level.

        A table of the cdf at ``_icdf_grid + 1`` points brackets each root in
        one panel (binary search); the start inverts the trapezoid through the
        panel's end densities, and Newton steps inside the panel use the mass
        of ``[panel start, x]`` (each element stops once converged).
        """
        q = jnp.asarray(q, dtype=jnp.float64)
        lo, hi = self._bracket()
        n = self._icdf_grid
        frac = jnp.linspace(0.0, 1.0, n + 1).reshape((-1,) + (1,) * jnp.ndim(lo))
        grid = lo + (hi - lo) * frac
        table = jax.lax.stop_gradient(self._cum_table(grid))
        table = table.at[-1].set(jnp.maximum(table[-1], self._total))
        dens = jax.lax.stop_gradient(jnp.exp(self._log_unnorm(grid)))
        total = self._total
        target = q * total
        k = table_index(table, jax.lax.stop_gradient(target))
        width = (hi - lo) / n
        a = lo + width * k
        b = jnp.where(k == n - 1, hi, a + width)
        t_a, t_b = table_take(table, k), table_take(table, k + 1)
        rest = target - t_a
        frac_mass = jnp.clip(rest / jnp.where(t_b > t_a, t_b - t_a, 1.0), 0.0, 1.0)
        start = a + (b - a) * _trapezoid_root(
            table_take(dens, k), table_take(dens, k + 1), frac_mass
        )
        scale = jnp.where(target > 0, target, 1.0)

        def g(x: Array) -> tuple[Array, Array]:
            # residual relative to the target mass: rounding level is ~1e-16
            val = (self._local_mass(a, x) - rest) / scale
            return val, jnp.exp(self._log_unnorm(x)) / scale

        # the cdf is known to ~1e-16 of the total mass: steps below ~1e-15 of
        # the range are rounding noise, not progress
        xtol = 1e-15 * jnp.abs(hi - lo)
        return solve_increasing(g, a, b, start, iterations=40, ftol=1e-14, xtol=xtol)

    def sample(self, key: Array, sample_shape: tuple[int, ...] = ()) -> Array:
        """Exact samples by inverse cdf, shape ``sample_shape + batch_shape``."""
        shape = tuple(sample_shape) + self.batch_shape
        return self.icdf(jax.random.uniform(key, shape, dtype=jnp.float64))

    def _log_unnorm(self, x: Array) -> Array:
        raise NotImplementedError

    def _mass(self, a: Array, b: Array) -> Array:
        raise NotImplementedError


class Exponential(_Ranged):
    r"""Exponential shape on a range, slope of either sign.

    .. math::
        f(x) = \frac{\lambda\, e^{\lambda (x - a)}}{e^{\lambda (b - a)} - 1},
        \qquad a \le x \le b,

    the uniform density at :math:`\lambda = 0` (reached smoothly: every formula
    uses :math:`\log((e^y - 1)/y)` and ``log1p``/``expm1`` forms). cdf, icdf and
    :meth:`integral` are closed forms. Reference: RooExponential; a closed form.

    Args:
        lam: slope :math:`\lambda` (any real).
        low: lower end :math:`a` of the range (required).
        high: upper end :math:`b` of the range (required).
        validate_args: NumPyro's argument validation switch.

    Example:
        >>> from hepprob.distributions import Exponential
        >>> round(float(Exponential(-1.0, 0.0, 1.0).cdf(0.5)), 6)
        0.622459
    """

    arg_constraints = {"lam": constraints.real, "low": _DEP, "high": _DEP}  # noqa: RUF012

    def __init__(
        self,
        lam: ArrayLike,
        low: ArrayLike,
        high: ArrayLike,
        *,
        validate_args: bool | None = None,
    ) -> None:
        check("Exponential", "lam", lam, np.isfinite, "finite")
        if low is None or high is None:
            msg = f"Exponential: needs a finite range low < high, got low={low}, high={high}"
            raise ParameterError(msg)
        check_range("Exponential", low, high)
        shape = self._broadcast("Exponential", {"lam": lam, "low": low, "high": high})
        self._lo, self._hi = self.low, self.high
        super().__init__(shape, validate_args=validate_args)

    @lazy_property
    def _log_total(self) -> Array:
        width = self.high - self.low
        return jnp.log(width) + _log_exprel(self.lam * width)

    def _log_unnorm(self, x: Array) -> Array:
        return self.lam * (x - self.low)

    def _log_mass(self, a: Array, b: Array) -> Array:
        """Log of the unnormalised mass of ``[a, b]`` (``-inf`` for ``a == b``)."""
        d = b - a
        pos = d > 0
        d_safe = jnp.where(pos, d, 1.0)
        out = (
            self.lam * (a - self.low) + jnp.log(d_safe) + _log_exprel(self.lam * d_safe)
        )
        return jnp.where(pos, out, -jnp.inf)

    def _mass(self, a: Array, b: Array) -> Array:
        return jnp.exp(self._log_mass(a, b))

    @validate_sample
    def log_prob(self, value: ArrayLike) -> Array:
        """Log density, ``-inf`` outside ``[low, high]``."""
        x = jnp.asarray(value, dtype=jnp.float64)
        inside, xs = self._inside(x)
        return jnp.where(inside, self._log_unnorm(xs) - self._log_total, -jnp.inf)

    def cdf(self, value: ArrayLike) -> Array:
        """Closed-form cdf :math:`(e^{\\lambda(x-a)} - 1)/(e^{\\lambda(b-a)} - 1)`."""
        x = jnp.clip(jnp.asarray(value, dtype=jnp.float64), self.low, self.high)
        return jnp.exp(
            self._log_mass(jnp.broadcast_to(self.low, x.shape), x) - self._log_total
        )

    def integral(self, a: ArrayLike, b: ArrayLike) -> Array:
        """Probability mass of ``[a, b]`` (clipped to the range; negative if a > b)."""
        a = jnp.clip(jnp.asarray(a, dtype=jnp.float64), self.low, self.high)
        b = jnp.clip(jnp.asarray(b, dtype=jnp.float64), self.low, self.high)
        sign = jnp.where(b >= a, 1.0, -1.0)
        lm = self._log_mass(jnp.minimum(a, b), jnp.maximum(a, b))
        return sign * jnp.exp(lm - self._log_total)

    def icdf(self, q: ArrayLike) -> Array:
        """Closed-form inverse cdf, stable for large :math:`|\\lambda|` and at 0."""
        q = jnp.asarray(q, dtype=jnp.float64)
        width = self.high - self.low
        y = self.lam * width
        small = jnp.abs(y) < 1e-12
        lam_s = jnp.where(small, 1.0, self.lam)
        y_s = jnp.where(small, 1.0, y)
        # x - a = log1p(q expm1(y)) / lam, and for y > 700 (expm1 overflows)
        # the equivalent L + log(q + (1 - q) e^{-y}) / lam
        direct = jnp.log1p(q * jnp.expm1(jnp.minimum(y_s, 700.0))) / lam_s
        big = width + jnp.log(q + (1.0 - q) * jnp.exp(-jnp.maximum(y_s, 700.0))) / lam_s
        t = jnp.where(
            small,
            q * width * (1.0 + 0.5 * y * (1.0 - q)),
            jnp.where(y > 700.0, big, direct),
        )
        return jnp.clip(self.low + t, self.low, self.high)


class Argus(_Ranged):
    r"""ARGUS background (RooArgusBG shape), support :math:`0 \le m \le m_0`.

    .. math::
        f(m) \propto m \left(1 - \frac{m^2}{m_0^2}\right)^{p}
        \exp\!\left[c \left(1 - \frac{m^2}{m_0^2}\right)\right].

    With :math:`u = 1 - m^2/m_0^2` the mass of :math:`[m_1, m_2]` is
    :math:`\tfrac{m_0^2}{2}\int_{u_2}^{u_1} u^p e^{c u}\,du`: for
    :math:`u \le 1/2` an incomplete gamma function
    :math:`k^{-(p+1)}\gamma(p+1, k u)`, :math:`k = -c`, when :math:`c < -2`, else
    the series :math:`u^{p+1}\sum_n (cu)^n/(n!\,(p+1+n))` (smooth through
    :math:`c = 0`; :math:`c > 0` allowed up to 50); for :math:`u > 1/2` (low
    :math:`m`) a 32-point Gauss–Legendre rule on the analytic integrand, exact
    to rounding, so the low-mass tail keeps full relative precision.
    For :math:`p = 1/2` it equals ``scipy.stats.argus(chi, scale=m0)`` with
    :math:`c = -\chi^2/2`. Reference: H. Albrecht et al. (ARGUS), Phys. Lett.
    B 241 (1990) 278; RooArgusBG. cdf and :meth:`integral` are analytic; icdf
    inverts the analytic cdf numerically to rounding level; :meth:`sample` is
    exact accept–reject in :math:`s = u^{p+1}`, where the density is monotone.

    Args:
        m0: kinematic end point :math:`m_0 > 0`.
        c: curvature :math:`c \le 50` (usually negative).
        p: power :math:`p > -1` (0.5 is the classic ARGUS function).
        low: lower end of the observable range (optional, with ``high``);
            the range is clipped to :math:`[0, m_0]`.
        high: upper end of the observable range.
        validate_args: NumPyro's argument validation switch.

    Example:
        >>> from hepprob.distributions import Argus
        >>> round(float(Argus(1.0, -2.0).cdf(1.0)), 6)
        1.0
    """

    arg_constraints = {  # noqa: RUF012
        "m0": constraints.positive,
        "c": constraints.less_than(50.0),
        "p": constraints.greater_than(-1.0),
        "low": _DEP,
        "high": _DEP,
    }

    def __init__(
        self,
        m0: ArrayLike,
        c: ArrayLike,
        p: ArrayLike = 0.5,
        low: ArrayLike | None = None,
        high: ArrayLike | None = None,
        *,
        validate_args: bool | None = None,
    ) -> None:
        check("Argus", "m0", m0, lambda v: (v > 0) & np.isfinite(v), "finite and > 0")
        check("Argus", "c", c, lambda v: v <= 50.0, "<= 50 (finite)")
        check("Argus", "p", p, lambda v: (v > -1) & np.isfinite(v), "finite and > -1")
        check_range("Argus", low, high)
        params = {"m0": m0, "c": c, "p": p}
        if low is not None:
            params.update(low=low, high=high)
        shape = self._broadcast("Argus", params)
        if low is None:
            self.low = self.high = None
            self._lo, self._hi = jnp.zeros_like(self.m0), self.m0
        else:
            self._lo = jnp.maximum(self.low, 0.0)
            self._hi = jnp.minimum(self.high, self.m0)
            if is_concrete((self._lo, self._hi)) and not np.all(
                np.asarray(self._lo) < np.asarray(self._hi)
            ):
                msg = (
                    "Argus: the range [low, high] must overlap the support [0, m0], "
                    f"got low={low}, high={high}, m0={m0}"
                )
                raise ParameterError(msg)
        # series terms: enough for the largest concrete c (all c < 0 need few)
        c_max = float(np.max(np.asarray(c))) if is_concrete(c) else 50.0
        self._terms = int(
            30 + max(c_max, 0.0) * 1.6 + 12.0 * math.sqrt(max(c_max, 0.0))
        )
        super().__init__(shape, validate_args=validate_args)

    def _log_unnorm(self, x: Array) -> Array:
        u = 1.0 - (x / self.m0) ** 2
        return jnp.log(x) + _xlogy(self.p, u) + self.c * u

    def _series(self, u: Array) -> Array:
        """:math:`\\int_0^u v^p e^{c v} dv = u^{p+1}\\sum_n (cu)^n / (n!(p+1+n))`."""
        a = self.p + 1.0
        pos = u > 0
        us = jnp.where(pos, u, 0.5)
        zs = self.c * us

        def body(n: int, carry: tuple[Array, Array]) -> tuple[Array, Array]:
            term, acc = carry
            term = term * zs / n
            return term, acc + term / (a + n)

        init = (jnp.ones_like(zs), 1.0 / a + 0.0 * zs)
        series = lax.fori_loop(1, self._terms, body, init)[1]
        return jnp.where(pos, jnp.exp(a * jnp.log(us)) * series, 0.0)

    def _gamma_diff(self, x: Array, y: Array, use: Array) -> Array:
        """:math:`\\int_x^y v^p e^{cv} dv` for ``c < 0`` via regularised gamma functions.

        Uses the difference of ``P`` below the mode and of ``Q`` above it, so a
        small mass is never the difference of two numbers near 1.
        """
        a = self.p + 1.0
        k = jnp.where(use, -self.c, 1.0)
        kx, ky = k * x, k * y
        use_p = ky < a
        diff = jnp.where(
            use_p,
            gammainc(a, ky) - gammainc(a, kx),
            gammaincc(a, kx) - gammaincc(a, ky),
        )
        return jnp.exp(gammaln(a) - a * jnp.log(k)) * diff

    def _u_mass(self, wx: Array, wy: Array) -> Array:
        """:math:`\\int_{1-wy}^{1-wx} v^p e^{cv} dv` for ``0 <= wx <= wy <= 1``.

        ``w = m^2/m_0^2 = 1 - u`` is passed instead of ``u`` so that low masses
        keep full precision. Split at ``u = 1/2``: below, the incomplete gamma
        function (``c < -2``) or the power series; above (low ``m``), where the
        integrand is analytic, 32-point Gauss–Legendre in ``w`` (exact to
        rounding for ``c >= -100``; the gamma form beyond).
        """
        x1 = 1.0 - jnp.maximum(wy, 0.5)
        y1 = 1.0 - jnp.maximum(wx, 0.5)
        use_g = self.c < -2.0
        low = jnp.where(
            use_g,
            self._gamma_diff(x1, y1, use_g),
            self._series(y1) - self._series(x1),
        )
        w1, w2 = jnp.minimum(wx, 0.5), jnp.minimum(wy, 0.5)
        nodes, weights = gauss_legendre(32)
        shape = (nodes.size,) + (1,) * jnp.ndim(w1 + w2 + self.c + self.p)
        w = 0.5 * (w1 + w2) + 0.5 * (w2 - w1) * nodes.reshape(shape)
        v = 1.0 - w
        vals = jnp.exp(self.p * jnp.log(v) + self.c * v)
        quad = 0.5 * (w2 - w1) * jnp.sum(weights.reshape(shape) * vals, axis=0)
        far = self.c < -100.0
        high = jnp.where(far, self._gamma_diff(1.0 - w2, 1.0 - w1, far), quad)
        return low + high

    _icdf_grid = 256

    def sample(self, key: Array, sample_shape: tuple[int, ...] = ()) -> Array:
        r"""Exact samples by accept–reject, shape ``sample_shape + batch_shape``.

        In :math:`s = u^{p+1}` the density is :math:`\propto e^{c\,s^{1/(p+1)}}`,
        monotone in :math:`s`, so on any cell its largest value sits at an end
        point: a piecewise-constant envelope over cells between cdf quantiles
        (equal-mass cells plus cells halving the mass towards both ends) bounds
        it exactly, and acceptance is close to 1 for every ``c``, ``p`` and
        range. Positions are drawn in ``s`` and in ``r = 1 - s`` so that both
        ends of the range keep full precision. Draws still rejected after
        ``_MAX_ROUNDS`` rounds (never seen in practice) come back as NaN.
        """
        rows = math.prod(tuple(sample_shape))
        r_n, s_n, cu_n = self._envelope()
        w_r = jnp.maximum(r_n[1:] - r_n[:-1], 0.0)
        w_s = jnp.maximum(s_n[:-1] - s_n[1:], 0.0)
        log_bound = jnp.maximum(cu_n[1:], cu_n[:-1])  # log of max e^{c u} per cell
        mass = w_r * jnp.exp(log_bound - jnp.max(log_bound, axis=0))
        cum = jnp.cumsum(mass, axis=0)
        cum = jnp.concatenate([jnp.zeros_like(cum[:1]), cum / cum[-1:]], axis=0)
        ap = self.p + 1.0

        def propose(k: Array, n: int) -> tuple[Array, Array]:
            shape = (n, *self.batch_shape)
            k_cell, k_pos, k_acc = jax.random.split(k, 3)
            j = table_index(cum, jax.random.uniform(k_cell, shape, dtype=jnp.float64))
            t = jax.random.uniform(k_pos, shape, dtype=jnp.float64)
            r = jnp.clip(table_take(r_n, j) + t * table_take(w_r, j), 0.0, 1.0)
            s_ = jnp.clip(table_take(s_n, j) - t * table_take(w_s, j), 0.0, 1.0)
            # log u from whichever of s, r = 1 - s is accurate; then w = -expm1(log u)
            log_u = jnp.where(s_ < 0.5, jnp.log(s_), jnp.log1p(-jnp.minimum(r, 0.5)))
            log_u = log_u / ap
            m = self.m0 * jnp.sqrt(-jnp.expm1(log_u))
            log_acc = self.c * jnp.exp(log_u) - table_take(log_bound, j)
            u_acc = jax.random.uniform(k_acc, shape, dtype=jnp.float64)
            return jnp.clip(m, self._lo, self._hi), jnp.log(u_acc) <= log_acc

        # refills: a small buffer of fresh proposals goes, in order, to the
        # rejected rows of each batch column (cheap: rejections are rare)
        buf = rows // 16 + 64

        def body(state: tuple[Array, Array, Array, Array]) -> tuple:
            x, ok, k, it = state
            k, sub = jax.random.split(k)
            cand, acc = propose(sub, buf)
            rank = jnp.cumsum(~ok, axis=0) - 1
            idx = jnp.clip(rank, 0, buf - 1)
            take = ~ok & (rank < buf) & jnp.take_along_axis(acc, idx, axis=0)
            x = jnp.where(take, jnp.take_along_axis(cand, idx, axis=0), x)
            return x, ok | take, k, it + 1

        def cond(state: tuple[Array, Array, Array, Array]) -> Array:
            return (~jnp.all(state[1])) & (state[3] < _MAX_ROUNDS)

        key, sub = jax.random.split(key)
        x0, ok0 = propose(sub, rows)
        x, ok, _, _ = lax.while_loop(cond, body, (x0, ok0, key, jnp.asarray(0)))
        out = jnp.where(ok, x, jnp.nan)
        return out.reshape(tuple(sample_shape) + self.batch_shape)

    def _envelope(self) -> tuple[Array, Array, Array]:
        """Cell ends at cdf quantiles: ``r = 1 - s``, ``s = u^{p+1}`` and ``c u``.

        Any increasing set of nodes gives an exact envelope; quantiles only make
        it tight. Shapes ``(cells + 1, *batch)``, ordered by increasing ``m``.
        """
        q = jnp.asarray(_ENVELOPE_Q).reshape((-1,) + (1,) * len(self.batch_shape))
        inner = jax.lax.stop_gradient(self.icdf(q))
        lo = jnp.broadcast_to(self._lo, inner.shape[1:])[None]
        hi = jnp.broadcast_to(self._hi, inner.shape[1:])[None]
        m = jnp.sort(jnp.concatenate([lo, jnp.clip(inner, lo, hi), hi]), axis=0)
        m = jax.lax.stop_gradient(m)
        x = m / self.m0
        ap = self.p + 1.0
        log_s = ap * jnp.log1p(-jnp.minimum(x * x, 1.0))
        u = (1.0 - x) * (1.0 + x)
        return -jnp.expm1(log_s), jnp.exp(log_s), self.c * u

    def _local_mass(self, a: Array, x: Array) -> Array:
        """Mass of a short ``[a, x]`` by 16-point Gauss–Legendre in ``s = u^{p+1}``.

        With :math:`s = u^{p+1}`, :math:`u^p e^{cu} du = e^{c s^{1/(p+1)}} ds/(p+1)`
        is bounded, so the rule stays accurate even in the panel next to
        :math:`m_0`; avoids the (slow) incomplete gamma function in sampling.
        """
        ap = self.p + 1.0
        s_a = jnp.clip(1.0 - (a / self.m0) ** 2, 0.0, 1.0) ** ap
        s_x = jnp.clip(1.0 - (x / self.m0) ** 2, 0.0, 1.0) ** ap
        nodes, weights = gauss_legendre(16)
        shape = (nodes.size,) + (1,) * jnp.ndim(s_a + s_x + self.c)
        sv = 0.5 * (s_a + s_x) + 0.5 * (s_a - s_x) * nodes.reshape(shape)
        u = jnp.exp(jnp.log(jnp.maximum(sv, 1e-300)) / ap)
        vals = jnp.exp(self.c * u)
        integral = 0.5 * (s_a - s_x) * jnp.sum(weights.reshape(shape) * vals, axis=0)
        return 0.5 * self.m0**2 * integral / ap

    def _mass(self, a: Array, b: Array) -> Array:
        w_a = jnp.clip((a / self.m0) ** 2, 0.0, 1.0)
        w_b = jnp.clip((b / self.m0) ** 2, 0.0, 1.0)
        return 0.5 * self.m0**2 * self._u_mass(w_a, w_b)


class Chebyshev(_Ranged):
    r"""Chebyshev polynomial shape on a range (RooChebychev convention).

    .. math::
        f(x) \propto 1 + \sum_{k=1}^{K} a_k T_k(t),\qquad
        t = \frac{2x - (b + a)}{b - a} \in [-1, 1],

    with :math:`T_k` the Chebyshev polynomials of the first kind; the
    coefficient of :math:`T_0` is fixed to 1 and ``coeffs`` holds
    :math:`a_1..a_K` (last axis; leading axes are batch). Normalised with the
    antiderivative :math:`\int T_k = \tfrac12[T_{k+1}/(k+1) - T_{k-1}/(k-1)]`
    (Abramowitz & Stegun 22.13.11 ff.). Concrete coefficients giving a negative
    density anywhere on the range raise ``ParameterError`` (checked exactly at
    the end points and the real critical points); with traced coefficients a
    negative density shows as NaN in ``log_prob``.

    Args:
        coeffs: :math:`(a_1, \dots, a_K)`, shape ``batch + (K,)``, ``K >= 0``.
        low: lower end :math:`a` of the range (required).
        high: upper end :math:`b` of the range (required).
        validate_args: NumPyro's argument validation switch.

    Example:
        >>> from hepprob.distributions import Chebyshev
        >>> round(float(Chebyshev([0.3], 0.0, 1.0).cdf(0.5)), 6)
        0.425
    """

    arg_constraints = {"coeffs": constraints.real_vector, "low": _DEP, "high": _DEP}  # noqa: RUF012

    def __init__(
        self,
        coeffs: ArrayLike,
        low: ArrayLike,
        high: ArrayLike,
        *,
        validate_args: bool | None = None,
    ) -> None:
        self.coeffs, shape = _poly_setup(self, "Chebyshev", coeffs, low, high, 0)
        if is_concrete(coeffs):
            _check_nonnegative("Chebyshev", np.asarray(self.coeffs), _cheb_numpy)
        super().__init__(shape, validate_args=validate_args)

    def _t(self, x: Array) -> Array:
        return (2.0 * x - (self.high + self.low)) / (self.high - self.low)

    def _log_unnorm(self, x: Array) -> Array:
        t = self._t(x)
        tk = _chebyshev_t(t, self.coeffs.shape[-1])
        f = tk[0]
        for k in range(1, self.coeffs.shape[-1] + 1):
            f = f + self.coeffs[..., k - 1] * tk[k]
        return jnp.log(f)

    def _prim(self, x: Array) -> Array:
        t = self._t(x)
        n = self.coeffs.shape[-1]
        tk = _chebyshev_t(t, n + 1)
        out = tk[1]
        for k in range(1, n + 1):
            a = self.coeffs[..., k - 1]
            piece = (
                tk[2] / 4.0
                if k == 1
                else 0.5 * (tk[k + 1] / (k + 1) - tk[k - 1] / (k - 1))
            )
            out = out + a * piece
        return 0.5 * (self.high - self.low) * out

    def _mass(self, a: Array, b: Array) -> Array:
        return self._prim(b) - self._prim(a)


class Bernstein(_Ranged):
    r"""Bernstein polynomial shape on a range (RooBernstein convention).

    .. math::
        f(x) \propto \sum_{k=0}^{n} \beta_k\, \binom{n}{k} s^k (1 - s)^{n-k},
        \qquad s = \frac{x - a}{b - a},

    ``coeffs`` holds all :math:`n + 1` coefficients :math:`\beta_0..\beta_n`
    (last axis; leading axes are batch). Normalised with
    :math:`\int_0^s B_{k,n} = \tfrac{1}{n+1}\sum_{j>k} B_{j,n+1}(s)`, so
    the cdf is a Bernstein polynomial of degree :math:`n+1` (R. T. Farouki,
    CAGD 29 (2012) 379). Non-negative coefficients guarantee a non-negative
    density; otherwise concrete coefficients are checked exactly (end points
    and critical points) and a negative region raises ``ParameterError``;
    traced ones show it as NaN in ``log_prob``.

    Args:
        coeffs: :math:`(\beta_0, \dots, \beta_n)`, shape ``batch + (n+1,)``.
        low: lower end :math:`a` of the range (required).
        high: upper end :math:`b` of the range (required).
        validate_args: NumPyro's argument validation switch.

    Example:
        >>> from hepprob.distributions import Bernstein
        >>> round(float(Bernstein([1.0, 1.0], 0.0, 2.0).cdf(1.0)), 6)
        0.5
    """

    arg_constraints = {"coeffs": constraints.real_vector, "low": _DEP, "high": _DEP}  # noqa: RUF012

    def __init__(
        self,
        coeffs: ArrayLike,
        low: ArrayLike,
        high: ArrayLike,
        *,
        validate_args: bool | None = None,
    ) -> None:
        self.coeffs, shape = _poly_setup(self, "Bernstein", coeffs, low, high, 1)
        if is_concrete(coeffs):
            _check_nonnegative("Bernstein", np.asarray(self.coeffs), _bern_numpy)
        super().__init__(shape, validate_args=validate_args)

    def _s(self, x: Array) -> Array:
        return (x - self.low) / (self.high - self.low)

    def _log_unnorm(self, x: Array) -> Array:
        s = self._s(x)
        n = self.coeffs.shape[-1] - 1
        basis = _bernstein_basis(s, n)
        f = sum(self.coeffs[..., k] * basis[k] for k in range(n + 1))
        return jnp.log(f)

    def _prim(self, x: Array) -> Array:
        s = self._s(x)
        n = self.coeffs.shape[-1] - 1
        basis = _bernstein_basis(s, n + 1)
        partial = jnp.cumsum(self.coeffs, axis=-1)
        out = sum(partial[..., j - 1] * basis[j] for j in range(1, n + 2))
        return (self.high - self.low) * out / (n + 1)

    def _mass(self, a: Array, b: Array) -> Array:
        return self._prim(b) - self._prim(a)


def _log_exprel(y: Array) -> Array:
    """:math:`\\log((e^y - 1)/y)`, smooth through 0 (value 0) and for large ``|y|``."""
    small = jnp.abs(y) < 1e-3
    ys = jnp.where(small, 1.0, y)
    big = (
        jnp.maximum(ys, 0.0) + jnp.log(-jnp.expm1(-jnp.abs(ys))) - jnp.log(jnp.abs(ys))
    )
    y2 = y * y
    series = 0.5 * y + y2 / 24.0 - y2 * y2 / 2880.0 + y2 * y2 * y2 / 181440.0
    return jnp.where(small, series, big)


def _xlogy(p: Array, u: Array) -> Array:
    """:math:`p \\log u` with ``0 log 0 = 0``, grad-safe at ``u = 0``."""
    pos = u > 0
    return jnp.where(
        pos, p * jnp.log(jnp.where(pos, u, 1.0)), jnp.where(p == 0, 0.0, -jnp.inf)
    )


def _take(table: Array, k: Array) -> Array:
    """``table[k]`` elementwise along the first axis (batch axes broadcast)."""
    return table_take(table, k)


def _trapezoid_root(g_a: Array, g_b: Array, f: Array) -> Array:
    """Fraction ``t`` of a panel holding the mass fraction ``f`` under a linear density.

    The density runs linearly from ``g_a`` to ``g_b``; solves
    ``g_a t + (g_b - g_a) t^2 / 2 = f (g_a + g_b) / 2`` in its stable form.
    Falls back to ``t = f`` where the end densities are not finite and positive.
    """
    ok = jnp.isfinite(g_a) & jnp.isfinite(g_b) & (g_a + g_b > 0)
    g_a, g_b = jnp.where(ok, g_a, 1.0), jnp.where(ok, g_b, 1.0)
    r = f * 0.5 * (g_a + g_b)
    disc = jnp.sqrt(jnp.maximum(g_a * g_a + 2.0 * (g_b - g_a) * r, 0.0))
    den = g_a + disc
    t = jnp.where(den > 0, 2.0 * r / jnp.where(den > 0, den, 1.0), f)
    return jnp.clip(jnp.where(ok, t, f), 0.0, 1.0)


def _chebyshev_t(t: Array, n: int) -> list[Array]:
    """:math:`T_0(t), \\dots, T_n(t)` by the three-term recurrence."""
    out = [jnp.ones_like(t), t]
    for _ in range(2, n + 1):
        out.append(2.0 * t * out[-1] - out[-2])
    return out[: n + 1]


def _bernstein_basis(s: Array, n: int) -> list[Array]:
    """:math:`B_{k,n}(s)` for ``k = 0..n`` with integer powers (grad-safe at 0, 1)."""
    pw_s, pw_r = [jnp.ones_like(s)], [jnp.ones_like(s)]
    for _ in range(n):
        pw_s.append(pw_s[-1] * s)
        pw_r.append(pw_r[-1] * (1.0 - s))
    return [math.comb(n, k) * pw_s[k] * pw_r[n - k] for k in range(n + 1)]


def _poly_setup(
    self: _Ranged, owner: str, coeffs: ArrayLike, low: Any, high: Any, min_len: int
) -> tuple[Array, tuple[int, ...]]:
    if low is None or high is None:
        msg = f"{owner}: needs a finite range low < high, got low={low}, high={high}"
        raise ParameterError(msg)
    check_range(owner, low, high)
    coeffs = jnp.asarray(coeffs, dtype=jnp.float64)
    if coeffs.ndim < 1 or coeffs.shape[-1] < min_len:
        msg = (
            f"{owner}: coeffs must be an array whose last axis holds at least "
            f"{min_len} coefficient(s), got shape {coeffs.shape}"
        )
        raise ParameterError(msg)
    check(owner, "coeffs", coeffs, np.isfinite, "finite")
    shape = self._broadcast(owner, {"low": low, "high": high})
    try:
        shape = lax.broadcast_shapes(shape, coeffs.shape[:-1])
    except ValueError:
        msg = (
            f"{owner}: coeffs batch shape {coeffs.shape[:-1]} does not broadcast "
            f"with low/high shape {shape}"
        )
        raise ParameterError(msg) from None
    self.low = jnp.broadcast_to(self.low, shape)
    self.high = jnp.broadcast_to(self.high, shape)
    self._lo, self._hi = self.low, self.high
    return jnp.broadcast_to(coeffs, (*shape, coeffs.shape[-1])), tuple(shape)


def _cheb_numpy(row: np.ndarray) -> np.polynomial.Polynomial:
    return np.polynomial.Chebyshev(np.concatenate([[1.0], row])).convert(
        kind=np.polynomial.Polynomial
    )


def _bern_numpy(row: np.ndarray) -> np.polynomial.Polynomial:
    n = row.size - 1
    s = np.polynomial.Polynomial([0.5, 0.5])  # t in [-1, 1] -> s = (t + 1) / 2
    out = np.polynomial.Polynomial([0.0])
    for k, b in enumerate(row):
        out = out + b * math.comb(n, k) * s**k * (1 - s) ** (n - k)
    return out


def _check_nonnegative(owner: str, coeffs: np.ndarray, to_poly: Any) -> None:
    """Exact check that the polynomial is >= 0 on [-1, 1] (ends + critical points)."""
    if coeffs.shape[-1] == 0:
        return  # Chebyshev with only T_0: the uniform density
    rows = coeffs.reshape(-1, coeffs.shape[-1])
    for row in rows:
        if owner == "Bernstein" and np.all(row >= 0):
            if np.any(row > 0):
                continue
            msg = f"{owner}: coeffs must not all be zero, got coeffs={row}"
            raise ParameterError(msg)
        poly = to_poly(row)
        roots = poly.deriv().roots() if poly.degree() > 1 else np.array([])
        real = roots[np.abs(roots.imag) < 1e-9].real if roots.size else roots
        pts = np.concatenate([[-1.0, 1.0], real[(real > -1) & (real < 1)]])
        vals = poly(pts)
        if np.min(vals) < -1e-12 * max(np.max(np.abs(vals)), 1.0):
            where = pts[np.argmin(vals)]
            msg = (
                f"{owner}: coeffs must give a density >= 0 on the range, got "
                f"coeffs={row} with density {np.min(vals):.4g} at standardised "
                f"t={where:.4g} (t in [-1, 1])"
            )
            raise ParameterError(msg)
