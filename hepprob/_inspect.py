"""What ``hepprob inspect`` and ``hepprob sort`` compute, from the JSON alone.

Reading a workspace's channels, samples, parameters with their constraint
types, and measurements needs no model and no JAX, so these commands answer at
once. The summary has the keys and layout of ``pyhf inspect --output-file``;
:func:`tables` prints it as pyhf's text tables do.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

__all__ = ["CONSTRAINTS", "sorted_spec", "summary", "tables"]

#: the constraint term each modifier type puts on its parameter (HistFactory,
#: CERN-OPEN-2012-016): Gaussian for normsys, histosys, lumi and staterror,
#: Poisson for shapesys, none for the free factors
CONSTRAINTS = {
    "normsys": "constrained_by_normal",
    "histosys": "constrained_by_normal",
    "lumi": "constrained_by_normal",
    "staterror": "constrained_by_normal",
    "shapesys": "constrained_by_poisson",
    "normfactor": "unconstrained",
    "shapefactor": "unconstrained",
}


def summary(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Channels with bin counts, samples, parameters, modifiers, measurements.

    Keys as ``pyhf inspect --output-file``: ``channels`` ``[[name, nbins]]``,
    ``samples``, ``parameters`` ``[[name, constraint]]``, ``modifiers``
    ``{name: type}``, ``systematics`` ``[[name, constraint, [types]]]`` and
    ``measurements`` ``[[name, poi, [parameter names]]]``.
    """
    nbins = {c["name"]: len(c["samples"][0]["data"]) for c in spec["channels"]}
    types: dict[str, list[str]] = {}
    for channel in spec["channels"]:
        for sample in channel["samples"]:
            for mod in sample["modifiers"]:
                kinds = types.setdefault(mod["name"], [])
                if mod["type"] not in kinds:
                    kinds.append(mod["type"])
    names = sorted(types)
    kinds = {n: sorted(types[n]) for n in names}
    constraint = {n: _constraint(kinds[n]) for n in names}
    return {
        "channels": [[c, nbins[c]] for c in sorted(nbins)],
        "samples": sorted({s["name"] for c in spec["channels"] for s in c["samples"]}),
        "parameters": [[n, constraint[n]] for n in names],
        "modifiers": {n: kinds[n][-1] for n in names},
        "systematics": [[n, constraint[n], kinds[n]] for n in names],
        "measurements": [
            [
                m["name"],
                m["config"]["poi"],
                [p["name"] for p in m["config"].get("parameters", [])],
            ]
            for m in spec["measurements"]
        ],
    }


def _constraint(kinds: list[str]) -> str:
    found = {CONSTRAINTS.get(k, "unconstrained") for k in kinds}
    for kind in ("constrained_by_poisson", "constrained_by_normal"):
        if kind in found:
            return kind
    return "unconstrained"


def _block(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    grid = [header, tuple("-" * len(h) for h in header), *rows]
    widths = [max(len(r[c]) for r in grid) for c in range(len(header))]
    first = [r[0].rjust(widths[0]) for r in grid]
    rest = [
        "  ".join(r[c].ljust(widths[c]) for c in range(1, len(header))) for r in grid
    ]
    return [f"{a}  {b}".rstrip() for a, b in zip(first, rest, strict=True)]


def tables(info: Mapping[str, Any], default: str | None = None) -> str:
    """The summary as text tables; ``(*)`` marks the measurement used by default."""
    counts = [
        ("channels", len(info["channels"])),
        ("samples", len(info["samples"])),
        ("parameters", len(info["parameters"])),
        ("modifiers", len(info["modifiers"])),
    ]
    lines = ["Summary", "-------"]
    width = max(len(k) for k, _ in counts)
    lines += [f"{k.rjust(width)}  {v}" for k, v in counts]
    lines.append("")
    lines += _block(("channels", "nbins"), [(c, str(n)) for c, n in info["channels"]])
    lines.append("")
    lines += _block(("samples",), [(s,) for s in info["samples"]])
    lines.append("")
    lines += _block(
        ("parameters", "constraint", "modifiers"),
        [(n, c, ",".join(t)) for n, c, t in info["systematics"]],
    )
    lines.append("")
    chosen = default or (info["measurements"][0][0] if info["measurements"] else None)
    lines += _block(
        ("measurement", "poi", "parameters"),
        [
            (f"(*) {m}" if m == chosen else m, poi, ",".join(pars))
            for m, poi, pars in info["measurements"]
        ],
    )
    return "\n".join(lines)


def sorted_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A copy with channels, samples, observations and measurements sorted by
    name, and each sample's modifiers by (name, type) — as ``pyhf sort``."""
    out = copy.deepcopy(dict(spec))
    out["channels"].sort(key=lambda c: c["name"])
    for channel in out["channels"]:
        channel["samples"].sort(key=lambda s: s["name"])
        for sample in channel["samples"]:
            sample["modifiers"].sort(key=lambda m: (m["name"], m["type"]))
    out["observations"].sort(key=lambda o: o["name"])
    out["measurements"].sort(key=lambda m: m["name"])
    return out
