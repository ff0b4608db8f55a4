r"""The array programs of a HistFactory model: pure functions of ``(pars, arrays)``.

A compiled model is two things: a hashable :class:`Structure` (interpolation
codes, which modifier families are present, the number of gather layers,
clipping, extras) and a pytree of arrays (nominal yields, interpolation
tables, index tables, constraint widths). The functions here take the arrays
as an *argument*; :func:`kernels` hands out one set of them per structure.
So every model of the same structure and array shapes — the background-only
workspace with any signal patch of a grid, or the same workspace in a new
process — runs the same compiled programs, and JAX's persistent compilation
cache finds them on disk. Nothing here loops over modifiers or samples: a
model of 10,000 modifiers traces to the same few dozen operations as one of
ten (the gather layers, at most a handful, are the only Python loop).

Expected yields, per sample :math:`s` and bin :math:`b`
(CERN-OPEN-2012-016, section 3):

.. math::
    \nu_{sb} = \Big(\nu^0_{sb} + \sum_{o} \delta_o(\alpha_o)\Big)
    \prod_{m} \gamma_{msb} \prod_{k} f_k(\alpha_k)

with the histosys changes :math:`\delta` as two matrix products (symmetric and
asymmetric parts, :mod:`~hepprob.histfactory.interpolation`), the per-bin
factors :math:`\gamma` (normfactor, lumi, staterror, shapesys, shapefactor)
gathered from the parameter vector, and the normsys product taken in log
space: :math:`\prod_k f_k = \mathrm{sign}\cdot\exp\sum_k \log|f_k|`, where
code 4's exponential branches contribute :math:`\alpha\log\kappa` (a matrix
product) and only its polynomial branch needs a logarithm. This is the same
number as the plain product (to rounding) and much cheaper to differentiate
twice than a product reduction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero
from jax.scipy.special import gammaln, xlogy

from hepprob._typing import Array, ArrayLike
from hepprob.histfactory import interpolation

__all__ = ["Kernels", "Structure", "kernels", "poisson_logpdf", "to_device"]


def __dir__() -> list[str]:
    return __all__


@dataclasses.dataclass(frozen=True)
class Structure:
    """Everything a model's programs depend on besides array values (hashable).

    Two models with equal structures and equal array shapes share compiled
    programs. Parameter names are not part of it (they only fix index tables);
    ``values`` (the name layout) is, for models with yield functions or EFT
    terms, whose user code reads parameters by name.
    """

    nbase: int  # parameters the JSON modifiers define (the gather tables index these)
    npars: int
    nmain: int
    naux: int
    ns_code: str | None  # None: no normsys
    hs_code: str | None  # None: no histosys
    hs_region: float
    n_layers: int  # gather layers of per-bin factors
    onehot: tuple[str, ...]  # index tables taken by a one-hot product
    clip_sample: float | None
    clip_bin: float | None
    values: tuple[tuple[str, int, int, bool], ...] = ()  # (name, start, n, scalar)
    eft: tuple[tuple[int, int, int, tuple[str, ...]], ...] = ()
    yield_functions: tuple[tuple[int, int, int, Callable[..., Any]], ...] = ()
    correlated: bool = False
    n_tikhonov: int = 0


def to_device(x: Any) -> Array:
    """A float64 JAX array without an eager program (``jnp.asarray`` of a host
    array compiles one per shape); traced or JAX inputs pass through."""
    if isinstance(x, jax.Array):
        return x if x.dtype == jnp.float64 else x.astype(jnp.float64)
    return jax.device_put(np.asarray(x, dtype=np.float64))


def poisson_logpdf(n: ArrayLike, lam: ArrayLike) -> Array:
    r"""Continuous Poisson log-probability ``n log(lam) - lam - lgamma(n + 1)``.

    ``lam <= 0`` gives ``-inf`` (``0`` for ``n = lam = 0``) with finite
    gradients, instead of NaN.
    """
    n = jnp.asarray(n, dtype=jnp.float64)
    lam = jnp.asarray(lam, dtype=jnp.float64)
    pos = lam > 0
    safe = jnp.where(pos, lam, 1.0)
    value = xlogy(n, safe) - safe - gammaln(n + 1.0)
    edge = jnp.where((n == 0) & (lam == 0), 0.0, -jnp.inf)
    return jnp.where(pos, value, edge)


# ---------------------------------------------------------------- the programs


def _take(st: Structure, a: Mapping[str, Any], key: str, pars: Array) -> Array:
    """``pars[index]``; as a one-hot matrix product for small models, whose
    gradient avoids a scatter (a fixed cost that dominates tiny likelihoods)."""
    if key in st.onehot:
        onehot = a[key + "_onehot"]
        return pars[: onehot.shape[0]] @ onehot
    return pars[a[key]]


def normsys_factors(st: Structure, a: Mapping[str, Any], pars: Array) -> Array:
    """Product over normsys parameters of their factors, per (sample, channel)."""
    alpha = _take(st, a, "ns_index", pars)  # (K,)
    code = st.ns_code
    if code in ("code1", "code4"):
        outside = (
            alpha if code == "code1" else jnp.where(jnp.abs(alpha) < 1.0, 0.0, alpha)
        )
        log_f = (
            jnp.maximum(outside, 0.0) @ a["ns_log_hi"]
            - jnp.minimum(outside, 0.0) @ a["ns_log_lo"]
        )
        if code == "code1":
            return jnp.exp(log_f)
        # the polynomial branch of code 4, |alpha| < 1 (interpolation.code4);
        # sign (and exact zeros) of the product without a gradient: it is
        # piecewise constant, and log|poly| carries the derivative poly'/poly
        sign = jax.lax.stop_gradient(
            jnp.prod(jnp.sign(_poly(alpha, a["ns_coef"])[0]), axis=0)
        )
        return sign * jnp.exp(log_f + _log_poly_sum(alpha, a["ns_coef"]))
    lo, hi = a["ns_lo"], a["ns_hi"]
    col = alpha[:, None]
    if code == "lnN_smooth":
        return jnp.exp(jnp.sum(jnp.log(interpolation.lnn_smooth(col, lo, hi)), axis=0))
    additive = interpolation.code0 if code == "code0" else interpolation.code2
    return jnp.prod(1.0 + additive(col, lo, 1.0, hi), axis=0)


def _poly(alpha: Array, coef: Array) -> tuple[Array, Array, Array, Array]:
    """Code 4's polynomial ``1 + sum_i c_i a^i`` and its first two derivatives in
    ``a``, on ``|alpha| < 1`` (``a = 0``, value 1, outside), and the inside mask."""
    inside = (jnp.abs(alpha) < 1.0)[:, None]
    x = jnp.where(inside, alpha[:, None], 0.0)
    c = coef
    value = 1.0 + x * (
        c[0] + x * (c[1] + x * (c[2] + x * (c[3] + x * (c[4] + x * c[5]))))
    )
    d1 = c[0] + x * (
        2 * c[1] + x * (3 * c[2] + x * (4 * c[3] + x * (5 * c[4] + x * 6 * c[5])))
    )
    d2 = 2 * c[1] + x * (6 * c[2] + x * (12 * c[3] + x * (20 * c[4] + x * 30 * c[5])))
    return value, d1, d2, inside


def _log_abs(value: Array) -> Array:
    return jnp.log(jnp.where(value == 0.0, 1.0, jnp.abs(value)))


# Code 4's polynomial factors enter as sum_k log|poly_kt(alpha_k)|. Each term
# depends on one alpha_k, so its derivatives are elementwise: the custom JVPs
# below hand them to autodiff as precomputed tables (slope poly'/poly and its
# derivative), so that a Hessian costs a matrix product instead of pushing
# every parameter direction through the Horner scheme (60x faster for a
# published-size model, and a fraction of the compile time).


def _plain_log_poly_sum(alpha: Array, coef: Array) -> Array:
    return jnp.sum(_log_abs(_poly(alpha, coef)[0]), axis=0)


def _plain_slope(alpha: Array, coef: Array) -> Array:
    value, d1, _, inside = _poly(alpha, coef)
    return jnp.where(inside, d1 / jnp.where(value == 0.0, 1.0, value), 0.0)


#: ``sum_k log|poly_kt(alpha_k)|`` over ``|alpha_k| < 1``, per target ``t``
_log_poly_sum = jax.custom_jvp(_plain_log_poly_sum)
#: ``d log|poly_kt| / d alpha_k`` (0 outside ``|alpha_k| < 1``)
_log_poly_slope = jax.custom_jvp(_plain_slope)


def _coef_tangent(fn: Any, alpha: Array, coef: Array, dcoef: Any) -> Any:
    """Tangent of ``fn(alpha, coef)`` along ``dcoef`` (none when it is zero)."""
    if isinstance(dcoef, SymbolicZero):
        return None
    return jax.jvp(lambda c: fn(alpha, c), (coef,), (dcoef,))[1]


def _log_poly_sum_jvp(primals: Any, tangents: Any) -> tuple[Array, Array]:
    alpha, coef = primals
    d_alpha, d_coef = tangents
    out = _plain_log_poly_sum(alpha, coef)
    tangent = jnp.zeros_like(out)
    if not isinstance(d_alpha, SymbolicZero):
        tangent = tangent + d_alpha @ _log_poly_slope(alpha, coef)
    extra = _coef_tangent(_plain_log_poly_sum, alpha, coef, d_coef)
    return out, tangent if extra is None else tangent + extra


def _log_poly_slope_jvp(primals: Any, tangents: Any) -> tuple[Array, Array]:
    alpha, coef = primals
    d_alpha, d_coef = tangents
    value, d1, d2, inside = _poly(alpha, coef)
    safe = jnp.where(value == 0.0, 1.0, value)
    slope = jnp.where(inside, d1 / safe, 0.0)
    tangent = jnp.zeros_like(slope)
    if not isinstance(d_alpha, SymbolicZero):
        curvature = jnp.where(inside, d2 / safe - slope * slope, 0.0)
        tangent = tangent + curvature * d_alpha[:, None]
    extra = _coef_tangent(_plain_slope, alpha, coef, d_coef)
    return slope, tangent if extra is None else tangent + extra


_log_poly_sum.defjvp(_log_poly_sum_jvp, symbolic_zeros=True)
_log_poly_slope.defjvp(_log_poly_slope_jvp, symbolic_zeros=True)


def values_of(st: Structure, pars: Array) -> dict[str, Array]:
    """``{name: value}`` (scalars for scalar sets) of a flat vector."""
    return {
        name: pars[start] if scalar else pars[start : start + n]
        for name, start, n, scalar in st.values
    }


def by_sample(st: Structure, a: Mapping[str, Any], pars: Array) -> Array:
    """Expected yields ``(samples, bins)`` for one parameter vector."""
    ext = [pars[: st.nbase], jnp.ones(1)]
    if st.ns_code is not None:
        ext.append(normsys_factors(st, a, pars))
    yields = a["nominal"]
    if st.hs_code is not None:
        # delta = alpha S + g(alpha) A per occurrence, summed into (sample, bin):
        # linear maps of the parameters and of g applied to each of them
        alpha = pars[: st.nbase]
        g = interpolation.additive_weight(st.hs_code, alpha, st.hs_region)
        delta = a["hs_sym"] @ alpha + a["hs_asym"] @ g
        yields = yields + delta.reshape(yields.shape)
    if st.eft:
        values = values_of(st, pars)
        for (s_idx, lo, hi, names), (lin, quad) in zip(st.eft, a["eft"], strict=True):
            cw = jnp.stack([jnp.asarray(values[n]).reshape(()) for n in names])
            extra = cw @ lin + jnp.einsum("i,j,ijb->b", cw, cw, quad)
            yields = yields.at[s_idx, lo:hi].add(extra)
    if st.n_layers:
        factors = jnp.concatenate(ext)[a["gather"]]  # (samples, layers, bins)
        for layer in range(st.n_layers):
            yields = yields * factors[:, layer]
    if st.yield_functions:
        values = values_of(st, pars)
        for s_idx, lo, hi, fn in st.yield_functions:
            yields = yields.at[s_idx, lo:hi].multiply(jnp.asarray(fn(values)))
    if st.clip_sample is not None:
        yields = jnp.maximum(yields, st.clip_sample)
    return yields


def main(st: Structure, a: Mapping[str, Any], pars: Array) -> Array:
    """Expected main counts ``(bins,)``."""
    out = jnp.sum(by_sample(st, a, pars), axis=0)
    if st.clip_bin is not None:
        out = jnp.maximum(out, st.clip_bin)
    return out


def aux(st: Structure, a: Mapping[str, Any], pars: Array) -> Array:
    """Expected auxiliary data: theta (Normal) or theta * tau (Poisson)."""
    theta = _take(st, a, "aux_index", pars)
    return jnp.where(a["aux_poisson"], theta * a["aux_factor"], theta)


def full(st: Structure, a: Mapping[str, Any], pars: Array) -> Array:
    """Expected main counts followed by the expected auxiliary data."""
    return jnp.concatenate([main(st, a, pars), aux(st, a, pars)])


def main_logpdf(
    st: Structure, a: Mapping[str, Any], pars: Array, maindata: Array
) -> Array:
    """Sum of the Poisson terms of the main counts."""
    return jnp.sum(poisson_logpdf(maindata, main(st, a, pars)))


def regularisation(st: Structure, a: Mapping[str, Any], pars: Array) -> Array:
    """Sum of Tikhonov penalties ``-tau |D (theta - theta0)|^2`` (0 if none)."""
    total = jnp.zeros((), dtype=jnp.float64)
    for idx, dmat, ref, tau in a.get("tikhonov", ()):
        diff = dmat @ (pars[idx] - ref)
        total = total - tau * jnp.sum(diff * diff)
    return total


def constraint_logpdf(
    st: Structure, a: Mapping[str, Any], pars: Array, auxdata: Array
) -> Array:
    """Normal and Poisson constraint terms (and correlated groups, Tikhonov)."""
    theta = _take(st, a, "aux_index", pars)
    rate = theta * a["aux_factor"]
    normal = (
        -0.5 * ((auxdata - theta) / a["aux_sigma"]) ** 2
        - jnp.log(a["aux_sigma"])
        - 0.5 * jnp.log(2.0 * jnp.pi)
    )
    pois = poisson_logpdf(auxdata, rate)
    total = jnp.sum(jnp.where(a["aux_poisson"], pois, normal))
    if st.correlated:
        k = a["corr"]
        pos = k["positions"]
        resid = auxdata[pos] - theta[pos]
        mvn = -0.5 * resid @ k["precision"] @ resid - 0.5 * k["logdet"]
        mvn = mvn - 0.5 * pos.size * jnp.log(2.0 * jnp.pi)
        total = total - jnp.sum(normal[pos]) + mvn
    return total + regularisation(st, a, pars)


def logpdf(st: Structure, a: Mapping[str, Any], pars: Array, data: Array) -> Array:
    """Log-likelihood of main + auxiliary data at ``pars`` (a scalar)."""
    n = st.nmain
    return main_logpdf(st, a, pars, data[:n]) + constraint_logpdf(st, a, pars, data[n:])


# ---------------------------------------------------------- one set per structure


class Kernels:
    """The programs of one :class:`Structure`: pure functions with the arrays last.

    ``logpdf(pars, data, arrays)``, ``expected(pars, arrays)`` (main +
    auxiliary), ``main(pars, arrays)``, ``by_sample``, ``aux``,
    ``main_logpdf(pars, maindata, arrays)``, ``constraint_logpdf``; and
    :meth:`jitted`, their compiled versions, made once per structure.
    """

    def __init__(self, structure: Structure) -> None:
        st = self.structure = structure
        self.logpdf = _named(lambda p, d, a: logpdf(st, a, p, d), "hf_logpdf")
        self.main_logpdf = _named(
            lambda p, d, a: main_logpdf(st, a, p, d), "hf_main_logpdf"
        )
        self.constraint_logpdf = _named(
            lambda p, d, a: constraint_logpdf(st, a, p, d), "hf_constraint_logpdf"
        )
        self.expected = _named(lambda p, a: full(st, a, p), "hf_expected")
        self.main = _named(lambda p, a: main(st, a, p), "hf_main")
        self.by_sample = _named(lambda p, a: by_sample(st, a, p), "hf_by_sample")
        self.aux = _named(lambda p, a: aux(st, a, p), "hf_aux")
        self._jitted: dict[tuple[str, bool], Callable[..., Array]] = {}

    def jitted(self, name: str, batched: bool) -> Callable[..., Array]:
        """``jax.jit`` of the function ``name``; ``batched``: mapped over a
        leading axis of ``pars`` (and of ``data`` for the log-densities)."""
        key = (name, batched)
        if key not in self._jitted:
            fn = getattr(self, name)
            if batched and name.endswith("logpdf"):
                inner = fn

                def fn(p: Array, d: Array, a: Any) -> Array:
                    return jnp.vectorize(
                        lambda pp, dd: inner(pp, dd, a), signature="(p),(d)->()"
                    )(p, d)

            elif batched:
                fn = jax.vmap(fn, in_axes=(0, None))
            self._jitted[key] = jax.jit(fn)
        return self._jitted[key]


_KERNELS: dict[Structure, Kernels] = {}


def kernels(structure: Structure) -> Kernels:
    """The :class:`Kernels` of ``structure`` (one object per distinct structure)."""
    found = _KERNELS.get(structure)
    if found is None:
        found = _KERNELS[structure] = Kernels(structure)
    return found


def _named(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    fn.__name__ = fn.__qualname__ = name
    return fn
