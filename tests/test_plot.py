"""hepprob.plot draws what it is given; bin integrals and pulls against scipy."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
import scipy.stats as st

from hepprob import plot
from hepprob.errors import DataError

matplotlib.use("Agg")


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
