"""Toy-based CLs for HistFactory models: jax.random pseudo-data, one vmapped fit program."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from hepprob._typing import Array, PRNGKey
from hepprob.errors import ModelError, ParameterError
from hepprob.infer import asymptotics, mle
from hepprob.infer.test_statistics import _host_stat, profile_rows

__all__ = ["sample_data", "toy_pvalues"]

# Normal-distribution percentiles of the -2..+2 sigma expected band (pyhf's order).
_BAND_PERCENTILES = 100.0 * np.array(
    [0.022750131948179, 0.158655253931457, 0.5, 0.841344746068543, 0.977249868051821]
)

_NAMES = {"q": "qmu", "qtilde": "qmu_tilde", "q0": "q0"}


def sample_data(eng: mle.Engine, pars: Array, key: PRNGKey, n: int) -> Array:
    """``n`` pseudo-datasets (main + auxiliary) of the model at ``pars``.

    Main data are Poisson around ``expected_data(pars, include_auxdata=False)``;
    each auxiliary datum is drawn from its constraint term, Normal(expected,
    sigma) or Poisson(expected), as in the HistFactory likelihood. hepprob
    models use their :class:`hepprob.histfactory.HistFactory` distribution;
    other pyhf-like models are read through their config.
    """
    from hepprob.histfactory import HistFactory, Model

    if isinstance(eng.model, Model):
        return HistFactory(eng.model, pars).sample(key, (n,))
    n_main, _ = eng.sizes()
    is_poisson, sigma = aux_layout(eng)
    expected = eng.expected(pars)
    k_main, k_pois, k_norm = jax.random.split(key, 3)
    lam_main = jnp.maximum(expected[:n_main], 0.0)
    main = jax.random.poisson(k_main, lam_main, (n, n_main)).astype(jnp.float64)
    aux_mean = expected[n_main:]
    n_aux = aux_mean.shape[0]
    pois = jax.random.poisson(k_pois, jnp.maximum(aux_mean, 0.0), (n, n_aux))
    gaus = aux_mean + sigma * jax.random.normal(k_norm, (n, n_aux), dtype=jnp.float64)
    aux = jnp.where(is_poisson, pois.astype(jnp.float64), gaus)
    return jnp.concatenate([main, aux], axis=1)


def aux_layout(eng: mle.Engine) -> tuple[Array, Array]:
    """Per auxiliary datum: Poisson-constrained flag and the Normal width.

    Read from the model's config (``auxdata_order`` and ``param_set(name)`` with
    ``pdf_type`` and ``sigmas``), the layout pyhf and hepprob models share.
    """
    cached = getattr(eng, "_aux_layout", None)
    if cached is not None:
        return cached
    cfg = eng.model.config
    flags: list[bool] = []
    widths: list[float] = []
    try:
        for name in cfg.auxdata_order:
            pset = cfg.param_set(name)
            n = int(pset.n_parameters)
            kind = str(pset.pdf_type)
            if kind == "poisson":
                flags += [True] * n
                widths += [1.0] * n
            elif kind == "normal":
                sig = getattr(pset, "sigmas", None)
                flags += [False] * n
                widths += list(
                    np.broadcast_to(np.asarray(sig if sig is not None else 1.0), n)
                )
            else:
                msg = f"toys: unknown constraint type {kind!r} of parameter {name!r}"
                raise ModelError(msg)
    except AttributeError as err:
        msg = (
            "calctype='toybased' needs the model's constraint layout "
            f"(config.auxdata_order and config.param_set): {err}"
        )
        raise ModelError(msg) from None
    _, n_total = eng.sizes()
    n_main = eng.sizes()[0]
    if len(flags) != n_total - n_main:
        msg = (
            f"toys: constraint layout has {len(flags)} auxiliary data, the model "
            f"{n_total - n_main}"
        )
        raise ModelError(msg)
    layout = (jnp.asarray(flags), jnp.asarray(widths, dtype=jnp.float64))
    eng._aux_layout = layout  # type: ignore[attr-defined]
    return layout


def toy_pvalues(
    eng: mle.Engine,
    setup: mle.Setup,
    test_stat: str,
    mu: float,
    ntoys: int,
    seed: int,
) -> tuple[tuple[Array, Array, Array], tuple[Array, Array, Array]]:
    """Observed and expected ``(CLsb, CLb, CLs)`` from pseudo-experiments.

    As pyhf 0.7's ``ToyCalculator``: toys are generated at the nuisances profiled
    on the data with the POI at ``mu`` (s+b) and at 0 (b; 1 for ``q0``); the
    p-values are the fractions of toys with a test statistic at least the
    observed one; the expected band holds percentiles of the p-values of the b
    toys (Read, J. Phys. G 28 (2002) 2693).
    """
    if int(ntoys) != ntoys or ntoys < 1:
        msg = f"ntoys: expected a positive integer, got {ntoys!r}"
        raise ParameterError(msg)
    name = _NAMES[test_stat]
    poi = eng.poi_index()
    bkg_mu = 1.0 if test_stat == "q0" else 0.0
    stat = _host_stat(name)
    # the free fit and the fits at mu and at the background POI are those of the
    # asymptotic calculator
    stage = asymptotics.stage_fits(eng, setup, bkg_mu)
    at_mu = asymptotics.fixed_fits(eng, setup, stage, [mu], [])
    mle.warn_unconverged(
        np.concatenate([stage.status, at_mu.status]), "hypotest (toys)"
    )
    obs_stat = stat(at_mu.twice_nll[0], stage.twice_nll_data, stage.free_data[poi], mu)
    key_sb, key_b = jax.random.split(jax.random.PRNGKey(seed))
    stats, conv = [], []
    # generated and fitted in batches of one size, then cut to ntoys: every
    # ntoys runs the same shapes (no compile after the first toy-based test)
    per_batch = max(eng.max_rows() // 2, 1)
    n_batches = -(-int(ntoys) // per_batch)
    for pars_h, key in ((at_mu.x[0], key_sb), (stage.asimov_pars, key_b)):
        toys = np.concatenate(
            [
                np.asarray(
                    sample_data(eng, pars_h, jax.random.fold_in(key, i), per_batch)
                )
                for i in range(n_batches)
            ]
        )
        f_free, f_fix, muhat, c_h = _toy_fits(eng, setup, mu, toys)
        stats.append(np.asarray(stat(f_fix, f_free, muhat, mu))[:ntoys])
        conv.append(c_h[:ntoys])
    mle.warn_unconverged(np.concatenate(conv), "hypotest (toy fits)")
    sb_stats, b_stats = stats
    obs = _empirical(sb_stats, b_stats, np.asarray(obs_stat)[None])
    clsb_b, clb_b, cls_b = _empirical(sb_stats, b_stats, b_stats)
    exp = tuple(
        jnp.asarray(np.percentile(v, _BAND_PERCENTILES)) for v in (clsb_b, clb_b, cls_b)
    )
    return tuple(jnp.asarray(v[0]) for v in obs), exp  # type: ignore[return-value]


def _empirical(
    sb_stats: np.ndarray, b_stats: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tail fractions P(t >= value) under s+b and b, and their ratio (vectorised)."""
    sb_sorted, b_sorted = np.sort(sb_stats), np.sort(b_stats)
    clsb = 1.0 - np.searchsorted(sb_sorted, values, side="left") / sb_sorted.size
    clb = 1.0 - np.searchsorted(b_sorted, values, side="left") / b_sorted.size
    with np.errstate(divide="ignore", invalid="ignore"):
        cls = clsb / clb
    return clsb, clb, cls


def _toy_fits(
    eng: mle.Engine, setup: mle.Setup, mu: float, toys: np.ndarray
) -> tuple[np.ndarray, ...]:
    """Per toy: ``(-2 ln L free, -2 ln L at mu, muhat, converged)``.

    Two rows per toy (free, POI at ``mu``) in the engine's batched fit program.
    """
    n = toys.shape[0]
    rows = profile_rows(setup, eng.poi_index(), mu)
    tiled = mle.Setup(
        np.repeat(toys, 2, axis=0), *(np.tile(a, (n, 1)) for a in rows[1:])
    )
    fits = eng.run_rows(tiled)
    fs, ok = fits.twice_nll, fits.converged.reshape(n, 2)
    return fs[0::2], fs[1::2], fits.x[0::2, eng.poi_index()], ok[:, 0] & ok[:, 1]
