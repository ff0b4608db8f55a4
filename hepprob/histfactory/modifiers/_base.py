"""The modifier contract: checked data and the parameter set a modifier requires."""

from __future__ import annotations

import abc
import dataclasses
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from hepprob.errors import SpecError

__all__ = ["UNIT_NORMAL", "AbstractModifier", "Requirement", "check_vector"]


@dataclasses.dataclass(frozen=True)
class Requirement:
    """Default configuration of the parameter set a modifier needs (as pyhf 0.7).

    ``None`` in ``inits``/``bounds``/``auxdata``/``sigmas`` means "must come from
    the measurement's parameter configuration" (lumi). Fields a modifier type
    does not use are listed in ``unused`` and may not be configured.
    """

    constraint: str  # "none" | "normal" | "poisson"
    n: int
    is_scalar: bool
    inits: tuple[float, ...] | None
    bounds: tuple[tuple[float, float], ...] | None
    fixed: tuple[bool, ...]
    auxdata: tuple[float, ...] | None = None
    sigmas: tuple[float, ...] | None = None
    factors: tuple[float, ...] | None = None
    unused: frozenset[str] = frozenset({"auxdata", "sigmas", "factors"})


#: one N(0, 1)-constrained scalar, init 0, bounds [-5, 5] (normsys, histosys)
UNIT_NORMAL = Requirement(
    "normal",
    1,
    True,
    (0.0,),
    ((-5.0, 5.0),),
    (False,),
    (0.0,),
    unused=frozenset({"sigmas", "factors"}),
)


class AbstractModifier(abc.ABC):
    """One JSON modifier type: how to check its data and what parameters it needs.

    ``family`` says how compile.py stacks it: ``"factor"`` (a parameter value
    per bin multiplies the yield), ``"normsys"`` (interpolated factor per sample
    and channel) or ``"histosys"`` (interpolated additive change per bin).
    """

    type: ClassVar[str]
    family: ClassVar[str]
    shared: ClassVar[bool] = True

    @staticmethod
    @abc.abstractmethod
    def check_data(data: Any, nominal: np.ndarray, path: str) -> Any:
        """Validate ``data`` of one modifier entry; return it as NumPy arrays."""

    @staticmethod
    @abc.abstractmethod
    def requirement(nominal: np.ndarray, data: Any) -> Requirement | None:
        """Parameter-set defaults of one occurrence (``None``: decided later)."""


def check_vector(values: Any, n: int, path: str, what: str) -> np.ndarray:
    """A list of ``n`` finite numbers, or :class:`SpecError` naming ``path``."""
    if not isinstance(values, Sequence) or isinstance(values, str):
        msg = f"{what} must be a list of {n} numbers, got {type(values).__name__}"
        raise SpecError(msg, path)
    if len(values) != n:
        msg = f"{what} must have {n} entries (the sample's bins), got {len(values)}"
        raise SpecError(msg, path)
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        msg = f"{what} must contain numbers only, got {list(values)!r}"
        raise SpecError(msg, path) from None
    if arr.ndim != 1 or not np.all(np.isfinite(arr)):
        msg = f"{what} must be finite numbers, got {list(values)!r}"
        raise SpecError(msg, path)
    return arr


def check_null(data: Any, path: str, mtype: str) -> None:
    """Modifiers without data carry ``null``."""
    if data is not None:
        msg = f"a {mtype} modifier takes data null, got {data!r}"
        raise SpecError(msg, path)


def check_number(value: Any, path: str, what: str) -> float:
    """A finite number, or :class:`SpecError`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        msg = f"{what} must be a number, got {value!r}"
        raise SpecError(msg, path)
    if not math.isfinite(value):
        msg = f"{what} must be finite, got {value!r}"
        raise SpecError(msg, path)
    return float(value)
