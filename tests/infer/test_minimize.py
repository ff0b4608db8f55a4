"""The pure-JAX minimiser against scipy.optimize and closed-form minima."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from scipy import optimize, special, stats

from hepprob.infer.minimize import MinimizeResult, minimize

INF = np.inf


def rosenbrock(x):
    return (1.0 - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2


def gauss_nll(x, data):
    """Normal NLL in (mean, sigma); minimum at the sample mean and the ML std."""
    mu, sigma = x[0], x[1]
    return jnp.sum(0.5 * ((data - mu) / sigma) ** 2 + jnp.log(sigma))


def test_rosenbrock_matches_scipy():
    res = jax.jit(lambda x0: minimize(rosenbrock, x0, [-5.0, -5.0], [5.0, 5.0]))(
        jnp.array([-1.2, 1.0])
    )
    ref = optimize.minimize(
        lambda x: float(rosenbrock(x)),
        [-1.2, 1.0],
        method="Nelder-Mead",
        options={"xatol": 1e-12, "fatol": 1e-15, "maxiter": 20000},
    )
    assert isinstance(res, MinimizeResult)
    assert bool(res.converged)
    assert int(res.status) == 0
    np.testing.assert_allclose(res.x, ref.x, atol=1e-6)
    assert float(res.edm) < 1e-10


def test_box_constraints_match_lbfgsb():
    # quadratic bowl with a minimum outside the box: the answer lies on two faces
    centre = np.array([3.0, -2.0, 0.5])
    a = np.array([[2.0, 0.3, 0.0], [0.3, 1.0, 0.2], [0.0, 0.2, 1.5]])

    def f(x):
        d = x - centre
        return 0.5 * d @ (jnp.asarray(a) @ d)

    lower, upper = np.array([-1.0, 0.0, -INF]), np.array([1.0, INF, INF])
    res = minimize(f, np.zeros(3), lower, upper)
    ref = optimize.minimize(
        lambda x: 0.5 * (x - centre) @ a @ (x - centre),
        np.zeros(3),
        jac=lambda x: a @ (x - centre),
        method="L-BFGS-B",
        bounds=list(zip(lower, upper, strict=True)),
        options={"ftol": 1e-15, "gtol": 1e-12},
    )
    assert bool(res.converged)
    np.testing.assert_allclose(res.x, ref.x, atol=1e-7)
    assert float(res.x[0]) == 1.0
    assert float(res.x[1]) == 0.0


def test_poisson_signal_strength_at_zero_bound():
    # n < b in both bins: the unbounded estimate is negative, the fit sits at 0
    n, b, s = np.array([3.0, 5.0]), np.array([5.0, 8.0]), np.array([2.0, 3.0])

    def nll(x):
        lam = x[0] * s + b
        return jnp.sum(lam - n * jnp.log(lam))

    res = minimize(nll, jnp.array([1.0]), jnp.array([0.0]), jnp.array([10.0]))
    assert bool(res.converged)
    assert float(res.x[0]) == 0.0
    # gradient at the bound, by hand: sum(s - n s / b)
    np.testing.assert_allclose(res.grad[0], np.sum(s - n * s / b), rtol=1e-12)
    assert float(res.edm) == 0.0  # the only parameter is held by its bound
    # NLL at mu = 0 is -log Poisson(n | b) without the log n! constants
    ref = -stats.poisson.logpmf(n, b).sum() - special.gammaln(n + 1).sum()
    np.testing.assert_allclose(float(res.fun), ref, rtol=1e-12)


def test_fixed_mask_and_conditional_minimum():
    res = minimize(
        rosenbrock,
        jnp.array([0.5, 0.0]),
        [-INF, -INF],
        [INF, INF],
        fixed=jnp.array([True, False]),
    )
    # with x0 = 0.5 fixed, the conditional minimum is x1 = 0.25
    np.testing.assert_allclose(res.x, [0.5, 0.25], atol=1e-10)
    assert float(res.grad[0]) == 0.0
    assert bool(res.converged)


def test_flat_direction_is_finite():
    res = minimize(
        lambda x: (x[0] + x[1] - 1.0) ** 2, jnp.zeros(2), [-INF, -INF], [INF, INF]
    )
    assert np.all(np.isfinite(res.x))
    assert np.isfinite(float(res.edm))
    np.testing.assert_allclose(float(res.x[0] + res.x[1]), 1.0, atol=1e-8)


def test_vmap_over_datasets_equals_separate_fits_and_closed_form():
    rng = np.random.default_rng(3)
    data = rng.normal(1.0, 2.0, size=(4, 50))
    lower, upper = jnp.array([-INF, 1e-3]), jnp.array([INF, INF])

    def one(d):
        return minimize(gauss_nll, jnp.array([0.0, 1.0]), lower, upper, args=(d,))

    batched = jax.jit(jax.vmap(one))(jnp.asarray(data))
    single = jax.jit(one)
    assert batched.x.shape == (4, 2)
    assert batched.converged.shape == (4,)
    for k in range(4):
        alone = single(jnp.asarray(data[k]))
        np.testing.assert_allclose(batched.x[k], alone.x, rtol=1e-8)
        np.testing.assert_allclose(batched.x[k, 0], data[k].mean(), rtol=1e-8)
        np.testing.assert_allclose(batched.x[k, 1], data[k].std(), rtol=1e-8)
    assert bool(jnp.all(batched.converged))


def test_vmap_over_fixed_start_is_a_profile_scan():
    rng = np.random.default_rng(4)
    data = jnp.asarray(rng.normal(0.0, 1.0, size=40))
    mus = jnp.linspace(-0.5, 0.5, 5)

    def at(mu):
        x0 = jnp.array([mu, 1.0])
        return minimize(
            gauss_nll,
            x0,
            [-INF, 1e-3],
            [INF, INF],
            fixed=jnp.array([True, False]),
            args=(data,),
        )

    res = jax.jit(jax.vmap(at))(mus)
    # profiled sigma(mu)^2 = mean((x - mu)^2)
    ref = np.sqrt([np.mean((np.asarray(data) - m) ** 2) for m in np.asarray(mus)])
    np.testing.assert_allclose(res.x[:, 1], ref, rtol=1e-9)
    np.testing.assert_allclose(res.x[:, 0], mus)


def test_non_finite_objective_is_reported():
    res = minimize(lambda x: jnp.log(x[0] - 2.0), jnp.array([1.0]), [-INF], [INF])
    assert not bool(res.converged)
    assert int(res.status) == 3


def test_iteration_limit_is_reported():
    res = minimize(
        rosenbrock, jnp.array([-1.2, 1.0]), [-5.0, -5.0], [5.0, 5.0], max_iter=3
    )
    assert not bool(res.converged)
    assert int(res.status) == 1
    assert int(res.n_iter) == 3


def test_many_parameters_match_lbfgsb():
    # a HistFactory-like binned fit: signal strength + one constrained nuisance
    # per bin (Barlow-Beeston-lite), 61 parameters, against scipy's L-BFGS-B
    # on the same NLL with a hand-written numpy gradient
    rng = np.random.default_rng(12)
    nb = 60
    s = rng.uniform(1.0, 5.0, nb)
    b = rng.uniform(20.0, 50.0, nb)
    tau = b / rng.uniform(1.0, 3.0, nb) ** 2  # auxiliary Poisson "sample size"
    n = rng.poisson(1.3 * s + b).astype(float)

    def nll(x):
        mu, gamma = x[0], x[1:]
        lam = mu * s + gamma * b
        return jnp.sum(lam - n * jnp.log(lam)) + jnp.sum(tau * (gamma - jnp.log(gamma)))

    def np_nll(x):
        mu, gamma = x[0], x[1:]
        lam = mu * s + gamma * b
        return np.sum(lam - n * np.log(lam)) + np.sum(tau * (gamma - np.log(gamma)))

    def np_grad(x):
        mu, gamma = x[0], x[1:]
        r = 1.0 - n / (mu * s + gamma * b)
        return np.concatenate([[np.sum(r * s)], r * b + tau * (1.0 - 1.0 / gamma)])

    x0 = np.ones(nb + 1)
    lower = np.concatenate([[0.0], np.full(nb, 1e-3)])
    upper = np.full(nb + 1, 10.0)
    res = jax.jit(lambda x: minimize(nll, x, lower, upper))(jnp.asarray(x0))
    ref = optimize.minimize(
        np_nll,
        x0,
        jac=np_grad,
        method="L-BFGS-B",
        bounds=list(zip(lower, upper, strict=True)),
        options={"ftol": 1e-16, "gtol": 1e-10, "maxiter": 10_000},
    )
    assert bool(res.converged)
    assert float(res.fun) <= np_nll(ref.x) + 1e-9
    np.testing.assert_allclose(res.x, ref.x, atol=2e-5)
    assert int(res.n_iter) < 30
