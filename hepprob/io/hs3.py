"""HS3 (HEP Statistics Serialization Standard) JSON: the HistFactory part, read and written.

:func:`read_hs3` turns the ``histfactory_dist`` distributions of an HS3 file (as
ROOT's ``RooJSONFactoryWSTool`` writes them, HS3 v0.2) with their ``data``,
``likelihoods``, ``analyses``, ``parameter_points`` and ``domains`` into a
:class:`~hepprob.histfactory.Workspace`; :func:`write_hs3` (also
``Workspace.to_hs3()``) goes the other way. Anything outside that part raises
:class:`~hepprob.errors.SpecError` naming the JSON path and the construct.

Conventions (HS3 standard, "HistFactory" section; ROOT
``roofit/hs3/src/JSONFactories_HistFactory.cxx``, formulas and key names only):

========================  ===============================================
HS3                       pyhf JSON
========================  ===============================================
``normfactor``            ``normfactor`` (``constraint_name`` pointing to a
                          ``gaussian_dist``: ``lumi``)
``normsys`` Gauss         ``normsys`` ``{hi, lo}``; ROOT's interpolation
                          code 4 = pyhf ``code4``
``histosys`` Gauss        ``histosys``: ``hi/lo.contents`` are the varied
                          templates; ROOT's code 4 = pyhf ``code4p``
``staterror`` Gauss       ``staterror``: sample ``data.errors`` are absolute
                          MC errors, Barlow-Beeston-lite per channel
``staterror`` Poisson     ``shapesys`` (one sample only)
``shapesys`` Poisson      ``shapesys``: ``vals`` are the Poisson ``tau``
                          (ROOT), i.e. :math:`\\sigma = n/\\sqrt{\\tau}`
``shapesys`` Gauss        ``staterror`` of that sample: ``vals`` are
                          relative errors
``shapefactor``           ``shapefactor``
========================  ===============================================

Parameters keep their HS3 names (ROOT's ``alpha_X``, ``gamma_stat_*``); per-bin
parameters ``<stem>_bin_<i>`` become the vector parameter ``<stem>``.
"""

from __future__ import annotations

import json
import math
import pathlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hepprob.errors import SpecError
from hepprob.histfactory.workspace import Workspace

__all__ = ["read_hs3", "write_hs3"]


def __dir__() -> list[str]:
    return __all__


_TOP_KEYS = {
    "distributions", "data", "likelihoods", "analyses", "parameter_points",
    "domains", "metadata", "misc", "functions",
}  # fmt: skip
_MODIFIER_KEYS = {
    "name", "type", "parameter", "parameters", "data", "constraint",
    "constraint_type", "constraint_name", "interpolation",
}  # fmt: skip
_GAUSS = {"Gauss", "Gaussian", "gauss", "gaussian"}
_POISSON = {"Poisson", "poisson"}
#: HS3 interpolation structs (type, in, out) -> hepprob codes
_INTERP = {
    ("add", "poly1", None): "code0",
    ("add", "poly1", "poly1"): "code0",
    ("add", "poly2", "poly1"): "code2",
    ("add", "poly6", "poly1"): "code4p",
    ("mult", "exp", None): "code1",
    ("mult", "exp", "exp"): "code1",
    ("mult", "poly6", "exp"): "code4",
    ("mult", "poly1", None): "code0",
    ("mult", "poly1", "poly1"): "code0",
    ("mult", "poly2", "poly1"): "code2",
}
_INTERP_BACK = {
    "normsys": {"code1": ("mult", "exp", None), "code4": ("mult", "poly6", "exp"),
                "code0": ("mult", "poly1", None), "code2": ("mult", "poly2", "poly1")},
    "histosys": {"code0": ("add", "poly1", None), "code2": ("add", "poly2", "poly1"),
                 "code4p": ("add", "poly6", "poly1")},
}  # fmt: skip
_DEFAULT_CODES = {"normsys": "code4", "histosys": "code4p"}
_BIN_NAME = re.compile(r"^(?P<stem>.+)_bin_?(?P<index>\d+)$")


# ====================================================================== read
def read_hs3(
    source: str | pathlib.Path | Mapping[str, Any], *, analysis: str | None = None
) -> Any:
    """Read the HistFactory part of an HS3 file into a workspace.

    The chosen analysis (by name; by default the first whose likelihood's data
    are not named ``asimov*``, else the first) gives the likelihood, the POI,
    the start values (its ``init`` parameter point, else ``default_values``)
    and the bounds (its ``domains``, else ``default_domain``). Every other
    analysis on the same likelihood becomes a further measurement.

    Args:
        source: a file path or the parsed JSON dict.
        analysis: the name of the analysis to use.

    Returns:
        A :class:`~hepprob.histfactory.Workspace`, or a
        :class:`~hepprob.io.configured.ConfiguredWorkspace` when the file asks
        for interpolation codes other than ROOT's defaults.

    Raises:
        SpecError: the message starts with the file and JSON path at fault and
            names the construct (an unknown modifier, a non-HistFactory
            distribution, data of the wrong length, ...).
    """
    doc, file = _load(source)
    return _Reader(doc, file).workspace(analysis)


def _load(source: Any) -> tuple[Mapping[str, Any], str | None]:
    if isinstance(source, Mapping):
        return source, None
    path = pathlib.Path(source)
    try:
        text = path.read_text()
    except OSError as err:
        msg = f"cannot read HS3 file: {err.strerror}"
        raise SpecError(msg, str(path)) from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        msg = f"not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}"
        raise SpecError(msg, str(path)) from None
    return doc, str(path)


class _Reader:
    """One HS3 document; :meth:`workspace` builds the pyhf-JSON workspace."""

    def __init__(self, doc: Any, file: str | None) -> None:
        self.file = file
        if not isinstance(doc, Mapping):
            self.fail("an HS3 document is a JSON object", "$")
        unknown = sorted(set(doc) - _TOP_KEYS)
        if unknown:
            self.fail(f"unknown top-level component(s) {unknown}", "$")
        if doc.get("functions"):
            self.fail(
                "generic HS3 functions are not supported (hepprob reads the "
                "HistFactory part of HS3: histfactory_dist channels)",
                "functions",
            )
        self.doc = doc
        self.dists = self._named("distributions")
        self.data = self._named("data")
        self.likelihoods = self._named("likelihoods")
        self.points = self._named("parameter_points")
        self.domains = self._named("domains")
        self.analyses = self._list("analyses")

    # ------------------------------------------------------------ helpers
    def fail(self, msg: str, path: str) -> None:
        err = SpecError(msg, path)
        if self.file:
            err.args = (f"{self.file}: {err.args[0]}",)
        raise err

    def _list(self, key: str) -> list[Any]:
        value = self.doc.get(key, [])
        if not isinstance(value, list):
            self.fail(f"must be a list, got {type(value).__name__}", key)
        return value

    def _named(self, key: str) -> dict[str, tuple[int, Mapping[str, Any]]]:
        out: dict[str, tuple[int, Mapping[str, Any]]] = {}
        for i, item in enumerate(self._list(key)):
            if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
                self.fail("each entry needs a string 'name'", f"{key}[{i}]")
            if item["name"] in out:
                self.fail(f"duplicate name {item['name']!r}", f"{key}[{i}]")
            out[item["name"]] = (i, item)
        return out

    def _ref(self, table: dict, key: str, name: Any, where: str) -> tuple[int, Any]:
        if not isinstance(name, str) or name not in table:
            self.fail(
                f"refers to {key} {name!r}, which the file does not define", where
            )
        return table[name]

    def _numbers(self, values: Any, n: int | None, where: str) -> list[float]:
        ok = isinstance(values, list) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
        )
        if not ok or not all(math.isfinite(v) for v in values):
            self.fail(f"must be a list of finite numbers, got {values!r}", where)
        if n is not None and len(values) != n:
            self.fail(
                f"must have {n} entries (the channel's bins), got {len(values)}", where
            )
        return [float(v) for v in values]

    # ------------------------------------------------------------ analysis
    def _choose(self, name: str | None) -> tuple[int, Mapping[str, Any] | None]:
        if not self.analyses:
            if name is not None:
                self.fail(
                    f"no analysis named {name!r}: the file has no analyses", "analyses"
                )
            if len(self.likelihoods) != 1:
                self.fail(
                    "the file has no analyses and several likelihoods; hepprob needs an "
                    "analysis naming the likelihood and its parameters of interest",
                    "analyses",
                )
            return -1, None
        for i, a in enumerate(self.analyses):
            if not isinstance(a, Mapping):
                self.fail("an analysis is a JSON object", f"analyses[{i}]")
        if name is not None:
            for i, a in enumerate(self.analyses):
                if a.get("name") == name:
                    return i, a
            names = [a.get("name") for a in self.analyses]
            self.fail(f"no analysis named {name!r}; analyses: {names}", "analyses")
        for i, a in enumerate(self.analyses):
            _, lk = self._ref(
                self.likelihoods,
                "likelihood",
                a.get("likelihood"),
                f"analyses[{i}].likelihood",
            )
            if not any(str(d).lower().startswith("asimov") for d in lk.get("data", [])):
                return i, a
        return 0, self.analyses[0]

    def workspace(self, analysis: str | None) -> Any:
        index, chosen = self._choose(analysis)
        if chosen is None:
            lk_name = next(iter(self.likelihoods))
        else:
            lk_name = chosen.get("likelihood")
        li, lk = self._ref(
            self.likelihoods, "likelihood", lk_name, f"analyses[{index}].likelihood"
        )
        lpath = f"likelihoods[{li}]"
        for key in lk:
            if key not in {"name", "distributions", "data", "aux_distributions"}:
                self.fail(f"unknown component {key!r} of a likelihood", lpath)
        if lk.get("aux_distributions"):
            self.fail(
                "aux_distributions (regularisation terms) are not supported",
                f"{lpath}.aux_distributions",
            )
        dists, data = lk.get("distributions", []), lk.get("data", [])
        if (
            not isinstance(dists, list)
            or not isinstance(data, list)
            or len(dists) != len(data)
        ):
            self.fail(
                "'distributions' and 'data' must be lists of the same length", lpath
            )
        if not dists:
            self.fail("the likelihood has no distributions", f"{lpath}.distributions")
        builder = _SpecBuilder(self)
        for k, (dname, dref) in enumerate(zip(dists, data, strict=True)):
            builder.channel(
                dname, dref, f"{lpath}.distributions[{k}]", f"{lpath}.data[{k}]"
            )
        analyses = [(index, chosen)] if chosen is not None else [(-1, None)]
        for i, a in enumerate(self.analyses):
            if i != index and a.get("likelihood") == lk_name:
                analyses.append((i, a))
        measurements = [builder.measurement(i, a) for i, a in analyses]
        spec = {
            "channels": builder.channels,
            "observations": builder.observations,
            "measurements": measurements,
            "version": "1.0.0",
        }
        ws = Workspace(spec)
        settings = builder.modifier_settings()
        if not settings:
            return ws
        from hepprob.io.configured import ConfiguredWorkspace

        return ConfiguredWorkspace(
            ws, {"modifier_settings": settings}, source=self.file
        )


class _SpecBuilder:
    """Collects channels, observations and parameter settings from HS3 channels."""

    def __init__(self, reader: _Reader) -> None:
        self.r = reader
        self.channels: list[dict[str, Any]] = []
        self.observations: list[dict[str, Any]] = []
        #: HS3 parameter name -> (pyhf parameter-set name, index or None)
        self.names: dict[str, tuple[str, int | None]] = {}
        self.vector_sizes: dict[str, int] = {}
        self.lumi: dict[str, dict[str, Any]] = {}  # pyhf name -> auxdata/sigmas
        self.codes: dict[str, dict[str, str]] = {"normsys": {}, "histosys": {}}
        self.fixed_bins: dict[str, set[int]] = {}

    def fail(self, msg: str, path: str) -> None:
        self.r.fail(msg, path)

    # ------------------------------------------------------------ channels
    def channel(self, dname: Any, dref: Any, dpath: str, datapath: str) -> None:
        di, dist = self.r._ref(self.r.dists, "distribution", dname, dpath)
        path = f"distributions[{di}]"
        if dist.get("type") != "histfactory_dist":
            self.fail(
                f"distribution type {dist.get('type')!r} is not supported: hepprob reads "
                "the HistFactory part of HS3 (type 'histfactory_dist')",
                f"{path}.type",
            )
        known = {
            "name",
            "type",
            "axes",
            "samples",
            "staterror",
            "statError",
            "default_interpolation",
        }
        extra = sorted(set(dist) - known)
        if extra:
            self.fail(f"unknown component(s) {extra} of a histfactory_dist", path)
        samples = dist.get("samples")
        if not isinstance(samples, list) or not samples:
            self.fail(
                "a histfactory_dist needs a non-empty list of samples",
                f"{path}.samples",
            )
        chname = dist["name"]
        contents = [
            self._sample_data(s, f"{path}.samples[{j}]") for j, s in enumerate(samples)
        ]
        nbins = len(contents[0][0])
        for j, (c, _) in enumerate(contents):
            if len(c) != nbins:
                self.fail(
                    f"expected {nbins} bins as the first sample, got {len(c)}",
                    f"{path}.samples[{j}].data.contents",
                )
        self._check_axes(dist.get("axes"), nbins, f"{path}.axes")
        default_interp = dist.get("default_interpolation")
        stat = dist.get("staterror", dist.get("statError")) or {}
        if not isinstance(stat, Mapping):
            self.fail(
                "must be an object {relThreshold, constraint}", f"{path}.staterror"
            )
        threshold = float(stat.get("relThreshold", 0.0))
        out_samples = []
        stat_users = [
            j for j, s in enumerate(samples)
            if any(isinstance(m, Mapping) and m.get("type") == "staterror" for m in s.get("modifiers", []) or [])
        ]  # fmt: skip
        stat_rel = self._stat_rel(contents, stat_users, threshold)
        for j, sample in enumerate(samples):
            spath = f"{path}.samples[{j}]"
            nominal, errors = contents[j]
            mods = []
            modifiers = sample.get("modifiers", []) or []
            if not isinstance(modifiers, list):
                self.fail("must be a list", f"{spath}.modifiers")
            for k, mod in enumerate(modifiers):
                mods += self._modifier(
                    mod, f"{spath}.modifiers[{k}]", chname, nominal, errors,
                    stat_users, stat_rel, stat, default_interp,
                )  # fmt: skip
            out_samples.append(
                {
                    "name": str(sample.get("name", f"sample_{j}")),
                    "data": nominal,
                    "modifiers": mods,
                }
            )
        self.channels.append({"name": chname, "samples": out_samples})
        self.observations.append(
            {"name": chname, "data": self._observed(dref, nbins, datapath)}
        )

    def _sample_data(
        self, sample: Any, spath: str
    ) -> tuple[list[float], list[float] | None]:
        if not isinstance(sample, Mapping):
            self.fail("a sample is a JSON object", spath)
        extra = sorted(set(sample) - {"name", "data", "modifiers"})
        if extra:
            self.fail(f"unknown component(s) {extra} of a sample", spath)
        data = sample.get("data")
        if not isinstance(data, Mapping) or "contents" not in data:
            self.fail("a sample needs data {'contents': [...]}", f"{spath}.data")
        nominal = self.r._numbers(data["contents"], None, f"{spath}.data.contents")
        errors = None
        if data.get("errors") is not None:
            errors = self.r._numbers(
                data["errors"], len(nominal), f"{spath}.data.errors"
            )
        return nominal, errors

    def _check_axes(self, axes: Any, nbins: int, path: str) -> None:
        if axes is None:
            return
        if not isinstance(axes, list) or not axes:
            self.fail("must be a non-empty list of axes", path)
        total = 1
        for i, ax in enumerate(axes):
            if not isinstance(ax, Mapping):
                self.fail("an axis is a JSON object", f"{path}[{i}]")
            if "nbins" in ax:
                total *= int(ax["nbins"])
            elif "edges" in ax or "bounds" in ax:
                total *= len(ax.get("edges", ax.get("bounds"))) - 1
            else:
                return
        if total != nbins:
            self.fail(f"the axes have {total} bins but the samples {nbins}", path)

    def _observed(self, dref: Any, nbins: int, path: str) -> list[float]:
        if not isinstance(dref, str):
            self.fail(
                f"inline data {dref!r} for a histfactory_dist are not supported; name a "
                "'binned' data set", path,
            )  # fmt: skip
        di, d = self.r._ref(self.r.data, "data", dref, path)
        dpath = f"data[{di}]"
        if d.get("type") != "binned":
            self.fail(
                f"data type {d.get('type')!r} cannot be observed by a histfactory_dist (need 'binned')",
                f"{dpath}.type",
            )
        if d.get("uncertainty"):
            self.fail(
                "binned data with an uncertainty are not supported",
                f"{dpath}.uncertainty",
            )
        values = self.r._numbers(d.get("contents"), nbins, f"{dpath}.contents")
        if any(v < 0 for v in values):
            self.fail(
                f"observed counts must be non-negative, got {values}",
                f"{dpath}.contents",
            )
        return values

    @staticmethod
    def _stat_rel(
        contents: list, users: list[int], threshold: float
    ) -> np.ndarray | None:
        """Total relative MC error per bin of the staterror samples (BB-lite)."""
        if not users:
            return None
        nom = np.array([contents[j][0] for j in users])
        err = np.array(
            [
                contents[j][1] if contents[j][1] is not None else [0.0] * nom.shape[1]
                for j in users
            ]
        )
        tot = nom.sum(axis=0)
        rel = np.where(
            tot > 0, np.sqrt((err**2).sum(axis=0)) / np.where(tot > 0, tot, 1.0), 0.0
        )
        return np.where(rel < threshold, 0.0, rel)

    # ------------------------------------------------------------ modifiers
    def _param(self, mod: Mapping[str, Any], path: str, default_prefix: str) -> str:
        name = mod.get("parameter")
        if name is None:
            if not isinstance(mod.get("name"), str):
                self.fail("a modifier needs 'parameter' (or 'name')", path)
            name = default_prefix + mod["name"]
        if not isinstance(name, str) or not name:
            self.fail(
                f"'parameter' must be a non-empty string, got {name!r}",
                f"{path}.parameter",
            )
        return name

    def _scalar(self, hs3_name: str, path: str) -> str:
        known = self.names.get(hs3_name)
        if known is not None and known[1] is not None:
            self.fail(
                f"parameter {hs3_name!r} is used as a per-bin and as a scalar parameter",
                path,
            )
        self.names[hs3_name] = (hs3_name, None)
        return hs3_name

    def _vector(
        self, mod: Mapping[str, Any], path: str, nbins: int, default_stem: str
    ) -> tuple[str, list[int]]:
        params = mod.get("parameters")
        if params is None:
            stem = default_stem
            params = [f"{stem}_bin_{i}" for i in range(nbins)]
        if (
            not isinstance(params, list)
            or len(params) != nbins
            or not all(isinstance(p, str) for p in params)
        ):
            self.fail(
                f"'parameters' must list {nbins} parameter names (one per bin)",
                f"{path}.parameters",
            )
        matches = [_BIN_NAME.match(p) for p in params]
        stems = {m.group("stem") for m in matches if m}
        if all(matches) and len(stems) == 1:
            stem = stems.pop()
            indices = [int(m.group("index")) for m in matches]  # type: ignore[union-attr]
        else:
            stem = str(mod.get("name") or default_stem)
            indices = list(range(nbins))
        for p, i in zip(params, indices, strict=True):
            if self.names.get(p, (stem, i)) != (stem, i):
                self.fail(
                    f"parameter {p!r} is used by two different modifiers",
                    f"{path}.parameters",
                )
            self.names[p] = (stem, i)
        self.vector_sizes[stem] = max(self.vector_sizes.get(stem, 0), max(indices) + 1)
        return stem, indices

    def _constraint(self, mod: Mapping[str, Any], path: str, default: str) -> str:
        c = mod.get("constraint", mod.get("constraint_type", default))
        if c in _GAUSS:
            return "Gauss"
        if c in _POISSON:
            return "Poisson"
        self.fail(
            f"constraint {c!r} is not supported here (Gauss or Poisson)",
            f"{path}.constraint",
        )
        return ""

    def _interp(
        self, mod: Mapping[str, Any], mtype: str, default: Any, path: str
    ) -> None:
        spec = mod.get(
            "interpolation", (mod.get("data") or {}).get("interpolation", default)
        )
        if spec is None:
            code = _DEFAULT_CODES[mtype]
        elif isinstance(spec, str):
            code = spec
            allowed = (
                ("code0", "code1", "code2", "code4")
                if mtype == "normsys"
                else ("code0", "code2", "code4p")
            )
            if code not in allowed:
                self.fail(
                    f"interpolation {spec!r} is not available for {mtype}",
                    f"{path}.interpolation",
                )
        elif isinstance(spec, Mapping):
            key = (spec.get("type"), spec.get("in"), spec.get("out"))
            code = _INTERP.get(key)
            want = "mult" if mtype == "normsys" else "add"
            if code is None or key[0] != want:
                self.fail(
                    f"interpolation {dict(spec)} is not supported for {mtype}",
                    f"{path}.interpolation",
                )
        else:
            self.fail(
                f"interpolation must be a string or an object, got {spec!r}",
                f"{path}.interpolation",
            )
        self.codes[mtype][path] = code

    def modifier_settings(self) -> dict[str, Any]:
        out = {}
        for mtype, codes in self.codes.items():
            distinct = set(codes.values())
            if len(distinct) > 1:
                first, second = sorted(distinct)[:2]
                where = next(p for p, c in codes.items() if c == second)
                self.fail(
                    f"{mtype} modifiers use different interpolations ({sorted(distinct)}); "
                    f"hepprob applies one code per modifier type (first {first!r}, here {second!r})",
                    where,
                )
            if distinct and distinct != {_DEFAULT_CODES[mtype]}:
                out[mtype] = {"interpcode": distinct.pop()}
        return out

    def _modifier(
        self,
        mod: Any,
        path: str,
        chname: str,
        nominal: list[float],
        errors: list[float] | None,
        stat_users: list[int],
        stat_rel: np.ndarray | None,
        stat: Mapping[str, Any],
        default_interp: Any,
    ) -> list[dict[str, Any]]:
        if not isinstance(mod, Mapping) or not isinstance(mod.get("type"), str):
            self.fail("a modifier is an object with a string 'type'", path)
        extra = sorted(set(mod) - _MODIFIER_KEYS)
        if extra:
            self.fail(f"unknown component(s) {extra} of a {mod['type']} modifier", path)
        mtype, nb = mod["type"], len(nominal)
        data = mod.get("data")
        if mtype == "normfactor":
            name = self._param(mod, path, "")
            if mod.get("constraint_name") is not None:
                return [
                    self._constrained_normfactor(name, mod["constraint_name"], path)
                ]
            return [
                {"name": self._scalar(name, path), "type": "normfactor", "data": None}
            ]
        if mtype == "normsys":
            if self._constraint(mod, path, "Gauss") != "Gauss":
                self.fail(
                    "normsys is Gaussian-constrained in hepprob", f"{path}.constraint"
                )
            name = self._scalar(self._param(mod, path, "alpha_"), path)
            if not isinstance(data, Mapping):
                self.fail(
                    "normsys needs data {'hi': number, 'lo': number}", f"{path}.data"
                )
            hi = self.r._numbers([data.get("hi")], 1, f"{path}.data.hi")[0]
            lo = self.r._numbers([data.get("lo")], 1, f"{path}.data.lo")[0]
            self._interp(mod, "normsys", default_interp, path)
            return [{"name": name, "type": "normsys", "data": {"hi": hi, "lo": lo}}]
        if mtype == "histosys":
            if self._constraint(mod, path, "Gauss") != "Gauss":
                self.fail(
                    "histosys is Gaussian-constrained in hepprob", f"{path}.constraint"
                )
            name = self._scalar(self._param(mod, path, "alpha_"), path)
            if not isinstance(data, Mapping) or not all(
                isinstance(data.get(k), Mapping) for k in ("hi", "lo")
            ):
                self.fail(
                    "histosys needs data {'hi': {'contents'}, 'lo': {'contents'}}",
                    f"{path}.data",
                )
            hi = self.r._numbers(
                data["hi"].get("contents"), nb, f"{path}.data.hi.contents"
            )
            lo = self.r._numbers(
                data["lo"].get("contents"), nb, f"{path}.data.lo.contents"
            )
            self._interp(mod, "histosys", default_interp, path)
            return [
                {
                    "name": name,
                    "type": "histosys",
                    "data": {"hi_data": hi, "lo_data": lo},
                }
            ]
        if mtype == "shapefactor":
            stem, _ = self._vector(
                mod, path, nb, str(mod.get("name", f"shapefactor_{chname}"))
            )
            return [{"name": stem, "type": "shapefactor", "data": None}]
        if mtype == "shapesys":
            constraint = self._constraint(mod, path, "Poisson")
            stem, _ = self._vector(
                mod, path, nb, f"gamma_{mod.get('name', 'shapesys')}"
            )
            if not isinstance(data, Mapping):
                self.fail("shapesys needs data {'vals': [...]}", f"{path}.data")
            vals = np.array(self.r._numbers(data.get("vals"), nb, f"{path}.data.vals"))
            nom = np.array(nominal)
            if np.any(vals < 0):
                self.fail("shapesys vals must be >= 0", f"{path}.data.vals")
            if constraint == "Poisson":  # vals = tau (ROOT), sigma = n / sqrt(tau)
                sigma = np.where(
                    vals > 0, np.abs(nom) / np.sqrt(np.where(vals > 0, vals, 1.0)), 0.0
                )
                return [{"name": stem, "type": "shapesys", "data": sigma.tolist()}]
            return [
                {
                    "name": stem,
                    "type": "staterror",
                    "data": (vals * np.abs(nom)).tolist(),
                }
            ]
        if mtype == "staterror":
            constraint = self._constraint(mod, path, "Gauss")
            base = chname.removeprefix("model_")
            stem, _ = self._vector(mod, path, nb, f"gamma_stat_{base}")
            if errors is None:
                self.fail(
                    "a sample with a staterror modifier needs data.errors",
                    path.rsplit(".modifiers", 1)[0] + ".data",
                )
            if constraint == "Poisson":
                if len(stat_users) != 1:
                    self.fail(
                        "a Poisson-constrained staterror shared by several samples (Barlow-"
                        "Beeston-lite with one Poisson gamma per bin) has no pyhf JSON form",
                        f"{path}.constraint",
                    )
                sigma = stat_rel * np.abs(np.array(nominal))
                return [{"name": stem, "type": "shapesys", "data": sigma.tolist()}]
            err = np.where(stat_rel > 0, np.array(errors), 0.0)
            return [{"name": stem, "type": "staterror", "data": err.tolist()}]
        self.fail(
            f"modifier type {mtype!r} is not supported (normfactor, normsys, histosys, "
            "shapesys, shapefactor, staterror)",
            f"{path}.type",
        )
        return []

    def _constrained_normfactor(
        self, name: str, cname: Any, path: str
    ) -> dict[str, Any]:
        ci, dist = self.r._ref(
            self.r.dists, "distribution", cname, f"{path}.constraint_name"
        )
        cpath = f"distributions[{ci}]"
        if dist.get("type") != "gaussian_dist" or dist.get("x") != name:
            self.fail(
                f"the constraint of normfactor {name!r} must be a gaussian_dist with x = "
                f"{name!r}, got type {dist.get('type')!r} with x = {dist.get('x')!r}",
                cpath,
            )
        mean = self._value(dist.get("mean"), f"{cpath}.mean")
        sigma = self._value(dist.get("sigma"), f"{cpath}.sigma")
        if not sigma > 0:
            self.fail(f"sigma must be > 0, got {sigma}", f"{cpath}.sigma")
        pyhf_name = "lumi" if name.lower() == "lumi" else name
        self.names[name] = (pyhf_name, None)
        self.lumi[pyhf_name] = {"auxdata": [mean], "sigmas": [sigma]}
        return {"name": pyhf_name, "type": "lumi", "data": None}

    def _value(self, ref: Any, path: str) -> float:
        """A number, or the value of a (constant) parameter in the parameter points."""
        if isinstance(ref, (int, float)) and not isinstance(ref, bool):
            return float(ref)
        for _, point in self.r.points.values():
            for p in point.get("parameters", []) or []:
                if isinstance(p, Mapping) and p.get("name") == ref:
                    return float(p["value"])
        self.fail(
            f"{ref!r} is neither a number nor a parameter with a value in parameter_points",
            path,
        )
        return 0.0

    # ------------------------------------------------------------ settings
    def measurement(
        self, index: int, analysis: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        apath = f"analyses[{index}]"
        name = (
            "measurement"
            if analysis is None
            else str(analysis.get("name", f"analysis_{index}"))
        )
        poi = None
        if analysis is not None:
            pois = analysis.get("parameters_of_interest", analysis.get("pois", []))
            if not isinstance(pois, list) or not pois:
                self.fail(
                    "needs parameters_of_interest (the first is the POI)",
                    f"{apath}.parameters_of_interest",
                )
            poi = pois[0]
            if (
                not isinstance(poi, str)
                or self.names.get(poi, (poi, None))[1] is not None
            ):
                self.fail(
                    f"the POI {poi!r} is not a scalar parameter of the likelihood",
                    f"{apath}.parameters_of_interest",
                )
            poi = self.names.get(poi, (poi, None))[
                0
            ]  # absent: a background-only workspace
        else:
            nfs = [
                m["name"]
                for c in self.channels
                for s in c["samples"]
                for m in s["modifiers"]
                if m["type"] == "normfactor"
            ]
            if len(set(nfs)) != 1:
                self.fail("no analysis names the parameter of interest", "analyses")
            poi = nfs[0]
        init_name = analysis.get("init") if analysis else None
        points = self._point(init_name, f"{apath}.init")
        bounds = self._bounds(
            analysis.get("domains", analysis.get("domain")) if analysis else None, apath
        )
        return {
            "name": name,
            "config": {"poi": poi, "parameters": self._settings(points, bounds)},
        }

    def _point(self, name: Any, path: str) -> dict[str, tuple[float, bool]]:
        if name is None:
            name = "default_values" if "default_values" in self.r.points else None
            if name is None and len(self.r.points) == 1:
                name = next(iter(self.r.points))
        if name is None:
            return {}
        pi, point = self.r._ref(self.r.points, "parameter_points", name, path)
        out = {}
        params = point.get("parameters", [])
        if not isinstance(params, list):
            self.fail(
                "must be a list of {name, value, const}",
                f"parameter_points[{pi}].parameters",
            )
        for k, p in enumerate(params):
            if not isinstance(p, Mapping) or "name" not in p or "value" not in p:
                self.fail(
                    "a parameter entry is {name, value[, const]}",
                    f"parameter_points[{pi}].parameters[{k}]",
                )
            out[p["name"]] = (float(p["value"]), bool(p.get("const", False)))
        return out

    def _bounds(self, ref: Any, apath: str) -> dict[str, tuple[float, float]]:
        names = [ref] if isinstance(ref, str) else list(ref or [])
        if not names and "default_domain" in self.r.domains:
            names = ["default_domain"]
        out: dict[str, tuple[float, float]] = {}
        for k, dn in enumerate(names):
            di, dom = self.r._ref(self.r.domains, "domain", dn, f"{apath}.domains[{k}]")
            if dom.get("type", "product_domain") != "product_domain":
                self.fail(
                    f"domain type {dom.get('type')!r} is not supported (product_domain)",
                    f"domains[{di}].type",
                )
            for j, ax in enumerate(dom.get("axes", dom.get("variables", [])) or []):
                lo, hi = ax.get("min", -math.inf), ax.get("max", math.inf)
                if not lo <= hi:
                    self.fail(f"min {lo} > max {hi}", f"domains[{di}].axes[{j}]")
                out[ax["name"]] = (float(lo), float(hi))
        return out

    def _settings(self, points: dict, bounds: dict) -> list[dict[str, Any]]:
        scalars: dict[str, dict[str, Any]] = {}
        vectors: dict[str, dict[str, Any]] = {}
        for hs3_name, (pname, idx) in self.names.items():
            value, const = points.get(hs3_name, (None, False))
            bnd = bounds.get(hs3_name)
            if idx is None:
                cfg = scalars.setdefault(pname, {"name": pname})
                if value is not None:
                    cfg["inits"] = [value]
                    if const:
                        cfg["fixed"] = True
                if bnd is not None:
                    cfg["bounds"] = [list(bnd)]
            else:
                vec = vectors.setdefault(
                    pname, {"values": {}, "const": {}, "bounds": {}}
                )
                if value is not None:
                    vec["values"][idx], vec["const"][idx] = value, const
                if bnd is not None:
                    vec["bounds"][idx] = bnd
        for pname, aux in self.lumi.items():
            cfg = scalars.setdefault(pname, {"name": pname})
            cfg.update(aux)
            if "inits" not in cfg:
                cfg["inits"] = [aux["auxdata"][0]]
            if "bounds" not in cfg:
                mu, sig = aux["auxdata"][0], aux["sigmas"][0]
                cfg["bounds"] = [[mu - 5 * sig, mu + 5 * sig]]
        out = [cfg for cfg in scalars.values() if len(cfg) > 1]
        for pname, vec in vectors.items():
            n = self.vector_sizes[pname]
            cfg: dict[str, Any] = {"name": pname}
            if vec["values"]:
                if len(vec["values"]) == n:
                    cfg["inits"] = [vec["values"][i] for i in range(n)]
                consts = {vec["const"].get(i, False) for i in range(n)}
                if consts == {True}:
                    cfg["fixed"] = True
            if len(vec["bounds"]) == n:
                cfg["bounds"] = [list(vec["bounds"][i]) for i in range(n)]
            if len(cfg) > 1:
                out.append(cfg)
        return sorted(out, key=lambda c: c["name"])


# ===================================================================== write
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
        if code not in _INTERP_BACK.get(mtype, {}):
            msg = f"HS3 has no interpolation matching {mtype} {cfg}"
            raise SpecError(msg)
        if code != _DEFAULT_CODES[mtype]:
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
            kind, inside, outside = _INTERP_BACK[mtype][code]
            out["interpolation"] = {"type": kind, "in": inside, "out": outside}
        return out
    if mtype == "shapefactor":
        return {"name": name, "type": "shapefactor", "parameters": bins}
    if mtype == "shapesys":
        sigma = np.asarray(m["data"], dtype=float)
        valid = (nominal > 0) & (sigma > 0)
        tau = np.where(valid, (nominal / np.where(valid, sigma, 1.0)) ** 2, 0.0)
        return {
            "name": name,
            "type": "shapesys",
            "parameters": bins,
            "constraint": "Poisson",
            "data": {"vals": tau.tolist()},
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
