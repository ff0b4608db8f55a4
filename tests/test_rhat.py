"""hepprob's vectorised R-hat against ArviZ's own ``rhat`` (method="rank")."""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pytest

from hepprob._rhat import rank_rhat


def _arviz_rhat(x: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():  # ArviZ warns on the constant entry
        warnings.simplefilter("ignore", RuntimeWarning)
        return az.rhat(az.convert_to_dataset({"a": x}), method="rank")["a"].values


@pytest.mark.parametrize("draws", [500, 501])
def test_rank_rhat_equals_arviz(draws: int) -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(4, draws, 3, 2))
    x[1] += 1.0  # one chain off: r_hat well above 1
    x[..., 0, 1] = np.round(x[..., 0, 1])  # ties
    x[..., 1, 0] = rng.standard_cauchy(size=(4, draws))  # heavy tails
    x[0, 3, 1, 1] = np.inf
    x[..., 2, 0] = 1.5  # constant: NaN in both
    ours, ref = rank_rhat(x), _arviz_rhat(x)
    np.testing.assert_allclose(ours, ref, rtol=1e-12, equal_nan=True)
    assert np.isnan(ours[2, 0])
    assert ours[0, 0] > 1.05


def test_rank_rhat_of_too_few_draws_is_nan() -> None:
    x = np.random.default_rng(0).normal(size=(2, 3))
    assert np.isnan(rank_rhat(x))
    assert np.isnan(_arviz_rhat(x))
