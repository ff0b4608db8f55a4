"""The hepprob CLI against pyhf's CLI on the same files; bad input gives one line + exit 1."""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys
import warnings

import numpy as np
import pyhf
import pyhf.cli
import pyhf.readxml
import pyhf.utils
import pytest
import scipy.stats
from click.testing import CliRunner

from hepprob.cli import cli

DATA = pathlib.Path(__file__).parent / "data"
WS = DATA / "good_workspace_twochannel.json"
SIMPLE = DATA / "good_workspace_simple.json"


def run(args, stdin=None):
    return CliRunner().invoke(
        cli, [str(a) for a in args], input=stdin, catch_exceptions=False
    )


def pyhf_run(args, stdin=None):
    pyhf.set_backend("numpy")
    out = CliRunner().invoke(
        pyhf.cli.cli, [str(a) for a in args], input=stdin, catch_exceptions=False
    )
    assert out.exit_code == 0, out.output
    return out.output


def strict_json(text):
    """JSON as strict parsers read it: NaN or Infinity fail the test."""
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))


def pyhf_json(args, stdin=None):
    text = pyhf_run(args, stdin)
    return json.loads(text[text.index("{") :])  # pyhf may log a line first


@pytest.fixture(scope="module")
def patch_file(tmp_path_factory):
    """A JSON patch doubling the signal of the first channel."""
    spec = json.loads(WS.read_text())
    signal = spec["channels"][0]["samples"][0]
    patch = [
        {
            "op": "replace",
            "path": "/channels/0/samples/0/data",
            "value": [2 * v for v in signal["data"]],
        }
    ]
    path = tmp_path_factory.mktemp("patch") / "patch.json"
    path.write_text(json.dumps(patch))
    return path


# -- the numbers: cls, fit, upperlimit, discovery ---------------------------------


def test_cls_matches_pyhf_cli_with_pyhf_options(patch_file):
    ref = pyhf_json(["cls", WS, "--test-stat", "q"])
    out = run(["cls", WS, "--test-poi", "1.0", "--test-stat", "q"])
    assert out.exit_code == 0, out.output
    got = strict_json(out.output)
    assert got["CLs_obs"] == pytest.approx(ref["CLs_obs"], abs=1e-4)
    assert got["CLs_exp"] == pytest.approx(ref["CLs_exp"], abs=1e-4)
    # the workspace on stdin, pyhf's calctype spelling, -p for a patch (pyhf's
    # own -p leaves the file open: its Python API is the reference here)
    ws = pyhf.Workspace(json.loads(WS.read_text()))
    model = ws.model(patches=[json.loads(patch_file.read_text())])
    ref_obs, ref_exp = pyhf.infer.hypotest(
        0.5, ws.data(model), model, test_stat="q", return_expected_set=True
    )
    args = ["cls", "--test-poi", "0.5", "--calctype", "asymptotics", "-p", patch_file]
    args += ["--test-stat", "q"]
    out = run(args, stdin=WS.read_text())
    assert out.exit_code == 0, out.output
    got = strict_json(out.output)
    assert got["CLs_obs"] == pytest.approx(float(ref_obs), abs=1e-4)
    assert got["CLs_exp"] == pytest.approx([float(e) for e in ref_exp], abs=1e-4)
    # --pretty: the same numbers in a table for people
    out = run([*args, "--pretty"], stdin=WS.read_text())
    assert out.exit_code == 0, out.output
    assert re.search(rf"^observed +{got['CLs_obs']:.4g}$", out.output, re.MULTILINE)
    assert "expected median" in out.output
    assert "CLs at mu = 0.5" in out.output


def test_fit_json_is_pyhfs_mle_parameters():
    ref = pyhf_json(["fit", WS, "--value"])
    out = run(["fit", WS, "--value"])
    assert out.exit_code == 0, out.output
    got = strict_json(out.output)
    assert set(got["mle_parameters"]) == set(ref["mle_parameters"])
    for name, values in ref["mle_parameters"].items():
        assert got["mle_parameters"][name] == pytest.approx(values, abs=2e-3), name
    assert got["twice_nll"] == pytest.approx(ref["twice_nll"], rel=1e-6)
    # Hesse errors of the same fit, against pyhf's (numpy backend, exact Hessian)
    ws = pyhf.Workspace(json.loads(WS.read_text()))
    model = ws.model()
    pyhf.set_backend("numpy", pyhf.optimize.minuit_optimizer(tolerance=1e-6))
    try:
        ref_pars = pyhf.infer.mle.fit(ws.data(model), model, return_uncertainties=True)
    finally:
        pyhf.set_backend("numpy", "scipy")
    for name in ref["mle_parameters"]:
        sl = model.config.par_slice(name)
        want = np.asarray(ref_pars)[sl, 1]
        free = want > 0
        got_err = np.asarray(got["mle_uncertainties"][name])
        np.testing.assert_allclose(got_err[free], want[free], rtol=2e-2, err_msg=name)
    out = run(["fit", WS])
    assert "twice_nll" not in strict_json(out.output)  # as pyhf: only with --value
    out = run(["fit", WS, "--pretty"])
    assert out.exit_code == 0, out.output
    assert out.output.splitlines()[0].startswith("maximum-likelihood fit")
    assert "staterror_SR[0]" in out.output


def test_upperlimit_and_discovery_match_pyhf():
    spec = json.loads(SIMPLE.read_text())
    ws = pyhf.Workspace(spec)
    model = ws.model()
    data = ws.data(model)
    out = run(["upperlimit", SIMPLE])
    assert out.exit_code == 0, out.output
    limits = strict_json(out.output)
    pyhf.set_backend("numpy")
    obs, exp = pyhf.infer.intervals.upper_limits.upper_limit(
        data, model, scan=np.linspace(0.05, 5.0, 100)
    )
    assert limits["obs_limit"] == pytest.approx(float(obs), rel=1e-2)
    assert limits["exp_limits"] == pytest.approx([float(e) for e in exp], rel=1e-2)
    out = run(["discovery", SIMPLE])
    assert out.exit_code == 0, out.output
    got = strict_json(out.output)
    p0, p0_exp = pyhf.infer.hypotest(
        0.0, data, model, test_stat="q0", return_expected=True
    )
    assert got["p0_obs"] == pytest.approx(float(p0), abs=1e-4)
    assert got["p0_exp"] == pytest.approx(float(p0_exp), abs=1e-4)
    assert got["Z_obs"] == pytest.approx(scipy.stats.norm.isf(float(p0)), abs=1e-3)
    out = run(["upperlimit", SIMPLE, "--pretty"])
    assert "95% CL upper limit on mu" in out.output
    assert f"{limits['obs_limit']:.4g}" in out.output


def test_sample_writes_strict_json_with_null_r_hat():
    out = run(
        ["sample", SIMPLE, "--num-warmup", "150", "--num-samples", "150", "--seed", "2"]
    )
    assert out.exit_code == 0, out.output
    table = strict_json(out.output)
    assert table["mu"]["r_hat"] is None  # one chain: no R-hat (was NaN)
    assert table["mu"]["ess_bulk"] > 20
    # flat priors: the posterior mean of mu lies near the maximum-likelihood value
    ws = pyhf.Workspace(json.loads(SIMPLE.read_text()))
    model = ws.model()
    pyhf.set_backend("numpy")
    best = pyhf.infer.mle.fit(ws.data(model), model)[model.config.poi_index]
    assert abs(table["mu"]["mean"] - float(best)) < 1.5 * table["mu"]["sd"]


# -- the workspace commands: inspect, prune, rename, combine, digest, sort --------


def test_inspect_json_is_pyhfs_and_the_table_has_its_rows(tmp_path):
    ours, theirs = tmp_path / "ours.json", tmp_path / "theirs.json"
    pyhf_run(["inspect", WS, "--output-file", theirs])
    out = run(["inspect", WS, "--output-file", ours])
    assert out.exit_code == 0, out.output
    assert json.loads(ours.read_text()) == json.loads(theirs.read_text())
    rows = [line.split() for line in out.output.splitlines()]
    for name, constraint, kinds in json.loads(theirs.read_text())["systematics"]:
        assert [name, constraint, ",".join(kinds)] in rows
    assert ["(*)", "nominal", "mu", "mu"] in rows
    assert ["CR", "2"] in rows
    out = run(["inspect", "--json"], stdin=WS.read_text())
    assert strict_json(out.output) == json.loads(theirs.read_text())


def test_prune_rename_sort_digest_combine_as_pyhf(tmp_path):
    for args in (
        ["prune", WS, "-m", "jes", "-s", "wjets"],
        ["prune", WS, "-t", "normfactor", "-c", "CR"],
        ["rename", WS, "-m", "jes", "JES", "-c", "CR", "control", "-s", "ttbar", "tt"],
        ["rename", WS, "--measurement", "nominal", "main"],
        ["sort", WS],
    ):
        out = run(args)
        assert out.exit_code == 0, out.output
        ref = pyhf.Workspace.sorted(pyhf.Workspace(pyhf_json(args)))
        got = pyhf.Workspace.sorted(pyhf.Workspace(strict_json(out.output)))
        assert got == ref, args
    assert strict_json(run(["sort", WS]).output) == pyhf_json(["sort", WS])
    for args in (["digest", WS], ["digest", WS, "-a", "md5", "-a", "sha256"]):
        assert run(args).output == pyhf_run(args)
    assert strict_json(run(["digest", WS, "-j"]).output) == pyhf_json(
        ["digest", WS, "-j"]
    )
    other = tmp_path / "other.json"
    # (without lumi: hepprob checks every measurement's lumi settings at once)
    second = pyhf.Workspace(json.loads(SIMPLE.read_text())).prune(modifiers=["lumi"])
    second = second.rename(
        channels={"SR": "SR2"},
        modifiers={"staterror_SR": "stat_SR2"},
        measurements={"meas": "m2"},
    )
    other.write_text(json.dumps(second))
    for join in ("none", "outer"):
        args = ["combine", WS, other, "--join", join]
        out = run(args)
        assert out.exit_code == 0, out.output
        ref = pyhf.Workspace.sorted(pyhf.Workspace(pyhf_json(args)))
        assert pyhf.Workspace.sorted(pyhf.Workspace(strict_json(out.output))) == ref
    out = run(["combine", WS, WS])
    assert out.exit_code == 1
    assert out.output.startswith("hepprob: error:")


def test_xml2json_and_patchset(tmp_path, validation_dir):
    folder = validation_dir / "xml" / "multichannel_histfactory"
    target = tmp_path / "ws.json"
    out = run(
        [
            "xml2json",
            folder / "config" / "example.xml",
            "--basedir",
            folder,
            "--output-file",
            target,
        ]
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


# -- errors, warnings, --debug -------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["cls", DATA / "missing.json"], "cannot read"),
        (["cls", DATA / "bad_bin_mismatch.json"], "channels"),
        (["fit", DATA / "bad_nan_observation.json"], "observations"),
        (["cls", WS, "--bogus"], "No such option '--bogus'"),
        (["cls", WS, "--test-stat", "t"], "'t' is not one of 'q', 'qtilde'"),
        (["nosuchcommand"], "No such command 'nosuchcommand'"),
        (["rename", WS, "-m", "jes"], "requires 2 arguments"),
        (["inspect", WS, "--measurement", "nope"], "no measurement named 'nope'"),
    ],
)
def test_errors_are_one_line_and_exit_1(args, fragment):
    out = run(args)
    assert out.exit_code == 1
    lines = out.output.strip().splitlines()
    assert len(lines) == 1, out.output
    assert lines[0].startswith("hepprob: error:")
    assert fragment in lines[0]


def test_bad_json_file_and_empty_stdin(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    out = run(["inspect", bad])
    assert out.exit_code == 1
    assert "not valid JSON" in out.output
    out = run(["cls"], stdin="")
    assert out.exit_code == 1
    assert out.output.strip() == (
        "hepprob: error: no workspace given: pass a file, or pipe one in "
        "(cat ws.json | hepprob ...)"
    )


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback_before_or_after_the_command(where):
    from hepprob.errors import HepprobError

    args = ["cls", DATA / "missing.json"]
    args = ["--debug", *args] if where == "before" else [*args, "--debug"]
    out = CliRunner().invoke(cli, [str(a) for a in args])
    assert isinstance(out.exception, HepprobError)
    assert "cannot read" in str(out.exception)


def test_warnings_print_as_one_hepprob_line(monkeypatch):
    from hepprob import infer
    from hepprob.errors import HepprobWarning

    real = infer.hypotest

    def noisy(*args, **kwargs):
        warnings.warn("the POI sits\n at its bound", HepprobWarning, stacklevel=2)
        warnings.warn("a third-party deprecation", FutureWarning, stacklevel=2)
        return real(*args, **kwargs)

    monkeypatch.setattr(infer, "hypotest", noisy)
    out = run(["cls", SIMPLE])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0] == "hepprob: warning: the POI sits at its bound"
    assert "deprecation" not in out.output  # other packages' warnings: --debug only
    assert strict_json("\n".join(lines[1:]))["CLs_obs"] > 0
    out = run(["--debug", "cls", SIMPLE])
    assert "FutureWarning" in out.output


def test_python_dash_m_hepprob_is_the_same_command():
    env = {**os.environ, "HEPPROB_COMPILATION_CACHE": "off"}
    out = subprocess.run(
        [sys.executable, "-m", "hepprob", "inspect", "--json", str(WS)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == strict_json(run(["inspect", "--json", WS]).output)
    out = subprocess.run(
        [sys.executable, "-m", "hepprob", "cls", "--bogus"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert out.returncode == 1
    assert out.stderr.strip() == "hepprob: error: No such option '--bogus'."
