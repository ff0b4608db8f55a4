"""The CLI reads datacards and HS3 like pyhf JSON (format from the content or --format),
converts between formats, and answers bad input with one line and exit 1.

References: the same likelihood through the library (hepprob.infer on the
pyhf JSON it came from), pyhf's CLI on the converted pyhf JSON, and pyhf.readxml
on the XML that ``hepprob convert`` writes.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pyhf
import pyhf.readxml
import pytest
from click.testing import CliRunner

from hepprob.cli import cli
from hepprob.histfactory import Workspace

DATA = pathlib.Path(__file__).parents[1] / "data"
WS = DATA / "good_workspace_twochannel.json"
CARD = """\
imax 1
jmax 1
kmax 2
bin sr
observation 12
bin sr sr
process sig bkg
process 0 1
rate 4.0 9.0
lumi lnN 1.05 1.05
bkg_norm lnN - 0.9/1.15
"""


def run(args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def card(tmp_path):
    path = tmp_path / "card.txt"
    path.write_text(CARD)
    return path


@pytest.fixture
def hs3_file(tmp_path):
    path = tmp_path / "ws.hs3.json"
    path.write_text(json.dumps(Workspace.from_file(WS).to_hs3()))
    return path


def test_inspect_datacard(card):
    out = run(["inspect", card, "--json"])
    assert out.exit_code == 0, out.output
    summary = json.loads(out.output)
    assert "sr" in json.dumps(summary)
    assert "bkg_norm" in json.dumps(summary)


def test_fit_hs3_equals_fit_of_the_pyhf_json(hs3_file):
    got = run(["fit", hs3_file])
    want = run(["fit", WS])
    assert got.exit_code == 0, got.output
    a, b = json.loads(got.output), json.loads(want.output)
    assert_same(a, b)


def assert_same(a, b):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same(a[key], b[key])
    elif isinstance(a, list) and a and isinstance(a[0], (dict, str)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
    elif isinstance(a, str) or a is None:
        assert a == b
    else:
        np.testing.assert_allclose(
            np.asarray(a, dtype=float), np.asarray(b, dtype=float), atol=1e-6
        )


def test_cls_datacard_equals_library(card):
    from hepprob import infer
    from hepprob.io import read_datacard

    out = run(["cls", card, "--poi-value", "1.5"])
    assert out.exit_code == 0, out.output
    got = json.loads(out.output)
    ws = read_datacard(card)
    model = ws.model()
    obs, exp = infer.hypotest(1.5, ws.data(model), model, return_expected_set=True)
    assert got["CLs_obs"] == pytest.approx(float(obs), abs=1e-8)
    assert got["CLs_exp"] == pytest.approx([float(e) for e in exp], abs=1e-8)


def test_format_option_overrides_detection(card, tmp_path):
    renamed = tmp_path / "card.json"  # misleading extension: content decides
    renamed.write_text(CARD)
    out = run(["inspect", renamed, "--json"])
    assert out.exit_code == 0, out.output
    out = run(["inspect", "--format", "hs3", card])
    assert out.exit_code == 1
    assert out.output.startswith("hepprob: error: ")
    assert out.output.count("\n") == 1


def test_convert_pyhf_hs3_xml_round_trip(tmp_path):
    hs3 = tmp_path / "a.hs3.json"
    out = run(["convert", WS, hs3])
    assert out.exit_code == 0, out.output
    back = tmp_path / "b.json"
    assert run(["convert", hs3, back]).exit_code == 0
    assert (
        Workspace.from_file(back).model().config.par_names
        == Workspace.from_file(WS).model().config.par_names
    )
    xml_dir = tmp_path / "xml"
    out = run(["convert", hs3, xml_dir, "--to", "xml"])
    assert out.exit_code == 0, out.output
    spec = pyhf.readxml.parse(str(xml_dir / "FitConfig.xml"), str(xml_dir))
    ref = Workspace.from_file(WS)
    m_ref, m_xml = ref.model(), pyhf.Workspace(spec).model()
    pars = np.array(m_ref.config.suggested_init()) + 0.1
    np.testing.assert_allclose(
        m_xml.logpdf(pars, pyhf.Workspace(spec).data(m_xml)),
        m_ref.logpdf(pars, ref.data(m_ref)),
        rtol=1e-10,
    )


def test_json2xml_writes_fitconfig(tmp_path):
    out = run(["json2xml", WS, "--output-dir", tmp_path / "out"])
    assert out.exit_code == 0, out.output
    assert (tmp_path / "out" / "FitConfig.xml").is_file()
    # one warning line (the second measurement's normfactor bounds), then the JSON
    assert json.loads(out.output.splitlines()[-1])["written"].endswith("FitConfig.xml")


def test_convert_refuses_datacard_to_pyhf_json(card, tmp_path):
    out = run(["convert", card, tmp_path / "x.json"])
    assert out.exit_code == 1
    assert "cannot write pyhf JSON" in out.output
    assert "lnN_smooth" in out.output
    assert out.output.count("\n") == 1


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [
        (
            "bad.txt",
            CARD.replace("rate 4.0 9.0", "rate 4.0"),
            r"bad.txt:9: the rate line has 1 columns",
        ),
        (
            "bad.json",
            '{"distributions": [{"name": "c", "type": "poisson_dist"}], "likelihoods": []}',
            r"bad.json: .*",
        ),
        (
            "bad.hs3.json",
            json.dumps(
                {
                    "distributions": [],
                    "likelihoods": [
                        {"name": "l", "distributions": ["x"], "data": ["d"]}
                    ],
                }
            ),
            r"bad.hs3.json: likelihoods\[0\]\.distributions\[0\]: refers to distribution 'x'",
        ),
        ("what.txt", "hello world\n", r"cannot tell the format"),
    ],
)
def test_bad_input_is_one_line(tmp_path, name, text, match):
    path = tmp_path / name
    path.write_text(text)
    out = run(["fit", path])
    assert out.exit_code == 1
    assert out.output.count("\n") == 1
    assert out.output.startswith("hepprob: error: ")
    import re

    assert re.search(match, out.output), out.output
