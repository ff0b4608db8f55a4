"""Nonparametric densities: a piecewise-constant histogram and a Gaussian kernel estimate."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.scipy.special import logsumexp, ndtr, ndtri
from jax.typing import ArrayLike
from numpyro.distributions import Distribution, constraints
from numpyro.distributions.util import lazy_property, validate_sample

from hepprob.distributions._checks import check, check_range, is_concrete
from hepprob.distributions.background import _Ranged
from hepprob.errors import ParameterError

__all__ = ["GaussianKDE", "HistogramPDF"]

_LOG_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)


class HistogramPDF(Distribution):
    r"""Piecewise-constant density from bin edges and (non-negative) contents.

    .. math::
        f(x) = \frac{n_i}{(e_{i+1} - e_i)\sum_j n_j},\qquad e_i \le x < e_{i+1},

    zero outside :math:`[e_0, e_N]` (the last bin includes its upper edge).
    log_prob, cdf (piecewise linear), icdf and sampling are exact. Empty bins
    get ``-inf`` log density and are never sampled. Reference: RooHistPdf with
    interpolation order 0.

    Args:
        edges: strictly increasing bin edges, shape ``(N + 1,)``.
        counts: bin contents, shape ``batch + (N,)``, ``>= 0`` with a positive sum.
        validate_args: NumPyro's argument validation switch.

    Example:
        >>> from hepprob.distributions import HistogramPDF
        >>> float(HistogramPDF([0.0, 1.0, 3.0], [1.0, 1.0]).cdf(2.0))
        0.75
    """

    arg_constraints = {"counts": constraints.independent(constraints.nonnegative, 1)}  # noqa: RUF012

    def __init__(
        self, edges: ArrayLike, counts: ArrayLike, *, validate_args: bool | None = None
    ) -> None:
        edges = jnp.asarray(edges, dtype=jnp.float64)
        counts = jnp.asarray(counts, dtype=jnp.float64)
        if edges.ndim != 1 or edges.shape[0] < 2:
            msg = f"HistogramPDF: edges must be 1-D with at least 2 entries, got shape {edges.shape}"
            raise ParameterError(msg)
        if counts.ndim < 1 or counts.shape[-1] != edges.shape[0] - 1:
            msg = (
                f"HistogramPDF: counts must have last axis len(edges) - 1 = "
                f"{edges.shape[0] - 1}, got shape {counts.shape}"
            )
            raise ParameterError(msg)
        if is_concrete(edges):
            e = np.asarray(edges)
            if not (np.all(np.isfinite(e)) and np.all(np.diff(e) > 0)):
                msg = f"HistogramPDF: edges must be finite and strictly increasing, got edges={e}"
                raise ParameterError(msg)
        check(
            "HistogramPDF",
            "counts",
            counts,
            lambda v: (v >= 0) & np.isfinite(v),
            ">= 0",
        )
        if is_concrete(counts) and np.any(np.asarray(counts).sum(axis=-1) <= 0):
            msg = f"HistogramPDF: counts must have a positive sum, got counts={np.asarray(counts)}"
            raise ParameterError(msg)
        self.edges, self.counts = edges, counts
        super().__init__(counts.shape[:-1], validate_args=validate_args)

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self) -> constraints.Constraint:
        """``interval(edges[0], edges[-1])``."""
        return constraints.interval(self.edges[0], self.edges[-1])

    @lazy_property
    def _prob(self) -> Array:
        return self.counts / jnp.sum(self.counts, axis=-1, keepdims=True)

    @lazy_property
    def _cum(self) -> Array:
        """Cumulative bin probabilities at the edges, shape ``batch + (N + 1,)``."""
        c = jnp.cumsum(self._prob, axis=-1)
        zero = jnp.zeros((*c.shape[:-1], 1))
        return jnp.concatenate([zero, c], axis=-1)

    def _bin(self, x: Array) -> Array:
        idx = jnp.searchsorted(self.edges, x, side="right") - 1
        return jnp.clip(idx, 0, self.edges.shape[0] - 2)

    @validate_sample
    def log_prob(self, value: ArrayLike) -> Array:
        """Log of the bin density at ``value``; ``-inf`` outside the edges or in empty bins."""
        x = jnp.asarray(value, dtype=jnp.float64)
        inside = (x >= self.edges[0]) & (x <= self.edges[-1])
        k = self._bin(x)
        width = jnp.diff(self.edges)[k]
        p = _gather(self._prob, k)
        ok = inside & (p > 0)
        return jnp.where(ok, jnp.log(jnp.where(ok, p, 1.0)) - jnp.log(width), -jnp.inf)

    def cdf(self, value: ArrayLike) -> Array:
        """Piecewise-linear cdf."""
        x = jnp.clip(
            jnp.asarray(value, dtype=jnp.float64), self.edges[0], self.edges[-1]
        )
        k = self._bin(x)
        frac = (x - self.edges[k]) / (self.edges[k + 1] - self.edges[k])
        return _gather(self._cum, k) + frac * _gather(self._prob, k)

    def integral(self, a: ArrayLike, b: ArrayLike) -> Array:
        """Probability mass of ``[a, b]`` (negative if ``a > b``)."""
        return self.cdf(b) - self.cdf(a)

    def icdf(self, q: ArrayLike) -> Array:
        """Exact inverse of the piecewise-linear cdf (skips empty bins)."""
        q = jnp.asarray(q, dtype=jnp.float64)
        cum = self._cum
        n = self.edges.shape[0] - 1
        if cum.ndim == 1:
            k = jnp.searchsorted(cum, q, side="right") - 1
        else:
            k = jnp.zeros(
                jnp.broadcast_shapes(q.shape, cum.shape[:-1]), dtype=jnp.int32
            )
            for i in range(1, n):
                k = k + (q >= cum[..., i]).astype(jnp.int32)
        k = jnp.clip(k, 0, n - 1)
        p = _gather(self._prob, k)
        # a q landing exactly on an empty bin's edge moves to the next non-empty bin
        frac = jnp.clip((q - _gather(cum, k)) / jnp.where(p > 0, p, 1.0), 0.0, 1.0)
        return self.edges[k] + frac * (self.edges[k + 1] - self.edges[k])

    def sample(self, key: Array, sample_shape: tuple[int, ...] = ()) -> Array:
        """Exact samples by inverse cdf, shape ``sample_shape + batch_shape``."""
        shape = tuple(sample_shape) + self.batch_shape
        return self.icdf(jax.random.uniform(key, shape, dtype=jnp.float64))


class GaussianKDE(_Ranged):
    r"""Gaussian kernel density estimate in 1-D (as ``scipy.stats.gaussian_kde``).

    .. math::
        f(x) = \frac{1}{Z}\sum_i \frac{w_i}{h}\,\varphi\!\left(\frac{x - d_i}{h}\right),
        \qquad Z = \sum_i w_i\left[\Phi\!\left(\tfrac{b - d_i}{h}\right)
        - \Phi\!\left(\tfrac{a - d_i}{h}\right)\right],

    with normalised weights :math:`w_i` and :math:`h = \beta\,\hat\sigma`:
    :math:`\hat\sigma` the weighted standard deviation of the data (unbiased,
    as ``numpy.cov(aweights=w)``), :math:`\beta = n_\mathrm{eff}^{-1/5}`
    (``"scott"``) or :math:`(3 n_\mathrm{eff}/4)^{-1/5}` (``"silverman"``),
    :math:`n_\mathrm{eff} = 1/\sum w_i^2`; a number is used as :math:`\beta`
    itself (scipy's convention: a factor on the data spread, not a width).
    Without a range :math:`Z = 1`. Sampling picks a point with probability
    :math:`\propto w_i \times` (its kernel mass in the range) and draws from its
    truncated Gaussian by inverse cdf (exact). Reference: D. W. Scott,
    *Multivariate Density Estimation* (1992); ``scipy.stats.gaussian_kde``;
    RooKeysPdf (adaptive variant, not this one).

    Args:
        data: the points, shape ``(n,)``, ``n >= 2``.
        bandwidth: ``"scott"``, ``"silverman"`` or a positive factor.
        low: lower end of the observable range (optional, with ``high``).
        high: upper end of the observable range.
        weights: non-negative point weights (optional), shape ``(n,)``.
        validate_args: NumPyro's argument validation switch.

    Example:
        >>> from hepprob.distributions import GaussianKDE
        >>> round(float(GaussianKDE([-1.0, 0.0, 1.0]).cdf(0.0)), 6)
        0.5
    """

    arg_constraints = {  # noqa: RUF012
        "low": constraints.dependent(is_discrete=False, event_dim=0),
        "high": constraints.dependent(is_discrete=False, event_dim=0),
    }

    def __init__(
        self,
        data: ArrayLike,
        bandwidth: str | float = "scott",
        low: ArrayLike | None = None,
        high: ArrayLike | None = None,
        weights: ArrayLike | None = None,
        *,
        validate_args: bool | None = None,
    ) -> None:
        data = jnp.asarray(data, dtype=jnp.float64)
        if data.ndim != 1 or data.shape[0] < 2:
            msg = f"GaussianKDE: data must be 1-D with at least 2 points, got shape {data.shape}"
            raise ParameterError(msg)
        check("GaussianKDE", "data", data, np.isfinite, "finite")
        if weights is None:
            w = jnp.full(data.shape, 1.0 / data.shape[0])
        else:
            w = jnp.asarray(weights, dtype=jnp.float64)
            if w.shape != data.shape:
                msg = f"GaussianKDE: weights must have the shape of data {data.shape}, got {w.shape}"
                raise ParameterError(msg)
            check(
                "GaussianKDE", "weights", w, lambda v: (v >= 0) & np.isfinite(v), ">= 0"
            )
            if is_concrete(w) and float(np.sum(w)) <= 0:
                msg = f"GaussianKDE: weights must have a positive sum, got sum={float(np.sum(w))}"
                raise ParameterError(msg)
            w = w / jnp.sum(w)
        n_eff = 1.0 / jnp.sum(w * w)
        if isinstance(bandwidth, str):
            if bandwidth == "scott":
                factor = n_eff ** (-0.2)
            elif bandwidth == "silverman":
                factor = (0.75 * n_eff) ** (-0.2)
            else:
                msg = (
                    "GaussianKDE: bandwidth must be 'scott', 'silverman' or a positive "
                    f"number, got {bandwidth!r}"
                )
                raise ParameterError(msg)
        else:
            check(
                "GaussianKDE",
                "bandwidth",
                bandwidth,
                lambda v: (v > 0) & np.isfinite(v),
                "> 0",
            )
            if jnp.ndim(bandwidth) != 0:
                msg = f"GaussianKDE: bandwidth must be a scalar, got shape {jnp.shape(bandwidth)}"
                raise ParameterError(msg)
            factor = jnp.asarray(bandwidth, dtype=jnp.float64)
        mean = jnp.sum(w * data)
        var = jnp.sum(w * (data - mean) ** 2) / (1.0 - jnp.sum(w * w))
        if is_concrete(var) and not float(var) > 0:
            msg = "GaussianKDE: data must not be all equal (zero spread gives zero bandwidth)"
            raise ParameterError(msg)
        self.data, self.weights = data, w
        self.bw = factor * jnp.sqrt(var)
        check_range("GaussianKDE", low, high)
        if low is None:
            self.low = self.high = None
            self._lo, self._hi = jnp.asarray(-jnp.inf), jnp.asarray(jnp.inf)
        else:
            self.low = jnp.asarray(low, dtype=jnp.float64)
            self.high = jnp.asarray(high, dtype=jnp.float64)
            if self.low.ndim or self.high.ndim:
                msg = f"GaussianKDE: low and high must be scalars, got low={low}, high={high}"
                raise ParameterError(msg)
            self._lo, self._hi = self.low, self.high
        super().__init__((), validate_args=validate_args)

    @lazy_property
    def _point_mass(self) -> Array:
        """Kernel mass of each point inside the range."""
        if self.low is None:
            return jnp.ones_like(self.data)
        lo = (self._lo - self.data) / self.bw
        hi = (self._hi - self.data) / self.bw
        return _normal_mass(lo, hi)

    @lazy_property
    def _total(self) -> Array:
        return jnp.sum(self.weights * self._point_mass)

    def _log_unnorm(self, x: Array) -> Array:
        z = (x[..., None] - self.data) / self.bw
        terms = jnp.log(self.weights) - 0.5 * z * z - _LOG_SQRT_2PI - jnp.log(self.bw)
        return logsumexp(terms, axis=-1)

    def _mass(self, a: Array, b: Array) -> Array:
        # infinite ends stay infinite without multiplying inf by a bandwidth derivative
        fa, fb = jnp.isfinite(a), jnp.isfinite(b)
        za = jnp.where(
            fa[..., None],
            (jnp.where(fa, a, 0.0)[..., None] - self.data) / self.bw,
            a[..., None],
        )
        zb = jnp.where(
            fb[..., None],
            (jnp.where(fb, b, 0.0)[..., None] - self.data) / self.bw,
            b[..., None],
        )
        return jnp.sum(self.weights * _normal_mass(za, zb), axis=-1)

    def _bracket(self) -> tuple[Array, Array]:
        span = 40.0 * self.bw
        lo = jnp.maximum(self._lo, jnp.min(self.data) - span)
        hi = jnp.minimum(self._hi, jnp.max(self.data) + span)
        return lo, hi

    def _cum_table(self, grid: Array) -> Array:
        return self._mass(jnp.broadcast_to(self._lo, grid.shape), grid)

    @validate_sample
    def log_prob(self, value: ArrayLike) -> Array:
        """Log density (normalised on the range, ``-inf`` outside it)."""
        x = jnp.asarray(value, dtype=jnp.float64)
        inside = (x >= self._lo) & (x <= self._hi)
        xs = jnp.where(inside, x, jnp.where(jnp.isfinite(self._lo), self._lo, 0.0))
        return jnp.where(inside, self._log_unnorm(xs) - jnp.log(self._total), -jnp.inf)

    def sample(self, key: Array, sample_shape: tuple[int, ...] = ()) -> Array:
        """Exact: pick a point (weight × kernel mass in range), draw its truncated Gaussian."""
        shape = tuple(sample_shape)
        k_pick, k_u = jax.random.split(key)
        # point index by inverse cdf of the point probabilities (O(log n) per draw)
        p = self.weights * self._point_mass
        cum = jnp.cumsum(p) / jnp.sum(p)
        v = jax.random.uniform(k_pick, shape, dtype=jnp.float64)
        idx = jnp.clip(
            jnp.searchsorted(cum, v, side="right"), 0, self.data.shape[0] - 1
        )
        idx = jnp.where(p[idx] > 0, idx, jnp.argmax(p))
        u = jax.random.uniform(k_u, shape, dtype=jnp.float64)
        centre = self.data[idx]
        lo = (self._lo - centre) / self.bw
        hi = (self._hi - centre) / self.bw
        return centre + self.bw * _truncnorm_icdf(lo, hi, u)


def _gather(table: Array, k: Array) -> Array:
    """``table[..., k]`` with ``k`` broadcasting against the batch axes of ``table``."""
    if table.ndim == 1:
        return table[k]
    shape = jnp.broadcast_shapes(k.shape, table.shape[:-1])
    tb = jnp.broadcast_to(table, (*shape, table.shape[-1]))
    return jnp.take_along_axis(tb, jnp.broadcast_to(k, shape)[..., None], axis=-1)[
        ..., 0
    ]


def _normal_mass(z1: Array, z2: Array) -> Array:
    """:math:`\\Phi(z_2) - \\Phi(z_1)` for ``z1 <= z2``, precise in both tails (mirrored above 0)."""
    upper = z1 > 0
    return jnp.where(upper, ndtr(-z1) - ndtr(-z2), ndtr(z2) - ndtr(z1))


def _truncnorm_icdf(lo: Array, hi: Array, u: Array) -> Array:
    """Standard normal truncated to ``[lo, hi]`` at quantile ``u`` (mirrored in the upper tail)."""
    upper = lo > 0
    a = jnp.where(upper, -hi, lo)
    b = jnp.where(upper, -lo, hi)
    pa, pb = ndtr(a), ndtr(b)
    uu = jnp.where(upper, 1.0 - u, u)
    z = ndtri(jnp.clip(pa + uu * (pb - pa), 1e-300, 1.0))
    z = jnp.clip(z, a, b)
    return jnp.where(upper, -z, z)
