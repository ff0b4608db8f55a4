r"""Correlated nuisance parameters: one multivariate Gaussian constraint.

For a group of Gaussian-constrained scalar parameters with widths
:math:`\sigma` and correlation matrix :math:`C`, the product of independent
constraint terms is replaced by

.. math:: \mathcal{N}(a \mid \theta, \Sigma),\qquad \Sigma = D C D,\ D=\mathrm{diag}(\sigma)

(CERN-OPEN-2012-016 discusses correlated constraints; Combine's ``param``
groups with a correlation matrix are the same construction).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hepprob._typing import ArrayLike
from hepprob.errors import ModelError

__all__ = ["correlated_layout"]


def correlated_layout(
    correlations: Mapping[Sequence[str], ArrayLike] | None, paramsets: Sequence[Any]
) -> dict[str, np.ndarray] | None:
    """Positions in the auxdata vector, block-diagonal precision and log-determinant.

    Args:
        correlations: ``{("alpha_a", "alpha_b"): [[1, rho], [rho, 1]], ...}``.
        paramsets: the model's parameter sets (with ``start``, ``sigmas``).

    Raises:
        ModelError: unknown or non-Gaussian names, a name in two groups, or a
            matrix that is not a symmetric positive-definite correlation matrix.
    """
    if not correlations:
        return None
    sets = {p.name: p for p in paramsets}
    aux_pos, pos = {}, 0
    for p in paramsets:
        if p.constrained:
            aux_pos[p.name] = pos
            pos += p.n_parameters
    positions, blocks, used = [], [], set()
    for names, corr in correlations.items():
        names = tuple(names)
        for n in names:
            p = sets.get(n)
            if p is None or p.constraint != "normal" or not p.is_scalar:
                msg = (
                    f"correlations: {n!r} must be a scalar Gaussian-constrained parameter "
                    "(normsys, histosys or lumi)"
                )
                raise ModelError(msg)
            if n in used:
                msg = f"correlations: {n!r} appears in two groups"
                raise ModelError(msg)
            used.add(n)
        c = np.asarray(corr, dtype=np.float64)
        ok = c.shape == (len(names), len(names)) and np.allclose(c, c.T)
        ok = ok and np.allclose(np.diag(c), 1.0)
        if not ok or np.any(np.linalg.eigvalsh(c) <= 0):
            msg = (
                f"correlations[{names}]: need a symmetric positive-definite "
                f"{len(names)}x{len(names)} correlation matrix with unit diagonal, got {c.tolist()}"
            )
            raise ModelError(msg)
        sig = np.array([sets[n].sigmas[0] for n in names])
        blocks.append(c * np.outer(sig, sig))
        positions.extend(aux_pos[n] for n in names)
    size = sum(len(b) for b in blocks)
    cov = np.zeros((size, size))
    k = 0
    for b in blocks:
        cov[k : k + len(b), k : k + len(b)] = b
        k += len(b)
    return {
        "positions": np.asarray(positions, dtype=int),
        "precision": np.linalg.inv(cov),
        "chol": np.linalg.cholesky(cov),
        "logdet": np.array(np.linalg.slogdet(cov)[1]),
    }
