"""Compile a HistFactory spec, once, into dense stacked NumPy arrays.

The result, :class:`CompiledSpec`, is frozen data: nominal yields
``(samples, bins)``, one gather table for every per-bin multiplicative modifier
(normfactor, lumi, shapefactor, shapesys, staterror), stacked normsys and
histosys arrays, and the flat auxiliary-measurement layout. ``model.py`` turns
it into a handful of array operations; no Python loop over bins, samples or
modifiers happens at evaluation time.

Parameter sets follow pyhf 0.7's order exactly: by modifier type in the order of
:data:`~hepprob.histfactory.modifiers.MODIFIERS`, within a type by first
appearance while walking sorted channels, sorted samples and sorted
``(name, type)`` modifiers (staterror: sorted by name); a name used by several
types (normsys + histosys) is one parameter, placed at its first type.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hepprob.errors import SpecError
from hepprob.histfactory import interpolation
from hepprob.histfactory.modifiers import MODIFIERS, Requirement
from hepprob.histfactory.modifiers._base import check_vector
from hepprob.histfactory.modifiers.staterror import staterror_requirement

__all__ = ["DEFAULT_MODIFIER_SETTINGS", "CompiledSpec", "ParamSet", "compile_spec"]

#: pyhf 0.7 defaults; a user's ``modifier_settings`` entry replaces one type's
DEFAULT_MODIFIER_SETTINGS: dict[str, dict[str, Any]] = {
    "normsys": {"interpcode": "code4"},
    "histosys": {"interpcode": "code4p"},
}
_SETTING_KEYS = {"normsys": {"interpcode"}, "histosys": {"interpcode", "smooth_region"}}
_CONFIG_KEYS = ("inits", "bounds", "fixed", "auxdata", "sigmas", "factors")


def __dir__() -> list[str]:
    return __all__


@dataclasses.dataclass(frozen=True, eq=False)
class ParamSet:
    """One named parameter set (scalar or vector) with pyhf's attributes.

    ``constraint`` is ``"none"``, ``"normal"`` or ``"poisson"``.
    """

    name: str
    constraint: str
    n_parameters: int
    is_scalar: bool
    inits: np.ndarray
    bounds: np.ndarray  # (n, 2)
    fixed: np.ndarray  # (n,) bool
    auxdata: np.ndarray | None
    sigmas: np.ndarray | None
    factors: np.ndarray | None
    start: int
    types: tuple[str, ...]

    @property
    def slice(self) -> slice:
        """Position in the flat parameter vector."""
        return slice(self.start, self.start + self.n_parameters)

    @property
    def constrained(self) -> bool:
        """Whether an auxiliary measurement constrains it."""
        return self.constraint != "none"

    @property
    def pdf_type(self) -> str | None:
        """``"normal"``, ``"poisson"`` or ``None`` (unconstrained), as pyhf."""
        return None if self.constraint == "none" else self.constraint

    @property
    def suggested_init(self) -> list[float]:
        """Start values."""
        return self.inits.tolist()

    @property
    def suggested_bounds(self) -> list[tuple[float, float]]:
        """``(lower, upper)`` per entry."""
        return [(float(a), float(b)) for a, b in self.bounds]

    @property
    def suggested_fixed(self) -> list[bool]:
        """Whether each entry is held constant in fits by default."""
        return [bool(f) for f in self.fixed]

    def width(self) -> list[float]:
        """Constraint widths: sigmas (Normal) or ``1/sqrt(tau)`` (Poisson)."""
        if self.constraint == "poisson":
            return (1.0 / np.sqrt(self.factors)).tolist()
        if self.constraint == "normal":
            return self.sigmas.tolist()
        msg = f"parameter {self.name!r} is unconstrained: it has no width"
        raise SpecError(msg)


@dataclasses.dataclass(frozen=True, eq=False)
class CompiledSpec:
    """Dense arrays of one HistFactory model (see module docstring)."""

    channels: tuple[str, ...]
    samples: tuple[str, ...]
    channel_nbins: dict[str, int]
    modifiers: tuple[tuple[str, str], ...]
    nominal: np.ndarray  # (S, B)
    bin_channel: np.ndarray  # (B,)
    paramsets: tuple[ParamSet, ...]
    npars: int
    # multiplicative per-bin factors: indices into [pars, 1, normsys(T)]
    gather: np.ndarray  # (S, L, B) int
    # normsys, per target t = sample * n_channels + channel
    ns_code: str
    ns_index: np.ndarray  # (K,)
    ns_lo: np.ndarray  # (K, T)
    ns_hi: np.ndarray  # (K, T)
    ns_coef: np.ndarray | None  # (6, K, T) code 4 polynomial
    # histosys occurrences o = (parameter, sample)
    hs_code: str
    hs_region: float
    hs_index: np.ndarray  # (O,)
    hs_onehot: np.ndarray  # (S, O)
    hs_sym: np.ndarray  # (O, B)
    hs_asym: np.ndarray  # (O, B)
    # auxiliary measurements
    aux_index: np.ndarray  # (N,)
    aux_poisson: np.ndarray  # (N,) bool
    aux_sigma: np.ndarray  # (N,)
    aux_factor: np.ndarray  # (N,)
    auxdata: np.ndarray  # (N,)
    auxdata_order: tuple[str, ...]

    @property
    def nbins(self) -> int:
        """Number of main-measurement bins over all channels."""
        return int(self.nominal.shape[1])


def compile_spec(
    spec: Mapping[str, Any],
    modifier_settings: Mapping[str, Any] | None = None,
    *,
    checked: dict[int, Any] | None = None,
) -> CompiledSpec:
    """Check ``{"channels": [...], "parameters": [...]}`` and stack it into arrays.

    ``checked``: a dict kept across calls that reuses the checked form of
    sample dicts seen before (the same objects, e.g. the background samples
    shared by every patched spec of a patchset scan).

    Raises:
        SpecError: naming the JSON path at fault (unknown modifier type, data of
            the wrong length, conflicting parameter definitions, ...).
    """
    settings = _settings(modifier_settings)
    channels = _channels(spec, checked)
    chan_names = sorted(channels)
    sample_names = sorted({s for ch in channels.values() for s in ch["samples"]})
    nbins = {c: channels[c]["nbins"] for c in chan_names}
    offsets = np.cumsum([0] + [nbins[c] for c in chan_names])
    cslice = {
        c: slice(int(offsets[i]), int(offsets[i + 1])) for i, c in enumerate(chan_names)
    }
    n_b, n_s, n_c = int(offsets[-1]), len(sample_names), len(chan_names)
    sidx = {s: i for i, s in enumerate(sample_names)}

    nominal = np.zeros((n_s, n_b))
    for c in chan_names:
        for s, info in channels[c]["samples"].items():
            nominal[sidx[s], cslice[c]] = info["data"]
    bin_channel = np.repeat(np.arange(n_c), [nbins[c] for c in chan_names])

    # walk in pyhf's order, registering requirements
    reqs: dict[str, dict[str, list[tuple[Requirement, str]]]] = {
        t: {} for t in MODIFIERS
    }
    occ: list[
        tuple[str, str, str, str, Any]
    ] = []  # (channel, sample, type, name, data)
    all_mods = set()
    for c in chan_names:
        for s in sample_names:
            info = channels[c]["samples"].get(s)
            if info is None:
                continue
            for (name, mtype), (path, data) in sorted(info["mods"].items()):
                all_mods.add((name, mtype))
                occ.append((c, s, mtype, name, data))
                req = MODIFIERS[mtype].requirement(info["data"], data)
                if req is not None:
                    reqs[mtype].setdefault(name, []).append((req, path))
    _check_unshared(occ, channels)
    for name in sorted({o[3] for o in occ if o[2] == "staterror"}):
        reqs["staterror"][name] = [
            (
                _staterror_req(name, occ, nominal, sidx, cslice, n_b),
                f"staterror {name!r}",
            )
        ]

    paramsets = _paramsets(reqs, spec.get("parameters", []) or [])
    pmap = {p.name: p for p in paramsets}
    npars = sum(p.n_parameters for p in paramsets)

    gather = _gather_table(occ, pmap, sidx, cslice, nbins, n_s, n_b, npars)
    ns = _normsys_arrays(occ, pmap, sidx, chan_names, n_s, settings["normsys"])
    hs = _histosys_arrays(occ, pmap, sidx, cslice, nominal, n_b)
    if ns[0].size:
        extra = (npars + 1 + np.arange(n_s)[:, None] * n_c + bin_channel)[:, None, :]
        gather = np.concatenate([gather, extra], axis=1)
    aux = _aux_layout(paramsets)
    return CompiledSpec(
        channels=tuple(chan_names),
        samples=tuple(sample_names),
        channel_nbins=nbins,
        modifiers=tuple(sorted(all_mods)),
        nominal=nominal,
        bin_channel=bin_channel,
        paramsets=paramsets,
        npars=npars,
        gather=gather,
        ns_code=settings["normsys"]["interpcode"],
        ns_index=ns[0],
        ns_lo=ns[1],
        ns_hi=ns[2],
        ns_coef=ns[3],
        hs_code=settings["histosys"]["interpcode"],
        hs_region=float(settings["histosys"].get("smooth_region", 1.0)),
        hs_index=hs[0],
        hs_onehot=hs[1],
        hs_sym=hs[2],
        hs_asym=hs[3],
        **aux,
    )


# ----------------------------------------------------------------- helpers


def _settings(modifier_settings: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    out = {k: dict(v) for k, v in DEFAULT_MODIFIER_SETTINGS.items()}
    for mtype, opts in dict(modifier_settings or {}).items():
        if mtype not in _SETTING_KEYS:
            msg = (
                f"modifier_settings: no settings for modifier type {mtype!r}; "
                f"settable types are {sorted(_SETTING_KEYS)}"
            )
            raise SpecError(msg)
        if not isinstance(opts, Mapping) or set(opts) - _SETTING_KEYS[mtype]:
            msg = (
                f"modifier_settings[{mtype!r}] must be a dict with keys among "
                f"{sorted(_SETTING_KEYS[mtype])}, got {opts!r}"
            )
            raise SpecError(msg)
        out[mtype] = {**out[mtype], **opts}
    codes = {
        "normsys": interpolation.MULTIPLICATIVE_CODES,
        "histosys": interpolation.ADDITIVE_CODES,
    }
    for mtype, allowed in codes.items():
        code = out[mtype]["interpcode"]
        if code not in allowed:
            msg = (
                f"modifier_settings[{mtype!r}]['interpcode'] must be one of {allowed}, "
                f"got {code!r}"
            )
            raise SpecError(msg)
    region = out["histosys"].get("smooth_region", 1.0)
    if (
        isinstance(region, bool)
        or not isinstance(region, (int, float))
        or not region > 0
    ):
        msg = f"modifier_settings['histosys']['smooth_region'] must be > 0, got {region!r}"
        raise SpecError(msg)
    return out


def _channels(
    spec: Mapping[str, Any], checked: dict[int, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """Structural checks; ``{channel: {"nbins", "samples": {s: {"data", "mods"}}}}``."""
    if not isinstance(spec, Mapping) or "channels" not in spec:
        msg = 'a model spec is a dict {"channels": [...], "parameters": [...]}'
        raise SpecError(msg)
    chans = spec["channels"]
    if not isinstance(chans, Sequence) or isinstance(chans, str) or not chans:
        msg = f"must be a non-empty list of channels, got {chans!r}"
        raise SpecError(msg, "channels")
    out: dict[str, dict[str, Any]] = {}
    for ci, ch in enumerate(chans):
        cpath = f"channels[{ci}]"
        if not isinstance(ch, Mapping) or not isinstance(ch.get("name"), str):
            msg = "a channel needs a string 'name' and a list 'samples'"
            raise SpecError(msg, cpath)
        if ch["name"] in out:
            msg = f"duplicate channel name {ch['name']!r}"
            raise SpecError(msg, f"{cpath}.name")
        samples = ch.get("samples")
        if not isinstance(samples, Sequence) or not samples:
            msg = f"must be a non-empty list of samples, got {samples!r}"
            raise SpecError(msg, f"{cpath}.samples")
        first = samples[0].get("data") if isinstance(samples[0], Mapping) else None
        if not isinstance(first, Sequence) or not first:
            msg = "sample data must be a non-empty list of yields"
            raise SpecError(msg, f"{cpath}.samples[0].data")
        nb = len(first)
        smap: dict[str, dict[str, Any]] = {}
        for si, smp in enumerate(samples):
            spath = f"{cpath}.samples[{si}]"
            if not isinstance(smp, Mapping) or not isinstance(smp.get("name"), str):
                msg = "a sample needs a string 'name', 'data' and 'modifiers'"
                raise SpecError(msg, spath)
            if smp["name"] in smap:
                msg = f"duplicate sample name {smp['name']!r} in channel {ch['name']!r}"
                raise SpecError(msg, f"{spath}.name")
            seen = None if checked is None else checked.get(id(smp))
            if seen is not None and seen[0] is smp and seen[1]["data"].size == nb:
                smap[smp["name"]] = seen[1]
                continue
            data = check_vector(smp.get("data"), nb, f"{spath}.data", "sample data")
            mods: dict[tuple[str, str], tuple[str, Any]] = {}
            mlist = smp.get("modifiers", [])
            if not isinstance(mlist, Sequence) or isinstance(mlist, str):
                msg = f"must be a list of modifiers, got {mlist!r}"
                raise SpecError(msg, f"{spath}.modifiers")
            for mi, mod in enumerate(mlist):
                mpath = f"{spath}.modifiers[{mi}]"
                if not isinstance(mod, Mapping) or not isinstance(mod.get("name"), str):
                    msg = "a modifier needs a string 'name', a 'type' and 'data'"
                    raise SpecError(msg, mpath)
                mtype = mod.get("type")
                if mtype not in MODIFIERS:
                    msg = f"unknown modifier type {mtype!r}; expected one of {sorted(MODIFIERS)}"
                    raise SpecError(msg, f"{mpath}.type")
                impl = MODIFIERS[mtype]
                key = (mod["name"], mtype)
                if key in mods and not impl.shared:
                    msg = (
                        f"{mtype} modifier {mod['name']!r} appears twice in this sample"
                    )
                    raise SpecError(msg, mpath)
                parsed = impl.check_data(mod.get("data"), data, f"{mpath}.data")
                mods[key] = (mpath, parsed)
            smap[smp["name"]] = {"data": data, "mods": mods, "path": spath}
            if checked is not None:  # holds smp: its id stays valid
                checked[id(smp)] = (smp, smap[smp["name"]])
        out[ch["name"]] = {"nbins": nb, "samples": smap}
    return out


def _check_unshared(occ: list[tuple[str, str, str, str, Any]], channels: Any) -> None:
    seen: dict[tuple[str, str], tuple[str, str]] = {}
    for c, s, mtype, name, _ in occ:
        if MODIFIERS[mtype].shared:
            continue
        if (mtype, name) in seen:
            msg = (
                f"{mtype} modifier {name!r} is used by {seen[(mtype, name)]} and by "
                f"({c!r}, {s!r}); a {mtype} belongs to one sample: give each its own name"
            )
            raise SpecError(msg, channels[c]["samples"][s]["path"])
        seen[(mtype, name)] = (c, s)


def _staterror_req(
    name: str,
    occ: list[tuple[str, str, str, str, Any]],
    nominal: np.ndarray,
    sidx: dict[str, int],
    cslice: dict[str, slice],
    n_b: int,
) -> Requirement:
    mine = [o for o in occ if o[2] == "staterror" and o[3] == name]
    subs = sorted({sidx[o[1]] for o in mine})
    unc = np.zeros((len(subs), n_b))
    mask = np.zeros(n_b, dtype=bool)
    for c, s, _, _, data in mine:
        unc[subs.index(sidx[s]), cslice[c]] = data
        mask[cslice[c]] = True
    return staterror_requirement(nominal[subs], unc, mask)


def _paramsets(
    reqs: dict[str, dict[str, list[tuple[Requirement, str]]]], configs: Any
) -> tuple[ParamSet, ...]:
    user: dict[str, tuple[Mapping[str, Any], str]] = {}
    if not isinstance(configs, Sequence) or isinstance(configs, str):
        msg = f"must be a list of parameter configurations, got {configs!r}"
        raise SpecError(msg, "parameters")
    for i, cfg in enumerate(configs):
        if not isinstance(cfg, Mapping) or not isinstance(cfg.get("name"), str):
            msg = f"a parameter configuration needs a string 'name', got {cfg!r}"
            raise SpecError(msg, f"parameters[{i}]")
        if cfg["name"] in user:
            msg = f"multiple configurations for parameter {cfg['name']!r}"
            raise SpecError(msg, f"parameters[{i}].name")
        user[cfg["name"]] = (cfg, f"parameters[{i}]")

    merged: dict[str, tuple[Requirement, list[str]]] = {}
    for mtype, by_name in reqs.items():
        for name, entries in by_name.items():
            for req, path in entries:
                if name not in merged:
                    merged[name] = (req, [mtype])
                    continue
                first, types = merged[name]
                if req != first:
                    diff = [
                        f.name
                        for f in dataclasses.fields(Requirement)
                        if getattr(req, f.name) != getattr(first, f.name)
                    ]
                    msg = (
                        f"parameter {name!r} is defined inconsistently by modifiers "
                        f"{sorted({*types, mtype})} (differing {diff}); use distinct names"
                    )
                    raise SpecError(msg, path)
                if mtype not in types:
                    types.append(mtype)
    if not merged:
        msg = "the model has no parameters (no modifiers in any sample)"
        raise SpecError(msg, "channels")

    out, start = [], 0
    for name, (req, types) in merged.items():
        cfg, cpath = user.get(name, ({}, ""))
        vals = _configure(name, req, cfg, cpath)
        out.append(ParamSet(name=name, start=start, types=tuple(types), **vals))
        start += req.n
    return tuple(out)


def _configure(
    name: str, req: Requirement, cfg: Mapping[str, Any], cpath: str
) -> dict[str, Any]:
    n = req.n
    unknown = set(cfg) - {"name", *_CONFIG_KEYS}
    if unknown:
        msg = f"unknown keys {sorted(unknown)} in the configuration of {name!r}"
        raise SpecError(msg, cpath)
    for key in _CONFIG_KEYS:
        if key in cfg and key in req.unused:
            msg = f"parameter {name!r} does not use {key!r} (it is not constrained that way)"
            raise SpecError(msg, f"{cpath}.{key}")
    vals: dict[str, Any] = {}
    for key in ("inits", "auxdata", "sigmas", "factors"):
        default = getattr(req, key)
        if key in cfg:
            vals[key] = check_vector(cfg[key], n, f"{cpath}.{key}", f"{name} {key}")
        elif default is None and key not in req.unused:
            msg = (
                f"parameter {name!r} ({req.constraint}-constrained) needs {key!r} from the "
                "measurement's parameter configuration"
            )
            raise SpecError(msg, cpath or "parameters")
        else:
            vals[key] = (
                None if default is None else np.asarray(default, dtype=np.float64)
            )
    if "bounds" in cfg:
        b = cfg["bounds"]
        ok = (
            isinstance(b, Sequence)
            and len(b) == n
            and all(isinstance(x, Sequence) and len(x) == 2 for x in b)
        )
        if not ok:
            msg = f"bounds of {name!r} must be {n} pairs [lower, upper], got {b!r}"
            raise SpecError(msg, f"{cpath}.bounds")
        bounds = np.asarray(b, dtype=np.float64)
    elif req.bounds is None:
        msg = f"parameter {name!r} needs 'bounds' from the measurement's parameter configuration"
        raise SpecError(msg, cpath or "parameters")
    else:
        bounds = np.asarray(req.bounds, dtype=np.float64).reshape(n, 2)
    if not np.all(bounds[:, 0] < bounds[:, 1]):
        msg = f"bounds of {name!r} need lower < upper, got {bounds.tolist()}"
        raise SpecError(msg, f"{cpath}.bounds" if cpath else "parameters")
    fixed = cfg.get("fixed", req.fixed)
    if isinstance(fixed, bool):
        fixed = (fixed,) * n
    if len(fixed) != n:
        msg = f"fixed of {name!r} must be a bool or {n} bools, got {fixed!r}"
        raise SpecError(msg, f"{cpath}.fixed")
    if req.constraint == "normal" and vals.get("sigmas") is None:
        vals["sigmas"] = np.ones(n)
    return {
        "constraint": req.constraint,
        "n_parameters": n,
        "is_scalar": req.is_scalar,
        "inits": vals["inits"],
        "bounds": bounds,
        "fixed": np.asarray(fixed, dtype=bool),
        "auxdata": vals.get("auxdata"),
        "sigmas": vals.get("sigmas") if req.constraint == "normal" else None,
        "factors": vals.get("factors"),
    }


def _gather_table(
    occ: list[tuple[str, str, str, str, Any]],
    pmap: dict[str, ParamSet],
    sidx: dict[str, int],
    cslice: dict[str, slice],
    nbins: dict[str, int],
    n_s: int,
    n_b: int,
    npars: int,
) -> np.ndarray:
    """Pack per-bin parameter indices of factor modifiers into few layers per sample."""
    layers: list[list[np.ndarray]] = [[] for _ in range(n_s)]
    stat_pos: dict[str, np.ndarray] = {}
    for c, s, mtype, name, _ in occ:
        if MODIFIERS[mtype].family != "factor":
            continue
        ps, sl = pmap[name], cslice[c]
        if mtype in ("normfactor", "lumi"):
            row = np.full(nbins[c], ps.start)
        elif mtype in ("shapefactor", "shapesys"):
            if ps.n_parameters != nbins[c]:
                msg = (
                    f"{mtype} {name!r} has {ps.n_parameters} parameters but channel {c!r} "
                    f"has {nbins[c]} bins"
                )
                raise SpecError(msg)
            row = ps.start + np.arange(nbins[c])
        else:  # staterror: position of the bin among the bins the parameter covers
            if name not in stat_pos:
                covered = np.zeros(n_b, dtype=bool)
                for c2, _, t2, n2, _ in occ:
                    if t2 == "staterror" and n2 == name:
                        covered[cslice[c2]] = True
                stat_pos[name] = np.cumsum(covered) - 1
            row = ps.start + stat_pos[name][sl]
        for layer in layers[sidx[s]]:
            if np.all(layer[sl] < 0):
                layer[sl] = row
                break
        else:
            fresh = np.full(n_b, -1)
            fresh[sl] = row
            layers[sidx[s]].append(fresh)
    depth = max((len(ls) for ls in layers), default=0)
    table = np.full((n_s, depth, n_b), npars)
    for i, ls in enumerate(layers):
        for j, layer in enumerate(ls):
            table[i, j] = np.where(layer < 0, npars, layer)
    return table


def _normsys_arrays(
    occ: list[tuple[str, str, str, str, Any]],
    pmap: dict[str, ParamSet],
    sidx: dict[str, int],
    chan_names: list[str],
    n_s: int,
    settings: dict[str, Any],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    names = list(dict.fromkeys(o[3] for o in occ if o[2] == "normsys"))
    k_of = {n: i for i, n in enumerate(names)}
    n_c = len(chan_names)
    cidx = {c: i for i, c in enumerate(chan_names)}
    lo = np.ones((len(names), n_s * n_c))
    hi = np.ones((len(names), n_s * n_c))
    for c, s, mtype, name, data in occ:
        if mtype == "normsys":
            t = sidx[s] * n_c + cidx[c]
            lo[k_of[name], t], hi[k_of[name], t] = data
    index = np.array([pmap[n].start for n in names], dtype=int)
    coef = None
    if settings["interpcode"] == "code4" and names:
        coef = _code4_coefficients(lo, hi)
    return index, lo, hi, coef


def _code4_coefficients(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """:func:`~hepprob.histfactory.interpolation.code4_coefficients` at alpha0 = 1,
    on the host (eager JAX would compile a program per operation and shape)."""
    lk_hi, lk_lo = np.log(hi), np.log(lo)
    rhs = np.stack(
        [hi - 1.0, lo - 1.0, lk_hi * hi, -lk_lo * lo, lk_hi**2 * hi, lk_lo**2 * lo]
    )
    return np.tensordot(interpolation._code4_inverse(1.0), rhs, axes=1)


def _histosys_arrays(
    occ: list[tuple[str, str, str, str, Any]],
    pmap: dict[str, ParamSet],
    sidx: dict[str, int],
    cslice: dict[str, slice],
    nominal: np.ndarray,
    n_b: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    keys = list(dict.fromkeys((o[3], o[1]) for o in occ if o[2] == "histosys"))
    o_of = {k: i for i, k in enumerate(keys)}
    sym = np.zeros((len(keys), n_b))
    asym = np.zeros((len(keys), n_b))
    onehot = np.zeros((nominal.shape[0], len(keys)))
    for c, s, mtype, name, data in occ:
        if mtype != "histosys":
            continue
        o, sl = o_of[(name, s)], cslice[c]
        lo, hi = data
        nom = nominal[sidx[s], sl]
        sym[o, sl] = 0.5 * (hi - lo)
        asym[o, sl] = (hi + lo - 2.0 * nom) / 16.0
        onehot[sidx[s], o] = 1.0
    index = np.array([pmap[n].start for n, _ in keys], dtype=int)
    return index, onehot, sym, asym


def _aux_layout(paramsets: tuple[ParamSet, ...]) -> dict[str, Any]:
    idx, pois, sig, fac, data, order = [], [], [], [], [], []
    for p in paramsets:
        if not p.constrained:
            continue
        order.append(p.name)
        n = p.n_parameters
        idx.extend(range(p.start, p.start + n))
        pois.extend([p.constraint == "poisson"] * n)
        sig.extend(p.sigmas.tolist() if p.constraint == "normal" else [1.0] * n)
        fac.extend(p.factors.tolist() if p.constraint == "poisson" else [1.0] * n)
        data.extend(p.auxdata.tolist())
    return {
        "aux_index": np.asarray(idx, dtype=int),
        "aux_poisson": np.asarray(pois, dtype=bool),
        "aux_sigma": np.asarray(sig, dtype=np.float64),
        "aux_factor": np.asarray(fac, dtype=np.float64),
        "auxdata": np.asarray(data, dtype=np.float64),
        "auxdata_order": tuple(order),
    }
