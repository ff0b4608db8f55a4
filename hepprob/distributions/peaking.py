"""Peaking shapes: Crystal Ball (one- and two-sided), Breit–Wigner, Voigtian, Johnson SU.

Each takes an optional observable range ``low``, ``high`` on which it is
normalised (zero density outside) and from which it samples.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array, lax
from jax.typing import ArrayLike
from numpyro.distributions import Distribution, constraints
from numpyro.distributions.util import lazy_property, promote_shapes, validate_sample

from hepprob.distributions._checks import check, check_range
from hepprob.distributions._faddeeva import voigt_profile
from hepprob.distributions._peak_numerics import (
    SQRT_2PI,
    gauss_legendre,
    normal_mass,
    normal_mass_inverse,
    safe_newton_bisect,
    tail_log_density,
    tail_mass,
    tail_mass_inverse,
)
from hepprob.errors import ParameterError

__all__ = [
    "BreitWigner",
    "CrystalBall",
    "DoubleCrystalBall",
    "JohnsonSU",
    "RelativisticBreitWigner",
    "Voigtian",
]

_RANGE = {
    "low": constraints.dependent(is_discrete=False, event_dim=0),
    "high": constraints.dependent(is_discrete=False, event_dim=0),
}


class _RangedPeak(Distribution):
    """Private abstract base: the optional observable range ``[low, high]``.

    Subclasses set their parameters, ``low``/``high`` (or None) and implement
    ``_log_unnorm(x)`` (log of an unnormalised density ``g``), ``_mass(a, b)``
    (the integral of ``g`` over ``[a, b]``, ends possibly infinite on the natural
    support) and ``_from_mass(m, total)`` (the ``x`` with
    ``_mass(lower, x) = m``). Everything else follows here, once.
    """

    _natural_low: float = -np.inf
    _natural_high: float = np.inf

    def _setup(
        self,
        owner: str,
        params: dict[str, Any],
        low: ArrayLike | None,
        high: ArrayLike | None,
        validate_args: bool | None,
    ) -> None:
        check_range(owner, low, high)
        if low is not None:
            params = {**params, "low": low, "high": high}
        arrays = {k: jnp.asarray(v, dtype=jnp.float64) for k, v in params.items()}
        try:
            batch_shape = lax.broadcast_shapes(*(jnp.shape(v) for v in arrays.values()))
        except ValueError:
            shapes = ", ".join(f"{k}{jnp.shape(v)}" for k, v in arrays.items())
            msg = f"{owner}: parameter shapes must broadcast, got {shapes}"
            raise ParameterError(msg) from None
        for name, value in zip(arrays, promote_shapes(*arrays.values()), strict=True):
            setattr(self, name, value)
        if low is None:
            self.low = self.high = None
        Distribution.__init__(self, batch_shape, validate_args=validate_args)

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self) -> constraints.Constraint:
        """``interval(low, high)`` with a range, the natural support otherwise."""
        return constraints.interval(self._lo, self._hi)

    @property
    def _lo(self) -> Array:
        return jnp.asarray(self._natural_low) if self.low is None else self.low

    @property
    def _hi(self) -> Array:
        return jnp.asarray(self._natural_high) if self.high is None else self.high

    @lazy_property
    def _total(self) -> Array:
        """Integral of the unnormalised density over the support."""
        return self._mass(self._lo, self._hi)

    @validate_sample
    def log_prob(self, value: ArrayLike) -> Array:
        """Log density, normalised on the range (``-inf`` outside it)."""
        x = jnp.asarray(value, dtype=jnp.float64)
        inside = (x >= self._lo) & (x <= self._hi)
        mid = jnp.where(
            jnp.isfinite(self._lo + self._hi), 0.5 * (self._lo + self._hi), 0.0
        )
        x_safe = jnp.where(inside, x, mid)
        lp = self._log_unnorm(x_safe) - jnp.log(self._total)
        return jnp.where(inside, lp, -jnp.inf)

    def cdf(self, value: ArrayLike) -> Array:
        """Probability of ``[low, value]`` (lower end of the support without range)."""
        value = jnp.asarray(value, dtype=jnp.float64)
        x = jnp.clip(value, self._lo, self._hi)
        cdf = jnp.where(value <= self._lo, 0.0, self._mass(self._lo, x) / self._total)
        return jnp.where(value >= self._hi, 1.0, cdf)

    def integral(self, a: ArrayLike, b: ArrayLike) -> Array:
        """Probability mass of ``[a, b]`` (clipped to the support; negative if a > b)."""
        a = jnp.clip(jnp.asarray(a, dtype=jnp.float64), self._lo, self._hi)
        b = jnp.clip(jnp.asarray(b, dtype=jnp.float64), self._lo, self._hi)
        sign = jnp.where(b >= a, 1.0, -1.0)
        mass = self._mass(jnp.minimum(a, b), jnp.maximum(a, b)) / self._total
        return jnp.where(a == b, 0.0, sign * mass)

    def icdf(self, q: ArrayLike) -> Array:
        """Inverse of :meth:`cdf`."""
        q = jnp.asarray(q, dtype=jnp.float64)
        x = self._from_mass(q * self._total, self._total)
        return jnp.clip(x, self._lo, self._hi)

    def sample(self, key: Array, sample_shape: tuple[int, ...] = ()) -> Array:
        """Exact samples by inverse cdf, shape ``sample_shape + batch_shape``."""
        shape = tuple(sample_shape) + self.batch_shape
        u = jax.random.uniform(key, shape, dtype=jnp.float64, minval=1e-300)
        return self.icdf(u)

    def _log_unnorm(self, x: Array) -> Array:
        raise NotImplementedError

    def _mass(self, a: Array, b: Array) -> Array:
        raise NotImplementedError

    def _from_mass(self, m: Array, total: Array) -> Array:
        raise NotImplementedError


class _AbstractCrystalBall(_RangedPeak):
    """Private: Gaussian core on ``[-a_low, a_high]`` with power-law tails outside.

    Works in ``t = (x - loc) / scale``; an absent tail has ``a = inf``.
    Subclasses provide the ``_tails`` property ``(a_low, n_low, a_high, n_high)``.
    """

    @property
    def _tails(self) -> tuple[Array, Array, Array, Array]:
        raise NotImplementedError

    def _log_unnorm(self, x: Array) -> Array:
        t = (x - self.loc) / self.scale
        a_l, n_l, a_h, n_h = self._tails
        has_l, has_h = jnp.isfinite(a_l), jnp.isfinite(a_h)
        al, ah = jnp.where(has_l, a_l, 1.0), jnp.where(has_h, a_h, 1.0)
        in_l = has_l & (t < -al)
        in_h = has_h & (t > ah)
        t_l = jnp.where(in_l, t, -al)
        t_h = jnp.where(in_h, t, ah)
        t_c = jnp.where(in_l | in_h, 0.0, t)
        out = jnp.where(in_l, tail_log_density(t_l, al, n_l), -0.5 * t_c * t_c)
        out = jnp.where(in_h, tail_log_density(-t_h, ah, n_h), out)
        return out - jnp.log(self.scale)

    def _mass(self, a: Array, b: Array) -> Array:
        t1 = _std(a, self.loc, self.scale)
        t2 = _std(b, self.loc, self.scale)
        a_l, n_l, a_h, n_h = self._tails
        return _cb_mass_t(t1, t2, a_l, n_l, a_h, n_h)

    def _from_mass(self, m: Array, total: Array) -> Array:
        a_l, n_l, a_h, n_h = self._tails
        t_lo = _std(self._lo, self.loc, self.scale)
        t_hi = _std(self._hi, self.loc, self.scale)
        t = _cb_from_mass_t(m, total, t_lo, t_hi, a_l, n_l, a_h, n_h)
        return self.loc + self.scale * t


class CrystalBall(_AbstractCrystalBall):
    r"""Crystal Ball: Gaussian core with one power-law tail.

    With :math:`t = (x - \mu)/\sigma`, :math:`a = |\alpha|` and ``t`` mirrored
    (:math:`t \to -t`) when :math:`\alpha < 0`,

    .. math::
        f(x) \propto \begin{cases}
        e^{-t^2/2}, & t > -a \\
        A\,(B - t)^{-n}, & t \le -a
        \end{cases},\qquad A = \left(\tfrac{n}{a}\right)^n e^{-a^2/2},\quad
        B = \tfrac{n}{a} - a.

    ``alpha > 0`` puts the tail on the low side, ``alpha < 0`` on the high side
    (RooCrystalBall / RooCBShape convention). Reference: M. Oreglia,
    SLAC-R-236 (1980), appendix D; J. Gaiser, SLAC-R-255 (1982);
    ``scipy.stats.crystalball(beta=alpha, m=n)``. cdf, icdf and :meth:`integral`
    are closed forms.

    Args:
        loc: peak position :math:`\mu`.
        scale: core width :math:`\sigma > 0`.
        alpha: tail start in units of ``scale`` (non-zero; sign picks the side).
        n: tail power; ``n > 1`` without a range, ``n > 0`` with one.
        low: lower end of the observable range (optional, with ``high``).
        high: upper end of the observable range.
        validate_args: NumPyro's argument validation switch.

    Example:
        >>> from hepprob.distributions import CrystalBall
        >>> round(float(CrystalBall(0.0, 1.0, 1.5, 3.0).cdf(0.0)), 4)
        0.5295
    """

    arg_constraints = {  # noqa: RUF012
        "loc": constraints.real,
        "scale": constraints.positive,
        "alpha": constraints.real,
        "n": constraints.positive,
        **_RANGE,
    }

    def __init__(
        self,
        loc: ArrayLike,
        scale: ArrayLike,
        alpha: ArrayLike,
        n: ArrayLike,
        low: ArrayLike | None = None,
        high: ArrayLike | None = None,
        *,
        validate_args: bool | None = None,
    ) -> None:
        owner = "CrystalBall"
        _check_common(owner, loc=loc, scale=scale)
        check(
            owner,
            "alpha",
            alpha,
            lambda v: np.isfinite(v) & (v != 0),
            "finite and != 0",
        )
        _check_power(owner, "n", n, ranged=low is not None)
        params = {"loc": loc, "scale": scale, "alpha": alpha, "n": n}
        self._setup(owner, params, low, high, validate_args)

    def _log_unnorm(self, x: Array) -> Array:
        # one tail only: mirror t for alpha < 0 (cheaper than the two-sided form)
        t = jnp.where(self.alpha > 0, 1.0, -1.0) * (x - self.loc) / self.scale
        a = jnp.abs(self.alpha)
        in_tail = t < -a
        t_tail = jnp.where(in_tail, t, -a)
        t_core = jnp.where(in_tail, 0.0, t)
        out = jnp.where(
            in_tail, tail_log_density(t_tail, a, self.n), -0.5 * t_core * t_core
        )
        return out - jnp.log(self.scale)

    @property
    def _tails(self) -> tuple[Array, Array, Array, Array]:
        a = jnp.abs(self.alpha)
        a_l = jnp.where(self.alpha > 0, a, jnp.inf)
        a_h = jnp.where(self.alpha < 0, a, jnp.inf)
        return a_l, self.n, a_h, self.n


class DoubleCrystalBall(_AbstractCrystalBall):
    r"""Double-sided Crystal Ball: Gaussian core with power-law tails on both sides.

    With :math:`t = (x - \mu)/\sigma`,

    .. math::
        f(x) \propto \begin{cases}
        A_l\,(B_l - t)^{-n_l}, & t < -\alpha_l \\
        e^{-t^2/2}, & -\alpha_l \le t \le \alpha_h \\
        A_h\,(B_h + t)^{-n_h}, & t > \alpha_h
        \end{cases},\quad A_i = \left(\tfrac{n_i}{\alpha_i}\right)^{n_i}
        e^{-\alpha_i^2/2},\ B_i = \tfrac{n_i}{\alpha_i} - \alpha_i.

    Reference: RooCrystalBall (double-sided, equal widths; ROOT 6.24,
    roofit/roofit/src/RooCrystalBall.cxx), zfit ``DoubleCB``; CMS, JINST 10
    (2015) P06005, eq. (2). cdf, icdf and :meth:`integral` are closed forms.

    Args:
        loc: peak position :math:`\mu`.
        scale: core width :math:`\sigma > 0`.
        alpha_low: start of the low tail in units of ``scale`` (> 0).
        n_low: low-tail power (> 1 without a range, > 0 with one).
        alpha_high: start of the high tail in units of ``scale`` (> 0).
        n_high: high-tail power (> 1 without a range, > 0 with one).
        low: lower end of the observable range (optional, with ``high``).
        high: upper end of the observable range.
        validate_args: NumPyro's argument validation switch.

    Example:
        >>> from hepprob.distributions import DoubleCrystalBall
        >>> round(float(DoubleCrystalBall(0.0, 1.0, 1.0, 2.0, 1.0, 2.0).cdf(0.0)), 6)
        0.5
    """

    arg_constraints = {  # noqa: RUF012
        "loc": constraints.real,
        "scale": constraints.positive,
        "alpha_low": constraints.positive,
        "n_low": constraints.positive,
        "alpha_high": constraints.positive,
        "n_high": constraints.positive,
        **_RANGE,
    }

    def __init__(
        self,
        loc: ArrayLike,
        scale: ArrayLike,
        alpha_low: ArrayLike,
        n_low: ArrayLike,
        alpha_high: ArrayLike,
        n_high: ArrayLike,
        low: ArrayLike | None = None,
        high: ArrayLike | None = None,
        *,
        validate_args: bool | None = None,
    ) -> None:
        owner = "DoubleCrystalBall"
        _check_common(owner, loc=loc, scale=scale)
        for name, value in (("alpha_low", alpha_low), ("alpha_high", alpha_high)):
            check(
                owner, name, value, lambda v: np.isfinite(v) & (v > 0), "finite and > 0"
            )
        _check_power(owner, "n_low", n_low, ranged=low is not None)
        _check_power(owner, "n_high", n_high, ranged=low is not None)
        params = {
            "loc": loc,
            "scale": scale,
            "alpha_low": alpha_low,
            "n_low": n_low,
            "alpha_high": alpha_high,
            "n_high": n_high,
        }
        self._setup(owner, params, low, high, validate_args)

    @property
    def _tails(self) -> tuple[Array, Array, Array, Array]:
        return self.alpha_low, self.n_low, self.alpha_high, self.n_high


class BreitWigner(_RangedPeak):
    r"""Non-relativistic Breit–Wigner (Cauchy) with full width ``width``.

    .. math::
        f(x) = \frac{1}{\pi}\,\frac{\Gamma/2}{(x - M)^2 + (\Gamma/2)^2}

    Reference: RooBreitWigner; ``scipy.stats.cauchy(loc=M, scale=Γ/2)``;
    PDG Review "Kinematics", eq. (49.11). cdf, icdf and :meth:`integral` are
    closed forms (arctangents).

    Args:
        loc: peak position :math:`M`.
        width: full width at half maximum :math:`\Gamma > 0`.
        low: lower end of the observable range (optional, with ``high``).
        high: upper end of the observable range.
        validate_args: NumPyro's argument validation switch.

    Example:
        >>> from hepprob.distributions import BreitWigner
        >>> round(float(BreitWigner(91.19, 2.5).cdf(91.19 + 1.25)), 6)
        0.75
    """

    arg_constraints = {  # noqa: RUF012
        "loc": constraints.real,
        "width": constraints.positive,
        **_RANGE,
    }

    def __init__(
        self,
        loc: ArrayLike,
        width: ArrayLike,
        low: ArrayLike | None = None,
        high: ArrayLike | None = None,
        *,
        validate_args: bool | None = None,
    ) -> None:
        _check_common("BreitWigner", loc=loc, width=width)
        params = {"loc": loc, "width": width}
        self._setup("BreitWigner", params, low, high, validate_args)

    def _log_unnorm(self, x: Array) -> Array:
        g = 0.5 * self.width
        z = (x - self.loc) / g
        return -jnp.log(np.pi * g) - jnp.log1p(z * z)

    def _mass(self, a: Array, b: Array) -> Array:
        g = 0.5 * self.width
        return _atan_diff(_std(a, self.loc, g), _std(b, self.loc, g)) / np.pi

    def _from_mass(self, m: Array, total: Array) -> Array:
        g = 0.5 * self.width
        theta = jnp.arctan(_std(self._lo, self.loc, g)) + np.pi * m
        theta = jnp.clip(theta, -0.5 * np.pi + 1e-16, 0.5 * np.pi - 1e-16)
        return self.loc + g * jnp.tan(theta)


class RelativisticBreitWigner(_RangedPeak):
    r"""Relativistic Breit–Wigner in the invariant mass ``m`` (fixed width).

    .. math::
        f(m) \propto \frac{1}{(m^2 - M^2)^2 + M^2\Gamma^2}

    the common HEP form (PDG Review "Kinematics", eq. (49.13) without the
    :math:`m`-dependent factors; RooFit ``RooRelBreitWigner`` at fixed width).
    Normalised analytically: with :math:`p = \sqrt{M^2 + iM\Gamma}`,
    :math:`\int f\,dm = \operatorname{Im}\big[\tfrac{1}{2p}
    \log\tfrac{m - p}{m + p}\big]/(M\Gamma)`. Support :math:`m \ge 0` without a
    range. icdf/sampling solve the closed-form cdf by safeguarded Newton steps.

    Args:
        mass: pole mass :math:`M > 0`.
        width: width :math:`\Gamma > 0`.
        low: lower end of the observable range (optional, with ``high``).
        high: upper end of the observable range.
        validate_args: NumPyro's argument validation switch.

    Example:
        >>> from hepprob.distributions import RelativisticBreitWigner
        >>> d = RelativisticBreitWigner(91.19, 2.5, 70.0, 110.0)
        >>> bool(0.5 < float(d.cdf(91.5)) < 0.6)
        True
    """

    arg_constraints = {  # noqa: RUF012
        "mass": constraints.positive,
        "width": constraints.positive,
        **_RANGE,
    }
    _natural_low = 0.0

    def __init__(
        self,
        mass: ArrayLike,
        width: ArrayLike,
        low: ArrayLike | None = None,
        high: ArrayLike | None = None,
        *,
        validate_args: bool | None = None,
    ) -> None:
        owner = "RelativisticBreitWigner"
        check(owner, "mass", mass, lambda v: np.isfinite(v) & (v > 0), "finite and > 0")
        _check_common(owner, width=width)
        params = {"mass": mass, "width": width}
        self._setup(owner, params, low, high, validate_args)

    def _log_unnorm(self, x: Array) -> Array:
        mg = self.mass * self.width
        d = (x - self.mass) * (x + self.mass)
        return -jnp.log(d * d + mg * mg)

    def _primitive(self, x: Array) -> Array:
        """Antiderivative of the unnormalised density, 0 at ``+inf``.

        ``Im[(log(x - p) - log(x + p)) / (2p)] / (M Γ)`` with ``p = a + ib``,
        written in real arithmetic (log1p and two atan2) for speed.
        """
        m2, mg = self.mass * self.mass, self.mass * self.width
        re_p = jnp.sqrt(0.5 * (jnp.hypot(m2, mg) + m2))
        im_p = 0.5 * mg / re_p
        finite = jnp.isfinite(x)
        xs = jnp.where(finite, x, 0.0)
        plus = (xs + re_p) ** 2 + im_p * im_p
        log_ratio = 0.5 * jnp.log1p(-4.0 * xs * re_p / plus)
        angle = jnp.arctan2(-im_p, xs - re_p) - jnp.arctan2(im_p, xs + re_p)
        angle = jnp.where(finite, angle, jnp.where(x > 0, 0.0, -2.0 * np.pi))
        log_ratio = jnp.where(finite, log_ratio, 0.0)
        norm = 2.0 * (re_p * re_p + im_p * im_p) * mg
        return (angle * re_p - log_ratio * im_p) / norm

    def _mass(self, a: Array, b: Array) -> Array:
        return self._primitive(b) - self._primitive(a)

    def _from_mass(self, m: Array, total: Array) -> Array:
        # start from the Cauchy (non-relativistic) quantile, then Newton in m
        h = 0.5 * self.width
        th_lo = jnp.arctan(_std(self._lo, self.mass, h))
        th_hi = jnp.minimum(
            jnp.arctan(_std(self._hi, self.mass, h)), 0.5 * np.pi - 1e-12
        )
        start = self.mass + h * jnp.tan(th_lo + (m / total) * (th_hi - th_lo))
        hi = jnp.minimum(self._hi, self.mass + h * jnp.tan(th_hi))
        f_lo = self._primitive(self._lo)

        def g(x: Array) -> tuple[Array, Array]:
            val = (self._primitive(x) - f_lo - m) / total
            return val, jnp.exp(self._log_unnorm(x)) / total

        lo, hi, start = jnp.broadcast_arrays(self._lo, hi, start)
        return safe_newton_bisect(g, lo, hi, start, iterations=30, tol=2e-15)


class Voigtian(_RangedPeak):
    r"""Voigt profile: a Breit–Wigner (Cauchy) convolved with a Gaussian.

    .. math::
        f(x) = \frac{\operatorname{Re}\,w(z)}{\sigma\sqrt{2\pi}},\qquad
        z = \frac{x - \mu + i\gamma}{\sigma\sqrt2}

    with ``w`` the Faddeeva function (implemented in JAX after Weideman, SIAM J.
    Numer. Anal. 31 (1994) 1497) and ``gamma`` the Lorentzian half-width.
    Reference: RooVoigtian (with width = 2 gamma); ``scipy.special.voigt_profile``.
    With a range the normalisation and cdf are computed by composite
    Gauss–Legendre quadrature in :math:`\theta = \arctan((x - \mu)/h)`;
    samples are ``mu + sigma N + gamma C``, accept–reject on the range.

    Args:
        loc: peak position :math:`\mu`.
        sigma: Gaussian resolution :math:`\sigma > 0`.
        gamma: Lorentzian half-width at half maximum :math:`\gamma > 0`.
        low: lower end of the observable range (optional, with ``high``).
        high: upper end of the observable range.
        validate_args: NumPyro's argument validation switch.

    Example:
        >>> from hepprob.distributions import Voigtian
        >>> round(float(Voigtian(0.0, 1.0, 0.5).cdf(0.0)), 6)
        0.5
    """

    arg_constraints = {  # noqa: RUF012
        "loc": constraints.real,
        "sigma": constraints.positive,
        "gamma": constraints.positive,
        **_RANGE,
    }

    def __init__(
        self,
        loc: ArrayLike,
        sigma: ArrayLike,
        gamma: ArrayLike,
        low: ArrayLike | None = None,
        high: ArrayLike | None = None,
        *,
        validate_args: bool | None = None,
    ) -> None:
        _check_common("Voigtian", loc=loc, sigma=sigma, gamma=gamma)
        params = {"loc": loc, "sigma": sigma, "gamma": gamma}
        self._setup("Voigtian", params, low, high, validate_args)

    def _log_unnorm(self, x: Array) -> Array:
        return jnp.log(voigt_profile(x - self.loc, self.sigma, self.gamma))

    def _mass(self, a: Array, b: Array) -> Array:
        # substitute x = loc + h tan(theta): the Lorentzian tails become flat
        fl, fg = 2.0 * self.gamma, 2.3548200450309493 * self.sigma
        h = 0.5 * (0.5346 * fl + jnp.sqrt(0.2166 * fl * fl + fg * fg))  # Olivero 1977
        th_a = jnp.arctan(_std(a, self.loc, h))
        th_b = jnp.arctan(_std(b, self.loc, h))

        def integrand(theta: Array) -> Array:
            u = jnp.tan(theta)
            prof = voigt_profile(
                h[..., None] * u, self.sigma[..., None], self.gamma[..., None]
            )
            return prof * h[..., None] * (1.0 + u * u)

        h, th_a, th_b = jnp.broadcast_arrays(h, th_a, th_b)
        full = jnp.isneginf(a) & jnp.isposinf(b) & jnp.ones(jnp.shape(h), dtype=bool)
        quad = gauss_legendre(integrand, th_a, th_b, panels=16, order=16)
        return jnp.where(full, 1.0, quad)

    def icdf(self, q: ArrayLike) -> Array:
        """Not available in closed form for the Voigt profile."""
        msg = "Voigtian has no closed-form icdf; use sample() or cdf()"
        raise NotImplementedError(msg)

    def sample(self, key: Array, sample_shape: tuple[int, ...] = ()) -> Array:
        """Exact samples: Gaussian + Cauchy, accept–reject inside the range."""
        shape = tuple(sample_shape) + self.batch_shape

        def draw(k: Array) -> Array:
            k1, k2 = jax.random.split(k)
            return (
                self.loc
                + self.sigma * jax.random.normal(k1, shape)
                + self.gamma * jax.random.cauchy(k2, shape)
            )

        key, sub = jax.random.split(key)
        x0 = draw(sub)
        if self.low is None:
            return x0

        def inside(x: Array) -> Array:
            return (x >= self.low) & (x <= self.high)

        def cond(state: tuple[Array, Array]) -> Array:
            return ~jnp.all(inside(state[0]))

        def body(state: tuple[Array, Array]) -> tuple[Array, Array]:
            x, k = state
            k, sub = jax.random.split(k)
            return jnp.where(inside(x), x, draw(sub)), k

        x, _ = lax.while_loop(cond, body, (x0, key))
        return x


class JohnsonSU(_RangedPeak):
    r"""Johnson's SU distribution (unbounded, skewed, heavy-tailed).

    With :math:`z = (x - \xi)/\lambda`,

    .. math::
        f(x) = \frac{\delta}{\lambda\sqrt{2\pi}}\,\frac{1}{\sqrt{1 + z^2}}\,
        \exp\!\Big[-\tfrac12\big(\gamma + \delta\,\operatorname{asinh} z\big)^2\Big],
        \qquad F(x) = \Phi(\gamma + \delta\,\operatorname{asinh} z).

    Reference: N. L. Johnson, Biometrika 36 (1949) 149, eq. (19); RooJohnson;
    ``scipy.stats.johnsonsu(a=gamma, b=delta, loc, scale)``. cdf, icdf and
    :meth:`integral` are closed forms.

    Args:
        gamma: shape (skewness) :math:`\gamma`.
        delta: shape (tail weight) :math:`\delta > 0`.
        loc: location :math:`\xi`.
        scale: scale :math:`\lambda > 0`.
        low: lower end of the observable range (optional, with ``high``).
        high: upper end of the observable range.
        validate_args: NumPyro's argument validation switch.

    Example:
        >>> from hepprob.distributions import JohnsonSU
        >>> round(float(JohnsonSU(0.0, 1.0, 0.0, 1.0).cdf(0.0)), 6)
        0.5
    """

    arg_constraints = {  # noqa: RUF012
        "gamma": constraints.real,
        "delta": constraints.positive,
        "loc": constraints.real,
        "scale": constraints.positive,
        **_RANGE,
    }

    def __init__(
        self,
        gamma: ArrayLike,
        delta: ArrayLike,
        loc: ArrayLike,
        scale: ArrayLike,
        low: ArrayLike | None = None,
        high: ArrayLike | None = None,
        *,
        validate_args: bool | None = None,
    ) -> None:
        _check_common("JohnsonSU", gamma=gamma, loc=loc, delta=delta, scale=scale)
        params = {"gamma": gamma, "delta": delta, "loc": loc, "scale": scale}
        self._setup("JohnsonSU", params, low, high, validate_args)

    def _v(self, x: Array) -> Array:
        finite = jnp.isfinite(x)
        z = _std(jnp.where(finite, x, 0.0), self.loc, self.scale)
        return jnp.where(finite, self.gamma + self.delta * jnp.arcsinh(z), x)

    def _log_unnorm(self, x: Array) -> Array:
        z = _std(x, self.loc, self.scale)
        v = self._v(x)
        return (
            jnp.log(self.delta / (self.scale * SQRT_2PI))
            - jnp.log(jnp.hypot(1.0, z))
            - 0.5 * v * v
        )

    def _mass(self, a: Array, b: Array) -> Array:
        return normal_mass(self._v(a), self._v(b))

    def _from_mass(self, m: Array, total: Array) -> Array:
        v = normal_mass_inverse(self._v(self._lo), m)
        return self.loc + self.scale * jnp.sinh((v - self.gamma) / self.delta)


# ----------------------------------------------------------------------------
# private helpers


def _check_common(owner: str, **params: ArrayLike) -> None:
    """``loc`` and JohnsonSU's ``gamma`` must be finite; every other one > 0."""
    for name, value in params.items():
        if name == "loc" or (name == "gamma" and owner == "JohnsonSU"):
            check(owner, name, value, np.isfinite, "finite")
        else:
            check(
                owner, name, value, lambda v: np.isfinite(v) & (v > 0), "finite and > 0"
            )


def _check_power(owner: str, name: str, value: ArrayLike, *, ranged: bool) -> None:
    """Tail powers: > 0 with a range, > 1 (normalisable tail) without one."""
    if ranged:
        check(owner, name, value, lambda v: np.isfinite(v) & (v > 0), "finite and > 0")
    else:
        check(
            owner,
            name,
            value,
            lambda v: np.isfinite(v) & (v > 1),
            "> 1 without a range (the tail is not normalisable otherwise)",
        )


def _std(x: Array, loc: Array, scale: Array) -> Array:
    """``(x - loc) / scale`` that keeps ``±inf`` as is, with finite gradients."""
    finite = jnp.isfinite(x)
    return jnp.where(finite, (jnp.where(finite, x, 0.0) - loc) / scale, x)


def _atan_diff(z1: Array, z2: Array) -> Array:
    """:math:`\\arctan z_2 - \\arctan z_1`, exact in the tails (same sign ends)."""
    both_pos = z1 > 1.0
    both_neg = z2 < -1.0
    # atan(z2) - atan(z1) = atan(1/z1) - atan(1/z2) when both are > 0
    inv1 = 1.0 / jnp.where(both_pos | both_neg, z1, 1.0)
    inv2 = 1.0 / jnp.where(both_pos | both_neg, z2, 1.0)
    return jnp.where(
        both_pos | both_neg,
        jnp.arctan(inv1) - jnp.arctan(inv2),
        jnp.arctan(z2) - jnp.arctan(z1),
    )


def _cb_mass_t(
    t1: Array, t2: Array, a_l: Array, n_l: Array, a_h: Array, n_h: Array
) -> Array:
    """Unnormalised (in units of ``scale``) mass of the CB shape over ``[t1, t2]``."""
    has_l, has_h = jnp.isfinite(a_l), jnp.isfinite(a_h)
    al, ah = jnp.where(has_l, a_l, 1.0), jnp.where(has_h, a_h, 1.0)
    core_lo = jnp.where(has_l, -al, -jnp.inf)
    core_hi = jnp.where(has_h, ah, jnp.inf)
    # left tail over [min(t1, -a_l), min(t2, -a_l)]
    l1 = jnp.where(has_l, jnp.minimum(t1, -al), -2.0)
    l2 = jnp.where(has_l, jnp.minimum(t2, -al), -1.0)
    left = jnp.where(has_l, tail_mass(l1, l2, al, n_l), 0.0)
    # right tail, mirrored: t -> -t
    r1 = jnp.where(has_h, -jnp.maximum(t2, ah), -2.0)
    r2 = jnp.where(has_h, -jnp.maximum(t1, ah), -1.0)
    right = jnp.where(has_h, tail_mass(r1, r2, ah, n_h), 0.0)
    c1 = jnp.clip(t1, core_lo, core_hi)
    c2 = jnp.clip(t2, core_lo, core_hi)
    core = SQRT_2PI * normal_mass(c1, c2)
    return left + core + right


def _cb_from_mass_t(
    m: Array,
    total: Array,
    t_lo: Array,
    t_hi: Array,
    a_l: Array,
    n_l: Array,
    a_h: Array,
    n_h: Array,
) -> Array:
    """Standardised ``t`` at which the CB mass from ``t_lo`` reaches ``m``."""
    has_l, has_h = jnp.isfinite(a_l), jnp.isfinite(a_h)
    al, ah = jnp.where(has_l, a_l, 1.0), jnp.where(has_h, a_h, 1.0)
    core_lo = jnp.where(has_l, -al, -jnp.inf)
    core_hi = jnp.where(has_h, ah, jnp.inf)
    mass_l = _cb_mass_t(t_lo, jnp.minimum(core_lo, t_hi), a_l, n_l, a_h, n_h)
    mass_l = jnp.where(has_l & (t_lo < core_lo), mass_l, 0.0)
    c_start = jnp.clip(t_lo, core_lo, core_hi)
    c_end = jnp.clip(t_hi, core_lo, core_hi)
    mass_c = SQRT_2PI * normal_mass(c_start, c_end)
    # branch 1: left tail
    t_left = tail_mass_inverse(jnp.where(has_l, t_lo, -2.0), m, al, n_l)
    # branch 2: Gaussian core
    m_core = jnp.clip(m - mass_l, 0.0, mass_c)
    t_core = normal_mass_inverse(c_start, m_core / SQRT_2PI)
    # branch 3: right tail, from the upper end downwards (mirrored)
    rest = jnp.maximum(total - m, 0.0)
    t_right = -tail_mass_inverse(jnp.where(has_h, -t_hi, -2.0), rest, ah, n_h)
    t = jnp.where(m <= mass_l, t_left, jnp.where(m <= mass_l + mass_c, t_core, t_right))
    return jnp.clip(t, t_lo, t_hi)
