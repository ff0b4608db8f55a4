"""sWeights against a numpy sPlot, hepstats' compute_sweights and the sum rules."""

from __future__ import annotations

import numpy as np
import numpyro
import numpyro.distributions as npd
import pytest
import scipy.stats as st

import hepprob
from hepprob import dist
from hepprob.errors import HepprobWarning, ModelError, ParameterError

LOW, HIGH = 5.0, 5.6


def mass_model(mass):
    m = hepprob.param("m", 5.28, 5.2, 5.35)
    sigma = hepprob.param("sigma", 0.03, 0.005, 0.1)
    lam = hepprob.param("lam", -1.0, -10.0, 10.0)
    nsig = hepprob.param("nsig", 200.0, 0.0, 5000.0)
    nbkg = hepprob.param("nbkg", 800.0, 0.0, 5000.0)
    signal = dist.Truncated(npd.Normal(m, sigma), LOW, HIGH)
    background = dist.Exponential(lam, low=LOW, high=HIGH)
    numpyro.sample("mass", dist.Extended([signal, background], [nsig, nbkg]), obs=mass)


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(4)
    u = rng.uniform(size=700)
    lam = -2.0  # inverse cdf of exp(lam x) on [LOW, HIGH]
    bkg = LOW + np.log1p(u * np.expm1(lam * (HIGH - LOW))) / lam
    sig = st.truncnorm.rvs(-9, 9, loc=5.28, scale=0.02, size=300, random_state=rng)
    mass = np.concatenate([sig, bkg])
    return mass, hepprob.fit(mass_model, mass)


def shapes_at(values, x):
    """The two normalised species densities at the fit, by scipy."""
    m, s, lam = values["m"], values["sigma"], values["lam"]
    a, b = (LOW - m) / s, (HIGH - m) / s
    f_sig = st.truncnorm(a, b, loc=m, scale=s).pdf(x)
    f_bkg = lam * np.exp(lam * (x - LOW)) / np.expm1(lam * (HIGH - LOW))
    return np.stack([f_sig, f_bkg], axis=1)


def numpy_splot(f, yields, w=None):
    """Pivk & Le Diberder eqs. (13)-(14), written out."""
    w = np.ones(f.shape[0]) if w is None else w
    g = f @ yields
    vinv = np.einsum("e,ej,ek->jk", w, f / g[:, None], f / g[:, None])
    return (f @ np.linalg.inv(vinv)) / g[:, None]


def test_sweights_formula_and_sum_rules(fitted):
    mass, res = fitted
    sw = hepprob.infer.sweights(res, mass_model, mass, ["nsig", "nbkg"])
    yields = np.array([res.values["nsig"], res.values["nbkg"]])
    expected = numpy_splot(shapes_at(res.values, mass), yields)
    np.testing.assert_allclose(sw["nsig"], expected[:, 0], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(sw["nbkg"], expected[:, 1], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(sw["nsig"].sum(), res.values["nsig"], rtol=1e-6)
    np.testing.assert_allclose(sw["nbkg"].sum(), res.values["nbkg"], rtol=1e-6)
    np.testing.assert_allclose(sw["nsig"] + sw["nbkg"], 1.0, atol=1e-10)


def test_sweights_match_hepstats(fitted):
    from hepstats import splot  # the test extra has it
    mass, res = fitted
    f = shapes_at(res.values, mass)

    class Yield:
        def __init__(self, name, value):
            self.name, self.value = name, value

    class Pdf:  # the duck-typed zfit interface hepstats reads
        is_extended = True
        integrate = sample = space = None

        def __init__(self, pdf, yld, parts=()):
            self._pdf, self._yield, self._parts = pdf, yld, list(parts)

        def get_params(self):
            return []

        def get_yield(self):
            return self._yield

        def get_models(self):
            return self._parts

        def pdf(self, x):
            return self._pdf(x)

        def ext_pdf(self, x):
            return sum(p.get_yield().value * p.pdf(x) for p in self._parts)

    index = {float(x): i for i, x in enumerate(mass)}
    parts = [
        Pdf(lambda x, k=k: f[[index[float(v)] for v in x], k], Yield(n, res.values[n]))
        for k, n in enumerate(["nsig", "nbkg"])
    ]
    total = Pdf(None, None, parts)
    theirs = splot.compute_sweights(total, mass)
    ours = hepprob.infer.sweights(res, mass_model, mass)
    for part in parts:
        np.testing.assert_allclose(
            ours[part.get_yield().name], theirs[part.get_yield()], rtol=1e-8, atol=1e-10
        )


def test_sweights_padded_and_weighted(fitted):
    mass, _ = fitted

    def padded_model(mass, w):
        signal = npd.Normal(5.28, 0.02)
        background = npd.Uniform(LOW, HIGH)
        nsig = hepprob.param("nsig", 200.0, 0.0, 5000.0)
        nbkg = hepprob.param("nbkg", 800.0, 0.0, 5000.0)
        ext = dist.Extended(
            [signal, background], [nsig, nbkg], weights=w, max_events=1200
        )
        numpyro.sample("mass", ext, obs=mass)

    w = np.random.default_rng(5).uniform(0.5, 1.5, 1200)
    padded = dist.Extended.pad(mass, 1200)
    res = hepprob.fit(padded_model, padded, w)
    sw = hepprob.infer.sweights(res, padded_model, padded, ["nsig", "nbkg"], w)
    assert np.all(np.isnan(sw["nsig"][mass.size :]))
    f = np.stack(
        [st.norm(5.28, 0.02).pdf(mass), np.full(mass.size, 1 / (HIGH - LOW))], 1
    )
    yields = np.array([res.values["nsig"], res.values["nbkg"]])
    expected = numpy_splot(f, yields, w[: mass.size])
    np.testing.assert_allclose(
        sw["nsig"][: mass.size], expected[:, 0], rtol=1e-8, atol=1e-10
    )
    np.testing.assert_allclose(
        np.sum(w[: mass.size] * sw["nsig"][: mass.size]), yields[0], rtol=1e-6
    )


def test_sweights_bad_input(fitted):
    mass, res = fitted
    with pytest.raises(ParameterError, match="yield 'nfoo' must be a scalar parameter"):
        hepprob.infer.sweights(res, mass_model, mass, ["nsig", "nfoo"])
    with pytest.raises(ModelError, match="not the complete set of species yields"):
        hepprob.infer.sweights(res, mass_model, mass, ["nsig"])
    with pytest.raises(ModelError, match="not an Extended site"):
        hepprob.infer.sweights(res, mass_model, mass, site="other")

    def gauss(x):
        mu = hepprob.param("mu", 0.0, -1.0, 1.0)
        numpyro.sample("x", npd.Normal(mu, 1.0), obs=x)

    with pytest.raises(ParameterError, match="pass the result of fitting this model"):
        hepprob.infer.sweights(res, gauss, mass)
    moved = hepprob.fit(mass_model, mass, fixed={"nsig": 100.0})
    with pytest.warns(HepprobWarning, match="sum rule"):
        hepprob.infer.sweights(moved, mass_model, mass)
