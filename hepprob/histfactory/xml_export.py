"""Export of a workspace as HistFactory XML + ROOT histograms (written with uproot).

:func:`write_xml` (also ``Workspace.to_xml(folder)`` and ``hepprob json2xml``)
is the inverse of :func:`hepprob.histfactory.xml.parse`: ``folder/FitConfig.xml``
(the ``<Combination>`` with one ``<Measurement>`` per measurement),
``folder/config/<channel>.xml`` and ``folder/data/<channel>.root``. Read back
with ``xml.parse(folder / "FitConfig.xml", folder)`` or ``pyhf xml2json`` from
``folder``.

Mapping (HistFactory, CERN-OPEN-2012-016 sec. 3-4; pyhf's XML conventions):
``normfactor`` -> ``<NormFactor Val Low High>`` (from the first measurement),
``lumi`` -> ``NormalizeByTheory="True"`` and the measurement's ``Lumi``,
``LumiRelErr``; ``normsys`` -> ``<OverallSys>``; ``histosys`` -> ``<HistoSys>``
with down/up histograms; ``shapesys`` -> ``<ShapeSys>`` with a histogram of
relative errors; ``staterror`` -> ``<StatError HistoName=...>`` with relative
errors; ``shapefactor`` -> ``<ShapeFactor>``; fixed parameters and start values
-> ``<ParamSetting>`` (``alpha_`` names for normsys/histosys, ``Lumi``).
"""

from __future__ import annotations

import math
import pathlib
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hepprob._optional import require
from hepprob.errors import HepprobWarning, SpecError

__all__ = ["th1", "write_xml"]


def __dir__() -> list[str]:
    return __all__


def write_xml(
    workspace: Any, folder: str | pathlib.Path, *, prefix: str = "results/hepprob"
) -> pathlib.Path:
    """Write the workspace as HistFactory XML + ROOT files into ``folder``.

    Args:
        workspace: a :class:`~hepprob.histfactory.Workspace`.
        folder: the output folder (created); paths in the XML are relative to it.
        prefix: ``OutputFilePrefix`` of the ``<Combination>``.

    Returns:
        The path of the top-level XML file (``folder/FitConfig.xml``).

    Raises:
        SpecError: a construct XML cannot express (a staterror shared by
            several channels, a staterror whose name differs between the
            samples of a channel, a setting of a constrained parameter's
            auxiliary data or width other than the lumi's).
    """
    uproot = require("uproot", "writing HistFactory XML")
    spec = workspace.to_dict()
    out = pathlib.Path(folder)
    (out / "config").mkdir(parents=True, exist_ok=True)
    (out / "data").mkdir(parents=True, exist_ok=True)
    first = spec["measurements"][0]["config"]["parameters"]
    settings = {p["name"]: p for p in first}
    _check_staterror(spec)
    inputs = []
    for channel in spec["channels"]:
        name = channel["name"]
        observed = workspace.observations[name]
        root_name = f"data/{name}.root"
        hists, node = _channel(channel, observed, settings, root_name)
        with uproot.recreate(out / root_name) as f:
            for hname, (counts, var) in hists.items():
                f[hname] = th1(hname, counts, var)
        xml_name = f"config/{name}.xml"
        _write(out / xml_name, node)
        inputs.append(xml_name)
    top = ET.Element("Combination", OutputFilePrefix=prefix)
    for xml_name in inputs:
        ET.SubElement(top, "Input").text = xml_name
    for meas in spec["measurements"]:
        top.append(_measurement(meas, spec, settings))
    path = out / "FitConfig.xml"
    _write(path, top)
    return path


def th1(
    name: str,
    counts: Sequence[float],
    variances: Sequence[float] | None = None,
    edges: Sequence[float] | None = None,
) -> Any:
    """A ROOT TH1D (for uproot writing) with the given bin contents and variances.

    Bins are ``[0, 1), [1, 2), ...`` unless ``edges`` are given; under- and
    overflow are empty.
    """
    uproot = require("uproot", "writing ROOT histograms")
    values = np.asarray(counts, dtype=np.float64)
    var = (
        values.copy() if variances is None else np.asarray(variances, dtype=np.float64)
    )
    n = values.size
    edge = (
        np.arange(n + 1, dtype=np.float64)
        if edges is None
        else np.asarray(edges, dtype=np.float64)
    )
    centers = 0.5 * (edge[1:] + edge[:-1])
    axis = uproot.writing.identify.to_TAxis(
        "xaxis", "", n, float(edge[0]), float(edge[-1]),
        fXbins=edge if edges is not None else np.array([], dtype=np.float64),
    )  # fmt: skip
    data = np.concatenate([[0.0], values, [0.0]])
    sumw2 = np.concatenate([[0.0], var, [0.0]])
    return uproot.writing.identify.to_TH1x(
        name, name, data, float(values.sum()), float(values.sum()), float(var.sum()),
        float((values * centers).sum()), float((values * centers**2).sum()), sumw2, axis,
    )  # fmt: skip


def _check_staterror(spec: Mapping[str, Any]) -> None:
    owners: dict[str, str] = {}
    for channel in spec["channels"]:
        names = {
            m["name"]
            for s in channel["samples"]
            for m in s["modifiers"]
            if m["type"] == "staterror"
        }
        if len(names) > 1:
            msg = f"channel {channel['name']!r} has staterror modifiers {sorted(names)}; XML has one per channel"
            raise SpecError(msg, "channels")
        for n in names:
            if n in owners:
                msg = f"staterror {n!r} is shared by channels {owners[n]!r} and {channel['name']!r}; XML has one per channel"
                raise SpecError(msg, "channels")
            owners[n] = channel["name"]


def _channel(
    channel: Mapping[str, Any],
    observed: Sequence[float],
    settings: Mapping[str, Any],
    root_name: str,
) -> tuple[dict, ET.Element]:
    name = channel["name"]
    hists: dict[str, tuple[np.ndarray, np.ndarray | None]] = {
        "data": (np.asarray(observed, float), None)
    }
    node = ET.Element("Channel", Name=name, InputFile=root_name)
    ET.SubElement(node, "Data", HistoName="data")
    ET.SubElement(
        node, "StatErrorConfig", RelErrorThreshold="0.0", ConstraintType="Gaussian"
    )
    for sample in channel["samples"]:
        sname = sample["name"]
        nominal = np.asarray(sample["data"], dtype=np.float64)
        stat = next((m for m in sample["modifiers"] if m["type"] == "staterror"), None)
        var = None if stat is None else np.asarray(stat["data"], float) ** 2
        hists[sname] = (nominal, var)
        lumi = any(m["type"] == "lumi" for m in sample["modifiers"])
        snode = ET.SubElement(
            node, "Sample", Name=sname, HistoName=sname, NormalizeByTheory=str(lumi)
        )
        for m in sample["modifiers"]:
            mname, mtype = m["name"], m["type"]
            base = f"{sname}_{mname}"
            if mtype == "normfactor":
                cfg = settings.get(mname, {})
                init = cfg.get("inits", [1.0])[0]
                lo, hi = cfg.get("bounds", [[0.0, 10.0]])[0]
                ET.SubElement(
                    snode,
                    "NormFactor",
                    Name=mname,
                    Val=_num(init),
                    Low=_num(lo),
                    High=_num(hi),
                )
            elif mtype == "normsys":
                ET.SubElement(
                    snode,
                    "OverallSys",
                    Name=mname,
                    Low=_num(m["data"]["lo"]),
                    High=_num(m["data"]["hi"]),
                )
            elif mtype == "histosys":
                hists[f"{base}_lo"] = (np.asarray(m["data"]["lo_data"], float), None)
                hists[f"{base}_hi"] = (np.asarray(m["data"]["hi_data"], float), None)
                ET.SubElement(
                    snode,
                    "HistoSys",
                    Name=mname,
                    HistoNameLow=f"{base}_lo",
                    HistoNameHigh=f"{base}_hi",
                )
            elif mtype in ("shapesys", "staterror"):
                sigma = np.asarray(m["data"], dtype=np.float64)
                rel = np.where(
                    nominal != 0,
                    sigma / np.where(nominal != 0, np.abs(nominal), 1.0),
                    0.0,
                )
                hists[f"{base}_rel"] = (rel, None)
                if mtype == "shapesys":
                    ET.SubElement(
                        snode,
                        "ShapeSys",
                        Name=mname,
                        HistoName=f"{base}_rel",
                        ConstraintType="Poisson",
                    )
                else:
                    ET.SubElement(
                        snode, "StatError", Activate="True", HistoName=f"{base}_rel"
                    )
            elif mtype == "shapefactor":
                ET.SubElement(snode, "ShapeFactor", Name=mname)
            elif mtype != "lumi":
                msg = f"modifier type {mtype!r} has no XML form"
                raise SpecError(msg, f"channels[{name}]")
    return hists, node


def _measurement(
    meas: Mapping[str, Any], spec: Mapping[str, Any], first: Mapping[str, Any]
) -> ET.Element:
    cfg = meas["config"]
    types = {
        m["name"]: m["type"]
        for c in spec["channels"]
        for s in c["samples"]
        for m in s["modifiers"]
    }
    params = {p["name"]: p for p in cfg["parameters"]}
    lumi = params.get("lumi", {})
    aux = lumi.get("auxdata", [1.0])[0]
    sigma = lumi.get("sigmas", [0.0])[0]
    node = ET.Element(
        "Measurement",
        Name=meas["name"],
        Lumi=_num(aux),
        LumiRelErr=_num(sigma / aux if aux else 0.0),
    )
    ET.SubElement(node, "POI").text = cfg["poi"]
    fixed, lost = [], []
    for pname, p in params.items():
        kind = types.get(pname)
        root = {
            "normsys": f"alpha_{pname}",
            "histosys": f"alpha_{pname}",
            "lumi": "Lumi",
        }.get(kind or "", pname)
        if kind in ("normsys", "histosys", "shapesys", "staterror") and (
            "auxdata" in p or "sigmas" in p
        ):
            msg = f"measurement {meas['name']!r}: auxdata/sigmas of {pname!r} have no XML form"
            raise SpecError(msg, "measurements")
        if p.get("fixed"):
            fixed.append(root)
        if (
            kind in ("normsys", "histosys")
            and "bounds" in p
            and p["bounds"] != [[-5.0, 5.0]]
        ):
            lost.append(f"bounds of {pname!r}")
        if (
            kind == "lumi"
            and "bounds" in p
            and p["bounds"] != [[aux - 5 * sigma, aux + 5 * sigma]]
        ):
            lost.append("bounds of 'lumi' (XML readers use Lumi ± 5 sigma)")
        if kind == "normfactor" and p.get("bounds") != first.get(pname, {}).get(
            "bounds"
        ):
            lost.append(
                f"bounds of {pname!r} (NormFactor takes the first measurement's)"
            )
        if (
            kind == "normfactor"
            and "inits" in p
            and p.get("inits") != first.get(pname, {}).get("inits")
        ):
            ET.SubElement(node, "ParamSetting", Val=_num(p["inits"][0])).text = root
        if kind in ("normsys", "histosys") and "inits" in p and p["inits"] != [0.0]:
            ET.SubElement(node, "ParamSetting", Val=_num(p["inits"][0])).text = root
    if fixed:
        ET.SubElement(node, "ParamSetting", Const="True").text = " ".join(fixed)
    if lost:
        warnings.warn(
            f"measurement {meas['name']!r}: XML cannot record {', '.join(lost)}",
            HepprobWarning,
            stacklevel=3,
        )
    return node


def _num(value: float) -> str:
    if not math.isfinite(value):
        msg = f"XML needs finite numbers, got {value}"
        raise SpecError(msg)
    return repr(float(value))


def _write(path: pathlib.Path, node: ET.Element) -> None:
    ET.indent(node)
    text = ET.tostring(node, encoding="unicode")
    path.write_text("<?xml version='1.0' encoding='UTF-8'?>\n" + text + "\n")
