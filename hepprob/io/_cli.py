"""The command-line side of the format readers: ``--format``, ``convert``, ``json2xml``.

``hepprob.cli`` decorates its workspace commands with :data:`format_option` and
reads their input with :func:`read_workspace`; :data:`convert` and
:data:`json2xml` are click commands it registers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from hepprob.io.formats import FORMATS, OUTPUT_FORMATS, load_workspace
from hepprob.io.formats import convert as _convert

__all__ = ["convert", "format_option", "json2xml", "read_workspace", "workspace_dict"]

_KEY = "hepprob.format"


def _store(ctx: click.Context, _param: Any, value: str | None) -> None:
    if value is not None:
        ctx.meta[_KEY] = value


format_option = click.option(
    "--format",
    "input_format",
    type=click.Choice(FORMATS),
    default=None,
    expose_value=False,
    callback=_store,
    help="Input format (default: detected from the content): pyhf JSON, HS3 JSON, Combine datacard, HistFactory XML.",
)


def read_workspace(path: str, read_json: Callable[[str], Any]) -> Any:
    """The workspace in ``path`` (``-``: JSON on standard input), any format."""
    ctx = click.get_current_context(silent=True)
    fmt = ctx.meta.get(_KEY) if ctx is not None else None
    if path == "-":
        from hepprob.histfactory import Workspace
        from hepprob.io.hs3 import read_hs3

        doc = read_json(path)
        if fmt == "hs3" or (
            fmt is None and isinstance(doc, dict) and "distributions" in doc
        ):
            return read_hs3(doc)
        return Workspace(doc)
    return load_workspace(path, fmt)


def workspace_dict(ws: Any) -> dict[str, Any]:
    """The HistFactory JSON part of a workspace (also of a ``ConfiguredWorkspace``)."""
    return getattr(ws, "workspace", ws).to_dict()


@click.command("convert")
@click.argument("source", type=click.Path(exists=True, dir_okay=False))
@click.argument("target", type=click.Path())
@click.option(
    "--from",
    "from_format",
    type=click.Choice(FORMATS),
    default=None,
    help="Input format (default: detected).",
)
@click.option(
    "--to",
    "to_format",
    type=click.Choice(OUTPUT_FORMATS),
    default=None,
    help="Output format (default: from TARGET: folder or .xml -> xml, *hs3*.json -> hs3, .json -> pyhf).",
)
@click.option(
    "--basedir",
    default=None,
    help="XML input: folder its paths are relative to; datacards: folder of the shapes files.",
)
def convert(
    source: str,
    target: str,
    from_format: str | None,
    to_format: str | None,
    basedir: str | None,
) -> None:
    """Convert a likelihood between pyhf JSON, HS3 JSON and HistFactory XML (datacards in)."""
    written = _convert(
        source, target, from_format=from_format, to_format=to_format, basedir=basedir
    )
    click.echo(json.dumps({"written": str(written)}))


@click.command("json2xml")
@click.argument("workspace", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--output-dir",
    default=".",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder for FitConfig.xml, config/ and data/.",
)
@click.option(
    "--prefix",
    default="results/hepprob",
    show_default=True,
    help="OutputFilePrefix of the <Combination>.",
)
def json2xml(workspace: str, output_dir: str, prefix: str) -> None:
    """Write a workspace (pyhf JSON or HS3) as HistFactory XML + ROOT files."""
    ws = load_workspace(workspace)
    top = ws.to_xml(output_dir, prefix=prefix)
    click.echo(json.dumps({"written": str(top)}))
