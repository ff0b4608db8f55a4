"""Asymptotic distributions of profile-likelihood test statistics, Asimov data, CLs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import log_ndtr, ndtr

from hepprob._typing import Array, ArrayLike
from hepprob.errors import ParameterError

__all__ = [
    "EXPECTED_NSIGMA",
    "AsimovStage",
    "asimov_mu",
    "asymptotic_fits",
    "log_cls",
    "sqrt_stats",
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
    # second branch only where sqrtq > sqrtq_asimov >= 0, so the divisor is safe
    upper_branch = sqrtq > sqrtq_asimov
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
    converged: Array  # (2,) flags of the two fits


def asimov_mu(test_stat: str) -> float:
    """POI value of the Asimov (background) hypothesis: 0, or 1 for ``q0`` (pyhf)."""
    return 1.0 if test_stat == "q0" else 0.0


def asymptotic_fits(
    eng: Any,
    data: Array,
    init: Array,
    lower: Array,
    upper: Array,
    fixed: Array,
    mu_asimov: Array,
    mus_data: Array,
    mus_asimov: Array,
) -> tuple[AsimovStage, Array, Array, Array]:
    """Every fit of an asymptotic test, as two rounds of one vmapped batch (traceable).

    Round 1 fits the data: free, POI at ``mu_asimov`` (its expected data are the
    Asimov dataset) and POI at each of ``mus_data``. Round 2 fits the Asimov
    dataset with the POI at each of ``mus_asimov``. Both rounds run the same
    traced batch (rows padded to one size), so the minimiser is compiled once.

    The best fit to an Asimov dataset is, by construction, the point that
    generated it (every Poisson and Gaussian term is maximal where its mean
    equals the datum), so it is taken exactly instead of being fitted.

    Returns:
        The :class:`AsimovStage`, :math:`-2\\ln L` of the fixed-POI fits (the
        ``mus_data`` rows, then the ``mus_asimov`` rows), the parameters of the
        fixed-POI fits to the data, and all convergence flags.
    """
    from hepprob.infer.test_statistics import fixed_rows

    poi = eng.poi_index()
    n_d, n_a = mus_data.shape[0], mus_asimov.shape[0]
    size = max(2 + n_d, n_a)
    pad = jnp.concatenate
    first = fixed_rows(init, lower, upper, fixed, poi, pad([mu_asimov[None], mus_data]))
    first = tuple(
        pad([free[None], rows, jnp.tile(free[None], (size - 1 - rows.shape[0], 1))])
        for free, rows in zip((init, lower, upper, fixed), first, strict=True)
    )
    second = fixed_rows(init, lower, upper, fixed, poi, mus_asimov)
    second = tuple(pad([r, jnp.tile(r[:1], (size - n_a, 1))]) for r in second)
    fits = jax.vmap(eng.fit_core, in_axes=(None, 0, 0, 0, 0))

    def round_(r: Array, carry: tuple[Array, ...]) -> tuple[Array, ...]:
        xs1, fs1, ok1, fs2, ok2 = carry
        asimov = eng.expected(xs1[1])
        rows = tuple(
            jnp.where(r == 0, a, b) for a, b in zip(first, second, strict=True)
        )
        xs, fs, ok = fits(jnp.where(r == 0, data, asimov), *rows)
        is_first = r == 0
        return (
            jnp.where(is_first, xs, xs1),
            jnp.where(is_first, fs, fs1),
            jnp.where(is_first, ok, ok1),
            jnp.where(is_first, fs2, fs),
            jnp.where(is_first, ok2, ok),
        )

    zeros_x = jnp.tile(init[None], (size, 1))
    zeros_f = jnp.zeros(size, dtype=jnp.float64)
    flags = jnp.zeros(size, dtype=bool)
    xs1, fs1, ok1, fs2, ok2 = jax.lax.fori_loop(
        0, 2, round_, (zeros_x, zeros_f, flags, zeros_f, flags)
    )
    asimov = eng.expected(xs1[1])
    stage = AsimovStage(
        xs1[0], fs1[0], xs1[1], asimov, xs1[1], eng.objective(xs1[1], asimov), ok1[:2]
    )
    fixed_nll = pad([fs1[2 : 2 + n_d], fs2[:n_a]])
    oks = pad([ok1[: 2 + n_d], ok2[:n_a]])
    return stage, fixed_nll, xs1[2 : 2 + n_d], oks


def sqrt_stats(
    test_stat: str,
    stage: AsimovStage,
    twice_nll_fixed: Array,
    mus_data: Array,
    mus_asimov: Array,
    poi: int,
) -> tuple[Array, Array]:
    r""":math:`\sqrt{q}` at ``mus_data`` and :math:`\sqrt{q_A}` at ``mus_asimov``.

    ``twice_nll_fixed`` holds the fixed-POI fits of :func:`asymptotic_fits` (data rows
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
