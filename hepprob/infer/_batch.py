"""The one batched fit driver behind every fit of hepprob, and its covariance.

Every path that minimises — ``hepprob.fit``, ``infer.mle.fit`` and
``fixed_poi_fit``, profiles and Minos, the stages of ``hypotest`` (asymptotic
and toys), ``hepprob.toys``, impacts, scans and limits — calls
:func:`fit_batch` (or, inside its own compiled program, :func:`solve`): one
minimiser (:func:`hepprob.infer.minimize.minimize_with_hessian`, with its
saddle escape and honest status), one tolerance on the NLL, one padding rule
(:func:`chunks`), one compiled program per objective and shapes, and one
Hesse covariance (:func:`covariance`) that says when the free Hessian is not
positive definite and which parameters are to blame.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import jax
import numpy as np

from hepprob._program_cache import cached
from hepprob._typing import Array
from hepprob.infer.minimize import (
    CURVATURE_EPS,
    SUCCESS,
    FitStatus,
    minimize_with_hessian,
    scaled_curvature,
)

__all__ = [
    "MAX_ITER",
    "TOL",
    "BatchFit",
    "Covariance",
    "chunks",
    "covariance",
    "fit_batch",
    "max_rows",
    "solve",
]

# The convergence settings of every fit: EDM below TOL in units of the NLL
# (not of twice the NLL), at most MAX_ITER Newton iterations per round.
TOL = 1e-10
MAX_ITER = 500

# Rows times parameters squared of one compiled batch on CPU, and the largest
# CPU batch (see max_rows).
_ROW_BUDGET = 4096
_MAX_ROWS = 64


class BatchFit(NamedTuple):
    """Host results of a batch of fits (leading axis: rows).

    Attributes:
        x: end points, ``(k, n)``.
        fun: objective (the NLL) there, ``(k,)``.
        hess: exact Hessians of the objective there, all parameters, ``(k, n, n)``.
        status: integer :class:`FitStatus` codes, ``(k,)``.
        edm: estimated distances to the minimum, ``(k,)``.
        n_iter: Newton iterations, ``(k,)``.
    """

    x: np.ndarray
    fun: np.ndarray
    hess: np.ndarray
    status: np.ndarray
    edm: np.ndarray
    n_iter: np.ndarray

    @property
    def converged(self) -> np.ndarray:
        """Per row: a true minimum (status ``converged``)."""
        return self.status == SUCCESS

    @property
    def twice_nll(self) -> np.ndarray:
        r""":math:`-2\ln L` per row (pyhf's objective)."""
        return 2.0 * self.fun

    def statuses(self) -> list[FitStatus]:
        """The rows' statuses as :class:`FitStatus` members."""
        return [FitStatus.from_code(c) for c in self.status]

    def take(self, index: Any) -> BatchFit:
        """The rows ``index`` (an int keeps the axis out: one fit)."""
        return BatchFit(*(np.asarray(a)[index] for a in self))


def solve(
    objective: Callable[[Array, Any], Array],
    data: Any,
    x0: Array,
    lower: Array,
    upper: Array,
    fixed: Array,
    *,
    tol: float = TOL,
    max_iter: int = MAX_ITER,
) -> tuple[Array, Array, Array, Array, Array, Array]:
    """One fit, traceable (for programs that build their data, e.g. toys).

    Returns ``(x, fun, hess, status, edm, n_iter)`` as :class:`BatchFit` rows.
    """
    res, hess = minimize_with_hessian(
        objective, x0, lower, upper, fixed, (data,), tol=tol, max_iter=max_iter
    )
    return res.x, res.fun, hess, res.status, res.edm, res.n_iter


def fit_batch(
    objective: Callable[[Array, Any], Array],
    data: Any,
    x0: Any,
    lower: Any,
    upper: Any,
    fixed: Any,
    *,
    tol: float = TOL,
    max_iter: int = MAX_ITER,
    data_per_row: bool = False,
    rows_per_call: int | None = None,
) -> BatchFit:
    """Fit rows of start points, bounds and fixed masks; compiled once per objective.

    ``objective(x, data)`` is pure (data are an argument, never closed over).
    ``x0``, ``lower``, ``upper`` and ``fixed`` are ``(k, n)`` (a 1-D vector is
    one row; bounds and masks broadcast). ``data`` is one pytree shared by the
    rows, or with ``data_per_row`` a pytree whose leaves have a leading axis
    of length ``k``. Rows run in compiled calls of a few fixed sizes
    (:func:`chunks`): a new number of rows, new data or new start values of
    the same shapes never recompile.
    """
    x0 = np.atleast_2d(np.asarray(x0, dtype=np.float64))
    k, n = x0.shape
    lower, upper = (
        np.broadcast_to(np.asarray(a, dtype=np.float64), (k, n)) for a in (lower, upper)
    )
    fixed = np.broadcast_to(np.asarray(fixed, dtype=bool), (k, n))
    program = program_of(
        objective, tol=tol, max_iter=max_iter, data_per_row=data_per_row
    )
    cap = rows_per_call or max_rows(n)
    parts = []
    for start, size, bucket in chunks(k, cap):
        idx = np.minimum(np.arange(bucket), size - 1) + start
        rows = (x0[idx], lower[idx], upper[idx], fixed[idx])
        d = _rows_of(data, idx) if data_per_row else data
        out = program(*rows, d)
        parts.append([np.asarray(o)[:size] for o in out])
    return BatchFit(*(np.concatenate([p[j] for p in parts]) for j in range(6)))


def _rows_of(data: Any, idx: np.ndarray) -> Any:
    return jax.tree_util.tree_map(lambda a: a[idx], data)


def program_of(
    objective: Callable[[Array, Any], Array],
    *,
    tol: float = TOL,
    max_iter: int = MAX_ITER,
    data_per_row: bool = False,
) -> Any:
    """The jitted program :func:`fit_batch` runs for these settings."""
    return cached(
        ("fit_batch", objective, float(tol), int(max_iter), bool(data_per_row)),
        lambda: _program(objective, tol, max_iter, data_per_row),
        owner=objective,
    )


def chunks(k: int, cap: int) -> Iterator[tuple[int, int, int]]:
    """The padding rule: ``(start, size, bucket)`` of each compiled call for ``k`` rows.

    Rows go in chunks of at most ``cap``; a chunk of one or two rows runs row
    by row (a fit, a hypotest), a larger one is padded to the next power of
    two, at least 8 and at most ``cap``, by repeating its last row (scans,
    limit searches, Minos, toys). Each program thus compiles for a handful of
    sizes only.
    """
    for start in range(0, k, cap):
        size = min(cap, k - start)
        if size <= 2:
            for i in range(size):
                yield start + i, 1, 1
        else:
            yield start, size, min(cap, max(8, 1 << (size - 1).bit_length()))


def max_rows(npars: int) -> int:
    """Rows per compiled call: a power of two, 1 for large models.

    On CPU a batch costs about the sum of its rows, and every row runs as
    long as the slowest one, so models with more than about 60 parameters
    fit row by row; small models gain from batches (the per-iteration
    overhead is shared). Accelerators run rows in parallel: larger batches.
    """
    cpu = jax.default_backend() == "cpu"
    budget, most = (_ROW_BUDGET, _MAX_ROWS) if cpu else (64 * _ROW_BUDGET, 4096)
    rows = min(max(budget // max(int(npars), 1) ** 2, 1), most)
    return 1 << (rows.bit_length() - 1)


def _program(
    objective: Callable[[Array, Any], Array],
    tol: float,
    max_iter: int,
    data_per_row: bool,
) -> Any:
    def one(x0, lower, upper, fixed, data):  # type: ignore[no-untyped-def]
        return solve(
            objective, data, x0, lower, upper, fixed, tol=tol, max_iter=max_iter
        )

    return jax.jit(jax.vmap(one, in_axes=(0, 0, 0, 0, 0 if data_per_row else None)))


class Covariance(NamedTuple):
    """Hesse covariance of one fit, and whether it is defined.

    Attributes:
        matrix: ``(n, n)`` inverse of the free Hessian (of the NLL); zero rows
            and columns for fixed parameters, NaN for those in a flat or
            negative-curvature direction.
        positive_definite: the free Hessian is positive definite.
        involved: indices of the parameters in the null or negative
            eigen-directions, largest weight first (empty if positive definite).
        min_eigenvalue: smallest eigenvalue of the scaled free Hessian
            (:func:`hepprob.infer.minimize.scaled_curvature`).
    """

    matrix: np.ndarray
    positive_definite: bool
    involved: list[int]
    min_eigenvalue: float

    def errors(self) -> np.ndarray:
        """Square roots of the diagonal (0 for fixed, NaN where undefined)."""
        diag = np.diag(self.matrix)
        with np.errstate(invalid="ignore"):
            return np.where(np.isnan(diag), np.nan, np.sqrt(np.clip(diag, 0.0, None)))

    def describe(self, names: Sequence[str]) -> str:
        """A sentence naming the parameters of an undefined direction."""
        who = [names[i] for i in self.involved]
        kind = (
            "a direction of negative curvature"
            if self.min_eigenvalue < -CURVATURE_EPS
            else "a flat direction"
        )
        return (
            "the Hessian is not positive definite (smallest scaled eigenvalue "
            f"{self.min_eigenvalue:.3g}, {kind}): the data do not constrain the "
            f"direction of {who}"
        )


def covariance(hess: Any, fixed: Any) -> Covariance:
    """Hesse covariance: the inverse of the NLL Hessian on the free parameters.

    Inverts in the scaled eigenbasis of :func:`scaled_curvature`; directions
    with an eigenvalue below ``CURVATURE_EPS`` (flat or negative) are left
    out, and every parameter with more than 1% of its weight in them gets NaN
    variances and covariances and is named in ``involved``. Host (NumPy).
    """
    hess = np.asarray(hess, dtype=np.float64)
    free = ~np.asarray(fixed, dtype=bool)
    cov, weight, lam = inverse_hessian(hess, free, np)
    involved = np.flatnonzero(free & (weight > 0.01))
    involved = involved[np.argsort(-weight[involved], kind="stable")]
    positive = bool(lam > CURVATURE_EPS)
    return Covariance(cov, positive, [int(i) for i in involved], float(lam))


def inverse_hessian(hess: Any, free: Any, xp: Any = np) -> tuple[Any, Any, Any]:
    """The computation behind :func:`covariance`, for NumPy or ``jax.numpy``.

    Returns ``(covariance, weight of each parameter in the flat or negative
    directions, smallest scaled eigenvalue)``; traceable with ``xp=jnp`` (toys
    compute their errors inside their compiled program).
    """
    finite = xp.all(xp.isfinite(xp.where(free[:, None] & free[None, :], hess, 0.0)))
    _, scale, eigval, eigvec = scaled_curvature(hess, free, xp)
    good = eigval > CURVATURE_EPS
    inv = (eigvec * xp.where(good, 1.0 / xp.where(good, eigval, 1.0), 0.0)) @ eigvec.T
    cov = inv / (scale[:, None] * scale[None, :])
    weight = xp.sum(xp.where(good, 0.0, eigvec**2), axis=1)
    weight = xp.where(finite, weight, 1.0)
    undefined = free & (weight > 0.01)
    both = free[:, None] & free[None, :]
    cov = xp.where(both, cov, 0.0)
    cov = xp.where(
        undefined[:, None] | undefined[None, :], xp.where(both, xp.nan, 0.0), cov
    )
    lam = xp.where(finite, eigval[0], xp.nan)
    return cov, weight, lam
