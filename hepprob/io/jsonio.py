"""JSON for workspaces and results: arrays and NumPy scalars written as plain lists."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import numpy as np

from hepprob.errors import DataError

__all__ = ["load_json", "save_json", "to_jsonable"]


def to_jsonable(obj: Any) -> Any:
    """Turn NumPy/JAX arrays and scalars, nested in dicts/lists, into plain JSON."""
    if hasattr(obj, "to_dict") and not isinstance(obj, dict):
        return to_jsonable(obj.to_dict())
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "shape") and hasattr(obj, "dtype"):
        arr = np.asarray(obj)
        return arr.item() if arr.ndim == 0 else arr.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def save_json(obj: Any, path: str | pathlib.Path) -> None:
    """Write ``obj`` (a workspace dict, a FitResult, arrays...) as JSON."""
    pathlib.Path(path).write_text(json.dumps(to_jsonable(obj), indent=2) + "\n")


def load_json(path: str | pathlib.Path) -> Any:
    """Read a JSON file, with an error naming the file and line on bad input."""
    path = pathlib.Path(path)
    try:
        return json.loads(path.read_text())
    except OSError as err:
        msg = f"cannot read {path}: {err.strerror}"
        raise DataError(msg) from None
    except json.JSONDecodeError as err:
        msg = f"{path} is not valid JSON ({err.msg}, line {err.lineno})"
        raise DataError(msg) from None
