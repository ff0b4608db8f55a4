"""Lazy import of optional dependencies, with an install hint when missing."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["require"]

# module name -> the pip extra of hepprob that brings it
_EXTRAS = {
    "iminuit": "minuit",
    "uproot": "io",
    "pymc": "pymc",
    "pytensor": "pymc",
    "matplotlib": "plot",
    "dask": "dask",
    "distributed": "dask",
    "pyhf": "test",
    "hist": "io",
    "pandas": "io",
}


def require(module: str, purpose: str = "") -> ModuleType:
    """Import ``module`` or raise ``ImportError`` saying how to install it.

    Args:
        module: the importable name, e.g. ``"iminuit"``.
        purpose: what hepprob needs it for, shown in the message.
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        top = module.split(".")[0]
        extra = _EXTRAS.get(top)
        hint = f'pip install "hepprob[{extra}]"' if extra else f"pip install {top}"
        what = f" for {purpose}" if purpose else ""
        msg = f"{top} is needed{what} but is not installed; install it with: {hint}"
        raise ImportError(msg) from err
