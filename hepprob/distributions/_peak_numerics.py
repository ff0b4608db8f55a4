"""Numerical pieces of the peaking shapes: normal-cdf differences, power-law tails, quadrature.

All functions are elementwise on broadcastable arrays, free of Python branching
on values, and written so that masked branches only ever see safe inputs (the
"double where"), keeping values and gradients finite.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.scipy.special import ndtr, ndtri

__all__ = [
    "SQRT_2PI",
    "gauss_legendre",
    "log1p_div",
    "normal_mass",
    "normal_mass_inverse",
    "safe_newton_bisect",
    "tail_log_density",
    "tail_mass",
    "tail_mass_inverse",
]

SQRT_2PI = float(np.sqrt(2.0 * np.pi))
_TINY = float(np.finfo(np.float64).tiny)


def normal_mass(v1: Array, v2: Array) -> Array:
    """:math:`\\Phi(v_2) - \\Phi(v_1)` without cancellation in the upper tail."""
    upper = v1 > 0.0
    return jnp.where(upper, ndtr(-v1) - ndtr(-v2), ndtr(v2) - ndtr(v1))


def normal_mass_inverse(v1: Array, m: Array) -> Array:
    """Solve :math:`\\Phi(v) - \\Phi(v_1) = m` for ``v`` (precise in both tails)."""
    p = ndtr(v1) + m
    q = ndtr(-v1) - m
    lower = p <= 0.5
    p_safe = jnp.clip(jnp.where(lower, p, 0.25), _TINY, 1.0 - 1e-16)
    q_safe = jnp.clip(jnp.where(lower, 0.25, q), _TINY, 1.0 - 1e-16)
    return jnp.where(lower, ndtri(p_safe), -ndtri(q_safe))


def log1p_div(c: Array, y: Array) -> Array:
    """:math:`\\log(1 - c y)/c`, continuous through ``c = 0`` (value ``-y``)."""
    small = jnp.abs(c) < 1e-7
    c_safe = jnp.where(small, 1.0, c)
    arg = jnp.where(small, 0.0, -c_safe * y)
    return jnp.where(small, -y - 0.5 * c * y * y, jnp.log1p(arg) / c_safe)


def _exprel(x: Array) -> Array:
    """:math:`(e^x - 1)/x`, equal to 1 at ``x = 0``."""
    small = jnp.abs(x) < 1e-8
    x_safe = jnp.where(small, 1.0, x)
    return jnp.where(small, 1.0 + 0.5 * x, jnp.expm1(x_safe) / x_safe)


def tail_log_density(t: Array, a: Array, n: Array) -> Array:
    """Log of the Crystal Ball power-law tail at standardised ``t <= -a``.

    With :math:`A = (n/a)^n e^{-a^2/2}` and :math:`B = n/a - a` the tail is
    :math:`A (B - t)^{-n} = e^{-a^2/2} u^{-n}`, :math:`u = 1 - a (t + a)/n`
    (Oreglia, SLAC-R-236 (1980), appendix D; scipy.stats.crystalball).
    """
    u = 1.0 - a * (t + a) / n
    return -0.5 * a * a - n * jnp.log(u)


def tail_mass(t1: Array, t2: Array, a: Array, n: Array) -> Array:
    """Integral of the power-law tail over ``[t1, t2]`` with ``t1 <= t2 <= -a``.

    ``t1`` may be ``-inf`` (then ``n > 1`` is needed). In terms of
    :math:`u_i = 1 - a (t_i + a)/n` the integral is
    :math:`e^{-a^2/2}\\,(n/a)\\,(u_2^{1-n} - u_1^{1-n})/(n-1)`, written with
    ``expm1`` so that ``n = 1`` (a logarithm) is a smooth special case.
    """
    open_lower = jnp.isneginf(t1)
    t1_safe = jnp.where(open_lower, t2, t1)
    log_u1 = jnp.log1p(-a * (t1_safe + a) / n)
    log_u2 = jnp.log1p(-a * (t2 + a) / n)
    c = 1.0 - n
    big_l = log_u1 - log_u2
    closed = big_l * _exprel(c * big_l)
    n_safe = jnp.where(open_lower, n, 2.0)
    h = jnp.where(open_lower, 1.0 / (n_safe - 1.0), closed)
    return jnp.exp(-0.5 * a * a + c * log_u2) * (n / a) * h


def tail_mass_inverse(t1: Array, m: Array, a: Array, n: Array) -> Array:
    """Solve ``tail_mass(t1, t, a, n) = m`` for ``t`` (``t1`` may be ``-inf``)."""
    c = 1.0 - n
    k = jnp.exp(-0.5 * a * a) * n / a
    open_lower = jnp.isneginf(t1)
    t1_safe = jnp.where(open_lower, -a, t1)
    log_u1 = jnp.log1p(-a * (t1_safe + a) / n)
    y = m / (k * jnp.exp(c * log_u1))
    log_u_closed = log_u1 + log1p_div(c, jnp.minimum(y, _cap(c)))
    c_open = jnp.where(open_lower, c, -1.0)
    arg_open = jnp.maximum(-c_open * m / k, _TINY)
    log_u_open = jnp.log(arg_open) / c_open
    log_u = jnp.maximum(jnp.where(open_lower, log_u_open, log_u_closed), 0.0)
    return -a - (n / a) * jnp.expm1(log_u)


def _cap(c: Array) -> Array:
    """Largest ``y`` for which ``1 - c y`` stays positive (no cap when c <= 0)."""
    return jnp.where(c > 0, (1.0 - 1e-16) / jnp.where(c > 0, c, 1.0), jnp.inf)


def gauss_legendre(
    f: Callable[[Array], Array], a: Array, b: Array, *, panels: int, order: int
) -> Array:
    """Composite Gauss–Legendre integral of ``f`` over ``[a, b]`` (finite).

    ``f`` maps an array of points (with a trailing node axis) to values; ``a``
    and ``b`` broadcast. ``panels`` equal panels of ``order`` nodes each.
    """
    x, w = np.polynomial.legendre.leggauss(order)
    edges = np.linspace(0.0, 1.0, panels + 1)
    half = 0.5 * (edges[1:] - edges[:-1])
    mid = 0.5 * (edges[1:] + edges[:-1])
    nodes = (mid[:, None] + half[:, None] * x[None, :]).ravel()
    weights = (half[:, None] * w[None, :]).ravel()
    a = jnp.asarray(a)[..., None]
    b = jnp.asarray(b)[..., None]
    pts = a + (b - a) * nodes
    return jnp.sum(f(pts) * weights, axis=-1) * (b - a)[..., 0]


def safe_newton_bisect(
    g: Callable[[Array], tuple[Array, Array]],
    lo: Array,
    hi: Array,
    start: Array,
    *,
    iterations: int,
    tol: float = 0.0,
) -> Array:
    """Root of increasing ``g`` in ``[lo, hi]`` by Newton steps kept in a bracket.

    ``g(x)`` returns ``(value, derivative)``. A Newton step that leaves the
    current bracket is replaced by bisection, so the iteration always converges;
    it stops when every ``|g| <= tol`` or every step is below rounding, or
    after ``iterations`` steps.
    """

    def body(state: tuple[Array, Array, Array, Array, Array]) -> tuple[Array, ...]:
        x, a, b, _, it = state
        val, der = g(x)
        a = jnp.where(val <= 0.0, x, a)
        b = jnp.where(val > 0.0, x, b)
        der_ok = der > 0.0
        newton = x - val / jnp.where(der_ok, der, 1.0)
        inside = der_ok & (newton > a) & (newton < b)
        x_new = jnp.where(inside, newton, 0.5 * (a + b))
        done = (jnp.abs(x_new - x) <= 4e-16 * jnp.maximum(jnp.abs(x), 1.0)) | (
            jnp.abs(val) <= tol
        )
        x_new = jnp.where(jnp.abs(val) <= tol, x, x_new)
        return x_new, a, b, jnp.all(done), it + 1

    def cond(state: tuple[Array, Array, Array, Array, Array]) -> Array:
        return ~state[3] & (state[4] < iterations)

    x0 = jnp.clip(start, lo, hi)
    state = (x0, lo, hi, jnp.asarray(False), jnp.asarray(0))
    return jax.lax.while_loop(cond, body, state)[0]
