"""hepprob.io reads what uproot/NumPy wrote, and refuses bad input clearly."""

from __future__ import annotations

import numpy as np
import pytest
import uproot

from hepprob import io
from hepprob.errors import DataError


@pytest.fixture
def root_file(tmp_path):
    rng = np.random.default_rng(7)
    mass = rng.normal(5.28, 0.03, 500)
    pt = rng.exponential(3.0, 500)
    counts, edges = np.histogram(mass, bins=20, range=(5.1, 5.4))
    path = tmp_path / "events.root"
    with uproot.recreate(path) as file:
        file["events"] = {"mass": mass, "pt": pt}
        file["h_mass"] = (counts.astype(np.float64), edges)
    return path, mass, pt, counts, edges


def test_read_tree_and_cut(root_file):
    path, mass, pt, _, _ = root_file
    got = io.read_tree(path, "events", ["mass", "pt"])
    np.testing.assert_array_equal(got["mass"], mass)
    np.testing.assert_array_equal(got["pt"], pt)
    cut = io.read_tree(
        path, "events", ["mass"], cut=lambda a: a["pt"] > 2, cut_branches=["pt"]
    )
    np.testing.assert_array_equal(cut["mass"], mass[pt > 2])
    with pytest.raises(DataError, match="no branch"):
        io.read_tree(path, "events", ["energy"])
    with pytest.raises(DataError, match="no object 'tree'"):
        io.read_tree(path, "tree", ["mass"])
    with pytest.raises(DataError, match="no events"):
        io.read_tree(
            path, "events", ["mass"], cut=lambda a: a["pt"] < 0, cut_branches=["pt"]
        )


def test_read_hist(root_file):
    path, _, _, counts, edges = root_file
    c, e, v = io.read_hist(path, "h_mass")
    np.testing.assert_array_equal(c, counts)
    np.testing.assert_array_equal(e, edges)
    assert v.shape == c.shape
    with pytest.raises(DataError, match="not found"):
        io.read_hist(path.with_name("missing.root"), "h_mass")


def test_validation_histograms_are_readable(validation_dir):
    path = validation_dir / "xml" / "multibin_histfactory" / "data" / "data.root"
    with uproot.open(path) as file:
        name = next(
            k.split(";")[0]
            for k, cls in file.classnames().items()
            if cls.startswith("TH1")
        )
        reference = file[name].to_numpy()
    counts, edges, _ = io.read_hist(path, name)
    np.testing.assert_array_equal(counts, reference[0])
    np.testing.assert_array_equal(edges, reference[1])


def test_frame_and_json(tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"x": [1.0, 2.0], "y": [3.0, np.nan]})
    np.testing.assert_array_equal(io.from_frame(frame, ["x"])["x"], [1.0, 2.0])
    with pytest.raises(DataError, match="NaN"):
        io.from_frame(frame, ["y"])
    with pytest.raises(DataError, match="no column"):
        io.from_frame(frame, ["z"])
    io.save_json({"a": np.arange(3.0), "b": np.float64(2.5)}, tmp_path / "r.json")
    assert io.load_json(tmp_path / "r.json") == {"a": [0.0, 1.0, 2.0], "b": 2.5}
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(DataError, match="not valid JSON"):
        io.load_json(tmp_path / "bad.json")
