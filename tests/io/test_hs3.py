"""HS3 JSON: read ROOT-style HistFactory files, write them, round trip; clear errors.

References: pyhf on the equivalent pyhf JSON workspace (logpdf at random
points, MLE), and the pyhf workspaces of ../shared/validation/xml (imported
with hepprob's XML reader) for the round trip pyhf JSON -> HS3 -> hepprob.
The HS3 documents are written here from the HS3 standard's HistFactory section
and the key names of ROOT's writer (roofit/hs3/src/JSONFactories_HistFactory.cxx).
"""

from __future__ import annotations

import copy
import json
import warnings

import numpy as np
import pyhf
import pytest

from hepprob.errors import SpecError
from hepprob.histfactory import Workspace, xml
from hepprob.io import read_hs3
from hepprob.io.hs3 import write_hs3

AXES = [{"name": "obs_x_channel1", "min": 1.0, "max": 2.0, "nbins": 2}]


def root_style_document() -> dict:
    """One channel in ROOT's conventions: alpha_ parameters, staterror, const Lumi."""
    return {
        "metadata": {"hs3_version": "0.2", "packages": [{"name": "ROOT", "version": "6.30"}]},
        "distributions": [
            {
                "name": "model_channel1",
                "type": "histfactory_dist",
                "axes": AXES,
                "samples": [
                    {
                        "name": "signal",
                        "data": {"contents": [20.0, 10.0]},
                        "modifiers": [
                            {"name": "Lumi", "parameter": "Lumi", "type": "normfactor"},
                            {"name": "mu", "parameter": "mu", "type": "normfactor"},
                            {"name": "syst1", "parameter": "alpha_syst1", "type": "normsys",
                             "constraint": "Gauss", "data": {"hi": 1.05, "lo": 0.95}},
                            {"name": "SignalShape", "parameter": "alpha_SignalShape",
                             "type": "histosys", "constraint": "Gauss",
                             "data": {"hi": {"contents": [29.0, 13.0]},
                                      "lo": {"contents": [15.0, 8.0]}}},
                        ],
                    },
                    {
                        "name": "background1",
                        "data": {"contents": [100.0, 10.0], "errors": [5.0, 1.0]},
                        "modifiers": [
                            {"name": "Lumi", "parameter": "Lumi", "type": "normfactor"},
                            {"name": "syst2", "parameter": "alpha_syst2", "type": "normsys",
                             "constraint": "Gauss", "data": {"hi": 1.05, "lo": 0.95}},
                            {"name": "staterror", "type": "staterror", "constraint": "Gauss"},
                        ],
                    },
                    {
                        "name": "background2",
                        "data": {"contents": [5.0, 100.0], "errors": [1.0, 10.0]},
                        "modifiers": [
                            {"name": "uncorr", "type": "shapesys", "constraint": "Poisson",
                             "parameters": ["gamma_uncorr_bin_0", "gamma_uncorr_bin_1"],
                             "data": {"vals": [0.2, 0.05]}},
                            {"name": "staterror", "type": "staterror", "constraint": "Gauss"},
                        ],
                    },
                ],
            }
        ],
        "data": [
            {"name": "asimovData_channel1", "type": "binned", "axes": AXES, "contents": [125.0, 120.0]},
            {"name": "obsData_channel1", "type": "binned", "axes": AXES, "contents": [122.0, 112.0]},
        ],
        "likelihoods": [
            {"name": "simPdf_asimovData", "distributions": ["model_channel1"], "data": ["asimovData_channel1"]},
            {"name": "simPdf_obsData", "distributions": ["model_channel1"], "data": ["obsData_channel1"]},
        ],
        "analyses": [
            {"name": "simPdf_asimovData", "likelihood": "simPdf_asimovData",
             "parameters_of_interest": ["mu"], "domains": ["default_domain"]},
            {"name": "simPdf_obsData", "likelihood": "simPdf_obsData",
             "parameters_of_interest": ["mu"], "domains": ["default_domain"]},
        ],
        "domains": [
            {"name": "default_domain", "type": "product_domain", "axes": [
                {"name": "mu", "min": -3.0, "max": 5.0},
                {"name": "alpha_syst1", "min": -5.0, "max": 5.0},
                {"name": "alpha_syst2", "min": -5.0, "max": 5.0},
                {"name": "alpha_SignalShape", "min": -5.0, "max": 5.0},
            ]}
        ],
        "parameter_points": [
            {"name": "default_values", "parameters": [
                {"name": "Lumi", "value": 1.0, "const": True},
                {"name": "mu", "value": 1.0},
            ]}
        ],
        "misc": {"ROOT_internal": {}},
    }  # fmt: skip


def pyhf_equivalent() -> dict:
    """The same likelihood written as pyhf JSON by hand."""
    return {
        "channels": [
            {"name": "channel1", "samples": [
                {"name": "signal", "data": [20.0, 10.0], "modifiers": [
                    {"name": "Lumi", "type": "normfactor", "data": None},
                    {"name": "mu", "type": "normfactor", "data": None},
                    {"name": "alpha_syst1", "type": "normsys", "data": {"hi": 1.05, "lo": 0.95}},
                    {"name": "alpha_SignalShape", "type": "histosys",
                     "data": {"hi_data": [29.0, 13.0], "lo_data": [15.0, 8.0]}}]},
                {"name": "background1", "data": [100.0, 10.0], "modifiers": [
                    {"name": "Lumi", "type": "normfactor", "data": None},
                    {"name": "alpha_syst2", "type": "normsys", "data": {"hi": 1.05, "lo": 0.95}},
                    {"name": "gamma_stat_channel1", "type": "staterror", "data": [5.0, 1.0]}]},
                {"name": "background2", "data": [5.0, 100.0], "modifiers": [
                    # relative errors 0.2 and 0.05 of 5 and 100
                    {"name": "gamma_uncorr", "type": "shapesys", "data": [1.0, 5.0]},
                    {"name": "gamma_stat_channel1", "type": "staterror", "data": [1.0, 10.0]}]},
            ]}
        ],
        "observations": [{"name": "channel1", "data": [122.0, 112.0]}],
        "measurements": [{"name": "simPdf_obsData", "config": {"poi": "mu", "parameters": [
            {"name": "Lumi", "inits": [1.0], "fixed": True},
            {"name": "mu", "inits": [1.0], "bounds": [[-3.0, 5.0]]}]}}],
        "version": "1.0.0",
    }  # fmt: skip


def _compare_with_pyhf(ws, ref_spec, measurement=None, n_points=5):
    model = ws.model(measurement_name=measurement)
    data = ws.data(model)
    ref_ws = pyhf.Workspace(ref_spec)
    ref = ref_ws.model(measurement_name=measurement)
    ref_data = ref_ws.data(ref)
    assert model.config.par_names == ref.config.par_names
    assert model.config.suggested_bounds() == [
        tuple(b) for b in ref.config.suggested_bounds()
    ]
    assert model.config.suggested_fixed() == ref.config.suggested_fixed()
    np.testing.assert_allclose(data, ref_data, rtol=0, atol=0)
    rng = np.random.default_rng(3)
    init = np.array(ref.config.suggested_init())
    for _ in range(n_points):
        pars = init + 0.1 * rng.normal(size=init.size)
        want = ref.logpdf(pars, ref_data)
        np.testing.assert_allclose(model.logpdf(pars, data), want, rtol=1e-10)


def test_root_style_file_equals_pyhf_workspace(tmp_path):
    path = tmp_path / "hf.json"
    path.write_text(json.dumps(root_style_document()))
    ws = read_hs3(path)
    assert ws.measurement_names == ["simPdf_obsData"]  # the asimov analysis is skipped
    assert ws.observations["channel1"] == [122.0, 112.0]
    _compare_with_pyhf(ws, pyhf_equivalent())


def test_choose_analysis_by_name():
    ws = read_hs3(root_style_document(), analysis="simPdf_asimovData")
    assert ws.observations["channel1"] == [125.0, 120.0]


def test_staterror_threshold_and_poisson_staterror():
    doc = root_style_document()
    doc["distributions"][0]["staterror"] = {"relThreshold": 0.06, "constraint": "Gauss"}
    ws = read_hs3(doc)
    spec = ws.to_dict()
    # bin 0: sqrt(5^2 + 1^2) / 105 < 0.06 -> no uncertainty; bin 1: 10.05 / 110 > 0.06
    stat = [
        m
        for s in spec["channels"][0]["samples"]
        for m in s["modifiers"]
        if m["type"] == "staterror"
    ]
    assert [m["data"][0] for m in stat] == [0.0, 0.0]
    assert [m["data"][1] for m in stat] == [1.0, 10.0]

    one = root_style_document()
    sample = one["distributions"][0]["samples"][1]
    sample["modifiers"][2]["constraint"] = "Poisson"
    del one["distributions"][0]["samples"][2]["modifiers"][
        1
    ]  # staterror on one sample only
    ref = pyhf_equivalent()
    ref["channels"][0]["samples"][1]["modifiers"][2] = {
        "name": "gamma_stat_channel1", "type": "shapesys", "data": [5.0, 1.0]}  # fmt: skip
    del ref["channels"][0]["samples"][2]["modifiers"][1]
    _compare_with_pyhf(read_hs3(one), ref)


def test_lumi_constraint_and_gauss_shapesys():
    doc = root_style_document()
    doc["distributions"].append(
        {
            "name": "lumiConstraint",
            "type": "gaussian_dist",
            "x": "Lumi",
            "mean": "nominalLumi",
            "sigma": 0.1,
        }
    )
    doc["parameter_points"][0]["parameters"] = [
        {"name": "Lumi", "value": 1.0}, {"name": "nominalLumi", "value": 1.0, "const": True},
        {"name": "mu", "value": 1.0}]  # fmt: skip
    for s in doc["distributions"][0]["samples"][:2]:
        s["modifiers"][0]["constraint_name"] = "lumiConstraint"
    shapesys = doc["distributions"][0]["samples"][2]["modifiers"][0]
    shapesys.update(constraint="Gauss", data={"vals": [0.2, 0.05]})  # relative errors
    ref = pyhf_equivalent()
    for s in ref["channels"][0]["samples"][:2]:
        s["modifiers"][0] = {"name": "lumi", "type": "lumi", "data": None}
    ref["channels"][0]["samples"][2]["modifiers"][0] = {
        "name": "gamma_uncorr", "type": "staterror", "data": [1.0, 5.0]}  # fmt: skip
    ref["measurements"][0]["config"]["parameters"] = [
        {"name": "lumi", "auxdata": [1.0], "sigmas": [0.1], "inits": [1.0], "bounds": [[0.5, 1.5]]},
        {"name": "mu", "inits": [1.0], "bounds": [[-3.0, 5.0]]}]  # fmt: skip
    _compare_with_pyhf(read_hs3(doc), ref)


def test_interpolation_codes_from_the_file():
    doc = root_style_document()
    for s in doc["distributions"][0]["samples"][:2]:
        for m in s["modifiers"]:
            if m["type"] == "normsys":
                m["interpolation"] = {"type": "mult", "in": "exp", "out": None}
    ws = read_hs3(doc)
    model = ws.model()
    ref_ws = pyhf.Workspace(pyhf_equivalent())
    ref = ref_ws.model(
        modifier_settings={
            "normsys": {"interpcode": "code1"},
            "histosys": {"interpcode": "code4p"},
        }
    )
    pars = np.array(ref.config.suggested_init()) + 0.3
    np.testing.assert_allclose(
        model.logpdf(pars, ws.data(model)),
        ref.logpdf(pars, ref_ws.data(ref)),
        rtol=1e-10,
    )
    # and written back with the same code
    again = read_hs3(write_hs3(ws))
    np.testing.assert_allclose(
        again.model().logpdf(pars, ws.data(model)),
        model.logpdf(pars, ws.data(model)),
        rtol=1e-12,
    )
    doc["distributions"][0]["samples"][0]["modifiers"][2]["interpolation"] = {
        "type": "mult",
        "in": "poly6",
        "out": "exp",
    }
    with pytest.raises(
        SpecError,
        match=r"samples\[0\]\.modifiers\[2\]: normsys modifiers use different interpolations",
    ):
        read_hs3(doc)


def _xml_workspaces(validation_dir):
    out = []
    for top in sorted(validation_dir.glob("xml/*/config/example.xml")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out.append(Workspace(xml.parse(top, top.parent.parent)))
    return out


def test_round_trip_keeps_logpdf(validation_dir):
    workspaces = [*_xml_workspaces(validation_dir), Workspace(pyhf_equivalent())]
    rng = np.random.default_rng(7)
    for ws in workspaces:
        back = read_hs3(json.loads(json.dumps(ws.to_hs3())))
        assert back.measurement_names == ws.measurement_names
        for meas in ws.measurement_names:
            m1, m2 = ws.model(measurement_name=meas), back.model(measurement_name=meas)
            assert m2.config.par_names == m1.config.par_names
            assert m2.config.suggested_bounds() == m1.config.suggested_bounds()
            assert m2.config.suggested_init() == m1.config.suggested_init()
            assert m2.config.suggested_fixed() == m1.config.suggested_fixed()
            assert m2.config.auxdata == m1.config.auxdata
            d1, d2 = ws.data(m1), back.data(m2)
            assert d1 == d2
            pars = np.array(m1.config.suggested_init()) + 0.05 * rng.normal(
                size=m1.config.npars
            )
            np.testing.assert_allclose(
                m2.logpdf(pars, d2), m1.logpdf(pars, d1), rtol=1e-12
            )


def test_written_document_structure():
    doc = Workspace(pyhf_equivalent()).to_hs3()
    assert doc["metadata"]["hs3_version"] == "0.2"
    (dist,) = doc["distributions"]
    assert dist["type"] == "histfactory_dist"
    mods = {m["name"]: m for s in dist["samples"] for m in s["modifiers"]}
    assert mods["gamma_uncorr"]["data"]["vals"] == [
        0.2,
        0.05,
    ]  # relative errors, as ROOT
    assert mods["gamma_stat_channel1"]["parameters"] == [
        "gamma_stat_channel1_bin_0",
        "gamma_stat_channel1_bin_1",
    ]
    assert doc["analyses"][0]["parameters_of_interest"] == ["mu"]
    point = {p["name"]: p for p in doc["parameter_points"][0]["parameters"]}
    assert point["Lumi"] == {"name": "Lumi", "value": 1.0, "const": True}


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (
            lambda d: d["distributions"][0]["samples"][0]["modifiers"].append(
                {"type": "foo", "parameter": "x"}
            ),
            r"distributions\[0\]\.samples\[0\]\.modifiers\[4\]\.type: modifier type 'foo' is not supported",
        ),
        (
            lambda d: (
                d["distributions"].append({"name": "g", "type": "gaussian_dist"})
                or d["likelihoods"][1].update(
                    distributions=["g"], data=["obsData_channel1"]
                )
            ),
            r"distributions\[1\]\.type: distribution type 'gaussian_dist' is not supported",
        ),
        (
            lambda d: d["data"][1].update(contents=[1.0, 2.0, 3.0]),
            r"data\[1\]\.contents: must have 2 entries",
        ),
        (
            lambda d: d["data"][1].update(contents=[1.0, -2.0]),
            r"data\[1\]\.contents: observed counts must be non-negative",
        ),
        (
            lambda d: d["distributions"][0]["samples"][1]["data"].pop("errors"),
            r"distributions\[0\]\.samples\[1\]\.data: a sample with a staterror modifier needs data.errors",
        ),
        (
            lambda d: d["distributions"][0]["samples"][0]["modifiers"][2].update(
                constraint="LogNormal"
            ),
            r"modifiers\[2\]\.constraint: constraint 'LogNormal' is not supported",
        ),
        (
            lambda d: d.update(functions=[{"name": "f", "type": "sum"}]),
            r"functions: generic HS3 functions are not supported",
        ),
        (
            lambda d: d["likelihoods"][1].update(data=["nope"]),
            r"likelihoods\[1\]\.data\[0\]: refers to data 'nope', which the file does not define",
        ),
        (
            lambda d: d["analyses"][1].update(parameters_of_interest=[]),
            r"analyses\[1\]\.parameters_of_interest: needs parameters_of_interest",
        ),
        (lambda d: d.update(bogus=1), r"\$: unknown top-level component"),
    ],
)
def test_bad_input_names_the_json_path(edit, match, tmp_path):
    doc = copy.deepcopy(root_style_document())
    edit(doc)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(SpecError, match=match) as info:
        read_hs3(path)
    assert str(info.value).startswith(str(path))


def test_invalid_json_names_file_and_line(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{\n  "distributions": [\n')
    with pytest.raises(SpecError, match=r"broken.json: not valid JSON: .* line 3"):
        read_hs3(path)
