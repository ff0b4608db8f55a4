"""Every tutorial runs, top to bottom, as a plain script (with tiny settings)."""

from __future__ import annotations

import pathlib
import runpy

import matplotlib
import pytest

TUTORIALS = sorted(
    (pathlib.Path(__file__).resolve().parents[1] / "tutorials").glob("[0-9]*.py")
)


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs(path, monkeypatch):
    matplotlib.use("Agg")
    monkeypatch.setenv("HEPPROB_TUTORIAL_QUICK", "1")
    monkeypatch.chdir(path.parent)
    runpy.run_path(str(path), run_name="__main__")
