"""HS3 ``histfactory_dist`` channels -> pyhf JSON channels, observations and parameter settings.

Used by :func:`hepprob.io.hs3.read_hs3`; the conventions are listed there.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["DEFAULT_CODES", "INTERP_BACK", "SpecBuilder"]

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
INTERP_BACK = {
    "normsys": {"code1": ("mult", "exp", None), "code4": ("mult", "poly6", "exp"),
                "code0": ("mult", "poly1", None), "code2": ("mult", "poly2", "poly1")},
    "histosys": {"code0": ("add", "poly1", None), "code2": ("add", "poly2", "poly1"),
                 "code4p": ("add", "poly6", "poly1")},
}  # fmt: skip
DEFAULT_CODES = {"normsys": "code4", "histosys": "code4p"}
_BIN_NAME = re.compile(r"^(?P<stem>.+)_bin_?(?P<index>\d+)$")


class SpecBuilder:
    """Collects channels, observations and parameter settings from HS3 channels."""

    def __init__(self, reader: Any) -> None:  # an hs3._Reader
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
        chname = dist["name"].removeprefix(
            "model_"
        )  # ROOT names the pdf model_<channel>
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
            code = DEFAULT_CODES[mtype]
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
            if distinct and distinct != {DEFAULT_CODES[mtype]}:
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
            # vals are relative errors (ROOT writes 1/sqrt(tau) for Poisson, sigma/mean
            # for Gauss); vals 0 mean a constant gamma. The absolute error is vals * n.
            if constraint == "Poisson":
                sigma = vals * np.abs(nom)
                return [{"name": stem, "type": "shapesys", "data": sigma.tolist()}]
            return [
                {
                    "name": stem,
                    "type": "staterror",
                    "data": (vals * np.abs(nom)).tolist(),
                }
            ]
        if mtype == "staterror":
            constraint = self._constraint(mod, path, stat.get("constraint", "Gauss"))
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
