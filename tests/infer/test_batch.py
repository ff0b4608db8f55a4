"""The one fit driver: both fit paths agree, saddles are left, failures are named.

References: iminuit (Minuit2) on pyhf's own NLL, pyhf's ``logpdf`` and
numerical Hessians of it, closed-form minima, and numpy's matrix inverse.
"""

from __future__ import annotations

import gc
import warnings
import weakref

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as nd
import pyhf
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from iminuit import Minuit

import hepprob
from hepprob import _program_cache
from hepprob.errors import ConvergenceWarning
from hepprob.histfactory import Workspace
from hepprob.infer import _batch, mle
from hepprob.infer.minimize import FitStatus, minimize
from hepprob.infer.toys import simulate

# --- pyhf's negative-yield clipping workspace (pyhf tests/test_pdf.py) ---------------


def clipping_spec():
    """Two identical histosys nuisances: the symmetric line holds a saddle."""

    def sample(data, hi, lo):
        h = {"hi_data": hi, "lo_data": lo}
        return {
            "name": "signal",
            "data": data,
            "modifiers": [
                {"name": "mu_sig", "type": "normfactor", "data": None},
                {"name": "np_1", "type": "histosys", "data": h},
                {"name": "np_2", "type": "histosys", "data": h},
            ],
        }

    return {
        "channels": [
            {"name": "ch1", "samples": [sample([100.0, 100.0], [125, 75], [175, 10])]},
            {"name": "ch2", "samples": [sample([15000.0], [15500], [1200])]},
        ],
        "observations": [
            {"name": "ch1", "data": [100.0, 100.0]},
            {"name": "ch2", "data": [10.0]},
        ],
        "measurements": [{"name": "m", "config": {"poi": "mu_sig", "parameters": []}}],
        "version": "1.0.0",
    }


@pytest.fixture(scope="module")
def clipping():
    spec = clipping_spec()
    ws = Workspace(spec)
    model = ws.model(clip_sample_data=0.0)
    data = np.asarray(ws.data(model), dtype=float)
    pyhf.set_backend("numpy")
    pmodel = pyhf.Workspace(spec).model(clip_sample_data=0.0)
    return model, data, pmodel


def _pyhf_twice_nll(pmodel, data):
    pyhf.set_backend("numpy")
    return lambda p: float(-2.0 * pmodel.logpdf(np.asarray(p, dtype=float), data)[0])


def _minuit_min(cost, init, bounds, fixed=None):
    m = Minuit(cost, np.asarray(init, dtype=float))
    m.errordef = Minuit.LEAST_SQUARES  # cost = twice the NLL
    m.limits = [tuple(b) for b in bounds]
    m.strategy = 2
    m.tol = 1e-7
    if fixed is not None:
        for i, f in enumerate(fixed):
            m.fixed[i] = bool(f)
    m.migrad()
    assert m.valid
    return np.asarray(m.values), m.fval


def test_saddle_start_both_paths_reach_minuits_minimum(clipping):
    model, data, pmodel = clipping
    cost = _pyhf_twice_nll(pmodel, data)
    bounds = pmodel.config.suggested_bounds()
    # the true minimum, by Minuit on pyhf's NLL from an asymmetric start
    ref_x, ref_f = _minuit_min(cost, [0.3, -0.2, 1.0], bounds)
    assert abs(ref_x[0] - ref_x[1]) > 0.1  # the minimum is off the symmetric line
    # both hepprob paths start from the symmetric point (0, 0, 1)
    x, f = mle.fit(data, model, return_fitted_val=True)
    res = hepprob.fit(model.numpyro_model(), data)
    assert res.converged
    assert res.status == "converged"
    assert float(f) <= ref_f + 1e-6
    np.testing.assert_allclose(float(f), cost(x), rtol=1e-12)  # pyhf agrees on it
    np.testing.assert_allclose(np.sort(x[:2]), np.sort(ref_x[:2]), atol=5e-3)
    np.testing.assert_allclose(x[2], ref_x[2], atol=1e-4)
    # the generic path gives the same fit (parameter order is the model's)
    np.testing.assert_allclose(res.x, np.asarray(x), atol=1e-7)
    np.testing.assert_allclose(2.0 * res.nll, float(f), rtol=1e-12)


def test_symmetric_stationary_point_is_a_saddle_of_pyhfs_nll(clipping):
    """Without escapes Newton stops on the symmetric line, and says so; pyhf's
    own NLL (numerical Hessian) has negative curvature there."""
    model, data, pmodel = clipping
    eng = mle.engine(model)
    init = np.asarray(model.config.suggested_init(), dtype=float)
    bounds = np.asarray(model.config.suggested_bounds(), dtype=float)
    res = jax.jit(
        lambda x0: minimize(
            eng.objective, x0, bounds[:, 0], bounds[:, 1], args=(data,), escapes=0
        )
    )(jnp.asarray(init))
    assert FitStatus.from_code(res.status) is FitStatus.SADDLE
    assert not bool(res.converged)
    x = np.asarray(res.x)
    assert abs(x[0] - x[1]) < 1e-6
    cost = _pyhf_twice_nll(pmodel, data)
    h = 1e-4
    d = np.array([1.0, -1.0, 0.0]) / np.sqrt(2)
    curvature = (cost(x + h * d) - 2 * cost(x) + cost(x - h * d)) / h**2
    assert curvature < 0
    # the saddle lies above the minimum (the 0.036 in twice the NLL)
    _, f_min = mle.fit(data, model, return_fitted_val=True)
    assert cost(x) - float(f_min) > 0.01


def test_minuit_from_the_saddle_is_true_or_flagged(clipping):
    """method='minuit' started on the saddle: converged only at the minimum."""
    model, data, pmodel = clipping
    eng = mle.engine(model)
    bounds = np.asarray(model.config.suggested_bounds(), dtype=float)
    saddle = minimize(
        eng.objective, jnp.asarray(model.config.suggested_init()),
        bounds[:, 0], bounds[:, 1], args=(data,), escapes=0,
    ).x  # fmt: skip
    init = dict(zip(model.config.par_names, np.asarray(saddle).tolist(), strict=True))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        res = hepprob.fit(model.numpyro_model(), data, init=init, method="minuit")
    _, ref_f = _minuit_min(_pyhf_twice_nll(pmodel, data), [0.3, -0.2, 1.0], bounds)
    flagged = [w for w in caught if w.category is ConvergenceWarning]
    if res.converged:  # Minuit left the saddle by itself: then it is the minimum
        assert 2.0 * res.nll <= ref_f + 1e-5
        assert not flagged
    else:
        assert res.status == "saddle"
        assert any("saddle" in str(w.message) for w in flagged)


# --- flat directions: converged=False, a warning naming them, status "degenerate" ----


def scale_product_model(x):
    """Normal(mu, a*b): only the product a*b is determined (closed form: std)."""
    mu = hepprob.param("mu", 0.0)
    a = hepprob.param("a", 1.0, 0.1, 10.0)
    b = hepprob.param("b", 2.0, 0.1, 10.0)
    numpyro.sample("x", nd.Normal(mu, a * b), obs=x)


@pytest.mark.parametrize("method", ["auto", "jax", "minuit"])
def test_scale_product_is_degenerate_whichever_minimiser(method):
    x = np.random.default_rng(7).normal(1.0, 1.5, size=40)
    with pytest.warns(
        ConvergenceWarning,
        match=r"fit did not converge \(degenerate\).*\['[ab]', '[ab]'\]",
    ):
        res = hepprob.fit(scale_product_model, x, method=method)
    assert not res.converged
    assert res.status == "degenerate"
    assert res.status.message.startswith("a flat or degenerate direction")
    # the determined combinations are right (closed form of the normal MLE;
    # Minuit stops at its own, looser EDM tolerance)
    rtol = 2e-3 if method == "minuit" else 1e-5
    np.testing.assert_allclose(res.values["mu"], x.mean(), rtol=rtol)
    np.testing.assert_allclose(res.values["a"] * res.values["b"], x.std(), rtol=rtol)
    # no zero error for the undetermined direction
    assert np.isnan(res.errors["a"])
    assert np.isnan(res.errors["b"])
    assert res.errors["mu"] > 0


def two_normfactor_spec():
    """A signal scaled by two normfactors (mu and k): only mu*k is determined."""
    return {
        "channels": [
            {
                "name": "sr",
                "samples": [
                    {
                        "name": "sig",
                        "data": [5.0, 8.0],
                        "modifiers": [
                            {"name": "mu", "type": "normfactor", "data": None},
                            {"name": "k", "type": "normfactor", "data": None},
                        ],
                    },
                    {
                        "name": "bkg",
                        "data": [20.0, 30.0],
                        "modifiers": [
                            {
                                "name": "bn",
                                "type": "normsys",
                                "data": {"hi": 1.1, "lo": 0.9},
                            }
                        ],
                    },
                ],
            }
        ],
        "observations": [{"name": "sr", "data": [28.0, 41.0]}],
        "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
        "version": "1.0.0",
    }


def test_two_normfactors_are_flagged_on_both_paths():
    ws = Workspace(two_normfactor_spec())
    model = ws.model()
    data = np.asarray(ws.data(model), dtype=float)
    names = model.config.par_names
    with pytest.warns(ConvergenceWarning) as caught:
        rows = mle.fit(data, model, return_uncertainties=True)
    text = " ".join(str(w.message) for w in caught)
    assert "degenerate" in text
    assert "'mu'" in text
    assert "'k'" in text
    err = dict(zip(names, np.asarray(rows)[:, 1], strict=True))
    assert np.isnan(err["mu"])
    assert np.isnan(err["k"])
    assert err["bn"] > 0
    # the minimum itself: pyhf's NLL, with k fixed at the value found, is minimal
    pyhf.set_backend("numpy")
    pmodel = pyhf.Workspace(two_normfactor_spec()).model()
    x = np.asarray(rows)[:, 0]
    fixed = [n == "k" for n in pmodel.config.par_names]
    init = pmodel.config.suggested_init()
    init[pmodel.config.par_names.index("k")] = x[names.index("k")]
    _, ref_f = _minuit_min(
        _pyhf_twice_nll(pmodel, data), init, pmodel.config.suggested_bounds(), fixed
    )
    assert _pyhf_twice_nll(pmodel, data)(x) <= ref_f + 1e-6
    with pytest.warns(ConvergenceWarning, match="degenerate"):
        res = hepprob.fit(model.numpyro_model(), data)
    assert res.status == "degenerate"
    assert not res.converged
    with pytest.warns(ConvergenceWarning, match=r"hypotest: .*did not converge"):
        hepprob.infer.hypotest(1.0, data, model)


# --- random fits whose minimum is known (hypothesis) --------------------------------


def disguised_quadratic(x, a, c):
    """0.5 |A (g(x) - c)|^2 with g(x) = x + 0.3 x^3 (monotone): minimum where g = c."""
    r = a @ (x + 0.3 * x**3 - c)
    return 0.5 * jnp.sum(r**2)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    rank=st.sampled_from([3, 3, 2, 1]),
)
def test_disguised_quadratics_report_convergence_truthfully(seed, rank):
    rng = np.random.default_rng(seed)
    n = 3
    a = rng.normal(size=(rank, n))
    a = np.vstack([a, np.zeros((n - rank, n))])  # square, of rank `rank`
    if rank == n:
        a += 0.5 * np.eye(n)  # keep it well conditioned
    c = rng.uniform(-2.0, 2.0, n)
    x0 = rng.uniform(-1.0, 1.0, n)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        res = hepprob.fit(
            disguised_quadratic, a, c, x0=x0, lower=-5.0, upper=5.0, method="jax"
        )
    flagged = [w for w in caught if w.category is ConvergenceWarning]
    g = res.x + 0.3 * res.x**3
    full_rank = np.linalg.matrix_rank(a) == n
    assert res.nll < 1e-12  # the minimum value 0 is reached either way
    if full_rank:
        assert res.converged, res.message
        assert res.status == "converged"
        np.testing.assert_allclose(g, c, atol=1e-6)
        assert not flagged
    else:
        assert not res.converged
        assert res.status == "degenerate"
        assert flagged


# --- the covariance and the padding rule ---------------------------------------------


def test_covariance_matches_numpy_inverse_and_names_a_null_direction():
    rng = np.random.default_rng(3)
    m = rng.normal(size=(4, 4))
    h = m @ m.T + 4 * np.eye(4)
    fixed = np.array([False, True, False, False])
    cov = _batch.covariance(h, fixed)
    free = ~fixed
    ref = np.zeros((4, 4))
    ref[np.ix_(free, free)] = np.linalg.inv(h[np.ix_(free, free)])
    assert cov.positive_definite
    assert cov.involved == []
    np.testing.assert_allclose(cov.matrix, ref, rtol=1e-10, atol=1e-14)
    # a singular pair: H = v v^T on (0, 2) plus a regular entry
    v = np.array([1.0, 0.0, 2.0, 0.0])
    sing = np.outer(v, v) + np.diag([0.0, 1.0, 0.0, 3.0])
    cov = _batch.covariance(sing, np.zeros(4, bool))
    assert not cov.positive_definite
    assert sorted(cov.involved) == [0, 2]
    err = cov.errors()
    assert np.isnan(err[0])
    assert np.isnan(err[2])
    np.testing.assert_allclose(err[[1, 3]], [1.0, 1 / np.sqrt(3)], rtol=1e-10)
    assert "['a', 'b']" in cov.describe(["a", "x", "b", "y"])  # largest weight first


@given(k=st.integers(1, 300), cap=st.sampled_from([1, 4, 16, 64]))
def test_padding_rule_covers_every_row_once_with_few_sizes(k, cap):
    seen, sizes = [], set()
    for start, size, bucket in _batch.chunks(k, cap):
        assert size <= bucket <= cap
        assert (bucket == 1) == (size <= 2)  # one or two rows run one by one
        assert bucket & (bucket - 1) == 0 or bucket == cap  # powers of two
        sizes.add(bucket)
        seen.extend(range(start, start + size))
    assert seen == list(range(k))
    assert len(sizes) <= 3  # a chunk size, the last chunk's and one row


# --- toys keep their status ----------------------------------------------------------


def zero_count_model(n):
    """b is constrained only through n * b: a toy with n = 0 leaves it free."""
    lam = hepprob.param("lam", 1.0, 1e-3, 20.0)
    b = hepprob.param("b", 0.5, -5.0, 5.0)
    n = numpyro.sample("n", nd.Poisson(lam), obs=n)
    numpyro.factor("link", -0.5 * (n * b - 1.0) ** 2)


def test_toys_flag_failed_fits_with_their_status():
    key = jax.random.PRNGKey(2)
    truth = {"lam": 0.7, "b": 1.0}
    res = hepprob.toys(zero_count_model, truth, 24, key, 1.0)
    drawn = np.asarray(simulate(zero_count_model, truth, 24, key, 1.0)["n"])
    empty = drawn == 0
    assert 0 < empty.sum() < 24  # both kinds occur
    np.testing.assert_array_equal(res.status[empty], "degenerate")
    np.testing.assert_array_equal(res.status[~empty], "converged")
    np.testing.assert_array_equal(res.converged, ~empty)
    # converged toys: closed form lam = n, b = 1 / n
    np.testing.assert_allclose(res.values[~empty, 0], drawn[~empty], rtol=1e-6)
    np.testing.assert_allclose(res.values[~empty, 1], 1 / drawn[~empty], rtol=1e-6)
    assert np.all(np.isnan(res.errors[empty, 1]))
    assert res.to_dict()["status"] == res.status.tolist()


# --- one cache, weakly keyed ---------------------------------------------------------


def test_programs_live_as_long_as_their_model():
    def make():
        def model(x):
            mu = hepprob.param("mu", 0.0)
            numpyro.sample("x", nd.Normal(mu, 1.0), obs=x)

        return model

    model = make()
    res = hepprob.fit(model, np.array([0.5, 1.5]))
    np.testing.assert_allclose(res.values["mu"], 1.0, rtol=1e-10)
    assert _program_cache.programs_of(model)
    alive = weakref.ref(model)
    del model, res
    gc.collect()
    assert alive() is None


def test_python_floats_are_data_not_static():
    """One rule for fits and toys: a new float value reuses the program."""

    def model(n, b):
        mu = hepprob.param("mu", 1.0, 0.0, 50.0)
        numpyro.sample("n", nd.Poisson(mu + b), obs=n)

    sizes = []
    for n, b in ((7.0, 2.0), (11.0, 3.5)):
        res = hepprob.fit(model, n, b)
        np.testing.assert_allclose(res.values["mu"], n - b, rtol=1e-8)  # closed form
        objectives = [
            v
            for k, v in _program_cache.programs_of(model).items()
            if k[0] == "objective"
        ]
        assert len(objectives) == 1
        sizes.append(_batch.program_of(objectives[0])._cache_size())
    assert sizes[0] == sizes[1] == 1
