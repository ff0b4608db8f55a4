"""Data in and out: ROOT files (uproot), histograms, pandas, JSON.

What to use when:

* :func:`read_tree` — TTree branches as NumPy arrays, for unbinned fits.
* :func:`read_hist` — a ROOT TH1 as ``(counts, edges, variances)``, for templates.
* :func:`from_hist` — a ``hist``/boost-histogram (or anything with the UHI
  ``values()``/``axes`` protocol) as ``(counts, edges, variances)``.
* :func:`from_frame` — DataFrame columns as arrays (NaN rows refused).
* :func:`save_json` / :func:`load_json` — workspaces and results as JSON.
* :func:`read_hs3` — the HistFactory part of an HS3 JSON file as a workspace
  (``Workspace.to_hs3()`` writes one).
* :func:`read_datacard` — a CMS Combine datacard as a workspace whose model is
  Combine's likelihood (POI ``r``).
* :func:`load_workspace` — any of pyhf JSON, HS3, datacard, HistFactory XML,
  the format detected from the content; :func:`convert` between them.

uproot is imported lazily (``pip install "hepprob[io]"``).
"""

from __future__ import annotations

from hepprob.io.arrays import from_frame, from_hist, read_hist, read_tree
from hepprob.io.configured import ConfiguredWorkspace
from hepprob.io.datacard import read_datacard
from hepprob.io.formats import convert, detect_format, load_workspace
from hepprob.io.hs3 import read_hs3
from hepprob.io.jsonio import load_json, save_json

__all__ = [
    "ConfiguredWorkspace",
    "convert",
    "detect_format",
    "from_frame",
    "from_hist",
    "load_json",
    "load_workspace",
    "read_datacard",
    "read_hist",
    "read_hs3",
    "read_tree",
    "save_json",
]


def __dir__() -> list[str]:
    return __all__
