r"""A parsed Combine datacard as a HistFactory workspace plus the model options Combine needs.

How each construct maps (formulas from Combine's documentation and
``python/ModelTools.py``, ``python/ShapeTools.py``, ``src/CMSHistFunc.cc``,
``src/CMSHistErrorPropagator.cc`` of cms-analysis/HiggsAnalysis-CombinedLimit at
da0a2f49, formulas only):

* signal processes get ``normfactor r`` (the POI, range [0, 20]);
* ``lnN`` kappa or kappa_lo/kappa_hi -> ``normsys`` with Combine's smooth
  asymmetric log-normal (``lnN_smooth``, range [-7, 7]);
* ``shape`` -> the normalisation as ``normsys`` with
  :math:`\kappa_\pm^{s}` (:math:`\kappa_\pm` = integral ratios; none when both
  are within 1e-3 of 1) and the shape as ``histosys`` on the templates
  normalised to the nominal yield, with Combine's vertical morphing
  (``poly6``): the column value :math:`s` scales the nuisance, which is the
  template deviations times :math:`s` with smoothing region :math:`r/s`,
  :math:`r=\min(1, s_{\min})` per process (range [-4, 4]);
* ``shapeN`` -> the same normalisation; the shape morphed in log space and
  renormalised, as a JAX yield function;
* ``gmN N`` with alpha -> a parameter :math:`n` (start N+1) multiplying
  alpha, constrained by Pois(N | n): a one-bin control channel
  ``gmN_<name>`` that observes N;
* ``lnU`` -> an extra parameter in [-1, 1] and the yield factor
  ``lnN_smooth(theta, kappa_lo, kappa_hi)``;
* ``rateParam`` -> ``normfactor`` (a formula: a yield function of its
  arguments), ``param`` on a rateParam -> a ``lumi``-type Gaussian constraint;
  ``param`` on a nuisance may shift its mean (auxdata) but not its width;
  ``extArg`` -> an extra parameter;
* ``autoMCStats`` -> per bin: Barlow-Beeston-lite ``staterror`` named
  ``prop_bin<channel>`` when the effective number of background events
  exceeds the threshold; below it, per process a Poisson ``shapesys``
  (:math:`\tau = n_\mathrm{eff}`, rounded) or an additive Gaussian
  ``histosys`` ``prop_bin<channel>_bin<j>_<process>``.
"""

from __future__ import annotations

import math
import pathlib
from collections.abc import Callable, Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np
from scipy import stats

from hepprob._optional import require
from hepprob.errors import SpecError
from hepprob.histfactory import interpolation
from hepprob.histfactory.modifiers.custom import YieldFunction
from hepprob.histfactory.workspace import Workspace
from hepprob.io._combine_stats import add_auto_mc_stats
from hepprob.io._formula import compile_formula
from hepprob.io.configured import ConfiguredWorkspace
from hepprob.io.datacard import Datacard, line_error

__all__ = ["build_workspace"]

POI = "r"
POI_BOUNDS = (0.0, 20.0)


def build_workspace(
    card: Datacard, base: pathlib.Path, *, mass: Any = None
) -> ConfiguredWorkspace:
    """The workspace and model options of a parsed datacard (see module docstring)."""
    return _Builder(card, base, mass).build()


class _Builder:
    def __init__(self, card: Datacard, base: pathlib.Path, mass: Any) -> None:
        self.card, self.base, self.mass = card, base, mass
        self.files: dict[str, Any] = {}
        self.nominal: dict[tuple[str, str], np.ndarray] = {}
        self.errors: dict[tuple[str, str], np.ndarray | None] = {}
        self.raw_norm: dict[tuple[str, str], float] = {}
        self.mods: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.settings: dict[str, dict[str, Any]] = {}
        self.kinds: dict[str, str] = {}
        self.extra: dict[str, dict[str, Any]] = {}
        self.yield_functions: list[YieldFunction] = []
        self.regions: dict[float, int] = {}
        self.control: list[tuple[dict, dict]] = []
        self.observed: dict[str, list[float]] = {}

    def fail(self, line: int, msg: str) -> None:
        raise line_error(self.card.path, line, msg)

    # ------------------------------------------------------------ build
    def build(self) -> ConfiguredWorkspace:
        card = self.card
        self._templates()
        for b, p, sig in card.columns:
            self.mods[(b, p)] = (
                [{"name": POI, "type": "normfactor", "data": None}] if sig else []
            )
        self._declare(POI, "poi", 0)
        self.settings[POI] = {"name": POI, "inits": [1.0], "bounds": [list(POI_BOUNDS)]}
        for syst in card.systematics:
            getattr(self, "_" + syst.kind.rstrip("?").replace("shapeN", "shape"))(syst)
        self._rate_params()
        self._params()
        for name, (init, rng, no) in card.ext_args.items():
            self._declare(name, "extArg", no)
            lo, hi = rng if rng is not None else (-math.inf, math.inf)
            self.extra[name] = {"name": name, "inits": [init], "bounds": [[lo, hi]]}
        for name, no in card.flat_params.items():
            if name not in self.kinds:
                self.fail(no, f"flatParam {name!r} names no parameter of the card")
        add_auto_mc_stats(self)
        self._check_groups()
        return self._assemble()

    def _assemble(self) -> ConfiguredWorkspace:
        card = self.card
        channels, observations = [], []
        for b in card.bins:
            samples = [
                {"name": p, "data": self.nominal[(b, p)].tolist(), "modifiers": self.mods[(b, p)]}
                for bb, p, _ in card.columns if bb == b
            ]  # fmt: skip
            channels.append({"name": b, "samples": samples})
            observations.append({"name": b, "data": self.observed[b]})
        for channel, obs in self.control:
            channels.append(channel)
            observations.append(obs)
        spec = {
            "channels": channels,
            "observations": observations,
            "measurements": [
                {
                    "name": "datacard",
                    "config": {"poi": POI, "parameters": list(self.settings.values())},
                }
            ],
            "version": "1.0.0",
        }
        try:
            ws = Workspace(spec)
        except SpecError as err:
            msg = f"the card gives an invalid HistFactory model: {err}"
            raise SpecError(msg, card.path) from None
        region = 1.0
        if len(self.regions) > 1:
            (r1, l1), (r2, l2) = sorted(self.regions.items())[:2]
            self.fail(
                max(l1, l2),
                f"shape scale factors give different smoothing regions ({r1:g} and {r2:g}, lines "
                f"{l1} and {l2}); hepprob uses one smoothing region per model",
            )
        elif self.regions:
            region = next(iter(self.regions))
        options: dict[str, Any] = {
            "modifier_settings": {
                "normsys": {"interpcode": "lnN_smooth"},
                "histosys": {"interpcode": "poly6", "smooth_region": region},
            }
        }
        if self.regions:
            options["clip_sample_data"] = 0.0  # Combine crops morphed templates at zero
        if self.extra:
            options["extra_parameters"] = list(self.extra.values())
        if self.yield_functions:
            options["yield_functions"] = list(self.yield_functions)
        return ConfiguredWorkspace(ws, options, groups=card.groups, source=card.path)

    # ------------------------------------------------------------ names
    def _declare(self, name: str, kind: str, line: int) -> None:
        known = self.kinds.get(name)
        compatible = {frozenset({"lnN", "shape"})}
        if (
            known is not None
            and known != kind
            and frozenset({known, kind}) not in compatible
        ):
            self.fail(
                line,
                f"{name!r} is already a {known} parameter; it cannot also be a {kind}",
            )
        self.kinds.setdefault(name, kind)

    def _range(self, name: str, lo: float, hi: float) -> None:
        cfg = self.settings.setdefault(name, {"name": name})
        old = cfg.get("bounds", [[lo, hi]])[0]
        cfg["bounds"] = [[min(old[0], lo), max(old[1], hi)]]

    # ------------------------------------------------------------ templates
    def _templates(self) -> None:
        card = self.card
        for b, p, _ in card.columns:
            rate = card.rates[(b, p)]
            entry = self._shape_entry(b, p)
            if entry is None:
                if rate < 0:
                    self.fail(
                        card.imax_line or 1,
                        f"rate -1 of ({b}, {p}) needs a shapes line",
                    )
                self.nominal[(b, p)] = np.array([rate])
                self.errors[(b, p)] = None
                self.raw_norm[(b, p)] = rate
                continue
            tokens, line = entry
            counts, var = self._hist(tokens, 1, b, p, None, line)
            total = float(counts.sum())
            if rate == -1:
                rate = total
            scale = rate / total if total != 0 else 0.0
            if total == 0 and rate != 0:
                self.fail(
                    line, f"the template of ({b}, {p}) is empty but its rate is {rate}"
                )
            self.nominal[(b, p)] = counts * scale
            self.errors[(b, p)] = np.sqrt(np.maximum(var, 0.0)) * abs(scale)
            self.raw_norm[(b, p)] = total
        for b in card.bins:
            entry = self._shape_entry(b, "data_obs")
            nb = {len(self.nominal[(bb, p)]) for bb, p, _ in card.columns if bb == b}
            if len(nb) != 1:
                self.fail(
                    1,
                    f"the templates of channel {b!r} have different numbers of bins: {sorted(nb)}",
                )
            if entry is None:
                if b not in card.observations:
                    self.fail(1, f"no observation for channel {b!r}")
                if nb != {1}:
                    self.fail(1, f"channel {b!r} has shapes but no data_obs histogram")
                self.observed[b] = [card.observations[b]]
                continue
            tokens, line = entry
            counts, _ = self._hist(tokens, 1, b, "data_obs", None, line)
            if len(counts) not in nb:
                self.fail(
                    line,
                    f"data_obs of {b!r} has {len(counts)} bins, the templates {nb.pop()}",
                )
            if np.any(counts < 0):
                self.fail(line, f"data_obs of {b!r} has negative bins")
            obs = card.observations.get(b)
            total = float(counts.sum())
            if (
                obs is not None
                and obs != -1
                and abs(obs - total) > 0.01 * max(1.0, total)
            ):
                self.fail(
                    line,
                    f"the observation of {b!r} ({obs:g}) differs from the data_obs integral ({total:g})",
                )
            self.observed[b] = counts.tolist()

    def _shape_entry(self, b: str, p: str) -> tuple[list[str], int] | None:
        table = {
            (proc, chan): (tokens, line)
            for proc, chan, tokens, line in self.card.shapes
        }
        for key in ((p, b), ("*", b), (p, "*"), ("*", "*")):
            if key in table:
                tokens, line = table[key]
                if tokens[0] == "FAKE":
                    return None
                return tokens, line
        if self.card.shapes and p != "data_obs":
            self.fail(
                self.card.shapes[0][3],
                f"no shapes line covers process {p!r} in channel {b!r}",
            )
        return None

    def _hist(
        self,
        tokens: list[str],
        index: int,
        b: str,
        p: str,
        syst: str | None,
        line: int,
        *,
        missing_ok: bool = False,
    ) -> Any:
        if index >= len(tokens):
            self.fail(
                line,
                f"this shapes line has no histogram pattern for systematics (needed by {syst!r})",
            )
        fname = self._substitute(tokens[0], b, p, syst, line)
        hname = self._substitute(tokens[index], b, p, syst, line)
        if ":" in hname:
            self.fail(
                line,
                f"{hname!r}: RooFit workspace objects are not supported, only TH1 histograms",
            )
        path = self.base / fname
        if str(path) not in self.files:
            uproot = require("uproot", "datacard shapes")
            try:
                self.files[str(path)] = uproot.open(path)
            except (OSError, ValueError) as err:
                self.fail(line, f"cannot open ROOT file {str(path)!r}: {err}")
        file = self.files[str(path)]
        try:
            hist = file[hname]
        except (KeyError, OSError, ValueError):
            if missing_ok:
                return None
            self.fail(line, f"no histogram {hname!r} in {str(path)!r} for ({b}, {p})")
        if not hasattr(hist, "values") or np.ndim(hist.values()) != 1:
            self.fail(line, f"{hname!r} in {str(path)!r} is not a 1-D histogram")
        counts = np.asarray(hist.values(), dtype=np.float64)
        var = hist.variances() if hasattr(hist, "variances") else None
        var = counts.copy() if var is None else np.asarray(var, dtype=np.float64)
        return counts, var

    def _substitute(
        self, text: str, b: str, p: str, syst: str | None, line: int
    ) -> str:
        out = text.replace("$PROCESS", p).replace("$CHANNEL", b)
        if "$SYSTEMATIC" in out:
            if syst is None:
                self.fail(
                    line, f"{text!r} uses $SYSTEMATIC in the nominal histogram name"
                )
            out = out.replace("$SYSTEMATIC", syst)
        if "$MASS" in out:
            if self.mass is None:
                self.fail(line, f"{text!r} uses $MASS: pass mass=... to read_datacard")
            out = out.replace(
                "$MASS",
                f"{self.mass:g}" if isinstance(self.mass, float) else str(self.mass),
            )
        return out

    # ------------------------------------------------------------ systematics
    def _lnN(self, syst: Any) -> None:
        self._declare(syst.name, "lnN", syst.line)
        for key, v in syst.effects.items():
            lo, hi = v if isinstance(v, tuple) else (1.0 / v, v)
            self.mods[key].append(
                {"name": syst.name, "type": "normsys", "data": {"hi": hi, "lo": lo}}
            )
        self._range(syst.name, -7.0, 7.0)

    def _lnU(self, syst: Any) -> None:
        self._declare(syst.name, "lnU", syst.line)
        self.extra[syst.name] = {
            "name": syst.name,
            "inits": [0.0],
            "bounds": [[-1.0, 1.0]],
        }
        for (b, p), v in syst.effects.items():
            lo, hi = v if isinstance(v, tuple) else (1.0 / v, v)
            self.yield_functions.append(
                YieldFunction(b, p, _lnu_factor(syst.name, lo, hi))
            )

    def _gmN(self, syst: Any) -> None:
        name, n = syst.name, syst.n_control
        self._declare(name, "gmN", syst.line)
        for (b, p), alpha in syst.effects.items():
            rate = self.card.rates[(b, p)]
            if n > 0 and abs(alpha * n - rate) > max(0.05 * max(rate, 1.0), alpha):
                self.fail(
                    syst.line,
                    f"gmN {n} with alpha {alpha:g} gives {alpha * n:g} events, but the rate of ({b}, {p}) is {rate:g}",
                )
            nom = self.nominal[(b, p)]
            shape = (
                nom / nom.sum() if nom.sum() > 0 else np.full(nom.shape, 1.0 / nom.size)
            )
            self.nominal[(b, p)] = alpha * shape  # yield = alpha * n, n ~ Pois(N | n)
            self.mods[(b, p)].append({"name": name, "type": "normfactor", "data": None})
        lo, hi = _gmn_range(n)
        self.settings[name] = {"name": name, "inits": [n + 1.0], "bounds": [[lo, hi]]}
        cname = f"gmN_{name}"
        sample = {
            "name": cname,
            "data": [1.0],
            "modifiers": [{"name": name, "type": "normfactor", "data": None}],
        }
        self.control.append(
            ({"name": cname, "samples": [sample]}, {"name": cname, "data": [float(n)]})
        )

    def _shape(self, syst: Any) -> None:
        log_space = syst.kind.startswith("shapeN")
        kind = "shape"
        morphs = []
        for (b, p), s in syst.effects.items():
            tokens, line = self._shape_entry(b, p) or ([], syst.line)
            found = None
            if tokens:
                up = self._hist(
                    tokens, 2, b, p, syst.name + "Up", line, missing_ok=True
                )
                down = self._hist(
                    tokens, 2, b, p, syst.name + "Down", line, missing_ok=True
                )
                if up is not None and down is not None:
                    found = (up[0], down[0])
                elif not syst.kind.endswith("?"):
                    which = "Up" if up is None else "Down"
                    self.fail(
                        syst.line,
                        f"no {syst.name}{which} template for ({b}, {p}) (from the shapes line {line})",
                    )
            if found is None:
                if not syst.kind.endswith("?"):
                    self.fail(
                        syst.line,
                        f"shape {syst.name!r} on ({b}, {p}) needs a shapes line with templates",
                    )
                self._lnN(
                    type(syst)(syst.name, "lnN", syst.line, {(b, p): s})
                )  # shape? without templates
                continue
            morphs.append(((b, p), s, found))
        if not morphs:
            return
        self._declare(syst.name, kind, syst.line)
        self._range(syst.name, -7.0 if log_space else -4.0, 7.0 if log_space else 4.0)
        for (b, p), s, (up, down) in morphs:
            self._morph(syst, b, p, s, up, down, log_space)

    def _morph(
        self,
        syst: Any,
        b: str,
        p: str,
        s: float,
        up: np.ndarray,
        down: np.ndarray,
        log_space: bool,
    ) -> None:
        key, name = (b, p), syst.name
        nom = self.nominal[key]
        raw = self.raw_norm[key]
        if len(up) != len(nom) or len(down) != len(nom):
            self.fail(
                syst.line,
                f"{name} templates of ({b}, {p}) have {len(up)}/{len(down)} bins, the nominal {len(nom)}",
            )
        k_up, k_down = up.sum() / raw, down.sum() / raw
        if not (k_up > 0 and k_down > 0):
            self.fail(
                syst.line,
                f"{name} templates of ({b}, {p}) have a non-positive integral",
            )
        has_norm = not (abs(k_up - 1) < 1e-3 and abs(k_down - 1) < 1e-3)
        if has_norm or log_space:
            lo, hi = (k_down**s, k_up**s) if has_norm else (1.0, 1.0)
            self.mods[key].append(
                {"name": name, "type": "normsys", "data": {"hi": hi, "lo": lo}}
            )
        total = nom.sum()
        h, l = up * total / up.sum(), down * total / down.sum()
        scales = [
            v
            for sy in self.card.systematics
            if sy.kind.startswith("shape")
            for k, v in sy.effects.items()
            if k == key
        ]
        region = min(1.0, *scales)
        if log_space:
            if np.any(nom <= 0) or np.any(h <= 0) or np.any(l <= 0):
                self.fail(
                    syst.line,
                    f"shapeN {name} on ({b}, {p}) needs positive templates in every bin",
                )
            self.yield_functions.append(
                YieldFunction(
                    b,
                    p,
                    _log_morph(name, s, region, np.log(h / nom), np.log(l / nom), nom),
                )
            )
            return
        self.regions.setdefault(region / s, syst.line)
        hi_data, lo_data = nom + s * (h - nom), nom + s * (l - nom)
        self.mods[key].append(
            {
                "name": name,
                "type": "histosys",
                "data": {"hi_data": hi_data.tolist(), "lo_data": lo_data.tolist()},
            }
        )

    # ------------------------------------------------------------ rateParam / param
    def _rate_params(self) -> None:
        formulas = []
        for rp in self.card.rate_params:
            if rp.formula is not None:
                formulas.append(rp)
                continue
            self._declare(rp.name, "rateParam", rp.line)
            cfg = self.settings.setdefault(
                rp.name, {"name": rp.name, "inits": [rp.init]}
            )
            if cfg["inits"][0] != rp.init:
                self.fail(
                    rp.line,
                    f"rateParam {rp.name!r} has start value {rp.init:g} here and {cfg['inits'][0]:g} before",
                )
            lo, hi = rp.bounds if rp.bounds is not None else (-math.inf, math.inf)
            if rp.bounds is not None or "bounds" not in cfg:
                cfg["bounds"] = [[lo, hi]]
            if not lo <= rp.init <= hi:
                self.fail(
                    rp.line,
                    f"rateParam {rp.name!r}: start value {rp.init:g} outside [{lo:g}, {hi:g}]",
                )
            self.mods[(rp.bin, rp.process)].append(
                {"name": rp.name, "type": "normfactor", "data": None}
            )
        for rp in formulas:
            for a in rp.args:
                if a not in self.kinds and a not in self.card.ext_args:
                    self.fail(
                        rp.line,
                        f"formula rateParam {rp.name!r}: argument {a!r} is not a parameter of the card",
                    )
            try:
                fn = compile_formula(rp.formula or "", rp.args)
            except ValueError as err:
                self.fail(rp.line, str(err))
            self._declare(rp.name, "formula", rp.line)
            self.yield_functions.append(YieldFunction(rp.bin, rp.process, fn))

    def _params(self) -> None:
        for name, (mean, lo, hi, rng, no) in self.card.params.items():
            kind = self.kinds.get(name)
            if kind in ("lnN", "shape"):
                if lo != 1.0 or hi != 1.0:
                    self.fail(
                        no,
                        f"param {name!r}: a width other than 1 for an lnN/shape nuisance is not supported",
                    )
                if mean != 0.0:
                    self.settings.setdefault(name, {"name": name})["auxdata"] = [mean]
                if rng is not None:
                    self.settings[name]["bounds"] = [list(rng)]
                continue
            if kind == "rateParam":
                if lo != hi:
                    self.fail(
                        no,
                        f"param {name!r}: asymmetric widths on a rateParam are not supported",
                    )
                cfg = self.settings[name]
                cfg.update(auxdata=[mean], sigmas=[lo])
                if rng is not None:
                    cfg["bounds"] = [list(rng)]
                elif not all(map(math.isfinite, cfg["bounds"][0])):
                    cfg["bounds"] = [[mean - 4 * lo, mean + 4 * lo]]
                for mods in self.mods.values():
                    for m in mods:
                        if m["name"] == name:
                            m["type"] = (
                                "lumi"  # a Gaussian-constrained normalisation factor
                            )
                continue
            where = (
                "no lnN/shape nuisance or rateParam of the card"
                if kind is None
                else f"a {kind} parameter"
            )
            self.fail(
                no,
                f"param {name!r} names {where}; hepprob supports param on lnN/shape nuisances and rateParams",
            )

    def _check_groups(self) -> None:
        for group, members in self.card.groups.items():
            unknown = [m for m in members if m not in self.kinds]
            if unknown:
                self.fail(1, f"group {group!r} names unknown parameters {unknown}")


def _lnu_factor(name: str, lo: float, hi: float) -> Callable[[Mapping[str, Any]], Any]:
    def factor(p: Mapping[str, Any]) -> Any:
        return interpolation.lnn_smooth(p[name], lo, hi)

    return factor


def _log_morph(
    name: str,
    s: float,
    region: float,
    log_hi: np.ndarray,
    log_lo: np.ndarray,
    nom: np.ndarray,
) -> Callable[[Mapping[str, Any]], Any]:
    """``shapeN``: poly6 morphing of log(template/nominal), renormalised to the nominal sum."""
    lh, ll, n = jnp.asarray(log_hi), jnp.asarray(log_lo), jnp.asarray(nom)

    def factor(p: Mapping[str, Any]) -> Any:
        x = s * p[name]
        delta = (
            0.5 * x * ((lh - ll) + (lh + ll) * interpolation.smooth_step(x / region))
        )
        ratio = jnp.exp(delta)
        return ratio * jnp.sum(n) / jnp.sum(n * ratio)

    return factor


def _gmn_range(n: int) -> tuple[float, float]:
    """Combine's range of a gmN parameter: where Pois(N | n) > 1e-12 (ModelTools.py)."""
    lo = n + 1.0 if n > 0 else 0.0
    while lo > 0 and stats.poisson.pmf(n, lo) > 1e-12:
        lo *= 0.8
    hi = n + 1.0
    while stats.poisson.pmf(n, hi) > 1e-12:
        hi *= 1.2
    return lo, hi
