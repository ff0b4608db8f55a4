"""User extensions of a HistFactory model: extra parameters and JAX yield multipliers."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from hepprob.errors import ModelError, SpecError

__all__ = ["YieldFunction", "extra_paramsets"]


@dataclasses.dataclass(frozen=True)
class YieldFunction:
    """A multiplier ``fn(params) -> array`` on one sample in one channel.

    ``params`` maps every parameter-set name to its value (scalars for scalar
    sets); ``fn`` is written in ``jax.numpy`` and returns a scalar or one value
    per bin of the channel. It multiplies the sample's yield after all JSON
    modifiers (e.g. an analytic signal-strength parametrisation
    ``lambda p: p["kV"] ** 2``).
    """

    channel: str
    sample: str
    fn: Callable[[Mapping[str, Any]], Any]


def extra_paramsets(
    configs: Sequence[Mapping[str, Any]] | None, taken: set[str]
) -> list[dict]:
    """Check user-declared unconstrained parameters ``{"name", "inits", "bounds"}``.

    Returns dicts with ``name``, ``inits`` (n,), ``bounds`` (n, 2), ``fixed``.
    """
    out = []
    for i, cfg in enumerate(configs or []):
        path = f"extra_parameters[{i}]"
        if not isinstance(cfg, Mapping) or not isinstance(cfg.get("name"), str):
            msg = f"an extra parameter is {{'name', 'inits', 'bounds'}}, got {cfg!r}"
            raise SpecError(msg, path)
        name = cfg["name"]
        if name in taken:
            msg = f"parameter {name!r} already exists in the model"
            raise ModelError(f"{path}: {msg}")
        taken.add(name)
        inits = np.atleast_1d(np.asarray(cfg.get("inits", [0.0]), dtype=np.float64))
        bounds = np.asarray(
            cfg.get("bounds", [[-np.inf, np.inf]] * inits.size), dtype=np.float64
        )
        if bounds.shape != (inits.size, 2) or not np.all(bounds[:, 0] < bounds[:, 1]):
            msg = f"bounds must be {inits.size} pairs [lower < upper], got {cfg.get('bounds')!r}"
            raise SpecError(msg, f"{path}.bounds")
        if np.any(inits < bounds[:, 0]) or np.any(inits > bounds[:, 1]):
            msg = f"inits {inits.tolist()} outside bounds {bounds.tolist()}"
            raise SpecError(msg, f"{path}.inits")
        fixed = cfg.get("fixed", False)
        out.append({"name": name, "inits": inits, "bounds": bounds,
                    "fixed": np.broadcast_to(np.asarray(fixed, dtype=bool), inits.shape).copy()})  # fmt: skip
    return out
