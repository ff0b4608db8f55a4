"""A workspace together with the model options it needs (interpolation codes, JAX extensions).

Some likelihoods read from other formats are HistFactory workspaces *plus*
something the pyhf JSON schema cannot record: Combine datacards use the smooth
asymmetric log-normal (``lnN_smooth``) and 6th-order vertical morphing
(``poly6``) interpolations, ``lnU`` and formula ``rateParam`` effects are JAX
yield functions on extra parameters, and an HS3 file may ask for other
interpolation codes. :class:`ConfiguredWorkspace` holds the plain
:class:`~hepprob.histfactory.Workspace` and those options, and builds the model
with them, so that ``ws.model()`` / ``ws.data(model)`` work as for any workspace.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hepprob.errors import SpecError
from hepprob.histfactory.workspace import Workspace

__all__ = ["ConfiguredWorkspace"]


def __dir__() -> list[str]:
    return __all__


_JSON_SAFE = frozenset({"modifier_settings"})


class ConfiguredWorkspace:
    """A :class:`Workspace` and the ``Model`` options its likelihood needs.

    Args:
        workspace: the HistFactory part (channels, observations, measurements).
        model_options: keyword arguments of
            :class:`~hepprob.histfactory.Model` (``modifier_settings``,
            ``extra_parameters``, ``yield_functions``, ``clip_sample_data`` ...)
            applied by :meth:`model`; explicit arguments of :meth:`model` win.
        groups: named groups of parameters (Combine's ``group`` lines).
        source: where it was read from (for messages).
        notes: what the JSON form cannot record, one line per construct
            (shown when an export is refused).
    """

    def __init__(
        self,
        workspace: Workspace,
        model_options: Mapping[str, Any] | None = None,
        *,
        groups: Mapping[str, Sequence[str]] | None = None,
        source: str | None = None,
        notes: Sequence[str] = (),
    ) -> None:
        self.workspace = workspace
        self.model_options: dict[str, Any] = dict(model_options or {})
        self.groups: dict[str, list[str]] = {
            k: list(v) for k, v in (groups or {}).items()
        }
        self.source = source
        self.notes = list(notes)

    # ------------------------------------------------------------ model
    def model(self, *args: Any, **kwargs: Any) -> Any:
        """``workspace.model(...)`` with :attr:`model_options` as defaults."""
        options = dict(self.model_options)
        if "modifier_settings" in kwargs and kwargs["modifier_settings"] is not None:
            merged = dict(options.get("modifier_settings", {}))
            merged.update(kwargs.pop("modifier_settings"))
            options["modifier_settings"] = merged
        options.update(kwargs)
        return self.workspace.model(*args, **options)

    def data(self, model: Any, include_auxdata: bool = True) -> list[float]:
        """Observed data ordered as ``model`` expects (see ``Workspace.data``)."""
        return self.workspace.data(model, include_auxdata=include_auxdata)

    # ------------------------------------------------------------ summaries
    @property
    def channels(self) -> list[str]:
        """Channel names, sorted."""
        return self.workspace.channels

    @property
    def channel_nbins(self) -> dict[str, int]:
        """Number of bins per channel."""
        return self.workspace.channel_nbins

    @property
    def samples(self) -> list[str]:
        """Sample names, sorted."""
        return self.workspace.samples

    @property
    def observations(self) -> dict[str, list[float]]:
        """Observed counts per channel."""
        return self.workspace.observations

    @property
    def measurement_names(self) -> list[str]:
        """Measurement names (the first is the default)."""
        return self.workspace.measurement_names

    @property
    def parameters(self) -> list[str]:
        """Parameter names of the JSON part (extra parameters not included)."""
        return self.workspace.parameters

    @property
    def json_exportable(self) -> bool:
        """Whether the pyhf JSON form gives the same likelihood."""
        return (
            not self.notes
            and set(self.model_options) <= _JSON_SAFE
            and not (self.model_options.get("modifier_settings"))
        )

    # ------------------------------------------------------------ export
    def to_dict(self) -> dict[str, Any]:
        """The workspace as pyhf JSON, refused when that would change the likelihood.

        Raises:
            SpecError: naming the constructs the JSON schema cannot record.
        """
        self._check_exportable("pyhf JSON")
        return self.workspace.to_dict()

    def to_json(self, path: Any = None, **kwargs: Any) -> str:
        """JSON text of :meth:`to_dict` (written to ``path`` when given)."""
        self._check_exportable("pyhf JSON")
        return self.workspace.to_json(path, **kwargs)

    def to_hs3(self, **kwargs: Any) -> dict[str, Any]:
        """HS3 JSON of the workspace (see :func:`hepprob.io.hs3.write_hs3`)."""
        from hepprob.io.hs3 import write_hs3

        return write_hs3(self, **kwargs)

    def to_xml(self, folder: Any, **kwargs: Any) -> Any:
        """HistFactory XML + ROOT files (see :func:`hepprob.histfactory.xml_export.write_xml`)."""
        self._check_exportable("HistFactory XML")
        from hepprob.histfactory.xml_export import write_xml

        return write_xml(self.workspace, folder, **kwargs)

    def _check_exportable(self, target: str) -> None:
        if self.json_exportable:
            return
        reasons = list(self.notes)
        settings = self.model_options.get("modifier_settings") or {}
        for mtype, cfg in sorted(settings.items()):
            reasons.append(f"{mtype} interpolation {cfg}")
        for key in sorted(set(self.model_options) - _JSON_SAFE):
            reasons.append(f"model option {key!r}")
        where = f"{self.source}: " if self.source else ""
        msg = (
            f"{where}cannot write {target}: its format cannot record "
            f"{'; '.join(reasons)} (the likelihood would change)"
        )
        raise SpecError(msg)

    def __repr__(self) -> str:
        return (
            f"ConfiguredWorkspace(channels={self.channels!r}, "
            f"options={sorted(self.model_options)!r})"
        )
