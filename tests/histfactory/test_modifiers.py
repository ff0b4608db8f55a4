"""Each modifier type against pyhf, on the real validation inputs and closed forms."""

from __future__ import annotations

import numpy as np
import pyhf
import pytest

from hepprob.errors import SpecError
from hepprob.histfactory import Model


def _sample(name, data, *mods):
    return {"name": name, "data": list(map(float, data)), "modifiers": list(mods)}


def _mu():
    return {"name": "mu", "type": "normfactor", "data": None}


def _one_channel(bd, name="singlechannel"):
    return {"name": name, "samples": []}, bd["bindata"]


# Specs built from ../shared/validation/pyhf_json/*.json the way pyhf's own
# validation builds them (signal x mu, background with the named uncertainty).
def _spec_shapesys(bd):
    b = bd["bindata"]
    return {"channels": [{"name": "singlechannel", "samples": [
        _sample("signal", b["sig"], _mu()),
        _sample("background", b["bkg"],
                {"name": "uncorr_bkguncrt", "type": "shapesys", "data": b["bkgerr"]})]}]}  # fmt: skip


def _spec_histosys(bd):
    b = bd["bindata"]
    return {"channels": [{"name": "singlechannel", "samples": [
        _sample("signal", b["sig"], _mu()),
        _sample("background", b["bkg"], {"name": "bkg_norm", "type": "histosys",
                "data": {"hi_data": b["bkgsys_up"], "lo_data": b["bkgsys_dn"]}})]}]}  # fmt: skip


def _spec_normsys(bd):
    b = bd["bindata"]
    return {"channels": [{"name": "singlechannel", "samples": [
        _sample("signal", b["sig"], _mu()),
        _sample("background", b["bkg"], {"name": "bkg_norm", "type": "normsys",
                "data": {"hi": 1.10, "lo": 0.90}})]}]}  # fmt: skip


def _spec_lumi(bd):
    b = bd["bindata"]
    lumi = {"name": "lumi", "type": "lumi", "data": None}
    return {
        "channels": [{"name": "channel1", "samples": [
            _sample("signal", b["sig"], _mu(), lumi),
            _sample("background1", b["bkg1"], lumi),
            _sample("background2", b["bkg2"], lumi)]}],
        "parameters": [{"name": "lumi", "auxdata": [1.0], "sigmas": [0.1],
                        "bounds": [[0.0, 10.0]], "inits": [1.0]}],
    }  # fmt: skip


def _spec_statex(bd):
    b = bd["bindata"]
    stat = lambda err: {"name": "stat_firstchannel", "type": "staterror", "data": err}
    return {"channels": [{"name": "firstchannel", "samples": [
        _sample("mu", b["sig"], _mu()),
        _sample("bkg1", b["bkg1"], stat(b["bkg1err"])),
        _sample("bkg2", b["bkg2"], stat(b["bkg2err"])),
        _sample("bkg3", b["bkg3"],
                {"name": "bkg3_norm", "type": "normsys", "data": {"hi": 1.2, "lo": 0.8}})]}]}  # fmt: skip


def _spec_2ch_example(bd):
    chans = []
    for cname in ("signal", "control"):
        b = bd["channels"][cname]["bindata"]
        samples = []
        if "sig" in b:
            samples.append(_sample("signal", b["sig"], _mu()))
        samples.append(
            _sample(
                "background",
                b["bkg"],
                {
                    "name": f"uncorr_bkguncrt_{cname}",
                    "type": "shapesys",
                    "data": b["bkgerr"],
                },
            )
        )
        chans.append({"name": cname, "samples": samples})
    return {"channels": chans}  # fmt: skip


def _spec_coupled(kind):
    def build(bd):
        chans = []
        for cname in ("signal", "control"):
            b = bd["channels"][cname]["bindata"]
            samples = []
            if "sig" in b:
                samples.append(_sample("signal", b["sig"], _mu()))
            if kind == "histo":
                mod = {
                    "name": "coupled_histosys",
                    "type": "histosys",
                    "data": {"hi_data": b["bkg1_up"], "lo_data": b["bkg1_dn"]},
                }
            elif kind == "norm":
                mod = {
                    "name": "coupled_normsys",
                    "type": "normsys",
                    "data": {"hi": 1.1, "lo": 0.9},
                }
            else:
                mod = {
                    "name": "coupled_shapefactor",
                    "type": "shapefactor",
                    "data": None,
                }
            samples.append(_sample("background1", b["bkg1"], mod))
            if "bkg2" in b:
                extra = (
                    {
                        "name": "coupled_histosys",
                        "type": "histosys",
                        "data": {"hi_data": b["bkg2_up"], "lo_data": b["bkg2_dn"]},
                    }
                    if kind == "histo"
                    else {
                        "name": "uncorr_normsys",
                        "type": "normsys",
                        "data": {"hi": 1.2, "lo": 0.9},
                    }
                )
                samples.append(_sample("background2", b["bkg2"], extra))
            chans.append({"name": cname, "samples": samples})
        return {"channels": chans}  # fmt: skip

    return build


VALIDATION = {
    "1bin_example1": _spec_shapesys,
    "1bin_example1_q0": _spec_shapesys,
    "2bin_example1": _spec_shapesys,
    "1bin_histosys": _spec_histosys,
    "2bin_histosys": _spec_histosys,
    "2bin_histosys_example2": _spec_histosys,
    "1bin_normsys": _spec_normsys,
    "1bin_lumi": _spec_lumi,
    "2bin_statex": _spec_statex,
    "2bin_2channel_example1": _spec_2ch_example,
    "2bin_2channel_coupledhisto": _spec_coupled("histo"),
    "2bin_2channel_couplednorm": _spec_coupled("norm"),
    "2bin_2channel_coupledshapefactor": _spec_coupled("shapefactor"),
}


def _observed(bd, ref):
    if "channels" in bd:
        main = np.concatenate(
            [bd["channels"][c]["bindata"]["data"] for c in ref.config.channels]
        )
    else:
        main = np.asarray(bd["bindata"]["data"], dtype=float)
    return np.concatenate([main, ref.config.auxdata])


@pytest.mark.parametrize("name", sorted(VALIDATION))
def test_validation_inputs_match_pyhf(bindata, name):
    bd = bindata(name)
    spec = VALIDATION[name](bd)
    ref, ours = pyhf.Model(spec), Model(spec)
    assert ours.config.par_names == ref.config.par_names
    assert ours.config.suggested_fixed() == ref.config.suggested_fixed()
    np.testing.assert_allclose(
        ours.config.suggested_init(), ref.config.suggested_init()
    )
    np.testing.assert_allclose(
        np.asarray(ours.config.suggested_bounds(), float),
        np.asarray(ref.config.suggested_bounds(), float),
    )
    np.testing.assert_allclose(ours.config.auxdata, ref.config.auxdata, rtol=1e-12)
    data = _observed(bd, ref)
    rng = np.random.default_rng(len(name))
    init = np.asarray(ref.config.suggested_init())
    for _ in range(3):
        p = np.where(
            init == 0,
            rng.uniform(-2, 2, init.size),
            init * rng.uniform(0.7, 1.3, init.size),
        )
        np.testing.assert_allclose(
            ours.expected_data(p), ref.expected_data(p), rtol=1e-12
        )
        np.testing.assert_allclose(
            ours.logpdf(p, data), ref.logpdf(p, data), rtol=1e-10
        )


def test_staterror_and_shapesys_closed_forms(bindata):
    bd = bindata("2bin_statex")["bindata"]
    model = Model(_spec_statex({"bindata": bd}))
    ps = model.config.param_set("stat_firstchannel")
    nom = np.add(bd["bkg1"], bd["bkg2"])
    rel = np.sqrt(np.square(bd["bkg1err"]) + np.square(bd["bkg2err"])) / nom
    np.testing.assert_allclose(ps.sigmas, rel, rtol=1e-14)
    np.testing.assert_allclose(ps.auxdata, 1.0)
    bd = bindata("2bin_example1")["bindata"]
    model = Model(_spec_shapesys({"bindata": bd}))
    tau = (np.asarray(bd["bkg"]) / np.asarray(bd["bkgerr"])) ** 2
    np.testing.assert_allclose(model.config.auxdata, tau, rtol=1e-14)
    # main yields: gamma multiplies the background bins, mu the signal
    p = np.array([1.7, 0.9, 1.1])  # mu, gamma[0], gamma[1]
    want = 1.7 * np.asarray(bd["sig"]) + np.array([0.9, 1.1]) * np.asarray(bd["bkg"])
    np.testing.assert_allclose(model.expected_actualdata(p), want, rtol=1e-14)


def test_parameter_configuration_overrides():
    spec = {
        "channels": [{"name": "c", "samples": [
            _sample("s", [5.0, 6.0], _mu(),
                    {"name": "st", "type": "staterror", "data": [1.0, 2.0]},
                    {"name": "a", "type": "normsys", "data": {"hi": 1.1, "lo": 0.9}})]}],
        "parameters": [
            {"name": "mu", "inits": [2.0], "bounds": [[-1.0, 4.0]], "fixed": True},
            {"name": "st", "sigmas": [0.3, 0.4]},
            {"name": "a", "auxdata": [0.5]},
        ],
    }  # fmt: skip
    ref, ours = pyhf.Model(spec), Model(spec)
    assert ours.config.suggested_fixed() == ref.config.suggested_fixed()
    np.testing.assert_allclose(
        ours.config.suggested_init(), ref.config.suggested_init()
    )
    np.testing.assert_allclose(ours.config.auxdata, ref.config.auxdata)
    p = np.array([0.3, 1.5, 1.1, 0.8])
    data = np.array([9.0, 8.0, 0.4, 1.0, 1.0])
    np.testing.assert_allclose(ours.logpdf(p, data), ref.logpdf(p, data), rtol=1e-10)
    bad = {**spec, "parameters": [{"name": "a", "sigmas": [2.0]}]}
    with pytest.raises(
        SpecError, match=r"parameters\[0\]\.sigmas: parameter 'a' does not use"
    ):
        Model(bad, validate=False)
    bad = {**spec, "parameters": [{"name": "st", "inits": [1.0]}]}
    with pytest.raises(
        SpecError, match=r"parameters\[0\]\.inits: st inits must have 2 entries"
    ):
        Model(bad, validate=False)
    bad = {**spec, "parameters": [{"name": "mu"}, {"name": "mu"}]}
    with pytest.raises(SpecError, match="multiple configurations for parameter 'mu'"):
        Model(bad, validate=False)


def test_unshared_shapesys_name_reuse_is_an_error():
    mod = {"name": "sys", "type": "shapesys", "data": [1.0]}
    spec = {"channels": [{"name": "c", "samples": [
        _sample("a", [5.0], _mu(), mod), _sample("b", [3.0], mod)]}]}  # fmt: skip
    with pytest.raises(SpecError, match="shapesys modifier 'sys' is used by"):
        Model(spec, validate=False)


def test_combine_interpolations_in_a_model(bindata):
    """lnN_smooth is code1 beyond |alpha| >= 0.5; poly6 (region 1) is code4p."""
    spec = _spec_coupled("histo")(bindata("2bin_2channel_coupledhisto"))
    spec["channels"][0]["samples"][1]["modifiers"].append(
        {"name": "norm", "type": "normsys", "data": {"hi": 1.15, "lo": 0.8}}
    )
    ours = Model(spec, modifier_settings={"normsys": {"interpcode": "lnN_smooth"},
                                          "histosys": {"interpcode": "poly6"}})  # fmt: skip
    ref = pyhf.Model(spec, modifier_settings={"normsys": {"interpcode": "code1"},
                                              "histosys": {"interpcode": "code4p"}})  # fmt: skip
    for alpha in (-2.0, -0.7, 0.5, 1.4):
        p = np.array([0.3, 1.2, alpha])  # coupled_histosys, mu, norm
        np.testing.assert_allclose(
            ours.expected_data(p), ref.expected_data(p), rtol=1e-12
        )
    smooth = Model(spec, modifier_settings={"histosys": {"interpcode": "poly6",
                                                         "smooth_region": 0.5}})  # fmt: skip
    p = np.array([0.3, 1.0, 0.0])
    assert not np.allclose(smooth.expected_data(p), ref.expected_data(p))
