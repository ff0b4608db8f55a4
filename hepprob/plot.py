"""Standard HEP plots with matplotlib: projections, Brazil bands, scans, pulls.

What to use when:

* :func:`projection` — a histogram of unbinned data with the fitted density on
  top and a pull panel below.
* :func:`brazil_band` — observed and expected CLs versus the POI, with the
  ±1σ/±2σ bands and the CLs = level line.
* :func:`profile_scan` — a profile-likelihood scan (ΔNLL or 2ΔNLL).
* :func:`pulls` and :func:`ranking` — nuisance-parameter pulls (with their
  constraints) and impact ranking.
* :func:`stacked` — a stacked histogram of samples with the uncertainty band,
  data points and a data/prediction panel; :func:`channel_stacks` draws one per
  channel of a HistFactory model, pre-fit or post-fit.
* :func:`toy_distribution` — toy distributions of a test statistic with the
  asymptotic densities of Cowan, Cranmer, Gross, Vitells (arXiv:1007.1727).
* :func:`contour` — 2-D confidence contours from arrays of contour points.
* :func:`corner` and :func:`trace` — posterior plots through ArviZ.
* :func:`use_style` — mplhep's HEP style when mplhep is installed.

matplotlib is imported lazily (``pip install "hepprob[plot]"``). Every function
takes an optional ``ax`` (or ``axes``) and returns the axes it drew on.
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
    "channel_stacks",
    "contour",
    "corner",
    "profile_scan",
    "projection",
    "pulls",
    "ranking",
    "stacked",
    "toy_distribution",
    "trace",
    "use_style",
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
    names: Sequence[str] | Any,
    values: Sequence[float] | None = None,
    errors: Sequence[float] | None = None,
    *,
    ax: Any = None,
) -> Any:
    """Pulls (θ̂ − θ₀)/σ₀ of constrained nuisances, error bars = constraints σ̂/σ₀.

    A bar shorter than the green ±1 band means the data constrain the
    parameter beyond its prior width. Pass ``names, values, errors`` already in
    units of the pre-fit width, or a :class:`hepprob.infer.diagnostics.Pulls`
    (``plot.pulls(diagnostics.pulls(data, model))``).
    """
    if values is None and hasattr(names, "pulls"):
        names, values, errors = names.names, names.pulls, names.constraints
    vals = np.asarray(values, dtype=float)
    errs = np.asarray(errors, dtype=float)
    if not (len(names) == vals.size == errs.size):
        msg = "pulls: names, values and errors must have the same length"
        raise DataError(msg)
    y = np.arange(vals.size)[::-1]
    ax = _axes(ax)
    ax.axvspan(-2, 2, color="yellow", label=r"$\pm2\sigma_0$")
    ax.axvspan(-1, 1, color="limegreen", label=r"$\pm1\sigma_0$")
    ax.axvline(0.0, color="k", lw=0.8)
    ax.errorbar(vals, y, xerr=errs, fmt="ko", ms=4, label="pull ± constraint")
    ax.set_yticks(y, list(names))
    ax.set_xlim(
        min(-2.5, float(np.min(vals - errs)) - 0.2),
        max(2.5, float(np.max(vals + errs)) + 0.2),
    )
    ax.set_xlabel(r"$(\hat\theta-\theta_0)/\sigma_0$")
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


def use_style(name: str = "ROOT") -> bool:
    """Switch matplotlib to mplhep's HEP style ``name`` when mplhep is installed.

    Returns whether the style was applied (False without mplhep: matplotlib's
    defaults stay).
    """
    try:
        import mplhep
    except ImportError:
        return False
    mplhep.style.use(name)
    return True


def stacked(
    edges: Sequence[float] | np.ndarray,
    samples: dict[str, Sequence[float] | np.ndarray],
    data: Sequence[float] | np.ndarray | None = None,
    *,
    error: Sequence[float] | np.ndarray | None = None,
    title: str = "",
    xlabel: str = "bin",
    colors: dict[str, str] | None = None,
    axes: tuple[Any, Any] | None = None,
) -> tuple[Any, Any]:
    """Samples stacked as filled histograms, the total's uncertainty band, data.

    The lower panel shows data / prediction with the band's relative width.

    Args:
        edges: bin edges, shape (n + 1,).
        samples: ``{name: yields}``, each shape (n,); stacked in the order given.
        data: observed counts, shape (n,), drawn with √N error bars.
        error: uncertainty of the total prediction per bin (hatched band).
        title: text in the upper panel (e.g. channel name, "pre-fit").
        xlabel: label of the x axis.
        colors: ``{sample: colour}`` (default: the colour cycle in order).
        axes: (main, ratio) axes; new ones are made when absent.

    Returns:
        The (main, ratio) axes.
    """
    edges = np.asarray(edges, dtype=float)
    n = edges.size - 1
    yields = {k: np.asarray(v, dtype=float) for k, v in samples.items()}
    if n < 1 or any(v.shape != (n,) for v in yields.values()):
        shapes = {k: v.shape for k, v in yields.items()}
        msg = f"stacked: need {n} yields per sample for {n + 1} edges, got {shapes}"
        raise DataError(msg)
    if axes is None:
        _, axes = _pyplot().subplots(
            2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]}
        )
    main, ratio_ax = axes
    bottom = np.zeros(n)
    for i, (name, y) in enumerate(yields.items()):
        main.stairs(
            bottom + y,
            edges,
            baseline=bottom,
            fill=True,
            color=(colors or {}).get(name, f"C{i}"),
            label=name,
        )
        bottom = bottom + y
    total = bottom
    main.stairs(total, edges, color="k", lw=1)
    if error is not None:
        err = np.asarray(error, dtype=float)
        main.stairs(
            total + err,
            edges,
            baseline=total - err,
            fill=False,
            hatch="///",
            color="gray",
            lw=0,
            label="uncertainty",
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(total > 0, err / total, 0.0)
        ratio_ax.stairs(
            1 + rel, edges, baseline=1 - rel, fill=True, color="gray", alpha=0.4
        )
    centres = 0.5 * (edges[1:] + edges[:-1])
    if data is not None:
        obs = np.asarray(data, dtype=float)
        main.errorbar(centres, obs, yerr=np.sqrt(obs), fmt="ko", ms=4, label="data")
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(total > 0, obs / total, np.nan)
            ratio_err = np.where(total > 0, np.sqrt(obs) / total, np.nan)
        ratio_ax.errorbar(centres, ratio, yerr=ratio_err, fmt="ko", ms=4)
    ratio_ax.axhline(1.0, color="k", lw=0.8)
    ratio_ax.set_ylabel("data / pred.")
    ratio_ax.set_xlabel(xlabel)
    main.set_ylabel("events")
    if title:
        main.set_title(title)
    main.legend()
    return main, ratio_ax


def _linear_band(fn: Callable[[Any], Any], pars: np.ndarray, cov: np.ndarray) -> Any:
    """√diag(J Σ Jᵀ) of ``fn`` at ``pars`` (J by forward-mode autodiff)."""
    import jax
    import jax.numpy as jnp

    jac = np.asarray(jax.jacfwd(fn)(jnp.asarray(pars, dtype=jnp.float64)))
    return np.sqrt(np.clip(np.einsum("...i,ij,...j->...", jac, cov, jac), 0, None))


def channel_stacks(
    model: Any,
    data: Sequence[float] | np.ndarray,
    pars: Sequence[float] | np.ndarray | None = None,
    covariance: np.ndarray | None = None,
    *,
    edges: dict[str, Sequence[float]] | None = None,
) -> dict[str, tuple[Any, Any]]:
    """Stacked sample yields of each channel of a HistFactory model, with data.

    Pre-fit (``pars=None``): yields at the suggested start values, band from
    the pre-fit widths of the constrained parameters (free ones contribute
    nothing). Post-fit: pass the fitted ``pars`` and their ``covariance``
    (e.g. from ``hepprob.fit(model.numpyro_model(), data)``: ``result.x`` and
    ``result.covariance`` are in ``model.config.par_names`` order). The band
    is the linear propagation √diag(J Σ Jᵀ) of the total yield per bin.

    Args:
        model: a :class:`hepprob.histfactory.Model`.
        data: main (+ auxiliary) data; the main bins are drawn.
        pars, covariance: the parameter point and its covariance.
        edges: bin edges per channel (default: bin numbers 0..n).

    Returns:
        ``{channel: (main, ratio)}`` axes, one figure per channel.
    """
    import jax.numpy as jnp

    cfg = model.config
    if pars is None:
        from hepprob.infer.diagnostics import prefit_widths

        pars = np.asarray(cfg.suggested_init(), dtype=float)
        widths = np.nan_to_num(prefit_widths(model), nan=0.0)
        covariance = np.diag(widths**2)
        stage = "pre-fit"
    else:
        pars = np.asarray(pars, dtype=float)
        covariance = (
            np.zeros((pars.size, pars.size))
            if covariance is None
            else np.asarray(covariance, dtype=float)
        )
        stage = "post-fit"

    def by_sample(p: Any) -> Any:
        return jnp.asarray(model.main_model.expected_data(p, return_by_sample=True))

    def total(p: Any) -> Any:
        return jnp.sum(by_sample(p), axis=0)

    yields = np.asarray(by_sample(jnp.asarray(pars)))
    band = _linear_band(total, pars, covariance)
    main_data = np.asarray(data, dtype=float)[: cfg.nmaindata]
    out = {}
    for channel in cfg.channels:
        sl = cfg.channel_slices[channel]
        nbins = sl.stop - sl.start
        e = (
            np.arange(nbins + 1.0)
            if not edges or channel not in edges
            else edges[channel]
        )
        samples = {
            s: yields[i, sl] for i, s in enumerate(cfg.samples) if np.any(yields[i, sl])
        }
        out[channel] = stacked(
            e,
            samples,
            main_data[sl],
            error=band[sl],
            title=f"{channel} ({stage})",
            colors={s: f"C{i}" for i, s in enumerate(cfg.samples)},
        )
    return out


def asymptotic_density(
    q: np.ndarray, *, test_stat: str, poi: float, truth: float, sigma: float
) -> np.ndarray:
    r"""Continuous part of the asymptotic density of a test statistic, q > 0.

    Cowan, Cranmer, Gross, Vitells, EPJC 71 (2011) 1554, arXiv:1007.1727:
    with :math:`\Lambda = (\mu - \mu')/\sigma` (``poi`` = μ tested, ``truth`` = μ′)

    * ``"q"`` (eq. 57) and ``"q0"`` (eq. 49, μ = 0, Λ = −μ′/σ):
      :math:`f(q) = \frac{1}{2\sqrt{2\pi q}} e^{-(\sqrt q - \Lambda)^2/2}`;
    * ``"qtilde"`` (eq. 65): the same for :math:`q \le \mu^2/\sigma^2`, and
      :math:`\frac{\sigma}{2\mu\sqrt{2\pi}}
      \exp\!\big(-\frac{(q - (\mu^2 - 2\mu\mu')/\sigma^2)^2}{2(2\mu/\sigma)^2}\big)`
      above.

    The discrete part, a mass Φ(Λ) at q = 0 (eq. 56), is not included.
    """
    q = np.asarray(q, dtype=float)
    lam = (poi - truth) / sigma
    if test_stat == "q0":
        lam = -truth / sigma
    with np.errstate(divide="ignore", invalid="ignore"):
        low = np.exp(-0.5 * (np.sqrt(q) - lam) ** 2) / (2 * np.sqrt(2 * np.pi * q))
    if test_stat in ("q", "q0"):
        return low
    if test_stat != "qtilde":
        msg = f"asymptotic_density: test_stat must be 'q0', 'q' or 'qtilde', got {test_stat!r}"
        raise DataError(msg)
    cut = (poi / sigma) ** 2
    width = 2 * poi / sigma
    centre = (poi**2 - 2 * poi * truth) / sigma**2
    high = np.exp(-0.5 * ((q - centre) / width) ** 2) / (np.sqrt(2 * np.pi) * width)
    return np.where(q <= cut, low, high)


def toy_distribution(
    toys: dict[str, Sequence[float] | np.ndarray],
    *,
    test_stat: str = "qtilde",
    poi: float = 1.0,
    sigma: float | None = None,
    observed: float | None = None,
    bins: int = 40,
    ax: Any = None,
) -> Any:
    """Toy distributions of a test statistic with the asymptotic densities on top.

    Args:
        toys: ``{label: values}``; labels ``"s+b"`` (toys at μ = ``poi``) and
            ``"b"`` (toys at μ = 0) get the asymptotic curve of that hypothesis.
        test_stat: ``"q0"``, ``"q"`` or ``"qtilde"`` (see :func:`asymptotic_density`).
        poi: the tested POI value μ.
        sigma: σ of μ̂ (e.g. ``poi / sqrt(q_asimov)``); without it only the
            curve under the tested hypothesis is drawn, which needs none for q
            and q0 (½χ²₁) and, for qtilde, is taken in the limit σ → 0.
        observed: the observed value, drawn as a vertical line.
        bins: histogram bins (between 0 and the largest toy value).
        ax: axes to draw on.

    The histograms are densities (each toy weighs 1/(N·bin width)); the toys at
    q = 0 make up the discrete part and sit in the first bin. Log y scale.
    """
    ax = _axes(ax)
    arrays = {k: np.asarray(v, dtype=float) for k, v in toys.items()}
    finite = np.concatenate([a[np.isfinite(a)] for a in arrays.values()])
    if finite.size == 0:
        msg = "toy_distribution: no finite toy values"
        raise DataError(msg)
    top = max(float(finite.max()), float(observed or 0.0), 1.0)
    edges = np.linspace(0.0, top, bins + 1)
    for i, (label, a) in enumerate(arrays.items()):
        a = a[np.isfinite(a)]
        weights = np.full(a.size, 1.0 / (a.size * (edges[1] - edges[0])))
        ax.hist(
            a,
            bins=edges,
            weights=weights,
            histtype="step",
            color=f"C{i}",
            label=f"toys {label} ({a.size})",
        )
    grid = np.linspace(edges[1] * 0.05, top, 400)
    truths = {
        "s+b": poi if test_stat != "q0" else 0.0,
        "b": 0.0 if test_stat != "q0" else poi,
    }
    for i, label in enumerate(arrays):
        if label not in truths:
            continue
        truth = truths[label]
        tested = truth == (0.0 if test_stat == "q0" else poi)
        if sigma is None and not tested:
            continue
        s = sigma if sigma is not None else 1e-9 * max(abs(poi), 1.0)
        curve = asymptotic_density(
            grid, test_stat=test_stat, poi=poi, truth=truth, sigma=s
        )
        ax.plot(grid, curve, f"C{i}--", label=f"asymptotic {label}")
    if observed is not None:
        ax.axvline(observed, color="k", lw=1.5, label="observed")
    ax.set_yscale("log")
    ax.set_xlabel({"q0": r"$q_0$", "q": r"$q_\mu$"}.get(test_stat, r"$\tilde q_\mu$"))
    ax.set_ylabel("density")
    ax.legend()
    return ax


def contour(
    contours: dict[str, tuple[Sequence[float], Sequence[float]]],
    *,
    best: tuple[float, float] | None = None,
    xlabel: str = "x",
    ylabel: str = "y",
    ax: Any = None,
) -> Any:
    """2-D confidence contours drawn as closed lines through the given points.

    Args:
        contours: ``{label: (x_points, y_points)}``, e.g.
            ``{"68%": result.contour("a", "b", cl=0.68)}`` as (x, y) arrays.
        best: the best-fit point, drawn as a marker.
        xlabel, ylabel: axis labels (the parameter names).
        ax: axes to draw on.
    """
    ax = _axes(ax)
    for i, (label, pts) in enumerate(contours.items()):
        x, y = (np.asarray(v, dtype=float) for v in pts)
        if x.shape != y.shape or x.ndim != 1 or x.size < 3:
            msg = f"contour {label!r}: need two 1-D arrays of equal length >= 3"
            raise DataError(msg)
        ax.plot(np.append(x, x[0]), np.append(y, y[0]), f"C{i}-", label=label)
    if best is not None:
        ax.plot([best[0]], [best[1]], "k+", ms=10, label="best fit")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend()
    return ax
