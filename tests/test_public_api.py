"""The public names fixed by SPEC.md exist (users and acceptance checks rely on them)."""

from __future__ import annotations

import inspect

import pytest

import hepprob

SPEC_NAMES = {
    "hepprob": [
        "param",
        "fit",
        "toys",
        "mcmc",
        "dist",
        "distributions",
        "infer",
        "histfactory",
    ],
    "hepprob.distributions": [
        "CrystalBall",
        "DoubleCrystalBall",
        "Argus",
        "Exponential",
        "Truncated",
        "Chebyshev",
        "Bernstein",
        "BreitWigner",
        "Voigtian",
        "JohnsonSU",
        "GaussianKDE",
        "HistogramPDF",
        "CustomPDF",
        "from_function",
        "Mixture",
        "Extended",
        "Product",
        "HistFactory",
    ],
    "hepprob.histfactory": ["Workspace", "Model"],
    "hepprob.infer": [
        "fit",
        "nll",
        "hypotest",
        "hypotest_model",
        "upper_limit",
        "discovery",
        "mle",
        "test_statistics",
        "toys",
    ],
    "hepprob.infer.mle": ["fit", "fixed_poi_fit"],
    "hepprob.infer.test_statistics": ["q0", "qmu", "qmu_tilde", "tmu", "tmu_tilde"],
    "hepprob.bayes": ["mcmc"],
}


@pytest.mark.parametrize("module", sorted(SPEC_NAMES))
def test_spec_names_exist(module):
    mod = __import__(module, fromlist=["_"])
    missing = [name for name in SPEC_NAMES[module] if not hasattr(mod, name)]
    assert not missing, f"{module} lacks {missing}"


def test_dist_alias_and_x64():
    import jax

    from hepprob.dist import CrystalBall

    assert CrystalBall is hepprob.distributions.CrystalBall
    assert hepprob.dist.__all__ == hepprob.distributions.__all__
    assert jax.config.jax_enable_x64


def test_fixed_signatures():
    params = inspect.signature(hepprob.param).parameters
    assert list(params) == ["name", "init", "lower", "upper", "prior"]
    fit = inspect.signature(hepprob.fit).parameters
    for name in ("model", "init", "fixed", "method"):
        assert name in fit
    mcmc = inspect.signature(hepprob.mcmc).parameters
    for name in ("model", "num_warmup", "num_samples", "num_chains", "seed"):
        assert name in mcmc
    hypotest = inspect.signature(hepprob.infer.hypotest).parameters
    for name in (
        "poi_value",
        "data",
        "model",
        "test_stat",
        "calctype",
        "return_tail_probs",
        "return_expected",
        "return_expected_set",
        "ntoys",
    ):
        assert name in hypotest
    toys = inspect.signature(hepprob.toys).parameters
    assert list(toys)[:4] == ["model", "params", "n_toys", "key"]


def test_format_readers_and_writers():
    import hepprob.io
    from hepprob.histfactory import Workspace

    assert next(iter(inspect.signature(hepprob.io.read_hs3).parameters)) == "source"
    assert list(inspect.signature(hepprob.io.read_datacard).parameters)[:2] == [
        "path",
        "shapes_dir",
    ]
    for name in ("to_hs3", "to_xml"):
        assert callable(getattr(Workspace, name))
    for name in ("load_workspace", "detect_format", "convert", "ConfiguredWorkspace"):
        assert name in hepprob.io.__all__


def test_clear_caches_forgets_compiled_programs():
    import numpy as np
    import numpyro
    import numpyro.distributions as nd

    from hepprob import _program_cache

    def model(x):
        mu = hepprob.param("mu", 0.0)
        numpyro.sample("x", nd.Normal(mu, 1.0), obs=x)

    assert "clear_caches" in hepprob.__all__
    first = hepprob.fit(model, np.array([1.0, 2.0]))
    assert _program_cache.programs_of(model)
    hepprob.clear_caches()
    assert not _program_cache.programs_of(model)
    again = hepprob.fit(model, np.array([1.0, 2.0]))  # compiles again, same answer
    assert first.values["mu"] == again.values["mu"] == 1.5


def test_scan_patchset_signature():
    import inspect

    params = inspect.signature(hepprob.infer.scan_patchset).parameters
    assert list(params)[:3] == ["workspace", "patchset", "client"]
    assert params["client"].default is None
    assert "scan_patchset" in hepprob.infer.__all__
    spec = {"channels": [{"name": "c", "samples": [
        {"name": "s", "data": [1.0], "modifiers": [
            {"name": "mu", "type": "normfactor", "data": None}]}]}]}  # fmt: skip
    a, b = hepprob.histfactory.Model(spec), hepprob.histfactory.Model(spec)
    assert hash(a.structure) == hash(b.structure)
    assert a.logpdf_kernel() is b.logpdf_kernel()  # one program per structure
    assert callable(a.expected_kernel())
    assert isinstance(a.arrays, dict)


def test_second_round_signatures_of_intervals_weights_sweights_contours():
    fit = inspect.signature(hepprob.fit).parameters
    assert fit["weights"].default is None
    assert fit["errors"].default == "hesse"
    interval = inspect.signature(hepprob.infer.interval).parameters
    assert list(interval)[:2] == ["model", "model_args"]
    assert interval["poi"].default == "mu"
    assert interval["cl"].default == 0.68
    assert interval["method"].default == "profile"
    sweights = inspect.signature(hepprob.infer.sweights).parameters
    assert list(sweights)[:4] == ["result", "model", "data", "yields"]
    contour = inspect.signature(hepprob.infer.FitResult.contour).parameters
    assert list(contour)[:5] == ["self", "x", "y", "cl", "points"]
    assert contour["cl"].default == 0.68
