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


def test_derivatives_match_pyhf_jax_autodiff():
    """Gradient and Hessian of logpdf (custom code-4 JVPs, histosys maps) against
    plain autodiff of pyhf's jax backend, inside and beyond |alpha| = 1."""
    import jax

    spec = published_like.workspace("small", seed=5)
    patch = published_like.signal_patch(spec, 2, "small", seed=5)
    ours = Workspace(spec).model(patches=[patch])
    data = np.asarray(Workspace(spec).data(ours))
    backend = pyhf.tensorlib, pyhf.optimizer
    pyhf.set_backend("jax")
    try:
        theirs = pyhf.Workspace(spec).model(patches=[patch])
        rng = np.random.default_rng(7)
        init = np.asarray(theirs.config.suggested_init())
        alphas = init == 0
        for scale in (0.4, 1.8):
            pars = init + alphas * rng.normal(0.0, scale, init.size)
            pars = pars + ~alphas * rng.uniform(-0.05, 0.05, init.size)

            def ref(p):
                return theirs.logpdf(p, data)[0]

            fn = ours.logpdf_fn()
            np.testing.assert_allclose(
                jax.grad(fn)(pars, data), jax.grad(ref)(pars), rtol=1e-8, atol=1e-8
            )
            np.testing.assert_allclose(
                jax.hessian(fn)(pars, data),
                jax.hessian(ref)(pars),
                rtol=1e-8,
                atol=1e-8,
            )
    finally:
        pyhf.set_backend(*backend)


def test_code4_coefficient_tangents_match_finite_differences():
    """Derivatives with respect to the model arrays (e.g. for gradients of CLs
    with respect to inputs) also flow through the custom JVPs."""
    import jax

    spec = published_like.workspace("tiny", seed=2)
    model = Workspace(spec).model(poi_name=None)
    data = np.asarray(Workspace(spec).data(model))
    kernel, arrays = model.logpdf_kernel(), model.arrays
    pars = np.asarray(model.config.suggested_init())
    pars[model.config.par_slice("EXP_00")] = 0.6

    def along(t):
        a = dict(arrays)
        a["ns_coef"] = arrays["ns_coef"] * (1.0 + t)
        return kernel(pars, data, a)

    _, tangent = jax.jvp(along, (0.0,), (1.0,))
    h = 1e-4  # central difference: truncation ~h^2, rounding ~1e-14 / h
    numeric = (along(h) - along(-h)) / (2 * h)
    assert abs(float(tangent)) > 1e-3  # the coefficients matter here
    np.testing.assert_allclose(tangent, numeric, rtol=1e-6)
