"""Combine's ``autoMCStats``: per-bin Barlow-Beeston(-lite) parameters for a datacard model.

The rule of ``CMSHistErrorPropagator::setupBinPars`` (Combine, src/, formulas
only) and the documentation page "Automatic statistical uncertainties": per
bin, the effective number of unweighted background events
:math:`n_\\mathrm{eff} = \\lfloor 0.5 + n^2/e^2 \rfloor` decides between one
Barlow-Beeston-lite parameter for the bin (:math:`n_\\mathrm{eff}` above the
threshold) and one parameter per process: Poisson with
:math:`\tau = n_{p,\\mathrm{eff}}` when that is below the threshold and the
error does not exceed the content, else an additive Gaussian.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["add_auto_mc_stats"]

POI = "r"  # the signal strength of _combine


def add_auto_mc_stats(self: Any) -> None:
    """Add the autoMCStats parameters of every channel that asks for them (see ``_combine``)."""
    card = self.card
    coef = _init_coefficients(self)
    for b, (thr, include_signal, mode, no) in card.auto_mc_stats.items():
        if thr < 0:
            continue
        if mode != 1:
            self.fail(
                no,
                f"autoMCStats hist-mode {mode} is not supported (only the default, 1)",
            )
        procs = [(p, s) for bb, p, s in card.columns if bb == b]
        if any(self.errors[(b, p)] is None for p, _ in procs):
            self.fail(
                no,
                f"autoMCStats on channel {b!r} needs TH1 templates (a shapes line)",
            )
        nbins = len(self.nominal[(b, procs[0][0])])
        lite = np.zeros(nbins, dtype=bool)
        poisson: dict[str, np.ndarray] = {}
        for j in range(nbins):
            vals = {p: self.nominal[(b, p)][j] * coef[(b, p)] for p, _ in procs}
            errs = {p: self.errors[(b, p)][j] * abs(coef[(b, p)]) for p, _ in procs}
            used = [p for p, s in procs if include_signal or not s]
            sub_sum = sum(vals[p] for p in used)
            sub_err = math.sqrt(sum(errs[p] ** 2 for p in used))
            if sub_err <= 0:
                continue
            n_eff = math.floor(0.5 + sub_sum**2 / sub_err**2)
            if n_eff > thr:
                lite[j] = math.sqrt(sum(e**2 for e in errs.values())) > 0
                continue
            for p, _ in procs:
                v, e = vals[p], errs[p]
                if e <= 0 or v < 0:
                    continue
                if (
                    v > 0
                    and v >= 0.999 * e
                    and math.floor(0.5 + v * v / (e * e)) <= thr
                ):
                    n_p = math.floor(0.5 + v * v / (e * e))
                    sig = poisson.setdefault(p, np.zeros(nbins))
                    sig[j] = self.nominal[(b, p)][j] / math.sqrt(
                        n_p
                    )  # tau = n_p exactly
                else:  # Gaussian, additive: yield + nu * e, nu ~ N(0, 1)
                    shift = np.zeros(nbins)
                    shift[j] = self.errors[(b, p)][j]
                    nom = self.nominal[(b, p)]
                    pname = f"prop_bin{b}_bin{j}_{p}"
                    self._declare(pname, "autoMCStats", no)
                    self._range(pname, -7.0, 7.0)
                    self.mods[(b, p)].append({"name": pname, "type": "histosys", "data": {
                        "hi_data": (nom + shift).tolist(), "lo_data": (nom - shift).tolist()}})  # fmt: skip
        for p, sig in poisson.items():
            pname = f"prop_bin{b}_{p}"
            self._declare(pname, "autoMCStats", no)
            self.mods[(b, p)].append(
                {"name": pname, "type": "shapesys", "data": sig.tolist()}
            )
        if lite.any():
            pname = f"prop_bin{b}"
            self._declare(pname, "autoMCStats", no)
            for p, _ in procs:
                data = np.where(lite, self.errors[(b, p)], 0.0)
                self.mods[(b, p)].append(
                    {"name": pname, "type": "staterror", "data": data.tolist()}
                )
        group = self.card.groups.setdefault("autoMCStats", [])
        group.extend(
            sorted(
                {
                    m["name"]
                    for p, _ in procs
                    for m in self.mods[(b, p)]
                    if m["name"].startswith(f"prop_bin{b}")
                }
            )
        )


def _init_coefficients(self: Any) -> dict[tuple[str, str], float]:
    """Normalisation factors at the start values (rateParams, formulas): Combine's coefficients."""
    values: dict[str, float] = {POI: 1.0}
    values.update({n: c["inits"][0] for n, c in self.settings.items() if "inits" in c})
    values.update({n: e["inits"][0] for n, e in self.extra.items()})
    for name, kind in self.kinds.items():
        values.setdefault(
            name, 0.0 if kind in ("lnN", "shape", "lnU", "autoMCStats") else 1.0
        )
    out = {}
    for b, p, _sig in self.card.columns:
        factor = 1.0
        for m in self.mods[(b, p)]:
            if m["type"] in ("normfactor", "lumi") and m["name"] != POI:
                factor *= values.get(m["name"], 1.0)
        for yf in self.yield_functions:
            if (yf.channel, yf.sample) == (b, p):
                factor *= float(np.mean(np.asarray(yf.fn(values))))
        out[(b, p)] = factor
    return out
