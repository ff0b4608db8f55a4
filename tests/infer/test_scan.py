"""Patchset scans (hepprob.infer.scan_patchset) against pyhf's hypotest per patch.

One generated patchset (tests/published_like.py) whose patches differ in
shape (one adds a signal with its own extra parameters in a single channel),
so the padded common structure is exercised; every patch's CLs and expected
band agree with pyhf 0.7's asymptotic hypotest on the patched workspace, run
here and on a two-worker Dask LocalCluster (with a failing task retried, and
one that keeps failing reported).
"""

from __future__ import annotations

import copy
import pathlib
import sys

import numpy as np
import pyhf
import pytest

from hepprob.errors import HepprobWarning, ParameterError
from hepprob.infer import _dask, scan_patchset

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import published_like

SIZE, SEED = "tiny", 4


@pytest.fixture(scope="module")
def grid():
    spec = published_like.workspace(SIZE, seed=SEED)
    ps = published_like.patchset(spec, 3, SIZE, seed=SEED)
    odd = copy.deepcopy(ps["patches"][0])
    odd["metadata"] = {"name": "odd", "values": [0.0, 0.0]}
    odd["patch"] = odd["patch"][-1:]  # signal in the signal region only ...
    mods = odd["patch"][0]["value"]["modifiers"]
    mods.append(  # ... and parameters of its own
        {"name": "sys_odd", "type": "normsys", "data": {"hi": 1.2, "lo": 0.85}}
    )
    nbins = len(odd["patch"][0]["value"]["data"])
    mods.append({"name": "shape_odd", "type": "shapesys", "data": [0.4] * nbins})
    ps["patches"].append(odd)
    return spec, ps


@pytest.fixture(scope="module")
def reference(grid):
    spec, ps = grid
    ws = pyhf.Workspace(spec)
    out = []
    for p in ps["patches"]:
        model = ws.model(patches=[p["patch"]])
        cls, band = pyhf.infer.hypotest(
            1.0, ws.data(model), model, return_expected_set=True
        )
        out.append((float(cls), np.asarray(band, dtype=float)))
    return out


@pytest.fixture(scope="module")
def local_scan(grid):
    spec, ps = grid
    return scan_patchset(spec, ps, poi_value=1.0, progress=False)


def test_scan_matches_pyhf_hypotest_per_patch(grid, local_scan, reference):
    _, ps = grid
    assert local_scan.names == [p["metadata"]["name"] for p in ps["patches"]]
    assert np.all(local_scan.converged)
    for i, (cls, band) in enumerate(reference):
        assert local_scan.cls_obs[i] == pytest.approx(cls, abs=1e-4)
        np.testing.assert_allclose(local_scan.cls_exp[i], band, atol=1e-4)
    rows = local_scan.to_dict()["patches"]
    assert rows[3]["name"] == "odd"
    assert rows[3]["CLs_exp"] == pytest.approx(list(reference[3][1]), abs=1e-4)


def test_scan_subset_and_bad_input(grid, local_scan):
    spec, ps = grid
    # the same padded structure (odd's parameters included): no new program
    first = ps["patches"][0]["metadata"]["name"]
    sub = scan_patchset(spec, ps, patches=["odd", first], progress=False)
    assert sub.names == ["odd", first]
    np.testing.assert_allclose(sub.cls_obs, local_scan.cls_obs[[3, 0]], atol=1e-8)
    with pytest.raises(ParameterError, match="no patches named"):
        scan_patchset(spec, ps, patches=["nope"])
    with pytest.raises(ParameterError, match="test_stat must be"):
        scan_patchset(spec, ps, test_stat="q0")
    with pytest.raises(ParameterError, match="outside the POI bounds"):
        scan_patchset(spec, ps, poi_value=-1.0)


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def test_dask_scan_matches_local(grid, local_scan, dask_client):
    spec, ps = grid
    res = scan_patchset(spec, ps, client=dask_client, chunk_size=2, progress=False)
    assert res.names == local_scan.names
    np.testing.assert_allclose(res.cls_obs, local_scan.cls_obs, rtol=1e-10)
    np.testing.assert_allclose(res.cls_exp, local_scan.cls_exp, rtol=1e-10)
    assert not res.failed


def test_dask_failed_task_is_retried_then_reported(
    grid, local_scan, dask_client, monkeypatch, tmp_path
):
    spec, ps = grid
    marker = tmp_path / "failed_once"  # tasks are serialised: state on disk
    real = _dask._task

    def flaky(payload, rows):
        if rows["data"].shape[0] == 1 and not marker.exists():  # last chunk, once
            marker.touch()
            raise RuntimeError("worker lost")
        return real(payload, rows)

    monkeypatch.setattr(_dask, "_task", flaky)
    res = scan_patchset(spec, ps, client=dask_client, chunk_size=3, progress=False)
    assert res.retried == {"odd": 1}
    np.testing.assert_allclose(res.cls_obs, local_scan.cls_obs, rtol=1e-10)

    def broken(payload, rows):
        if rows["data"].shape[0] == 1:
            raise RuntimeError("bad node")
        return real(payload, rows)

    monkeypatch.setattr(_dask, "_task", broken)
    with pytest.warns(HepprobWarning, match="failed after retries"):
        res = scan_patchset(
            spec, ps, client=dask_client, chunk_size=3, retries=1, progress=False
        )
    assert res.failed == {"odd": "RuntimeError: bad node"}
    assert np.isnan(res.cls_obs[3])
    np.testing.assert_allclose(res.cls_obs[:3], local_scan.cls_obs[:3], rtol=1e-10)


def test_cli_cls_patchset_writes_the_table(grid, local_scan, tmp_path):
    import json

    from click.testing import CliRunner

    from hepprob.cli import cli

    spec, ps = grid
    ws_file, ps_file = tmp_path / "bkg.json", tmp_path / "ps.json"
    ws_file.write_text(json.dumps(spec))
    ps_file.write_text(json.dumps(ps))
    out = CliRunner().invoke(cli, ["cls", str(ws_file), "--patchset", str(ps_file)])
    assert out.exit_code == 0, out.output
    table = json.loads(out.output)
    assert [r["name"] for r in table["patches"]] == local_scan.names
    np.testing.assert_allclose(
        [r["CLs_obs"] for r in table["patches"]], local_scan.cls_obs, rtol=1e-10
    )
    bad = CliRunner().invoke(
        cli, ["cls", str(ws_file), "--patchset", str(ps_file), "--calctype", "toybased"]
    )
    assert bad.exit_code != 0
    assert "--patchset scans asymptotic CLs" in bad.output
