"""Arrays and histograms from ROOT files, UHI histograms and data frames."""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from hepprob._optional import require
from hepprob.errors import DataError

__all__ = ["from_frame", "from_hist", "read_hist", "read_tree"]


def _open(path: str | pathlib.Path) -> Any:
    uproot = require("uproot", "reading ROOT files")
    path = pathlib.Path(path)
    if not path.is_file():
        msg = f"ROOT file not found: {path}"
        raise DataError(msg)
    return uproot.open(path)


def _get(file: Any, name: str, path: Any) -> Any:
    try:
        return file[name]
    except KeyError:
        keys = sorted({k.split(";")[0] for k in file.keys()})  # noqa: SIM118
        msg = f"{path}: no object {name!r}; the file holds {keys}"
        raise DataError(msg) from None


def read_tree(
    path: str | pathlib.Path,
    tree: str,
    branches: Sequence[str],
    *,
    cut: Callable[[dict[str, np.ndarray]], np.ndarray] | None = None,
    cut_branches: Sequence[str] = (),
) -> dict[str, np.ndarray]:
    """Read TTree branches into float64 NumPy arrays (one per branch).

    Args:
        path: the ROOT file.
        tree: the TTree's name (``dir/name`` for trees in folders).
        branches: branch names to read.
        cut: optional selection, a function of ``{branch: array}`` (the requested
            branches plus ``cut_branches``) returning a boolean mask, e.g.
            ``lambda a: a["pt"] > 2``.
        cut_branches: extra branches the cut needs but the result does not.

    Raises:
        DataError: missing file, tree or branch; empty selection; NaN values.
    """
    with _open(path) as file:
        ttree = _get(file, tree, path)
        wanted = list(dict.fromkeys([*branches, *cut_branches]))
        missing = [b for b in wanted if b not in ttree]
        if missing:
            msg = f"{path}:{tree}: no branch {missing}; it has {list(ttree.keys())}"
            raise DataError(msg)
        arrays = {
            b: np.asarray(a, dtype=np.float64)
            for b, a in ttree.arrays(wanted, library="np").items()
        }
    mask = slice(None) if cut is None else np.asarray(cut(arrays), dtype=bool)
    out = {b: arrays[b][mask] for b in branches}
    for name, values in out.items():
        if values.size == 0:
            msg = f"{path}:{tree}: branch {name!r} gives no events (after the cut)"
            raise DataError(msg)
        if np.isnan(values).any():
            msg = f"{path}:{tree}: branch {name!r} holds NaN values"
            raise DataError(msg)
    return out


def read_hist(
    path: str | pathlib.Path, name: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read a 1-D ROOT histogram (TH1) as ``(counts, edges, variances)``."""
    with _open(path) as file:
        return from_hist(_get(file, name, path))


def from_hist(histogram: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(counts, edges, variances)`` of a 1-D UHI histogram (hist, boost, uproot).

    Variances default to the counts (unweighted filling) when the histogram has
    no variance storage.
    """
    try:
        counts = np.asarray(histogram.values(), dtype=np.float64)
        edges = np.asarray(histogram.axes[0].edges(), dtype=np.float64)
    except (AttributeError, TypeError):
        edges_attr = getattr(getattr(histogram, "axes", [None])[0], "edges", None)
        if edges_attr is None:
            msg = f"not a histogram with values() and axes: {type(histogram).__name__}"
            raise DataError(msg) from None
        edges = np.asarray(edges_attr, dtype=np.float64)
        counts = np.asarray(histogram.values(), dtype=np.float64)
    if counts.ndim != 1 or edges.shape != (counts.size + 1,):
        msg = f"need a 1-D histogram, got values of shape {counts.shape}"
        raise DataError(msg)
    variances = histogram.variances() if hasattr(histogram, "variances") else None
    var = counts.copy() if variances is None else np.asarray(variances, np.float64)
    return counts, edges, var


def from_frame(frame: Any, columns: Sequence[str]) -> dict[str, np.ndarray]:
    """Columns of a pandas DataFrame (or any mapping of arrays) as float64 arrays."""
    out = {}
    for col in columns:
        if col not in frame:
            msg = f"no column {col!r}; available: {list(frame.keys())}"
            raise DataError(msg)
        values = np.asarray(frame[col], dtype=np.float64)
        if values.size == 0 or np.isnan(values).any():
            msg = f"column {col!r} is empty or holds NaN values"
            raise DataError(msg)
        out[col] = values
    return out
