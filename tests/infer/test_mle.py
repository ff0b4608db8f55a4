"""pyhf-compatible mle.fit / fixed_poi_fit vs pyhf 0.7 (numpy) and iminuit."""

from __future__ import annotations

import numpy as np
import pyhf
import pytest
from iminuit import Minuit

from hepprob.errors import DataError, ParameterError
from hepprob.histfactory import Workspace
from hepprob.infer import mle


def uncorrelated_spec(signal, bkg, unc, data):
    """The spec of pyhf.simplemodels.uncorrelated_background, with observations."""
    return {
        "channels": [
            {
                "name": "singlechannel",
                "samples": [
                    {
                        "name": "signal",
                        "data": signal,
                        "modifiers": [
                            {"name": "mu", "type": "normfactor", "data": None}
                        ],
                    },
                    {
                        "name": "background",
                        "data": bkg,
                        "modifiers": [
                            {"name": "uncorr_bkguncrt", "type": "shapesys", "data": unc}
                        ],
                    },
                ],
            }
        ],
        "observations": [{"name": "singlechannel", "data": data}],
        "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
        "version": "1.0.0",
    }


def normsys_histosys_spec():
    """Two channels: a coupled normsys, a histosys and a lumi uncertainty."""
    lumi = {"name": "lumi", "type": "lumi", "data": None}
    return {
        "channels": [
            {
                "name": "sr",
                "samples": [
                    {
                        "name": "signal",
                        "data": [8.0, 14.0, 5.0],
                        "modifiers": [
                            {"name": "mu", "type": "normfactor", "data": None},
                            lumi,
                        ],
                    },
                    {
                        "name": "bkg",
                        "data": [50.0, 40.0, 30.0],
                        "modifiers": [
                            {
                                "name": "bnorm",
                                "type": "normsys",
                                "data": {"hi": 1.1, "lo": 0.85},
                            },
                            {
                                "name": "shape",
                                "type": "histosys",
                                "data": {
                                    "hi_data": [53, 41, 28],
                                    "lo_data": [48, 38, 33],
                                },
                            },
                            lumi,
                        ],
                    },
                ],
            },
            {
                "name": "cr",
                "samples": [
                    {
                        "name": "bkg",
                        "data": [200.0, 150.0],
                        "modifiers": [
                            {
                                "name": "bnorm",
                                "type": "normsys",
                                "data": {"hi": 1.1, "lo": 0.85},
                            },
                            lumi,
                        ],
                    }
                ],
            },
        ],
        "observations": [
            {"name": "sr", "data": [66.0, 60.0, 33.0]},
            {"name": "cr", "data": [214.0, 149.0]},
        ],
        "measurements": [
            {
                "name": "m",
                "config": {
                    "poi": "mu",
                    "parameters": [
                        {
                            "name": "lumi",
                            "auxdata": [1.0],
                            "sigmas": [0.03],
                            "bounds": [[0.8, 1.2]],
                            "inits": [1.0],
                        }
                    ],
                },
            }
        ],
        "version": "1.0.0",
    }


SPECS = {
    "shapesys": lambda: uncorrelated_spec(
        [12.0, 11.0], [50.0, 52.0], [3.0, 7.0], [70.0, 63.0]
    ),
    "normsys_histosys_lumi": normsys_histosys_spec,
}
_CACHE: dict[str, tuple] = {}


def built(name):
    """(hepprob model, data, pyhf numpy model) for a spec; built once."""
    if name not in _CACHE:
        spec = SPECS[name]()
        ws = Workspace(spec)
        model = ws.model()
        data = np.asarray(ws.data(model), dtype=float)
        pyhf.set_backend("numpy")
        pmodel = pyhf.Workspace(spec).model()
        _CACHE[name] = (model, data, pmodel)
    return _CACHE[name]


def _pyhf_nll(pmodel, data):
    pyhf.set_backend("numpy")
    return lambda pars: float(-2.0 * pmodel.logpdf(np.asarray(pars), data)[0])


def _minuit(pmodel, data, fixed_poi=None):
    """Reference minimum of pyhf's numpy -2 ln L found by iminuit (Minuit2)."""
    cost = _pyhf_nll(pmodel, data)
    init = np.array(pmodel.config.suggested_init(), dtype=float)
    if fixed_poi is not None:
        init[pmodel.config.poi_index] = fixed_poi
    m = Minuit(cost, init, name=pmodel.config.par_names)
    m.errordef = Minuit.LEAST_SQUARES  # the cost is twice the NLL
    m.limits = [tuple(b) for b in pmodel.config.suggested_bounds()]
    m.strategy = 2
    m.tol = 1e-6
    if fixed_poi is not None:
        m.fixed[pmodel.config.poi_index] = True
    m.migrad()
    assert m.valid
    # Hesse without limits (Minuit's bounded-parameter transform would bend the
    # errors of a parameter a few sigma from its bound); the minimum is interior
    h = Minuit(cost, np.array(m.values), name=pmodel.config.par_names)
    h.errordef = Minuit.LEAST_SQUARES
    h.strategy = 2
    h.fixed = m.fixed
    h.hesse()
    return np.array(m.values), np.array(h.errors), m.fval


@pytest.mark.parametrize("name", list(SPECS))
def test_fit_matches_minuit_on_pyhf_nll(name):
    model, data, pmodel = built(name)
    pars, twice_nll = mle.fit(data, model, return_fitted_val=True)
    ref_x, _, ref_f = _minuit(pmodel, data)
    assert pars.shape == (pmodel.config.npars,)
    assert np.shape(twice_nll) == ()
    # our minimum is at least as deep as Minuit's, and pyhf agrees on its value
    assert float(twice_nll) <= ref_f + 1e-7
    np.testing.assert_allclose(
        float(twice_nll), _pyhf_nll(pmodel, data)(pars), rtol=1e-10
    )
    np.testing.assert_allclose(pars, ref_x, atol=2e-4)
    # and pyhf's own fit
    pyhf.set_backend("numpy")
    p_pars, p_f = pyhf.infer.mle.fit(data, pmodel, return_fitted_val=True)
    np.testing.assert_allclose(float(twice_nll), float(p_f), rtol=1e-7, atol=1e-6)
    np.testing.assert_allclose(pars, p_pars, atol=2e-3)


@pytest.mark.parametrize("name", list(SPECS))
def test_uncertainties_match_minuit_hesse(name):
    model, data, pmodel = built(name)
    rows = mle.fit(data, model, return_uncertainties=True)
    assert rows.shape == (pmodel.config.npars, 2)
    _, ref_err, _ = _minuit(pmodel, data)
    np.testing.assert_allclose(rows[:, 1], ref_err, rtol=2e-3)


def test_fixed_poi_fit_matches_minuit_and_pyhf():
    model, data, pmodel = built("normsys_histosys_lumi")
    poi = pmodel.config.poi_index
    pars, f = mle.fixed_poi_fit(0.5, data, model, return_fitted_val=True)
    ref_x, _, ref_f = _minuit(pmodel, data, fixed_poi=0.5)
    assert float(pars[poi]) == 0.5
    assert float(f) <= ref_f + 1e-7
    np.testing.assert_allclose(pars, ref_x, atol=2e-4)
    pyhf.set_backend("numpy")
    _, p_f = pyhf.infer.mle.fixed_poi_fit(0.5, data, pmodel, return_fitted_val=True)
    np.testing.assert_allclose(float(f), float(p_f), rtol=1e-7, atol=1e-6)
    rows = mle.fixed_poi_fit(0.5, data, model, return_uncertainties=True)
    assert rows[poi, 1] == 0.0  # fixed parameters have no error, as pyhf


def test_fixed_params_and_custom_bounds_are_respected():
    model, data, pmodel = built("normsys_histosys_lumi")
    cfg = pmodel.config
    fixed = cfg.suggested_fixed()
    init = cfg.suggested_init()
    k = cfg.par_names.index("bnorm")
    fixed[k], init[k] = True, 0.7
    bounds = cfg.suggested_bounds()
    # the best fit is above 0.3: the POI ends on its bound
    bounds[cfg.poi_index] = [0.0, 0.3]
    init[cfg.poi_index] = 0.1
    pars, f = mle.fit(data, model, init, bounds, fixed, return_fitted_val=True)
    pyhf.set_backend("numpy")
    _, p_f = pyhf.infer.mle.fit(
        data, pmodel, init, bounds, fixed, return_fitted_val=True
    )
    assert float(pars[k]) == 0.7
    np.testing.assert_allclose(float(pars[cfg.poi_index]), 0.3, atol=1e-9)
    np.testing.assert_allclose(float(f), float(p_f), rtol=1e-7, atol=1e-6)


def test_compiled_program_is_reused():
    model, data, _ = built("shapesys")
    mle.fit(data, model)
    eng = mle.engine(model)
    n = len(eng._programs)
    mle.fit(data * 1.1, model)
    mle.fixed_poi_fit(1.0, data, model)
    assert len(eng._programs) == n


def test_bad_input_raises_clear_errors():
    model, data, pmodel = built("shapesys")
    with pytest.raises(
        DataError,
        match=r"data: expected a flat array of 4 numbers \(2 main \+ 2 auxiliary\), got shape \(3,\)",
    ):
        mle.fit(data[:3], model)
    neg = data.copy()
    neg[1] = -1.0
    with pytest.raises(
        DataError,
        match=r"main-data counts must be >= 0, got negative counts at positions \[1\]",
    ):
        mle.fit(neg, model)
    with pytest.raises(DataError, match="expected finite numbers"):
        mle.fit(np.where(np.arange(4) == 2, np.inf, data), model)
    init = pmodel.config.suggested_init()
    init[0] = 20.0
    with pytest.raises(
        ParameterError,
        match=r"init_pars: start value of parameter 'mu' \(index 0\) is 20.0, outside its bounds",
    ):
        mle.fit(data, model, init_pars=init)
    with pytest.raises(ParameterError, match=r"init_pars: expected 3 finite numbers"):
        mle.fit(data, model, init_pars=[1.0, 1.0])
    with pytest.raises(
        ParameterError, match=r"par_bounds: expected shape \(3, 2\), got \(2, 2\)"
    ):
        mle.fit(data, model, par_bounds=[[0, 1], [0, 1]])
    with pytest.raises(ParameterError, match=r"par_bounds: need lower <= upper"):
        mle.fit(data, model, par_bounds=[[0, 10], [2, 1], [0, 10]])
    with pytest.raises(ParameterError, match="fixed_params: expected 3 booleans"):
        mle.fit(data, model, fixed_params=[False, True])
    with pytest.raises(
        ParameterError,
        match=r"poi_val: start value of parameter 'mu' .* is -1.0, outside",
    ):
        mle.fixed_poi_fit(-1.0, data, model)
    with pytest.raises(ParameterError, match="model: expected a HistFactory Model"):
        mle.fit(data, object())
