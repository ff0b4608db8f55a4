"""Interpolation of systematic variations: HistFactory codes 0, 1, 2, 4, 4p and Combine's.

Each function maps a nuisance parameter ``alpha`` (0 = nominal, +-1 = the up/down
variation) to a yield. Additive ("shape", histosys) interpolations return the
*change* of the yield, ``delta(alpha)``, from ``lo``/``nom``/``hi`` histograms;
multiplicative ("normalisation", normsys) interpolations return the *factor*
``f(alpha)`` from the ratios ``kappa_lo = lo/nom`` and ``kappa_hi = hi/nom``.

All functions are pure ``jax.numpy``, elementwise and broadcasting, safe under
``jit``/``vmap``/``grad``: the branch not taken is evaluated at a harmless point
so that its gradient stays finite.

Every additive code is written as ``delta = alpha * S + g(alpha) * A`` with
``S = (hi - lo) / 2`` and ``A = (hi + lo - 2 nom) / 16`` (the symmetric and
asymmetric parts); only ``g`` differs from code to code (:func:`additive_weight`).
This is what lets a compiled model evaluate all histosys modifiers with two
matrix products.

References:
    K. Cranmer et al., "HistFactory: A tool for creating statistical models for
    use with RooFit and RooStats", CERN-OPEN-2012-016, section 4.1 (codes 0-2).
    ROOT ``roofit/histfactory/src/FlexibleInterpVar.cxx`` and
    ``PiecewiseInterpolation.cxx`` (codes 4 and 4/"4p"), formulas only.
    CMS Collaboration, "The CMS statistical analysis and combination tool:
    Combine", Comput. Softw. Big Sci. 8 (2024) 19, arXiv:2404.06614 (smooth
    asymmetric log-normal and vertical template morphing); formulas from
    cms-analysis/HiggsAnalysis-CombinedLimit ``src/ProcessNormalization.cc``
    (``logKappaForX``) and ``src/VerticalInterpHistPdf.cc`` (``smoothStepFunc``).
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np

from hepprob._typing import Array, ArrayLike
from hepprob.errors import SpecError

__all__ = [
    "ADDITIVE_CODES",
    "MULTIPLICATIVE_CODES",
    "additive_weight",
    "code0",
    "code1",
    "code2",
    "code4",
    "code4_coefficients",
    "code4p",
    "lnn_smooth",
    "poly6",
    "smooth_step",
]

#: interpolation codes for additive (histosys) modifiers
ADDITIVE_CODES = ("code0", "code2", "code4p", "poly6")
#: interpolation codes for multiplicative (normsys) modifiers; the additive
#: codes 0 and 2 are also accepted there, applied to the factor (nominal = 1)
MULTIPLICATIVE_CODES = ("code1", "code4", "lnN_smooth", "code0", "code2")


def __dir__() -> list[str]:
    return __all__


def smooth_step(x: ArrayLike) -> Array:
    r"""Odd quintic step from -1 to +1 on ``[-1, 1]``, flat (C2) at the ends.

    .. math:: h(x) = \tfrac{1}{8}\,x\,(3x^4 - 10x^2 + 15)\ \ (|x|<1),
              \qquad h(x) = \operatorname{sign}(x)\ \ (|x| \ge 1)

    with :math:`h(\pm1)=\pm1`, :math:`h'(\pm1)=h''(\pm1)=0` (Combine's
    ``smoothStepFunc``, VerticalInterpHistPdf.cc).
    """
    x = jnp.asarray(x, dtype=jnp.float64)
    inside = jnp.abs(x) < 1.0
    xi = jnp.where(inside, x, 0.0)
    x2 = xi * xi
    return jnp.where(inside, 0.125 * xi * (x2 * (3.0 * x2 - 10.0) + 15.0), jnp.sign(x))


def additive_weight(code: str, alpha: ArrayLike, smooth_region: float = 1.0) -> Array:
    r"""The weight ``g(alpha)`` of the asymmetric part in ``delta = alpha S + g A``.

    With :math:`S=(h-l)/2` and :math:`A=(h+l-2n)/16`:

    * code0 (piecewise linear): :math:`g = 8|\alpha|`;
    * code2 (quadratic inside, linear outside, continuous with its slope):
      :math:`g = 8\alpha^2` for :math:`|\alpha|\le1`, :math:`16|\alpha|-8` beyond;
    * code4p (6th-order polynomial inside, linear outside):
      :math:`g = \alpha^2(15-10\alpha^2+3\alpha^4)` for :math:`|\alpha|\le1`,
      :math:`8|\alpha|` beyond;
    * poly6 (Combine's vertical morphing with smoothing region ``r``):
      :math:`g = 8\,\alpha\,h(\alpha/r)` with :func:`smooth_step` ``h``; it equals
      code4p for ``r = 1``.

    Raises:
        SpecError: unknown ``code``.
    """
    a = jnp.asarray(alpha, dtype=jnp.float64)
    absa = jnp.abs(a)
    if code == "code0":
        return 8.0 * absa
    if code == "code2":
        return jnp.where(absa <= 1.0, 8.0 * a * a, 16.0 * absa - 8.0)
    if code == "code4p":
        ai = jnp.where(absa <= 1.0, a, 0.0)
        a2 = ai * ai
        return jnp.where(absa <= 1.0, a2 * (15.0 + a2 * (-10.0 + 3.0 * a2)), 8.0 * absa)
    if code == "poly6":
        if not smooth_region > 0:
            msg = f"poly6: smooth_region must be > 0, got {smooth_region!r}"
            raise SpecError(msg)
        return 8.0 * a * smooth_step(a / smooth_region)
    msg = f"unknown additive interpolation code {code!r}; expected one of {ADDITIVE_CODES}"
    raise SpecError(msg)


def _additive(
    code: str,
    alpha: ArrayLike,
    lo: ArrayLike,
    nom: ArrayLike,
    hi: ArrayLike,
    **kw: float,
) -> Array:
    lo, nom, hi = (jnp.asarray(v, dtype=jnp.float64) for v in (lo, nom, hi))
    a = jnp.asarray(alpha, dtype=jnp.float64)
    sym = 0.5 * (hi - lo)
    asym = (hi + lo - 2.0 * nom) / 16.0
    return a * sym + additive_weight(code, a, **kw) * asym


def code0(alpha: ArrayLike, lo: ArrayLike, nom: ArrayLike, hi: ArrayLike) -> Array:
    r"""Piecewise-linear additive interpolation (HistFactory code 0).

    :math:`\delta = \alpha(h-n)` for :math:`\alpha\ge0`, :math:`\alpha(n-l)` below.
    """
    return _additive("code0", alpha, lo, nom, hi)


def code2(alpha: ArrayLike, lo: ArrayLike, nom: ArrayLike, hi: ArrayLike) -> Array:
    r"""Quadratic interpolation, linear extrapolation (HistFactory code 2).

    .. math:: \delta = a\alpha^2 + b\alpha\ (|\alpha|\le1),\quad
              \delta = (h-n) + (b+2a)(\alpha-1)\ (\alpha>1),\quad
              \delta = (l-n) + (b-2a)(\alpha+1)\ (\alpha<-1)

    with :math:`a=(h+l)/2-n`, :math:`b=(h-l)/2` (CERN-OPEN-2012-016, section 4.1).
    Value and slope are continuous at :math:`\pm1`. (pyhf 0.7's ``code2`` omits
    the offsets ``h-n``/``l-n`` beyond :math:`\pm1` and jumps there; hepprob
    does not reproduce that bug.)
    """
    return _additive("code2", alpha, lo, nom, hi)


def code4p(alpha: ArrayLike, lo: ArrayLike, nom: ArrayLike, hi: ArrayLike) -> Array:
    r"""6th-order polynomial inside ``|alpha|<1``, linear outside (code 4p).

    .. math:: \delta = \alpha S + \alpha^2(15 - 10\alpha^2 + 3\alpha^4)\,A

    with :math:`S=(h-l)/2`, :math:`A=(h+l-2n)/16`; value, first and second
    derivative match the linear extrapolation at :math:`\pm1`.
    """
    return _additive("code4p", alpha, lo, nom, hi)


def poly6(
    alpha: ArrayLike,
    lo: ArrayLike,
    nom: ArrayLike,
    hi: ArrayLike,
    smooth_region: float = 1.0,
) -> Array:
    r"""Combine's smooth vertical template morphing (``FastVerticalInterpHistPdf2``).

    .. math:: \delta = \tfrac12\,\alpha\,\big[(h-l) + (h+l-2n)\,h_s(\alpha/r)\big]

    with the :func:`smooth_step` :math:`h_s` and smoothing region :math:`r`
    (Combine default 1, where this equals :func:`code4p`). Linear beyond
    :math:`|\alpha|\ge r`; C2 everywhere.
    """
    return _additive("poly6", alpha, lo, nom, hi, smooth_region=smooth_region)


def _safe_pow(kappa: Array, expo: Array, use: Array) -> Array:
    """``kappa ** expo`` where ``use``; 1 elsewhere (finite gradients both ways)."""
    k = jnp.where(use, kappa, 1.0)
    e = jnp.where(use, expo, 0.0)
    return jnp.where(use, jnp.exp(e * jnp.log(k)), 1.0)


def code1(alpha: ArrayLike, kappa_lo: ArrayLike, kappa_hi: ArrayLike) -> Array:
    r"""Piecewise-exponential multiplicative interpolation (HistFactory code 1).

    :math:`f = \kappa_+^{\alpha}` for :math:`\alpha\ge0`,
    :math:`\kappa_-^{-\alpha}` below. Needs :math:`\kappa_\pm>0`.
    """
    a = jnp.asarray(alpha, dtype=jnp.float64)
    up = _safe_pow(jnp.asarray(kappa_hi, dtype=jnp.float64), a, a >= 0)
    dn = _safe_pow(jnp.asarray(kappa_lo, dtype=jnp.float64), -a, a < 0)
    return up * dn


@functools.lru_cache(maxsize=8)
def _code4_inverse(alpha0: float) -> np.ndarray:
    # Rows: f(+a0), f(-a0), f'(+a0), f'(-a0), f''(+a0), f''(-a0) of
    # f(x) = 1 + sum_{i=1..6} c_i x^i, as a linear map of (c_1..c_6).
    rows = []
    for sign in (1.0, -1.0):
        x = sign * alpha0
        rows.append([x**i for i in range(1, 7)])
    for sign in (1.0, -1.0):
        x = sign * alpha0
        rows.append([i * x ** (i - 1) for i in range(1, 7)])
    for sign in (1.0, -1.0):
        x = sign * alpha0
        rows.append(
            [i * (i - 1) * x ** (i - 2) if i >= 2 else 0.0 for i in range(1, 7)]
        )
    mat = np.array(rows, dtype=np.float64)
    return np.linalg.inv(mat)


def code4_coefficients(
    kappa_lo: ArrayLike, kappa_hi: ArrayLike, alpha0: float = 1.0
) -> Array:
    r"""Coefficients :math:`c_1..c_6` (leading axis) of code 4's polynomial.

    Fixed by matching :math:`1+\sum_i c_i\alpha^i` to :math:`\kappa_+^{\alpha}`
    and :math:`\kappa_-^{-\alpha}` in value, first and second derivative at
    :math:`\pm\alpha_0` (ROOT FlexibleInterpVar, code 4).
    """
    lk_hi = jnp.log(jnp.asarray(kappa_hi, dtype=jnp.float64))
    lk_lo = jnp.log(jnp.asarray(kappa_lo, dtype=jnp.float64))
    up = jnp.exp(alpha0 * lk_hi)  # kappa_hi ** alpha0
    dn = jnp.exp(alpha0 * lk_lo)  # value of kappa_lo ** (-x) at x = -alpha0
    rhs = jnp.stack(
        [up - 1.0, dn - 1.0, lk_hi * up, -lk_lo * dn, lk_hi**2 * up, lk_lo**2 * dn]
    )
    inv = jnp.asarray(_code4_inverse(float(alpha0)))
    return jnp.tensordot(inv, rhs, axes=1)


def code4(
    alpha: ArrayLike,
    kappa_lo: ArrayLike,
    kappa_hi: ArrayLike,
    alpha0: float = 1.0,
    coefficients: ArrayLike | None = None,
) -> Array:
    r"""Polynomial interpolation, exponential extrapolation (HistFactory code 4).

    .. math:: f = \kappa_+^{\alpha}\ (\alpha\ge\alpha_0),\quad
              1+\sum_{i=1}^6 c_i\alpha^i\ (|\alpha|<\alpha_0),\quad
              \kappa_-^{-\alpha}\ (\alpha\le-\alpha_0)

    with :func:`code4_coefficients` (pass them precomputed for speed).
    """
    a = jnp.asarray(alpha, dtype=jnp.float64)
    coef = (
        code4_coefficients(kappa_lo, kappa_hi, alpha0)
        if coefficients is None
        else jnp.asarray(coefficients)
    )
    inside = jnp.abs(a) < alpha0
    ai = jnp.where(inside, a, 0.0)
    poly = 1.0 + ai * (
        coef[0]
        + ai
        * (coef[1] + ai * (coef[2] + ai * (coef[3] + ai * (coef[4] + ai * coef[5]))))
    )
    outer = code1(a, kappa_lo, kappa_hi)
    return jnp.where(inside, poly, outer)


def lnn_smooth(alpha: ArrayLike, kappa_lo: ArrayLike, kappa_hi: ArrayLike) -> Array:
    r"""Combine's asymmetric log-normal with a C2 junction (``AsymPow``-style).

    .. math:: f = \exp\!\big(\alpha\,\lambda(\alpha)\big),\quad
              \lambda = \log\kappa_+\ (\alpha\ge\tfrac12),\quad
              -\log\kappa_-\ (\alpha\le-\tfrac12),\quad
              \bar\lambda + \Delta\lambda\,h(2\alpha)\ \text{inside}

    with :math:`\bar\lambda=\tfrac12(\log\kappa_+-\log\kappa_-)`,
    :math:`\Delta\lambda=\tfrac12(\log\kappa_++\log\kappa_-)` and the
    :func:`smooth_step` :math:`h`. Formula of ``ProcessNormalization::logKappaForX``
    (Combine, src/ProcessNormalization.cc) and arXiv:2404.06614 (asymmetric
    log-normal normalisation effects). Exactly code 1 for :math:`|\alpha|\ge1/2`.
    """
    a = jnp.asarray(alpha, dtype=jnp.float64)
    l_hi = jnp.log(jnp.asarray(kappa_hi, dtype=jnp.float64))
    l_lo = -jnp.log(jnp.asarray(kappa_lo, dtype=jnp.float64))
    avg = 0.5 * (l_hi + l_lo)
    half = 0.5 * (l_hi - l_lo)
    lam = avg + half * smooth_step(2.0 * a)
    return jnp.exp(a * lam)
