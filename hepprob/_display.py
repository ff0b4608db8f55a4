"""Results as tables: plain text for terminals and ``repr``, HTML for notebooks.

Everything here is a pure function from numbers to a :class:`Table` (rows of
text cells with a title and notes) or a :class:`Report` (several tables). A
table prints as aligned text and renders as HTML in Jupyter (``_repr_html_``),
as iminuit's ``Minuit`` object does. The result classes, the CLI's ``--pretty``
output and ``hepprob demo`` all go through this module, so they look alike.

Numbers with an error are rounded with the Particle Data Group's rule
(PDG, *Review of Particle Physics*, Introduction, sec. 5.3): the error keeps two
significant digits when its three leading digits are 100–354, one for 355–949,
and 950–999 rounds up to 1000 with two; the value is rounded to the same decimal.
"""

from __future__ import annotations

import dataclasses
import html
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "Report",
    "Table",
    "TableDict",
    "cls_table",
    "correlation_table",
    "fit_result",
    "fit_table",
    "format_number",
    "limit_table",
    "posterior_table",
    "pull_table",
    "round_to_error",
    "toy_result",
    "toy_table",
]


# -- the containers -----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Table:
    """Rows of text cells under a header, with an optional title and notes.

    ``shade`` (same shape as ``rows``, values in [-1, 1] or None) colours HTML
    cells, e.g. correlation coefficients (red positive, blue negative).
    """

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    title: str = ""
    notes: tuple[str, ...] = ()
    shade: tuple[tuple[float | None, ...], ...] | None = None

    def text(self) -> str:
        """Aligned plain text: first column left-aligned, the others right."""
        grid = [self.header, *self.rows]
        ncol = max(len(r) for r in grid)
        grid = [tuple(r) + ("",) * (ncol - len(r)) for r in grid]
        widths = [max(len(r[c]) for r in grid) for c in range(ncol)]

        def line(cells: Sequence[str]) -> str:
            parts = [
                cells[c].ljust(widths[c]) if c == 0 else cells[c].rjust(widths[c])
                for c in range(ncol)
            ]
            return "  ".join(parts).rstrip()

        rule = "-" * len(line(grid[0]).ljust(sum(widths) + 2 * (ncol - 1)))
        out = [self.title] if self.title else []
        out += [line(grid[0]), rule, *(line(r) for r in grid[1:])]
        out += list(self.notes)
        return "\n".join(out)

    def html(self) -> str:
        """An HTML table (escaped), title as caption, notes below."""
        esc = html.escape
        head = "".join(f"<th>{esc(h)}</th>" for h in self.header)
        body = []
        for i, row in enumerate(self.rows):
            cells = []
            for j, cell in enumerate(row):
                style = ""
                level = self.shade[i][j] if self.shade is not None else None
                if level is not None and np.isfinite(level):
                    style = f' style="background-color:{_shade_colour(level)}"'
                align = "left" if j == 0 else "right"
                cells.append(f'<td style="text-align:{align}"{style}>{esc(cell)}</td>')
            body.append("<tr>" + "".join(cells) + "</tr>")
        caption = f"<caption><b>{esc(self.title)}</b></caption>" if self.title else ""
        notes = "".join(f"<br><small>{esc(n)}</small>" for n in self.notes)
        return (
            f"<div><table>{caption}<thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>{notes}</div>"
        )

    def __str__(self) -> str:
        return self.text()

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return self.html()


@dataclasses.dataclass(frozen=True)
class Report:
    """Several tables shown one after the other (blank line between in text)."""

    tables: tuple[Table, ...]
    title: str = ""

    def text(self) -> str:
        parts = [self.title] if self.title else []
        parts += [t.text() for t in self.tables]
        return "\n\n".join(parts)

    def html(self) -> str:
        head = f"<h4>{html.escape(self.title)}</h4>" if self.title else ""
        return head + "".join(t.html() for t in self.tables)

    def __str__(self) -> str:
        return self.text()

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return self.html()


class TableDict(dict):  # type: ignore[type-arg]
    """A ``dict`` that prints as a table (e.g. ``ToyResult.pull_summary()``).

    It is an ordinary dict for code; only ``repr`` and ``_repr_html_`` differ.
    """

    def __init__(self, data: Mapping[str, Any], table: Table) -> None:
        super().__init__(data)
        self._table = table

    def __repr__(self) -> str:
        return self._table.text()

    def _repr_html_(self) -> str:
        return self._table.html()


def _shade_colour(level: float) -> str:
    level = max(-1.0, min(1.0, float(level)))
    rgb = "220,50,47" if level > 0 else "38,139,210"
    return f"rgba({rgb},{abs(level) * 0.6:.2f})"


# -- numbers -----------------------------------------------------------------


def format_number(value: Any, digits: int = 4) -> str:
    """``value`` with ``digits`` significant digits; ``nan``/``inf`` spelled out."""
    if value is None:
        return "-"
    v = float(value)
    if not math.isfinite(v):
        return str(v)
    return f"{v:.{digits}g}"


def _decimals(error: float) -> tuple[int, float]:
    """Decimal place (may be negative) and rounded error, by the PDG rule."""
    exponent = math.floor(math.log10(error))
    leading = round(error / 10.0 ** (exponent - 2))  # three leading digits
    if leading >= 1000:  # e.g. 0.09996 rounds to 1000 -> one order up
        exponent, leading = exponent + 1, 100
    if leading <= 354:
        digits = 2
    elif leading <= 949:
        digits = 1
    else:  # 950-999: round up to 1000, keep two digits
        exponent, digits = exponent + 1, 2
        error = 10.0**exponent
    decimals = digits - 1 - exponent
    return decimals, round(error, decimals)


def round_to_error(value: Any, error: Any) -> tuple[str, str]:
    """``value`` and ``error`` as text, rounded by the PDG rule.

    Without a usable error (zero, negative, NaN) the value keeps 6 significant
    digits and the error is shown as given.

    Example:
        >>> round_to_error(5.27961, 0.000412)
        ('5.2796', '0.0004')
        >>> round_to_error(1203.7, 31.6)
        ('1204', '32')
    """
    v, e = float(value), float(error) if error is not None else float("nan")
    if not (math.isfinite(e) and e > 0 and math.isfinite(v)):
        return format_number(v, 6), format_number(e, 2) if error is not None else "-"
    decimals, e_rounded = _decimals(e)
    return _fixed(v, decimals), _fixed(e_rounded, decimals)


def _fixed(x: float, decimals: int) -> str:
    if decimals >= 0:
        text = f"{x:.{decimals}f}"
        return "0" + text[2:] if text.startswith("-0") and float(text) == 0 else text
    return f"{round(x, decimals):.0f}"


def _asymmetric(value: float, low: float, high: float, decimals: int) -> str:
    return f"{_fixed(low - value, decimals)} / +{_fixed(high - value, decimals)}"


# -- fits --------------------------------------------------------------------


def fit_table(
    names: Sequence[str],
    values: Sequence[float],
    errors: Sequence[float],
    *,
    fixed: Sequence[bool] | None = None,
    at_bound: Sequence[bool] | None = None,
    minos: Mapping[str, tuple[float, float]] | None = None,
    truth: Mapping[str, float] | None = None,
    title: str = "",
    notes: Sequence[str] = (),
) -> Table:
    """One row per parameter: value and Hesse error rounded together, Minos.

    ``minos`` maps names to interval end points ``(lower, upper)``; those
    parameters get a column ``-down / +up`` at the error's decimal place.
    ``truth`` adds a column of generating values (for toys and demos).
    """
    n = len(names)
    fixed = list(fixed) if fixed is not None else [False] * n
    at_bound = list(at_bound) if at_bound is not None else [False] * n
    minos = dict(minos or {})
    header = (
        "parameter",
        *(("truth",) if truth else ()),
        "value",
        "error",
        *(("minos",) if minos else ()),
        "",
    )
    rows = []
    for i, name in enumerate(names):
        v, e = float(values[i]), float(errors[i])
        if fixed[i]:
            row = [name, format_number(v, 6), "-"]
            note = "fixed"
        else:
            v_text, e_text = round_to_error(v, e)
            row = [name, v_text, e_text]
            note = "at bound" if at_bound[i] else ""
        if truth:
            row.insert(1, format_number(truth[name], 6) if name in truth else "")
        if minos:
            if name in minos and e > 0 and math.isfinite(e):
                decimals, _ = _decimals(e)
                row.append(_asymmetric(v, *map(float, minos[name]), decimals))
            else:
                row.append("")
        row.append(note)
        rows.append(tuple(row))
    return Table(header, tuple(rows), title, tuple(notes))


def correlation_table(
    names: Sequence[str], correlation: Any, *, title: str = "correlation"
) -> Table:
    """The correlation matrix with two decimals, HTML cells shaded by sign and size."""
    corr = np.asarray(correlation, dtype=float)
    short = [_short(n) for n in names]
    rows = tuple(
        (short[i], *(f"{corr[i, j]:.2f}" for j in range(len(names))))
        for i in range(len(names))
    )
    shade = tuple(
        (None, *(float(corr[i, j]) if i != j else None for j in range(len(names))))
        for i in range(len(names))
    )
    return Table(("", *short), rows, title, shade=shade)


def _short(name: str, width: int = 12) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


#: above this many free parameters the text repr leaves the correlation matrix out
MAX_CORRELATION_TEXT = 8


def fit_result(result: Any) -> Report:
    """The report of a :class:`~hepprob.infer.result.FitResult` (duck-typed).

    A status line, the parameter table (with Minos intervals once
    ``result.minos()`` has run, read from ``result.merrors`` when present) and
    the correlation matrix of the free parameters.
    """
    names = list(result.par_names)
    x = np.asarray(result.x, dtype=float)
    cov = np.asarray(result.covariance, dtype=float)
    errors = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    fixed_map = getattr(result, "fixed", {}) or {}
    fixed = [bool(fixed_map.get(n, False)) for n in names]
    problem = getattr(result, "_problem", None)
    lower = np.asarray(getattr(problem, "lower", np.full(x.size, -np.inf)), float)
    upper = np.asarray(getattr(problem, "upper", np.full(x.size, np.inf)), float)
    at_bound = [bool(x[i] <= lower[i] or x[i] >= upper[i]) for i in range(x.size)]
    minos = dict(getattr(result, "merrors", None) or {})
    state = "converged" if result.converged else "NOT CONVERGED"
    method = getattr(result, "method", "")
    title = f"FitResult: {state}, nll = {result.nll:.10g}, edm = {result.edm:.2g}" + (
        f", {result.n_iter} iterations ({method})" if method else ""
    )
    message = str(getattr(result, "message", "") or "")
    notes = () if result.converged and "converged" in message.lower() else (message,)
    notes = tuple(n for n in notes if n)
    tables = [
        fit_table(
            names,
            x,
            errors,
            fixed=fixed,
            at_bound=at_bound,
            minos=minos,
            title=title,
            notes=notes,
        )
    ]
    free = [i for i, f in enumerate(fixed) if not f]
    if len(free) > 1:
        corr = np.asarray(result.correlation, dtype=float)[np.ix_(free, free)]
        tables.append(correlation_table([names[i] for i in free], corr))
    return Report(tuple(tables))


def fit_text(result: Any) -> str:
    """Plain-text repr of a FitResult: the correlation matrix only when small."""
    report = fit_result(result)
    tables = report.tables
    if len(tables) > 1 and len(tables[1].rows) > MAX_CORRELATION_TEXT:
        return tables[0].text() + "\n(correlation: result.correlation)"
    return report.text()


# -- toys --------------------------------------------------------------------


def pull_table(summary: Mapping[str, Mapping[str, float]], *, title: str = "") -> Table:
    """Pull mean and width per parameter with their standard errors."""
    rows = []
    for name, s in summary.items():
        m, me = round_to_error(s["mean"], s["mean_error"])
        w, we = round_to_error(s["width"], s["width_error"])
        rows.append((name, f"{m} ± {me}", f"{w} ± {we}"))
    notes = ("a correct fit gives mean 0 and width 1",)
    return Table(
        ("parameter", "pull mean", "pull width"),
        tuple(rows),
        title or "pulls (fitted - truth) / error",
        notes,
    )


def pull_summary(summary: Mapping[str, Mapping[str, float]]) -> TableDict:
    """``summary`` as a :class:`TableDict` (a dict that prints as :func:`pull_table`)."""
    return TableDict(summary, pull_table(summary))


def toy_table(
    names: Sequence[str],
    truth: Sequence[float],
    values: Any,
    errors: Any,
    converged: Any,
    fixed: Sequence[bool],
) -> Table:
    """Toy ensemble summary: truth, mean and spread of the fits, mean error, pulls.

    Statistics use the converged toys; the standard errors follow from
    Gaussian pulls: s/√n for the mean, s/√(2(n−1)) for the width.
    """
    values = np.asarray(values, dtype=float)
    errors = np.asarray(errors, dtype=float)
    ok = np.asarray(converged, dtype=bool)
    n_toys, n_ok = values.shape[0], int(ok.sum())
    rows = []
    for i, name in enumerate(names):
        if fixed[i]:
            continue
        v, e = values[ok, i], errors[ok, i]
        if n_ok < 2:
            rows.append((name, format_number(truth[i]), *("-",) * 5))
            continue
        spread = float(np.std(v, ddof=1))
        with np.errstate(divide="ignore", invalid="ignore"):
            pulls = (v - truth[i]) / e
        pulls = pulls[np.isfinite(pulls)]
        if pulls.size >= 2:
            s = float(np.std(pulls, ddof=1))
            m, me = round_to_error(np.mean(pulls), s / math.sqrt(pulls.size))
            w, we = round_to_error(s, s / math.sqrt(2 * (pulls.size - 1)))
            pm, pw = f"{m} ± {me}", f"{w} ± {we}"
        else:
            pm = pw = "-"
        mean_text, spread_text = round_to_error(np.mean(v), spread)
        rows.append(
            (
                name,
                format_number(truth[i], 6),
                mean_text,
                spread_text,
                format_number(np.mean(e), 3),
                pm,
                pw,
            )
        )
    title = f"ToyResult: {n_toys} toys, {n_ok} converged"
    if n_ok < n_toys:
        title += f" ({n_toys - n_ok} failed fits kept, flagged in .converged)"
    header = (
        "parameter",
        "truth",
        "mean fit",
        "spread",
        "mean error",
        "pull mean",
        "pull width",
    )
    return Table(
        header, tuple(rows), title, ("arrays: .values .errors .pulls .nll .converged",)
    )


def toy_result(result: Any) -> Table:
    """:func:`toy_table` of a :class:`~hepprob.infer.toys.ToyResult` (duck-typed)."""
    return toy_table(
        list(result.par_names),
        np.asarray(result.truth, dtype=float),
        result.values,
        result.errors,
        result.converged,
        [bool(f) for f in np.asarray(result.fixed)],
    )


# -- hypothesis tests, limits, posteriors -------------------------------------

_SIGMAS = ("-2σ", "-1σ", "median", "+1σ", "+2σ")


def cls_table(
    poi_value: float,
    cls_obs: float,
    cls_exp: Sequence[float] | None = None,
    *,
    level: float = 0.05,
    poi_name: str = "mu",
) -> Table:
    """Observed CLs at one POI value and the expected band (−2σ … +2σ)."""
    header = ("", "CLs")
    rows = [("observed", format_number(cls_obs))]
    if cls_exp is not None:
        rows += [
            (f"expected {s}", format_number(c))
            for s, c in zip(_SIGMAS, cls_exp, strict=True)
        ]
    verdict = "excluded" if float(cls_obs) < level else "not excluded"
    notes = (
        (
            f"{poi_name} = {poi_value:g} is {verdict} at {100 * (1 - level):g}% CL"
            f" (CLs {'<' if float(cls_obs) < level else '>='} {level:g})"
        ),
    )
    return Table(header, tuple(rows), f"CLs at {poi_name} = {poi_value:g}", notes)


def limit_table(
    obs: float,
    exp: Sequence[float],
    *,
    level: float = 0.05,
    poi_name: str = "mu",
) -> Table:
    """Observed and expected (−2σ … +2σ) upper limits on the POI."""
    rows = [("observed", format_number(obs))]
    rows += [
        (f"expected {s}", format_number(v)) for s, v in zip(_SIGMAS, exp, strict=True)
    ]
    title = f"{100 * (1 - level):g}% CL upper limit on {poi_name} (CLs)"
    return Table(("", poi_name), tuple(rows), title)


def significance_table(
    observed: float,
    expected: float | None = None,
    *,
    p_obs: float | None = None,
    p_exp: float | None = None,
) -> Table:
    """Discovery significance (q0): Z and p-value, observed and expected."""
    rows = [
        (
            "observed",
            format_number(observed, 3),
            format_number(p_obs, 3) if p_obs is not None else "",
        )
    ]
    if expected is not None:
        rows.append(
            (
                "expected",
                format_number(expected, 3),
                format_number(p_exp, 3) if p_exp is not None else "",
            )
        )
    return Table(
        ("", "Z (σ)", "p-value"),
        tuple(rows),
        "discovery significance (q0, background-only hypothesis)",
    )


def posterior_table(
    rows: Iterable[tuple[str, Mapping[str, Any]]],
    *,
    title: str = "posterior",
    notes: Sequence[str] = (),
) -> Table:
    """Posterior summary rows ``(name, {"mean", "sd", "hdi_…", "ess_bulk", "r_hat"})``.

    Mean and sd are rounded with the PDG rule (sd as the error); columns that
    no row has (e.g. ``r_hat`` with one chain) are left out.
    """
    rows = list(rows)
    keys = []
    for _, stats in rows:
        for k in stats:
            if k not in keys and k not in ("mean", "sd"):
                keys.append(k)
    header = ("parameter", "mean", "sd", *keys)
    body = []
    for name, stats in rows:
        mean, sd = stats.get("mean"), stats.get("sd")
        if mean is not None and sd is not None:
            m, s = round_to_error(mean, sd)
            decimals, _ = _decimals(float(sd)) if float(sd) > 0 else (4, 0)
        else:
            m, s, decimals = format_number(mean), format_number(sd), 4
        cells = [name, m, s]
        for k in keys:
            v = stats.get(k)
            if v is None or (isinstance(v, float) and math.isnan(v)):
                cells.append("-")
            elif k.startswith(("hdi", "eti")):
                cells.append(_fixed(float(v), decimals))
            elif k.startswith("ess"):
                cells.append(f"{float(v):.0f}")
            else:
                cells.append(format_number(v, 3))
        body.append(tuple(cells))
    return Table(header, tuple(body), title, tuple(notes))
