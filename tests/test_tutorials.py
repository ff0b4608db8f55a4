"""Every tutorial runs top to bottom as a plain script (tiny settings), saves its
figures as PNG, and converts to a notebook with jupytext."""

from __future__ import annotations

import pathlib
import runpy

import matplotlib
import pytest

TUTORIALS = sorted(
    (pathlib.Path(__file__).resolve().parents[1] / "tutorials").glob("[0-9]*.py")
)
#: the tutorials that end with a plot saved through their ``show`` helper
WITH_FIGURES = {
    "01_unbinned_fit": ["01_profile_mu", "01_fit"],
    "02_pyhf_workspace": ["02_postfit_CR", "02_postfit_SR"],
    "03_limits_and_toys": ["03_brazil", "03_pulls"],
    "04_bayesian": ["04_posterior_mu"],
    "06_angular_kstarmumu": ["06_projections", "06_p5p_toys"],
    "07_scale_toys": ["07_pulls"],
}


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs(path, monkeypatch, tmp_path):
    matplotlib.use("Agg")
    monkeypatch.setenv("HEPPROB_TUTORIAL_QUICK", "1")
    monkeypatch.setenv("HEPPROB_TUTORIAL_OUTPUT", str(tmp_path))
    monkeypatch.chdir(path.parent)
    runpy.run_path(str(path), run_name="__main__")
    for name in WITH_FIGURES.get(path.stem, []):
        png = tmp_path / f"{name}.png"
        assert png.is_file(), f"{path.stem} did not save {name}.png"
        assert png.read_bytes()[:4] == b"\x89PNG"
        assert png.stat().st_size > 5_000  # a drawn figure, not an empty canvas


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_converts_to_a_notebook(path):
    import jupytext  # the "tutorials" extra (in "test" too)
    notebook = jupytext.read(path)
    kinds = {cell.cell_type for cell in notebook.cells}
    assert kinds == {"markdown", "code"}
    assert notebook.cells[0].cell_type == "markdown"
    assert notebook.cells[0].source.startswith("# ")  # the title
