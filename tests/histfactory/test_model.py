"""hepprob.histfactory.Model against pyhf 0.7 (numpy backend) on generated workspaces."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pyhf
import pytest

from hepprob.errors import DataError, ModelError, ParameterError, SpecError
from hepprob.histfactory.model import Model

# (normsys code, histosys code) rotated over the battery; code2 only inside |alpha|<=1,
# where pyhf 0.7's code2 is right (it drops the offset beyond +-1, see test_interpolation)
CODES = [
    ("code4", "code4p"),
    ("code1", "code0"),
    ("code4", "code2"),
    ("code1", "code4p"),
]
SEEDS = list(range(20))
RTOL = 1e-8


def _settings(codes):
    return {"normsys": {"interpcode": codes[0]}, "histosys": {"interpcode": codes[1]}}


def _assert_config_equal(ours, ref):
    assert ours.config.par_order == ref.config.par_order
    assert ours.config.par_names == ref.config.par_names
    assert ours.config.npars == ref.config.npars
    assert ours.config.channels == ref.config.channels
    assert ours.config.samples == ref.config.samples
    assert ours.config.channel_nbins == ref.config.channel_nbins
    assert ours.config.auxdata_order == ref.config.auxdata_order
    assert ours.config.poi_name == ref.config.poi_name
    assert ours.config.poi_index == ref.config.poi_index
    assert ours.config.suggested_fixed() == ref.config.suggested_fixed()
    np.testing.assert_allclose(
        ours.config.suggested_init(), ref.config.suggested_init()
    )
    np.testing.assert_allclose(
        np.asarray(ours.config.suggested_bounds(), dtype=float),
        np.asarray(ref.config.suggested_bounds(), dtype=float),
    )
    np.testing.assert_allclose(ours.config.auxdata, ref.config.auxdata, rtol=1e-12)
    for name in ref.config.par_order:
        assert ours.config.par_slice(name) == ref.config.par_slice(name)
        ps, rps = ours.config.param_set(name), ref.config.param_set(name)
        assert ps.n_parameters == rps.n_parameters
        assert ps.is_scalar == rps.is_scalar
        if rps.constrained:
            assert ps.pdf_type == rps.pdf_type
            np.testing.assert_allclose(ps.width(), rps.width(), rtol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_generated_workspace_matches_pyhf(spec_factory, points_factory, seed):
    spec = spec_factory(seed)
    codes = CODES[seed % len(CODES)]
    ref = pyhf.Model(spec, modifier_settings=_settings(codes))
    ours = Model(spec, modifier_settings=_settings(codes))
    _assert_config_equal(ours, ref)

    rng = np.random.default_rng(100 + seed)
    init = np.asarray(ref.config.suggested_init())
    main = rng.poisson(ref.expected_actualdata(init)).astype(float)
    main[rng.uniform(size=main.size) < 0.1] = 0.0  # zero-count bins
    data = np.concatenate([main, ref.config.auxdata])
    alpha_max = 1.0 if codes[1] == "code2" else 2.5
    points = points_factory(ref, rng, 3, alpha_max)
    for p in points:
        np.testing.assert_allclose(
            ours.expected_data(p), ref.expected_data(p), rtol=1e-10, atol=1e-12
        )
        np.testing.assert_allclose(
            ours.expected_auxdata(p), ref.expected_auxdata(p), rtol=1e-10, atol=1e-12
        )
        np.testing.assert_allclose(ours.logpdf(p, data), ref.logpdf(p, data), rtol=RTOL)
        np.testing.assert_allclose(
            ours.main_model.logpdf(main, p), ref.main_model.logpdf(main, p), rtol=RTOL
        )
        aux = np.asarray(ref.config.auxdata)
        np.testing.assert_allclose(
            ours.constraint_model.logpdf(aux, p),
            ref.constraint_model.logpdf(aux, p),
            rtol=RTOL,
        )
        np.testing.assert_allclose(
            ours.main_model.expected_data(p, return_by_sample=True),
            ref.main_model.expected_data(p, return_by_sample=True),
            rtol=1e-10,
            atol=1e-12,
        )


@pytest.fixture(scope="module")
def pair(spec_factory):
    spec = spec_factory(3)
    return pyhf.Model(spec), Model(spec)


def test_logpdf_shape_and_jit_grad(pair, points_factory):
    ref, ours = pair
    rng = np.random.default_rng(0)
    p = points_factory(ref, rng, 1, 1.5)[0]
    data = np.asarray(ref.expected_data(points_factory(ref, rng, 1, 1.0)[0]))
    assert ours.logpdf(p, data).shape == (1,)
    f = ours.logpdf_fn()
    np.testing.assert_allclose(jax.jit(f)(p, data), ref.logpdf(p, data)[0], rtol=RTOL)
    grad = jax.jit(jax.grad(f))(jnp.asarray(p), jnp.asarray(data))
    # central finite differences of pyhf's logpdf
    eps = 1e-6
    fd = [
        (ref.logpdf(p + eps * e, data)[0] - ref.logpdf(p - eps * e, data)[0])
        / (2 * eps)
        for e in np.eye(p.size)
    ]
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-5)


def test_vmap_over_parameters_and_datasets_equals_loop(pair, points_factory):
    ref, ours = pair
    rng = np.random.default_rng(1)
    pars = points_factory(ref, rng, 4, 1.5)
    datas = np.stack([np.asarray(ref.expected_data(q)) for q in pars[::-1]])
    f = ours.logpdf_fn()
    looped = np.array([ref.logpdf(p, d)[0] for p, d in zip(pars, datas, strict=True)])
    np.testing.assert_allclose(jax.vmap(f)(pars, datas), looped, rtol=RTOL)
    np.testing.assert_allclose(ours.logpdf(pars, datas), looped, rtol=RTOL)
    # one parameter point, many datasets; many points, one dataset
    np.testing.assert_allclose(
        jax.vmap(f, in_axes=(None, 0))(pars[0], datas),
        [ref.logpdf(pars[0], d)[0] for d in datas],
        rtol=RTOL,
    )
    np.testing.assert_allclose(
        ours.expected_data(pars),
        np.stack([ref.expected_data(p) for p in pars]),
        rtol=1e-10,
    )


@pytest.mark.parametrize("options", [{"clip_sample_data": 0.0}, {"clip_bin_data": 0.5}])
def test_clipping_matches_pyhf(options):
    spec = {
        "channels": [
            {
                "name": "sr",
                "samples": [
                    {"name": "sig", "data": [1.0, 2.0, 3.0], "modifiers": [
                        {"name": "mu", "type": "normfactor", "data": None}]},
                    {"name": "bkg", "data": [2.0, 1.0, 5.0], "modifiers": [
                        {"name": "hs", "type": "histosys",
                         "data": {"hi_data": [3.0, 3.0, 6.0], "lo_data": [0.2, 0.1, 4.0]}}]},
                ],
            }
        ]
    }  # fmt: skip
    ref = pyhf.Model(spec, **options)
    ours = Model(spec, **options)
    data = np.array([3.0, 0.0, 8.0, 0.0])
    for alpha in (-3.0, -0.5, 1.0):
        p = np.array([alpha, 1.0])  # par order: hs, mu
        np.testing.assert_allclose(
            ours.expected_data(p), ref.expected_data(p), rtol=1e-12
        )
        np.testing.assert_allclose(ours.logpdf(p, data), ref.logpdf(p, data), rtol=RTOL)


def test_negative_yield_gives_minus_inf_not_nan():
    spec = {
        "channels": [
            {"name": "sr", "samples": [
                {"name": "bkg", "data": [2.0], "modifiers": [
                    {"name": "hs", "type": "histosys",
                     "data": {"hi_data": [3.0], "lo_data": [0.5]}},
                    {"name": "mu", "type": "normfactor", "data": None}]}]}
        ]
    }  # fmt: skip
    ref, ours = pyhf.Model(spec), Model(spec)
    p, data = np.array([-3.0, 1.0]), np.array([1.0, 0.0])
    assert np.isnan(ref.logpdf(p, data)[0])  # pyhf: log of a negative rate
    assert float(ours.logpdf(p, data)[0]) == -np.inf
    grad = jax.grad(ours.logpdf_fn())(jnp.asarray(p), jnp.asarray(data))
    assert np.all(np.isfinite(grad))


def test_poi_and_parameter_errors(pair, spec_factory):
    ref, ours = pair
    spec = spec_factory(3)
    with pytest.raises(ModelError, match="poi_name 'nope' is not a parameter"):
        Model(spec, poi_name="nope")
    assert Model(spec, poi_name=None).config.poi_index is None
    with pytest.raises(
        ParameterError, match=f"pars must have length {ref.config.npars}"
    ):
        ours.logpdf(np.ones(ref.config.npars + 1), np.ones(3))
    n = ref.config.nmaindata + ref.config.nauxdata
    p = np.asarray(ref.config.suggested_init())
    with pytest.raises(DataError, match=f"data must have length {n}"):
        ours.logpdf(p, np.ones(n - 1))
    bad = np.ones(n)
    bad[1] = np.nan
    with pytest.raises(DataError, match="NaN at positions \\[1\\]"):
        ours.logpdf(p, bad)
    bad[1] = -2.0
    with pytest.raises(
        DataError, match=r"non-negative counts .* at flat positions \[1\]"
    ):
        ours.logpdf(p, bad)
    with pytest.raises(ParameterError, match="unknown parameter set 'zzz'"):
        ours.config.param_set("zzz")


def test_bad_specs_name_the_path():
    base = {
        "channels": [
            {"name": "sr", "samples": [
                {"name": "sig", "data": [1.0, 2.0], "modifiers": [
                    {"name": "mu", "type": "normfactor", "data": None}]}]}
        ]
    }  # fmt: skip

    def with_mod(mod):
        spec = {"channels": [dict(base["channels"][0])]}
        samp = dict(spec["channels"][0]["samples"][0])
        samp["modifiers"] = [*samp["modifiers"], mod]
        spec["channels"][0]["samples"] = [samp]
        return spec

    with pytest.raises(
        SpecError, match=r"modifiers\[1\]\.type: unknown modifier type 'magic'"
    ):
        Model(with_mod({"name": "x", "type": "magic", "data": None}), validate=False)
    with pytest.raises(
        SpecError, match=r"modifiers\[1\]\.data\.lo_data: .*2 entries.*got 3"
    ):
        Model(
            with_mod(
                {"name": "x", "type": "histosys",
                 "data": {"hi_data": [1.0, 2.0], "lo_data": [1.0, 2.0, 3.0]}}
            ),
            validate=False,
        )  # fmt: skip
    with pytest.raises(SpecError, match=r"data\.lo: normsys lo must be a positive"):
        Model(
            with_mod({"name": "x", "type": "normsys", "data": {"hi": 1.1, "lo": 0.0}}),
            validate=False,
        )
    with pytest.raises(SpecError, match=r"'lumi'.*needs 'inits'"):
        Model(with_mod({"name": "lumi", "type": "lumi", "data": None}), validate=False)
    with pytest.raises(SpecError, match=r"interpcode'\] must be one of"):
        Model(base, modifier_settings={"normsys": {"interpcode": "code9"}})
    with pytest.raises(SpecError, match="inconsistently"):
        Model(
            with_mod({"name": "mu", "type": "shapefactor", "data": None}),
            validate=False,
        )
