"""One loader for every likelihood format hepprob reads, detected from the content.

=============  ==================================  ==============================
format         detected by                         reader
=============  ==================================  ==============================
``pyhf``       JSON with ``channels``              :class:`~hepprob.histfactory.Workspace`
``hs3``        JSON with ``distributions``         :func:`hepprob.io.read_hs3`
``datacard``   text with ``imax``/``bin``/``rate``  :func:`hepprob.io.read_datacard`
``xml``        XML with ``<Combination>``          :func:`hepprob.histfactory.xml.parse`
=============  ==================================  ==============================

:func:`convert` writes pyhf JSON, HS3 or XML from any of them.
"""

from __future__ import annotations

import json
import pathlib
import re
from typing import Any

from hepprob.errors import SpecError

__all__ = ["FORMATS", "OUTPUT_FORMATS", "convert", "detect_format", "load_workspace"]


def __dir__() -> list[str]:
    return __all__


FORMATS = ("pyhf", "hs3", "datacard", "xml")
OUTPUT_FORMATS = ("pyhf", "hs3", "xml")
_CARD_KEYS = re.compile(r"^\s*(imax|jmax|kmax|bin|observation|shapes)\b", re.MULTILINE)


def detect_format(path: str | pathlib.Path) -> str:
    """``"pyhf"``, ``"hs3"``, ``"datacard"`` or ``"xml"``, read from the file's content.

    Raises:
        SpecError: an unreadable file or one of none of these formats.
    """
    file = pathlib.Path(path)
    try:
        head = file.read_bytes()[:65536].decode("utf-8", errors="replace")
    except OSError as err:
        msg = f"cannot read: {err.strerror}"
        raise SpecError(msg, str(file)) from None
    text = head.lstrip()
    if text.startswith("{"):
        try:
            doc = json.loads(file.read_text())
        except json.JSONDecodeError as err:
            msg = f"not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}"
            raise SpecError(msg, str(file)) from None
        if isinstance(doc, dict) and "channels" in doc:
            return "pyhf"
        if isinstance(doc, dict) and "distributions" in doc:
            return "hs3"
        keys = sorted(doc)[:8] if isinstance(doc, dict) else type(doc).__name__
        msg = f"a JSON file that is neither a pyhf workspace ('channels') nor HS3 ('distributions'); keys {keys}"
        raise SpecError(msg, str(file))
    if text.startswith("<") and "<Combination" in head:
        return "xml"
    if _CARD_KEYS.search(head) and re.search(r"^\s*rate\b", head, re.MULTILINE):
        return "datacard"
    msg = "cannot tell the format (pyhf JSON, HS3 JSON, Combine datacard or HistFactory XML); pass --format"
    raise SpecError(msg, str(file))


def load_workspace(
    path: str | pathlib.Path,
    format: str | None = None,
    *,
    basedir: str | pathlib.Path | None = None,
    analysis: str | None = None,
    mass: Any = None,
) -> Any:
    """Read a likelihood of any supported format.

    Args:
        path: the file (for XML, the top-level ``<Combination>`` file).
        format: one of :data:`FORMATS`; detected from the content when ``None``.
        basedir: XML: the folder paths in the XML are relative to (default:
            the file's folder, or its parent when the inputs are found there);
            datacards: the folder of the ``shapes`` files.
        analysis: HS3: the analysis to use.
        mass: datacards: the value of ``$MASS``.

    Returns:
        A :class:`~hepprob.histfactory.Workspace` or a
        :class:`~hepprob.io.configured.ConfiguredWorkspace` (both have
        ``model()`` and ``data(model)``).

    Raises:
        SpecError: naming the file and the problem.
    """
    fmt = detect_format(path) if format is None else format
    if fmt not in FORMATS:
        msg = f"unknown format {fmt!r}; expected one of {list(FORMATS)}"
        raise SpecError(msg, "format")
    if fmt == "pyhf":
        from hepprob.histfactory import Workspace

        return Workspace.from_file(path)
    if fmt == "hs3":
        from hepprob.io.hs3 import read_hs3

        return read_hs3(path, analysis=analysis)
    if fmt == "datacard":
        from hepprob.io.datacard import read_datacard

        return read_datacard(path, shapes_dir=basedir, mass=mass)
    from hepprob.histfactory import Workspace, xml

    top = pathlib.Path(path)
    root = pathlib.Path(basedir) if basedir is not None else _xml_root(top)
    return Workspace(xml.parse(top, root))


def convert(
    source: str | pathlib.Path,
    target: str | pathlib.Path,
    *,
    from_format: str | None = None,
    to_format: str | None = None,
    basedir: str | pathlib.Path | None = None,
) -> pathlib.Path:
    """Convert a likelihood file between formats.

    ``to_format`` defaults from ``target``: a folder or ``*.xml`` -> XML,
    ``*.hs3.json`` (or a name containing ``hs3``) -> HS3, other ``*.json`` ->
    pyhf JSON. XML goes into the folder ``target`` (``FitConfig.xml`` in it).

    Returns:
        The file written (for XML, the top-level file).

    Raises:
        SpecError: an unknown format, or a likelihood the target format cannot
            record (e.g. a datacard's smooth log-normal interpolation as pyhf
            JSON).
    """
    ws = load_workspace(source, from_format, basedir=basedir)
    out = pathlib.Path(target)
    fmt = to_format or _output_format(out)
    if fmt not in OUTPUT_FORMATS:
        msg = f"cannot write format {fmt!r}; expected one of {list(OUTPUT_FORMATS)}"
        raise SpecError(msg, "format")
    if fmt == "pyhf":
        if hasattr(ws, "json_exportable"):
            ws.to_dict()  # raises when JSON would change the likelihood
        out.write_text(json.dumps(ws.to_dict(), indent=2, sort_keys=True) + "\n")
        return out
    if fmt == "hs3":
        ws.to_hs3(path=out)
        return out
    return ws.to_xml(out.with_suffix("") if out.suffix == ".xml" else out)


def _output_format(out: pathlib.Path) -> str:
    if out.suffix == ".xml" or out.is_dir() or not out.suffix:
        return "xml"
    if "hs3" in out.name.lower():
        return "hs3"
    if out.suffix == ".json":
        return "pyhf"
    msg = (
        f"cannot tell the output format from {str(out)!r}; pass --to (pyhf, hs3 or xml)"
    )
    raise SpecError(msg, str(out))


def _xml_root(top: pathlib.Path) -> pathlib.Path:
    """The folder the XML's ``<Input>`` paths are relative to: the file's or its parent's."""
    import xml.etree.ElementTree as ET

    try:
        inputs = [
            el.text.strip() for el in ET.parse(top).getroot().iter("Input") if el.text
        ]
    except (ET.ParseError, OSError):
        return top.parent
    for candidate in (top.parent, top.parent.parent, pathlib.Path.cwd()):
        if inputs and (candidate / inputs[0]).exists():
            return candidate
    return top.parent
