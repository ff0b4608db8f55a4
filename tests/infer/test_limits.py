"""upper_limit (scan and root finding) and discovery vs pyhf 0.7 (numpy backend)."""

from __future__ import annotations

import numpy as np
import pyhf
import pytest
from scipy.stats import norm

import hepprob
from hepprob.errors import ParameterError
from hepprob.histfactory import Workspace


def two_channel_spec():
    """Signal region with a shapesys background, control region sharing a normsys."""
    norm_b = {"name": "bnorm", "type": "normsys", "data": {"hi": 1.08, "lo": 0.9}}
    return {
        "channels": [
            {
                "name": "sr",
                "samples": [
                    {
                        "name": "signal",
                        "data": [6.0, 9.0],
                        "modifiers": [
                            {"name": "mu", "type": "normfactor", "data": None}
                        ],
                    },
                    {
                        "name": "bkg",
                        "data": [40.0, 30.0],
                        "modifiers": [
                            norm_b,
                            {"name": "sr_stat", "type": "shapesys", "data": [4.0, 3.5]},
                        ],
                    },
                ],
            },
            {
                "name": "cr",
                "samples": [{"name": "bkg", "data": [120.0], "modifiers": [norm_b]}],
            },
        ],
        "observations": [
            {"name": "sr", "data": [44.0, 33.0]},
            {"name": "cr", "data": [118.0]},
        ],
        "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
        "version": "1.0.0",
    }


def excess_spec():
    spec = two_channel_spec()
    spec["observations"][0]["data"] = [58.0, 50.0]
    return spec


_CACHE: dict[str, tuple] = {}


def built(name):
    if name not in _CACHE:
        spec = {"limit": two_channel_spec, "excess": excess_spec}[name]()
        ws = Workspace(spec)
        model = ws.model()
        data = np.asarray(ws.data(model), dtype=float)
        pyhf.set_backend("numpy")
        pmodel = pyhf.Workspace(spec).model()
        _CACHE[name] = (model, data, pmodel)
    return _CACHE[name]


def test_scan_limits_match_pyhf_linear_grid_scan():
    model, data, pmodel = built("limit")
    scan = np.linspace(0.0, 5.0, 11)
    obs, exp, (mus, results) = hepprob.infer.upper_limit(
        data, model, scan=scan, return_results=True
    )
    pyhf.set_backend("numpy")
    ref_obs, ref_exp, (_, ref_results) = pyhf.infer.intervals.upper_limits.upper_limit(
        data, pmodel, scan=scan, return_results=True
    )
    np.testing.assert_allclose(float(obs), float(ref_obs), rtol=1e-3)
    np.testing.assert_allclose(
        np.asarray(exp, dtype=float), np.asarray(ref_exp), rtol=1e-3
    )
    np.testing.assert_array_equal(mus, scan)
    assert len(results) == len(ref_results) == scan.size
    for (cls, band), (ref_cls, ref_band) in zip(results, ref_results, strict=True):
        np.testing.assert_allclose(float(cls), float(ref_cls), atol=1e-4)
        np.testing.assert_allclose(
            np.asarray(band, dtype=float), np.asarray(ref_band), atol=1e-4
        )


def test_root_finding_limits_match_pyhf_toms748():
    model, data, pmodel = built("limit")
    obs, exp = hepprob.infer.upper_limit(data, model)
    pyhf.set_backend("numpy")
    ref_obs, ref_exp = pyhf.infer.intervals.upper_limits.upper_limit(data, pmodel)
    np.testing.assert_allclose(float(obs), float(ref_obs), rtol=1e-3)
    np.testing.assert_allclose(
        np.asarray(exp, dtype=float), np.asarray(ref_exp), rtol=1e-3
    )
    # CLs evaluated by pyhf at our limits is the requested level
    cls, band = pyhf.infer.hypotest(float(obs), data, pmodel, return_expected_set=True)
    np.testing.assert_allclose(float(cls), 0.05, atol=1e-5)
    for i, mu in enumerate(exp):
        band = pyhf.infer.hypotest(float(mu), data, pmodel, return_expected_set=True)[1]
        np.testing.assert_allclose(float(band[i]), 0.05, atol=1e-5)


def test_other_level_and_q_statistic():
    model, data, pmodel = built("limit")
    bounds = pmodel.config.suggested_bounds()
    bounds[pmodel.config.poi_index] = [-3.0, 10.0]
    obs, exp = hepprob.infer.upper_limit(
        data, model, level=0.1, test_stat="q", par_bounds=bounds
    )
    pyhf.set_backend("numpy")
    for mu, i in [(obs, None), *[(e, k) for k, e in enumerate(exp)]]:
        res = pyhf.infer.hypotest(
            float(mu), data, pmodel, par_bounds=bounds, test_stat="q",
            return_expected_set=True,
        )  # fmt: skip
        value = res[0] if i is None else res[1][i]
        np.testing.assert_allclose(float(value), 0.1, atol=1e-5)


def test_limit_above_the_poi_bound_is_found():
    model, data, pmodel = built("limit")
    bounds = pmodel.config.suggested_bounds()
    # muhat = 0.44 stays inside; every limit lies above 0.5
    bounds[pmodel.config.poi_index] = [0.0, 0.5]
    init = pmodel.config.suggested_init()
    init[pmodel.config.poi_index] = 0.2
    obs, exp = hepprob.infer.upper_limit(data, model, par_bounds=bounds, init_pars=init)
    ref_obs, ref_exp = hepprob.infer.upper_limit(data, model)
    assert float(obs) > 0.5
    np.testing.assert_allclose(float(obs), float(ref_obs), rtol=1e-3)
    np.testing.assert_allclose(
        np.asarray(exp, float), np.asarray(ref_exp, float), rtol=1e-3
    )


def test_discovery_matches_pyhf_q0():
    model, data, pmodel = built("excess")
    z, z_exp, p0, p0_exp = hepprob.infer.discovery(
        data, model, return_expected=True, return_pvalues=True
    )
    pyhf.set_backend("numpy")
    ref_p0, ref_p0_exp = pyhf.infer.hypotest(
        0.0, data, pmodel, test_stat="q0", return_expected=True
    )
    np.testing.assert_allclose(float(p0), float(ref_p0), rtol=1e-4)
    np.testing.assert_allclose(float(p0_exp), float(ref_p0_exp), rtol=1e-4)
    np.testing.assert_allclose(float(z), norm.isf(float(ref_p0)), rtol=1e-4)
    np.testing.assert_allclose(float(z_exp), norm.isf(float(ref_p0_exp)), rtol=1e-4)
    q0 = pyhf.infer.test_statistics.q0(
        0.0, data, pmodel, pmodel.config.suggested_init(),
        pmodel.config.suggested_bounds(), pmodel.config.suggested_fixed(),
    )  # fmt: skip
    np.testing.assert_allclose(float(z) ** 2, float(q0), rtol=1e-4)
    assert float(hepprob.infer.discovery(data, model)) == float(z)


def test_bad_input_raises_clear_errors():
    model, data, _ = built("limit")
    with pytest.raises(
        ParameterError, match=r"level: expected a CLs level in \(0, 1\), got 1.5"
    ):
        hepprob.infer.upper_limit(data, model, level=1.5)
    with pytest.raises(
        ParameterError, match="scan: expected strictly increasing POI values"
    ):
        hepprob.infer.upper_limit(data, model, scan=[0.0, 2.0, 1.0])
    with pytest.raises(
        ParameterError,
        match=r"scan: expected values within the POI bounds \[0.0, 10.0\]",
    ):
        hepprob.infer.upper_limit(data, model, scan=[0.0, 12.0])
    with pytest.raises(ParameterError, match="upper_limit needs a scan"):
        hepprob.infer.upper_limit(data, model, calctype="toybased")
    with pytest.raises(
        ParameterError, match=r"unknown keyword argument\(s\) \['tol'\]"
    ):
        hepprob.infer.upper_limit(data, model, tol=1e-3)
    with pytest.raises(
        ParameterError, match="test_stat: upper limits need 'qtilde' or 'q', got 'q0'"
    ):
        hepprob.infer.upper_limit(data, model, test_stat="q0")
