"""The ``hepprob`` command line: a thin shell over the library, JSON on stdout.

Mirrors pyhf's CLI where the two overlap (``inspect``, ``fit``, ``cls``,
``upperlimit``, ``xml2json``, ``patchset``). Each command parses its arguments,
calls one library function and prints JSON. This is the only place where a
:class:`~hepprob.errors.HepprobError` (or any other failure) becomes a one-line
message on stderr and exit status 1; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import functools
import json
import pathlib
import sys
from collections.abc import Callable
from typing import Any

import click
import numpy as np

from hepprob.io.jsonio import load_json, to_jsonable

__all__ = ["cli", "main"]


def _emit(payload: Any, output_file: str | None = None) -> None:
    text = json.dumps(to_jsonable(payload), indent=2)
    if output_file:
        pathlib.Path(output_file).write_text(text + "\n")
    else:
        click.echo(text)


def _one_line_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Run a command; any failure becomes ``hepprob: error: <reason>`` and exit 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        debug = bool(ctx.find_root().params.get("debug"))
        try:
            return func(*args, **kwargs)
        except click.exceptions.Exit:
            raise
        except Exception as err:
            if debug:
                raise
            reason = " ".join(str(err).split()) or type(err).__name__
            click.echo(f"hepprob: error: {reason}", err=True)
            sys.exit(1)

    return wrapper


def _workspace_model(
    workspace: str, patches: tuple[str, ...], measurement: str | None
) -> tuple[Any, Any, Any]:
    """Read a workspace file, apply JSON patches, and build model + data."""
    from hepprob.histfactory import Workspace

    ws = Workspace(load_json(workspace))
    patch_docs = [load_json(p) for p in patches]
    model = ws.model(patches=patch_docs or None, measurement_name=measurement)
    data = ws.data(model)
    return ws, model, data


_ws_argument = click.argument("workspace", type=click.Path(dir_okay=False))
_patch_option = click.option(
    "--patch", "patches", multiple=True, help="JSON Patch file to apply (repeatable)."
)
_measurement_option = click.option(
    "--measurement", default=None, help="Measurement name (default: the first)."
)
_output_option = click.option(
    "--output-file", default=None, help="Write the JSON here instead of stdout."
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hepprob")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
def cli(debug: bool) -> None:
    """hepprob: HEP likelihoods on NumPyro and JAX (fits, CLs, limits, MCMC)."""


@cli.command()
@click.option("--seed", default=0, show_default=True, help="Random seed.")
@_one_line_errors
def demo(seed: int) -> None:
    """Run the built-in example: fit, CLs and MCMC on a generated mass spectrum."""
    from hepprob import demo as demo_module

    _emit(demo_module.run(seed=seed))


@cli.command()
@_ws_argument
@_measurement_option
@_output_option
@_one_line_errors
def inspect(workspace: str, measurement: str | None, output_file: str | None) -> None:
    """Summarise a pyhf JSON workspace: channels, samples, parameters."""
    ws, model, _ = _workspace_model(workspace, (), measurement)
    cfg = model.config
    inits, bounds, fixed = (
        cfg.suggested_init(),
        cfg.suggested_bounds(),
        cfg.suggested_fixed(),
    )
    _emit(
        {
            "channels": {c: int(cfg.channel_nbins[c]) for c in cfg.channels},
            "samples": list(cfg.samples),
            "measurements": list(ws.measurement_names),
            "poi": cfg.poi_name,
            "parameters": [
                {"name": n, "init": i, "bounds": list(b), "fixed": bool(f)}
                for n, i, b, f in zip(cfg.par_names, inits, bounds, fixed, strict=True)
            ],
        },
        output_file,
    )


@cli.command()
@_ws_argument
@_patch_option
@_measurement_option
@_output_option
@_one_line_errors
def fit(
    workspace: str,
    patches: tuple[str, ...],
    measurement: str | None,
    output_file: str | None,
) -> None:
    """Maximum-likelihood fit of a workspace: values, errors, twice-NLL."""
    from hepprob.infer import mle

    _, model, data = _workspace_model(workspace, patches, measurement)
    pars, twice_nll = mle.fit(
        data, model, return_uncertainties=True, return_fitted_val=True
    )
    pars = np.asarray(pars)
    _emit(
        {
            "par_names": list(model.config.par_names),
            "bestfit": pars[:, 0],
            "uncertainty": pars[:, 1],
            "twice_nll": twice_nll,
        },
        output_file,
    )


@cli.command()
@_ws_argument
@_patch_option
@_measurement_option
@click.option("--poi-value", default=1.0, show_default=True, type=float)
@click.option(
    "--test-stat",
    default="qtilde",
    show_default=True,
    type=click.Choice(["q", "qtilde"]),
)
@click.option(
    "--calctype",
    default="asymptotic",
    show_default=True,
    type=click.Choice(["asymptotic", "toybased"]),
)
@click.option("--ntoys", default=2000, show_default=True, type=int)
@_output_option
@_one_line_errors
def cls(
    workspace: str,
    patches: tuple[str, ...],
    measurement: str | None,
    poi_value: float,
    test_stat: str,
    calctype: str,
    ntoys: int,
    output_file: str | None,
) -> None:
    """CLs at one POI value, observed and expected band (as ``pyhf cls``)."""
    from hepprob.infer import hypotest

    _, model, data = _workspace_model(workspace, patches, measurement)
    obs, expected = hypotest(
        poi_value,
        data,
        model,
        test_stat=test_stat,
        calctype=calctype,
        ntoys=ntoys,
        return_expected_set=True,
    )
    _emit({"CLs_obs": obs, "CLs_exp": list(expected)}, output_file)


@cli.command()
@_ws_argument
@_patch_option
@_measurement_option
@click.option("--level", default=0.05, show_default=True, type=float)
@_output_option
@_one_line_errors
def upperlimit(
    workspace: str,
    patches: tuple[str, ...],
    measurement: str | None,
    level: float,
    output_file: str | None,
) -> None:
    """Observed and expected (−2..+2σ) upper limit on the POI."""
    from hepprob.infer import upper_limit

    _, model, data = _workspace_model(workspace, patches, measurement)
    obs, expected = upper_limit(data, model, level=level)
    _emit({"obs_limit": obs, "exp_limits": list(expected)}, output_file)


@cli.command()
@_ws_argument
@_patch_option
@_measurement_option
@click.option("--num-warmup", default=500, show_default=True, type=int)
@click.option("--num-samples", default=1000, show_default=True, type=int)
@click.option("--num-chains", default=1, show_default=True, type=int)
@click.option("--seed", default=0, show_default=True, type=int)
@_output_option
@_one_line_errors
def sample(
    workspace: str,
    patches: tuple[str, ...],
    measurement: str | None,
    num_warmup: int,
    num_samples: int,
    num_chains: int,
    seed: int,
    output_file: str | None,
) -> None:
    """NUTS posterior of a workspace: per-parameter summary (mean, sd, HDI, r_hat)."""
    from hepprob import bayes

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
    table = bayes.summary(idata)
    _emit(
        {name: dict(row) for name, row in table.iterrows()},
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
@_one_line_errors
def xml2json(entrypoint_xml: str, basedir: str | None, output_file: str | None) -> None:
    """Convert a HistFactory XML + ROOT configuration to a JSON workspace."""
    from hepprob.histfactory import xml

    spec = xml.parse(entrypoint_xml, basedir or ".")
    _emit(spec, output_file)


@cli.group()
def patchset() -> None:
    """Inspect and apply pyhf patchsets."""


@patchset.command("inspect")
@click.argument("patchset_file", type=click.Path(dir_okay=False))
@_one_line_errors
def patchset_inspect(patchset_file: str) -> None:
    """List the patches of a patchset with their labels and values."""
    from hepprob.histfactory import PatchSet

    _emit(PatchSet(load_json(patchset_file)).inspect())


@patchset.command("apply")
@click.argument("background_only", type=click.Path(dir_okay=False))
@click.argument("patchset_file", type=click.Path(dir_okay=False))
@click.option("--name", required=True, help="Name of the patch to apply.")
@_output_option
@_one_line_errors
def patchset_apply(
    background_only: str, patchset_file: str, name: str, output_file: str | None
) -> None:
    """Apply one patch of a patchset to a background-only workspace."""
    from hepprob.histfactory import PatchSet, Workspace

    ws = Workspace(load_json(background_only))
    patched = PatchSet(load_json(patchset_file)).apply(ws, name)
    _emit(
        patched.to_dict() if hasattr(patched, "to_dict") else dict(patched), output_file
    )


def main() -> None:
    """Console entry point of ``hepprob``."""
    cli(prog_name="hepprob")
