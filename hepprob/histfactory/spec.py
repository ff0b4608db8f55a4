"""Validation of HistFactory JSON specifications (schema 1.0.0) with JSON-path errors."""

from __future__ import annotations

import functools
import json
import math
import pathlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import jsonschema
import numpy as np

from hepprob.errors import SpecError

__all__ = [
    "MODIFIER_TYPES",
    "SCHEMA_VERSION",
    "format_path",
    "load_schema",
    "validate_jsonpatch",
    "validate_model_spec",
    "validate_patchset",
    "validate_workspace",
]


def __dir__() -> list[str]:
    return __all__


SCHEMA_VERSION = "1.0.0"

#: the modifier types of the HistFactory JSON specification 1.0.0
MODIFIER_TYPES = (
    "histosys",
    "lumi",
    "normfactor",
    "normsys",
    "shapefactor",
    "shapesys",
    "staterror",
)

# modifiers whose parameter has one component per bin
_PER_BIN = frozenset({"shapefactor", "shapesys", "staterror"})
# parameter names may be shared only within one of these families
_FAMILY = {
    "histosys": "alpha",
    "normsys": "alpha",
    "lumi": "lumi",
    "normfactor": "normfactor",
    "shapefactor": "shapefactor",
    "shapesys": "shapesys",
    "staterror": "staterror",
}


def load_schema(version: str = SCHEMA_VERSION) -> dict[str, Any]:
    """Return hepprob's JSON Schema document of the HistFactory specification.

    Entry points are ``definitions/workspace``, ``definitions/model``,
    ``definitions/patchset`` and ``definitions/jsonpatch``.

    Raises:
        SpecError: if ``version`` is not a schema version hepprob ships.
    """
    return json.loads(json.dumps(_schema_document(version)))


def format_path(parts: Iterable[str | int]) -> str:
    """Turn path components into the JSON path used in error messages.

    ``["channels", 0, "samples", 1, "data"]`` becomes
    ``channels[0].samples[1].data``.
    """
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "<root>"


def validate_workspace(spec: Any, *, require_poi: bool = True) -> None:
    """Check a complete workspace (channels, observations, measurements, version).

    Beyond the JSON Schema it checks: unique channel, sample, observation and
    measurement names; equal bin counts of the samples and the observation of
    each channel; per-bin modifier data of the right length; finite yields;
    non-negative, finite observations; one observation per channel; parameters
    shared by several modifiers of compatible types; each measurement's POI
    defined by some modifier (unless ``require_poi`` is false: background-only
    workspaces of patchsets get their POI from a patch) and its parameter
    settings consistent.

    Raises:
        SpecError: naming the JSON path at fault and what is wrong.
    """
    _check_schema(spec, "workspace", "workspace")
    nbins = _check_channels(spec["channels"], "channels")
    params = _collect_parameters(spec["channels"], nbins)
    _check_observations(spec["observations"], nbins)
    names = [m["name"] for m in spec["measurements"]]
    _check_unique(names, "measurements", "measurement")
    for i, meas in enumerate(spec["measurements"]):
        path = f"measurements[{i}].config"
        poi = meas["config"]["poi"]
        if require_poi and poi not in params:
            msg = (
                f"poi {poi!r} of measurement {meas['name']!r} is not defined by any "
                f"modifier; defined parameters: {_short(sorted(params))}"
            )
            raise SpecError(msg, f"{path}.poi")
        _check_parameter_configs(meas["config"]["parameters"], params, path)


def validate_model_spec(spec: Any) -> None:
    """Check the ``{"channels": [...], "parameters": [...]}`` model form.

    The same checks as :func:`validate_workspace` for channels and parameter
    settings (no observations or measurements are involved).

    Raises:
        SpecError: naming the JSON path at fault and what is wrong.
    """
    _check_schema(spec, "model", "model spec")
    nbins = _check_channels(spec["channels"], "channels")
    params = _collect_parameters(spec["channels"], nbins)
    _check_parameter_configs(spec.get("parameters", []), params, "")


def validate_patchset(spec: Any) -> None:
    """Check a pyhf-style patchset (metadata, labelled patches, version).

    Beyond the schema: each patch has one value per label, and patch names and
    value tuples are unique.

    Raises:
        SpecError: naming the JSON path at fault and what is wrong.
    """
    _check_schema(spec, "patchset", "patchset")
    labels = spec["metadata"]["labels"]
    names: dict[str, int] = {}
    values: dict[tuple[Any, ...], int] = {}
    for i, patch in enumerate(spec["patches"]):
        meta = patch["metadata"]
        path = f"patches[{i}].metadata"
        if len(meta["values"]) != len(labels):
            msg = (
                f"expected {len(labels)} values (one per label {labels}), "
                f"got {len(meta['values'])}: {meta['values']}"
            )
            raise SpecError(msg, f"{path}.values")
        if meta["name"] in names:
            msg = (
                f"duplicate patch name {meta['name']!r} "
                f"(already used by patches[{names[meta['name']]}])"
            )
            raise SpecError(msg, f"{path}.name")
        names[meta["name"]] = i
        key = tuple(meta["values"])
        if key in values:
            msg = f"duplicate patch values {list(key)} (already used by patches[{values[key]}])"
            raise SpecError(msg, f"{path}.values")
        values[key] = i


def validate_jsonpatch(patch: Any, path: str = "patch") -> None:
    """Check that ``patch`` is a JSON Patch document (RFC 6902 operations list).

    Raises:
        SpecError: naming the operation at fault.
    """
    _check_schema(patch, "jsonpatch", "JSON patch", root=path)


# --------------------------------------------------------------------------- #
# private helpers
# --------------------------------------------------------------------------- #


@functools.cache
def _schema_document(version: str) -> dict[str, Any]:
    folder = pathlib.Path(__file__).parent / "schemas" / version
    file = folder / "histfactory.json"
    if not file.is_file():
        msg = f"unknown HistFactory schema version {version!r}; hepprob ships {SCHEMA_VERSION!r}"
        raise SpecError(msg, "version")
    with file.open() as f:
        return json.load(f)


@functools.cache
def _validator(entry: str) -> jsonschema.Draft7Validator:
    doc = _schema_document(SCHEMA_VERSION)
    schema = {"$ref": f"#/definitions/{entry}", "definitions": doc["definitions"]}
    return jsonschema.Draft7Validator(schema)


def _check_schema(spec: Any, entry: str, what: str, root: str = "") -> None:
    if entry != "jsonpatch" and not isinstance(spec, Mapping):
        msg = f"a {what} must be a JSON object (dict), got {type(spec).__name__}"
        raise SpecError(msg, root or "<root>")
    validator = _validator(entry)
    if _fast_valid(validator, entry, spec):
        return
    errors = list(validator.iter_errors(spec))
    if not errors:  # pragma: no cover - the reduced copy is exact; be safe
        return
    err = _deepest(errors)
    parts: list[str | int] = [root] if root else []
    parts += list(err.absolute_path)
    raise SpecError(_describe(err), format_path(parts))


def _fast_valid(validator: jsonschema.Draft7Validator, entry: str, spec: Any) -> bool:
    """Whether ``spec`` is valid, checked on a reduced copy (exact, but faster).

    Large workspaces hold millions of bin contents and tens of thousands of
    modifiers. The schema constrains bin arrays only as non-empty lists of
    numbers and modifier names only as strings, so after a quick Python check
    those are replaced by stand-ins, identical modifiers collapse to one, and
    each distinct modifier shape is validated once. The reduced copy is valid
    exactly when the original is; on failure the caller re-runs the full
    validation for the exact path. (Keep in step with the schema file.)
    """
    if entry not in ("workspace", "model"):
        return validator.is_valid(spec)
    shapes: dict[str, Any] = {}
    reduced = _reduce(spec, None, shapes)
    if not validator.is_valid(reduced):
        return False
    modifier = _validator("modifier")
    return all(modifier.is_valid(m) for m in shapes.values())


def _reduce(node: Any, key: str | None, shapes: dict[str, Any]) -> Any:
    if isinstance(node, Mapping):
        out = {}
        for k, v in node.items():
            if k == "modifiers" and isinstance(v, list):
                for mod in v:
                    shape = _modifier_shape(mod)
                    shapes.setdefault(
                        json.dumps(shape, sort_keys=True, default=repr), shape
                    )
                out[k] = []
            else:
                out[k] = _reduce(v, k, shapes)
        return out
    if isinstance(node, list):
        if key in ("data", "lo_data", "hi_data") and node and _all_numbers(node):
            return [0.0]
        return [_reduce(v, None, shapes) for v in node]
    return node


def _modifier_shape(mod: Any) -> Any:
    if not isinstance(mod, Mapping):
        return mod
    shape = dict(mod)
    if isinstance(shape.get("name"), str):
        shape["name"] = ""
    data = shape.get("data")
    if isinstance(data, list) and data and _all_numbers(data):
        shape["data"] = [0.0]
    elif isinstance(data, Mapping):
        shape["data"] = {
            k: [0.0]
            if isinstance(v, list) and v and _all_numbers(v)
            else (0.0 if type(v) in (int, float) else v)
            for k, v in data.items()
        }
    return shape


def _all_numbers(values: list[Any]) -> bool:
    return all(type(v) is float or type(v) is int for v in values)


def _deepest(
    errors: Sequence[jsonschema.ValidationError],
) -> jsonschema.ValidationError:
    """The most specific error: descend into if/then and $ref contexts."""
    err = jsonschema.exceptions.best_match(errors)
    while err.context:
        err = jsonschema.exceptions.best_match(err.context)
    return err


def _describe(err: jsonschema.ValidationError) -> str:
    kind = err.validator
    got = _short(err.instance)
    if kind == "required":
        missing = [k for k in err.validator_value if k not in err.instance]
        return f"missing required key(s) {missing}; present: {sorted(err.instance)}"
    if kind == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        extra = [k for k in err.instance if k not in allowed]
        return f"unexpected key(s) {extra}; allowed keys: {allowed}"
    if kind == "enum":
        return f"expected one of {list(err.validator_value)}, got {got}"
    if kind == "const":
        return f"expected {err.validator_value!r}, got {got}"
    if kind == "type":
        return f"expected {_type_words(err.validator_value)}, got {got} ({_json_type(err.instance)})"
    if kind == "minItems":
        return (
            f"expected at least {err.validator_value} item(s), got {len(err.instance)}"
        )
    if kind == "maxItems":
        return (
            f"expected at most {err.validator_value} item(s), got {len(err.instance)}"
        )
    if kind == "minProperties":
        return f"expected at least {err.validator_value} key(s), got {got}"
    if kind == "pattern":
        return f"expected a string matching {err.validator_value!r}, got {got}"
    return f"{err.message} (schema rule {kind!r})"


def _type_words(value: Any) -> str:
    names = {
        "null": "null",
        "number": "a number",
        "array": "a list",
        "object": "an object",
    }
    if isinstance(value, str):
        return names.get(value, f"a {value}")
    return " or ".join(_type_words(v) for v in value)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, (list, tuple)):
        return "list"
    return type(value).__name__


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_unique(names: Sequence[str], path: str, what: str) -> None:
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            msg = (
                f"duplicate {what} name {name!r} (already used by {path}[{seen[name]}])"
            )
            raise SpecError(msg, f"{path}[{i}].name")
        seen[name] = i


def _check_finite(
    values: Sequence[float], path: str, what: str, *, nonneg: bool
) -> None:
    arr = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(arr)
    if nonneg:
        bad |= arr < 0
    if not bad.any():
        return
    j = int(np.flatnonzero(bad)[0])
    v = values[j]
    problem = "finite" if not math.isfinite(v) else "non-negative"
    msg = f"{what} must be {problem}, got {v!r} in bin {j}"
    raise SpecError(msg, f"{path}[{j}]")


def _check_channels(channels: Sequence[Mapping[str, Any]], path: str) -> dict[str, int]:
    """Check channel contents; return the number of bins of each channel."""
    _check_unique([c["name"] for c in channels], path, "channel")
    nbins: dict[str, int] = {}
    for i, channel in enumerate(channels):
        cpath = f"{path}[{i}]"
        samples = channel["samples"]
        _check_unique([s["name"] for s in samples], f"{cpath}.samples", "sample")
        n = len(samples[0]["data"])
        for k, sample in enumerate(samples):
            spath = f"{cpath}.samples[{k}]"
            if len(sample["data"]) != n:
                msg = (
                    f"sample {sample['name']!r} has {len(sample['data'])} bins but "
                    f"sample {samples[0]['name']!r} of channel {channel['name']!r} has {n}"
                )
                raise SpecError(msg, f"{spath}.data")
            _check_finite(
                sample["data"], f"{spath}.data", "sample yields", nonneg=False
            )
            _check_modifiers(sample["modifiers"], n, spath)
        nbins[channel["name"]] = n
    return nbins


def _check_modifiers(
    modifiers: Sequence[Mapping[str, Any]], n: int, spath: str
) -> None:
    seen: dict[tuple[str, str], int] = {}
    for m, mod in enumerate(modifiers):
        mpath = f"{spath}.modifiers[{m}]"
        key = (mod["name"], mod["type"])
        if key in seen:
            msg = (
                f"duplicate modifier {mod['name']!r} of type {mod['type']!r} "
                f"(already at modifiers[{seen[key]}])"
            )
            raise SpecError(msg, f"{mpath}.name")
        seen[key] = m
        data = mod["data"]
        if mod["type"] == "histosys":
            for side in ("lo_data", "hi_data"):
                _check_length(
                    data[side], n, f"{mpath}.data.{side}", "histosys template"
                )
                _check_finite(
                    data[side],
                    f"{mpath}.data.{side}",
                    "histosys template",
                    nonneg=False,
                )
        elif mod["type"] in ("shapesys", "staterror"):
            _check_length(data, n, f"{mpath}.data", f"{mod['type']} uncertainties")
            _check_finite(
                data, f"{mpath}.data", f"{mod['type']} uncertainties", nonneg=True
            )
        elif mod["type"] == "normsys":
            for side in ("lo", "hi"):
                if not math.isfinite(data[side]):
                    msg = f"normsys factor must be finite, got {data[side]!r}"
                    raise SpecError(msg, f"{mpath}.data.{side}")


def _check_observations(
    observations: Sequence[Mapping[str, Any]], nbins: Mapping[str, int]
) -> None:
    _check_unique([o["name"] for o in observations], "observations", "observation")
    seen = set()
    for i, obs in enumerate(observations):
        path = f"observations[{i}]"
        if obs["name"] not in nbins:
            msg = (
                f"observation {obs['name']!r} matches no channel; "
                f"channels: {sorted(nbins)}"
            )
            raise SpecError(msg, f"{path}.name")
        n = nbins[obs["name"]]
        if len(obs["data"]) != n:
            msg = (
                f"channel {obs['name']!r} has {n} bins but its observation has "
                f"{len(obs['data'])}"
            )
            raise SpecError(msg, f"{path}.data")
        _check_finite(obs["data"], f"{path}.data", "observed counts", nonneg=True)
        seen.add(obs["name"])
    missing = [name for name in nbins if name not in seen]
    if missing:
        msg = f"channel(s) {missing} have no observations; add them to observations"
        raise SpecError(msg, "observations")


def _check_length(values: Sequence[Any], n: int, path: str, what: str) -> None:
    if len(values) != n:
        msg = f"{what} must have one entry per bin: expected {n}, got {len(values)}"
        raise SpecError(msg, path)


def _collect_parameters(
    channels: Sequence[Mapping[str, Any]], nbins: Mapping[str, int]
) -> dict[str, tuple[str, int, str]]:
    """Map parameter name -> (family, size, path of first use); check sharing."""
    params: dict[str, tuple[str, int, str]] = {}
    for i, channel in enumerate(channels):
        n = nbins[channel["name"]]
        for k, sample in enumerate(channel["samples"]):
            for m, mod in enumerate(sample["modifiers"]):
                path = f"channels[{i}].samples[{k}].modifiers[{m}]"
                family = _FAMILY[mod["type"]]
                size = n if mod["type"] in _PER_BIN else 1
                if mod["name"] not in params:
                    params[mod["name"]] = (family, size, path)
                    continue
                known, known_size, first = params[mod["name"]]
                if known != family:
                    msg = (
                        f"parameter {mod['name']!r} is used by a {mod['type']!r} modifier "
                        f"here but by an incompatible modifier at {first}"
                    )
                    raise SpecError(msg, f"{path}.type")
                if known_size != size:
                    msg = (
                        f"per-bin parameter {mod['name']!r} needs {known_size} bins "
                        f"(from {first}) but channel {channel['name']!r} has {size}"
                    )
                    raise SpecError(msg, f"{path}.name")
    return params


def _check_parameter_configs(
    configs: Sequence[Mapping[str, Any]],
    params: Mapping[str, tuple[str, int, str]],
    path: str,
) -> None:
    root = f"{path}.parameters" if path else "parameters"
    _check_unique([c["name"] for c in configs], root, "parameter")
    configured = {c["name"] for c in configs}
    for j, cfg in enumerate(configs):
        ppath = f"{root}[{j}]"
        if cfg["name"] not in params:
            # pyhf ignores settings of absent parameters (e.g. after pruning)
            continue
        _, size, _ = params[cfg["name"]]
        for key in ("inits", "auxdata", "sigmas", "bounds"):
            if key in cfg and len(cfg[key]) != size:
                msg = (
                    f"parameter {cfg['name']!r} has {size} component(s) but {key} "
                    f"has {len(cfg[key])}"
                )
                raise SpecError(msg, f"{ppath}.{key}")
        for b, (lo, hi) in enumerate(cfg.get("bounds", [])):
            if not lo <= hi:
                msg = f"bounds must satisfy lower <= upper, got [{lo}, {hi}]"
                raise SpecError(msg, f"{ppath}.bounds[{b}]")
        for b, value in enumerate(cfg.get("sigmas", [])):
            if not value > 0:
                msg = f"sigmas must be positive, got {value}"
                raise SpecError(msg, f"{ppath}.sigmas[{b}]")
    for name, (family, _, first) in params.items():
        if family == "lumi" and name not in configured:
            msg = (
                f"lumi parameter {name!r} (modifier at {first}) needs an entry in "
                f"parameters giving its auxdata and sigmas"
            )
            raise SpecError(msg, root)
        if family == "lumi":
            cfg = next(c for c in configs if c["name"] == name)
            missing = [k for k in ("auxdata", "sigmas") if k not in cfg]
            if missing:
                j = next(i for i, c in enumerate(configs) if c["name"] == name)
                msg = f"lumi parameter {name!r} needs {missing} in its settings"
                raise SpecError(msg, f"{root}[{j}]")
