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
``shapesys`` Poisson      ``shapesys``: ``vals`` are relative errors
                          (ROOT writes :math:`1/\\sqrt{\\tau}`)
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
from collections.abc import Mapping
from typing import Any

from hepprob.errors import SpecError
from hepprob.histfactory.workspace import Workspace
from hepprob.io._hs3_channels import SpecBuilder
from hepprob.io._hs3_write import write_hs3

__all__ = ["read_hs3", "write_hs3"]


def __dir__() -> list[str]:
    return __all__


_TOP_KEYS = {
    "distributions", "data", "likelihoods", "analyses", "parameter_points",
    "domains", "metadata", "misc", "functions",
}  # fmt: skip


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
        builder = SpecBuilder(self)
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
