"""JSON Patch (RFC 6902) on HistFactory specs, and pyhf-style patchsets of signal hypotheses."""

from __future__ import annotations

import copy
import hashlib
import json
import pathlib
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import jsonpatch
import jsonpointer

from hepprob.errors import SpecError
from hepprob.histfactory.spec import validate_jsonpatch, validate_patchset

if TYPE_CHECKING:
    from hepprob.histfactory.workspace import Workspace

__all__ = ["Patch", "PatchSet", "apply_patches", "digest"]


def __dir__() -> list[str]:
    return __all__


def digest(obj: Any, algorithm: str = "sha256") -> str:
    """Hash of a JSON object, as recorded in a patchset's ``metadata.digests``.

    The object is serialised by :func:`json.dumps` with sorted keys and the
    default separators, encoded as UTF-8 (non-ASCII kept), then hashed; this is the convention of pyhf patchsets
    (``pyhf.utils.digest``), so digests written by pyhf verify here.

    Raises:
        SpecError: for an unknown hash algorithm.
    """
    if algorithm not in hashlib.algorithms_available:
        msg = f"unknown digest algorithm {algorithm!r}; use 'sha256' or 'md5'"
        raise SpecError(msg, "metadata.digests")
    text = json.dumps(obj, sort_keys=True, ensure_ascii=False)
    return hashlib.new(algorithm, text.encode("utf8")).hexdigest()


def apply_patches(
    spec: Mapping[str, Any], patches: Sequence[Any] | None, *, path: str = "patches"
) -> dict[str, Any]:
    """Apply JSON patches to a copy of ``spec`` and return it.

    Args:
        spec: any JSON-like dict (a workspace or a ``{"channels", "parameters"}``
            model spec).
        patches: a list whose items are JSON Patch documents (lists of
            operations), ``jsonpatch.JsonPatch`` objects or :class:`Patch`.
        path: name of the argument, used in error messages.

    Raises:
        SpecError: naming ``patches[i]`` (and the operation) when a patch is
            malformed or does not apply.
    """
    out = copy.deepcopy(dict(spec))
    for i, patch in enumerate(patches or []):
        ops = _operations(patch, f"{path}[{i}]")
        for j, op in enumerate(ops):
            try:
                out = jsonpatch.apply_patch(out, [op], in_place=True)
            except (
                jsonpatch.JsonPatchException,
                jsonpointer.JsonPointerException,
            ) as err:
                msg = (
                    f"operation {op.get('op')!r} at {op.get('path')!r} does not apply: "
                    f"{err}"
                )
                raise SpecError(msg, f"{path}[{i}][{j}]") from None
    return out


class Patch:
    """One member of a patchset: a name, its label values and a JSON patch.

    Attributes:
        name: the patch name (e.g. ``"C1N2_Wh_hbb_700_400"``).
        values: the values of the patchset labels (e.g. masses) for this patch.
        metadata: the full metadata dict.
        patch: the list of JSON Patch operations.
    """

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.metadata: dict[str, Any] = copy.deepcopy(dict(spec["metadata"]))
        self.patch: list[dict[str, Any]] = copy.deepcopy(list(spec["patch"]))

    @property
    def name(self) -> str:
        """The patch name."""
        return self.metadata["name"]

    @property
    def values(self) -> tuple[Any, ...]:
        """The label values of this patch, as a tuple."""
        return tuple(self.metadata["values"])

    def apply(self, workspace: Workspace | Mapping[str, Any]) -> Workspace:
        """Return a new workspace with this patch applied (no digest check)."""
        from hepprob.histfactory.workspace import Workspace

        spec = workspace.to_dict() if isinstance(workspace, Workspace) else workspace
        return Workspace(apply_patches(spec, [self.patch], path=f"patch {self.name!r}"))

    def to_dict(self) -> dict[str, Any]:
        """The patch as a JSON-serialisable dict (``metadata`` and ``patch``)."""
        return {
            "metadata": copy.deepcopy(self.metadata),
            "patch": copy.deepcopy(self.patch),
        }

    def __repr__(self) -> str:
        return f"Patch(name={self.name!r}, values={self.values!r})"


class PatchSet:
    """A set of named JSON patches for one workspace (pyhf patchset format 1.0.0).

    Patchsets publish many signal hypotheses next to one background-only
    workspace; each patch adds one signal. Look patches up by name
    (``ps["C1N2_700_400"]``) or by their label values (``ps[700, 400]``).

    Args:
        spec: the patchset dict (``metadata``, ``patches``, ``version``).
        validate: check it against the schema first (recommended).

    Raises:
        SpecError: naming the JSON path at fault.
    """

    def __init__(self, spec: Mapping[str, Any], *, validate: bool = True) -> None:
        if validate:
            validate_patchset(spec)
        self._spec = copy.deepcopy(dict(spec))
        self.patches: list[Patch] = [Patch(p) for p in self._spec["patches"]]
        self._by_name = {p.name: p for p in self.patches}
        self._by_values = {_values_key(p.values): p for p in self.patches}

    @classmethod
    def from_file(cls, path: str | pathlib.Path, *, validate: bool = True) -> PatchSet:
        """Read a patchset JSON file."""
        return cls(_read_json(path), validate=validate)

    @property
    def metadata(self) -> dict[str, Any]:
        """The patchset metadata (description, digests, labels, references)."""
        return self._spec["metadata"]

    @property
    def description(self) -> str:
        """Free-text description."""
        return self.metadata["description"]

    @property
    def digests(self) -> dict[str, str]:
        """Digests of the workspace the patches belong to, by algorithm."""
        return self.metadata["digests"]

    @property
    def labels(self) -> list[str]:
        """Names of the quantities that label the patches (e.g. masses)."""
        return self.metadata["labels"]

    @property
    def references(self) -> dict[str, str]:
        """References (e.g. the HEPData record)."""
        return self.metadata["references"]

    @property
    def version(self) -> str:
        """Patchset format version."""
        return self._spec["version"]

    @property
    def patch_names(self) -> list[str]:
        """Names of all patches, in file order."""
        return [p.name for p in self.patches]

    def __len__(self) -> int:
        return len(self.patches)

    def __iter__(self) -> Iterator[Patch]:
        return iter(self.patches)

    def __getitem__(self, key: str | Sequence[Any]) -> Patch:
        """The patch of a given name, or of given label values."""
        if isinstance(key, str):
            if key in self._by_name:
                return self._by_name[key]
            msg = f"no patch named {key!r}; patches: {_preview(self.patch_names)}"
            raise SpecError(msg, "patches")
        try:
            found = self._by_values.get(_values_key(tuple(key)))
        except TypeError:
            found = None
        if found is not None:
            return found
        msg = (
            f"no patch with values {key!r} for labels {self.labels}; "
            f"available: {_preview([list(p.values) for p in self.patches])}"
        )
        raise SpecError(msg, "patches")

    def verify(self, workspace: Workspace | Mapping[str, Any]) -> None:
        """Check that ``workspace`` is the one this patchset was made for.

        Raises:
            SpecError: if a recorded digest does not match the workspace.
        """
        from hepprob.histfactory.workspace import Workspace

        spec = workspace.to_dict() if isinstance(workspace, Workspace) else workspace
        for algorithm, expected in self.digests.items():
            got = digest(spec, algorithm)
            if got != expected:
                msg = (
                    f"the workspace does not match this patchset: {algorithm} digest "
                    f"expected {expected}, got {got}"
                )
                raise SpecError(msg, f"metadata.digests.{algorithm}")

    def apply(
        self,
        workspace: Workspace | Mapping[str, Any],
        key: str | Sequence[Any],
        *,
        verify: bool = True,
    ) -> Workspace:
        """Return a new workspace with the patch ``key`` (name or values) applied.

        Args:
            workspace: the background-only workspace the patchset belongs to.
            key: a patch name or a sequence of label values.
            verify: first check the workspace digest (:meth:`verify`).

        Raises:
            SpecError: unknown patch, digest mismatch or a patch that does not
                apply.
        """
        if verify:
            self.verify(workspace)
        return self[key].apply(workspace)

    def inspect(self) -> dict[str, Any]:
        """A JSON-serialisable summary, for ``hepprob patchset inspect``."""
        return {
            "description": self.description,
            "digests": dict(self.digests),
            "labels": list(self.labels),
            "references": dict(self.references),
            "version": self.version,
            "n_patches": len(self.patches),
            "patches": [
                {"name": p.name, "values": list(p.values)} for p in self.patches
            ],
        }

    def to_dict(self) -> dict[str, Any]:
        """The patchset as a JSON-serialisable dict."""
        return copy.deepcopy(self._spec)

    def __repr__(self) -> str:
        return f"PatchSet({len(self.patches)} patches, labels={self.labels!r})"


def _operations(patch: Any, path: str) -> list[dict[str, Any]]:
    if isinstance(patch, Patch):
        return patch.patch
    if isinstance(patch, jsonpatch.JsonPatch):
        return list(patch.patch)
    if isinstance(patch, Mapping) and "patch" in patch and "metadata" in patch:
        patch = patch["patch"]
    if isinstance(patch, Mapping):
        # a single operation given on its own
        patch = [patch]
    validate_jsonpatch(patch, path)
    return list(patch)


def _values_key(values: Sequence[Any]) -> tuple[Any, ...]:
    # 700 and 700.0 label the same patch
    return tuple(float(v) if isinstance(v, (int, float)) else v for v in values)


def _preview(items: Sequence[Any], limit: int = 10) -> str:
    shown = ", ".join(repr(i) for i in items[:limit])
    more = f", ... ({len(items)} in all)" if len(items) > limit else ""
    return f"[{shown}{more}]"


def _read_json(path: str | pathlib.Path) -> Any:
    file = pathlib.Path(path)
    try:
        with file.open() as f:
            return json.load(f)
    except OSError as err:
        msg = f"cannot read {str(file)!r}: {err.strerror}"
        raise SpecError(msg, str(file)) from None
    except json.JSONDecodeError as err:
        msg = f"not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}"
        raise SpecError(msg, str(file)) from None
