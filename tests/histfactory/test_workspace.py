"""Workspace: model/data/measurements, prune, rename, combine and JSON patches vs pyhf."""

from __future__ import annotations

import copy
import json
import logging
import pathlib

import jsonpatch
import numpy as np
import pyhf
import pytest

from hepprob.errors import SpecError
from hepprob.histfactory.workspace import Workspace

DATA = pathlib.Path(__file__).resolve().parents[1] / "data"
GOOD = ["good_workspace_simple.json", "good_workspace_twochannel.json"]

# pyhf logs (not warns) when a workspace has several measurements
logging.getLogger("pyhf").setLevel(logging.ERROR)


def load(name: str) -> dict:
    with (DATA / name).open() as f:
        return json.load(f)


SIGNAL_PATCH = [
    {
        "op": "add",
        "path": "/channels/0/samples/0",
        "value": {
            "name": "signal",
            "data": [2.0, 6.0, 1.0],
            "modifiers": [
                {"name": "mu", "type": "normfactor", "data": None},
                {"name": "lumi", "type": "lumi", "data": None},
            ],
        },
    },
    {"op": "replace", "path": "/channels/0/samples/1/data/0", "value": 49.0},
]


def assert_model_matches(model, pmodel, data, pdata):
    """hepprob Model vs pyhf Model: configuration, data and logpdf."""
    assert model.config.par_names == pmodel.config.par_names
    assert model.config.poi_name == pmodel.config.poi_name
    assert model.config.channels == pmodel.config.channels
    assert data == pytest.approx(pdata, rel=1e-15)
    init = np.asarray(pmodel.config.suggested_init(), dtype=float)
    assert list(model.config.suggested_init()) == pytest.approx(list(init))
    assert list(model.config.suggested_fixed()) == list(pmodel.config.suggested_fixed())
    for shift in (0.0, 0.3):
        pars = init + shift
        mine = float(np.asarray(model.logpdf(pars, np.asarray(data)))[0])
        ref = float(pmodel.logpdf(pars, pdata)[0])
        assert mine == pytest.approx(ref, rel=1e-8)


@pytest.mark.parametrize("name", GOOD)
def test_summaries_match_pyhf(name):
    spec = load(name)
    ws, pws = Workspace(spec), pyhf.Workspace(spec)
    assert ws.channels == pws.channels
    assert ws.samples == pws.samples
    assert ws.modifiers == pws.modifiers
    assert ws.channel_nbins == pws.channel_nbins
    assert ws.measurement_names == pws.measurement_names
    for meas in ws.measurement_names:
        assert ws.get_measurement(meas) == pws.get_measurement(measurement_name=meas)
    assert ws.get_measurement() == pws.get_measurement()
    assert ws.get_measurement(measurement_index=-1) == pws["measurements"][-1]
    assert ws.to_dict() == dict(pws)


@pytest.mark.parametrize("name", GOOD)
def test_model_and_data_match_pyhf(name):
    spec = load(name)
    ws, pws = Workspace(spec), pyhf.Workspace(spec)
    for meas in ws.measurement_names:
        model = ws.model(measurement_name=meas)
        pmodel = pws.model(measurement_name=meas)
        assert_model_matches(model, pmodel, ws.data(model), pws.data(pmodel))
        assert ws.data(model, include_auxdata=False) == pws.data(
            pmodel, include_auxdata=False
        )


def test_model_options_match_pyhf():
    spec = load("good_workspace_twochannel.json")
    ws, pws = Workspace(spec), pyhf.Workspace(spec)
    settings = {
        "normsys": {"interpcode": "code1"},
        "histosys": {"interpcode": "code0"},
    }
    model = ws.model(
        modifier_settings=settings, poi_name="mu_ttbar", measurement_index=1
    )
    pmodel = pws.model(
        modifier_settings=settings, poi_name="mu_ttbar", measurement_index=1
    )
    assert model.config.poi_name == "mu_ttbar"
    assert_model_matches(model, pmodel, ws.data(model), pws.data(pmodel))
    no_poi = ws.model(poi_name=None)
    assert no_poi.config.poi_name is None
    assert no_poi.config.poi_name == pws.model(poi_name=None).config.poi_name


def test_json_patches_in_model_match_pyhf():
    bkg = load("good_workspace_bkgonly.json")
    ws, pws = Workspace(bkg), pyhf.Workspace(bkg)
    # the background-only workspace is valid, but its POI comes with the signal
    with pytest.raises(
        SpecError, match=r"measurements\[0\]\.config\.poi: poi 'mu' .*signal patch"
    ):
        ws.model()
    for patch in (SIGNAL_PATCH, jsonpatch.JsonPatch(SIGNAL_PATCH)):
        model = ws.model(patches=[patch])
        pmodel = pws.model(patches=[SIGNAL_PATCH])
        assert_model_matches(model, pmodel, ws.data(model), pws.data(pmodel))
    assert ws.model_spec(patches=[SIGNAL_PATCH]) == jsonpatch.apply_patch(
        {
            "channels": bkg["channels"],
            "parameters": bkg["measurements"][0]["config"]["parameters"],
        },
        SIGNAL_PATCH,
    )


def test_patch_whole_workspace():
    bkg = load("good_workspace_bkgonly.json")
    ws = Workspace(bkg)
    ops = [
        {**SIGNAL_PATCH[0]},
        {"op": "replace", "path": "/observations/0/data/2", "value": 44.0},
    ]
    patched = ws.patch(ops)
    assert patched.to_dict() == jsonpatch.apply_patch(bkg, ops)
    assert ws.to_dict() == bkg  # unchanged
    assert patched.samples == ["background", "signal"]
    # a patch that makes the workspace invalid is refused with the path at fault
    with pytest.raises(
        SpecError, match=r"observations\[0\]\.data\[0\]: .*non-negative"
    ):
        ws.patch([{"op": "replace", "path": "/observations/0/data/0", "value": -1.0}])


def test_patch_errors_name_patch_and_operation():
    ws = Workspace(load("good_workspace_simple.json"))
    with pytest.raises(
        SpecError, match=r"patches\[0\]\[1\]: operation 'remove' at '/nope'"
    ):
        ws.patch(
            [
                [
                    {"op": "test", "path": "/version", "value": "1.0.0"},
                    {"op": "remove", "path": "/nope"},
                ]
            ]
        )
    with pytest.raises(SpecError, match=r"patches\[1\]\[0\]\.op: expected one of"):
        ws.model(patches=[[], [{"op": "delete", "path": "/channels/0"}]])
    with pytest.raises(SpecError, match=r"patches\[0\]\[0\]: operation 'test'"):
        ws.model(patches=[[{"op": "test", "path": "/channels/0/name", "value": "CR"}]])


PRUNES = [
    {"modifiers": ["bkg_shape"]},
    {"modifier_types": ["shapesys", "staterror"]},
    {"samples": ["wjets"]},
    {"channels": ["CR"]},
    {"measurements": ["ttbar_xsec"]},
    {"modifiers": ["mu_ttbar"], "channels": ["SR"]},
]


@pytest.mark.parametrize("kwargs", PRUNES)
def test_prune_matches_pyhf(kwargs):
    name = "good_workspace_twochannel.json"
    if "modifiers" in kwargs and "bkg_shape" in kwargs["modifiers"]:
        name = "good_workspace_simple.json"
    spec = load(name)
    mine = Workspace(spec).prune(**kwargs)
    ref = pyhf.Workspace(spec).prune(**kwargs)
    assert mine.to_dict() == dict(ref)


def test_rename_matches_pyhf():
    spec = load("good_workspace_twochannel.json")
    kwargs = {
        "modifiers": {"jes": "JES", "mu": "mu_sig"},
        "samples": {"ttbar": "tt"},
        "channels": {"CR": "ttCR"},
        "measurements": {"nominal": "main"},
    }
    mine = Workspace(spec).rename(**kwargs)
    assert mine.to_dict() == dict(pyhf.Workspace(spec).rename(**kwargs))
    assert mine.get_measurement()["config"]["poi"] == "mu_sig"


def test_prune_and_rename_errors():
    ws = Workspace(load("good_workspace_twochannel.json"))
    with pytest.raises(
        SpecError, match=r"channels: channel\(s\) \['VR'\] not in the workspace"
    ):
        ws.prune(channels=["VR"])
    with pytest.raises(
        SpecError, match=r"modifier_types: modifier type\(s\) \['lumi'\]"
    ):
        ws.prune(modifier_types=["lumi"])
    with pytest.raises(SpecError, match=r"samples: sample\(s\) \['qcd'\]"):
        ws.rename(samples={"qcd": "QCD"})
    # pruning the POI's modifier leaves a workspace whose model has no POI
    pruned = ws.prune(modifiers=["mu"])
    with pytest.raises(SpecError, match=r"measurements\[0\]\.config\.poi: poi 'mu'"):
        pruned.model()
    # renaming two samples of a channel to one name is refused
    with pytest.raises(SpecError, match=r"duplicate sample name 'tt'"):
        ws.rename(samples={"ttbar": "tt", "wjets": "tt"})


def _canonical(spec: dict) -> dict:
    """Order-free form: lists of named items sorted by name."""
    out = copy.deepcopy(spec)
    for key in ("channels", "observations", "measurements"):
        out[key] = sorted(out[key], key=lambda item: item["name"])
    for meas in out["measurements"]:
        meas["config"]["parameters"].sort(key=lambda p: p["name"])
    return out


def test_combine_matches_pyhf():
    a = load("good_workspace_simple.json")
    b = load("good_workspace_twochannel.json")
    ws_a, ws_b = Workspace(a), Workspace(b)
    p_a, p_b = pyhf.Workspace(a), pyhf.Workspace(b)
    kw = {
        "channels": {"SR": "SR2", "CR": "CR2"},
        "modifiers": {"staterror_SR": "staterror_SR2"},
        "measurements": {"nominal": "n2", "ttbar_xsec": "t2"},
    }
    # disjoint names
    mine = Workspace.combine(ws_b, ws_b.rename(**kw))
    ref = pyhf.Workspace.combine(p_b, p_b.rename(**kw))
    assert mine.to_dict() == dict(ref)
    # overlapping but identical items
    kw_a = {"channels": {"SR": "SR_a"}, "modifiers": {"staterror_SR": "staterror_SR_a"}}
    mine = Workspace.combine(ws_a, ws_a.rename(**kw_a), join="outer")
    ref = pyhf.Workspace.combine(p_a, p_a.rename(**kw_a), join="outer")
    assert _canonical(mine.to_dict()) == _canonical(dict(ref))
    # overlapping measurement with different settings: the chosen side wins
    other = copy.deepcopy(a)
    other["measurements"][0]["config"]["parameters"][1]["bounds"] = [[-5.0, 5.0]]
    other = Workspace(other).rename(**kw_a)
    p_other = pyhf.Workspace(other.to_dict())
    for join in ("left outer", "right outer"):
        mine = Workspace.combine(ws_a, other, join=join)
        ref = pyhf.Workspace.combine(p_a, p_other, join=join)
        assert _canonical(mine.to_dict()) == _canonical(dict(ref)), join
    with pytest.raises(
        SpecError, match="measurements: both workspaces have a measurement named 'meas'"
    ):
        Workspace.combine(ws_a, other)
    with pytest.raises(
        SpecError, match=r"parameters 'mu' differs between the workspaces"
    ):
        Workspace.combine(ws_a, other, join="outer")
    with pytest.raises(SpecError, match=r"join: join must be one of .*got 'inner'"):
        Workspace.combine(ws_a, other, join="inner")


def test_measurement_lookup_errors():
    ws = Workspace(load("good_workspace_twochannel.json"))
    with pytest.raises(
        SpecError,
        match=r"measurements: no measurement named 'other'; measurements: \['nominal', 'ttbar_xsec'\]",
    ):
        ws.get_measurement("other")
    with pytest.raises(SpecError, match=r"measurement_index 2 is out of range for 2"):
        ws.model(measurement_index=2)


def test_data_needs_observations_for_every_model_channel():
    ws = Workspace(load("good_workspace_simple.json"))
    model = Workspace(load("good_workspace_twochannel.json")).model()
    with pytest.raises(
        SpecError,
        match=r"observations: the model has channel 'CR' but the workspace has no observations",
    ):
        ws.data(model)


def test_file_round_trip_and_errors(tmp_path):
    spec = load("good_workspace_twochannel.json")
    ws = Workspace.from_file(DATA / "good_workspace_twochannel.json")
    out = tmp_path / "ws.json"
    text = ws.to_json(out)
    assert json.loads(text) == spec
    assert Workspace.from_file(out) == ws
    assert ws != Workspace(load("good_workspace_simple.json"))
    broken = tmp_path / "broken.json"
    broken.write_text('{"channels": [}')
    with pytest.raises(
        SpecError, match=r"broken\.json: not valid JSON: .* line 1, column 15"
    ):
        Workspace.from_file(broken)
    with pytest.raises(SpecError, match=r"missing\.json: cannot read"):
        Workspace.from_file(tmp_path / "missing.json")
    with pytest.raises(
        SpecError,
        match=r"observations\[0\]\.data\[1\]: observed counts must be non-negative",
    ):
        Workspace.from_file(DATA / "bad_negative_observation.json")


def test_build_from_model_round_trip():
    spec = load("good_workspace_twochannel.json")
    ws, pws = Workspace(spec), pyhf.Workspace(spec)
    model, pmodel = ws.model(), pws.model()
    data = ws.data(model, include_auxdata=False)
    built = Workspace.build(model, data, name="rebuilt")
    ref = pyhf.Workspace.build(
        pmodel, pws.data(pmodel, include_auxdata=False), name="rebuilt"
    )
    assert built.to_dict()["channels"] == ref["channels"]
    assert built.to_dict()["observations"] == ref["observations"]
    assert (
        built.get_measurement()["config"]["poi"]
        == ref["measurements"][0]["config"]["poi"]
    )
    # the rebuilt workspace gives back the same model
    again = built.model()
    assert_model_matches(again, pmodel, built.data(again), pws.data(pmodel))
    with pytest.raises(
        SpecError, match=r"data: expected at least 4 main data values, got 3"
    ):
        Workspace.build(model, data[:3])
