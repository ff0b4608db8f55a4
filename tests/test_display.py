"""Result tables: the PDG rounding rule, text and HTML tables, result reprs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hepprob import _display


@pytest.mark.parametrize(
    ("value", "error", "want"),
    [
        # the examples of the PDG rule (Review of Particle Physics, Introduction)
        (0.827, 0.119, ("0.83", "0.12")),
        (0.827, 0.367, ("0.8", "0.4")),
        # 950-999 rounds up to 1000 and keeps two digits
        (1.0, 0.0996, ("1.00", "0.10")),
        (5.27961, 0.000412, ("5.2796", "0.0004")),
        (1203.7, 31.6, ("1204", "32")),
        (123456.0, 1234.0, ("123500", "1200")),
        (-0.00001, 0.3, ("0.00", "0.30")),
    ],
)
def test_round_to_error_follows_the_pdg_rule(value, error, want):
    assert _display.round_to_error(value, error) == want


def test_round_to_error_without_an_error():
    assert _display.round_to_error(1.23456789, 0.0) == ("1.23457", "0")
    assert _display.round_to_error(2.0, float("nan"))[0] == "2"


def test_table_text_aligns_and_html_escapes():
    table = _display.Table(
        ("name", "value"),
        (("a<b", "1.5"), ("long_name", "10.25")),
        title="T",
        notes=("note & more",),
    )
    lines = table.text().splitlines()
    assert lines[0] == "T"
    assert lines[2].startswith("-")
    assert lines[3] == "a<b          1.5"
    assert lines[4] == "long_name  10.25"
    assert lines[-1] == "note & more"
    html = table._repr_html_()
    assert "a&lt;b" in html
    assert "note &amp; more" in html
    assert repr(table) == table.text()


def test_correlation_table_shades_off_diagonal_cells():
    table = _display.correlation_table(["a", "b"], [[1.0, -0.5], [-0.5, 1.0]])
    assert table.rows == (("a", "1.00", "-0.50"), ("b", "-0.50", "1.00"))
    html = table.html()
    assert html.count("rgba(38,139,210,0.30)") == 2  # blue for negative, |rho| 0.5


def test_fit_result_repr_against_the_closed_form():
    """Gaussian mean: value = sample mean, Hesse error = sigma / sqrt(n)."""
    import numpyro
    import numpyro.distributions as nd

    import hepprob

    x = np.random.default_rng(2).normal(3.0, 2.0, size=400)

    def model(data):
        mu = hepprob.param("mu", 0.0, -10.0, 10.0)
        sigma = hepprob.param("sigma", 1.0, 0.1, 10.0)
        numpyro.sample("x", nd.Normal(mu, sigma), obs=data)

    result = hepprob.fit(model, x)
    sd = np.std(x)  # the MLE of sigma
    value, error = _display.round_to_error(np.mean(x), sd / math.sqrt(x.size))
    report = _display.fit_result(result)
    text = report.text()
    row = next(r for r in report.tables[0].rows if r[0] == "mu")
    assert row[1:3] == (value, error)
    assert text.splitlines()[0].startswith("FitResult: converged")
    assert text.count("converged") == 1
    assert "correlation" in text
    html = report.html()
    assert "<table>" in html
    assert value in html


def test_toy_table_and_pull_summary_are_numpy_statistics():
    rng = np.random.default_rng(4)
    truth = np.array([1.0, 5.0])
    values = truth + rng.normal(size=(300, 2)) * [0.1, 0.5]
    errors = np.tile([0.1, 0.5], (300, 1))
    converged = np.ones(300, bool)
    converged[:3] = False
    table = _display.toy_table(
        ["a", "b"], truth, values, errors, converged, [False, False]
    )
    assert table.title == (
        "ToyResult: 300 toys, 297 converged (3 failed fits kept, flagged in .converged)"
    )
    pulls = (values[3:, 1] - 5.0) / 0.5
    s = np.std(pulls, ddof=1)
    m, me = _display.round_to_error(np.mean(pulls), s / math.sqrt(297))
    assert table.rows[1][5] == f"{m} ± {me}"
    summary = {"a": {"mean": 0.01, "mean_error": 0.05, "width": 1.02,
                     "width_error": 0.04}}  # fmt: skip
    as_table = _display.pull_summary(summary)
    assert dict(as_table) == summary  # still a plain dict for code
    assert "0.01 ± 0.05" in repr(as_table)
    assert "<table>" in as_table._repr_html_()


def test_posterior_table_leaves_out_missing_columns():
    rows = [("mu", {"mean": 1.234, "sd": 0.21, "ess_bulk": 812.4, "r_hat": None})]
    table = _display.posterior_table(rows, notes=("r_hat needs two chains",))
    assert table.header == ("parameter", "mean", "sd", "ess_bulk", "r_hat")
    assert table.rows[0] == ("mu", "1.23", "0.21", "812", "-")
