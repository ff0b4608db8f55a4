"""Standard HEP plots with matplotlib: projections, Brazil bands, scans, pulls.

What to use when:

* :func:`projection` — a histogram of unbinned data with the fitted density on
  top and a pull panel below.
* :func:`brazil_band` — observed and expected CLs versus the POI, with the
  ±1σ/±2σ bands and the CLs = level line.
* :func:`profile_scan` — a profile-likelihood scan (ΔNLL or 2ΔNLL).
* :func:`pulls` and :func:`ranking` — nuisance-parameter pulls and impact ranking.
* :func:`corner` and :func:`trace` — posterior plots through ArviZ.

matplotlib is imported lazily (``pip install "hepprob[plot]"``). Every function
takes an optional ``ax`` and returns the axes it drew on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from hepprob._optional import require
from hepprob.errors import DataError

__all__ = [
    "bin_integrals",
    "brazil_band",
    "corner",
    "profile_scan",
    "projection",
    "pulls",
    "ranking",
    "trace",
]


def _pyplot() -> Any:
    return require("matplotlib.pyplot", "plotting")


def _axes(ax: Any) -> Any:
    return ax if ax is not None else _pyplot().subplots()[1]


def projection(
    density: Callable[[np.ndarray], np.ndarray],
    data: Sequence[float] | np.ndarray,
    *,
    bins: int = 50,
    range: tuple[float, float] | None = None,
    n_expected: float | None = None,
    components: dict[str, Callable[[np.ndarray], np.ndarray]] | None = None,
    axes: tuple[Any, Any] | None = None,
) -> tuple[Any, Any]:
    """Data histogram, fitted density scaled to counts, and pulls below.

    The expected count in a bin is ``N · ∫ density`` over the bin (Gauss–Legendre
    quadrature), so the curve and the pulls agree for wide bins too.

    Args:
        density: normalised density of the observable, vectorised (e.g.
            ``lambda x: jnp.exp(dist.log_prob(x))``).
        data: unbinned observed values.
        bins: number of bins.
        range: histogram range (default: the data's min and max).
        n_expected: expected total count (default: the number of events).
        components: extra named densities (already scaled by their fraction).
        axes: (main, pull) axes; new ones are made when absent.

    Returns:
        The (main, pull) axes.
    """
    data = np.asarray(data, dtype=float)
    if data.size == 0:
        msg = "projection: data is empty"
        raise DataError(msg)
    lo, hi = range if range is not None else (float(data.min()), float(data.max()))
    counts, edges = np.histogram(data, bins=bins, range=(lo, hi))
    total = float(data.size if n_expected is None else n_expected)
    if axes is None:
        _, axes = _pyplot().subplots(
            2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]}
        )
    main, pull_ax = axes

    def expected_counts(fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        return total * bin_integrals(fn, edges)

    centres = 0.5 * (edges[1:] + edges[:-1])
    main.errorbar(centres, counts, yerr=np.sqrt(counts), fmt="ko", ms=3, label="data")
    fine = np.linspace(lo, hi, 400)
    width = edges[1] - edges[0]
    main.plot(fine, total * width * np.asarray(density(fine)), "C0-", label="fit")
    for i, (name, fn) in enumerate((components or {}).items()):
        main.plot(fine, total * width * np.asarray(fn(fine)), f"C{i + 1}--", label=name)
    main.set_ylabel(f"events / {width:.3g}")
    main.legend()
    expected = expected_counts(density)
    pull = (counts - expected) / np.sqrt(np.where(expected > 0, expected, 1.0))
    pull_ax.bar(centres, pull, width=width, color="C0")
    pull_ax.axhline(0.0, color="k", lw=0.8)
    pull_ax.set_ylabel("pull")
    return main, pull_ax


def bin_integrals(
    density: Callable[[np.ndarray], np.ndarray], edges: np.ndarray
) -> np.ndarray:
    """∫ density over each bin by 8-point Gauss–Legendre quadrature per bin."""
    edges = np.asarray(edges, dtype=float)
    nodes, weights = np.polynomial.legendre.leggauss(8)
    half = 0.5 * (edges[1:] - edges[:-1])
    x = (0.5 * (edges[1:] + edges[:-1]))[:, None] + half[:, None] * nodes
    y = np.asarray(density(x.ravel()), dtype=float).reshape(x.shape)
    return half * (y @ weights)


def brazil_band(
    poi_values: Sequence[float],
    cls_obs: Sequence[float],
    cls_exp: Sequence[Sequence[float]],
    *,
    level: float = 0.05,
    ax: Any = None,
) -> Any:
    """CLs versus the POI: observed, expected median, ±1σ (green), ±2σ (yellow).

    Args:
        poi_values: scanned POI values, shape (n,).
        cls_obs: observed CLs, shape (n,).
        cls_exp: expected CLs at −2, −1, 0, +1, +2 σ, shape (5, n) (or (n, 5)).
        level: the CLs level drawn as a horizontal line (0.05 for 95% CL).
        ax: axes to draw on.
    """
    x = np.asarray(poi_values, dtype=float)
    obs = np.asarray(cls_obs, dtype=float)
    exp = np.asarray(cls_exp, dtype=float)
    if exp.shape == (x.size, 5) and x.size != 5:
        exp = exp.T
    if obs.shape != x.shape or exp.shape != (5, x.size):
        msg = (
            f"brazil_band: need cls_obs of shape {x.shape} and cls_exp of shape "
            f"(5, {x.size}), got {obs.shape} and {exp.shape}"
        )
        raise DataError(msg)
    ax = _axes(ax)
    ax.fill_between(x, exp[0], exp[4], color="yellow", label=r"expected $\pm2\sigma$")
    ax.fill_between(
        x, exp[1], exp[3], color="limegreen", label=r"expected $\pm1\sigma$"
    )
    ax.plot(x, exp[2], "k--", label="expected")
    ax.plot(x, obs, "k-", marker="o", ms=3, label="observed")
    ax.axhline(level, color="red", lw=1, label=f"CLs = {level:g}")
    ax.set_xlabel("POI")
    ax.set_ylabel("CLs")
    ax.legend()
    return ax


def profile_scan(
    values: Sequence[float],
    nll: Sequence[float],
    *,
    name: str = "POI",
    twice: bool = True,
    ax: Any = None,
) -> Any:
    """Profile-likelihood scan, shifted so its minimum is 0 (2ΔNLL by default).

    Lines at 1 and 4 (2ΔNLL) mark the 68% and 95% intervals of one parameter.
    """
    x = np.asarray(values, dtype=float)
    y = np.asarray(nll, dtype=float)
    y = (y - np.min(y)) * (2.0 if twice else 1.0)
    ax = _axes(ax)
    ax.plot(x, y, "C0-")
    for level in (1.0, 4.0) if twice else (0.5, 2.0):
        ax.axhline(level, color="gray", ls=":", lw=1)
    ax.set_xlabel(name)
    ax.set_ylabel(r"$-2\Delta\ln L$" if twice else r"$-\Delta\ln L$")
    return ax


def pulls(
    names: Sequence[str],
    values: Sequence[float],
    errors: Sequence[float],
    *,
    ax: Any = None,
) -> Any:
    """Post-fit pulls (θ̂ − θ₀)/σ₀ of constrained nuisances with their ±error bars.

    Pass values and errors already expressed in units of the prefit width.
    """
    vals = np.asarray(values, dtype=float)
    errs = np.asarray(errors, dtype=float)
    if not (len(names) == vals.size == errs.size):
        msg = "pulls: names, values and errors must have the same length"
        raise DataError(msg)
    y = np.arange(vals.size)[::-1]
    ax = _axes(ax)
    ax.axvspan(-2, 2, color="yellow")
    ax.axvspan(-1, 1, color="limegreen")
    ax.errorbar(vals, y, xerr=errs, fmt="ko", ms=4)
    ax.set_yticks(y, list(names))
    ax.set_xlabel(r"$(\hat\theta-\theta_0)/\Delta\theta$")
    return ax


def ranking(
    names: Sequence[str],
    impact_up: Sequence[float],
    impact_down: Sequence[float],
    *,
    top: int | None = 20,
    ax: Any = None,
) -> Any:
    """Impact ranking: ΔPOI when each nuisance moves by ±1σ, largest first."""
    up = np.asarray(impact_up, dtype=float)
    down = np.asarray(impact_down, dtype=float)
    order = np.argsort(-np.maximum(np.abs(up), np.abs(down)))[:top]
    y = np.arange(order.size)[::-1]
    ax = _axes(ax)
    ax.barh(y, up[order], color="C0", alpha=0.7, label=r"$+1\sigma$")
    ax.barh(y, down[order], color="C1", alpha=0.7, label=r"$-1\sigma$")
    ax.set_yticks(y, [names[i] for i in order])
    ax.axvline(0.0, color="k", lw=0.8)
    ax.set_xlabel(r"$\Delta\hat\mu$")
    ax.legend()
    return ax


def corner(idata: Any, var_names: Sequence[str] | None = None, **kwargs: Any) -> Any:
    """Pairwise posterior plot of an ``InferenceData`` (``arviz.plot_pair``)."""
    import arviz as az

    kwargs.setdefault("kind", "kde")
    kwargs.setdefault("marginals", True)
    return az.plot_pair(idata, var_names=var_names, **kwargs)


def trace(idata: Any, var_names: Sequence[str] | None = None, **kwargs: Any) -> Any:
    """Trace plot of an ``InferenceData`` (``arviz.plot_trace``)."""
    import arviz as az

    return az.plot_trace(idata, var_names=var_names, **kwargs)
