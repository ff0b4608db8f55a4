r"""Asymptotic CLs for every patch of a patchset: one compiled program, optional Dask.

:func:`scan_patchset` applies each signal patch to the background-only
workspace, lays all patched models on one padded structure
(:func:`hepprob.histfactory.padding.pad_models`: the models' arrays become
data of the fit, masks replace shapes) and runs the four fits of an
asymptotic test of each patch with the one batched fit driver
(:func:`hepprob.infer._batch.fit_batch`). The program is compiled once for
the whole grid (and found in the persistent compilation cache by the next
process): 125 patches cost one compile plus 125 evaluations.

The test is pyhf 0.7's asymptotic ``hypotest`` (Cowan et al.,
arXiv:1007.1727): a free fit and a fit at :math:`\mu = 0` of the observed
data, whose expected data are the Asimov dataset; fits at the tested
:math:`\mu` of the data and of the Asimov data; :math:`\tilde q_\mu` (or
:math:`q_\mu`) from them, CLs observed and the expected band.

With ``client=`` (any ``dask.distributed`` client, or ``"local"`` for a
``LocalCluster``) the patches go out in chunks, each task one vectorised
program over its chunk; results come back in patch order, a failed task is
retried and, if it keeps failing, its patches are reported in
:attr:`PatchScan.failed` with the error and a warning, never dropped.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from hepprob.errors import HepprobWarning, ParameterError
from hepprob.infer import asymptotics
from hepprob.infer.test_statistics import stat_from_fits

__all__ = ["PatchScan", "scan_patchset"]


def __dir__() -> list[str]:
    return __all__


@dataclasses.dataclass
class PatchScan:
    """The CLs of each patch, as one table.

    Attributes:
        names: patch names, in patchset order.
        values: the patches' label values (e.g. masses).
        labels: the patchset's label names.
        cls_obs: observed CLs per patch.
        cls_exp: expected CLs per patch at -2..+2 sigma, ``(n, 5)`` (pyhf order).
        converged: whether all four fits of the patch converged.
        poi_value: the tested POI value.
        failed: ``{patch name: error}`` of patches whose task failed every
            retry (their numbers are NaN).
        retried: ``{patch name: number of retries}`` for retried tasks.
    """

    names: list[str]
    values: list[list[Any]]
    labels: list[str]
    cls_obs: np.ndarray
    cls_exp: np.ndarray
    converged: np.ndarray
    poi_value: float
    failed: dict[str, str] = dataclasses.field(default_factory=dict)
    retried: dict[str, int] = dataclasses.field(default_factory=dict)

    def rows(self) -> list[dict[str, Any]]:
        """One dict per patch: name, values, CLs_obs, CLs_exp, converged."""
        return [
            {
                "name": n,
                "values": list(v),
                "CLs_obs": float(o),
                "CLs_exp": [float(x) for x in e],
                "converged": bool(c),
                **({"error": self.failed[n]} if n in self.failed else {}),
            }
            for n, v, o, e, c in zip(
                self.names, self.values, self.cls_obs, self.cls_exp, self.converged,
                strict=True,
            )
        ]  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable: labels, POI value, the rows, failures and retries."""
        return {
            "labels": list(self.labels),
            "poi_value": float(self.poi_value),
            "patches": self.rows(),
            "failed": dict(self.failed),
            "retried": dict(self.retried),
        }

    def to_json(self, **kwargs: Any) -> str:
        """:meth:`to_dict` as JSON text (``kwargs`` to :func:`json.dumps`)."""
        kwargs.setdefault("indent", 2)
        return json.dumps(self.to_dict(), **kwargs)

    def to_pandas(self) -> Any:
        """A DataFrame indexed by patch name (needs pandas)."""
        from hepprob._optional import require

        pd = require("pandas", "PatchScan.to_pandas")
        exp = {f"CLs_exp_{k}": self.cls_exp[:, i] for i, k in enumerate(_BAND)}
        frame = pd.DataFrame(
            {"CLs_obs": self.cls_obs, **exp, "converged": self.converged},
            index=pd.Index(self.names, name="patch"),
        )
        for j, label in enumerate(self.labels):
            frame.insert(j, label, [v[j] for v in self.values])
        return frame

    def __repr__(self) -> str:
        head = f"PatchScan({len(self.names)} patches, poi_value={self.poi_value:g}"
        tail = f", {len(self.failed)} failed)" if self.failed else ")"
        return head + tail


_BAND = ("m2", "m1", "0", "p1", "p2")


def scan_patchset(
    workspace: Any,
    patchset: Any,
    client: Any = None,
    *,
    poi_value: float = 1.0,
    test_stat: str = "qtilde",
    patches: Sequence[str] | None = None,
    measurement_name: str | None = None,
    chunk_size: int | None = None,
    retries: int = 2,
    progress: bool | None = None,
) -> PatchScan:
    """Asymptotic CLs (observed and expected band) of every patch of a patchset.

    Args:
        workspace: the background-only :class:`~hepprob.histfactory.Workspace`
            (or its dict or file path).
        patchset: a :class:`~hepprob.histfactory.PatchSet` (or dict or path).
        client: ``None`` (run here), ``"local"`` (a ``dask.distributed``
            ``LocalCluster`` for the call) or any Dask ``Client``.
        poi_value: the tested POI value.
        test_stat: ``"qtilde"`` or ``"q"``.
        patches: names of the patches to scan (default: all, in file order).
        measurement_name: the workspace measurement (default: the first).
        chunk_size: patches per task (default: all on one machine; about
            four tasks per Dask worker otherwise).
        retries: times a failed Dask task is resubmitted.
        progress: progress bar (``None``: when stderr is a terminal).

    Raises:
        ParameterError: an unknown test statistic or patch name, or a
            ``poi_value`` outside the POI bounds.
        SpecError: a patch that does not apply or a digest mismatch.
    """
    from hepprob import _progress
    from hepprob.histfactory import PatchSet, Workspace
    from hepprob.histfactory.padding import pad_models

    if test_stat not in ("qtilde", "q"):
        msg = f"scan_patchset: test_stat must be 'qtilde' or 'q', got {test_stat!r}"
        raise ParameterError(msg)
    ws = workspace if isinstance(workspace, Workspace) else _load(Workspace, workspace)
    ps = patchset if isinstance(patchset, PatchSet) else _load(PatchSet, patchset)
    ps.verify(ws)
    chosen = _choose(ps, patches)
    models, main = [], []
    build = _Builder(ws, measurement_name)
    with _progress.progress(total=len(chosen), desc="models", show=progress) as bar:
        for patch in chosen:
            model = build(patch.patch)
            models.append(model)
            main.append(ws.data(model, include_auxdata=False))
            bar.update(1)
    padded = pad_models(models, main)
    if padded.poi_index is None:
        msg = "scan_patchset: the measurement has no POI"
        raise ParameterError(msg)
    _check_poi(padded, poi_value)
    payload = _Payload(padded.structure, padded.poi_index, float(poi_value), test_stat)
    n = len(chosen)
    if client is None:
        size = chunk_size or n
        chunks = [np.arange(i, min(i + size, n)) for i in range(0, n, size)]
        results, failed, retried = [], {}, {}
        with _progress.progress(total=n, desc="CLs", show=progress) as bar:
            for idx in chunks:
                results.append((idx, payload.run(_rows(padded, idx))))
                bar.update(len(idx))
    else:
        from hepprob.infer import _dask

        names = [p.name for p in chosen]
        results, failed, retried = _dask.run_chunks(
            client, payload, padded, names, chunk_size, retries, progress, _rows
        )
    return _assemble(ps, chosen, results, failed, retried, float(poi_value))


# ------------------------------------------------------------------ the work


@dataclasses.dataclass(frozen=True)
class _Payload:
    """What a task needs besides its rows; picklable (sent to Dask workers)."""

    structure: Any
    poi: int
    mu: float
    test_stat: str

    def run(self, rows: dict[str, Any]) -> dict[str, np.ndarray]:
        """CLs of a chunk of patches (rows of :func:`_rows`)."""
        return _cls_rows(self, rows)


def _rows(padded: Any, idx: np.ndarray) -> dict[str, Any]:
    return {
        "arrays": {k: v[idx] for k, v in padded.arrays.items()},
        "data": padded.data[idx],
        "init": padded.init[idx],
        "lower": padded.lower[idx],
        "upper": padded.upper[idx],
        "fixed": padded.fixed[idx],
    }


_OBJECTIVES: dict[Any, Any] = {}


def _programs(structure: Any) -> tuple[Any, Any, Any]:
    """The NLL of ``structure`` (data = (observed, arrays)), its expected data
    and -2 ln L, one set per structure so the compiled programs are shared."""
    found = _OBJECTIVES.get(structure)
    if found is None:
        from hepprob.histfactory.kernel import kernels

        k = kernels(structure)

        def nll(pars: Any, data: Any) -> Any:
            return -k.logpdf(pars, data[0], data[1])

        expected = jax.jit(jax.vmap(k.expected))
        twice_nll = jax.jit(jax.vmap(lambda p, d, a: -2.0 * k.logpdf(p, d, a)))
        found = _OBJECTIVES[structure] = (nll, expected, twice_nll)
    return found


def _cls_rows(job: _Payload, rows: dict[str, Any]) -> dict[str, np.ndarray]:
    from hepprob.infer._batch import fit_batch

    nll, expected, twice_nll = _programs(job.structure)
    poi, mu = job.poi, job.mu
    arrays, data = rows["arrays"], rows["data"]
    init, lower, upper, fixed = (rows[k] for k in ("init", "lower", "upper", "fixed"))
    n = data.shape[0]

    def at(mu_value: float, start: np.ndarray) -> tuple[np.ndarray, ...]:
        x0, lo, hi, fx = start.copy(), lower.copy(), upper.copy(), fixed.copy()
        x0[:, poi] = mu_value
        lo[:, poi] = np.minimum(lo[:, poi], mu_value)
        hi[:, poi] = np.maximum(hi[:, poi], mu_value)
        fx[:, poi] = True
        return x0, lo, hi, fx

    def fits(datas: np.ndarray, settings: Sequence[np.ndarray], arr: Any) -> Any:
        return fit_batch(nll, (datas, arr), *settings, data_per_row=True)

    both = jax.tree_util.tree_map(lambda a: np.concatenate([a, a]), arrays)
    cat = [
        np.concatenate(p)
        for p in zip((init, lower, upper, fixed), at(0.0, init), strict=True)
    ]
    stage = fits(np.concatenate([data, data]), cat, both)
    free, asimov_pars = stage.take(slice(0, n)), stage.take(slice(n, 2 * n))
    asimov = np.asarray(expected(asimov_pars.x, arrays))
    f_asimov = np.asarray(twice_nll(asimov_pars.x, asimov, arrays))
    on_data, on_asimov = at(mu, init), at(mu, asimov_pars.x)
    cat = [np.concatenate(p) for p in zip(on_data, on_asimov, strict=True)]
    tested = fits(np.concatenate([data, asimov]), cat, both)
    name = "qmu_tilde" if job.test_stat == "qtilde" else "qmu"
    q = stat_from_fits(name, tested.twice_nll[:n], free.twice_nll, free.x[:, poi], mu)
    q_a = stat_from_fits(name, tested.twice_nll[n:], f_asimov, 0.0, mu)
    sq, sq_a = np.sqrt(np.maximum(q, 0.0)), np.sqrt(np.maximum(q_a, 0.0))
    _, _, cls = asymptotics.asymptotic_pvalues(sq, sq_a, job.test_stat)
    _, _, band = asymptotics.expected_pvalues(sq_a)
    ok = free.converged & asimov_pars.converged
    ok = ok & tested.converged[:n] & tested.converged[n:]
    return {"cls_obs": np.asarray(cls), "cls_exp": np.asarray(band), "converged": ok}


# ------------------------------------------------------------------ helpers


class _Builder:
    """Patched models of one workspace, cheaply: a patch that only adds samples
    is applied without copying the workspace, and the background samples are
    checked once for all patches (``Model(checked=...)``)."""

    def __init__(self, ws: Any, measurement_name: str | None) -> None:
        self.ws, self.measurement = ws, measurement_name
        meas = ws.get_measurement(measurement_name)
        self.poi = meas["config"]["poi"]
        self.parameters = meas["config"]["parameters"]
        self.channels = ws.to_dict()["channels"]
        self.checked: dict[int, Any] = {}

    def __call__(self, ops: list[dict[str, Any]]) -> Any:
        from hepprob.histfactory import Model

        channels = self._added(ops)
        if channels is None:  # any other patch: the general path
            spec = self.ws.model_spec([ops], self.measurement)
        else:
            spec = {"channels": channels, "parameters": self.parameters}
        return Model(spec, poi_name=self.poi, validate=False, checked=self.checked)

    def _added(self, ops: list[dict[str, Any]]) -> list[Any] | None:
        chans = [dict(c, samples=list(c["samples"])) for c in self.channels]
        for op in ops:
            parts = str(op.get("path", "")).split("/")
            ok = (
                op.get("op") == "add"
                and len(parts) == 5
                and parts[:2] == ["", "channels"]
            )
            if not ok or parts[3] != "samples" or not parts[2].isdigit():
                return None
            ci = int(parts[2])
            if ci >= len(chans) or not isinstance(op.get("value"), dict):
                return None
            samples = chans[ci]["samples"]
            if parts[4] == "-":
                samples.append(op["value"])
            elif parts[4].isdigit() and int(parts[4]) <= len(samples):
                samples.insert(int(parts[4]), op["value"])
            else:
                return None
        return chans


def _load(cls: Any, source: Any) -> Any:
    if isinstance(source, dict):
        return cls(source)
    return cls.from_file(source)


def _choose(ps: Any, names: Sequence[str] | None) -> list[Any]:
    if names is None:
        return list(ps.patches)
    unknown = [n for n in names if n not in ps.patch_names]
    if unknown:
        msg = f"scan_patchset: no patches named {unknown[:5]} in the patchset"
        raise ParameterError(msg)
    return [ps[n] for n in names]


def _check_poi(padded: Any, mu: float) -> None:
    lo = float(np.max(padded.lower[:, padded.poi_index]))
    hi = float(np.min(padded.upper[:, padded.poi_index]))
    if not lo <= mu <= hi:
        msg = f"scan_patchset: poi_value {mu} is outside the POI bounds [{lo}, {hi}]"
        raise ParameterError(msg)


def _assemble(
    ps: Any,
    chosen: list[Any],
    results: list[tuple[np.ndarray, dict[str, np.ndarray] | None]],
    failed: dict[str, str],
    retried: dict[str, int],
    mu: float,
) -> PatchScan:
    n = len(chosen)
    cls_obs, cls_exp = np.full(n, np.nan), np.full((n, 5), np.nan)
    converged = np.zeros(n, dtype=bool)
    for idx, out in results:
        if out is None:
            continue
        cls_obs[idx], cls_exp[idx], converged[idx] = (
            out["cls_obs"], out["cls_exp"], out["converged"],
        )  # fmt: skip
    names = [p.name for p in chosen]
    if failed:
        msg = (
            f"scan_patchset: {len(failed)} patch(es) failed after retries "
            f"(NaN in the table): {sorted(failed)[:5]}"
        )
        warnings.warn(msg, HepprobWarning, stacklevel=3)
    if not np.all(converged[np.isfinite(cls_obs)]):
        bad = [nm for nm, ok in zip(names, converged, strict=True) if not ok]
        from hepprob.errors import ConvergenceWarning

        msg = f"scan_patchset: fits of {len(bad)} patch(es) did not converge: {bad[:5]}"
        warnings.warn(msg, ConvergenceWarning, stacklevel=3)
    return PatchScan(
        names=names,
        values=[list(p.values) for p in chosen],
        labels=list(ps.labels),
        cls_obs=cls_obs,
        cls_exp=cls_exp,
        converged=converged,
        poi_value=mu,
        failed=failed,
        retried=retried,
    )
