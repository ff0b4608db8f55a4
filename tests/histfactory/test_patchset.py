"""Patchsets: lookup, digests, apply and inspect, compared with pyhf's PatchSet."""

from __future__ import annotations

import copy
import json
import pathlib

import numpy as np
import pyhf
import pytest

from hepprob.errors import SpecError
from hepprob.histfactory.patchset import Patch, PatchSet, apply_patches, digest
from hepprob.histfactory.workspace import Workspace

DATA = pathlib.Path(__file__).resolve().parents[1] / "data"
MASSES = [(300, 100), (500, 100), (500, 250.5)]


def patch_name(m1: float, m2: float) -> str:
    return f"grid_{m1}_{m2}".replace(".", "p")


def bkg_only() -> dict:
    with (DATA / "good_workspace_bkgonly.json").open() as f:
        return json.load(f)


def signal_patch(m1: float, m2: float) -> list[dict]:
    scale = 1000.0 / (m1 * m1) * (1.0 + m2 / 500.0)
    return [
        {
            "op": "add",
            "path": "/channels/0/samples/0",
            "value": {
                "name": "signal",
                "data": [scale * 40.0, scale * 90.0, scale * 20.0],
                "modifiers": [
                    {"name": "mu_SIG", "type": "normfactor", "data": None},
                    {"name": "lumi", "type": "lumi", "data": None},
                ],
            },
        },
        {"op": "replace", "path": "/measurements/0/config/poi", "value": "mu_SIG"},
    ]


@pytest.fixture(scope="module")
def patchset_spec() -> dict:
    spec = bkg_only()
    return {
        "metadata": {
            "description": "toy signal grid for tests",
            "digests": {
                "sha256": pyhf.utils.digest(spec, "sha256"),
                "md5": pyhf.utils.digest(spec, "md5"),
            },
            "labels": ["m1", "m2"],
            "references": {"hepdata": "ins1234567"},
        },
        "patches": [
            {
                "metadata": {"name": patch_name(m1, m2), "values": [m1, m2]},
                "patch": signal_patch(m1, m2),
            }
            for m1, m2 in MASSES
        ],
        "version": "1.0.0",
    }


def test_digest_matches_pyhf():
    spec = bkg_only()
    for algorithm in ("sha256", "md5"):
        assert digest(spec, algorithm) == pyhf.utils.digest(spec, algorithm)
    assert digest({"b": [1.0, "é"], "a": None}) == pyhf.utils.digest(
        {"a": None, "b": [1.0, "é"]}
    )
    with pytest.raises(SpecError, match=r"unknown digest algorithm 'sha999'"):
        digest(spec, "sha999")


def test_metadata_and_lookup_match_pyhf(patchset_spec):
    ps, pps = PatchSet(patchset_spec), pyhf.PatchSet(patchset_spec)
    assert ps.labels == pps.labels
    assert ps.description == pps.description
    assert ps.digests == pps.digests
    assert ps.references == pps.references
    assert ps.version == pps.version
    assert len(ps) == len(pps.patches) == len(MASSES)
    assert [p.name for p in ps] == [p.name for p in pps.patches]
    assert [p.values for p in ps] == [tuple(p.values) for p in pps.patches]
    for m1, m2 in MASSES:
        name = patch_name(m1, m2)
        assert ps[name].patch == pps[name].patch
        assert ps[(m1, m2)].patch == pps[(m1, m2)].patch
        assert ps[[float(m1), float(m2)]] is ps[name]


def test_apply_matches_pyhf(patchset_spec):
    spec = bkg_only()
    ps, pps = PatchSet(patchset_spec), pyhf.PatchSet(patchset_spec)
    ws, pws = Workspace(spec), pyhf.Workspace(spec)
    for m1, m2 in MASSES:
        mine = ps.apply(ws, (m1, m2))
        ref = pps.apply(pws, (m1, m2))
        assert mine.to_dict() == dict(ref)
        assert ps[patch_name(m1, m2)].apply(spec) == mine
    # one model from a patched workspace against pyhf's
    mine = ps.apply(ws, "grid_500_250p5")
    ref = pps.apply(pws, "grid_500_250p5")
    model, pmodel = mine.model(), ref.model()
    assert model.config.poi_name == pmodel.config.poi_name == "mu_SIG"
    assert model.config.par_names == pmodel.config.par_names
    data, pdata = mine.data(model), ref.data(pmodel)
    assert data == pdata
    pars = np.asarray(pmodel.config.suggested_init()) + 0.2
    assert float(model.logpdf(pars, np.asarray(data))[0]) == pytest.approx(
        float(pmodel.logpdf(pars, pdata)[0]), rel=1e-8
    )


def test_patch_objects_in_model_and_patch(patchset_spec):
    ps = PatchSet(patchset_spec)
    ws = Workspace(bkg_only())
    patch = ps["grid_300_100"]
    assert isinstance(patch, Patch)
    assert ws.patch(patch) == ps.apply(ws, "grid_300_100")
    # in ws.model the patch applies to {"channels", "parameters"}; only the
    # channel operation is meaningful there
    channel_only = {"metadata": patch.metadata, "patch": patch.patch[:1]}
    model = ws.model(patches=[channel_only], poi_name="mu_SIG")
    assert model.config.poi_name == "mu_SIG"
    assert model.config.samples == ["background", "signal"]
    with pytest.raises(SpecError, match=r"^poi_name: poi 'mu_sig' .* not defined"):
        ws.model(patches=[channel_only], poi_name="mu_sig")
    assert apply_patches({"a": [1]}, [[{"op": "add", "path": "/a/-", "value": 2}]]) == {
        "a": [1, 2]
    }


def test_verify_and_errors(patchset_spec):
    ps, pps = PatchSet(patchset_spec), pyhf.PatchSet(patchset_spec)
    other = copy.deepcopy(bkg_only())
    other["observations"][0]["data"][0] += 1.0
    with pytest.raises(pyhf.exceptions.PatchSetVerificationError):
        pps.verify(other)
    with pytest.raises(
        SpecError,
        match=r"metadata\.digests\.(sha256|md5): the workspace does not match",
    ):
        ps.verify(Workspace(other))
    with pytest.raises(SpecError, match="does not match this patchset"):
        ps.apply(other, "grid_300_100")
    # without verification the patch still applies
    assert ps.apply(other, "grid_300_100", verify=False).samples == [
        "background",
        "signal",
    ]
    with pytest.raises(
        SpecError,
        match=r"patches: no patch named 'grid_1_1'; patches: \['grid_300_100'",
    ):
        ps["grid_1_1"]
    with pytest.raises(
        SpecError, match=r"no patch with values \(1, 2\) for labels \['m1', 'm2'\]"
    ):
        ps[(1, 2)]
    bad = copy.deepcopy(patchset_spec)
    bad["patches"][0]["metadata"]["values"] = [1]
    with pytest.raises(
        SpecError, match=r"patches\[0\]\.metadata\.values: expected 2 values"
    ):
        PatchSet(bad)


def test_inspect_summary(patchset_spec, tmp_path):
    file = tmp_path / "patchset.json"
    file.write_text(json.dumps(patchset_spec))
    ps = PatchSet.from_file(file)
    pps = pyhf.PatchSet(patchset_spec)
    summary = ps.inspect()
    json.dumps(summary)  # JSON-serialisable for the CLI
    assert summary["labels"] == pps.labels
    assert summary["n_patches"] == len(pps.patches)
    assert [(p["name"], tuple(p["values"])) for p in summary["patches"]] == [
        (p.name, tuple(p.values)) for p in pps.patches
    ]
    assert summary["digests"] == pps.digests
    assert ps.to_dict() == patchset_spec
    assert ps.patch_names == [p.name for p in pps.patches]
