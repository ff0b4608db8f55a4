"""The demo: truth recovery, agreement with iminuit on a scipy NLL and with pyhf,
the readable report and its plots."""

from __future__ import annotations

import json
import pathlib
import re

import iminuit
import jax
import numpy as np
import pytest
from scipy import stats

import hepprob
from hepprob import demo
from hepprob._display import round_to_error
from hepprob.errors import ParameterError

N = 2000


def scipy_nll(p, x):
    mu, sigma, lam, frac = p
    cb = stats.crystalball(demo.ALPHA, demo.N_TAIL, loc=mu, scale=sigma)
    sig = cb.pdf(x) / (cb.cdf(demo.HIGH) - cb.cdf(demo.LOW))
    width = demo.HIGH - demo.LOW
    # slope lam < 0: a decay rate -lam, as scipy's truncated exponential has
    bkg = stats.truncexpon(b=-lam * width, loc=demo.LOW, scale=-1 / lam).pdf(x)
    return -np.sum(np.log(frac * sig + (1 - frac) * bkg))


def test_demo_run_agrees_with_iminuit():
    out = demo.run(seed=3, n_events=N, search=False, mcmc_samples=0, minos=True)
    again = json.loads(json.dumps(out))
    assert again == out
    assert out["converged"]
    assert set(out["values"]) == {"mu", "sigma", "lam", "frac"}
    for name, truth in demo.TRUTH.items():
        assert abs(out["values"][name] - truth) < 4 * out["errors"][name], name

    mass = demo.generate(jax.random.key(3), N)
    assert mass.shape == (N,)
    assert np.all((mass > demo.LOW) & (mass < demo.HIGH))
    names = ["mu", "sigma", "lam", "frac"]
    m = iminuit.Minuit(
        lambda p: scipy_nll(p, mass), [5.27, 0.03, -2.0, 0.5], name=names
    )
    m.errordef = iminuit.Minuit.LIKELIHOOD
    m.limits = [(5.2, 5.35), (0.005, 0.1), (-20.0, -0.01), (0.0, 1.0)]
    m.strategy = 2
    m.tol = 1e-6
    m.migrad()
    m.hesse()
    assert m.valid
    for name in names:
        np.testing.assert_allclose(out["values"][name], m.values[name], rtol=1e-3)
        np.testing.assert_allclose(out["errors"][name], m.errors[name], rtol=1e-2)
    np.testing.assert_allclose(out["nll"], m.fval, rtol=1e-8)
    m.minos()
    for name in names:
        low, high = out["minos"][name]
        best = out["values"][name]
        np.testing.assert_allclose(best - low, -m.merrors[name].lower, rtol=1e-2)
        np.testing.assert_allclose(high - best, m.merrors[name].upper, rtol=1e-2)


def test_generated_sample_follows_the_truth():
    mass = demo.generate(jax.random.key(7), 4000)
    t = demo.TRUTH
    cb = stats.crystalball(demo.ALPHA, demo.N_TAIL, loc=t["mu"], scale=t["sigma"])
    width = demo.HIGH - demo.LOW
    bkg = stats.truncexpon(b=-t["lam"] * width, loc=demo.LOW, scale=-1 / t["lam"])
    norm = cb.cdf(demo.HIGH) - cb.cdf(demo.LOW)

    def cdf(x):
        return t["frac"] * (cb.cdf(x) - cb.cdf(demo.LOW)) / norm + (
            1 - t["frac"]
        ) * bkg.cdf(x)

    assert stats.kstest(mass, cdf).pvalue > 1e-3


def test_demo_bad_input():
    with pytest.raises(
        ParameterError, match=r"n_events must be an integer >= 10, got 5"
    ):
        demo.run(n_events=5)
    with pytest.raises(ParameterError, match=r"seed must be an integer, got 'a'"):
        demo.run(seed="a")


def test_demo_search_matches_pyhf_and_posterior_is_sane(tmp_path):
    import pyhf

    out = demo.run(seed=4, n_events=N, mcmc_samples=100, minos=True)
    search = out["search"]
    pyhf.set_backend("numpy")
    ws = pyhf.Workspace(search["workspace"])
    model = ws.model()
    data = ws.data(model)
    cls_obs, cls_exp = pyhf.infer.hypotest(1.0, data, model, return_expected_set=True)
    assert search["CLs_obs"] == pytest.approx(float(cls_obs), abs=1e-4)
    assert search["CLs_exp"] == pytest.approx([float(c) for c in cls_exp], abs=1e-4)
    obs, exp = pyhf.infer.intervals.upper_limits.upper_limit(
        data, model, scan=np.linspace(0.05, 10.0, 200)
    )
    assert search["upper_limit_obs"] == pytest.approx(float(obs), rel=1e-2)
    assert search["upper_limit_exp"] == pytest.approx([float(e) for e in exp], rel=1e-2)
    # the CLs scan drawn in the Brazil band is pyhf's at the same points
    scan = search["scan"]
    for i in (0, len(scan["mu"]) // 2):
        obs_i, exp_i = pyhf.infer.hypotest(
            scan["mu"][i], data, model, return_expected_set=True
        )
        assert scan["CLs_obs"][i] == pytest.approx(float(obs_i), abs=1e-4)
        got = [row[i] for row in scan["CLs_exp"]]
        assert got == pytest.approx([float(e) for e in exp_i], abs=1e-4)
    post = out["posterior"]
    for name in ("mu", "sigma"):
        # the posterior (flat priors) sits on the likelihood peak: within 3 errors
        assert abs(post[name]["mean"] - out["values"][name]) < 3 * out["errors"][name]
        assert post[name]["sd"] == pytest.approx(out["errors"][name], rel=0.3)
        assert post[name]["hdi_16%"] < post[name]["mean"] < post[name]["hdi_84%"]
        assert 0.99 < post[name]["r_hat"] < 1.1  # four chains: R-hat exists

    # the report shows these numbers, rounded by the PDG rule, and the plots
    files = demo.plots(out, tmp_path / "plots")
    assert [pathlib.Path(f).name for f in files] == [
        "fit.png",
        "search.png",
        "cls_scan.png",
    ]
    for f in files:
        assert pathlib.Path(f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = demo.report(out, files)
    for name in out["values"]:
        value, error = round_to_error(out["values"][name], out["errors"][name])
        assert re.search(
            rf"^{name} .* {re.escape(value)} +{re.escape(error)} ", text, re.MULTILINE
        )
    assert f"{search['CLs_obs']:.4g}" in text
    assert f"{search['upper_limit_obs']:.4g}" in text
    assert f"plots written to {tmp_path / 'plots'}/" in text
    assert not re.search(r"\bnan\b", text, re.IGNORECASE)


def test_demo_defaults_give_limits_with_cls_at_the_level_in_pyhf():
    """`hepprob demo` as shipped (seed 0, 10^4 events): the limit search works.

    Here the fit at mu = 0 leaves a q of rounding size with q_A = 0, where the
    second branch of the qtilde formula is 0/0: CLs(0) must be 1, as in pyhf.
    """
    import pyhf

    from hepprob.histfactory import Workspace

    search = demo.run(mcmc_samples=0)["search"]
    pyhf.set_backend("numpy")
    ws = pyhf.Workspace(search["workspace"])
    model = ws.model()
    data = ws.data(model)
    ours_ws = Workspace(search["workspace"])
    ours = ours_ws.model()
    cls0 = hepprob.infer.hypotest(0.0, ours_ws.data(ours), ours)
    assert float(cls0) == pytest.approx(float(pyhf.infer.hypotest(0.0, data, model)))
    limits = [search["upper_limit_obs"], *search["upper_limit_exp"]]
    for i, mu in enumerate(limits):
        cls_obs, cls_exp = pyhf.infer.hypotest(
            mu, data, model, return_expected_set=True
        )
        got = float(cls_obs) if i == 0 else float(cls_exp[i - 1])
        assert got == pytest.approx(0.05, abs=1e-4)


def test_demo_command_prints_tables_without_warnings_and_strict_json(tmp_path):
    from click.testing import CliRunner

    from hepprob.cli import cli

    args = ["demo", "--events", str(N), "--mcmc-samples", "60", "--seed", "4"]
    out = CliRunner().invoke(cli, [*args, "--plot-dir", str(tmp_path)])
    assert out.exit_code == 0, out.output
    assert "Warning" not in out.output
    assert "warning" not in out.output
    assert "1. unbinned fit: converged" in out.output
    assert "95% CL upper limit on mu" in out.output
    assert "3. NUTS posterior (4 chains x 60 draws" in out.output
    assert (
        f"plots written to {tmp_path}/: fit.png, search.png, cls_scan.png" in out.output
    )
    assert len(out.output.splitlines()) < 60
    out = CliRunner().invoke(cli, [*args, "--json", "--no-plots"])
    assert out.exit_code == 0, out.output
    parsed = json.loads(out.output, parse_constant=lambda c: pytest.fail(c))
    assert parsed["converged"]
    assert set(parsed["minos"]) == set(demo.TRUTH)
    assert parsed["plots"] == []
