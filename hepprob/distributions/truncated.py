"""Truncation: any 1-D NumPyro distribution normalised on an observable range."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike
from numpyro.distributions import Distribution, constraints
from numpyro.distributions.util import lazy_property, validate_sample

from hepprob.distributions._checks import check_range, is_concrete
from hepprob.distributions._quadrature import (
    gauss_legendre,
    solve_increasing,
    table_index,
    table_take,
)
from hepprob.distributions.background import _Ranged, _take, _trapezoid_root
from hepprob.errors import ParameterError

__all__ = ["Truncated", "range_mass"]


def range_mass(dist: Distribution, low: ArrayLike, high: ArrayLike) -> Array:
    """Probability that ``dist`` puts on ``[low, high]``, from its ``cdf``.

    The normaliser of any 1-D distribution restricted to a range: the log
    density on the range is ``dist.log_prob(x) - log(range_mass(dist, low, high))``.
    It is ``cdf(high) - cdf(low)``: full relative precision unless both ends lie
    far in the upper tail, where the cdf rounds to 1.

    Example:
        >>> import numpyro.distributions as nd
        >>> round(float(range_mass(nd.Normal(0.0, 1.0), -1.0, 1.0)), 6)
        0.682689
    """
    low = jnp.asarray(low, dtype=jnp.float64)
    high = jnp.asarray(high, dtype=jnp.float64)
    return dist.cdf(high) - dist.cdf(low)


class Truncated(_Ranged):
    r"""A 1-D NumPyro distribution restricted and renormalised to ``[low, high]``.

    .. math::
        f(x) = \frac{g(x)}{\int_a^b g(t)\,dt},\qquad a \le x \le b,

    with ``g`` the base density. When the base has a ``cdf`` the normaliser is
    :math:`G(b) - G(a)` (analytic; sampling by the base's ``icdf`` if it has one,
    numeric inversion otherwise), and ``low``/``high`` may be infinite.
    Otherwise (the base's ``cdf`` raises ``NotImplementedError``) a finite
    range is required and the normaliser and cdf come from composite
    Gauss–Legendre quadrature (``quad_panels`` panels of ``quad_nodes`` points);
    sampling inverts that cdf with Newton–bisection. Reference:
    ``numpyro.distributions.TruncatedDistribution``; ``scipy.stats.truncnorm``.

    Args:
        base: a NumPyro distribution with empty ``event_shape``.
        low: lower end of the range (``None`` or ``-inf``: unbounded, cdf mode only).
        high: upper end of the range (``None`` or ``inf``: unbounded, cdf mode only).
        quad_panels: quadrature panels for a base without cdf.
        quad_nodes: Gauss–Legendre points per panel.
        validate_args: NumPyro's argument validation switch.

    Example:
        >>> import numpyro.distributions as nd
        >>> round(float(Truncated(nd.Normal(0.0, 1.0), 0.0, 1.0).cdf(0.5)), 6)
        0.560906
    """

    arg_constraints = {  # noqa: RUF012
        "low": constraints.dependent(is_discrete=False, event_dim=0),
        "high": constraints.dependent(is_discrete=False, event_dim=0),
    }

    def __init__(
        self,
        base: Distribution,
        low: ArrayLike | None = None,
        high: ArrayLike | None = None,
        *,
        quad_panels: int = 32,
        quad_nodes: int = 16,
        validate_args: bool | None = None,
    ) -> None:
        if not isinstance(base, Distribution):
            msg = f"Truncated: base must be a numpyro Distribution, got {type(base).__name__}"
            raise ParameterError(msg)
        if base.event_shape != () or getattr(base.support, "is_discrete", False):
            msg = (
                "Truncated: base must be a continuous 1-D distribution (event_shape ()), "
                f"got {type(base).__name__} with event_shape {base.event_shape}"
            )
            raise ParameterError(msg)
        if low is None and high is None:
            msg = "Truncated: give low and/or high, got neither"
            raise ParameterError(msg)
        low = -jnp.inf if low is None else low
        high = jnp.inf if high is None else high
        if is_concrete((low, high)):
            lo_np, hi_np = np.asarray(low, float), np.asarray(high, float)
            if (
                np.any(np.isnan(lo_np))
                or np.any(np.isnan(hi_np))
                or not np.all(lo_np < hi_np)
            ):
                msg = (
                    f"Truncated: the range needs low < high, got low={low}, high={high}"
                )
                raise ParameterError(msg)
        self.base = base
        self.analytic = _has(base, "cdf")
        self._inverse = _has(base, "icdf") and self.analytic
        if not self.analytic:
            if is_concrete((low, high)) and not (
                np.all(np.isfinite(low)) and np.all(np.isfinite(high))
            ):
                msg = (
                    f"Truncated: {type(base).__name__} has no cdf, so the range must be "
                    f"finite for numeric normalisation, got low={low}, high={high}"
                )
                raise ParameterError(msg)
            check_range("Truncated", low, high)
        if int(quad_panels) < 1 or int(quad_nodes) < 2:
            msg = (
                "Truncated: quad_panels must be >= 1 and quad_nodes >= 2, got "
                f"quad_panels={quad_panels}, quad_nodes={quad_nodes}"
            )
            raise ParameterError(msg)
        self._panels, self._nodes = int(quad_panels), int(quad_nodes)
        self._icdf_grid = max(256, self._panels)
        shape = self._broadcast("Truncated", {"low": low, "high": high})
        try:
            shape = jax.lax.broadcast_shapes(shape, base.batch_shape)
        except ValueError:
            msg = (
                f"Truncated: low/high shape {shape} does not broadcast with the base's "
                f"batch_shape {base.batch_shape}"
            )
            raise ParameterError(msg) from None
        self.low = jnp.broadcast_to(self.low, shape)
        self.high = jnp.broadcast_to(self.high, shape)
        self._lo, self._hi = self.low, self.high
        super().__init__(tuple(shape), validate_args=validate_args)

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self) -> constraints.Constraint:
        """``interval(low, high)``."""
        return constraints.interval(self.low, self.high)

    # --- analytic (cdf) mode -------------------------------------------------
    @lazy_property
    def _cdf_ends(self) -> tuple[Array, Array]:
        return self.base.cdf(self.low), self.base.cdf(self.high)

    # --- numeric mode: panel table -------------------------------------------
    @lazy_property
    def _shift(self) -> Array:
        """Largest base log density at the quadrature nodes (keeps exp in range)."""
        return jax.lax.stop_gradient(
            jnp.max(self._node_logp(self.low, self.high), axis=(0, 1))
        )

    def _node_logp(self, a: Array, b: Array) -> Array:
        """Base log density at the nodes of each panel of ``[a, b]``: (panels, nodes, ...)."""
        x, _ = gauss_legendre(self._nodes)
        p = self._panels
        frac = (np.arange(p)[:, None] + 0.5 * (x[None, :] + 1.0)) / p
        pts = a + (b - a) * frac.reshape(frac.shape + (1,) * jnp.ndim(a))
        return self.base.log_prob(pts)

    @lazy_property
    def _panel_cum(self) -> Array:
        """Scaled mass of ``[low, edge_i]`` at the ``panels + 1`` panel edges."""
        _, w = gauss_legendre(self._nodes)
        lp = self._node_logp(self.low, self.high) - self._shift
        width = (self.high - self.low) / self._panels
        masses = (
            0.5
            * width
            * jnp.sum(w.reshape((1, -1) + (1,) * self.low.ndim) * jnp.exp(lp), axis=1)
        )
        zero = jnp.zeros((1, *masses.shape[1:]))
        return jnp.concatenate([zero, jnp.cumsum(masses, axis=0)], axis=0)

    def _gl_mass(self, a: Array, b: Array) -> Array:
        """Scaled mass of a short ``[a, b]`` by one Gauss–Legendre panel."""
        x, w = gauss_legendre(self._nodes)
        shape = (x.size,) + (1,) * jnp.ndim(a + b)
        pts = 0.5 * (a + b) + 0.5 * (b - a) * x.reshape(shape)
        vals = jnp.exp(self.base.log_prob(pts) - self._shift)
        return 0.5 * (b - a) * jnp.sum(w.reshape(shape) * vals, axis=0)

    # --- the _Ranged hooks -----------------------------------------------------
    def _log_unnorm(self, x: Array) -> Array:
        lp = self.base.log_prob(x)
        return lp if self.analytic else lp - self._shift

    @lazy_property
    def _total(self) -> Array:
        if self.analytic:
            c_lo, c_hi = self._cdf_ends
            return c_hi - c_lo
        return self._panel_cum[-1]

    def _mass(self, a: Array, b: Array) -> Array:
        if self.analytic:
            return self.base.cdf(b) - self.base.cdf(a)
        # full panels from the table, then the partial panels at both ends
        return self._mass_from_low(b) - self._mass_from_low(a)

    def _mass_from_low(self, x: Array) -> Array:
        width = (self.high - self.low) / self._panels
        k = jnp.clip(jnp.floor((x - self.low) / width), 0, self._panels - 1).astype(
            jnp.int32
        )
        start = self.low + width * k
        return _take(self._panel_cum, k) + self._gl_mass(start, jnp.maximum(x, start))

    def _cum_table(self, grid: Array) -> Array:
        if self.analytic:
            return self.base.cdf(grid) - self._cdf_ends[0]
        # the same one-panel rule as the Newton steps, on the finer icdf grid
        masses = self._gl_mass(grid[:-1], grid[1:])
        zero = jnp.zeros((1, *masses.shape[1:]))
        return jnp.concatenate([zero, jnp.cumsum(masses, axis=0)], axis=0)

    def _local_mass(self, a: Array, x: Array) -> Array:
        return self._mass(a, x) if self.analytic else self._gl_mass(a, x)

    @validate_sample
    def log_prob(self, value: ArrayLike) -> Array:
        """Base log density minus the log mass of the range, ``-inf`` outside."""
        x = jnp.asarray(value, dtype=jnp.float64)
        inside = (x >= self.low) & (x <= self.high)
        mid = jnp.where(
            jnp.isfinite(self.low + self.high), 0.5 * (self.low + self.high), 0.0
        )
        mid = jnp.where(
            jnp.isfinite(self.low) & ~jnp.isfinite(self.high), self.low, mid
        )
        mid = jnp.where(
            jnp.isfinite(self.high) & ~jnp.isfinite(self.low), self.high, mid
        )
        xs = jnp.where(inside, x, mid)
        return jnp.where(inside, self._log_unnorm(xs) - jnp.log(self._total), -jnp.inf)

    def cdf(self, value: ArrayLike) -> Array:
        """Probability of ``[low, value]``."""
        x = jnp.clip(jnp.asarray(value, dtype=jnp.float64), self.low, self.high)
        if self.analytic:
            return (self.base.cdf(x) - self._cdf_ends[0]) / self._total
        return self._mass_from_low(x) / self._total

    def icdf(self, q: ArrayLike) -> Array:
        """Inverse cdf: the base's ``icdf`` when it has one, numeric otherwise."""
        q = jnp.asarray(q, dtype=jnp.float64)
        if self._inverse:
            c_lo, c_hi = self._cdf_ends
            return jnp.clip(
                self.base.icdf(c_lo + q * (c_hi - c_lo)), self.low, self.high
            )
        if not self.analytic:
            return self._numeric_icdf(q)
        if not bool(
            is_concrete((self.low, self.high))
            and np.all(np.isfinite(self.low))
            and np.all(np.isfinite(self.high))
        ):
            msg = "Truncated: numeric icdf/sampling needs a finite range (or a base with icdf)"
            raise ParameterError(msg)
        return super().icdf(q)

    def _legendre_table(self) -> tuple[Array, Array, Array]:
        """Per icdf cell: start, width and Legendre coefficients of the density.

        The coefficients ``(cells, nodes, *batch)`` are those of the polynomial
        through the scaled density at the cell's Gauss–Legendre nodes (discrete
        Legendre transform, exact at the nodes), so its integral over the cell is
        the same Gauss–Legendre sum that the cdf table holds.
        """
        x, w = gauss_legendre(self._nodes)
        n, cells = self._nodes, self._icdf_grid
        legendre = np.polynomial.legendre.legvander(x, n - 1).T  # P_j(x_i): (n, n)
        transform = (np.arange(n)[:, None] + 0.5) * legendre * w[None, :]
        frac = np.arange(cells + 1) / cells
        edges = self.low + (self.high - self.low) * frac.reshape(
            (-1,) + (1,) * self.low.ndim
        )
        start, width = edges[:-1], edges[1:] - edges[:-1]
        pts = start[:, None] + width[:, None] * (0.5 * (x + 1.0)).reshape(
            (1, n) + (1,) * self.low.ndim
        )
        f = jnp.exp(self.base.log_prob(pts) - self._shift)
        coef = jnp.tensordot(jnp.asarray(transform), jnp.moveaxis(f, 1, 0), axes=1)
        return start, width, jnp.moveaxis(coef, 0, 1)

    def _numeric_icdf(self, q: Array) -> Array:
        """Inverse of the quadrature cdf: a cell by binary search, then Newton.

        Inside a cell the cdf is the integral of the density's Legendre
        interpolant (a polynomial: no base density calls in the Newton steps),
        started from the inverse of the trapezoid through the end densities.
        """
        start, width, coef = self._legendre_table()
        n = self._nodes
        cum = jnp.cumsum(width * coef[:, 0], axis=0)  # cell mass = width * c_0
        cum = jnp.concatenate([jnp.zeros_like(cum[:1]), cum], axis=0)
        target = q * cum[-1]
        k = table_index(jax.lax.stop_gradient(cum), jax.lax.stop_gradient(target))
        a, h = table_take(start, k), table_take(width, k)
        c = [table_take(coef[:, j], k) for j in range(n)]
        rest = target - table_take(cum, k)

        def poly(y: Array) -> tuple[Array, Array]:
            # density sum_j c_j P_j(y) and its integral from -1 (A&S 22.13.9)
            p_prev, p = jnp.ones_like(y), y
            dens, mass = c[0], c[0] * (y + 1.0)
            for j in range(1, n):
                p_next = ((2 * j + 1) * y * p - j * p_prev) / (j + 1)
                dens = dens + c[j] * p
                mass = mass + c[j] * (p_next - p_prev) / (2 * j + 1)
                p_prev, p = p, p_next
            return dens, 0.5 * mass

        scale = jnp.where(cum[-1] > 0, cum[-1], 1.0) / self._icdf_grid

        def g(x: Array) -> tuple[Array, Array]:
            dens, mass = poly(2.0 * (x - a) / h - 1.0)
            return (h * mass - rest) / scale, dens / scale

        d_a, d_b = poly(-jnp.ones_like(a))[0], poly(jnp.ones_like(a))[0]
        frac_mass = jnp.clip(rest / jnp.where(h * c[0] > 0, h * c[0], 1.0), 0.0, 1.0)
        x0 = a + h * _trapezoid_root(d_a, d_b, frac_mass)
        xtol = 1e-15 * jnp.abs(self.high - self.low)
        x = solve_increasing(g, a, a + h, x0, iterations=60, xtol=xtol)
        return jnp.clip(x, self.low, self.high)


def _has(base: Distribution, method: str) -> bool:
    """Whether ``base.<method>`` is implemented (it may raise NotImplementedError)."""
    try:
        getattr(base, method)(jnp.zeros(base.batch_shape) + 0.5)
    except NotImplementedError:
        return False
    except Exception:  # noqa: BLE001 - other failures show up when used
        return True
    return True
