"""The JAX Faddeeva function and Voigt profile against scipy.special."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import voigt_profile as scipy_voigt
from scipy.special import wofz

import hepprob  # noqa: F401  (float64)
from hepprob.distributions import Voigtian
from hepprob.distributions._faddeeva import faddeeva, voigt_profile

_W = jax.jit(faddeeva)


def _upper_half_plane() -> np.ndarray:
    x = np.concatenate([-np.logspace(-4, 3, 120)[::-1], [0.0], np.logspace(-4, 3, 120)])
    y = np.concatenate([[0.0], np.logspace(-8, 3, 90)])
    xx, yy = np.meshgrid(x, y)
    return (xx + 1j * yy).ravel()


def test_faddeeva_matches_scipy_wofz():
    z = _upper_half_plane()
    got = np.asarray(_W(jnp.asarray(z)))
    ref = wofz(z)
    assert np.max(np.abs(got - ref) / np.abs(ref)) < 3e-14


def test_faddeeva_real_part_where_voigt_needs_it():
    # Im z >= 1e-3 / sqrt(2) (gamma / sigma >= 1e-3): the real part, which is
    # the Voigt density, stays accurate even where it is much smaller than |w|
    x = np.linspace(-60.0, 60.0, 2401)
    y = np.logspace(-3, 2, 11) / np.sqrt(2.0)
    z = (x[None, :] + 1j * y[:, None]).ravel()
    got = np.asarray(_W(jnp.asarray(z))).real
    ref = wofz(z).real
    assert np.max(np.abs(got - ref) / ref) < 1e-11


def test_faddeeva_derivative_matches_its_differential_equation():
    # w'(z) = -2 z w(z) + 2i / sqrt(pi) (Abramowitz & Stegun 7.1.20); along the
    # real direction jax.jvp of the real-input map gives w'(z)
    z = jnp.asarray(
        np.array(
            [0.3 + 0.2j, -2.0 + 1e-3j, 5.0 + 0.5j, 7.9 + 0.1j, 8.1 + 0.1j, 30 + 2j]
        )
    )

    def along_x(t: jax.Array) -> jax.Array:
        return faddeeva(z + t)

    _, tangent = jax.jit(lambda t: jax.jvp(along_x, (t,), (jnp.ones_like(t),)))(
        jnp.zeros(z.shape)
    )
    ref = -2.0 * np.asarray(z) * wofz(np.asarray(z)) + 2j / np.sqrt(np.pi)
    np.testing.assert_allclose(np.asarray(tangent), ref, rtol=1e-11, atol=1e-14)


@pytest.mark.parametrize("gamma", [1e-3, 1e-2, 0.3, 1.0, 10.0, 100.0])
def test_voigt_profile_matches_scipy(gamma):
    x = np.concatenate([np.linspace(-60.0, 60.0, 241), [1e3, -1e4]])
    got = np.asarray(jax.jit(voigt_profile)(jnp.asarray(x), 1.3, gamma))
    ref = scipy_voigt(x, 1.3, gamma)
    assert np.max(np.abs(got - ref) / ref) < 1e-10


@pytest.mark.parametrize(
    ("gamma", "low", "high"), [(1e-2, -5.0, 40.0), (50.0, -300.0, 80.0)]
)
def test_voigtian_range_normalisation_extreme_widths(gamma, low, high):
    # the Gauss-Legendre normalisation in theta = atan(x / h), for a nearly
    # Gaussian and a nearly Lorentzian profile, against adaptive quad on scipy's
    # profile
    d = Voigtian(0.0, 1.0, gamma, low, high)
    points = [-3.0, 0.0, 3.0]
    total = sum(
        quad(
            lambda v: scipy_voigt(v, 1.0, gamma),
            a,
            b,
            epsabs=0.0,
            epsrel=1e-13,
            limit=400,
        )[0]
        for a, b in zip([low, *points], [*points, high], strict=True)
    )
    lp = np.asarray(d.log_prob(jnp.asarray([0.0, 2.0, 30.0])))
    ref = np.log(scipy_voigt(np.array([0.0, 2.0, 30.0]), 1.0, gamma) / total)
    np.testing.assert_allclose(lp, ref, rtol=1e-11)
    # the cdf at an inner point
    part = sum(
        quad(
            lambda v: scipy_voigt(v, 1.0, gamma),
            a,
            b,
            epsabs=0.0,
            epsrel=1e-13,
            limit=400,
        )[0]
        for a, b in [(low, -3.0), (-3.0, 0.0), (0.0, 2.0)]
    )
    assert float(d.cdf(2.0)) == pytest.approx(part / total, rel=1e-11)
