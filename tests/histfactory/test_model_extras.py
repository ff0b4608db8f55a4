"""Beyond JSON: correlated NPs, yield functions, EFT morphing, Tikhonov (vs pyhf/scipy)."""

from __future__ import annotations

import copy

import jax
import jax.numpy as jnp
import numpy as np
import pyhf
import pytest
from scipy import stats

from hepprob.errors import ModelError, ParameterError
from hepprob.histfactory import HistFactory, Model
from hepprob.histfactory.modifiers.custom import YieldFunction
from hepprob.histfactory.modifiers.eft import EFTMorphing, eft_terms_from_basis
from hepprob.histfactory.modifiers.regularisation import Tikhonov

SPEC = {
    "channels": [{"name": "sr", "samples": [
        {"name": "sig", "data": [3.0, 5.0, 4.0, 2.0], "modifiers": [
            {"name": "mu", "type": "normfactor", "data": None},
            {"name": "a1", "type": "normsys", "data": {"hi": 1.1, "lo": 0.92}}]},
        {"name": "bkg", "data": [30.0, 20.0, 12.0, 6.0], "modifiers": [
            {"name": "a2", "type": "normsys", "data": {"hi": 1.05, "lo": 0.9}},
            {"name": "a3", "type": "histosys", "data": {
                "hi_data": [33.0, 21.0, 12.5, 6.1], "lo_data": [28.0, 19.0, 11.0, 5.5]}},
            {"name": "sf", "type": "shapefactor", "data": None}]}]}],
}  # fmt: skip
# pyhf order: a3 (histosys), mu, a1, a2 (normsys), sf[0..3]
P = np.array([0.4, 1.3, -0.7, 0.9, 1.1, 0.9, 1.05, 0.95])
DATA_MAIN = np.array([35.0, 27.0, 15.0, 9.0])


def test_correlated_constraint_is_scipy_multivariate_normal():
    corr = np.array([[1.0, 0.6], [0.6, 1.0]])
    ours = Model(SPEC, correlations={("a1", "a2"): corr})
    ref = pyhf.Model(SPEC)
    aux = np.array([0.2, -0.3, 0.1])  # a3, a1, a2
    data = np.concatenate([DATA_MAIN, aux])
    want = (
        ref.main_model.logpdf(DATA_MAIN, P)
        + stats.norm.logpdf(aux[0], P[0], 1.0)
        + stats.multivariate_normal.logpdf(aux[1:], P[[2, 3]], corr)
    )
    np.testing.assert_allclose(ours.logpdf(P, data)[0], want, rtol=1e-10)
    toys = np.asarray(HistFactory(ours, P).sample(jax.random.key(3), (40000,)))[:, 4:]
    np.testing.assert_allclose(
        np.corrcoef(toys[:, 1], toys[:, 2])[0, 1], 0.6, atol=0.02
    )
    assert abs(np.corrcoef(toys[:, 0], toys[:, 1])[0, 1]) < 0.02
    with pytest.raises(ModelError, match="positive-definite"):
        Model(SPEC, correlations={("a1", "a2"): [[1.0, 1.2], [1.2, 1.0]]})
    with pytest.raises(ModelError, match="'mu' must be a scalar Gaussian-constrained"):
        Model(SPEC, correlations={("a1", "mu"): corr})
    with pytest.raises(ModelError, match="not supported"):
        ours.numpyro_model(constraints="prior")


def test_yield_function_and_extra_parameter():
    ref = pyhf.Model(SPEC)
    square = YieldFunction("sr", "sig", lambda p: p["mu"])  # mu * mu in total
    ours = Model(SPEC, yield_functions=[square])
    q = P.copy()
    q[1] = P[1] ** 2
    np.testing.assert_allclose(ours.expected_data(P), ref.expected_data(q), rtol=1e-12)
    slope = YieldFunction("sr", "bkg", lambda p: 1.0 + p["k"] * jnp.arange(4.0))
    ours = Model(
        SPEC,
        extra_parameters=[{"name": "k", "inits": [0.0], "bounds": [[-0.2, 0.2]]}],
        yield_functions=[slope],
    )
    assert ours.config.par_names == [*ref.config.par_names, "k"]
    p = np.append(P, 0.05)
    by_sample = np.asarray(ref.main_model.expected_data(P, return_by_sample=True))
    want = by_sample[0] * (1 + 0.05 * np.arange(4)) + by_sample[1]  # samples: bkg, sig
    np.testing.assert_allclose(ours.expected_actualdata(p), want, rtol=1e-12)
    g = jax.grad(
        lambda x: ours.logpdf_fn()(x, jnp.concatenate([DATA_MAIN, jnp.zeros(3)]))
    )
    assert np.all(np.isfinite(g(jnp.asarray(p))))
    with pytest.raises(ModelError, match=r"must map .* to a scalar or 4 values"):
        Model(SPEC, yield_functions=[YieldFunction("sr", "sig", lambda p: jnp.ones(3))])
    with pytest.raises(ModelError, match="no sample 'x' in channel 'sr'"):
        Model(SPEC, yield_functions=[YieldFunction("sr", "x", lambda p: 1.0)])


def _quadratic(c, sm, lin, quad):
    out = sm + c @ lin
    for i in range(len(c)):
        for j in range(i, len(c)):
            out = out + c[i] * c[j] * quad[i, j]
    return out


def test_eft_morphing_from_basis_points_matches_pyhf_on_morphed_templates():
    rng = np.random.default_rng(0)
    sm = np.array([3.0, 5.0, 4.0, 2.0])
    lin = rng.uniform(-1, 1, (2, 4))
    quad = np.zeros((2, 2, 4))
    for i, j in ((0, 0), (0, 1), (1, 1)):
        quad[i, j] = rng.uniform(0.0, 1.0, 4)
    points = np.array(
        [[0, 0], [1, 0], [-1, 0], [0, 1], [0, -1], [1, 1], [2, -1]], float
    )
    templates = np.array([_quadratic(c, sm, lin, quad) for c in points])
    sm_f, lin_f, quad_f = eft_terms_from_basis(points, templates)
    np.testing.assert_allclose(sm_f, sm, atol=1e-12)
    np.testing.assert_allclose(lin_f, lin, atol=1e-12)
    np.testing.assert_allclose(quad_f, quad, atol=1e-12)
    ours = Model(
        SPEC,
        extra_parameters=[{"name": "cW", "inits": [0.0], "bounds": [[-3, 3]]},
                          {"name": "cHq", "inits": [0.0], "bounds": [[-3, 3]]}],
        eft=[EFTMorphing("sr", "sig", ("cW", "cHq"), lin_f, quad_f)],
    )  # fmt: skip
    c = np.array([0.7, -1.2])
    morphed = copy.deepcopy(SPEC)
    morphed["channels"][0]["samples"][0]["data"] = _quadratic(c, sm, lin, quad).tolist()
    ref = pyhf.Model(morphed)
    np.testing.assert_allclose(
        ours.expected_data(np.concatenate([P, c])), ref.expected_data(P), rtol=1e-12
    )
    with pytest.raises(ModelError, match="need >= 6 basis points"):
        eft_terms_from_basis(points[:4], templates[:4])
    with pytest.raises(ModelError, match=r"unknown: \['cW', 'cHq'\]"):
        Model(SPEC, eft=[EFTMorphing("sr", "sig", ("cW", "cHq"), lin_f, quad_f)])


def test_tikhonov_penalty_matches_numpy_second_differences():
    names = ["sf[0]", "sf[1]", "sf[2]", "sf[3]"]
    ours = Model(SPEC, regularisation=Tikhonov(names, tau=2.5, order=2))
    ref = pyhf.Model(SPEC)
    data = np.concatenate([DATA_MAIN, [0.1, -0.2, 0.3]])
    penalty = 2.5 * np.sum(np.diff(P[4:], n=2) ** 2)
    np.testing.assert_allclose(
        ours.logpdf(P, data), ref.logpdf(P, data) - penalty, rtol=1e-12
    )
    first = Model(SPEC, regularisation=[Tikhonov(names, tau=1.0, order=1)])
    np.testing.assert_allclose(
        first.logpdf(P, data),
        ref.logpdf(P, data) - np.sum(np.diff(P[4:]) ** 2),
        rtol=1e-12,
    )
    with pytest.raises(
        ParameterError, match=r"Tikhonov: unknown parameters \['sf\[9\]'\]"
    ):
        Model(SPEC, regularisation=Tikhonov(["sf[0]", "sf[1]", "sf[9]"], tau=1.0))
    with pytest.raises(ModelError, match="order must be 0, 1 or 2"):
        Model(SPEC, regularisation=Tikhonov(names[:2], tau=1.0, order=2))
