"""hypotest (asymptotic and toys) and hypotest_model vs pyhf 0.7 and closed forms."""

from __future__ import annotations

import json

import numpy as np
import numpyro
import numpyro.distributions as npd
import pyhf
import pytest
from jax.scipy.special import gammaln, xlogy
from scipy.stats import norm

import hepprob
from hepprob.errors import DataError, HepprobWarning, ParameterError
from hepprob.histfactory import Workspace

# --- workspaces from pyhf's validation inputs (../shared/validation/pyhf_json) ------


def _normfactor():
    return {"name": "mu", "type": "normfactor", "data": None}


def _sample(name, data, modifiers):
    return {"name": name, "data": list(map(float, data)), "modifiers": modifiers}


def _channel_samples(b, channel):
    """Samples of one channel of a validation input, with the modifiers its keys imply."""
    samples = []
    if "sig" in b:
        samples.append(_sample("signal", b["sig"], [_normfactor()]))
    for bkg in ("bkg", "bkg1", "bkg2", "bkg3"):
        if bkg not in b:
            continue
        mods = []
        if f"{bkg}err" in b:  # absolute per-bin uncertainties
            kind = "staterror" if bkg != "bkg" else "shapesys"
            name = "staterror_shared" if kind == "staterror" else f"shapesys_{channel}"
            mods.append({"name": name, "type": kind, "data": b[f"{bkg}err"]})
        for up, dn in ((f"{bkg}sys_up", f"{bkg}sys_dn"), (f"{bkg}_up", f"{bkg}_dn")):
            if up in b:
                mods.append(
                    {
                        "name": f"histosys_{bkg}",
                        "type": "histosys",
                        "data": {"hi_data": b[up], "lo_data": b[dn]},
                    }
                )
        samples.append(_sample(bkg, b[bkg], mods))
    return samples


def validation_spec(validation_dir, stem, extra=None):
    """A pyhf JSON workspace built from a validation input."""
    raw = json.loads((validation_dir / "pyhf_json" / f"{stem}.json").read_text())
    chans = raw.get("channels", {"singlechannel": raw})
    channels, observations = [], []
    for cname, content in chans.items():
        samples = _channel_samples(content["bindata"], cname)
        for s in samples:
            s["modifiers"] += (extra or {}).get(s["name"], [])
        channels.append({"name": cname, "samples": samples})
        observations.append({"name": cname, "data": content["bindata"]["data"]})
    return {
        "channels": channels,
        "observations": observations,
        "measurements": [{"name": "meas", "config": {"poi": "mu", "parameters": []}}],
        "version": "1.0.0",
    }


NORMSYS = {"type": "normsys", "data": {"hi": 1.1, "lo": 0.9}}
WORKSPACES = {
    "1bin_shapesys": ("1bin_example1", None),
    "2bin_statex": ("2bin_statex", None),
    "2ch_couplednorm": (
        "2bin_2channel_couplednorm",
        {"bkg1": [{"name": "coupled_normsys", **NORMSYS}]},
    ),
    "2bin_histosys": ("2bin_histosys", None),
}
# Two separate minima (histosys with up and down variations on the same side):
# pyhf's fit stops in the shallower one, so compare depths, not CLs.
BIMODAL = ("2bin_2channel_coupledhisto", None)


def _build(spec):
    pyhf.set_backend("numpy")
    ws = Workspace(spec)
    model = ws.model()
    data = np.asarray(ws.data(model), dtype=float)
    pws = pyhf.Workspace(spec)
    pmodel = pws.model()
    np.testing.assert_allclose(data, pws.data(pmodel))
    return model, data, pmodel


_CACHE: dict[str, tuple] = {}


def built(name, validation_dir):
    if name not in _CACHE:
        stem, extra = WORKSPACES.get(name, BIMODAL)
        _CACHE[name] = _build(validation_spec(validation_dir, stem, extra))
    return _CACHE[name]


def _pyhf(*args, **kwargs):
    pyhf.set_backend("numpy")
    return pyhf.infer.hypotest(*args, **kwargs)


def _close(got, ref, atol):
    np.testing.assert_allclose(np.asarray(got, dtype=float), np.asarray(ref), atol=atol)


# --- asymptotic hypotest vs pyhf ------------------------------------------------------


@pytest.mark.parametrize("name", list(WORKSPACES))
def test_qtilde_cls_tails_and_band_match_pyhf(name, validation_dir):
    model, data, pmodel = built(name, validation_dir)
    kw = {"return_tail_probs": True, "return_expected_set": True}
    mu = 0.8
    cls, tails, band = hepprob.infer.hypotest(mu, data, model, **kw)
    ref_cls, ref_tails, ref_band = _pyhf(mu, data, pmodel, **kw)
    _close(cls, ref_cls, 1e-4)
    _close(tails, ref_tails, 1e-4)
    _close(band, ref_band, 1e-4)


def test_fits_escape_saddle_points(validation_dir):
    """The free fit ends in a minimum at least as deep as pyhf's (and as Minuit's)."""
    model, data, pmodel = built("bimodal", validation_dir)
    pars, twice_nll = hepprob.infer.mle.fit(data, model, return_fitted_val=True)
    pyhf.set_backend("numpy")
    _, ref = pyhf.infer.mle.fit(data, pmodel, return_fitted_val=True)
    assert float(twice_nll) <= float(ref) + 1e-8
    # a minimum: the pyhf NLL rises in every direction around our point
    f0 = float(-2 * pmodel.logpdf(np.asarray(pars), data)[0])
    np.testing.assert_allclose(f0, float(twice_nll), rtol=1e-10)
    for i in range(len(pars)):
        for h in (1e-3, -1e-3):
            p = np.array(pars)
            p[i] += h
            assert float(-2 * pmodel.logpdf(p, data)[0]) > f0


@pytest.mark.parametrize("name", ["2ch_couplednorm"])
def test_q_statistic_matches_pyhf(name, validation_dir):
    model, data, pmodel = built(name, validation_dir)
    bounds = pmodel.config.suggested_bounds()
    bounds[pmodel.config.poi_index] = [-5.0, 10.0]
    kw = {"par_bounds": bounds, "test_stat": "q", "return_tail_probs": True}
    kw["return_expected_set"] = True
    cls, tails, band = hepprob.infer.hypotest(1.0, data, model, **kw)
    ref = _pyhf(1.0, data, pmodel, **kw)
    _close(cls, ref[0], 1e-4)
    _close(tails, ref[1], 1e-4)
    _close(band, ref[2], 1e-4)


@pytest.mark.parametrize("name", ["2bin_statex"])
def test_q0_pvalue_matches_pyhf(name, validation_dir):
    model, data, pmodel = built(name, validation_dir)
    kw = {"test_stat": "q0", "return_tail_probs": True, "return_expected": True}
    p0, tails, p0_exp = hepprob.infer.hypotest(0.0, data, model, **kw)
    ref = _pyhf(0.0, data, pmodel, **kw)
    _close(p0, ref[0], 1e-4)
    _close(tails, ref[1], 1e-4)
    _close(p0_exp, ref[2], 1e-4)


def test_return_layout_follows_pyhf(validation_dir):
    model, data, pmodel = built("1bin_shapesys", validation_dir)
    flags = [
        {},
        {"return_expected": True},
        {
            "return_tail_probs": True,
            "return_expected": True,
            "return_expected_set": True,
        },
        {"return_expected_set": True},
    ]
    for kw in flags:
        got = hepprob.infer.hypotest(1.0, data, model, **kw)
        ref = _pyhf(1.0, data, pmodel, **kw)
        assert isinstance(got, tuple) == isinstance(ref, tuple)
        if isinstance(ref, tuple):
            assert [np.shape(g) for g in got] == [np.shape(r) for r in ref]
            for g, r in zip(got, ref, strict=True):
                _close(g, r, 1e-4)
        else:
            _close(got, ref, 1e-4)


def test_toybased_cls_within_statistical_error_of_pyhf(validation_dir, monkeypatch):
    # pyhf 0.7.6 hands numpy's removed ``interpolation=`` keyword to np.percentile
    monkeypatch.setattr(
        pyhf.tensor.numpy_backend,
        "percentile",
        lambda self, t, q, axis=None, interpolation="linear": np.percentile(
            t, q, axis=axis, method=interpolation
        ),
    )
    model, data, pmodel = built("1bin_shapesys", validation_dir)
    n_ref, n_ours = 150, 1500
    np.random.seed(7)  # noqa: NPY002  (pyhf 0.7 toys draw from the global state)
    pyhf.set_backend("numpy")
    ref_cls, (ref_sb, ref_b) = pyhf.infer.hypotest(
        1.0, data, pmodel, calctype="toybased", ntoys=n_ref,
        return_tail_probs=True, track_progress=False,
    )  # fmt: skip
    cls, (clsb, clb), band = hepprob.infer.hypotest(
        1.0, data, model, calctype="toybased", ntoys=n_ours, seed=3,
        return_tail_probs=True, return_expected_set=True,
    )  # fmt: skip
    for ours, ref in ((clsb, ref_sb), (clb, ref_b)):
        p = float(ref)
        sigma = np.sqrt(p * (1 - p) * (1 / n_ref + 1 / n_ours)) + 1e-3
        assert abs(float(ours) - p) < 4 * sigma
    rel = np.sqrt((1 - float(clsb)) / (n_ours * float(clsb)) + 1 / n_ref) + 0.02
    assert abs(float(cls) / float(ref_cls) - 1) < 4 * rel
    # the band is monotone and its median near the asymptotic one for this model
    band = np.asarray(band, dtype=float)
    assert np.all(np.diff(band) >= 0)
    asym_median = hepprob.infer.hypotest(1.0, data, model, return_expected=True)[1]
    assert abs(band[2] - float(asym_median)) < 0.05


def test_toybased_is_reproducible_from_seed(validation_dir):
    model, data, _ = built("1bin_shapesys", validation_dir)
    kw = {"calctype": "toybased", "ntoys": 300, "return_tail_probs": True}
    a = hepprob.infer.hypotest(1.0, data, model, seed=11, **kw)
    b = hepprob.infer.hypotest(1.0, data, model, seed=11, **kw)
    c = hepprob.infer.hypotest(1.0, data, model, seed=12, **kw)
    assert float(a[0]) == float(b[0])
    assert float(a[1][0]) != float(c[1][0]) or float(a[1][1]) != float(c[1][1])


def test_toybased_new_ntoys_reuses_the_program_and_stays_consistent(validation_dir):
    """Another ntoys compiles nothing new; the tail fractions agree within errors."""
    model, data, _ = built("1bin_shapesys", validation_dir)
    eng = hepprob.infer.mle.engine(model)
    kw = {"calctype": "toybased", "return_tail_probs": True}
    _, (sb_a, b_a) = hepprob.infer.hypotest(1.0, data, model, ntoys=200, seed=5, **kw)
    size = eng.jitted("rows", None)._cache_size()
    _, (sb_b, b_b) = hepprob.infer.hypotest(1.0, data, model, ntoys=700, seed=6, **kw)
    assert eng.jitted("rows", None)._cache_size() == size
    for a, b in ((sb_a, sb_b), (b_a, b_b)):
        p = 0.5 * (float(a) + float(b))
        sigma = np.sqrt(p * (1 - p) * (1 / 200 + 1 / 700)) + 1e-3
        assert abs(float(a) - float(b)) < 4 * sigma


# --- bad input ----------------------------------------------------------------------


def test_bad_input_raises_clear_errors(validation_dir):
    model, data, pmodel = built("1bin_shapesys", validation_dir)
    with pytest.raises(ParameterError, match=r"calctype must be one of .* got 'toys'"):
        hepprob.infer.hypotest(1.0, data, model, calctype="toys")
    with pytest.raises(ParameterError, match=r"test_stat must be one of .* got 'qmu'"):
        hepprob.infer.hypotest(1.0, data, model, test_stat="qmu")
    with pytest.raises(
        ParameterError, match=r"poi_value: .*POI bounds \[0.0, 10.0\], got 11.0"
    ):
        hepprob.infer.hypotest(11.0, data, model)
    fixed = pmodel.config.suggested_fixed()
    fixed[pmodel.config.poi_index] = True
    with pytest.raises(ParameterError, match=r"fixed_params: the POI .* is fixed"):
        hepprob.infer.hypotest(1.0, data, model, fixed_params=fixed)
    with pytest.raises(DataError, match=r"data: expected a flat array of 2 numbers"):
        hepprob.infer.hypotest(1.0, data[:-1], model)
    bad = data.copy()
    bad[0] = np.nan
    with pytest.raises(
        DataError, match="data: expected finite numbers, got NaN/inf at positions"
    ):
        hepprob.infer.hypotest(1.0, bad, model)
    with pytest.raises(
        ParameterError, match="ntoys: expected a positive integer, got 0"
    ):
        hepprob.infer.hypotest(1.0, data, model, calctype="toybased", ntoys=0)
    bounds = pmodel.config.suggested_bounds()
    bounds[pmodel.config.poi_index] = [-5.0, 10.0]
    with pytest.warns(
        HepprobWarning, match="qmu_tilde needs the POI's lower bound at 0"
    ):
        hepprob.infer.hypotest(1.0, data, model, par_bounds=bounds)


# --- hypotest_model: any NumPyro model -------------------------------------------------

S, B, SIGMA = 4.0, 10.0, 2.0


def gaussian_model(x):
    """x ~ Normal(mu*S + B, SIGMA): the asymptotic formulas are exact here."""
    mu = hepprob.param("mu", 1.0, 0.0, 10.0)
    numpyro.sample("x", npd.Normal(mu * S + B, SIGMA), obs=x)


def gaussian_model_unbounded(x):
    mu = hepprob.param("mu", 1.0, -10.0, 10.0)
    numpyro.sample("x", npd.Normal(mu * S + B, SIGMA), obs=x)


@pytest.mark.parametrize(
    ("model", "stat", "x"),
    [(gaussian_model, "qtilde", 13.0), (gaussian_model_unbounded, "q", 8.0)],
)
def test_hypotest_model_hessian_method_is_exact_for_a_gaussian(model, stat, x):
    muhat, sig_mu = (x - B) / S, SIGMA / S
    mu = np.array([1.0, 2.0, 3.5])  # all above muhat: q_mu > 0
    # closed form: CLsb = P(muhat' <= muhat | mu), CLb = P(muhat' <= muhat | 0)
    ref_sb, ref_b = norm.cdf((muhat - mu) / sig_mu), norm.cdf(muhat / sig_mu)
    band = [norm.sf(n + mu / sig_mu) / norm.sf(n) for n in (2, 1, 0, -1, -2)]
    cls, tails, exp = hepprob.infer.hypotest_model(
        model, x, poi="mu", poi_value=mu, test_stat=stat,
        return_tail_probs=True, return_expected_set=True,
    )  # fmt: skip
    np.testing.assert_allclose(tails[0], ref_sb, rtol=1e-6)
    np.testing.assert_allclose(tails[1], np.broadcast_to(ref_b, mu.shape), rtol=1e-6)
    np.testing.assert_allclose(cls, ref_sb / ref_b, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(exp), band, rtol=1e-6)


def test_hypotest_model_q0_significance():
    x = 17.0
    muhat, sig_mu = (x - B) / S, SIGMA / S
    p0, p0_exp = hepprob.infer.hypotest_model(
        gaussian_model, x, poi_value=0.0, test_stat="q0", asimov_poi=1.0,
        return_expected=True,
    )  # fmt: skip
    assert np.shape(p0) == np.shape(p0_exp) == ()  # a scalar POI value gives scalars
    np.testing.assert_allclose(p0, norm.sf(muhat / sig_mu), rtol=1e-6)
    np.testing.assert_allclose(p0_exp, norm.sf(1.0 / sig_mu), rtol=1e-6)


def _poisson_logpdf(k, lam):
    """log Pois(k; lam) continued to non-integer k (Asimov data), as pyhf."""
    return xlogy(k, lam) - lam - gammaln(k + 1.0)


def counting_model(n, aux, s, b, tau):
    """A one-bin pyhf 'uncorrelated_background' model written in NumPyro."""
    mu = hepprob.param("mu", 1.0, 0.0, 10.0)
    gamma = hepprob.param("gamma", 1.0, 1e-10, 10.0)
    numpyro.factor("n", _poisson_logpdf(n, mu * s + gamma * b))
    numpyro.factor("aux", _poisson_logpdf(aux, gamma * tau))


def test_hypotest_model_with_asimov_dataset_matches_pyhf():
    s, b, db, n = 12.0, 50.0, 7.0, 62.0
    tau = (b / db) ** 2
    pyhf.set_backend("numpy")
    pmodel = pyhf.simplemodels.uncorrelated_background([s], [b], [db])
    data = [n, *pmodel.config.auxdata]
    asimov = pyhf.infer.calculators.generate_asimov_data(
        0.0, data, pmodel, pmodel.config.suggested_init(),
        pmodel.config.suggested_bounds(), pmodel.config.suggested_fixed(),
    )  # fmt: skip
    kw = {"return_tail_probs": True, "return_expected_set": True}
    ref = pyhf.infer.hypotest(1.0, data, pmodel, **kw)
    got = hepprob.infer.hypotest_model(
        counting_model, n, tau, s, b, tau, poi="mu", poi_value=1.0,
        asimov_args=(asimov[0], asimov[1], s, b, tau), **kw,
    )  # fmt: skip
    _close(got[0], ref[0], 1e-5)
    _close(got[1], ref[1], 1e-5)
    _close(got[2], ref[2], 1e-5)


def test_hypotest_model_bad_input():
    with pytest.raises(ParameterError, match="unknown parameter 'nu'"):
        hepprob.infer.hypotest_model(gaussian_model, 12.0, poi="nu", poi_value=1.0)
    with pytest.raises(ParameterError, match=r"poi_value: .*\[0.0, 10.0\], got -1.0"):
        hepprob.infer.hypotest_model(gaussian_model, 12.0, poi_value=-1.0)
    with pytest.raises(ParameterError, match="fixed: the POI 'mu' is fixed"):
        hepprob.infer.hypotest_model(gaussian_model, 12.0, poi_value=1.0, fixed=["mu"])
    with pytest.raises(ParameterError, match="calctype must be 'asymptotic'"):
        hepprob.infer.hypotest_model(
            gaussian_model, 12.0, poi_value=1.0, calctype="toybased"
        )
    with pytest.warns(
        HepprobWarning, match="qmu_tilde needs the lower bound of 'mu' at 0"
    ):
        hepprob.infer.hypotest_model(gaussian_model_unbounded, 12.0, poi_value=1.0)


# --- compiled programs are reused, never stale ------------------------------------------


def test_new_data_and_poi_reuse_the_program_and_match_pyhf(validation_dir):
    """Second and third calls on one model: new data, new POI, a scan; each vs pyhf."""
    model, data, pmodel = built("2bin_statex", validation_dir)
    eng = hepprob.infer.mle.engine(model)
    kw = {"return_tail_probs": True, "return_expected_set": True}
    shifted = data.copy()
    shifted[:2] += [7.0, -4.0]
    sizes = []
    for mu, obs in ((0.8, data), (0.8, shifted), (1.7, shifted), (0.3, data)):
        got = hepprob.infer.hypotest(mu, obs, model, **kw)
        ref = _pyhf(mu, obs, pmodel, **kw)
        for g, r in zip(got, ref, strict=True):
            _close(g, r, 1e-4)
        sizes.append(eng.jitted("rows", None)._cache_size())
    # after the first hypotest, new data and POI values compile nothing new
    assert sizes[1:] == sizes[:1] * 3
    scan = np.linspace(0.0, 5.0, 11)
    lim = hepprob.infer.upper_limit(shifted, model, scan=scan)
    pyhf.set_backend("numpy")
    ref = pyhf.infer.intervals.upper_limits.upper_limit(shifted, pmodel, scan=scan)
    np.testing.assert_allclose(float(lim[0]), float(ref[0]), rtol=1e-2)
    np.testing.assert_allclose(np.asarray(lim[1]), np.asarray(ref[1]), rtol=1e-2)


def test_hypotest_model_reuses_its_program_on_new_data():
    """A second dataset of the same shape gives its own closed-form answer, no recompile."""
    from hepprob.infer._batch import program_of
    from hepprob.infer.fit import _prepare_model

    mu = np.array([1.0, 2.5])
    sizes = []
    for x in (13.0, 9.5):
        muhat, sig_mu = (x - B) / S, SIGMA / S
        cls, tails = hepprob.infer.hypotest_model(
            gaussian_model, x, poi_value=mu, return_tail_probs=True
        )
        ref_sb, ref_b = norm.cdf((muhat - mu) / sig_mu), norm.cdf(muhat / sig_mu)
        np.testing.assert_allclose(tails[0], ref_sb, rtol=1e-6)
        np.testing.assert_allclose(cls, ref_sb / ref_b, rtol=1e-6)
        objective = _prepare_model(gaussian_model, (x,), {}).objective
        sizes.append(program_of(objective)._cache_size())
    assert sizes[1] == sizes[0]  # the second dataset compiled nothing new
