"""The ``hepprob`` command line: a thin shell over the library.

Where a command overlaps pyhf's CLI it takes the same options and prints the
same JSON (``inspect``, ``fit``, ``cls``, ``prune``, ``rename``, ``combine``,
``digest``, ``sort``, ``xml2json``, ``patchset``); ``upperlimit``,
``discovery``, ``sample`` and ``demo`` are hepprob's own. A workspace argument
of ``-`` (the default) reads the workspace from standard input, as pyhf does.
``--pretty`` prints a table for people instead of JSON.

Errors of any kind, usage errors included, become one line
``hepprob: error: <reason>`` on stderr and exit status 1; warnings print as one
line ``hepprob: warning: <message>``; ``--debug`` (before or after the
command) shows tracebacks and third-party warnings instead.

Commands import the numerical stack (JAX, NumPyro) inside their bodies, so
``hepprob --help`` and the file-only commands start quickly.
"""

from __future__ import annotations

import json
import logging
import pathlib
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import click

from hepprob.io._cli import (
    convert,
    format_option,
    json2xml,
    read_workspace,
    workspace_dict,
)

__all__ = ["cli", "main"]

DEBUG_FLAG = "--debug"


# -- input and output ----------------------------------------------------------


def _read_json(path: str) -> Any:
    """A JSON document from a file, or from standard input for ``-``."""
    from hepprob.errors import DataError

    if path != "-":
        from hepprob.io.jsonio import load_json

        return load_json(path)
    text = click.get_text_stream("stdin").read()
    if not text.strip():
        msg = "no workspace given: pass a file, or pipe one in (cat ws.json | hepprob ...)"
        raise DataError(msg)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        msg = f"standard input is not valid JSON ({err.msg}, line {err.lineno})"
        raise DataError(msg) from None


def _plain(obj: Any) -> Any:
    """JSON-ready: arrays to lists, NaN and infinities to ``null``."""
    import math

    from hepprob.io.jsonio import to_jsonable

    obj = to_jsonable(obj)
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    return obj


def _emit(payload: Any, output_file: str | None = None) -> None:
    """JSON as pyhf writes it (4 spaces, sorted keys), to a file or stdout."""
    text = json.dumps(_plain(payload), indent=4, sort_keys=True, allow_nan=False)
    if output_file:
        pathlib.Path(output_file).write_text(text + "\n")
    else:
        click.echo(text)


def _emit_either(
    payload: Any, table: Callable[[], Any], pretty: bool, output_file: str | None
) -> None:
    """JSON (to ``output_file`` or stdout), or with ``pretty`` the table on stdout."""
    if pretty:
        click.echo(str(table()))
        if output_file:
            _emit(payload, output_file)
    else:
        _emit(payload, output_file)


def _workspace_model(
    workspace: str, patches: Sequence[str], measurement: str | None
) -> tuple[Any, Any, Any]:
    """Read a workspace (file or stdin), apply JSON patches, build model + data."""
    ws = read_workspace(workspace, _read_json)  # any format: hepprob.io.formats
    patch_docs = [_read_json(p) for p in patches]
    model = ws.model(patches=patch_docs or None, measurement_name=measurement)
    data = ws.data(model)
    return ws, model, data


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


# -- the group: one-line errors and warnings, --debug anywhere -----------------


class _Hepprob(click.Group):
    """A click group whose failures are one line and exit 1.

    ``--debug`` is taken out of the arguments wherever it stands, so it works
    before and after the command name alike.
    """

    def main(self, args: Sequence[str] | None = None, **kwargs: Any) -> Any:  # type: ignore[override]
        argv = list(sys.argv[1:] if args is None else args)
        cut = argv.index("--") if "--" in argv else len(argv)
        debug = DEBUG_FLAG in argv[:cut]
        argv = [a for a in argv[:cut] if a != DEBUG_FLAG] + argv[cut:]
        kwargs.setdefault("prog_name", "hepprob")
        kwargs.pop("standalone_mode", None)
        if not debug:  # other packages' logged warnings (ArviZ, JAX) stay quiet
            logging.getLogger().addHandler(logging.NullHandler())
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning(debug)
            warnings.simplefilter("default")
            try:
                code = super().main(argv, standalone_mode=False, **kwargs)
            except click.exceptions.Abort:
                _fail("aborted")
            except click.ClickException as err:  # usage errors
                _fail(err.format_message())
            except Exception as err:
                if debug:
                    raise
                _fail(str(err) or type(err).__name__)
        sys.exit(code if isinstance(code, int) else 0)


def _fail(reason: str) -> None:
    click.echo(f"hepprob: error: {_one_line(reason)}", err=True)
    sys.exit(1)


def _show_warning(debug: bool) -> Callable[..., None]:
    """hepprob's warnings as one line; other packages' only with ``--debug``.

    hepprob's are its own categories (``HepprobWarning`` and subclasses) and
    plain warnings raised from its files; deprecation and future warnings
    always come from other packages.
    """
    upstream = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)

    def show(message: Any, category: type, filename: str, lineno: int, *_: Any) -> None:
        in_hepprob = "/hepprob/" in filename.replace("\\", "/")
        ours = category.__module__.startswith("hepprob") or (
            in_hepprob and not issubclass(category, upstream)
        )
        if ours:
            click.echo(f"hepprob: warning: {_one_line(message)}", err=True)
        elif debug:
            click.echo(
                f"hepprob: warning ({category.__name__}, {filename}:{lineno}): "
                f"{_one_line(message)}",
                err=True,
            )

    return show


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hepprob")
    except PackageNotFoundError:  # a source tree that was not installed
        return "unknown"


def _print_version(ctx: click.Context, _param: Any, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(f"hepprob {_version()}")
        ctx.exit()


@click.group(
    cls=_Hepprob,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the version and exit.",
)
@click.option("--debug", is_flag=True, help="Show tracebacks and third-party warnings.")
def cli(debug: bool) -> None:
    """hepprob: HEP likelihoods on NumPyro and JAX (fits, CLs, limits, MCMC).

    Workspace commands read a pyhf JSON workspace from a file or, with no file
    or "-", from standard input, and print JSON (pyhf's layout where pyhf has
    the command; --pretty for a table).
    """


# -- shared options ------------------------------------------------------------

_ws_argument = click.argument(
    "workspace", default="-", type=click.Path(dir_okay=False, allow_dash=True)
)
_patch_option = click.option(
    "-p", "--patch", "patches", multiple=True, help="JSON Patch file (repeatable)."
)
_measurement_option = click.option(
    "--measurement", default=None, help="Measurement name (default: the first)."
)
_output_option = click.option(
    "--output-file", default=None, help="Write the JSON here instead of stdout."
)
_pretty_option = click.option(
    "--pretty", is_flag=True, help="Print a table for people instead of JSON."
)


# -- commands --------------------------------------------------------------------


@cli.command()
@click.option("--seed", default=0, show_default=True, help="Random seed.")
@click.option("--json", "as_json", is_flag=True, help="Print the full results as JSON.")
@click.option(
    "--plot-dir",
    default="hepprob-demo",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder for the plots (PNG).",
)
@click.option("--no-plots", is_flag=True, help="Do not draw plots.")
@click.option("--events", default=10_000, show_default=True, help="Events generated.")
@click.option(
    "--mcmc-samples",
    default=250,
    show_default=True,
    help="NUTS draws per chain (4 chains); 0 skips the posterior.",
)
def demo(
    seed: int,
    as_json: bool,
    plot_dir: str,
    no_plots: bool,
    events: int,
    mcmc_samples: int,
) -> None:
    """Run the built-in example: fit, Minos, CLs, limit and a NUTS posterior."""
    from hepprob import demo as demo_module

    out = demo_module.run(
        seed=seed, n_events=events, mcmc_samples=mcmc_samples, minos=True
    )
    plots = [] if no_plots else demo_module.plots(out, plot_dir)
    if as_json:
        _emit({**out, "plots": plots})
    else:
        click.echo(demo_module.report(out, plots))


@cli.command()
@_ws_argument
@format_option
@_measurement_option
@_output_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def inspect(
    workspace: str, measurement: str | None, output_file: str | None, as_json: bool
) -> None:
    """Summarise a workspace: channels, samples, parameters, measurements (as pyhf).

    The tables go to stdout; --output-file writes pyhf's JSON summary too.
    """
    from hepprob import _inspect

    ws = read_workspace(workspace, _read_json)
    summary = _inspect.summary(workspace_dict(ws))
    if measurement is not None:
        ws.get_measurement(measurement_name=measurement)  # checks the name
    if as_json:
        _emit(summary)
    else:
        click.echo(_inspect.tables(summary, default=measurement))
    if output_file:
        _emit(summary, output_file)


@cli.command()
@_ws_argument
@format_option
@_patch_option
@_measurement_option
@_output_option
@click.option("--value", is_flag=True, help="Also give the fitted twice NLL.")
@_pretty_option
def fit(
    workspace: str,
    patches: tuple[str, ...],
    measurement: str | None,
    output_file: str | None,
    value: bool,
    pretty: bool,
) -> None:
    """Maximum-likelihood fit (as ``pyhf fit``): ``mle_parameters`` per parameter set.

    hepprob adds ``mle_uncertainties`` (Hesse) and ``converged``.
    """
    import numpy as np

    from hepprob import _display
    from hepprob.infer import mle

    _, model, data = _workspace_model(workspace, patches, measurement)
    pars, twice_nll = mle.fit(
        data, model, return_uncertainties=True, return_fitted_val=True
    )
    pars = np.asarray(pars)
    cfg = model.config
    by_set = {
        name: (pars[cfg.par_slice(name), 0], pars[cfg.par_slice(name), 1])
        for name in cfg.par_order
    }
    payload: dict[str, Any] = {
        "mle_parameters": {k: v.tolist() for k, (v, _) in by_set.items()},
        "mle_uncertainties": {k: e.tolist() for k, (_, e) in by_set.items()},
    }
    if value:
        payload["twice_nll"] = float(twice_nll)

    def table() -> Any:
        fixed = cfg.suggested_fixed()
        return _display.fit_table(
            cfg.par_names,
            pars[:, 0],
            pars[:, 1],
            fixed=fixed,
            title=f"maximum-likelihood fit: -2 ln L = {float(twice_nll):.8g}",
        )

    _emit_either(payload, table, pretty, output_file)


_CALCTYPES = {
    "asymptotics": "asymptotic",
    "asymptotic": "asymptotic",
    "toybased": "toybased",
}


@cli.command()
@_ws_argument
@format_option
@_patch_option
@_measurement_option
@click.option(
    "--test-poi",
    "--poi-value",
    "test_poi",
    default=1.0,
    show_default=True,
    type=float,
    help="POI value tested.",
)
@click.option(
    "--test-stat",
    default="qtilde",
    show_default=True,
    type=click.Choice(["q", "qtilde"]),
)
@click.option(
    "--calctype",
    default="asymptotics",
    show_default=True,
    type=click.Choice(["asymptotics", "asymptotic", "toybased"]),
)
@click.option("--ntoys", default=2000, show_default=True, type=int)
@click.option(
    "--patchset",
    "patchset_file",
    default=None,
    type=click.Path(dir_okay=False),
    help="CLs of every patch of this patchset (asymptotic), one JSON table.",
)
@_output_option
@_pretty_option
def cls(
    workspace: str,
    patches: tuple[str, ...],
    measurement: str | None,
    test_poi: float,
    test_stat: str,
    calctype: str,
    ntoys: int,
    patchset_file: str | None,
    output_file: str | None,
    pretty: bool,
) -> None:
    """CLs at one POI value, observed and expected band (as ``pyhf cls``)."""
    from hepprob import _display
    from hepprob.infer import hypotest

    if patchset_file is not None:
        from hepprob.histfactory import PatchSet
        from hepprob.infer import scan_patchset

        if patches or _CALCTYPES[calctype] != "asymptotic":
            msg = "--patchset scans asymptotic CLs; it takes no --patch or toys"
            raise click.UsageError(msg)
        scan = scan_patchset(
            read_workspace(workspace, _read_json),
            PatchSet(_read_json(patchset_file)),
            poi_value=test_poi,
            test_stat=test_stat,
            measurement_name=measurement,
        )
        _emit(scan.to_dict(), output_file)
        return
    _, model, data = _workspace_model(workspace, patches, measurement)
    obs, expected = hypotest(
        test_poi,
        data,
        model,
        test_stat=test_stat,
        calctype=_CALCTYPES[calctype],
        ntoys=ntoys,
        return_expected_set=True,
    )
    payload = {"CLs_obs": float(obs), "CLs_exp": [float(v) for v in expected]}
    _emit_either(
        payload,
        lambda: _display.cls_table(
            test_poi,
            payload["CLs_obs"],
            payload["CLs_exp"],
            poi_name=model.config.poi_name or "POI",
        ),
        pretty,
        output_file,
    )


@cli.command()
@_ws_argument
@format_option
@_patch_option
@_measurement_option
@click.option("--level", default=0.05, show_default=True, type=float)
@_output_option
@_pretty_option
def upperlimit(
    workspace: str,
    patches: tuple[str, ...],
    measurement: str | None,
    level: float,
    output_file: str | None,
    pretty: bool,
) -> None:
    """Observed and expected (-2..+2 sigma) CLs upper limits on the POI."""
    from hepprob import _display
    from hepprob.infer import upper_limit

    _, model, data = _workspace_model(workspace, patches, measurement)
    obs, expected = upper_limit(data, model, level=level)
    payload = {"obs_limit": float(obs), "exp_limits": [float(v) for v in expected]}
    _emit_either(
        payload,
        lambda: _display.limit_table(
            payload["obs_limit"],
            payload["exp_limits"],
            level=level,
            poi_name=model.config.poi_name or "POI",
        ),
        pretty,
        output_file,
    )


@cli.command()
@_ws_argument
@format_option
@_patch_option
@_measurement_option
@_output_option
@_pretty_option
def discovery(
    workspace: str,
    patches: tuple[str, ...],
    measurement: str | None,
    output_file: str | None,
    pretty: bool,
) -> None:
    """Discovery significance (q0 test of the background-only hypothesis).

    JSON: ``Z_obs``, ``Z_exp`` (median expected under signal strength 1) and
    their p-values ``p0_obs``, ``p0_exp``.
    """
    from hepprob import _display
    from hepprob.infer import discovery as q0_discovery

    _, model, data = _workspace_model(workspace, patches, measurement)
    z_obs, z_exp, p_obs, p_exp = q0_discovery(
        data, model, return_expected=True, return_pvalues=True
    )
    payload = {
        "Z_obs": float(z_obs),
        "Z_exp": float(z_exp),
        "p0_obs": float(p_obs),
        "p0_exp": float(p_exp),
    }
    _emit_either(
        payload,
        lambda: _display.significance_table(
            payload["Z_obs"],
            payload["Z_exp"],
            p_obs=payload["p0_obs"],
            p_exp=payload["p0_exp"],
        ),
        pretty,
        output_file,
    )


@cli.command()
@_ws_argument
@format_option
@_patch_option
@_measurement_option
@click.option("--num-warmup", default=500, show_default=True, type=int)
@click.option("--num-samples", default=1000, show_default=True, type=int)
@click.option("--num-chains", default=1, show_default=True, type=int)
@click.option("--seed", default=0, show_default=True, type=int)
@_output_option
@_pretty_option
def sample(
    workspace: str,
    patches: tuple[str, ...],
    measurement: str | None,
    num_warmup: int,
    num_samples: int,
    num_chains: int,
    seed: int,
    output_file: str | None,
    pretty: bool,
) -> None:
    """NUTS posterior of a workspace: mean, sd, HDI, ESS (r_hat with 2+ chains).

    Auxiliary measurements enter as observed data (flat priors on the
    nuisances). Values that do not exist (r_hat of one chain) are ``null``.
    """
    from hepprob import _display, bayes

    _, model, data = _workspace_model(workspace, patches, measurement)
    idata = bayes.mcmc(
        model.numpyro_model(),
        data,
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=num_chains,
        seed=seed,
        progress_bar=False,
    )
    table = bayes.summary(idata, round_to="none")
    rows = {str(name): dict(row) for name, row in table.iterrows()}
    payload: dict[str, Any] = rows
    if "r_hat" not in table.columns:
        payload = {n: {**r, "r_hat": None} for n, r in rows.items()}
    note = table.attrs.get("note")
    _emit_either(
        payload,
        lambda: _display.posterior_table(
            rows.items(),
            title=f"posterior ({num_chains} chain(s) x {num_samples} draws)",
            notes=(f"note: {note}",) if note else (),
        ),
        pretty,
        output_file,
    )


@cli.command()
@click.argument("entrypoint_xml", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--basedir",
    default=None,
    help="Folder the XML's file paths are relative to (default: the current one).",
)
@_output_option
def xml2json(entrypoint_xml: str, basedir: str | None, output_file: str | None) -> None:
    """Convert a HistFactory XML + ROOT configuration to a JSON workspace."""
    from hepprob.histfactory import xml

    spec = xml.parse(entrypoint_xml, basedir or ".")
    _emit(spec, output_file)


# -- workspace editing (as pyhf's prune, rename, combine, digest, sort) ---------


def _workspace(path: str) -> Any:
    from hepprob.histfactory.workspace import Workspace

    return Workspace(_read_json(path))


@cli.command()
@_ws_argument
@_output_option
@click.option("-c", "--channel", "channels", multiple=True, help="Channel to remove.")
@click.option("-s", "--sample", "samples", multiple=True, help="Sample to remove.")
@click.option(
    "-m", "--modifier", "modifiers", multiple=True, help="Modifier to remove."
)
@click.option(
    "-t",
    "--modifier-type",
    "modifier_types",
    multiple=True,
    type=click.Choice(
        [
            "histosys",
            "lumi",
            "normfactor",
            "normsys",
            "shapefactor",
            "shapesys",
            "staterror",
        ]
    ),
    help="Remove every modifier of this type.",
)
@click.option(
    "--measurement", "measurements", multiple=True, help="Measurement to remove."
)
def prune(
    workspace: str,
    output_file: str | None,
    channels: tuple[str, ...],
    samples: tuple[str, ...],
    modifiers: tuple[str, ...],
    modifier_types: tuple[str, ...],
    measurements: tuple[str, ...],
) -> None:
    """Remove channels, samples, modifiers or measurements (as ``pyhf prune``)."""
    pruned = _workspace(workspace).prune(
        modifiers=modifiers,
        modifier_types=modifier_types,
        samples=samples,
        channels=channels,
        measurements=measurements,
    )
    _emit(pruned.to_dict(), output_file)


def _pairs(values: tuple[tuple[str, str], ...]) -> dict[str, str]:
    return dict(values)


@cli.command()
@_ws_argument
@_output_option
@click.option(
    "-c",
    "--channel",
    "channels",
    multiple=True,
    type=(str, str),
    metavar="OLD NEW",
    help="Rename a channel.",
)
@click.option(
    "-s",
    "--sample",
    "samples",
    multiple=True,
    type=(str, str),
    metavar="OLD NEW",
    help="Rename a sample.",
)
@click.option(
    "-m",
    "--modifier",
    "modifiers",
    multiple=True,
    type=(str, str),
    metavar="OLD NEW",
    help="Rename a modifier (and its parameter).",
)
@click.option(
    "--measurement",
    "measurements",
    multiple=True,
    type=(str, str),
    metavar="OLD NEW",
    help="Rename a measurement.",
)
def rename(
    workspace: str,
    output_file: str | None,
    channels: tuple[tuple[str, str], ...],
    samples: tuple[tuple[str, str], ...],
    modifiers: tuple[tuple[str, str], ...],
    measurements: tuple[tuple[str, str], ...],
) -> None:
    """Rename channels, samples, modifiers or measurements (as ``pyhf rename``)."""
    renamed = _workspace(workspace).rename(
        modifiers=_pairs(modifiers),
        samples=_pairs(samples),
        channels=_pairs(channels),
        measurements=_pairs(measurements),
    )
    _emit(renamed.to_dict(), output_file)


@cli.command()
@click.argument("left", type=click.Path(dir_okay=False, allow_dash=True))
@click.argument("right", type=click.Path(dir_okay=False, allow_dash=True))
@click.option(
    "-j",
    "--join",
    default="none",
    show_default=True,
    type=click.Choice(["none", "outer", "left outer", "right outer"]),
    help="What to do with channels, observations and measurements in both.",
)
@_output_option
def combine(left: str, right: str, join: str, output_file: str | None) -> None:
    """Combine two workspaces into one (as ``pyhf combine``)."""
    from hepprob.histfactory.workspace import Workspace

    combined = Workspace.combine(_workspace(left), _workspace(right), join=join)
    _emit(combined.to_dict(), output_file)


@cli.command()
@_ws_argument
@click.option(
    "-a",
    "--algorithm",
    "algorithms",
    multiple=True,
    default=("sha256",),
    show_default=True,
    help="Hash algorithm (repeatable).",
)
@click.option(
    "-j/-p", "--json/--plaintext", "as_json", default=False, help="JSON or plain text."
)
def digest(workspace: str, algorithms: tuple[str, ...], as_json: bool) -> None:
    """Hash of the workspace, as recorded in patchsets (as ``pyhf digest``)."""
    from hepprob.histfactory.patchset import digest as hash_of

    spec = _workspace(workspace).to_dict()
    hashes = {a: hash_of(spec, algorithm=a) for a in algorithms}
    if as_json:
        _emit(hashes)
    else:
        click.echo("\n".join(f"{a}:{h}" for a, h in hashes.items()))


@cli.command("sort")
@_ws_argument
@_output_option
def sort_workspace(workspace: str, output_file: str | None) -> None:
    """Sort channels, samples, modifiers, measurements by name (as ``pyhf sort``)."""
    from hepprob import _inspect

    _emit(_inspect.sorted_spec(_workspace(workspace).to_dict()), output_file)


# -- patchsets ------------------------------------------------------------------


@cli.group()
def patchset() -> None:
    """Inspect and apply pyhf patchsets."""


@patchset.command("inspect")
@click.argument("patchset_file", type=click.Path(dir_okay=False, allow_dash=True))
def patchset_inspect(patchset_file: str) -> None:
    """List the patches of a patchset with their labels and values."""
    from hepprob.histfactory.patchset import PatchSet

    _emit(PatchSet(_read_json(patchset_file)).inspect())


@patchset.command("apply")
@click.argument("background_only", type=click.Path(dir_okay=False, allow_dash=True))
@click.argument("patchset_file", type=click.Path(dir_okay=False))
@click.option("--name", required=True, help="Name of the patch to apply.")
@_output_option
def patchset_apply(
    background_only: str, patchset_file: str, name: str, output_file: str | None
) -> None:
    """Apply one patch of a patchset to a background-only workspace."""
    from hepprob.histfactory.patchset import PatchSet

    ws = _workspace(background_only)
    patched = PatchSet(_read_json(patchset_file)).apply(ws, name)
    _emit(
        patched.to_dict() if hasattr(patched, "to_dict") else dict(patched), output_file
    )


cli.add_command(convert)
cli.add_command(json2xml)


def main() -> None:
    """Console entry point of ``hepprob`` (and of ``python -m hepprob``)."""
    cli.main(prog_name="hepprob")
