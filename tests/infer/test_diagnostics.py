"""Pulls, impacts, goodness of fit and post-fit yields against pyhf (Minuit) and scipy."""

from __future__ import annotations

import copy

import numpy as np
import pyhf
import pytest
import scipy.stats as st

from hepprob.histfactory.workspace import Workspace
from hepprob.infer import diagnostics

SPEC = {
    "channels": [
        {
            "name": "sr",
            "samples": [
                {
                    "name": "signal",
                    "data": [5.0, 8.0, 3.0],
                    "modifiers": [{"name": "mu", "type": "normfactor", "data": None}],
                },
                {
                    "name": "bkg",
                    "data": [50.0, 40.0, 20.0],
                    "modifiers": [
                        {
                            "name": "norm_b",
                            "type": "normsys",
                            "data": {"hi": 1.1, "lo": 0.92},
                        },
                        {
                            "name": "shape_b",
                            "type": "histosys",
                            "data": {"hi_data": [52, 43, 19], "lo_data": [48, 38, 21]},
                        },
                        {
                            "name": "staterror_sr",
                            "type": "staterror",
                            "data": [3.0, 2.5, 2.0],
                        },
                    ],
                },
            ],
        },
        {
            "name": "cr",
            "samples": [
                {
                    "name": "bkg",
                    "data": [100.0, 80.0],
                    "modifiers": [
                        {
                            "name": "norm_b",
                            "type": "normsys",
                            "data": {"hi": 1.1, "lo": 0.92},
                        },
                        {"name": "unc_cr", "type": "shapesys", "data": [10.0, 12.0]},
                    ],
                }
            ],
        },
    ],
    "observations": [
        {"name": "sr", "data": [60, 52, 21]},
        {"name": "cr", "data": [108, 77]},
    ],
    "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
    "version": "1.0.0",
}


def _fd_hessian(fun, x, step=1e-4):
    """Central finite-difference Hessian (independent of JAX autodiff)."""
    n = x.size
    hess = np.empty((n, n))
    eye = np.eye(n) * step
    for i in range(n):
        for j in range(i, n):
            value = (
                fun(x + eye[i] + eye[j])
                - fun(x + eye[i] - eye[j])
                - fun(x - eye[i] + eye[j])
                + fun(x - eye[i] - eye[j])
            ) / (4 * step * step)
            hess[i, j] = hess[j, i] = value
    return hess


@pytest.fixture(scope="module")
def hepprob_model():
    ws = Workspace(copy.deepcopy(SPEC))
    model = ws.model()
    return model, ws.data(model)


@pytest.fixture(scope="module")
def reference():
    """pyhf (numpy backend, Minuit) best fit and covariance on the same workspace."""
    pyhf.set_backend("numpy", pyhf.optimize.minuit_optimizer(tolerance=1e-7))
    try:
        ws = pyhf.Workspace(copy.deepcopy(SPEC))
        model = ws.model()
        data = ws.data(model)
        res = pyhf.infer.mle.fit(data, model, return_uncertainties=True)
        fixed_fits = {}
        for i, name in enumerate(model.config.par_names):
            if name == "mu":
                continue
            for sign in (1, -1):
                init = np.array(model.config.suggested_init(), dtype=float)
                init[i] = res[i, 0] + sign * res[i, 1]
                fixed = list(model.config.suggested_fixed())
                fixed[i] = True
                bounds = model.config.suggested_bounds()
                init[i] = np.clip(init[i], *bounds[i])
                fitted = pyhf.infer.mle.fit(
                    data, model, init_pars=init.tolist(), fixed_params=fixed
                )
                fixed_fits[(name, sign)] = (
                    fitted[model.config.poi_index] - res[model.config.poi_index, 0]
                )
        cov = np.linalg.inv(_fd_hessian(lambda p: -model.logpdf(p, data)[0], res[:, 0]))
        yield {
            "model": model,
            "data": np.asarray(data),
            "bestfit": res[:, 0],
            "errors": np.sqrt(np.diag(cov)),
            "cov": cov,
            "postfit_impacts": fixed_fits,
        }
    finally:
        pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer())


def test_pulls_match_pyhf(hepprob_model, reference):
    model, data = hepprob_model
    got = diagnostics.pulls(data, model)
    names = list(reference["model"].config.par_names)
    widths = {"norm_b": 1.0, "shape_b": 1.0}
    # staterror: sigma = sqrt(sum of squared uncertainties) / nominal per bin
    for i, (unc, nom) in enumerate(
        zip([3.0, 2.5, 2.0], [50.0, 40.0, 20.0], strict=True)
    ):
        widths[f"staterror_sr[{i}]"] = unc / nom
    # shapesys: Poisson constraint with tau = (nominal / unc)^2, width 1/sqrt(tau)
    for i, (unc, nom) in enumerate(zip([10.0, 12.0], [100.0, 80.0], strict=True)):
        widths[f"unc_cr[{i}]"] = unc / nom
    nominal = dict(zip(names, reference["model"].config.suggested_init(), strict=True))
    for name, pull, constraint in zip(
        got.names, got.pulls, got.constraints, strict=True
    ):
        i = names.index(name)
        want = (reference["bestfit"][i] - nominal[name]) / widths[name]
        assert pull == pytest.approx(want, abs=2e-4), name
        assert constraint == pytest.approx(
            reference["errors"][i] / widths[name], rel=2e-3
        ), name
    assert set(got.names) == set(widths)


def test_postfit_impacts_match_pyhf_refits(hepprob_model, reference):
    model, data = hepprob_model
    got = diagnostics.impacts(data, model)
    assert got.converged.all()
    for name, (up, down) in zip(got.names, got.postfit, strict=True):
        assert up == pytest.approx(reference["postfit_impacts"][(name, 1)], abs=2e-3), (
            name
        )
        assert down == pytest.approx(
            reference["postfit_impacts"][(name, -1)], abs=2e-3
        ), name
    ranked = got.ranked()
    size = np.max(np.abs(ranked.postfit), axis=1)
    assert np.all(np.diff(size) <= 0)


def test_goodness_of_fit_matches_saturated_formula(hepprob_model, reference):
    model, data = hepprob_model
    got = diagnostics.goodness_of_fit(data, model)
    pm, pdata = reference["model"], reference["data"]
    n_main = pm.config.nmaindata
    counts, aux = pdata[:n_main], pdata[n_main:]
    logl_fit = np.sum(pm.logpdf(reference["bestfit"], pdata))
    logl_sat = st.poisson.logpmf(counts, counts).sum() + np.sum(
        pm.constraint_model.logpdf(aux, np.asarray(pm.config.suggested_init()))
    )
    want = 2.0 * (logl_sat - logl_fit)
    assert got.statistic == pytest.approx(want, rel=1e-4, abs=1e-6)
    assert got.ndof == n_main - 1  # the free normfactor mu
    assert got.p_value == pytest.approx(st.chi2.sf(want, n_main - 1), rel=1e-3)


def test_postfit_yields_error_propagation(hepprob_model, reference):
    model, data = hepprob_model
    got = diagnostics.postfit_yields(data, model, n_samples=4000)
    pm = reference["model"]
    best, cov = reference["bestfit"], reference["cov"]

    def by_sample(p):
        return np.asarray(pm.main_model.expected_data(p, return_by_sample=True))

    step = 1e-6
    jac = np.stack(
        [
            (by_sample(best + step * e) - by_sample(best - step * e)) / (2 * step)
            for e in np.eye(best.size)
        ],
        axis=-1,
    )
    want_err = np.sqrt(np.einsum("sbi,ij,sbj->sb", jac, cov, jac))
    want_yield = by_sample(best)
    for channel in pm.config.channels:
        sl = pm.config.channel_slices[channel]
        for s, sample in enumerate(pm.config.samples):
            if sample not in got[channel]:
                continue
            np.testing.assert_allclose(
                got[channel][sample]["yield"], want_yield[s, sl], rtol=1e-4
            )
            np.testing.assert_allclose(
                got[channel][sample]["error"], want_err[s, sl], rtol=5e-3, atol=1e-8
            )
        sampled = got[channel]["total"]["error_sampled"]
        np.testing.assert_allclose(sampled, got[channel]["total"]["error"], rtol=0.15)
