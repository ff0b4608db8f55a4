"""Asymptotic distributions of profile-likelihood test statistics, Asimov data, CLs."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import log_ndtr, ndtr

from hepprob._program_cache import on_clear
from hepprob._typing import Array, ArrayLike
from hepprob.errors import ParameterError

__all__ = [
    "EXPECTED_NSIGMA",
    "AsimovStage",
    "asimov_mu",
    "fixed_fits",
    "log_cls",
    "sqrt_stats",
    "stage_fits",
    "tail",
    "TEST_STATS",
    "asymptotic_pvalues",
    "check_asimov_poi",
    "expected_pvalues",
    "generate_asimov_data",
    "sqrt_teststat_to_t",
]

# The test statistics understood by the asymptotic calculator (pyhf's names).
TEST_STATS = ("q0", "q", "qtilde")

# Points of the expected band, in the order pyhf 0.7 returns them: the first entry
# is the lowest expected CLs (the "-2 sigma" edge of the Brazil band).
EXPECTED_NSIGMA = (2.0, 1.0, 0.0, -1.0, -2.0)


def sqrt_teststat_to_t(
    sqrtq: ArrayLike, sqrtq_asimov: ArrayLike, test_stat: str
) -> Array:
    r"""Map :math:`\sqrt{q}` and :math:`\sqrt{q_A}` to a standard-normal variable.

    For :math:`q_\mu` and :math:`q_0` (Cowan et al., Eur. Phys. J. C 71 (2011) 1554,
    arXiv:1007.1727, eqs. (53) and (56)) :math:`t = \sqrt{q} - \sqrt{q_A}`. For
    :math:`\tilde q_\mu` the distribution has two branches (eq. (65)):

    .. math::
        t = \begin{cases} \sqrt{\tilde q} - \sqrt{q_A}, &
        \tilde q \le q_A \\ (\tilde q - q_A) / (2\sqrt{q_A}), & \tilde q > q_A
        \end{cases}

    Under the background-only hypothesis :math:`t` is standard normal; under the
    tested signal hypothesis :math:`t + \sqrt{q_A}` is. This is the convention of
    pyhf 0.7's ``AsymptoticCalculator``, so p-values agree with it exactly.

    Args:
        sqrtq: square root of the observed test statistic.
        sqrtq_asimov: square root of the test statistic on the Asimov dataset.
        test_stat: ``"q0"``, ``"q"`` or ``"qtilde"``.
    """
    _check_test_stat(test_stat)
    sqrtq = jnp.asarray(sqrtq, dtype=jnp.float64)
    sqrtq_asimov = jnp.asarray(sqrtq_asimov, dtype=jnp.float64)
    t_low = sqrtq - sqrtq_asimov
    if test_stat != "qtilde":
        return t_low
    # second branch only where sqrtq > sqrtq_asimov > 0, so the divisor is safe;
    # at q_A = 0 (mu equal to the background value) signal and background
    # coincide and the first branch gives CL_s = 1, as pyhf does
    upper_branch = (sqrtq > sqrtq_asimov) & (sqrtq_asimov > 0.0)
    safe_den = jnp.where(upper_branch, 2.0 * sqrtq_asimov, 1.0)
    t_high = (sqrtq**2 - sqrtq_asimov**2) / safe_den
    return jnp.where(upper_branch, t_high, t_low)


def asymptotic_pvalues(
    sqrtq: ArrayLike, sqrtq_asimov: ArrayLike, test_stat: str = "qtilde"
) -> tuple[Array, Array, Array]:
    r"""Observed tail probabilities :math:`(\mathrm{CL}_{s+b}, \mathrm{CL}_b, \mathrm{CL}_s)`.

    With :math:`t` from :func:`sqrt_teststat_to_t`,

    .. math::
        \mathrm{CL}_{s+b} = \Phi(-(t + \sqrt{q_A})), \quad
        \mathrm{CL}_b = \Phi(-t), \quad
        \mathrm{CL}_s = \mathrm{CL}_{s+b} / \mathrm{CL}_b,

    which are eqs. (59) and (66) of arXiv:1007.1727 for :math:`q_\mu` and
    :math:`\tilde q_\mu`; for :math:`q_0`, :math:`\mathrm{CL}_{s+b}` is the discovery
    p-value :math:`p_0 = 1 - \Phi(\sqrt{q_0})` (eq. (53)). Broadcasts.
    """
    t = sqrt_teststat_to_t(sqrtq, sqrtq_asimov, test_stat)
    sqrtq_asimov = jnp.asarray(sqrtq_asimov, dtype=jnp.float64)
    clsb = ndtr(-(t + sqrtq_asimov))
    clb = ndtr(-t)
    # the ratio in log space stays finite where both tails underflow
    cls = jnp.exp(log_ndtr(-(t + sqrtq_asimov)) - log_ndtr(-t))
    return clsb, clb, cls


def expected_pvalues(sqrtq_asimov: ArrayLike) -> tuple[Array, Array, Array]:
    r"""Expected :math:`(\mathrm{CL}_{s+b}, \mathrm{CL}_b, \mathrm{CL}_s)` at the band points.

    The median and :math:`\pm1, \pm2\sigma` expectations under the background
    hypothesis take :math:`t = N` for :math:`N` in :data:`EXPECTED_NSIGMA`
    (arXiv:1007.1727, eq. (89) and Sec. 4.3), giving
    :math:`\mathrm{CL}_s = \Phi(-(N + \sqrt{q_A})) / \Phi(-N)`.

    Returns:
        Three arrays of shape ``(*batch, 5)``, ordered as :data:`EXPECTED_NSIGMA`.
    """
    sqrtq_asimov = jnp.asarray(sqrtq_asimov, dtype=jnp.float64)[..., None]
    n = jnp.asarray(EXPECTED_NSIGMA, dtype=jnp.float64)
    clsb = ndtr(-(n + sqrtq_asimov))
    clb = jnp.broadcast_to(ndtr(-n), clsb.shape)
    cls = jnp.exp(log_ndtr(-(n + sqrtq_asimov)) - log_ndtr(-n))
    return clsb, clb, cls


def generate_asimov_data(
    asimov_mu: float,
    data: ArrayLike,
    model: Any,
    init_pars: Sequence[float] | None = None,
    par_bounds: Sequence[Sequence[float]] | None = None,
    fixed_params: Sequence[bool] | None = None,
    return_fitted_pars: bool = False,
) -> Array | tuple[Array, Array]:
    r"""The Asimov dataset of a HistFactory model at POI value ``asimov_mu``.

    The nuisance parameters are profiled on the observed data with the POI fixed
    to ``asimov_mu``, and the expected main and auxiliary data at that point form
    the Asimov dataset (arXiv:1007.1727, Sec. 3.2; the construction of pyhf 0.7).

    Args:
        asimov_mu: POI value of the Asimov hypothesis (0 for limits, 1 for q0).
        data: observed main + auxiliary data.
        model: a HistFactory ``Model``.
        init_pars, par_bounds, fixed_params: as :func:`hepprob.infer.mle.fit`.
        return_fitted_pars: also return the profiled parameters.
    """
    from hepprob.infer import mle

    pars = mle.fixed_poi_fit(
        asimov_mu, data, model, init_pars, par_bounds, fixed_params
    )
    asimov = jnp.asarray(model.expected_data(pars), dtype=jnp.float64)
    if return_fitted_pars:
        return asimov, pars
    return asimov


class AsimovStage(NamedTuple):
    """The POI-independent fits of an asymptotic test (one per dataset and model)."""

    free_data: Array  # best fit to the data, (npars,)
    twice_nll_data: Array  # its -2 ln L
    asimov_pars: Array  # fixed-POI fit defining the Asimov dataset
    asimov_data: Array  # expected main + aux data there
    free_asimov: Array  # best fit to the Asimov dataset
    twice_nll_asimov: Array
    status: Array  # (2,) FitStatus codes of the two fits


def asimov_mu(test_stat: str) -> float:
    """POI value of the Asimov (background) hypothesis: 0, or 1 for ``q0`` (pyhf)."""
    return 1.0 if test_stat == "q0" else 0.0


def stage_fits(eng: Any, setup: Any, mu_asimov: float) -> AsimovStage:
    """The POI-independent fits of an asymptotic test, as one batched call.

    The free fit to the data and the fit with the POI at ``mu_asimov``, whose
    expected data are the Asimov dataset. The best fit to an Asimov dataset is,
    by construction, the point that generated it (every Poisson and Gaussian
    term is maximal where its mean equals the datum), so it is taken exactly
    instead of being fitted.
    """
    from hepprob.infer.mle import Setup
    from hepprob.infer.test_statistics import fixed_rows

    poi = eng.poi_index()
    fixed_row = fixed_rows(*setup[1:], poi, [mu_asimov])
    rows = Setup(
        np.tile(setup.data, (2, 1)),
        *(
            np.concatenate([a[None], b])
            for a, b in zip(setup[1:], fixed_row, strict=True)
        ),
    )
    fits = eng.run_rows(rows)
    xs, fs = fits.x, fits.twice_nll
    asimov = np.asarray(eng.model.expected_data(xs[1]), dtype=np.float64)
    # -2 ln L at the Asimov point: a "fit" with every parameter fixed, so the
    # compiled fit program serves (one iteration) instead of a new one
    f_asimov = eng.evaluate(asimov, xs[1]).twice_nll
    return AsimovStage(xs[0], fs[0], xs[1], asimov, xs[1], f_asimov[0], fits.status)


def fixed_fits(
    eng: Any, setup: Any, stage: AsimovStage, mus_data: ArrayLike, mus_asimov: ArrayLike
) -> Any:
    """Fixed-POI fits to the data at ``mus_data`` and to the Asimov data at ``mus_asimov``.

    All rows go in one batched call (each row with its own dataset). Data fits
    start from the fit settings, as pyhf's; Asimov fits from the parameters
    that generated the Asimov dataset, a point near their minimum.

    Returns:
        A :class:`~hepprob.infer._batch.BatchFit`, data rows first.
    """
    from hepprob.infer.mle import Setup
    from hepprob.infer.test_statistics import fixed_rows

    poi = eng.poi_index()
    mus_d = np.atleast_1d(np.asarray(mus_data, dtype=np.float64))
    mus_a = np.atleast_1d(np.asarray(mus_asimov, dtype=np.float64))
    n_d, n_a = mus_d.shape[0], mus_a.shape[0]
    on_data = fixed_rows(*setup[1:], poi, mus_d)
    on_asimov = fixed_rows(stage.asimov_pars, *setup[2:], poi, mus_a)
    datas = np.concatenate(
        [np.tile(setup.data, (n_d, 1)), np.tile(stage.asimov_data, (n_a, 1))]
    )
    rows = Setup(
        datas,
        *(np.concatenate([a, b]) for a, b in zip(on_data, on_asimov, strict=True)),
    )
    return eng.run_rows(rows)


def sqrt_stats(
    test_stat: str,
    stage: AsimovStage,
    twice_nll_fixed: Array,
    mus_data: Array,
    mus_asimov: Array,
    poi: int,
) -> tuple[Array, Array]:
    r""":math:`\sqrt{q}` at ``mus_data`` and :math:`\sqrt{q_A}` at ``mus_asimov``.

    ``twice_nll_fixed`` holds the fixed-POI fits of :func:`fixed_fits` (data rows
    first). Traceable, and cheap enough to run eagerly.
    """
    from hepprob.infer.test_statistics import stat_from_fits

    name = {"q": "qmu", "qtilde": "qmu_tilde", "q0": "q0"}[test_stat]
    n_d = jnp.shape(mus_data)[0]
    q = stat_from_fits(
        name,
        twice_nll_fixed[:n_d],
        stage.twice_nll_data,
        stage.free_data[poi],
        mus_data,
    )
    q_a = stat_from_fits(
        name,
        twice_nll_fixed[n_d:],
        stage.twice_nll_asimov,
        stage.free_asimov[poi],
        mus_asimov,
    )
    return _clip_sqrt(q), _clip_sqrt(q_a)


class Tail(NamedTuple):
    """Host results of :func:`tail`: statistics, observed and expected p-values."""

    sqrtq: np.ndarray  # at mus_data
    sqrtq_asimov: np.ndarray  # at mus_asimov
    observed: tuple[np.ndarray, np.ndarray, np.ndarray]  # (CLsb, CLb, CLs) at mus_data
    log_cls: np.ndarray  # ln CLs at mus_data
    expected: tuple[np.ndarray, np.ndarray, np.ndarray]  # at mus_asimov, (..., 5)


def tail(
    test_stat: str,
    stage: AsimovStage,
    twice_nll_fixed: ArrayLike,
    mus_data: ArrayLike,
    mus_asimov: ArrayLike,
    poi: int,
) -> Tail:
    """Everything after the fits of an asymptotic test, as one compiled program.

    The observed quantities pair ``mus_data[i]`` with ``mus_asimov[i]``
    (``mus_asimov`` may be longer: the observed values need only its first
    ``len(mus_data)``). Run eagerly, these few dozen small operations would
    each compile on first use of a shape.
    """
    mus_d = np.atleast_1d(np.asarray(mus_data, dtype=np.float64))
    mus_a = np.atleast_1d(np.asarray(mus_asimov, dtype=np.float64))
    fs = np.asarray(twice_nll_fixed, dtype=np.float64)
    n_d, n_a = mus_d.size, mus_a.size
    # padded to a few lengths (edge values repeated): a scan and a hypotest
    # of any size share a handful of compiled tails
    size = max(32, 1 << (max(n_d, n_a) - 1).bit_length())

    def pad(a: np.ndarray) -> np.ndarray:
        return np.pad(a, (0, size - a.size), mode="edge")

    fs_pad = np.concatenate([pad(fs[:n_d]), pad(fs[n_d:])])
    out = _tail_program(test_stat, poi)(stage, fs_pad, pad(mus_d), pad(mus_a))
    sq, sqa, obs, lcls, exp = jax.tree_util.tree_map(np.asarray, tuple(out))
    return Tail(
        sq[:n_d],
        sqa[:n_a],
        tuple(v[:n_d] for v in obs),  # type: ignore[arg-type]
        lcls[:n_d],
        tuple(v[:n_a] for v in exp),  # type: ignore[arg-type]
    )


@on_clear
@functools.cache
def _tail_program(test_stat: str, poi: int) -> Any:
    def program(stage, fs, mus_d, mus_a):  # type: ignore[no-untyped-def]
        sq, sqa = sqrt_stats(test_stat, stage, fs, mus_d, mus_a, poi)
        pair = sqa  # padded to the same length as sq
        return Tail(
            sq,
            sqa,
            asymptotic_pvalues(sq, pair, test_stat),
            log_cls(sq, pair, test_stat),
            expected_pvalues(sqa),
        )

    return jax.jit(program)


def log_cls(sqrtq: Array, sqrtq_asimov: Array, test_stat: str) -> Array:
    r""":math:`\ln \mathrm{CL}_s` from the same formulas as :func:`asymptotic_pvalues`.

    Computed with ``log_ndtr``, so it stays finite far in the tails (limit search).
    """
    t = sqrt_teststat_to_t(sqrtq, sqrtq_asimov, test_stat)
    return log_ndtr(-(t + sqrtq_asimov)) - log_ndtr(-t)


def check_asimov_poi(test_stat: str, lower: float, upper: float) -> None:
    """The background POI (0; 1 for ``q0``) must lie within the POI bounds, as in pyhf."""
    value = 1.0 if test_stat == "q0" else 0.0
    if not lower <= value <= upper:
        msg = (
            f"par_bounds: the POI bounds [{lower}, {upper}] must contain the "
            f"background-hypothesis value {value} of test_stat={test_stat!r}"
        )
        raise ParameterError(msg)


def _check_test_stat(test_stat: str) -> None:
    if test_stat not in TEST_STATS:
        msg = f"test_stat must be one of {TEST_STATS}, got {test_stat!r}"
        raise ParameterError(msg)


def _clip_sqrt(q: Array) -> Array:
    """``sqrt(max(q, 0))`` with a finite gradient at zero."""
    q = jnp.maximum(q, 0.0)
    safe = jnp.where(q > 0.0, q, 1.0)
    return jnp.where(q > 0.0, jnp.sqrt(safe), 0.0)
