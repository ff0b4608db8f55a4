"""XML + ROOT import: equal to pyhf.readxml.parse on the validation inputs; clear errors."""

from __future__ import annotations

import io
import json
import math
import pathlib
import re
import shutil
import sys
import warnings

import numpy as np
import pyhf
import pytest
import uproot
from pyhf import readxml

from hepprob.errors import HepprobWarning, SpecError
from hepprob.histfactory import xml as hxml
from hepprob.histfactory.spec import validate_workspace
from hepprob.histfactory.workspace import Workspace

# top-level file (relative to its folder) -> warnings hepprob gives, as regexes
TOP_LEVEL = {
    ("multibin_histfactory", "config/example.xml"): [],
    ("multichannel_histfactory", "config/example.xml"): [],
    ("overallsys_histfactory", "config/example.xml"): [],
    ("xmlimport_input", "config/example.xml"): [
        "StatErrorConfig ConstraintType='Poisson'",
        r"Measurement\[GammaExample\]/ConstraintTerm: Type='Gamma'",
        r"Measurement\[LogNormExample\]/ConstraintTerm: Type='LogNormal'",
    ],
    ("xmlimport_input", "config/examples/example_DataDriven.xml"): [],
    ("xmlimport_input", "config/examples/example_Expression.xml"): [
        r"Function\[rootPOI\]",
        r"Function\[rootPOI2\]",
        "StatErrorConfig ConstraintType='Poisson'",
    ],
    ("xmlimport_input", "config/examples/example_ShapeSys.xml"): [],
}


def assert_json_close(mine, ref, path="", rel=1e-6):
    """Equal JSON structures; floats to ``rel`` (pyhf takes sqrt in float32)."""
    if isinstance(ref, dict):
        assert isinstance(mine, dict), path
        assert list(mine) == list(ref) or set(mine) == set(ref), path
        for key in ref:
            assert_json_close(mine[key], ref[key], f"{path}.{key}", rel)
    elif isinstance(ref, list):
        assert isinstance(mine, list), path
        assert len(mine) == len(ref), path
        for i, (a, b) in enumerate(zip(mine, ref, strict=True)):
            assert_json_close(a, b, f"{path}[{i}]", rel)
    elif isinstance(ref, float) or isinstance(mine, float):
        assert math.isclose(mine, ref, rel_tol=rel, abs_tol=1e-12), (path, mine, ref)
    else:
        assert mine == ref, (path, mine, ref)


def parse_quietly(top, root, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HepprobWarning)
        return hxml.parse(top, root, **kwargs)


def test_every_top_level_file_is_covered(validation_dir):
    xml_dir = validation_dir / "xml"
    found = set()
    for file in xml_dir.glob("*/config/**/*.xml"):
        if "<Combination" in file.read_text():
            folder = file.relative_to(xml_dir).parts[0]
            found.add((folder, str(file.relative_to(xml_dir / folder))))
    # the 2-D example is covered separately: pyhf cannot read it
    assert found == {
        *TOP_LEVEL,
        ("xmlimport_input", "config/examples/example_ShapeSys2D.xml"),
    }


@pytest.mark.parametrize(("folder", "top"), sorted(TOP_LEVEL))
def test_parse_equals_pyhf_readxml(validation_dir, folder, top):
    root = validation_dir / "xml" / folder
    expected_warnings = TOP_LEVEL[(folder, top)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mine = hxml.parse(root / top, root)
    messages = [
        str(w.message) for w in caught if issubclass(w.category, HepprobWarning)
    ]
    assert len(messages) == len(expected_warnings)
    for pattern in expected_warnings:
        assert any(re.search(pattern, m) for m in messages), pattern
    ref = readxml.parse(root / top, root)
    assert_json_close(mine, ref)
    # the Expression example's POI is a Function, so no modifier defines it
    validate_workspace(mine, require_poi="Expression" not in top)


def test_stat_threshold_as_root(validation_dir, tmp_path):
    """RelErrorThreshold zeroes staterror where the total relative error is below it."""
    src = validation_dir / "xml" / "xmlimport_input"
    root = tmp_path / "xmlimport_input"
    shutil.copytree(src, root)
    channel = root / "config/examples/example_DataDriven_controlRegion.xml"
    channel.write_text(
        channel.read_text().replace(
            'RelErrorThreshold="0.05"', 'RelErrorThreshold="0.3"'
        )
    )
    top = root / "config/examples/example_DataDriven.xml"
    ref = readxml.parse(top, root)  # pyhf ignores the threshold
    mine = hxml.parse(top, root)
    pyhf_like = hxml.parse(top, root, stat_threshold=False)
    assert_json_close(pyhf_like, ref)

    # the reference rule, from pyhf's numbers: sqrt(sum sigma^2) / sum nominal
    for ch_ref, ch_mine in zip(ref["channels"], mine["channels"], strict=True):
        stat = [
            (s, m)
            for s in ch_ref["samples"]
            for m in s["modifiers"]
            if m["type"] == "staterror"
        ]
        nominal = np.sum([s["data"] for s, _ in stat], axis=0)
        rel = np.sqrt(np.sum([np.square(m["data"]) for _, m in stat], axis=0)) / nominal
        threshold = 0.3 if ch_ref["name"] == "controlRegion" else 0.05
        below = rel < threshold
        for s_ref, s_mine in zip(ch_ref["samples"], ch_mine["samples"], strict=True):
            for m_ref, m_mine in zip(
                s_ref["modifiers"], s_mine["modifiers"], strict=True
            ):
                if m_ref["type"] == "staterror":
                    want = np.where(below, 0.0, m_ref["data"])
                    np.testing.assert_allclose(m_mine["data"], want, rtol=1e-6)
    assert any(
        m["data"] == [0.0, 0.0]
        for s in mine["channels"][1]["samples"]
        for m in s["modifiers"]
        if m["type"] == "staterror"
    )


def test_two_dimensional_histograms_unrolled_as_root(validation_dir):
    root = validation_dir / "xml" / "xmlimport_input"
    spec = hxml.parse(root / "config/examples/example_ShapeSys2D.xml", root)
    with uproot.open(root / "data" / "ShapeSys2D.root") as f:
        hists = {k: f[k].values() for k in f.keys(cycle=False)}

    def root_order(values):
        # ROOT global bin = ix + (nx + 2) * iy: x runs fastest
        nx, ny = values.shape
        return [float(values[ix, iy]) for iy in range(ny) for ix in range(nx)]

    channel = spec["channels"][0]
    assert len(channel["samples"][0]["data"]) == hists["signal"].size
    assert channel["samples"][0]["data"] == root_order(hists["signal"])
    assert spec["observations"][0]["data"] == root_order(hists["data"])
    bkg1 = channel["samples"][1]
    expected = np.array(root_order(hists["bkg1ShapeError"])) * np.array(
        root_order(hists["background1"])
    )
    np.testing.assert_allclose(bkg1["modifiers"][1]["data"], expected, rtol=1e-12)


def test_dump_round_trip(validation_dir, tmp_path):
    root = validation_dir / "xml" / "multichannel_histfactory"
    spec = hxml.parse(root / "config/example.xml", root)
    out = tmp_path / "ws.json"
    hxml.dump(spec, out)
    assert json.loads(out.read_text()) == spec
    ws = Workspace(spec)
    buf = io.StringIO()
    hxml.dump(ws, buf)
    assert json.loads(buf.getvalue()) == spec
    assert ws.channels == ["channel1", "channel2"]


@pytest.fixture
def xml_copy(validation_dir, tmp_path):
    """A writable copy of one validation folder."""
    root = tmp_path / "overallsys"
    shutil.copytree(validation_dir / "xml" / "overallsys_histfactory", root)
    return root


def _edit(path: pathlib.Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


@pytest.mark.parametrize(
    ("file", "old", "new", "match"),
    [
        (
            "config/example_channel.xml",
            'Low="0.9" High="1.1"',
            'Low="0.9"',
            (
                r"example_channel\.xml: Channel\[channel1\]/Sample\[bkg\]/"
                r"OverallSys\[norm\]: missing attribute 'High'"
            ),
        ),
        (
            "config/example_channel.xml",
            'High="1.1"',
            'High="big"',
            r"OverallSys\[norm\]: attribute 'High' must be a finite number, got 'big'",
        ),
        (
            "config/example_channel.xml",
            'HistoName="bkg"',
            'HistoName="nothere"',
            r"Sample\[bkg\]: histogram 'nothere' not found in .*data\.root",
        ),
        (
            "config/example_channel.xml",
            'InputFile="./data/data.root"',
            'InputFile="./data/missing.root"',
            r"Channel\[channel1\]/Data: ROOT file .*missing\.root' not found",
        ),
        (
            "config/example_channel.xml",
            '<Data HistoName="data" HistoPath="" />',
            "",
            r"Channel\[channel1\]: channel 'channel1' has no <Data> element",
        ),
        (
            "config/example_channel.xml",
            "</Channel>",
            "</Chanel>",
            r"example_channel\.xml: malformed XML at line",
        ),
        (
            "config/example.xml",
            "./config/example_channel.xml",
            "./config/nothere.xml",
            (
                r"example\.xml: Combination/Input: channel file "
                r"'./config/nothere\.xml' not found under root_dir"
            ),
        ),
        (
            "config/example.xml",
            "<POI>SigXsecOverSM</POI>",
            "<POI>SigXsecOverSM other</POI>",
            r"Measurement\[GaussExample\]/POI: expected exactly one POI",
        ),
        (
            "config/example.xml",
            '<ParamSetting Const="True">Lumi</ParamSetting>',
            '<ParamSetting Const="True">gamma_stat_bin_0</ParamSetting>',
            r"ParamSetting: per-bin parameter 'gamma_stat_bin_0'",
        ),
        (
            "config/example.xml",
            'LumiRelErr="0.1"',
            'LumiRelErr="nan"',
            r"Measurement\[GaussExample\]: attribute 'LumiRelErr' must be a finite number",
        ),
        (
            "config/example_channel.xml",
            'NormalizeByTheory="True"',
            'NormalizeByTheory="yes"',
            r"Sample\[bkg\]: attribute 'NormalizeByTheory' must be 'True' or 'False'",
        ),
    ],
)
def test_bad_xml_names_file_and_element(xml_copy, file, old, new, match):
    _edit(xml_copy / file, old, new)
    with pytest.raises(SpecError, match=match):
        hxml.parse(xml_copy / "config/example.xml", xml_copy)


def test_unknown_elements_warn(xml_copy):
    _edit(
        xml_copy / "config/example_channel.xml",
        '<OverallSys Name="norm" Low="0.9" High="1.1"/>',
        '<OverallSys Name="norm" Low="0.9" High="1.1"/><HistoFactor Name="hf"/>',
    )
    with pytest.warns(
        HepprobWarning,
        match=r"Sample\[bkg\]/HistoFactor\[hf\]: element <HistoFactor> is not a HistFactory",
    ):
        spec = hxml.parse(xml_copy / "config/example.xml", xml_copy)
    assert [m["type"] for m in spec["channels"][0]["samples"][1]["modifiers"]] == [
        "lumi",
        "normsys",
    ]


def test_shapesys_gaussian_constraint_warns(validation_dir, tmp_path):
    root = tmp_path / "mb"
    shutil.copytree(validation_dir / "xml" / "multibin_histfactory", root)
    _edit(
        root / "config/example_channel.xml",
        'ConstraintType="Poisson"',
        'ConstraintType="Gaussian"',
    )
    with pytest.warns(
        HepprobWarning,
        match=r"ShapeSys\[uncorrshape\]: ShapeSys ConstraintType='Gaussian'",
    ):
        spec = hxml.parse(root / "config/example.xml", root)
    assert_json_close(
        spec,
        parse_quietly(
            validation_dir / "xml/multibin_histfactory/config/example.xml",
            validation_dir / "xml/multibin_histfactory",
        ),
    )


@pytest.mark.parametrize(
    ("folder", "top"),
    [
        ("multibin_histfactory", "config/example.xml"),
        ("multichannel_histfactory", "config/example.xml"),
        ("xmlimport_input", "config/examples/example_DataDriven.xml"),
    ],
)
def test_imported_workspace_model_matches_pyhf(validation_dir, folder, top):
    """From XML to logpdf: hepprob's import + Model against pyhf's."""
    root = validation_dir / "xml" / folder
    ws = Workspace(parse_quietly(root / top, root))
    pws = pyhf.Workspace(readxml.parse(root / top, root))
    model, pmodel = ws.model(), pws.model()
    assert model.config.par_names == pmodel.config.par_names
    data, pdata = ws.data(model), pws.data(pmodel)
    np.testing.assert_allclose(data, pdata, rtol=1e-6)
    pars = np.asarray(pmodel.config.suggested_init(), dtype=float) * 1.1
    # same data for both: the import's float64 staterror differs from pyhf's
    # float32 sqrt at 1e-8, so feed pyhf's numbers to both models
    mine = float(np.asarray(model.logpdf(pars, np.asarray(pdata)))[0])
    ref = float(pmodel.logpdf(pars, pdata)[0])
    rel = 1e-6 if "DataDriven" in top else 1e-10
    assert mine == pytest.approx(ref, rel=rel)


def test_without_uproot_says_how_to_install(validation_dir, monkeypatch):
    root = validation_dir / "xml" / "multibin_histfactory"
    monkeypatch.setitem(sys.modules, "uproot", None)
    with pytest.raises(
        ImportError, match=r'uproot is needed .*pip install "hepprob\[io\]"'
    ):
        hxml.parse(root / "config/example.xml", root)


def test_warnings_point_at_the_caller(validation_dir):
    root = validation_dir / "xml" / "xmlimport_input"
    with pytest.warns(HepprobWarning) as record:
        hxml.parse(root / "config/example.xml", root)
    assert len(record) == 3
    assert {w.filename for w in record} == {__file__}
