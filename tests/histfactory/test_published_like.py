"""The published-like workspace generator (tests/published_like.py) against pyhf.

hepprob and pyhf 0.7 build the same model from a generated background-only
workspace plus a signal patch: same parameter order, and ``logpdf`` /
``expected_data`` equal to 1e-8 relative at random parameter points.
"""

from __future__ import annotations

import pathlib
import sys

import numpy as np
import pyhf
import pytest

from hepprob.histfactory import PatchSet, Workspace

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import published_like


@pytest.mark.parametrize("size", ["tiny", "small", "medium"])
def test_generated_workspace_matches_pyhf(size):
    spec = published_like.workspace(size, seed=3)
    ps = published_like.patchset(spec, 2, size, seed=3)
    patch = ps["patches"][1]["patch"]
    ours = Workspace(spec).model(patches=[patch])
    theirs = pyhf.Workspace(spec).model(patches=[patch])
    assert ours.config.par_names == theirs.config.par_names
    assert ours.config.poi_name == theirs.config.poi_name == "mu_SIG"
    data = np.asarray(pyhf.Workspace(spec).data(theirs))
    np.testing.assert_array_equal(Workspace(spec).data(ours), data)
    rng = np.random.default_rng(0)
    init = np.asarray(theirs.config.suggested_init())
    for _ in range(3):
        pars = init + rng.normal(0.0, 0.3, init.size) * (init != 0) * 0.3
        pars += rng.normal(0.0, 0.8, init.size) * (init == 0)
        np.testing.assert_allclose(
            ours.expected_data(pars), theirs.expected_data(pars), rtol=1e-8
        )
        np.testing.assert_allclose(
            ours.logpdf(pars, data), theirs.logpdf(pars, data), rtol=1e-8
        )


def test_generated_patchset_is_a_valid_pyhf_patchset():
    spec = published_like.workspace("tiny", seed=1)
    ps = published_like.patchset(spec, 4, "tiny", seed=1)
    pyhf.PatchSet(ps).verify(pyhf.Workspace(spec))  # pyhf's schema and digest
    ours = PatchSet(ps)
    ours.verify(Workspace(spec))
    assert ours.patch_names == [name for name, _ in published_like.patch_names(4)]
    # deterministic from the seed, different for another seed
    assert published_like.patchset(spec, 4, "tiny", seed=1) == ps
    assert published_like.workspace("tiny", seed=2) != spec


def test_big_preset_has_the_published_structure():
    spec = published_like.workspace("big")
    counts: dict[str, int] = {}
    for ch in spec["channels"]:
        for s in ch["samples"]:
            for m in s["modifiers"]:
                counts[m["type"]] = counts.get(m["type"], 0) + 1
    nbins = [len(ch["samples"][0]["data"]) for ch in spec["channels"]]
    assert len(nbins) == 8
    assert sum(nbins) == 14
    assert nbins.count(1) == 5
    assert counts["histosys"] > 5000
    assert counts["normsys"] > 3500
    assert counts["staterror"] == 70
    assert counts["normfactor"] == 24
