"""Import of HistFactory XML + ROOT configurations into a workspace dict (via uproot).

Use :func:`parse` to read a top-level ``<Combination>`` XML file (and the
channel files it lists) with the ROOT histograms it points to, and
:func:`dump` to write the result as workspace JSON.
"""

from __future__ import annotations

import inspect
import json
import math
import pathlib
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from typing import IO, Any

import numpy as np

from hepprob._optional import require
from hepprob.errors import HepprobWarning, SpecError
from hepprob.histfactory.spec import SCHEMA_VERSION, validate_workspace

__all__ = ["dump", "parse"]


def __dir__() -> list[str]:
    return __all__


_MODIFIER_TAGS = (
    "HistoSys",
    "NormFactor",
    "OverallSys",
    "ShapeFactor",
    "ShapeSys",
    "StatError",
)


def parse(
    top_level_xml: str | pathlib.Path,
    root_dir: str | pathlib.Path,
    *,
    stat_threshold: bool = True,
    validate: bool = True,
) -> dict[str, Any]:
    """Read a HistFactory XML configuration into a workspace dict (spec 1.0.0).

    Paths in the XML files (``<Input>`` channel files and ``InputFile`` ROOT
    files) are taken relative to ``root_dir``, as ROOT's ``hist2workspace``
    does when run from that folder.

    The translation follows the HistFactory model (Cranmer et al.,
    CERN-OPEN-2012-016, sections 3-4) and the JSON conventions of pyhf's
    ``readxml``:

    - ``NormalizeByTheory="True"`` adds a ``lumi`` modifier; each measurement
      gets a ``lumi`` setting with ``auxdata=[Lumi]``, ``sigmas=[Lumi *
      LumiRelErr]``, bounds ``Lumi ± 5 sigma``.
    - ``OverallSys`` → ``normsys`` (``lo``/``hi``), ``HistoSys`` →
      ``histosys`` (down/up templates), ``NormFactor`` → ``normfactor`` plus
      a parameter setting (``Val``, ``Low``, ``High``, ``Const``),
      ``ShapeFactor`` → ``shapefactor``.
    - ``ShapeSys`` → ``shapesys`` with absolute uncertainties (relative
      histogram × nominal); ``StatError`` → ``staterror`` named
      ``staterror_<channel>`` with the histogram errors (or a relative error
      histogram × nominal).
    - ``ParamSetting`` (``Const``, ``Val``) → parameter settings, with ROOT
      names mapped to JSON names (``alpha_X`` → ``X``, ``Lumi`` → ``lumi``).
    - 2-D and 3-D histograms are unrolled in ROOT's global-bin order (x
      fastest).

    Args:
        top_level_xml: the ``<Combination>`` XML file.
        root_dir: the folder relative to which file paths are resolved.
        stat_threshold: apply ``StatErrorConfig RelErrorThreshold`` as ROOT
            does: bins of a channel whose total relative MC statistical
            uncertainty is below the threshold get no ``staterror``
            uncertainty (their ``staterror`` data are set to 0, which fixes
            their gamma at 1). pyhf 0.7 ignores the threshold; pass ``False``
            to reproduce it exactly.
        validate: validate the resulting workspace.

    Returns:
        The workspace dict (``channels``, ``observations``, ``measurements``,
        ``version``).

    Warns:
        HepprobWarning: for XML content the JSON spec cannot express (a
            ``ConstraintTerm`` other than Gaussian, a Poisson ``StatErrorConfig``,
            a non-Poisson ``ShapeSys``, ``Function`` elements, unknown tags).

    Raises:
        SpecError: naming the XML file and element at fault (missing or bad
            attribute, missing ROOT file or histogram, bin-count mismatch).
        ImportError: if uproot is not installed.
    """
    uproot = require("uproot", "reading ROOT histograms of HistFactory XML")
    root = pathlib.Path(root_dir)
    reader = _HistReader(uproot, root)
    try:
        top_path = pathlib.Path(top_level_xml)
        top = _parse_xml(top_path, "Combination")
        for func in top.findall("Function"):
            _warn(
                f"{top_path}: Combination/Function[{func.get('Name')}] (an "
                "expression of parameters) cannot be expressed in HistFactory "
                "JSON 1.0.0 and is ignored"
            )
        channels: list[dict[str, Any]] = []
        observations: list[dict[str, Any]] = []
        configs: list[tuple[dict[str, Any], str]] = []
        inputs = [x for x in top.findall("Input") if (x.text or "").strip()]
        if not inputs:
            msg = "no <Input> channel files listed"
            raise SpecError(msg, f"{top_path}: Combination")
        for inp in inputs:
            channel_file = root / inp.text.strip()
            if not channel_file.is_file():
                msg = (
                    f"channel file {inp.text.strip()!r} not found under root_dir "
                    f"{str(root)!r} (paths in the XML are relative to root_dir)"
                )
                raise SpecError(msg, f"{top_path}: Combination/Input")
            channel, data, channel_configs = _process_channel(
                channel_file, reader, stat_threshold=stat_threshold
            )
            channels.append(channel)
            observations.append({"name": channel["name"], "data": data})
            configs += channel_configs
        merged = _dedupe(configs)
        measurements = [
            _process_measurement(m, merged, f"{top_path}: Combination")
            for m in top.findall("Measurement")
        ]
    finally:
        reader.close()
    spec = {
        "measurements": measurements,
        "channels": channels,
        "observations": observations,
        "version": SCHEMA_VERSION,
    }
    if validate:
        validate_workspace(spec, require_poi=False)
    return spec


def dump(workspace: Any, file: str | pathlib.Path | IO[str], **kwargs: Any) -> None:
    """Write a workspace (``Workspace`` or dict) as JSON to a path or open file.

    ``kwargs`` go to :func:`json.dump` (default ``indent=2``).
    """
    spec = workspace.to_dict() if hasattr(workspace, "to_dict") else dict(workspace)
    kwargs.setdefault("indent", 2)
    if isinstance(file, (str, pathlib.Path)):
        with pathlib.Path(file).open("w") as f:
            json.dump(spec, f, **kwargs)
            f.write("\n")
    else:
        json.dump(spec, file, **kwargs)


# --------------------------------------------------------------------------- #
# private helpers
# --------------------------------------------------------------------------- #


def _warn(message: str) -> None:
    # point the warning at the first frame outside this module (the caller)
    frame, level = inspect.currentframe(), 1
    while frame is not None and frame.f_code.co_filename == __file__:
        frame, level = frame.f_back, level + 1
    warnings.warn(message, HepprobWarning, stacklevel=level)


def _parse_xml(path: pathlib.Path, expected: str) -> ET.Element:
    try:
        tree = ET.parse(path)
    except OSError as err:
        msg = f"cannot read XML file: {err.strerror}"
        raise SpecError(msg, str(path)) from None
    except ET.ParseError as err:
        line, col = err.position
        msg = f"malformed XML at line {line}, column {col}: {err}"
        raise SpecError(msg, str(path)) from None
    node = tree.getroot()
    if node.tag != expected:
        msg = f"expected a <{expected}> root element, got <{node.tag}>"
        raise SpecError(msg, str(path))
    return node


def _where(path: pathlib.Path, *elements: ET.Element) -> str:
    parts = []
    for el in elements:
        name = el.get("Name")
        parts.append(f"{el.tag}[{name}]" if name else el.tag)
    return f"{path}: " + "/".join(parts)


def _attr(el: ET.Element, key: str, where: str) -> str:
    value = el.get(key)
    if value is None or value.strip() == "":
        msg = f"missing attribute {key!r}; attributes given: {sorted(el.attrib)}"
        raise SpecError(msg, where)
    return value.strip()


def _number(el: ET.Element, key: str, where: str) -> float:
    text = _attr(el, key, where)
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        msg = f"attribute {key!r} must be a finite number, got {text!r}"
        raise SpecError(msg, where)
    return value


def _flag(el: ET.Element, key: str, where: str, default: bool = False) -> bool:
    text = el.get(key)
    if text is None:
        return default
    if text.strip() in ("True", "true", "TRUE", "1"):
        return True
    if text.strip() in ("False", "false", "FALSE", "0"):
        return False
    msg = f"attribute {key!r} must be 'True' or 'False', got {text!r}"
    raise SpecError(msg, where)


class _HistReader:
    """Opens ROOT files once and returns (values, errors) of histograms."""

    def __init__(self, uproot: Any, root: pathlib.Path) -> None:
        self._uproot = uproot
        self._root = root
        self._files: dict[pathlib.Path, tuple[Any, set[str]]] = {}

    def close(self) -> None:
        for f, _ in self._files.values():
            f.close()
        self._files.clear()

    def read(
        self, filename: str, histo_path: str, name: str, where: str
    ) -> tuple[np.ndarray, np.ndarray]:
        if not filename:
            msg = "no ROOT file given (set InputFile here or on the Channel)"
            raise SpecError(msg, where)
        if not name:
            msg = "no histogram name given (set HistoName)"
            raise SpecError(msg, where)
        path = self._root / filename
        if path not in self._files:
            if not path.is_file():
                msg = f"ROOT file {str(path)!r} not found"
                raise SpecError(msg, where)
            try:
                f = self._uproot.open(path)
            except (OSError, ValueError) as err:
                msg = f"cannot open ROOT file {str(path)!r}: {err}"
                raise SpecError(msg, where) from None
            self._files[path] = (f, set(f.keys(cycle=False)))
        f, keys = self._files[path]
        folder = (histo_path or "").strip("/")
        tried = [f"{folder}/{name}", name] if folder else [name]
        key = next((k for k in tried if k in keys), None)
        if key is None:
            msg = (
                f"histogram {' or '.join(map(repr, tried))} not found in {str(path)!r}"
            )
            raise SpecError(msg, where)
        hist = f[key]
        if not hasattr(hist, "values") or not hasattr(hist, "variances"):
            msg = (
                f"{key!r} in {str(path)!r} is a {type(hist).__name__}, not a histogram"
            )
            raise SpecError(msg, where)
        values = np.asarray(hist.values(flow=False), dtype=np.float64)
        variances = np.asarray(hist.variances(flow=False), dtype=np.float64)
        # unroll n-D histograms in ROOT's global-bin order (x fastest)
        return values.ravel(order="F"), np.sqrt(variances).ravel(order="F")


def _process_channel(
    path: pathlib.Path, reader: _HistReader, *, stat_threshold: bool
) -> tuple[dict[str, Any], list[float], list[tuple[dict[str, Any], str]]]:
    node = _parse_xml(path, "Channel")
    cwhere = _where(path, node)
    name = _attr(node, "Name", cwhere)
    infile = node.get("InputFile", "")
    hpath = node.get("HistoPath", "")
    hname = node.get("HistoName", "")

    data_nodes = node.findall("Data")
    if not data_nodes:
        msg = f"channel {name!r} has no <Data> element; observed data are required"
        raise SpecError(msg, cwhere)
    dnode = data_nodes[0]
    dwhere = _where(path, node, dnode)
    observed, _ = reader.read(
        dnode.get("InputFile", infile),
        dnode.get("HistoPath", hpath),
        dnode.get("HistoName", hname),
        dwhere,
    )
    nbins = observed.size

    threshold, stat_poisson = 0.0, False
    for cfg in node.findall("StatErrorConfig"):
        where = _where(path, node, cfg)
        if cfg.get("RelErrorThreshold") is not None:
            threshold = _number(cfg, "RelErrorThreshold", where)
        ctype = cfg.get("ConstraintType", "Gaussian").strip()
        if ctype not in ("Gaussian", "Poisson"):
            msg = f"ConstraintType must be 'Gaussian' or 'Poisson', got {ctype!r}"
            raise SpecError(msg, where)
        stat_poisson = ctype == "Poisson"

    samples: list[dict[str, Any]] = []
    configs: list[tuple[dict[str, Any], str]] = []
    stat_terms: list[tuple[np.ndarray, np.ndarray]] = []
    for snode in node.findall("Sample"):
        sample, sconfigs, stat = _process_sample(
            path, node, snode, reader, infile, hpath, name
        )
        if len(sample["data"]) != nbins:
            msg = (
                f"sample histogram has {len(sample['data'])} bins but the channel's "
                f"data histogram has {nbins}"
            )
            raise SpecError(msg, _where(path, node, snode))
        samples.append(sample)
        configs += sconfigs
        if stat is not None:
            stat_terms.append(stat)
    if not samples:
        msg = f"channel {name!r} has no <Sample> elements"
        raise SpecError(msg, cwhere)
    for other in node:
        if other.tag not in ("Data", "StatErrorConfig", "Sample"):
            _warn(f"{cwhere}: element <{other.tag}> is not understood and is ignored")

    if stat_terms and stat_poisson:
        _warn(
            f"{cwhere}: StatErrorConfig ConstraintType='Poisson' cannot be expressed "
            "in HistFactory JSON 1.0.0; staterror gets its Gaussian constraint"
        )
    if stat_terms and stat_threshold and threshold > 0:
        _apply_threshold(samples, stat_terms, threshold, f"staterror_{name}")
    return {"name": name, "samples": samples}, observed.tolist(), configs


def _apply_threshold(
    samples: list[dict[str, Any]],
    stat_terms: list[tuple[np.ndarray, np.ndarray]],
    threshold: float,
    modname: str,
) -> None:
    """Zero the staterror of bins whose relative MC stat error is below threshold.

    ROOT HistFactory sets those gammas constant (HistoToWorkspaceFactoryFast,
    ``RelErrorThreshold``); a zero uncertainty expresses the same in JSON.
    """
    nominal = sum(n for n, _ in stat_terms)
    error = np.sqrt(sum(e**2 for _, e in stat_terms))
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(nominal > 0, error / np.where(nominal > 0, nominal, 1.0), 0.0)
    below = rel < threshold
    if not below.any():
        return
    for sample in samples:
        for mod in sample["modifiers"]:
            if mod["type"] == "staterror" and mod["name"] == modname:
                mod["data"] = np.where(below, 0.0, mod["data"]).tolist()


def _process_sample(
    path: pathlib.Path,
    cnode: ET.Element,
    snode: ET.Element,
    reader: _HistReader,
    infile: str,
    hpath: str,
    channel: str,
) -> tuple[
    dict[str, Any],
    list[tuple[dict[str, Any], str]],
    tuple[np.ndarray, np.ndarray] | None,
]:
    swhere = _where(path, cnode, snode)
    name = _attr(snode, "Name", swhere)
    infile = snode.get("InputFile", infile)
    hpath = snode.get("HistoPath", hpath)
    nominal, errors = reader.read(
        infile, hpath, snode.get("HistoName", cnode.get("HistoName", "")), swhere
    )
    modifiers: list[dict[str, Any]] = []
    configs: list[tuple[dict[str, Any], str]] = []
    stat: tuple[np.ndarray, np.ndarray] | None = None
    if _flag(snode, "NormalizeByTheory", swhere):
        modifiers.append({"name": "lumi", "type": "lumi", "data": None})

    def same_length(values: np.ndarray, where: str, what: str) -> np.ndarray:
        if values.size != nominal.size:
            msg = (
                f"{what} histogram has {values.size} bins but the sample's nominal "
                f"histogram has {nominal.size}"
            )
            raise SpecError(msg, where)
        return values

    for mnode in snode:
        where = _where(path, cnode, snode, mnode)
        tag = mnode.tag
        if tag == "OverallSys":
            modifiers.append(
                {
                    "name": _attr(mnode, "Name", where),
                    "type": "normsys",
                    "data": {
                        "lo": _number(mnode, "Low", where),
                        "hi": _number(mnode, "High", where),
                    },
                }
            )
        elif tag == "NormFactor":
            mname = _attr(mnode, "Name", where)
            modifiers.append({"name": mname, "type": "normfactor", "data": None})
            cfg: dict[str, Any] = {
                "name": mname,
                "bounds": [
                    [_number(mnode, "Low", where), _number(mnode, "High", where)]
                ],
                "inits": [_number(mnode, "Val", where)],
            }
            if mnode.get("Const"):
                cfg["fixed"] = _flag(mnode, "Const", where)
            configs.append((cfg, where))
        elif tag == "HistoSys":
            sides = {}
            for side in ("Low", "High"):
                values, _ = reader.read(
                    mnode.get(f"HistoFile{side}", mnode.get("InputFile", infile)),
                    mnode.get(f"HistoPath{side}", hpath),
                    _attr(mnode, f"HistoName{side}", where),
                    where,
                )
                sides[side] = same_length(values, where, f"HistoSys {side}").tolist()
            modifiers.append(
                {
                    "name": _attr(mnode, "Name", where),
                    "type": "histosys",
                    "data": {"lo_data": sides["Low"], "hi_data": sides["High"]},
                }
            )
        elif tag == "StatError":
            if not _flag(mnode, "Activate", where):
                continue
            if mnode.get("HistoName", "").strip():
                rel, _ = reader.read(
                    mnode.get("InputFile", mnode.get("HistoFile", infile)),
                    mnode.get("HistoPath", ""),
                    mnode.get("HistoName", "").strip(),
                    where,
                )
                staterr = same_length(rel, where, "StatError") * nominal
            else:
                staterr = errors
            stat = (nominal, staterr)
            modifiers.append(
                {
                    "name": f"staterror_{channel}",
                    "type": "staterror",
                    "data": staterr.tolist(),
                }
            )
        elif tag == "ShapeSys":
            mname = _attr(mnode, "Name", where)
            ctype = mnode.get("ConstraintType", "Poisson").strip()
            if ctype != "Poisson":
                _warn(
                    f"{where}: ShapeSys ConstraintType={ctype!r} cannot be expressed "
                    "in HistFactory JSON 1.0.0; shapesys gets its Poisson constraint"
                )
            rel, _ = reader.read(
                mnode.get("InputFile", infile),
                mnode.get("HistoPath", hpath),
                _attr(mnode, "HistoName", where),
                where,
            )
            absolute = same_length(rel, where, "ShapeSys") * nominal
            modifiers.append(
                {"name": mname, "type": "shapesys", "data": absolute.tolist()}
            )
        elif tag == "ShapeFactor":
            modifiers.append(
                {
                    "name": _attr(mnode, "Name", where),
                    "type": "shapefactor",
                    "data": None,
                }
            )
        else:
            _warn(
                f"{where}: element <{tag}> is not a HistFactory modifier "
                f"({', '.join(_MODIFIER_TAGS)}) and is ignored"
            )
    sample = {"name": name, "data": nominal.tolist(), "modifiers": modifiers}
    return sample, configs, stat


def _dedupe(configs: Sequence[tuple[dict[str, Any], str]]) -> dict[str, dict[str, Any]]:
    """Merge parameter settings from several channels; they must agree."""
    merged: dict[str, tuple[dict[str, Any], str]] = {}
    for cfg, where in configs:
        if cfg["name"] in merged and merged[cfg["name"]][0] != cfg:
            first_cfg, first_where = merged[cfg["name"]]
            msg = (
                f"parameter {cfg['name']!r} is set to {cfg} here but to {first_cfg} "
                f"at {first_where}"
            )
            raise SpecError(msg, where)
        merged.setdefault(cfg["name"], (cfg, where))
    return {name: dict(cfg) for name, (cfg, _) in merged.items()}


def _json_name(root_name: str, where: str) -> str:
    """ROOT parameter names to HistFactory JSON names (pyhf conventions)."""
    if root_name == "Lumi":
        return "lumi"
    if root_name.startswith("gamma_"):
        msg = (
            f"per-bin parameter {root_name!r} cannot be set in a ParamSetting "
            "(HistFactory JSON sets whole parameters only)"
        )
        raise SpecError(msg, where)
    if root_name.startswith("alpha_"):
        return root_name[len("alpha_") :]
    return root_name


def _process_measurement(
    mnode: ET.Element, configs: Mapping[str, dict[str, Any]], parent: str
) -> dict[str, Any]:
    where = f"{parent}/Measurement[{mnode.get('Name')}]"
    name = _attr(mnode, "Name", where)
    lumi = _number(mnode, "Lumi", where)
    lumi_err = lumi * _number(mnode, "LumiRelErr", where)
    poi_node = mnode.find("POI")
    pois = (poi_node.text or "").split() if poi_node is not None else []
    if len(pois) != 1:
        msg = f"expected exactly one POI name in <POI>, got {pois}"
        raise SpecError(msg, f"{where}/POI")

    lumi_cfg: dict[str, Any] = {
        "name": "lumi",
        "auxdata": [lumi],
        "bounds": [[lumi - 5.0 * lumi_err, lumi + 5.0 * lumi_err]],
        "inits": [lumi],
        "sigmas": [lumi_err],
    }
    params = {k: dict(v) for k, v in configs.items()}
    for snode in mnode.findall("ParamSetting"):
        swhere = f"{where}/ParamSetting"
        update: dict[str, Any] = {}
        if snode.get("Const"):
            update["fixed"] = _flag(snode, "Const", swhere)
        if snode.get("Val"):
            update["inits"] = [_number(snode, "Val", swhere)]
        for root_name in (snode.text or "").split():
            pname = _json_name(root_name, swhere)
            if pname == "lumi":
                lumi_cfg.update(update)
                continue
            # a ParamSetting overrides the channel's setting and moves it last
            cfg = params.pop(pname, {"name": pname})
            cfg.update(update)
            params[pname] = cfg
    for cnode in mnode.findall("ConstraintTerm"):
        ctype = cnode.get("Type", "")
        if ctype != "Gaussian":
            _warn(
                f"{where}/ConstraintTerm: Type={ctype!r} for {(cnode.text or '').split()} "
                "cannot be expressed in HistFactory JSON 1.0.0; the Gaussian "
                "constraint is kept"
            )
    return {
        "name": name,
        "config": {"poi": pois[0], "parameters": [lumi_cfg, *params.values()]},
    }
