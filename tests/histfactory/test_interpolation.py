"""Interpolation codes against pyhf's interpolators, closed forms and smoothness checks."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pyhf
import pytest

from hepprob.errors import SpecError
from hepprob.histfactory import interpolation as ip

LO = np.array([80.0, 9.0, 0.5, 30.0])
NOM = np.array([100.0, 10.0, 1.0, 20.0])
HI = np.array([130.0, 10.5, 1.8, 26.0])
ALPHAS = np.array([-3.2, -1.0, -0.999, -0.6, -0.1, 0.0, 0.2, 0.7, 1.0, 1.3, 2.5])
KLO, KHI = LO / NOM, HI / NOM


def _pyhf(code, lo, nom, hi, alphas):
    hset = np.stack([lo, nom, hi])[None, None]  # (sys, sample, 3, bins)
    out = getattr(pyhf.interpolators, code)(hset.tolist())(alphas[None, :])
    return np.asarray(out)[0, 0]  # (alphas, bins)


@pytest.mark.parametrize(
    ("code", "ours"),
    [("code0", ip.code0), ("code4p", ip.code4p)],
)
def test_additive_codes_match_pyhf(code, ours):
    ref = _pyhf(code, LO, NOM, HI, ALPHAS)
    got = ours(ALPHAS[:, None], LO, NOM, HI)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("code", "ours"), [("code1", ip.code1), ("code4", ip.code4)])
def test_multiplicative_codes_match_pyhf(code, ours):
    ref = _pyhf(code, KLO, np.ones(4), KHI, ALPHAS)
    got = ours(ALPHAS[:, None], KLO, KHI)
    np.testing.assert_allclose(got, ref, rtol=1e-12)


def _code2_closed_form(a, lo, nom, hi):
    """HistFactory quadratic interpolation, linear extrapolation (CERN-OPEN-2012-016)."""
    sa, sb = 0.5 * (hi + lo) - nom, 0.5 * (hi - lo)
    if a > 1:
        return (hi - nom) + (sb + 2 * sa) * (a - 1)
    if a < -1:
        return (lo - nom) + (sb - 2 * sa) * (a + 1)
    return sa * a * a + sb * a


def test_code2_closed_form_and_pyhf_inside():
    got = ip.code2(ALPHAS[:, None], LO, NOM, HI)
    ref = np.array([[_code2_closed_form(a, *t) for t in zip(LO, NOM, HI, strict=True)]
                    for a in ALPHAS])  # fmt: skip
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
    inside = np.abs(ALPHAS) <= 1
    py = _pyhf("code2", LO, NOM, HI, ALPHAS)
    np.testing.assert_allclose(got[inside], py[inside], rtol=1e-12, atol=1e-12)
    # pyhf 0.7's code2 is discontinuous at +-1 (its extrapolation lacks the
    # offsets hi-nom / lo-nom); ours is continuous there
    edge = np.array([-1.0 - 1e-9, -1.0, 1.0, 1.0 + 1e-9])
    py_edge = _pyhf("code2", LO, NOM, HI, edge)
    assert np.all(np.abs(py_edge[0] - py_edge[1]) > 1e-3)
    assert np.all(np.abs(py_edge[3] - py_edge[2]) > 1e-3)
    ours_edge = np.asarray(ip.code2(edge[:, None], LO, NOM, HI))
    np.testing.assert_allclose(ours_edge[0], ours_edge[1], atol=1e-6)
    np.testing.assert_allclose(ours_edge[3], ours_edge[2], atol=1e-6)


def _derivatives(f, x):
    d1 = jax.grad(f)
    d2 = jax.grad(d1)
    return np.array([f(x), d1(x), d2(x)])


def _one(fn, **kw):
    """Scalar function of alpha for bin 0 (vectors LO/NOM/HI, or kappas)."""
    return lambda a: fn(a, **kw)[0]


SMOOTH = {
    # name: (function of alpha, junction points, number of continuous derivatives)
    "code0": (_one(lambda a: ip.code0(a, LO, NOM, HI)), (0.0,), 0),
    "code2": (_one(lambda a: ip.code2(a, LO, NOM, HI)), (-1.0, 1.0), 1),
    "code4p": (_one(lambda a: ip.code4p(a, LO, NOM, HI)), (-1.0, 1.0), 2),
    "code1": (_one(lambda a: ip.code1(a, KLO, KHI)), (0.0,), 0),
    "code4": (_one(lambda a: ip.code4(a, KLO, KHI)), (-1.0, 1.0), 2),
    "lnN_smooth": (_one(lambda a: ip.lnn_smooth(a, KLO, KHI)), (-0.5, 0.5), 2),
    "poly6_r0.6": (
        _one(lambda a: ip.poly6(a, LO, NOM, HI, smooth_region=0.6)),
        (-0.6, 0.6),
        2,
    ),
}


@pytest.mark.parametrize("name", sorted(SMOOTH))
def test_continuity_at_junctions(name):
    f, points, order = SMOOTH[name]
    eps = 1e-8
    for x0 in points:
        left = _derivatives(f, jnp.float64(x0 - eps))
        right = _derivatives(f, jnp.float64(x0 + eps))
        scale = 1.0 + np.abs(left)
        assert np.all(np.isfinite(left))
        assert np.all(np.isfinite(right))
        np.testing.assert_array_less(
            np.abs(left - right)[: order + 1], 1e-4 * scale[: order + 1]
        )
        if order < 2:  # the next derivative really jumps (the test can fail)
            assert abs(left[order + 1] - right[order + 1]) > 1e-2 * scale[order + 1]


def _combine_lnn(x, klo, khi):
    """Combine's ProcessNormalization::logKappaForX, transcribed from its description."""
    lhi, llo = np.log(khi), -np.log(klo)
    if abs(x) >= 0.5:
        lk = lhi if x >= 0 else llo
    else:
        t = 2 * x
        h = (3 * t**5 - 10 * t**3 + 15 * t) / 8
        lk = 0.5 * (lhi + llo) + 0.5 * (lhi - llo) * h
    return np.exp(x * lk)


def _combine_morph(x, lo, nom, hi, r):
    """Combine's vertical template morphing with smoothStepFunc (region r)."""
    xn = x / r
    s = np.sign(x) if abs(xn) >= 1 else (3 * xn**5 - 10 * xn**3 + 15 * xn) / 8
    return 0.5 * x * ((hi - lo) + (hi + lo - 2 * nom) * s)


def test_combine_formulas_at_sample_points():
    xs = np.linspace(-2.0, 2.0, 41)
    got = ip.lnn_smooth(xs[:, None], KLO, KHI)
    ref = np.array(
        [[_combine_lnn(x, a, b) for a, b in zip(KLO, KHI, strict=True)] for x in xs]
    )
    np.testing.assert_allclose(got, ref, rtol=1e-13)
    outside = np.abs(xs) >= 0.5
    np.testing.assert_allclose(
        got[outside], ip.code1(xs[outside, None], KLO, KHI), rtol=1e-13
    )
    for r in (0.5, 1.0, 1.7):
        got = ip.poly6(xs[:, None], LO, NOM, HI, smooth_region=r)
        ref = np.array(
            [
                [_combine_morph(x, *t, r) for t in zip(LO, NOM, HI, strict=True)]
                for x in xs
            ]
        )
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        ip.poly6(xs[:, None], LO, NOM, HI),
        ip.code4p(xs[:, None], LO, NOM, HI),
        rtol=1e-13,
    )


def test_endpoints_and_gradients_finite():
    for fn in (ip.code0, ip.code2, ip.code4p, ip.poly6):
        np.testing.assert_allclose(fn(1.0, LO, NOM, HI), HI - NOM, rtol=1e-12)
        np.testing.assert_allclose(fn(-1.0, LO, NOM, HI), LO - NOM, rtol=1e-12)
        np.testing.assert_allclose(fn(0.0, LO, NOM, HI), 0.0, atol=1e-14)
    for fn in (ip.code1, ip.code4, ip.lnn_smooth):
        np.testing.assert_allclose(fn(1.0, KLO, KHI), KHI, rtol=1e-12)
        np.testing.assert_allclose(fn(-1.0, KLO, KHI), KLO, rtol=1e-12)
        np.testing.assert_allclose(fn(0.0, KLO, KHI), 1.0, rtol=1e-12)
        for a in (0.0, 1.0, -1.0, 3.0):
            g = jax.grad(lambda x, fn=fn: jnp.sum(fn(x, KLO, KHI)))(jnp.float64(a))
            assert np.isfinite(g)


def test_unknown_code_and_bad_region():
    with pytest.raises(SpecError, match="unknown additive interpolation code 'code7'"):
        ip.additive_weight("code7", 0.5)
    with pytest.raises(SpecError, match="smooth_region must be > 0"):
        ip.poly6(0.5, LO, NOM, HI, smooth_region=0.0)
