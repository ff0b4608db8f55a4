"""The hepprob CLI against pyhf's CLI on the same files; bad input gives one line + exit 1."""

from __future__ import annotations

import json
import pathlib

import pyhf
import pyhf.cli
import pyhf.readxml
import pyhf.utils
import pytest
from click.testing import CliRunner

from hepprob.cli import cli

DATA = pathlib.Path(__file__).parent / "data"
WS = DATA / "good_workspace_twochannel.json"


def run(args, runner=None):
    runner = runner or CliRunner()
    return runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def pyhf_cls():
    pyhf.set_backend("numpy")
    out = CliRunner().invoke(
        pyhf.cli.cli, ["cls", str(WS), "--test-stat", "q"], catch_exceptions=False
    )
    return json.loads(out.output)


def test_cls_matches_pyhf_cli(pyhf_cls):
    out = run(["cls", WS, "--poi-value", "1.0", "--test-stat", "q"])
    assert out.exit_code == 0, out.output
    got = json.loads(out.output)
    assert got["CLs_obs"] == pytest.approx(pyhf_cls["CLs_obs"], abs=1e-4)
    assert got["CLs_exp"] == pytest.approx(pyhf_cls["CLs_exp"], abs=1e-4)


def test_inspect_fit_and_upperlimit():
    out = run(["inspect", WS])
    assert out.exit_code == 0, out.output
    summary = json.loads(out.output)
    model = pyhf.Workspace(json.loads(WS.read_text())).model()
    assert [p["name"] for p in summary["parameters"]] == model.config.par_names
    assert summary["channels"] == model.config.channel_nbins
    out = run(["fit", WS])
    assert out.exit_code == 0, out.output
    fitted = json.loads(out.output)
    ws = pyhf.Workspace(json.loads(WS.read_text()))
    model = ws.model()
    ref, twice_nll = pyhf.infer.mle.fit(ws.data(model), model, return_fitted_val=True)
    assert fitted["twice_nll"] == pytest.approx(float(twice_nll), rel=1e-6)
    poi = model.config.poi_index
    assert fitted["bestfit"][poi] == pytest.approx(float(ref[poi]), abs=1e-3)
    out = run(["upperlimit", DATA / "good_workspace_simple.json"])
    assert out.exit_code == 0, out.output
    limits = json.loads(out.output)
    assert len(limits["exp_limits"]) == 5
    assert limits["exp_limits"] == sorted(limits["exp_limits"])


def test_xml2json_and_patchset(tmp_path, validation_dir):
    folder = validation_dir / "xml" / "multichannel_histfactory"
    target = tmp_path / "ws.json"
    out = CliRunner().invoke(
        cli,
        [
            "xml2json",
            str(folder / "config" / "example.xml"),
            "--basedir",
            str(folder),
            "--output-file",
            str(target),
        ],
        catch_exceptions=False,
    )
    assert out.exit_code == 0, out.output
    spec = json.loads(target.read_text())
    reference = pyhf.readxml.parse(folder / "config" / "example.xml", folder)
    assert sorted(c["name"] for c in spec["channels"]) == sorted(
        c["name"] for c in reference["channels"]
    )
    patchset = {
        "metadata": {
            "name": "demo",
            "description": "signal strengths",
            "digests": {"sha256": pyhf.utils.digest(json.loads(WS.read_text()))},
            "labels": ["scale"],
            "references": {"hepdata": "ins0000000"},
        },
        "patches": [
            {
                "metadata": {"name": "double", "values": [2.0]},
                "patch": [
                    {
                        "op": "replace",
                        "path": "/measurements/0/name",
                        "value": "doubled",
                    }
                ],
            }
        ],
        "version": "1.0.0",
    }
    ps_file = tmp_path / "patchset.json"
    ps_file.write_text(json.dumps(patchset))
    out = run(["patchset", "inspect", ps_file])
    assert out.exit_code == 0, out.output
    assert "double" in out.output
    out = run(["patchset", "apply", WS, ps_file, "--name", "double"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["measurements"][0]["name"] == "doubled"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["cls", DATA / "missing.json"], "cannot read"),
        (["cls", DATA / "bad_bin_mismatch.json"], "channels"),
        (["fit", DATA / "bad_nan_observation.json"], "observations"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(args, fragment, tmp_path):
    out = run(args)
    assert out.exit_code == 1
    lines = out.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("hepprob: error:")
    assert fragment in lines[0]
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    out = run(["inspect", bad])
    assert out.exit_code == 1
    assert "not valid JSON" in out.output
