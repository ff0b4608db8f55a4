"""Many HistFactory models on one common, padded structure (patchset scans).

The signal patches of a grid add samples, parameters and modifiers to one
background-only workspace, so their models differ in shape: a program
compiled for one would not fit another. :func:`pad_models` lays every model
out on the union of their parameters, samples, normsys parameters, factor
layers and constrained parameters, with neutral entries where a model lacks
something (a zero yield, a factor 1, a parameter held fixed at its start
value whose constraint term is then a constant), and stacks the arrays along
a leading axis. One :class:`~hepprob.histfactory.kernel.Structure` then
serves all of them: one compiled fit, vectorised over patches, with masks
(fixed flags) instead of shapes.

A constant term does not change any fit or likelihood ratio; expected data
and the pyhf-order parameter vector of each patch are recovered with
:meth:`PaddedModels.model_pars`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from hepprob.errors import ModelError
from hepprob.histfactory.compile import _code4_coefficients
from hepprob.histfactory.kernel import Structure
from hepprob.histfactory.model import Model, _histosys_maps

__all__ = ["PaddedModels", "pad_models"]


def __dir__() -> list[str]:
    return __all__


@dataclasses.dataclass(frozen=True, eq=False)
class PaddedModels:
    """Models on one padded layout; array attributes have a leading model axis.

    Attributes:
        structure: the common :class:`~hepprob.histfactory.kernel.Structure`.
        arrays: the kernel's arrays, stacked (NumPy).
        par_names: flat parameter names of the common layout.
        data: observed main + (padded) auxiliary data per model.
        init, lower, upper, fixed: fit settings per model; parameters a model
            does not have are fixed at a neutral start value.
        poi_index: position of the POI in the common layout.
        index: ``index[i][j]`` is where model ``i``'s flat parameter ``j`` sits.
    """

    structure: Structure
    arrays: dict[str, np.ndarray]
    par_names: list[str]
    data: np.ndarray
    init: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    fixed: np.ndarray
    poi_index: int | None
    index: list[np.ndarray]

    def __len__(self) -> int:
        return int(self.data.shape[0])

    def model_pars(self, i: int, pars: np.ndarray) -> np.ndarray:
        """Model ``i``'s own parameter vector (pyhf order) from a common one."""
        return np.asarray(pars)[..., self.index[i]]


def pad_models(models: Sequence[Model], main_data: Sequence[Any]) -> PaddedModels:
    """Lay ``models`` (with observed main counts ``main_data``) on one structure.

    Raises:
        ModelError: the models differ in channels and bins, interpolation
            codes, a parameter's size, or use options a common layout cannot
            carry (clipping, yield functions, EFT, correlations, Tikhonov).
    """
    if not models:
        msg = "pad_models: need at least one model"
        raise ModelError(msg)
    first = models[0]
    for m in models:
        _check_compatible(first, m)
    layout = _Layout(models)
    per_model = [layout.arrays_of(m) for m in models]
    arrays = {k: np.stack([a[k] for a in per_model]) for k in per_model[0]}
    init, lower, upper, fixed = (
        np.stack(x) for x in zip(*map(layout.settings, models), strict=True)
    )
    aux = np.stack([layout.auxdata(m) for m in models])
    main = np.stack([np.asarray(d, dtype=np.float64) for d in main_data])
    if main.shape != (len(models), first.config.nmaindata):
        msg = (
            f"pad_models: main_data must be {len(models)} rows of "
            f"{first.config.nmaindata} counts, got shape {main.shape}"
        )
        raise ModelError(msg)
    c = first.compiled
    structure = Structure(
        nbase=layout.npars,
        npars=layout.npars,
        nmain=c.nbins,
        naux=len(layout.aux),
        ns_code=layout.ns_code,
        hs_code=layout.hs_code,
        hs_region=c.hs_region,
        n_layers=layout.n_layers,
        onehot=(),
        clip_sample=None,
        clip_bin=None,
    )
    poi = first.config.poi_name
    return PaddedModels(
        structure=structure,
        arrays=arrays,
        par_names=layout.par_names,
        data=np.concatenate([main, aux], axis=1),
        init=init,
        lower=lower,
        upper=upper,
        fixed=fixed,
        poi_index=None if poi is None else layout.start[poi],
        index=[layout.flat_index(m) for m in models],
    )


def _check_compatible(first: Model, m: Model) -> None:
    a, b = first.compiled, m.compiled
    if (a.channels, a.channel_nbins) != (b.channels, b.channel_nbins):
        msg = (
            "pad_models: the models have different channels or bins "
            f"({a.channel_nbins} vs {b.channel_nbins}); scan them separately"
        )
        raise ModelError(msg)
    st = m.structure
    extras = st.eft or st.yield_functions or st.correlated or st.n_tikhonov
    if extras or st.clip_sample is not None or st.clip_bin is not None:
        msg = (
            "pad_models: models with clipping, yield functions, EFT terms, "
            "correlations or Tikhonov terms cannot share a padded layout"
        )
        raise ModelError(msg)
    for field in ("ns_code", "hs_code", "hs_region"):
        if getattr(a, field) != getattr(b, field):
            msg = f"pad_models: the models differ in {field} ({getattr(a, field)!r} vs {getattr(b, field)!r})"
            raise ModelError(msg)
    if first.config.poi_name != m.config.poi_name:
        msg = (
            f"pad_models: the models have different POIs ({first.config.poi_name!r} "
            f"vs {m.config.poi_name!r})"
        )
        raise ModelError(msg)


class _Layout:
    """The union of the models' parameters, samples, normsys names and constraints."""

    def __init__(self, models: Sequence[Model]) -> None:
        self.sets: dict[str, Any] = {}  # name -> first ParamSet seen
        for m in models:
            for p in m.compiled.paramsets:
                seen = self.sets.setdefault(p.name, p)
                if (seen.n_parameters, seen.constraint) != (
                    p.n_parameters,
                    p.constraint,
                ):
                    msg = (
                        f"pad_models: parameter {p.name!r} has {p.n_parameters} entries "
                        f"({p.constraint}) in one model and {seen.n_parameters} "
                        f"({seen.constraint}) in another"
                    )
                    raise ModelError(msg)
        self.start, pos = {}, 0
        for name, p in self.sets.items():
            self.start[name] = pos
            pos += p.n_parameters
        self.npars = pos
        self.par_names = [
            n if p.is_scalar else f"{n}[{i}]"
            for n, p in self.sets.items()
            for i in range(p.n_parameters)
        ]
        self.samples = sorted({s for m in models for s in m.compiled.samples})
        self.n_c = len(models[0].compiled.channels)
        ns_names: dict[str, None] = {}
        for m in models:
            names = _names_at(m, m.compiled.ns_index)
            ns_names.update(dict.fromkeys(names))
        self.ns_names = list(ns_names)
        codes = [m.compiled for m in models]
        self.ns_code = codes[0].ns_code if self.ns_names else None
        has_hs = any(c.hs_index.size for c in codes)
        self.hs_code = codes[0].hs_code if has_hs else None
        self.n_layers = max(int(c.gather.shape[1]) for c in codes)
        self.aux = [
            (self.start[n] + i, p) for n, p in self.sets.items() if p.constrained
            for i in range(p.n_parameters)
        ]  # fmt: skip

    def flat_index(self, m: Model) -> np.ndarray:
        """Common position of each of ``m``'s flat parameters."""
        return np.concatenate(
            [
                self.start[p.name] + np.arange(p.n_parameters)
                for p in m.compiled.paramsets
            ]
        )

    def settings(self, m: Model) -> tuple[np.ndarray, ...]:
        """Start values, bounds and fixed flags in the common layout."""
        init = np.concatenate([p.inits for p in self.sets.values()])
        bounds = np.concatenate([p.bounds for p in self.sets.values()])
        fixed = np.ones(self.npars, dtype=bool)
        idx = self.flat_index(m)
        init[idx] = m.config.suggested_init()
        bounds[idx] = np.asarray(m.config.suggested_bounds(), dtype=np.float64)
        fixed[idx] = m.config.suggested_fixed()
        return init, bounds[:, 0].copy(), bounds[:, 1].copy(), fixed

    def auxdata(self, m: Model) -> np.ndarray:
        """``m``'s auxiliary data; a constraint it lacks sits at its expectation."""
        own = dict(zip(self._aux_positions(m), m.config.auxdata, strict=True))
        init = self.settings(m)[0]
        out = []
        for pos, p in self.aux:
            if pos in own:
                out.append(own[pos])
            else:  # its parameter is fixed at init: a constant term
                factor = (
                    p.factors[pos - self.start[p.name]]
                    if p.constraint == "poisson"
                    else 1.0
                )
                out.append(init[pos] * factor)
        return np.asarray(out, dtype=np.float64)

    def _aux_positions(self, m: Model) -> list[int]:
        return [
            self.start[p.name] + i for p in m.compiled.paramsets if p.constrained
            for i in range(p.n_parameters)
        ]  # fmt: skip

    def arrays_of(self, m: Model) -> dict[str, np.ndarray]:
        """The kernel's arrays of ``m`` in the common layout."""
        c, nbase = m.compiled, m._nbase
        n_s, n_b, n_c = len(self.samples), c.nbins, self.n_c
        s_map = np.array([self.samples.index(s) for s in c.samples])
        p_map = self.flat_index(m)[:nbase]
        nominal = np.zeros((n_s, n_b))
        nominal[s_map] = c.nominal
        # gather indices into [pars, 1, normsys(T)], remapped
        one = self.npars
        table = np.full((n_s, self.n_layers, n_b), one)
        g = c.gather
        remapped = np.where(g < nbase, p_map[np.minimum(g, nbase - 1)], one)
        t = g - nbase - 1
        is_ns = t >= 0
        t_c = s_map[np.where(is_ns, t, 0) // n_c] * n_c + np.where(is_ns, t, 0) % n_c
        remapped = np.where(is_ns, one + 1 + t_c, remapped)
        table[s_map, : g.shape[1]] = remapped
        out: dict[str, np.ndarray] = {"nominal": nominal, "gather": table}
        out.update(self._aux_arrays(m))
        if self.ns_code is not None:
            out.update(self._normsys(m, s_map))
        if self.hs_code is not None:
            out.update(self._histosys(m, s_map, p_map))
        return out

    def _normsys(self, m: Model, s_map: np.ndarray) -> dict[str, np.ndarray]:
        c, n_c = m.compiled, self.n_c
        k_c, t_c = len(self.ns_names), len(self.samples) * n_c
        lo, hi = np.ones((k_c, t_c)), np.ones((k_c, t_c))
        if c.ns_index.size:
            rows = [self.ns_names.index(n) for n in _names_at(m, c.ns_index)]
            t = np.arange(c.ns_lo.shape[1])
            cols = s_map[t // n_c] * n_c + t % n_c
            lo[np.ix_(rows, cols)] = c.ns_lo
            hi[np.ix_(rows, cols)] = c.ns_hi
        out = {
            "ns_index": np.array([self.start[n] for n in self.ns_names]),
            "ns_lo": lo,
            "ns_hi": hi,
            "ns_log_lo": np.log(lo),
            "ns_log_hi": np.log(hi),
        }
        if self.ns_code == "code4":
            out["ns_coef"] = _code4_coefficients(lo, hi)
        return out

    def _histosys(
        self, m: Model, s_map: np.ndarray, p_map: np.ndarray
    ) -> dict[str, np.ndarray]:
        c = m.compiled
        n_s, n_b = len(self.samples), c.nbins
        out = {}
        maps = _histosys_maps(c, m._nbase) if c.hs_index.size else None
        rows = (s_map[:, None] * n_b + np.arange(n_b)[None, :]).ravel()
        for i, key in enumerate(("hs_sym", "hs_asym")):
            full = np.zeros((n_s * n_b, self.npars))
            if maps is not None:
                full[np.ix_(rows, p_map)] = maps[i]
            out[key] = full
        return out

    def _aux_arrays(self, m: Model) -> dict[str, np.ndarray]:
        c = m.compiled
        own = {pos: i for i, pos in enumerate(self._aux_positions(m))}
        sigma, factor, pois = [], [], []
        for pos, p in self.aux:
            j = self.start[p.name]
            if pos in own:
                i = own[pos]
                sigma.append(c.aux_sigma[i])
                factor.append(c.aux_factor[i])
            else:
                sigma.append(1.0)
                factor.append(p.factors[pos - j] if p.constraint == "poisson" else 1.0)
            pois.append(p.constraint == "poisson")
        return {
            "aux_index": np.array([pos for pos, _ in self.aux], dtype=int),
            "aux_poisson": np.array(pois, dtype=bool),
            "aux_sigma": np.array(sigma, dtype=np.float64),
            "aux_factor": np.array(factor, dtype=np.float64),
        }


def _names_at(m: Model, index: np.ndarray) -> list[str]:
    """Parameter-set names at flat positions ``index`` of model ``m``."""
    starts = {p.start: p.name for p in m.compiled.paramsets}
    return [starts[int(i)] for i in index]
