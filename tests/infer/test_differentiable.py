"""Gradients through fits, CLs and limits against central finite differences.

Each derivative from implicit differentiation is compared with a central
difference of the same quantity computed without any derivative rule: the
host-side ``hepprob.infer.hypotest``/``upper_limit`` (which share no code path
with the implicit rules), a closed form, or the forward minimisation itself.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as nd
import pytest

import hepprob
from hepprob.histfactory import Workspace
from hepprob.infer import differentiable as D


def _spec(signal=(5.0, 3.0), background=(50.0, 20.0)):
    return {
        "channels": [
            {
                "name": "SR",
                "samples": [
                    {
                        "name": "signal",
                        "data": list(signal),
                        "modifiers": [
                            {"name": "mu", "type": "normfactor", "data": None}
                        ],
                    },
                    {
                        "name": "background",
                        "data": list(background),
                        "modifiers": [
                            {
                                "name": "bkg_norm",
                                "type": "normsys",
                                "data": {"hi": 1.1, "lo": 0.92},
                            },
                            {
                                "name": "stat",
                                "type": "staterror",
                                "data": [3.0, 2.0],
                            },
                        ],
                    },
                ],
            }
        ],
        "observations": [{"name": "SR", "data": [53.0, 24.0]}],
        "measurements": [{"name": "meas", "config": {"poi": "mu", "parameters": []}}],
        "version": "1.0.0",
    }


@pytest.fixture(scope="module")
def model_and_data():
    ws = Workspace(_spec())
    model = ws.model()
    return model, np.asarray(ws.data(model), dtype=float)


def _central(f, x, h):
    out = []
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h
        out.append((f(x + e) - f(x - e)) / (2 * h))
    return np.array(out)


def test_argmin_closed_form_with_active_bound():
    # min (x0 - a0)^2 + 2 (x1 - a1)^2 + x0 x1 in the box x0 <= 1: with a0 large
    # x0 sits at its bound (derivative 0) and x1 = a1 - x0 / 4
    def f(x, a):
        return (x[0] - a[0]) ** 2 + 2 * (x[1] - a[1]) ** 2 + x[0] * x[1]

    def x_of(a):
        return D.argmin(f, jnp.zeros(2), [-5.0, -5.0], [1.0, 5.0], None, a)

    a = jnp.array([3.0, 0.5])
    np.testing.assert_allclose(x_of(a), [1.0, 0.25], atol=1e-10)
    jac = jax.jacobian(x_of)(a)
    np.testing.assert_allclose(jac, [[0.0, 0.0], [0.0, 1.0]], atol=1e-10)
    # inside the box both move: the inverse Hessian times the mixed term
    inside = jnp.array([0.2, 0.5])
    h = np.array([[2.0, 1.0], [1.0, 4.0]])
    mixed = np.array([[-2.0, 0.0], [0.0, -4.0]])
    np.testing.assert_allclose(
        jax.jacobian(x_of)(inside), -np.linalg.solve(h, mixed), atol=1e-10
    )


def test_argmin_held_entries_carry_their_tangent():
    def f(x, _):
        return (x[0] - 2 * x[1]) ** 2

    def x0_hat(v):
        return D.argmin(
            f, jnp.array([0.0, v]), -10.0, 10.0, jnp.array([False, True]), 0.0
        )[0]

    assert float(jax.grad(x0_hat)(1.5)) == pytest.approx(2.0, abs=1e-12)


def test_fit_errors_and_values_against_closed_form():
    def model(x, sigma):
        mu = hepprob.param("mu", 0.0, -10.0, 10.0)
        numpyro.sample("x", nd.Normal(mu, sigma), obs=x)

    x = np.array([0.3, 1.1, 2.4, 3.0, 4.2])
    n = x.size
    grad_err = jax.grad(lambda s: D.fit(model, x, s).errors[0])(2.0)
    assert float(grad_err) == pytest.approx(1 / np.sqrt(n), rel=1e-10)
    grad_mu = jax.grad(lambda d: D.fit(model, d, 2.0).values[0])(jnp.asarray(x))
    np.testing.assert_allclose(grad_mu, np.full(n, 1 / n), rtol=1e-10)


def test_fit_gradient_in_unbinned_shape_parameter():
    """Signal yield of an extended Gaussian + exponential fit vs the (fixed) width."""
    low, high = 0.0, 10.0

    def model(x, width):
        nsig = hepprob.param("nsig", 50.0, 0.0, 500.0)
        nbkg = hepprob.param("nbkg", 150.0, 0.0, 500.0)
        sig = hepprob.dist.Truncated(nd.Normal(5.0, width), low, high)
        bkg = hepprob.dist.Exponential(-0.3, low=low, high=high)
        numpyro.sample("x", hepprob.dist.Extended([sig, bkg], [nsig, nbkg]), obs=x)

    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(5.0, 0.5, 60), low + rng.exponential(1 / 0.3, 400)])
    x = x[(x > low) & (x < high)][:200]

    def nsig(width):
        return D.fit(model, x, width).values[0]

    grad = float(jax.grad(nsig)(0.5))
    h = 1e-4
    fd = (float(nsig(0.5 + h)) - float(nsig(0.5 - h))) / (2 * h)
    assert grad == pytest.approx(fd, rel=1e-6)
    # the forward value is the ordinary fit's
    ordinary = hepprob.fit(model, x, 0.5)
    assert float(nsig(0.5)) == pytest.approx(float(ordinary.values["nsig"]), rel=1e-6)


def test_hypotest_matches_host_and_its_gradient_matches_finite_differences(
    model_and_data,
):
    model, data = model_and_data
    res = D.hypotest(1.0, data, model)
    cls, band = hepprob.infer.hypotest(1.0, data, model, return_expected_set=True)
    assert float(res.cls) == pytest.approx(float(cls), abs=1e-9)
    np.testing.assert_allclose(res.cls_expected, np.ravel(band), atol=1e-9)

    grad = jax.grad(lambda d: D.hypotest(1.0, d, model).cls)(jnp.asarray(data))

    # differences of the forward computation, with a step large enough that
    # the fits' own scatter (EDM 1e-14) does not show
    def forward(d):
        return float(D.hypotest(1.0, d, model).cls)

    fd = _central(forward, data, 1e-3)
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-9)
    # in the POI too (the fixed fit's held value carries the tangent)
    dmu = float(jax.grad(lambda m: D.hypotest(m, data, model).cls)(1.0))
    fd_mu = (
        float(D.hypotest(1.0 + 1e-3, data, model).cls)
        - float(D.hypotest(1.0 - 1e-3, data, model).cls)
    ) / 2e-3
    assert dmu == pytest.approx(fd_mu, rel=1e-5)


def test_gradients_finite_at_boundaries(model_and_data):
    model, data = model_and_data
    # data below the background: mu_hat sits at its bound 0; and mu below mu_hat
    # (q~ = 0 branch): both gradients must be finite
    low = data.copy()
    low[:2] = [40.0, 15.0]
    g_low = jax.grad(lambda d: D.hypotest(1.0, d, model).cls)(jnp.asarray(low))
    high = data.copy()
    high[:2] = [80.0, 40.0]
    g_high = jax.grad(lambda d: D.hypotest(0.5, d, model).cls)(jnp.asarray(high))
    assert np.all(np.isfinite(g_low))
    assert np.all(np.isfinite(g_high))
    assert float(D.hypotest(1.0, low, model).mu_hat) == pytest.approx(0.0, abs=1e-9)


def test_upper_limit_gradient(model_and_data):
    model, data = model_and_data
    obs, exp = D.upper_limit(data, model)
    host_obs, host_exp = hepprob.infer.upper_limit(data, model)
    assert float(obs) == pytest.approx(float(host_obs), rel=1e-6)
    np.testing.assert_allclose(exp, np.ravel(host_exp), rtol=1e-6)

    grad = jax.grad(lambda d: D.upper_limit(d, model)[0])(jnp.asarray(data))

    def forward(d):
        return float(D.upper_limit(d, model)[0])

    fd = _central(forward, data, 1e-3)
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-8)


def test_hypotest_gradient_in_template_yields(model_and_data):
    """d CLs / d (signal yields) through ``arrays=`` vs rebuilt workspaces."""
    model, data = model_and_data
    arrays = model.arrays
    names = model.config.samples
    sig = names.index("signal")

    def cls_of(nominal):
        a = dict(arrays, nominal=nominal)
        return D.hypotest(1.0, data, model, arrays=a).cls

    grad = jax.grad(cls_of)(jnp.asarray(arrays["nominal"]))
    nominal = np.asarray(arrays["nominal"], dtype=float)
    assert nominal.shape[0] == len(names)

    def rebuilt(signal):
        ws = Workspace(_spec(signal=tuple(signal)))
        m = ws.model()
        return float(D.hypotest(1.0, data, m).cls)

    signal = np.array([5.0, 3.0])
    fd = _central(rebuilt, signal, 1e-3)
    np.testing.assert_allclose(np.ravel(grad[sig])[: signal.size], fd, rtol=1e-5)
