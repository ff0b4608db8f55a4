"""CMS Combine datacards: the text format, parsed into plain data; the model lives in ``_combine``.

:func:`read_datacard` reads a datacard (counting or binned-shape, several
channels) into a :class:`~hepprob.io.configured.ConfiguredWorkspace` whose
``model()`` is the same likelihood Combine's ``text2workspace.py`` builds, with
the signal strength ``r`` as POI. :func:`parse_datacard` gives the parsed card
itself. The format follows Combine's documentation ("Preparing the datacard",
cms-analysis.github.io/HiggsAnalysis-CombinedLimit, part2/settinguptheanalysis);
every error names the file and line.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import pathlib
import re
from typing import Any

from hepprob.errors import SpecError

__all__ = ["Datacard", "parse_datacard", "read_datacard"]


def __dir__() -> list[str]:
    return __all__


#: systematic types that take one value per (bin, process) column
EFFECT_TYPES = ("lnN", "lnU", "gmN", "shape", "shapeN", "shape?", "shapeN?")
_OTHER_TYPES = ("param", "flatParam", "rateParam", "extArg", "group", "autoMCStats")


@dataclasses.dataclass
class Systematic:
    """One systematic line: ``effects[(bin, process)]`` is a value or ``(lo, hi)``."""

    name: str
    kind: str
    line: int
    effects: dict[tuple[str, str], Any]
    n_control: int | None = None  # gmN's N


@dataclasses.dataclass
class RateParam:
    """``name rateParam bin process init [lo,hi]`` or ``... formula args``."""

    name: str
    bin: str
    process: str
    line: int
    init: float | None = None
    bounds: tuple[float, float] | None = None
    formula: str | None = None
    args: tuple[str, ...] = ()


@dataclasses.dataclass
class Datacard:
    """The content of a datacard, with the line of every directive."""

    path: str
    bins: list[str]
    observations: dict[str, float]
    columns: list[tuple[str, str, bool]]  # (bin, process, is_signal)
    rates: dict[tuple[str, str], float]
    shapes: list[
        tuple[str, str, list[str], int]
    ]  # (process, channel, [file, hist, syst], line)
    systematics: list[Systematic]
    params: dict[str, tuple[float, float, float, tuple[float, float] | None, int]]
    rate_params: list[RateParam]
    ext_args: dict[str, tuple[float, tuple[float, float] | None, int]]
    flat_params: dict[str, int]
    groups: dict[str, list[str]]
    auto_mc_stats: dict[str, tuple[float, bool, int, int]]
    imax_line: int = 0

    @property
    def processes(self) -> list[str]:
        """Process names in column order, unique."""
        return list(dict.fromkeys(p for _, p, _ in self.columns))

    @property
    def signals(self) -> list[str]:
        """Signal processes (id <= 0)."""
        return list(dict.fromkeys(p for _, p, s in self.columns if s))


def read_datacard(
    path: str | pathlib.Path,
    shapes_dir: str | pathlib.Path | None = None,
    *,
    mass: str | float | None = None,
) -> Any:
    """Read a Combine datacard into a workspace whose model is Combine's likelihood.

    Supported: counting and binned-shape cards (``shapes`` lines with TH1
    histograms in ROOT files, read with uproot; ``$PROCESS``, ``$CHANNEL``,
    ``$SYSTEMATIC``, ``$MASS``), several channels, ``lnN`` (symmetric and
    ``kappa_lo/kappa_hi``), ``lnU``, ``gmN``, ``shape``/``shapeN`` (and
    ``shape?``), ``param``, ``rateParam`` (numbers, ranges, wildcards and
    formulas), ``extArg`` numbers, ``flatParam``, ``group`` and ``autoMCStats``.
    How each maps onto the HistFactory model: ``docs/formats.md``.

    Args:
        path: the datacard.
        shapes_dir: folder the ``shapes`` file names are relative to (default:
            the datacard's folder, as ``text2workspace.py`` run there).
        mass: value for ``$MASS`` in ``shapes`` lines.

    Returns:
        A :class:`~hepprob.io.configured.ConfiguredWorkspace`: ``ws.model()``
        (POI ``r``), ``ws.data(model)``, ``ws.groups``.

    Raises:
        SpecError: ``"<file>:<line>: <problem>"`` for a malformed line, an
            unsupported directive or a missing histogram.
    """
    from hepprob.io._combine import build_workspace

    card = parse_datacard(path)
    base = (
        pathlib.Path(shapes_dir)
        if shapes_dir is not None
        else pathlib.Path(path).parent
    )
    return build_workspace(card, base, mass=mass)


def parse_datacard(path: str | pathlib.Path) -> Datacard:
    """Parse a datacard's text (no ROOT files are opened).

    Raises:
        SpecError: ``"<file>:<line>: <problem>"``.
    """
    file = pathlib.Path(path)
    try:
        text = file.read_text()
    except OSError as err:
        msg = f"cannot read datacard: {err.strerror}"
        raise SpecError(msg, str(file)) from None
    except UnicodeDecodeError:
        msg = "not a text file (a datacard is plain text)"
        raise SpecError(msg, str(file)) from None
    return _Parser(str(file), text).parse()


def line_error(path: str, line: int, msg: str) -> SpecError:
    """A :class:`SpecError` located at ``path:line``."""
    return SpecError(msg, f"{path}:{line}")


def _float(token: str, path: str, line: int, what: str) -> float:
    try:
        return float(token)
    except ValueError:
        raise line_error(
            path, line, f"{what} must be a number, got {token!r}"
        ) from None


def _range(token: str, path: str, line: int) -> tuple[float, float]:
    m = re.fullmatch(r"\[\s*([^,\]]+)\s*,\s*([^,\]]+)\s*\]", token)
    if not m:
        raise line_error(path, line, f"a range is written [min,max], got {token!r}")
    lo, hi = (_float(v, path, line, "a range bound") for v in m.groups())
    if not lo < hi:
        raise line_error(path, line, f"range [{lo}, {hi}] needs min < max")
    return lo, hi


class _Parser:
    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()
        self.card = Datacard(
            path=path, bins=[], observations={}, columns=[], rates={}, shapes=[],
            systematics=[], params={}, rate_params=[], ext_args={}, flat_params={},
            groups={}, auto_mc_stats={},
        )  # fmt: skip

    def fail(self, line: int, msg: str) -> None:
        raise line_error(self.path, line, msg)

    def parse(self) -> Datacard:
        counts: dict[str, tuple[int | None, int]] = {}
        obs_tokens: tuple[list[str], int] | None = None
        bin_line: tuple[list[str], int] | None = None
        proc_lines: list[tuple[list[str], int]] = []
        i, card = 0, self.card
        n = len(self.lines)
        while i < n:  # the header, up to the rate line
            no, f = i + 1, self.lines[i].split()
            i += 1
            if not f or f[0].startswith("#") or f[0].startswith("--"):
                continue
            key = f[0]
            if key in ("imax", "jmax", "kmax"):
                if len(f) < 2:
                    self.fail(no, f"{key} needs a number or '*'")
                value = None if f[1] == "*" else int(_float(f[1], self.path, no, key))
                counts[key] = (value, no)
            elif key == "shapes":
                if len(f) < 5:
                    self.fail(
                        no,
                        "a shapes line is 'shapes process channel file histogram [histogram_with_systematics]'",
                    )
                card.shapes.append((f[1], f[2], f[3:6], no))
            elif key in ("observation", "Observation"):
                obs_tokens = (f[1:], no)
                if bin_line is not None and not card.bins:
                    self._observations(bin_line, obs_tokens)
            elif key == "bin":
                bin_line = (f[1:], no)
            elif key == "process":
                proc_lines.append((f[1:], no))
            elif key == "rate":
                self._columns(bin_line, proc_lines, (f[1:], no))
                break
            else:
                self.fail(no, f"unexpected line before the 'rate' line: {key!r}")
        else:
            self.fail(
                n,
                "no 'rate' line: a datacard needs bin / process / process / rate lines",
            )
        if not card.observations and obs_tokens is not None:
            self._observations((card.bins, obs_tokens[1]), obs_tokens)
        self._check_counts(counts)
        while i < n:
            no, line = i + 1, self.lines[i]
            i += 1
            f = line.split("#", 1)[0].split()
            if len(f) < 2 or line.lstrip().startswith("--"):
                continue
            self._systematic(f, no)
        self._check_kmax(counts)
        return card

    # ------------------------------------------------------------ header
    def _observations(
        self, bins: tuple[list[str], int], obs: tuple[list[str], int]
    ) -> None:
        names, _ = bins
        values, no = obs
        if len(values) != len(names):
            self.fail(no, f"{len(values)} observations for {len(names)} bins {names}")
        for b in names:
            if re.match(r"[0-9]", b):
                self.fail(
                    bins[1], f"bin name {b!r} starts with a digit (Combine forbids it)"
                )
        self.card.bins = list(names)
        self.card.observations = {
            b: _float(v, self.path, no, "an observation")
            for b, v in zip(names, values, strict=True)
        }
        for b, v in self.card.observations.items():
            if v < 0 and v != -1:  # -1: taken from the data_obs histogram
                self.fail(no, f"observation of bin {b!r} is negative ({v})")

    def _columns(
        self, bin_line: Any, proc_lines: list, rate: tuple[list[str], int]
    ) -> None:
        rates, no = rate
        if bin_line is None or len(proc_lines) != 2:
            self.fail(
                no,
                "the rate line needs a 'bin' line and two 'process' lines (names and ids) before it",
            )
        bins, bno = bin_line
        (first, fno), (second, sno) = proc_lines
        if re.fullmatch(r"-?\d+", first[0] if first else "") and not re.fullmatch(
            r"-?\d+", second[0] if second else "x"
        ):
            first, second = second, first
        for tokens, lno, what in (
            (first, fno, "process"),
            (second, sno, "process id"),
            (rates, no, "rate"),
        ):
            if len(tokens) != len(bins):
                self.fail(
                    lno,
                    f"the {what} line has {len(tokens)} columns, the bin line {len(bins)}",
                )
        card = self.card
        if not card.bins:
            card.bins = list(dict.fromkeys(bins))
        for b in bins:
            if b not in card.bins:
                self.fail(bno, f"bin {b!r} is not among the observed bins {card.bins}")
        is_signal: dict[str, bool] = {}
        for b, p, pid, r in zip(bins, first, second, rates, strict=True):
            if not re.fullmatch(r"-?\d+", pid):
                self.fail(sno, f"process id {pid!r} is not an integer")
            sig = int(pid) <= 0
            if is_signal.setdefault(p, sig) != sig:
                self.fail(
                    sno,
                    f"process {p!r} is a signal in some bins and a background in others",
                )
            if (b, p) in card.rates:
                self.fail(fno, f"process {p!r} appears twice in bin {b!r}")
            card.columns.append((b, p, sig))
            card.rates[(b, p)] = _float(r, self.path, no, "a rate")
        if not any(s for _, _, s in card.columns):
            self.fail(sno, "no signal process (id <= 0): the POI r scales the signal")

    def _check_counts(self, counts: dict) -> None:
        card = self.card
        checks = {"imax": len(card.bins), "jmax": len(card.processes) - 1}
        for key, found in checks.items():
            value, no = counts.get(key, (None, 0))
            if value is not None and value != found:
                what = "channels" if key == "imax" else "processes minus one"
                self.fail(no, f"{key} {value} but the card has {found} {what}")

    def _check_kmax(self, counts: dict) -> None:
        value, no = counts.get("kmax", (None, 0))
        found = len(self.card.systematics) + len(self.card.params)
        if value is not None and value != found:
            self.fail(
                no,
                f"kmax {value} but the card has {found} systematics (lnN, lnU, gmN, shape, param lines)",
            )

    # ------------------------------------------------------------ systematics
    def _systematic(self, f: list[str], no: int) -> None:
        name, kind = f[0], f[1]
        card = self.card
        if kind in EFFECT_TYPES:
            self._effects(name, kind, f, no)
        elif kind == "param":
            if len(f) < 4:
                self.fail(
                    no, "a param line is 'name param mean sigma' (or -lo/+hi) [range]"
                )
            mean = _float(f[2], self.path, no, "the param mean")
            if "/" in f[3]:
                lo_s, hi_s = f[3].split("/", 1)
                if not (lo_s.startswith("-") and hi_s.startswith("+")):
                    self.fail(
                        no, f"asymmetric param widths are written -lo/+hi, got {f[3]!r}"
                    )
                lo, hi = (
                    _float(lo_s[1:], self.path, no, "a width"),
                    _float(hi_s[1:], self.path, no, "a width"),
                )
            else:
                lo = hi = _float(f[3], self.path, no, "the param sigma")
            if not (lo > 0 and hi > 0):
                self.fail(no, "param widths must be > 0")
            rng = (
                _range(f[4], self.path, no)
                if len(f) > 4 and f[4].startswith("[")
                else None
            )
            if name in card.params:
                self.fail(no, f"param {name!r} is defined twice")
            card.params[name] = (mean, lo, hi, rng, no)
        elif kind == "rateParam":
            self._rate_param(f, no)
        elif kind == "extArg":
            if len(f) < 3 or ":" in f[2]:
                self.fail(
                    no,
                    "only 'name extArg init [min,max]' is supported (not objects from ROOT workspaces)",
                )
            init = _float(f[2], self.path, no, "the extArg value")
            rng = _range(f[3], self.path, no) if len(f) > 3 else None
            card.ext_args[name] = (init, rng, no)
        elif kind == "flatParam":
            card.flat_params[name] = no
        elif kind == "group":
            if len(f) < 4 or f[2] not in ("=", "+="):
                self.fail(no, "a group line is 'name group = p1 p2 ...' (or +=)")
            if f[2] == "=" and name in card.groups:
                self.fail(
                    no, f"group {name!r} is already defined (use += to extend it)"
                )
            if f[2] == "+=" and name not in card.groups:
                self.fail(no, f"cannot extend group {name!r}: it is not defined yet")
            card.groups.setdefault(name, []).extend(
                p for p in f[3:] if p not in card.groups.get(name, [])
            )
        elif kind == "autoMCStats":
            if len(f) > 5:
                self.fail(
                    no,
                    "autoMCStats is 'channel autoMCStats threshold [include-signal] [hist-mode]'",
                )
            thr = (
                _float(f[2], self.path, no, "the autoMCStats threshold")
                if len(f) > 2
                else 0.0
            )
            inc = (
                bool(int(_float(f[3], self.path, no, "include-signal")))
                if len(f) > 3
                else False
            )
            mode = int(_float(f[4], self.path, no, "hist-mode")) if len(f) > 4 else 1
            chans = [b for b in card.bins if fnmatch.fnmatchcase(b, name)]
            if not chans:
                self.fail(
                    no,
                    f"autoMCStats: no channel matches {name!r}; channels: {card.bins}",
                )
            for b in chans:
                card.auto_mc_stats[b] = (thr, inc, mode, no)
        elif name == "nuisance" and kind == "edit":
            self.fail(
                no,
                "'nuisance edit' lines are not supported: apply the edits to the card first",
            )
        elif kind in (
            "discrete",
            "constr",
            "unif",
            "trG",
            "dFD",
            "dFD2",
            "gmM",
            "shapeU",
        ):
            self.fail(no, f"systematic type {kind!r} is not supported")
        else:
            self.fail(
                no,
                f"unknown systematic type {kind!r} (expected one of {list(EFFECT_TYPES + _OTHER_TYPES)})",
            )

    def _effects(self, name: str, kind: str, f: list[str], no: int) -> None:
        card = self.card
        values = f[2:]
        n_control = None
        if kind == "gmN":
            if len(f) < 3 or not re.fullmatch(r"\d+", f[2]):
                self.fail(
                    no, f"gmN needs the number of control-region events N, got {f[2:3]}"
                )
            n_control, values = int(f[2]), f[3:]
        if len(values) < len(card.columns):
            self.fail(
                no,
                f"{name} {kind}: {len(values)} values for {len(card.columns)} (bin, process) columns",
            )
        if any(s.name == name for s in card.systematics):
            self.fail(no, f"systematic {name!r} is defined twice")
        effects: dict[tuple[str, str], Any] = {}
        for (b, p, _), tok in zip(card.columns, values, strict=False):
            if tok == "-" * len(tok):
                continue
            if "/" in tok:
                if kind not in ("lnN", "lnU", "shape?", "shapeN?"):
                    self.fail(
                        no,
                        f"asymmetric values (lo/hi) are allowed only for lnN and lnU, got {tok!r}",
                    )
                lo, hi = (
                    _float(t, self.path, no, "a kappa") for t in tok.split("/", 1)
                )
                if lo <= 0 or hi <= 0:
                    self.fail(
                        no, f"kappa values must be > 0, got {tok!r} for ({b}, {p})"
                    )
                effects[(b, p)] = (lo, hi)
                continue
            v = _float(tok, self.path, no, f"the {kind} value of ({b}, {p})")
            if v < 0:
                self.fail(no, f"negative value {v} for ({b}, {p})")
            if v == 0 or (kind in ("lnN", "lnU") and v == 1.0):
                continue
            effects[(b, p)] = v
        if kind == "gmN":  # Combine sets a zero rate to 1e-6 for N = 0 sidebands
            for key in effects:
                if card.rates[key] == 0:
                    card.rates[key] = 1e-6
        if not any(card.rates[k] != 0 for k in effects):
            return  # no effect on any yield: Combine drops the line (and its kmax count)
        card.systematics.append(Systematic(name, kind, no, effects, n_control))

    def _rate_param(self, f: list[str], no: int) -> None:
        card = self.card
        if len(f) < 5:
            self.fail(
                no,
                "a rateParam line is 'name rateParam bin process init [min,max]' or '... formula args'",
            )
        name, bpat, ppat, value = f[0], f[2], f[3], f[4]
        targets = [
            (b, p)
            for b, p, _ in card.columns
            if fnmatch.fnmatchcase(b, bpat) and fnmatch.fnmatchcase(p, ppat)
        ]
        if not targets:
            self.fail(
                no,
                f"rateParam {name}: bin {bpat!r} / process {ppat!r} match no column of the card",
            )
        if ":" in value and not value.startswith("("):
            self.fail(
                no, "rateParams from ROOT workspaces (file:workspace) are not supported"
            )
        try:
            init = float(value)
        except ValueError:
            init = None
        for b, p in targets:
            if init is not None:
                rng = _range(f[5], self.path, no) if len(f) > 5 else None
                card.rate_params.append(
                    RateParam(name, b, p, no, init=init, bounds=rng)
                )
            else:
                args = tuple(a for a in (f[5].split(",") if len(f) > 5 else []) if a)
                card.rate_params.append(
                    RateParam(name, b, p, no, formula=value, args=args)
                )
