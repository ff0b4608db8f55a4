"""Rank-normalised split R-hat for many parameters at once, in NumPy.

The convergence check after every multi-chain run: ``arviz.rhat`` computes the
same statistic one variable at a time through xarray, which costs more than
sampling a small model. Formulas from Vehtari, Gelman, Simpson, Carpenter and
Bürkner, "Rank-normalization, folding, and localization: an improved R-hat",
Bayesian Analysis 16 (2021) 667, eqs. 3-4 and section 4.
"""

from __future__ import annotations

import numpy as np
import scipy.special
import scipy.stats

__all__ = ["rank_rhat"]


def rank_rhat(draws: np.ndarray) -> np.ndarray:
    """Max of bulk and tail rank-normalised split R-hat per entry.

    Args:
        draws: shape ``(chain, draw, ...)``; at least 2 chains and 4 draws.

    Returns:
        Shape ``draws.shape[2:]``; NaN where an entry is constant or has a NaN draw.
    """
    draws = np.asarray(draws, dtype=np.float64)
    chains, n = draws.shape[:2]
    if chains < 2 or n < 4:
        return np.full(draws.shape[2:], np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _rank_rhat(draws.reshape(chains, n, -1)).reshape(draws.shape[2:])


def _rank_rhat(flat: np.ndarray) -> np.ndarray:
    n = flat.shape[1]
    half = n // 2
    split = np.concatenate([flat[:, :half], flat[:, n - half :]], axis=0)
    folded = np.abs(split - np.median(split, axis=(0, 1)))
    out = np.maximum(_rhat(_z_scale(split)), _rhat(_z_scale(folded)))
    constant = np.all(flat == flat[:1, :1], axis=(0, 1))
    out[np.any(np.isnan(flat), axis=(0, 1)) | constant] = np.nan
    return out


def _z_scale(x: np.ndarray) -> np.ndarray:
    """Normal scores of the pooled ranks (average ranks for ties), eq. 3."""
    m, n, k = x.shape
    ranks = scipy.stats.rankdata(x.reshape(m * n, k), axis=0).reshape(m, n, k)
    return scipy.special.ndtri((ranks - 0.375) / (m * n + 0.25))


def _rhat(x: np.ndarray) -> np.ndarray:
    """Classic R-hat of chains ``x[chain, draw, entry]`` (eq. 4)."""
    n = x.shape[1]
    between = n * np.var(np.mean(x, axis=1), axis=0, ddof=1)
    within = np.mean(np.var(x, axis=1, ddof=1), axis=0)
    return np.sqrt((between / within + n - 1) / n)
