"""HS3 v0.2 documents written from a workspace (ROOT's HistFactory conventions)."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hepprob.errors import SpecError
from hepprob.histfactory.workspace import Workspace
from hepprob.io._hs3_channels import DEFAULT_CODES, INTERP_BACK

__all__ = ["write_hs3"]


def write_hs3(
    workspace: Any, *, path: str | pathlib.Path | None = None
) -> dict[str, Any]:
    """The workspace as an HS3 v0.2 document (ROOT's HistFactory conventions).

    One ``histfactory_dist`` per channel (``model_<channel>``) with its
    observed ``binned`` data set, one likelihood over all channels and, per
    measurement, an analysis with its domain (bounds) and parameter point
    (start values, ``const`` for fixed parameters). Vector parameters are
    written per bin as ``<name>_bin_<i>``. ``read_hs3(write_hs3(ws))`` gives
    back the same model.

    Args:
        workspace: a :class:`~hepprob.histfactory.Workspace` (or a
            ``ConfiguredWorkspace`` whose options HS3 can record).
        path: also write the JSON there.

    Raises:
        SpecError: a construct HS3 cannot record (a JAX yield function,
            Combine's smooth interpolations, a staterror name shared by
            samples of one channel with different names).
    """
    ws, settings = _unwrap(workspace)
    spec = ws.to_dict()
    distributions, data = [], []
    offsets = _vector_offsets(spec)
    for channel in spec["channels"]:
        dist, datum = _write_channel(
            channel, ws.observations[channel["name"]], settings, offsets
        )
        distributions.append(dist)
        data.append(datum)
    constraints = _lumi_constraints(spec)
    lk_name = "simPdf_obsData"
    likelihood = {
        "name": lk_name,
        "distributions": [d["name"] for d in distributions],
        "data": [d["name"] for d in data],
    }
    analyses, domains, points = [], [], []
    for meas in ws.measurement_names:
        extra = {"modifier_settings": settings} if settings else {}
        model = ws.model(measurement_name=meas, poi_name=None, validate=False, **extra)
        domain, point = _write_settings(model, meas, constraints)
        domains.append(domain)
        points.append(point)
        poi = ws.get_measurement(meas)["config"]["poi"]
        analyses.append({
            "name": meas, "likelihood": lk_name, "parameters_of_interest": [poi] if poi else [],
            "domains": [domain["name"]], "init": point["name"],
        })  # fmt: skip
    from hepprob import __version__

    doc = {
        "metadata": {
            "hs3_version": "0.2",
            "packages": [{"name": "hepprob", "version": __version__}],
        },
        "distributions": distributions + [c["dist"] for c in constraints.values()],
        "data": data,
        "likelihoods": [likelihood],
        "analyses": analyses,
        "domains": domains,
        "parameter_points": points,
    }
    if path is not None:
        pathlib.Path(path).write_text(json.dumps(doc, indent=2) + "\n")
    return doc


def _unwrap(workspace: Any) -> tuple[Workspace, dict[str, Any]]:
    if isinstance(workspace, Workspace):
        return workspace, {}
    options = dict(getattr(workspace, "model_options", {}))
    settings = options.pop("modifier_settings", None) or {}
    if options or getattr(workspace, "notes", None):
        reasons = list(getattr(workspace, "notes", [])) + [
            f"model option {k!r}" for k in sorted(options)
        ]
        msg = f"HS3 cannot record {'; '.join(reasons)}"
        raise SpecError(msg)
    out = {}
    for mtype, cfg in settings.items():
        code = cfg.get("interpcode")
        if (
            mtype == "histosys"
            and code == "poly6"
            and cfg.get("smooth_region", 1.0) == 1.0
        ):
            code = "code4p"  # Combine's morphing with smoothing region 1 is code 4p
        if code not in INTERP_BACK.get(mtype, {}):
            msg = f"HS3 has no interpolation matching {mtype} {cfg}"
            raise SpecError(msg)
        if code != DEFAULT_CODES[mtype]:
            out[mtype] = {"interpcode": code}
    return workspace.workspace, out


def _write_channel(
    channel: Mapping[str, Any],
    observed: Sequence[float],
    settings: Mapping[str, Any],
    offsets: Mapping[tuple[str, str], int],
) -> tuple[dict, dict]:
    name = channel["name"]
    nbins = len(channel["samples"][0]["data"])
    axes = [{"name": f"obs_x_{name}", "min": 0.0, "max": float(nbins), "nbins": nbins}]
    stat_names = {
        m["name"]
        for s in channel["samples"]
        for m in s["modifiers"]
        if m["type"] == "staterror"
    }
    if len(stat_names) > 1:
        msg = f"channel {name!r} has staterror modifiers {sorted(stat_names)}; HS3 has one per channel"
        raise SpecError(msg, "channels")
    samples = []
    for sample in channel["samples"]:
        data: dict[str, Any] = {"contents": list(sample["data"])}
        mods = []
        for m in sample["modifiers"]:
            start = offsets.get((m["name"], name), 0)
            mods.append(_write_modifier(m, sample, nbins, data, settings, start))
        samples.append({"name": sample["name"], "data": data, "modifiers": mods})
    dist = {
        "name": f"model_{name}",
        "type": "histfactory_dist",
        "axes": axes,
        "samples": samples,
    }
    datum = {
        "name": f"obsData_{name}",
        "type": "binned",
        "axes": axes,
        "contents": list(observed),
    }
    return dist, datum


def _write_modifier(
    m: Mapping[str, Any],
    sample: Mapping[str, Any],
    nbins: int,
    data: dict,
    settings: Mapping[str, Any],
    start: int,
) -> dict:
    name, mtype = m["name"], m["type"]
    bins = [f"{name}_bin_{start + i}" for i in range(nbins)]
    nominal = np.abs(np.asarray(sample["data"], dtype=float))
    if mtype == "normfactor":
        return {"name": name, "type": "normfactor", "parameter": name}
    if mtype == "lumi":
        return {
            "name": name,
            "type": "normfactor",
            "parameter": name,
            "constraint_name": f"{name}Constraint",
        }
    if mtype in ("normsys", "histosys"):
        out: dict[str, Any] = {
            "name": name,
            "type": mtype,
            "parameter": name,
            "constraint": "Gauss",
        }
        if mtype == "normsys":
            out["data"] = {"hi": m["data"]["hi"], "lo": m["data"]["lo"]}
        else:
            out["data"] = {
                "hi": {"contents": list(m["data"]["hi_data"])},
                "lo": {"contents": list(m["data"]["lo_data"])},
            }
        code = settings.get(mtype, {}).get("interpcode")
        if code is not None:
            kind, inside, outside = INTERP_BACK[mtype][code]
            out["interpolation"] = {"type": kind, "in": inside, "out": outside}
        return out
    if mtype == "shapefactor":
        return {"name": name, "type": "shapefactor", "parameters": bins}
    if mtype == "shapesys":
        sigma = np.asarray(m["data"], dtype=float)
        valid = (nominal > 0) & (sigma > 0)  # else a constant gamma (as pyhf)
        rel = np.where(valid, sigma / np.where(valid, nominal, 1.0), 0.0)
        return {
            "name": name,
            "type": "shapesys",
            "parameters": bins,
            "constraint": "Poisson",
            "data": {"vals": rel.tolist()},  # relative errors: tau = 1 / vals^2
        }
    if mtype == "staterror":
        data["errors"] = [float(v) for v in m["data"]]
        return {
            "name": name,
            "type": "staterror",
            "parameters": bins,
            "constraint": "Gauss",
        }
    msg = f"modifier type {mtype!r} has no HS3 form"
    raise SpecError(msg)


def _vector_offsets(spec: Mapping[str, Any]) -> dict[tuple[str, str], int]:
    """Position of each channel's bins in a per-bin parameter shared by channels.

    pyhf concatenates the bins of a shared per-bin parameter in sorted channel
    order; the HS3 names ``<name>_bin_<i>`` use that global index.
    """
    out, seen = {}, {}
    for channel in sorted(spec["channels"], key=lambda c: c["name"]):
        nbins = len(channel["samples"][0]["data"])
        names = {m["name"] for s in channel["samples"] for m in s["modifiers"]
                 if m["type"] in ("staterror", "shapefactor", "shapesys")}  # fmt: skip
        for n in sorted(names):
            out[(n, channel["name"])] = seen.get(n, 0)
            seen[n] = seen.get(n, 0) + nbins
    return out


def _lumi_constraints(spec: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    names = sorted(
        {
            m["name"]
            for c in spec["channels"]
            for s in c["samples"]
            for m in s["modifiers"]
            if m["type"] == "lumi"
        }
    )
    out = {}
    for name in names:
        out[name] = {
            "glob": f"nominal_{name}",
            "dist": {
                "name": f"{name}Constraint",
                "type": "gaussian_dist",
                "x": name,
                "mean": f"nominal_{name}",
                "sigma": None,
            },
        }
    return out


def _write_settings(
    model: Any, meas: str, constraints: Mapping[str, Any]
) -> tuple[dict, dict]:
    cfg = model.config
    axes, params = [], []
    for pname in cfg.par_order:
        pset = cfg.param_set(pname)
        names = (
            [pname]
            if pset.is_scalar
            else [f"{pname}_bin_{i}" for i in range(pset.n_parameters)]
        )
        for i, n in enumerate(names):
            lo, hi = pset.suggested_bounds[i]
            axes.append({"name": n, "min": lo, "max": hi})
            entry: dict[str, Any] = {"name": n, "value": pset.suggested_init[i]}
            if pset.suggested_fixed[i]:
                entry["const"] = True
            params.append(entry)
        if pname in constraints:
            c = constraints[pname]
            c["dist"]["sigma"] = float(pset.sigmas[0])
            params.append(
                {"name": c["glob"], "value": float(pset.auxdata[0]), "const": True}
            )
    domain = {"name": f"{meas}_parameters", "type": "product_domain", "axes": axes}
    point = {"name": f"{meas}_values", "parameters": params}
    return domain, point
