"""Format detection, load_workspace and convert across pyhf JSON, HS3, datacards and XML.

References: pyhf (``pyhf.Workspace``, ``pyhf.readxml``) on the converted files,
and the likelihood written by hand for the $MASS / shape? card.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pyhf
import pyhf.readxml
import pytest
from scipy import stats

from hepprob.errors import SpecError
from hepprob.histfactory import Workspace
from hepprob.histfactory.xml_export import th1
from hepprob.io import ConfiguredWorkspace, convert, detect_format, load_workspace

DATA = pathlib.Path(__file__).parents[1] / "data"
WS = DATA / "good_workspace_twochannel.json"
WS1 = DATA / "good_workspace_simple.json"  # one measurement: XML records all of it
CARD = "imax 1\njmax 1\nkmax 1\nbin a\nobservation 5\nbin a a\nprocess s b\nprocess 0 1\nrate 1 4\nk lnN 1.1 -\n"


def test_detect_each_format(tmp_path):
    (tmp_path / "ws.json").write_text(WS.read_text())
    (tmp_path / "h.json").write_text(json.dumps(Workspace.from_file(WS).to_hs3()))
    (tmp_path / "c.txt").write_text(CARD)
    top = Workspace.from_file(WS1).to_xml(tmp_path / "xml")
    assert detect_format(tmp_path / "ws.json") == "pyhf"
    assert detect_format(tmp_path / "h.json") == "hs3"
    assert detect_format(tmp_path / "c.txt") == "datacard"
    assert detect_format(top) == "xml"
    (tmp_path / "p.json").write_text('{"patches": []}')
    with pytest.raises(
        SpecError, match=r"p.json: a JSON file that is neither a pyhf workspace"
    ):
        detect_format(tmp_path / "p.json")
    with pytest.raises(SpecError, match=r"nope.txt: cannot read"):
        detect_format(tmp_path / "nope.txt")


def test_load_workspace_gives_the_same_model_from_every_format(tmp_path):
    ref = Workspace.from_file(WS1)
    hs3 = tmp_path / "m.hs3.json"
    ref.to_hs3(path=hs3)
    top = ref.to_xml(tmp_path / "xml")
    model = ref.model()
    pars = np.array(model.config.suggested_init()) + 0.1
    want = model.logpdf(pars, ref.data(model))
    for path, fmt in ((WS1, None), (hs3, None), (top, None), (top, "xml")):
        ws = load_workspace(path, fmt)
        m = ws.model()
        assert m.config.par_names == model.config.par_names
        np.testing.assert_allclose(m.logpdf(pars, ws.data(m)), want, rtol=1e-12)
    with pytest.raises(SpecError, match="unknown format 'root'"):
        load_workspace(WS, "root")


def test_convert_between_formats(tmp_path):
    hs3 = convert(WS, tmp_path / "a.hs3.json")
    back = Workspace.from_file(convert(hs3, tmp_path / "b.json"))
    ref = Workspace.from_file(WS)
    for meas in ref.measurement_names:
        a, b = ref.model(measurement_name=meas), back.model(measurement_name=meas)
        assert (b.config.par_names, b.config.suggested_bounds()) == (
            a.config.par_names,
            a.config.suggested_bounds(),
        )
        assert (b.config.suggested_init(), b.config.suggested_fixed()) == (
            a.config.suggested_init(),
            a.config.suggested_fixed(),
        )
    top = convert(convert(WS1, tmp_path / "c.hs3.json"), tmp_path / "xml")
    spec = pyhf.readxml.parse(str(top), str(top.parent))
    ref, got = Workspace.from_file(WS1), pyhf.Workspace(spec)
    m1, m2 = ref.model(), got.model()
    pars = np.array(m1.config.suggested_init()) - 0.05
    np.testing.assert_allclose(
        m2.logpdf(pars, got.data(m2)), m1.logpdf(pars, ref.data(m1)), rtol=1e-10
    )
    with pytest.raises(SpecError, match="cannot tell the output format"):
        convert(WS, tmp_path / "x.yaml")


def test_datacard_export_is_refused_but_hs3_of_the_json_part_is_not_silent(tmp_path):
    card = tmp_path / "c.txt"
    card.write_text(CARD)
    ws = load_workspace(card)
    assert isinstance(ws, ConfiguredWorkspace)
    assert not ws.json_exportable
    with pytest.raises(
        SpecError, match=r"c.txt: cannot write pyhf JSON: .*normsys interpolation"
    ):
        ws.to_dict()
    with pytest.raises(SpecError, match="HS3 has no interpolation matching normsys"):
        ws.to_hs3()
    with pytest.raises(SpecError, match="cannot write HistFactory XML"):
        convert(card, tmp_path / "xml")


def test_mass_keyword_and_shape_question_mark(tmp_path):
    """$MASS in the shapes line; shape? is a shape where templates exist, lnN elsewhere."""
    sig, up, down, bkg, data = (
        [2.0, 3.0],
        [2.4, 3.0],
        [1.7, 3.1],
        [10.0, 12.0],
        [13.0, 14.0],
    )
    with __import__("uproot").recreate(tmp_path / "m125.root") as f:
        for name, counts in [
            ("sig", sig),
            ("sig_kUp", up),
            ("sig_kDown", down),
            ("bkg", bkg),
            ("data_obs", data),
        ]:
            f[name] = th1(name, counts)
    card = tmp_path / "card.txt"
    card.write_text(
        "imax 1\njmax 1\nkmax 1\nshapes * * m$MASS.root $PROCESS $PROCESS_$SYSTEMATIC\n"
        "bin a\nobservation 27\nbin a a\nprocess sig bkg\nprocess 0 1\nrate -1 -1\nk shape? 1 1.2\n"
    )
    with pytest.raises(SpecError, match=r"card.txt:4: .* uses \$MASS"):
        load_workspace(card)
    ws = load_workspace(card, mass=125)
    model = ws.model()
    types = {
        m["name"] + "/" + m["type"]
        for c in ws.workspace.to_dict()["channels"]
        for s in c["samples"]
        for m in s["modifiers"]
    }
    assert {"k/histosys", "k/normsys"} <= types
    s_, u_, d_ = np.array(sig), np.array(up), np.array(down)
    for k in (-1.3, 0.4):
        pars = (
            np.array([k, 1.1])
            if model.config.par_names == ["k", "r"]
            else np.array([1.1, k])
        )
        h, lo = u_ * s_.sum() / u_.sum(), d_ * s_.sum() / d_.sum()
        x = k
        step = np.sign(x) if abs(x) >= 1 else 0.125 * x * (3 * x**4 - 10 * x**2 + 15)
        shape = s_ + 0.5 * x * ((h - lo) + (h + lo - 2 * s_) * step)
        lam_hi, lam_lo = np.log(u_.sum() / s_.sum()), -np.log(d_.sum() / s_.sum())
        y = 2 * k
        smooth = np.sign(y) if abs(y) >= 1 else 0.125 * y * (3 * y**4 - 10 * y**2 + 15)
        norm = np.exp(k * (0.5 * (lam_hi + lam_lo) + 0.5 * (lam_hi - lam_lo) * smooth))
        mu = 1.1 * norm * shape + np.array(bkg) * 1.2**k
        want = stats.poisson.logpmf(data, mu).sum() + stats.norm.logpdf(k)
        np.testing.assert_allclose(
            model.logpdf(pars, ws.data(model))[0], want, rtol=1e-11
        )
