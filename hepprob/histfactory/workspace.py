"""HistFactory workspaces: model + observations + measurements, with pruning, renaming and patches."""

from __future__ import annotations

import copy
import json
import pathlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from hepprob.errors import SpecError
from hepprob.histfactory.patchset import Patch, PatchSet, _read_json, apply_patches
from hepprob.histfactory.spec import validate_workspace

__all__ = ["Patch", "PatchSet", "Workspace"]


def __dir__() -> list[str]:
    return __all__


_JOINS = ("none", "outer", "left outer", "right outer")
_UNSET: Any = object()


class Workspace:
    """A HistFactory workspace (pyhf JSON specification 1.0.0).

    Holds the channels (samples and modifiers), the observed data of each
    channel and one or more measurements (POI and parameter settings). It is
    immutable in use: :meth:`prune`, :meth:`rename`, :meth:`patch` and
    :meth:`combine` return new workspaces.

    The spec is validated on construction (see
    :func:`hepprob.histfactory.spec.validate_workspace`), except that a
    measurement's POI may be absent from the channels — background-only
    workspaces of patchsets get their signal (and POI) from a patch; the POI is
    checked when a model is built.

    Args:
        spec: the workspace dict (``channels``, ``observations``,
            ``measurements``, ``version``).
        validate: validate the spec (recommended).

    Raises:
        SpecError: naming the JSON path at fault.
    """

    def __init__(self, spec: Mapping[str, Any], *, validate: bool = True) -> None:
        if validate:
            validate_workspace(spec, require_poi=False)
        self._spec: dict[str, Any] = copy.deepcopy(dict(spec))
        channels = self._spec["channels"]
        self._nbins = {c["name"]: len(c["samples"][0]["data"]) for c in channels}
        self.observations: dict[str, list[float]] = {
            o["name"]: list(o["data"]) for o in self._spec["observations"]
        }

    # ------------------------------------------------------------------ I/O
    @classmethod
    def from_file(cls, path: str | pathlib.Path, *, validate: bool = True) -> Workspace:
        """Read a workspace JSON file.

        Raises:
            SpecError: unreadable file, invalid JSON (naming line and column)
                or an invalid workspace.
        """
        return cls(_read_json(path), validate=validate)

    def to_dict(self) -> dict[str, Any]:
        """The workspace as a plain JSON-serialisable dict (a deep copy)."""
        return copy.deepcopy(self._spec)

    def to_json(self, path: str | pathlib.Path | None = None, **kwargs: Any) -> str:
        """Serialise to JSON; also write it to ``path`` when given.

        ``kwargs`` go to :func:`json.dumps` (default ``indent=2``,
        ``sort_keys=True``).
        """
        kwargs.setdefault("indent", 2)
        kwargs.setdefault("sort_keys", True)
        text = json.dumps(self._spec, **kwargs)
        if path is not None:
            pathlib.Path(path).write_text(text + "\n")
        return text

    def to_hs3(self, path: str | pathlib.Path | None = None) -> dict[str, Any]:
        """The workspace as an HS3 v0.2 document (see :func:`hepprob.io.hs3.write_hs3`)."""
        from hepprob.io.hs3 import write_hs3

        return write_hs3(self, path=path)

    def to_xml(self, folder: str | pathlib.Path, **kwargs: Any) -> Any:
        """HistFactory XML + ROOT files (see :func:`hepprob.histfactory.xml_export.write_xml`)."""
        from hepprob.histfactory.xml_export import write_xml

        return write_xml(self, folder, **kwargs)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Workspace):
            return NotImplemented
        return self._spec == other._spec

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"Workspace(channels={self.channels!r}, "
            f"measurements={self.measurement_names!r})"
        )

    # ----------------------------------------------------------- summaries
    @property
    def version(self) -> str:
        """Specification version (``"1.0.0"``)."""
        return self._spec["version"]

    @property
    def channels(self) -> list[str]:
        """Channel names, sorted (the order of ``model.config.channels``)."""
        return sorted(self._nbins)

    @property
    def channel_nbins(self) -> dict[str, int]:
        """Number of bins of each channel, in sorted channel order."""
        return {c: self._nbins[c] for c in self.channels}

    @property
    def samples(self) -> list[str]:
        """Sample names over all channels, sorted and unique."""
        return sorted({s["name"] for c in self._spec["channels"] for s in c["samples"]})

    @property
    def modifiers(self) -> list[tuple[str, str]]:
        """``(name, type)`` of all modifiers, sorted and unique."""
        return sorted(
            {
                (m["name"], m["type"])
                for c in self._spec["channels"]
                for s in c["samples"]
                for m in s["modifiers"]
            }
        )

    @property
    def parameters(self) -> list[str]:
        """Names of the parameters the modifiers define, sorted."""
        return sorted({name for name, _ in self.modifiers})

    @property
    def measurement_names(self) -> list[str]:
        """Measurement names, in file order (the first is the default)."""
        return [m["name"] for m in self._spec["measurements"]]

    def get_measurement(
        self,
        measurement_name: str | None = None,
        measurement_index: int | None = None,
    ) -> dict[str, Any]:
        """The measurement of a given name or index; by default the first.

        Raises:
            SpecError: unknown name or index out of range.
        """
        names = self.measurement_names
        if measurement_name is not None:
            if measurement_name not in names:
                msg = (
                    f"no measurement named {measurement_name!r}; measurements: {names}"
                )
                raise SpecError(msg, "measurements")
            measurement_index = names.index(measurement_name)
        index = 0 if measurement_index is None else measurement_index
        if not -len(names) <= index < len(names):
            msg = (
                f"measurement_index {index} is out of range for {len(names)} "
                f"measurement(s) {names}"
            )
            raise SpecError(msg, "measurements")
        return copy.deepcopy(self._spec["measurements"][index])

    # ------------------------------------------------------- model and data
    def model(
        self,
        patches: Sequence[Any] | None = None,
        modifier_settings: Mapping[str, Any] | None = None,
        measurement_name: str | None = None,
        poi_name: str | None = _UNSET,
        *,
        measurement_index: int | None = None,
        **model_kwargs: Any,
    ) -> Any:
        """Build the :class:`hepprob.histfactory.Model` of a measurement.

        As pyhf: the measurement (the first unless named) supplies the POI and
        the ``parameters`` settings; ``patches`` (JSON patches) are applied to
        ``{"channels": ..., "parameters": ...}`` before the model is built.

        Args:
            patches: JSON Patch documents, ``jsonpatch.JsonPatch`` or
                :class:`Patch` objects.
            modifier_settings: interpolation settings, passed to ``Model``.
            measurement_name: which measurement (default: the first).
            poi_name: override the measurement's POI; ``None`` for no POI.
            measurement_index: choose the measurement by index instead.
            model_kwargs: further options of ``Model``.

        Raises:
            SpecError: unknown measurement, a patch that does not apply, or a
                POI that no modifier defines.
        """
        spec, poi, _ = self._model_spec(
            patches, measurement_name, measurement_index, poi_name
        )
        from hepprob.histfactory.model import Model

        if modifier_settings is not None:
            model_kwargs["modifier_settings"] = modifier_settings
        return Model(spec, poi_name=poi, **model_kwargs)

    def model_spec(
        self,
        patches: Sequence[Any] | None = None,
        measurement_name: str | None = None,
        *,
        measurement_index: int | None = None,
    ) -> dict[str, Any]:
        """The ``{"channels", "parameters"}`` dict that :meth:`model` builds from.

        Its POI is checked to be defined by a modifier (after ``patches``).
        """
        return self._model_spec(patches, measurement_name, measurement_index)[0]

    def data(self, model: Any, include_auxdata: bool = True) -> list[float]:
        """Observed data ordered as the model expects them.

        The observations of ``model.config.channels`` in that order, followed
        by ``model.config.auxdata`` when ``include_auxdata`` (as pyhf).

        Raises:
            SpecError: if the model has a channel without observations here.
        """
        out: list[float] = []
        for channel in model.config.channels:
            if channel not in self.observations:
                msg = (
                    f"the model has channel {channel!r} but the workspace has no "
                    f"observations for it; observed channels: {sorted(self.observations)}"
                )
                raise SpecError(msg, "observations")
            out += [float(x) for x in self.observations[channel]]
        if include_auxdata:
            out += [float(x) for x in model.config.auxdata]
        return out

    # ------------------------------------------------------------ editing
    def patch(self, patches: Sequence[Any] | Any) -> Workspace:
        """A new workspace with JSON patches applied to the whole workspace.

        ``patches`` is one patch (a list of operations, ``jsonpatch.JsonPatch``
        or :class:`Patch`) or a list of them.

        Raises:
            SpecError: naming the patch and operation that fail, or an invalid
                result.
        """
        if isinstance(patches, Patch) or _is_operation_list(patches):
            patches = [patches]
        return Workspace(apply_patches(self._spec, patches))

    def prune(
        self,
        modifiers: Iterable[str] | None = None,
        modifier_types: Iterable[str] | None = None,
        samples: Iterable[str] | None = None,
        channels: Iterable[str] | None = None,
        measurements: Iterable[str] | None = None,
    ) -> Workspace:
        """A new workspace without the named components (as ``pyhf prune``).

        Pruning a channel drops its observation; pruning a modifier drops its
        parameter settings.

        Raises:
            SpecError: a name that is not in the workspace.
        """
        mods = self._known(modifiers, self.parameters, "modifier")
        types = self._known(
            modifier_types, {t for _, t in self.modifiers}, "modifier type"
        )
        samps = self._known(samples, self.samples, "sample")
        chans = self._known(channels, self.channels, "channel")
        meas = self._known(measurements, self.measurement_names, "measurement")
        return self._rebuild(mods, types, samps, chans, meas, {}, {}, {}, {})

    def rename(
        self,
        modifiers: Mapping[str, str] | None = None,
        samples: Mapping[str, str] | None = None,
        channels: Mapping[str, str] | None = None,
        measurements: Mapping[str, str] | None = None,
    ) -> Workspace:
        """A new workspace with components renamed by ``{old: new}`` mappings.

        Renaming a modifier renames its parameter settings and the POI;
        renaming a channel renames its observation.

        Raises:
            SpecError: an old name that is not in the workspace, or a clash.
        """
        rmods = dict(modifiers or {})
        rsamps = dict(samples or {})
        rchans = dict(channels or {})
        rmeas = dict(measurements or {})
        self._known(rmods, self.parameters, "modifier")
        self._known(rsamps, self.samples, "sample")
        self._known(rchans, self.channels, "channel")
        self._known(rmeas, self.measurement_names, "measurement")
        empty: set[str] = set()
        return self._rebuild(
            empty, empty, empty, empty, empty, rmods, rsamps, rchans, rmeas
        )

    @classmethod
    def combine(
        cls, left: Workspace, right: Workspace, join: str = "none"
    ) -> Workspace:
        """Combine two workspaces into one (as ``pyhf combine``).

        Args:
            left, right: the workspaces.
            join: ``"none"`` (names of channels, observations and measurements
                must not overlap), ``"outer"`` (overlapping items must be
                identical), ``"left outer"`` / ``"right outer"`` (on overlap
                the left / right item wins). Measurements of the same name
                have their parameter settings merged the same way.

        Raises:
            SpecError: an unknown join, overlapping or conflicting items.
        """
        if join not in _JOINS:
            msg = f"join must be one of {list(_JOINS)}, got {join!r}"
            raise SpecError(msg, "join")
        spec = {
            "channels": _join(
                left._spec["channels"], right._spec["channels"], join, "channels"
            ),
            "observations": _join(
                left._spec["observations"],
                right._spec["observations"],
                join,
                "observations",
            ),
            "measurements": _join_measurements(
                left._spec["measurements"], right._spec["measurements"], join
            ),
            "version": left.version,
        }
        if left.version != right.version:
            msg = f"cannot combine versions {left.version!r} and {right.version!r}"
            raise SpecError(msg, "version")
        return cls(spec)

    @classmethod
    def build(
        cls, model: Any, data: Sequence[float], name: str = "measurement"
    ) -> Workspace:
        """A workspace holding ``model`` and the main ``data`` (as ``pyhf`` build).

        The measurement ``name`` records the model's POI and, for every
        parameter, its settings in the model spec (e.g. lumi ``auxdata`` and
        ``sigmas``) with the model's suggested inits, bounds and fixed flags.

        Args:
            model: a ``Model`` (anything with ``spec`` and pyhf-like ``config``).
            data: observed main data, ordered as ``model.config.channels``
                (auxiliary data after them are ignored).
            name: the measurement name.

        Raises:
            SpecError: too few data or an invalid result.
        """
        config = model.config
        nmain = sum(config.channel_nbins[c] for c in config.channels)
        values = [float(x) for x in data]
        if len(values) < nmain:
            msg = f"expected at least {nmain} main data values, got {len(values)}"
            raise SpecError(msg, "data")
        init = [float(x) for x in config.suggested_init()]
        bounds = [[float(lo), float(hi)] for lo, hi in config.suggested_bounds()]
        fixed = [bool(f) for f in config.suggested_fixed()]
        settings = {p["name"]: p for p in model.spec.get("parameters", [])}
        parameters = []
        for pname in config.par_order:
            sl = config.par_slice(pname)
            cfg = copy.deepcopy(dict(settings.get(pname, {"name": pname})))
            cfg.update(inits=init[sl], bounds=bounds[sl], fixed=all(fixed[sl]))
            parameters.append(cfg)
        observations = []
        start = 0
        for channel in config.channels:
            stop = start + config.channel_nbins[channel]
            observations.append({"name": channel, "data": values[start:stop]})
            start = stop
        spec = {
            "channels": copy.deepcopy(model.spec["channels"]),
            "measurements": [
                {
                    "name": name,
                    "config": {"poi": config.poi_name, "parameters": parameters},
                }
            ],
            "observations": observations,
            "version": "1.0.0",
        }
        if config.poi_name is None:
            msg = "the model has no POI; a workspace measurement needs one"
            raise SpecError(msg, "model.config.poi_name")
        return cls(spec)

    # ------------------------------------------------------------ private
    def _model_spec(
        self,
        patches: Sequence[Any] | None,
        measurement_name: str | None,
        measurement_index: int | None,
        poi_name: str | None = _UNSET,
    ) -> tuple[dict[str, Any], str | None, int]:
        measurement = self.get_measurement(measurement_name, measurement_index)
        index = self.measurement_names.index(measurement["name"])
        spec = {
            "channels": self._spec["channels"],
            "parameters": measurement["config"]["parameters"],
        }
        spec = apply_patches(spec, patches)
        poi = measurement["config"]["poi"] if poi_name is _UNSET else poi_name
        if poi is None:
            return spec, poi, index
        defined = {
            m["name"]
            for c in spec.get("channels", [])
            for s in c.get("samples", [])
            for m in s.get("modifiers", [])
            if isinstance(m, Mapping) and "name" in m
        }
        if poi not in defined:
            where = (
                f"measurements[{index}].config.poi"
                if poi_name is _UNSET
                else "poi_name"
            )
            msg = (
                f"poi {poi!r} of measurement {measurement['name']!r} is not defined by "
                f"any modifier (apply the signal patch first?); defined: "
                f"{sorted(defined)[:20]}"
            )
            raise SpecError(msg, where)
        return spec, poi, index

    @staticmethod
    def _known(
        names: Iterable[str] | None, known: Iterable[str], what: str
    ) -> set[str]:
        chosen = set(names or [])
        missing = sorted(chosen - set(known))
        if missing:
            msg = f"{what}(s) {missing} not in the workspace; known: {sorted(known)}"
            raise SpecError(msg, what.replace(" ", "_") + "s")
        return chosen

    def _rebuild(
        self,
        mods: set[str],
        types: set[str],
        samps: set[str],
        chans: set[str],
        meas: set[str],
        rmods: dict[str, str],
        rsamps: dict[str, str],
        rchans: dict[str, str],
        rmeas: dict[str, str],
    ) -> Workspace:
        def keep_mod(m: Mapping[str, Any]) -> bool:
            return m["name"] not in mods and m["type"] not in types

        channels = [
            {
                "name": rchans.get(c["name"], c["name"]),
                "samples": [
                    {
                        "name": rsamps.get(s["name"], s["name"]),
                        "data": list(s["data"]),
                        "modifiers": [
                            dict(m, name=rmods.get(m["name"], m["name"]))
                            for m in s["modifiers"]
                            if keep_mod(m)
                        ],
                    }
                    for s in c["samples"]
                    if s["name"] not in samps
                ],
            }
            for c in self._spec["channels"]
            if c["name"] not in chans
        ]
        measurements = [
            {
                "name": rmeas.get(m["name"], m["name"]),
                "config": {
                    "poi": rmods.get(m["config"]["poi"], m["config"]["poi"]),
                    "parameters": [
                        dict(p, name=rmods.get(p["name"], p["name"]))
                        for p in m["config"]["parameters"]
                        if p["name"] not in mods
                    ],
                },
            }
            for m in self._spec["measurements"]
            if m["name"] not in meas
        ]
        observations = [
            dict(o, name=rchans.get(o["name"], o["name"]))
            for o in self._spec["observations"]
            if o["name"] not in chans
        ]
        spec = {
            "channels": copy.deepcopy(channels),
            "measurements": copy.deepcopy(measurements),
            "observations": copy.deepcopy(observations),
            "version": self.version,
        }
        return Workspace(spec)


def _is_operation_list(obj: Any) -> bool:
    return isinstance(obj, (list, tuple)) and all(
        isinstance(op, Mapping) and "op" in op for op in obj
    )


def _join(
    left: Sequence[Mapping[str, Any]],
    right: Sequence[Mapping[str, Any]],
    join: str,
    what: str,
) -> list[dict[str, Any]]:
    """Join two lists of named items (channels, observations) by name."""
    right_by_name = {item["name"]: item for item in right}
    out = []
    for item in left:
        other = right_by_name.get(item["name"])
        if other is None:
            out.append(copy.deepcopy(dict(item)))
            continue
        if join == "none":
            msg = (
                f"both workspaces have {what} named {item['name']!r}; use "
                f"join='outer', 'left outer' or 'right outer', or rename first"
            )
            raise SpecError(msg, what)
        if join == "outer" and dict(item) != dict(other):
            msg = (
                f"{what} {item['name']!r} differs between the workspaces, so "
                f"join='outer' cannot combine them; use 'left outer' or 'right outer'"
            )
            raise SpecError(msg, what)
        chosen = other if join == "right outer" else item
        out.append(copy.deepcopy(dict(chosen)))
    left_names = {item["name"] for item in left}
    out += [copy.deepcopy(dict(i)) for i in right if i["name"] not in left_names]
    return out


def _join_measurements(
    left: Sequence[Mapping[str, Any]], right: Sequence[Mapping[str, Any]], join: str
) -> list[dict[str, Any]]:
    right_by_name = {m["name"]: m for m in right}
    out = []
    for meas in left:
        other = right_by_name.get(meas["name"])
        if other is None:
            out.append(copy.deepcopy(dict(meas)))
            continue
        if join == "none":
            msg = (
                f"both workspaces have a measurement named {meas['name']!r}; use "
                f"another join or rename first"
            )
            raise SpecError(msg, "measurements")
        lpoi, rpoi = meas["config"]["poi"], other["config"]["poi"]
        if lpoi != rpoi and join == "outer":
            msg = f"measurement {meas['name']!r} has poi {lpoi!r} on the left, {rpoi!r} on the right"
            raise SpecError(msg, "measurements")
        poi = rpoi if join == "right outer" else lpoi
        params = _join(
            meas["config"]["parameters"],
            other["config"]["parameters"],
            join,
            f"measurement {meas['name']!r} parameters",
        )
        out.append({"name": meas["name"], "config": {"poi": poi, "parameters": params}})
    names = {m["name"] for m in left}
    out += [copy.deepcopy(dict(m)) for m in right if m["name"] not in names]
    return out
