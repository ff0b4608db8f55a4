"""hepprob.plot draws what it is given: every plot rendered to PNG (Agg), its
drawn arrays checked against scipy, pyhf and closed forms."""

from __future__ import annotations

import os
import pathlib

import matplotlib
import matplotlib.patches
import matplotlib.pyplot as plt
import numpy as np
import pytest
import scipy.stats as st

from hepprob import plot
from hepprob.errors import DataError

matplotlib.use("Agg")
DATA = pathlib.Path(__file__).parent / "data"


def test_bin_integrals_match_normal_cdf():
    edges = np.linspace(-3, 3, 13)
    got = plot.bin_integrals(st.norm.pdf, edges)
    np.testing.assert_allclose(got, np.diff(st.norm.cdf(edges)), rtol=1e-10)


def test_projection_pulls_against_scipy():
    data = np.random.default_rng(3).normal(size=2000)
    _, pull_ax = plot.projection(st.norm.pdf, data, bins=20, range=(-4, 4))
    counts, edges = np.histogram(data, bins=20, range=(-4, 4))
    expected = data.size * np.diff(st.norm.cdf(edges))
    want = (counts - expected) / np.sqrt(expected)
    got = np.array([bar.get_height() for bar in pull_ax.patches])
    np.testing.assert_allclose(got, want, rtol=1e-8)
    with pytest.raises(DataError, match="empty"):
        plot.projection(st.norm.pdf, [])


def test_brazil_band_draws_inputs_and_checks_shapes():
    x = np.linspace(0, 3, 7)
    obs = np.exp(-x)
    exp = np.stack([np.exp(-x * k) for k in (0.6, 0.8, 1.0, 1.2, 1.4)])
    ax = plot.brazil_band(x, obs, exp)
    lines = {line.get_label(): line for line in ax.get_lines()}
    np.testing.assert_array_equal(lines["observed"].get_ydata(), obs)
    np.testing.assert_array_equal(lines["expected"].get_ydata(), exp[2])
    with pytest.raises(DataError, match="cls_exp of shape"):
        plot.brazil_band(x, obs, exp[:3])


def test_scan_pulls_ranking():
    ax = plot.profile_scan([0, 1, 2], [3.0, 2.5, 3.0])
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [1.0, 0.0, 1.0])
    ax = plot.pulls(["a", "b"], [0.1, -0.5], [0.9, 1.0])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
    ax = plot.ranking(["a", "b", "c"], [0.1, -0.3, 0.2], [-0.1, 0.35, -0.1])
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "b",
        "c",
        "a",
    ]  # largest impact first
    with pytest.raises(DataError, match="same length"):
        plot.pulls(["a"], [0.1, 0.2], [1.0, 1.0])


# -- rendered to PNG, content checked ------------------------------------------------

OUT = pathlib.Path(os.environ.get("HEPPROB_PLOT_DIR", ""))  # set to keep the PNGs


def save(fig, tmp_path, name):
    """Render to PNG (Agg) as a user would; keep it when HEPPROB_PLOT_DIR is set."""
    folder = OUT if str(OUT) not in ("", ".") else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    fig.savefig(path, dpi=80)
    assert path.read_bytes()[:4] == b"\x89PNG"
    plt.close(fig)


def stairs(ax):
    return [p for p in ax.patches if isinstance(p, matplotlib.patches.StepPatch)]


def test_stacked_draws_cumulative_yields_band_and_ratio(tmp_path):
    edges = np.array([0.0, 1.0, 2.0, 4.0])
    bkg, sig = np.array([10.0, 8.0, 4.0]), np.array([1.0, 3.0, 0.5])
    data, err = np.array([12.0, 10.0, 5.0]), np.array([1.0, 0.9, 0.4])
    main, ratio = plot.stacked(
        edges, {"bkg": bkg, "sig": sig}, data, error=err, title="SR"
    )
    filled = [p for p in stairs(main) if p.get_label() in ("bkg", "sig")]
    (v0, e0, b0), (v1, _, b1) = (
        (p.get_data().values, p.get_data().edges, p.get_data().baseline) for p in filled
    )
    np.testing.assert_array_equal(e0, edges)
    np.testing.assert_allclose([v0, b0, v1, b1], [bkg, 0 * bkg, bkg + sig, bkg])
    band = next(p for p in stairs(main) if p.get_label() == "uncertainty")
    np.testing.assert_allclose(band.get_data().values, bkg + sig + err)
    np.testing.assert_allclose(band.get_data().baseline, bkg + sig - err)
    points = ratio.lines[0].get_ydata()
    np.testing.assert_allclose(points, data / (bkg + sig))
    assert main.get_title() == "SR"
    labels = main.get_legend_handles_labels()[1]
    assert labels == ["bkg", "sig", "uncertainty", "data"]
    assert ratio.get_ylabel() == "data / pred."
    save(main.figure, tmp_path, "stacked")
    with pytest.raises(DataError, match="need 3 yields per sample"):
        plot.stacked(edges, {"bkg": bkg[:2]})


def finite_difference_jacobian(fn, x, step=1e-6):
    cols = []
    for i in range(x.size):
        dx = np.zeros_like(x)
        dx[i] = step
        cols.append((fn(x + dx) - fn(x - dx)) / (2 * step))
    return np.stack(cols, axis=-1)


def test_channel_stacks_pre_and_post_fit_match_pyhf_yields(tmp_path):
    import json

    import pyhf

    from hepprob.histfactory import Workspace

    spec = json.loads((DATA / "good_workspace_twochannel.json").read_text())
    pyhf.set_backend("numpy")
    ref_ws = pyhf.Workspace(spec)
    ref = ref_ws.model()
    ws = Workspace(spec)
    model = ws.model()
    data = ws.data(model)
    init = np.asarray(ref.config.suggested_init(), dtype=float)

    def total(p):
        return np.asarray(ref.main_model.expected_data(p))

    # pre-fit: band from the constraint widths (pyhf's per-parameter widths)
    widths = np.zeros(init.size)
    for name in ref.config.par_order:
        pset = ref.config.param_set(name)
        if getattr(pset, "constrained", False):
            widths[ref.config.par_slice(name)] = pset.width()
    jac = finite_difference_jacobian(total, init)
    want_band = np.sqrt(np.einsum("bi,i,bi->b", jac, widths**2, jac))
    by_sample = np.asarray(ref.main_model.expected_data(init, return_by_sample=True))
    stacks = plot.channel_stacks(model, data)
    assert sorted(stacks) == ["CR", "SR"]
    for channel, (main, _) in stacks.items():
        sl = ref.config.channel_slices[channel]
        drawn = {p.get_label(): p.get_data() for p in stairs(main)}
        present = [s for s in ref.config.samples if s in drawn]
        assert present, channel
        for s in present:  # each layer is that sample's pyhf yield
            layer = drawn[s].values - drawn[s].baseline
            want = by_sample[ref.config.samples.index(s), sl]
            np.testing.assert_allclose(layer, want, rtol=1e-8)
        # the top of the stack is pyhf's total
        np.testing.assert_allclose(
            drawn[present[-1]].values, total(init)[sl], rtol=1e-8
        )
        band = drawn["uncertainty"]
        np.testing.assert_allclose(
            (band.values - band.baseline) / 2, want_band[sl], rtol=1e-5, atol=1e-9
        )
        assert main.get_title() == f"{channel} (pre-fit)"
        save(main.figure, tmp_path, f"stack_prefit_{channel}")
    # post-fit: at given parameters with a given covariance
    pars = init + 0.1
    cov = np.diag(np.full(init.size, 0.01)) + 0.002
    stacks = plot.channel_stacks(model, data, pars, cov)
    jac = finite_difference_jacobian(total, pars)
    want_band = np.sqrt(np.einsum("bi,ij,bj->b", jac, cov, jac))
    for channel, (main, _) in stacks.items():
        sl = ref.config.channel_slices[channel]
        band = next(p for p in stairs(main) if p.get_label() == "uncertainty")
        np.testing.assert_allclose(
            (band.get_data().values + band.get_data().baseline) / 2,
            total(pars)[sl],
            rtol=1e-8,
        )
        np.testing.assert_allclose(
            (band.get_data().values - band.get_data().baseline) / 2,
            want_band[sl],
            rtol=1e-5,
        )
        assert main.get_title() == f"{channel} (post-fit)"
        plt.close(main.figure)


def monte_carlo_density(test_stat, poi, truth, sigma, edges, n=400_000):
    """Histogram of the test statistic from mu_hat ~ N(truth, sigma) (Wald)."""
    mu_hat = np.random.default_rng(11).normal(truth, sigma, n)
    if test_stat == "q":
        q = np.where(mu_hat < poi, ((poi - mu_hat) / sigma) ** 2, 0.0)
    else:  # qtilde, arXiv:1007.1727 eq. (16) in the Wald approximation
        q = np.where(
            mu_hat > poi,
            0.0,
            np.where(
                mu_hat >= 0,
                ((poi - mu_hat) / sigma) ** 2,
                (poi**2 - 2 * poi * mu_hat) / sigma**2,
            ),
        )
    counts, _ = np.histogram(q, bins=edges)
    width = np.diff(edges)
    return counts / (n * width), np.sqrt(counts) / (n * width)


@pytest.mark.parametrize(
    ("test_stat", "truth"), [("q", 1.0), ("q", 0.0), ("qtilde", 1.0), ("qtilde", 0.0)]
)
def test_asymptotic_density_matches_monte_carlo_of_the_wald_approximation(
    test_stat, truth
):
    poi, sigma = 1.0, 0.6
    edges = np.linspace(0.2, 12.0, 40)
    want, err = monte_carlo_density(test_stat, poi, truth, sigma, edges)
    centres = 0.5 * (edges[1:] + edges[:-1])
    # bin average of the closed form, by quadrature
    got = plot.bin_integrals(
        lambda q: plot.asymptotic_density(
            q, test_stat=test_stat, poi=poi, truth=truth, sigma=sigma
        ),
        edges,
    ) / np.diff(edges)
    ok = want > 0
    assert np.all(np.abs(got[ok] - want[ok]) < 5 * err[ok] + 1e-4), centres[ok]


def test_toy_distribution_draws_the_toys_and_the_curves(tmp_path):
    rng = np.random.default_rng(5)
    sb = np.maximum(rng.normal(size=3000), 0.0) ** 2  # 1/2 delta + 1/2 chi2_1
    b = np.maximum(rng.normal(1.5, 1.0, size=3000), 0.0) ** 2
    ax = plot.toy_distribution(
        {"s+b": sb, "b": b},
        test_stat="q",
        poi=1.0,
        sigma=1 / 1.5,
        observed=2.0,
        bins=30,
    )
    hists = [p for p in ax.patches if p.get_label().startswith("toys")]
    assert [h.get_label() for h in hists] == ["toys s+b (3000)", "toys b (3000)"]
    lines = {line.get_label(): line for line in ax.get_lines()}
    x = lines["asymptotic s+b"].get_xdata()
    np.testing.assert_allclose(
        lines["asymptotic s+b"].get_ydata(), 0.5 * st.chi2.pdf(x, 1), rtol=1e-10
    )
    # under b with Lambda = mu/sigma = 1.5: the noncentral form of eq. (57)
    lam = 1.5
    want_b = np.exp(-0.5 * (np.sqrt(x) - lam) ** 2) / (2 * np.sqrt(2 * np.pi * x))
    np.testing.assert_allclose(lines["asymptotic b"].get_ydata(), want_b, rtol=1e-10)
    assert lines["observed"].get_xdata()[0] == 2.0
    assert ax.get_yscale() == "log"
    assert ax.get_xlabel() == r"$q_\mu$"
    # the histogram is the toys' density
    edges = np.linspace(0, max(sb.max(), b.max()), 31)
    counts = np.histogram(sb, bins=edges)[0] / (sb.size * np.diff(edges))
    np.testing.assert_allclose(
        hists[0].get_path().vertices[1:-1:2, 1][: counts.size], counts, rtol=1e-10
    )
    save(ax.figure, tmp_path, "toy_distribution")
    with pytest.raises(DataError, match="no finite toy values"):
        plot.toy_distribution({"s+b": [np.nan]})


def test_contour_closes_each_curve_and_marks_the_best_fit(tmp_path):
    t = np.linspace(0, 2 * np.pi, 30, endpoint=False)
    ax = plot.contour(
        {"68%": (np.cos(t), 0.5 * np.sin(t)), "95%": (2 * np.cos(t), np.sin(t))},
        best=(0.0, 0.0),
        xlabel="a",
        ylabel="b",
    )
    lines = {line.get_label(): line for line in ax.get_lines()}
    x68 = lines["68%"].get_xdata()
    assert x68.size == 31
    assert x68[0] == x68[-1]
    np.testing.assert_allclose(lines["95%"].get_ydata()[:-1], np.sin(t))
    assert list(lines["best fit"].get_xdata()) == [0.0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("a", "b")
    save(ax.figure, tmp_path, "contour")
    with pytest.raises(DataError, match="equal length"):
        plot.contour({"bad": ([0, 1, 2], [0, 1])})


def test_pull_plot_takes_pulls_with_constraints(tmp_path):
    class Pulls:  # the fields of hepprob.infer.diagnostics.Pulls
        names = ("alpha_jes", "alpha_lumi", "gamma[0]")
        pulls = np.array([0.3, -1.2, 0.05])
        constraints = np.array([0.8, 1.0, 0.4])

    ax = plot.pulls(Pulls())
    bars = ax.containers[0]
    np.testing.assert_array_equal(bars.lines[0].get_xdata(), Pulls.pulls)
    segments = bars.lines[2][0].get_segments()
    np.testing.assert_allclose(
        [s[1, 0] - s[0, 0] for s in segments], 2 * Pulls.constraints
    )
    assert [t.get_text() for t in ax.get_yticklabels()] == list(Pulls.names)
    save(ax.figure, tmp_path, "pulls")


def test_use_style_applies_mplhep_when_installed():
    with matplotlib.rc_context():
        applied = plot.use_style("ROOT")
        try:
            import mplhep  # noqa: F401
        except ImportError:
            assert applied is False
        else:
            assert applied is True
            assert matplotlib.rcParams["xtick.direction"] == "in"


def test_existing_plots_render(tmp_path):
    x = np.linspace(0, 3, 7)
    exp = np.stack([np.exp(-x * k) for k in (0.6, 0.8, 1.0, 1.2, 1.4)])
    save(plot.brazil_band(x, np.exp(-x), exp).figure, tmp_path, "brazil")
    save(plot.profile_scan([0, 1, 2], [3.0, 2.5, 3.0]).figure, tmp_path, "scan")
    ax = plot.ranking(["a", "b", "c"], [0.1, -0.3, 0.2], [-0.1, 0.35, -0.1])
    save(ax.figure, tmp_path, "ranking")
    data = np.random.default_rng(3).normal(size=500)
    main, _ = plot.projection(st.norm.pdf, data, bins=20, range=(-4, 4))
    save(main.figure, tmp_path, "projection")
