"""Composite densities: fractions (Mixture), yields (Extended) and products (Product).

What to use when:

* :class:`Mixture` — a normalised sum of shapes with fractions, for a plain
  (non-extended) unbinned fit: one event at a time.
* :class:`Extended` — the extended unbinned likelihood of a *whole dataset*:
  Poisson in the number of events times the per-event mixture with yields; give
  it to ``numpyro.sample(..., obs=events)`` once per dataset. Handles weighted
  events and padded (masked) datasets of a fixed maximum size, as toys need.
* :class:`Product` — independent shapes in several observables glued into one
  ``n``-dimensional density.
"""

from __future__ import annotations

import functools
import math
import operator
import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln
from numpyro.distributions import Distribution, constraints

from hepprob._typing import Array, ArrayLike, PRNGKey
from hepprob.distributions._checks import check, is_concrete
from hepprob.errors import DataError, HepprobWarning, ParameterError

__all__ = ["Extended", "Mixture", "Product"]

# |sum(fractions) - 1| allowed when all k fractions are given
_SUM_TOL = 1e-6


class Mixture(Distribution):
    r"""A weighted sum of densities with fractions.

    .. math::

        p(x) = \sum_{k=1}^{K} f_k\, p_k(x), \qquad
        f_K = 1 - \sum_{k<K} f_k \ \text{(free-fraction form)}

    ``fractions`` holds either all ``K`` fractions (they must sum to 1) or the
    ``K - 1`` free ones, the last being one minus their sum — the form to fit
    (RooAddPdf with ``K - 1`` coefficients; zfit ``SumPDF``). The log-density is a
    weighted ``logsumexp`` (finite gradients even at a zero fraction); sampling
    draws every component and selects by a categorical index, so it is exact and
    vectorised.

    Args:
        components: NumPyro distributions with one common ``event_shape``.
        fractions: ``K`` or ``K - 1`` fractions in ``[0, 1]``: a sequence of
            scalars/arrays, or an array whose last axis indexes the components
            (leading axes are batch axes). For two components a scalar is the
            first fraction.
        validate_args: NumPyro argument validation.

    Raises:
        ParameterError: no components, mismatched event shapes, a wrong number of
            fractions, fractions outside ``[0, 1]`` or not summing to 1.

    Example:
        >>> import numpyro.distributions as nd
        >>> mix = Mixture([nd.Normal(0.0, 1.0), nd.Normal(3.0, 1.0)], [0.25])
        >>> mix.fractions.tolist()
        [0.25, 0.75]
    """

    arg_constraints: ClassVar[dict[str, Any]] = {"fractions": constraints.simplex}
    pytree_data_fields = ("components", "fractions")

    def __init__(
        self,
        components: Sequence[Distribution],
        fractions: ArrayLike,
        *,
        validate_args: bool | None = None,
    ) -> None:
        self.components = _check_components("Mixture", components)
        self.fractions = _fractions("Mixture", fractions, len(self.components))
        batch_shape = jax.lax.broadcast_shapes(
            self.fractions.shape[:-1], *[c.batch_shape for c in self.components]
        )
        event_shape = self.components[0].event_shape
        super().__init__(batch_shape, event_shape, validate_args=validate_args)

    @constraints.dependent_property(is_discrete=False)
    def support(self) -> Any:
        """The components' common support (or the hull of their ranges)."""
        return _joint_support([c.support for c in self.components], self.event_dim)

    def log_prob(self, value: ArrayLike, intermediates: Any = None) -> Array:
        r"""``log sum_k f_k p_k(x)``, computed as a weighted ``logsumexp``."""
        lps = _stack([c.log_prob(value) for c in self.components])
        return jax.nn.logsumexp(lps, axis=-1, b=self.fractions)

    def sample(self, key: PRNGKey, sample_shape: tuple[int, ...] = ()) -> Array:
        """Draw every component, then pick one per event with the fractions."""
        sample_shape = tuple(sample_shape)
        shape = sample_shape + self.batch_shape
        keys = jax.random.split(key, len(self.components) + 1)
        pick = jax.random.categorical(keys[-1], jnp.log(self.fractions), shape=shape)
        pick = jnp.reshape(pick, shape + (1,) * self.event_dim)
        out = jnp.zeros(shape + self.event_shape)
        for i, comp in enumerate(self.components):
            draw = _align(
                comp.sample(keys[i], sample_shape),
                comp,
                sample_shape,
                len(self.batch_shape),
            )
            draw = jnp.broadcast_to(draw, out.shape)
            out = jnp.where(pick == i, draw, out)
        return out

    def cdf(self, value: ArrayLike) -> Array:
        """``sum_k f_k F_k(x)`` (1-D components that have a ``cdf``)."""
        cdfs = _stack([_call(c, "cdf", value) for c in self.components])
        return jnp.sum(self.fractions * cdfs, axis=-1)

    def integral(self, a: ArrayLike, b: ArrayLike) -> Array:
        """Probability mass of ``[a, b]``: the fraction-weighted component masses."""
        masses = _stack([_mass(c, a, b) for c in self.components])
        return jnp.sum(self.fractions * masses, axis=-1)

    @property
    def mean(self) -> Array:
        """``sum_k f_k mean_k``."""
        return _weighted(self.fractions, [c.mean for c in self.components])

    @property
    def variance(self) -> Array:
        """Law of total variance: ``sum_k f_k (var_k + mean_k^2) - mean^2``."""
        second = [c.variance + c.mean**2 for c in self.components]
        return _weighted(self.fractions, second) - self.mean**2


class Extended(Distribution):
    r"""The extended unbinned likelihood of a whole dataset.

    For events :math:`x_1..x_N`, yields :math:`\nu_k` and normalised shapes
    :math:`p_k`, with :math:`\nu = \sum_k \nu_k`:

    .. math::

        \log L = \log \mathrm{Pois}(N; \nu)
                 + \sum_{i=1}^{N} \log \frac{\sum_k \nu_k\, p_k(x_i)}{\nu}
               = -\nu - \log N! + \sum_{i=1}^{N} \log \sum_k \nu_k\, p_k(x_i)

    (Barlow, Nucl. Instrum. Meth. A297 (1990) 496, eq. 7). With event weights
    :math:`w_i` the sum becomes :math:`\sum_i w_i \log \sum_k \nu_k p_k(x_i)` and
    :math:`N` becomes :math:`W = \sum_i w_i` in :math:`\log N! \to \log\Gamma(W+1)`
    (a constant); correct the uncertainties of weighted fits afterwards.

    Design: the *value* of this distribution is the dataset, shape
    ``(N, *event_shape_of_components)`` (with optional leading axes that
    broadcast with the batch shape), so ``numpyro.sample("x", Extended([sig, bkg],
    [ns, nb]), obs=events)`` adds the whole extended log-likelihood once.

    JAX needs fixed shapes, while ``N`` varies from toy to toy. Two ways to pad:

    * *padded mode* (``max_events=M``): the dataset has exactly ``M`` entries and
      rows of NaN are padding (:meth:`pad` makes one from real data). :meth:`sample`
      draws ``N ~ Pois(nu)`` events and NaN-pads them to ``M``, so generic toy
      machinery (redraw an observed site with ``sample``, refit with
      ``log_prob``) works unchanged. ``event_shape = (M, ...)``.
    * an explicit boolean ``mask`` (``True`` for real events), e.g. from
      :meth:`sample_padded`, which returns ``(events, mask)`` with finite padding.

    Outside padded mode NaN in the data is an error. Padding never reaches the
    likelihood or its gradient (it is replaced by a real event before
    evaluation, then weighted by zero). Without ``max_events``, ``mask`` or
    ``weights`` the dataset length is free and ``event_shape[0]`` is 1, which
    broadcasts with any length in NumPyro's shape checks.

    Args:
        components: NumPyro distributions with one common ``event_shape``.
        yields: ``K`` expected event counts ``>= 0`` (sequence, or an array whose
            last axis indexes the components), total ``> 0``.
        weights: per-event weights, shape ``(..., N)``.
        mask: boolean, shape ``(..., N)``: ``True`` for real events.
        max_events: padded size ``M``: switches on padded mode (NaN rows are
            padding) and sets the size of :meth:`sample`.
        validate_args: NumPyro argument validation.

    Raises:
        ParameterError: bad components or yields, ``max_events < 1``.
        DataError: bad ``weights``/``mask``, or data of the wrong shape or with
            NaN outside padded mode (checked when concrete).

    Example:
        >>> import numpyro.distributions as nd
        >>> ext = Extended([nd.Normal(0.0, 1.0), nd.Normal(3.0, 1.0)], [10.0, 30.0])
        >>> float(ext.expected_events)
        40.0
    """

    arg_constraints: ClassVar[dict[str, Any]] = {
        "yields": constraints.independent(constraints.nonnegative, 1)
    }
    pytree_data_fields = ("components", "yields", "weights", "mask")
    pytree_aux_fields = ("_max_events", "_padded")

    def __init__(
        self,
        components: Sequence[Distribution] | Distribution,
        yields: ArrayLike,
        *,
        weights: ArrayLike | None = None,
        mask: ArrayLike | None = None,
        max_events: int | None = None,
        validate_args: bool | None = None,
    ) -> None:
        if isinstance(components, Distribution):
            components = [components]
        self.components = _check_components("Extended", components)
        self.yields = _yields("Extended", yields, len(self.components))
        self.weights, self.mask, n_data = _event_arrays(weights, mask)
        self._padded = max_events is not None
        if self._padded:
            max_events = _positive("Extended", "max_events", max_events)
            if n_data is not None and n_data != max_events:
                msg = (
                    f"Extended: max_events={max_events} but mask/weights have {n_data} "
                    "entries"
                )
                raise DataError(msg)
        self._max_events = max_events if self._padded else n_data
        batch_shape = jax.lax.broadcast_shapes(
            self.yields.shape[:-1], *[c.batch_shape for c in self.components]
        )
        event_shape = (self._max_events or 1, *self.components[0].event_shape)
        super().__init__(batch_shape, event_shape, validate_args=validate_args)

    @staticmethod
    def pad(events: ArrayLike, max_events: int) -> Array:
        """NaN-pad a dataset ``(N, ...)`` to ``(max_events, ...)`` for padded mode."""
        max_events = _positive("Extended.pad", "max_events", max_events)
        x = jnp.asarray(events, dtype=jnp.float64)
        if x.ndim == 0 or x.shape[0] > max_events:
            msg = (
                f"Extended.pad: events must be (N, ...) with N <= max_events="
                f"{max_events}, got shape {x.shape}"
            )
            raise DataError(msg)
        fill = jnp.full((max_events - x.shape[0], *x.shape[1:]), jnp.nan)
        return jnp.concatenate([x, fill], axis=0)

    @constraints.dependent_property(is_discrete=False)
    def support(self) -> Any:
        """Datasets whose events lie in the components' support."""
        inner = _joint_support(
            [c.support for c in self.components], len(self.components[0].event_shape)
        )
        return constraints.independent(inner, 1)

    @property
    def expected_events(self) -> Array:
        """Total expected number of events ``nu = sum_k nu_k``."""
        return jnp.sum(self.yields, axis=-1)

    @property
    def mixture(self) -> Mixture:
        """The per-event density: a :class:`Mixture` with fractions ``nu_k / nu``."""
        fractions = self.yields / self.expected_events[..., None]
        return Mixture(self.components, fractions, validate_args=False)

    def check_data(self, value: ArrayLike) -> None:
        """Raise :class:`DataError` unless ``value`` is a usable dataset.

        Checks the shape, the lengths of ``mask``/``weights`` and, for concrete
        data, that no real event holds NaN/inf (NaN rows are padding in padded
        mode). ``log_prob`` runs it; generic data checks (e.g. of a fitter) should
        call it instead of rejecting NaN themselves.
        """
        self._prepare(value)

    def _prepare(self, value: ArrayLike) -> tuple[Array, Array | None, int, int]:
        """Checked data, its mask of real events, the event axis and ``N``."""
        ev_nd = len(self.components[0].event_shape)
        x = jnp.asarray(value, dtype=jnp.float64)
        if (
            x.ndim < ev_nd + 1
            or x.shape[x.ndim - ev_nd :] != self.components[0].event_shape
        ):
            msg = (
                "Extended.log_prob: value must be a dataset of shape (N, "
                f"*{self.components[0].event_shape}), got shape {x.shape}"
            )
            raise DataError(msg)
        n_axis = x.ndim - ev_nd - 1
        n_events = x.shape[n_axis]
        for name, arr in (("weights", self.weights), ("mask", self.mask)):
            if arr is not None and arr.shape[-1] != n_events:
                msg = (
                    f"Extended.log_prob: {name} has {arr.shape[-1]} entries but the "
                    f"dataset has N={n_events} events"
                )
                raise DataError(msg)
        keep = self.mask
        if self._padded:
            if n_events != self._max_events:
                msg = (
                    f"Extended.log_prob: padded mode expects max_events="
                    f"{self._max_events} entries, got N={n_events}; pad the data with "
                    "Extended.pad(events, max_events)"
                )
                raise DataError(msg)
            real = ~jnp.any(jnp.isnan(x), axis=tuple(range(x.ndim - ev_nd, x.ndim)))
            keep = real if keep is None else keep & real
        _check_finite(x, keep, ev_nd)
        return x, keep, n_axis, n_events

    def log_prob(self, value: ArrayLike, intermediates: Any = None) -> Array:
        """The extended log-likelihood of the dataset ``value`` (see the class)."""
        ev_nd = len(self.components[0].event_shape)
        x, keep, n_axis, n_events = self._prepare(value)
        if keep is not None:
            x, keep = _fill_padding(x, keep, n_axis, ev_nd)
            n_axis = keep.ndim - 1
        # events first, then enough axes to broadcast with the batch shape
        xt = jnp.moveaxis(x, n_axis, 0)
        lead = xt.shape[1 : xt.ndim - ev_nd]
        pad = (1,) * max(len(self.batch_shape) - len(lead), 0)
        xt = jnp.reshape(xt, (n_events, *pad, *xt.shape[1:]))
        lps = _stack([c.log_prob(xt) for c in self.components])
        per_event = jax.nn.logsumexp(lps, axis=-1, b=self.yields)  # (N, ...)
        w = jnp.ones(n_events) if self.weights is None else self.weights
        if keep is not None:
            w = jnp.where(keep, w, 0.0)
        total_w = jnp.sum(w, axis=-1)
        w_t = jnp.moveaxis(w, -1, 0)
        pad = (1,) * max(per_event.ndim - w_t.ndim, 0)
        w_t = jnp.reshape(w_t, (n_events, *pad, *w_t.shape[1:]))
        # double where: padding (weight 0) never touches the sum or its gradient
        terms = jnp.where(w_t != 0.0, w_t * per_event, 0.0)
        return jnp.sum(terms, axis=0) - self.expected_events - gammaln(total_w + 1.0)

    def sample_padded(
        self,
        key: PRNGKey,
        sample_shape: tuple[int, ...] = (),
        max_events: int | None = None,
    ) -> tuple[Array, Array]:
        """Draw datasets: ``N ~ Pois(nu)`` events from the mixture, padded.

        Args:
            key: JAX PRNG key.
            sample_shape: leading shape (e.g. ``(n_toys,)``).
            max_events: padded size; default the instance's ``max_events``, else
                ``nu + 10 sqrt(nu) + 10`` (needs a concrete ``nu``).

        Returns:
            ``(events, mask)`` of shapes ``sample_shape + batch_shape + (max_events,
            *event_shape)`` and ``sample_shape + batch_shape + (max_events,)``.
            Padding entries are genuine draws (finite, in the support) with
            ``mask`` False. A warning (outside ``jit``) flags any ``N`` above
            ``max_events`` (those datasets are truncated).
        """
        n_max = self._padded_size(max_events)
        sample_shape = tuple(sample_shape)
        shape = sample_shape + self.batch_shape
        k_n, k_x = jax.random.split(key)
        nu = jnp.broadcast_to(self.expected_events, shape)
        counts = jax.random.poisson(k_n, nu, shape)
        draws = self.mixture.sample(k_x, (*sample_shape, n_max))
        events = jnp.moveaxis(draws, len(sample_shape), len(shape))
        mask = jnp.arange(n_max) < counts[..., None]
        if is_concrete(counts) and np.any(np.asarray(counts) > n_max):
            msg = (
                f"Extended.sample_padded: a Poisson count {int(np.max(counts))} exceeds "
                f"max_events={n_max}; those datasets are truncated. Raise max_events"
            )
            warnings.warn(msg, HepprobWarning, stacklevel=2)
        return events, mask

    def sample(self, key: PRNGKey, sample_shape: tuple[int, ...] = ()) -> Array:
        """Datasets ``N ~ Pois(nu)`` NaN-padded to ``max_events`` (padded mode)."""
        if not self._max_events:
            msg = (
                "Extended.sample: give max_events (the padded dataset size) to draw "
                "datasets; or call sample_padded(key, shape, max_events)"
            )
            raise ParameterError(msg)
        events, mask = self.sample_padded(key, sample_shape)
        sel = jnp.reshape(mask, mask.shape + (1,) * len(self.components[0].event_shape))
        return jnp.where(sel, events, jnp.nan)

    def _padded_size(self, max_events: int | None) -> int:
        if max_events is not None:
            return _positive("Extended.sample_padded", "max_events", max_events)
        if self._max_events:
            return self._max_events
        nu = self.expected_events
        if not is_concrete(nu):
            msg = (
                "Extended.sample_padded: give max_events (the padded size) when the "
                "yields are traced"
            )
            raise ParameterError(msg)
        top = float(np.max(np.asarray(nu)))
        return math.ceil(top + 10.0 * math.sqrt(top) + 10.0)


class Product(Distribution):
    r"""Independent densities over several observables as one ``n``-D density.

    .. math::

        p(x_1, \dots, x_n) = \prod_k p_k(x_k)

    Each component is 1-D (``event_shape ()``) or ``d_k``-dimensional
    (``event_shape (d_k,)``); the product has ``event_shape (sum_k d_k,)`` with the
    components' observables in order (RooProdPdf; zfit ``ProductPDF`` over disjoint
    observables). ``log_prob`` is the sum; sampling concatenates independent draws.

    Args:
        components: NumPyro distributions with event shape ``()`` or ``(d,)``.
        validate_args: NumPyro argument validation.

    Raises:
        ParameterError: no components, or a component with a higher-rank event.

    Example:
        >>> import numpyro.distributions as nd
        >>> Product([nd.Normal(0.0, 1.0), nd.Exponential(2.0)]).event_shape
        (2,)
    """

    arg_constraints: ClassVar[dict[str, Any]] = {}
    pytree_data_fields = ("components",)

    def __init__(
        self, components: Sequence[Distribution], *, validate_args: bool | None = None
    ) -> None:
        comps = _check_components("Product", components, same_event=False)
        for i, comp in enumerate(comps):
            if len(comp.event_shape) > 1:
                msg = (
                    f"Product: components[{i}] must have event_shape () or (d,), got "
                    f"{comp.event_shape}"
                )
                raise ParameterError(msg)
        self.components = comps
        batch_shape = jax.lax.broadcast_shapes(*[c.batch_shape for c in comps])
        event_shape = (sum(_dims(comps)),)
        super().__init__(batch_shape, event_shape, validate_args=validate_args)

    @constraints.dependent_property(is_discrete=False, event_dim=1)
    def support(self) -> Any:
        """The box of the components' ranges (``real_vector`` if any is open)."""
        los, his = [], []
        for comp, dim in zip(self.components, _dims(self.components), strict=True):
            bounds = _bounds(comp.support)
            if bounds is None:
                return constraints.real_vector
            lo, hi = (
                jnp.broadcast_to(
                    jnp.asarray(b, dtype=jnp.float64), (*self.batch_shape, dim)
                )
                for b in bounds
            )
            los.append(lo)
            his.append(hi)
        lo, hi = jnp.concatenate(los, -1), jnp.concatenate(his, -1)
        if not (
            is_concrete(lo) and np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))
        ):
            return constraints.real_vector
        return constraints.independent(constraints.interval(lo, hi), 1)

    def log_prob(self, value: ArrayLike, intermediates: Any = None) -> Array:
        """Sum of the components' log-densities on their observables."""
        x = self._as_events(value, "log_prob")
        pieces = zip(self.components, self._split(x), strict=True)
        return functools.reduce(operator.add, [c.log_prob(p) for c, p in pieces])

    def sample(self, key: PRNGKey, sample_shape: tuple[int, ...] = ()) -> Array:
        """Independent draws of each component, concatenated on the last axis."""
        sample_shape = tuple(sample_shape)
        shape = sample_shape + self.batch_shape
        keys = jax.random.split(key, len(self.components))
        parts = []
        for k, comp, dim in zip(
            keys, self.components, _dims(self.components), strict=True
        ):
            draw = _align(
                comp.sample(k, sample_shape), comp, sample_shape, len(self.batch_shape)
            )
            draw = jnp.reshape(draw, (*draw.shape[: draw.ndim - comp.event_dim], dim))
            parts.append(jnp.broadcast_to(draw, (*shape, dim)))
        return jnp.concatenate(parts, axis=-1)

    def cdf(self, value: ArrayLike) -> Array:
        """Joint CDF: the product of the components' CDFs."""
        x = self._as_events(value, "cdf")
        pieces = zip(self.components, self._split(x), strict=True)
        return functools.reduce(operator.mul, [_call(c, "cdf", p) for c, p in pieces])

    def integral(self, a: ArrayLike, b: ArrayLike) -> Array:
        """Probability mass of the box ``[a, b]``: the product of component masses."""
        a, b = self._as_events(a, "integral"), self._as_events(b, "integral")
        pieces = zip(self.components, self._split(a), self._split(b), strict=True)
        return functools.reduce(
            operator.mul, [_mass(c, pa, pb) for c, pa, pb in pieces]
        )

    @property
    def mean(self) -> Array:
        """Concatenated component means."""
        return self._join([c.mean for c in self.components])

    @property
    def variance(self) -> Array:
        """Concatenated component variances."""
        return self._join([c.variance for c in self.components])

    def _as_events(self, value: ArrayLike, where: str) -> Array:
        x = jnp.asarray(value, dtype=jnp.float64)
        if x.ndim == 0 or x.shape[-1] != self.event_shape[0]:
            msg = (
                f"Product.{where}: value must have a last axis of length "
                f"{self.event_shape[0]} (one entry per observable), got shape {x.shape}"
            )
            raise DataError(msg)
        return x

    def _split(self, x: Array) -> list[Array]:
        out, start = [], 0
        for comp, dim in zip(self.components, _dims(self.components), strict=True):
            out.append(
                x[..., start] if comp.event_dim == 0 else x[..., start : start + dim]
            )
            start += dim
        return out

    def _join(self, parts: list[Array]) -> Array:
        shaped = []
        for part, comp, dim in zip(
            parts, self.components, _dims(self.components), strict=True
        ):
            arr = jnp.asarray(part)
            if comp.event_dim == 0:
                arr = arr[..., None]
            shaped.append(jnp.broadcast_to(arr, (*self.batch_shape, dim)))
        return jnp.concatenate(shaped, axis=-1)


# --- private helpers -------------------------------------------------------------------


def _check_components(
    owner: str, components: Any, *, same_event: bool = True
) -> list[Distribution]:
    if isinstance(components, Distribution) or not isinstance(components, Sequence):
        msg = f"{owner}: components must be a list of distributions, got {type(components).__name__}"
        raise ParameterError(msg)
    comps = list(components)
    if not comps:
        msg = f"{owner}: components must hold at least one distribution, got an empty list"
        raise ParameterError(msg)
    for i, comp in enumerate(comps):
        if not isinstance(comp, Distribution):
            msg = (
                f"{owner}: components[{i}] must be a NumPyro/hepprob distribution, "
                f"got {type(comp).__name__}"
            )
            raise ParameterError(msg)
        if same_event and comp.event_shape != comps[0].event_shape:
            msg = (
                f"{owner}: all components need one event_shape; components[0] has "
                f"{comps[0].event_shape}, components[{i}] has {comp.event_shape}"
            )
            raise ParameterError(msg)
    return comps


def _positive(owner: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        msg = f"{owner}: {name} must be a positive integer, got {name}={value!r}"
        raise ParameterError(msg)
    return int(value)


def _stack_last(owner: str, name: str, values: Any, k: int) -> Array:
    """Stack a sequence of per-component values (or take an array) on the last axis."""
    if isinstance(values, (list, tuple)):
        if not values:
            msg = f"{owner}: {name} is empty; expected {k} entries"
            raise ParameterError(msg)
        try:
            arrays = jnp.broadcast_arrays(
                *[jnp.asarray(v, dtype=jnp.float64) for v in values]
            )
        except (TypeError, ValueError):
            msg = f"{owner}: the entries of {name} must be numbers or broadcastable arrays"
            raise ParameterError(msg) from None
        return jnp.stack(arrays, axis=-1)
    arr = jnp.asarray(values, dtype=jnp.float64)
    return arr[..., None] if arr.ndim == 0 else arr


def _fractions(owner: str, fractions: Any, k: int) -> Array:
    arr = _stack_last(owner, "fractions", fractions, k)
    length = arr.shape[-1]
    if length not in (k, k - 1) or length == 0:
        msg = (
            f"{owner}: fractions must have {k} entries (summing to 1) or {k - 1} free "
            f"entries (the last fraction is 1 - their sum) for {k} components, got "
            f"{length}"
        )
        raise ParameterError(msg)
    check(owner, "fractions", arr, lambda v: (v >= 0.0) & (v <= 1.0), "in [0, 1]")
    total = jnp.sum(arr, axis=-1, keepdims=True)
    if is_concrete(total):
        tot = np.asarray(total)
        if length == k and np.any(np.abs(tot - 1.0) > _SUM_TOL):
            msg = (
                f"{owner}: {k} fractions must sum to 1 (or give {k - 1} free ones), got "
                f"sum(fractions)={tot.squeeze()}"
            )
            raise ParameterError(msg)
        if length == k - 1 and np.any(tot > 1.0):
            msg = (
                f"{owner}: the {k - 1} free fractions must sum to at most 1, got "
                f"sum(fractions)={tot.squeeze()}"
            )
            raise ParameterError(msg)
    if length == k - 1:
        arr = jnp.concatenate([arr, 1.0 - total], axis=-1)
    return arr


def _yields(owner: str, yields: Any, k: int) -> Array:
    arr = _stack_last(owner, "yields", yields, k)
    if arr.shape[-1] != k:
        msg = f"{owner}: yields must have one entry per component ({k}), got {arr.shape[-1]}"
        raise ParameterError(msg)
    check(
        owner, "yields", arr, lambda v: np.isfinite(v) & (v >= 0.0), "finite and >= 0"
    )
    total = jnp.sum(arr, axis=-1)
    if is_concrete(total) and np.any(np.asarray(total) <= 0.0):
        msg = (
            f"{owner}: the total yield must be > 0, got sum(yields)={np.asarray(total)}"
        )
        raise ParameterError(msg)
    return arr


def _event_arrays(
    weights: Any, mask: Any
) -> tuple[Array | None, Array | None, int | None]:
    n = None
    w = m = None
    if weights is not None:
        w = jnp.asarray(weights, dtype=jnp.float64)
        if w.ndim == 0:
            msg = f"Extended: weights must have one entry per event (shape (..., N)), got shape {w.shape}"
            raise DataError(msg)
        if is_concrete(w) and not np.all(np.isfinite(np.asarray(w))):
            msg = "Extended: weights must be finite, got NaN or inf"
            raise DataError(msg)
        n = w.shape[-1]
    if mask is not None:
        m = jnp.asarray(mask)
        if m.dtype != jnp.bool_:
            if is_concrete(m) and np.all(np.isin(np.asarray(m), (0, 1))):
                m = m.astype(bool)
            else:
                msg = f"Extended: mask must be boolean (True for real events), got dtype {m.dtype}"
                raise DataError(msg)
        if m.ndim == 0:
            msg = f"Extended: mask must have one entry per event (shape (..., N)), got shape {m.shape}"
            raise DataError(msg)
        if n is not None and m.shape[-1] != n:
            msg = f"Extended: weights ({n} entries) and mask ({m.shape[-1]} entries) differ in length"
            raise DataError(msg)
        n = m.shape[-1]
    return w, m, n


def _check_finite(x: Array, keep: Array | None, ev_nd: int) -> None:
    """DataError on NaN/inf among the real (unmasked) events, when concrete."""
    if not (is_concrete(x) and is_concrete(keep)):
        return
    bad = ~np.isfinite(np.asarray(x))
    if ev_nd:
        bad = np.any(bad, axis=tuple(range(x.ndim - ev_nd, x.ndim)))
    if keep is not None:
        bad, kept = np.broadcast_arrays(bad, np.asarray(keep))
        bad = bad & kept
    if np.any(bad):
        index = np.argwhere(bad)[0].tolist()
        msg = f"Extended.log_prob: the dataset holds NaN/inf at event index {index}"
        raise DataError(msg)


def _fill_padding(
    x: Array, keep: Array, n_axis: int, ev_nd: int
) -> tuple[Array, Array]:
    """Replace masked-out events by the dataset's first real event (double where)."""
    lead = jax.lax.broadcast_shapes(x.shape[:n_axis], keep.shape[:-1])
    n = x.shape[n_axis]
    x = jnp.broadcast_to(x, (*lead, n, *x.shape[n_axis + 1 :]))
    keep = jnp.broadcast_to(keep, (*lead, n))
    first = jnp.argmax(keep, axis=-1)
    idx = jnp.reshape(first, lead + (1,) + (1,) * ev_nd)
    fill = jnp.take_along_axis(x, idx, axis=len(lead))
    sel = jnp.reshape(keep, keep.shape + (1,) * ev_nd)
    return jnp.where(sel, x, fill), keep


def _align(
    draw: Array, comp: Distribution, sample_shape: tuple[int, ...], n_batch: int
) -> Array:
    """Insert unit axes so a component's draws broadcast with the full batch shape."""
    pad = (1,) * max(n_batch - len(comp.batch_shape), 0)
    return jnp.reshape(draw, (*sample_shape, *pad, *draw.shape[len(sample_shape) :]))


def _stack(arrays: list[Array]) -> Array:
    return jnp.stack(jnp.broadcast_arrays(*arrays), axis=-1)


def _weighted(fractions: Array, values: list[Array]) -> Array:
    """``sum_k f_k v_k`` where ``v_k`` may carry event axes after the batch."""
    ev = [jnp.asarray(v) for v in values]
    ev_nd = max(v.ndim for v in ev) - (fractions.ndim - 1)
    ev_nd = max(ev_nd, 0)
    stacked = jnp.stack(jnp.broadcast_arrays(*ev), axis=-1 - ev_nd if ev_nd else -1)
    f = jnp.reshape(fractions, fractions.shape + (1,) * ev_nd)
    return jnp.sum(f * stacked, axis=-1 - ev_nd if ev_nd else -1)


def _call(comp: Distribution, method: str, value: ArrayLike) -> Array:
    try:
        return getattr(comp, method)(value)
    except NotImplementedError:
        msg = f"{type(comp).__name__} has no {method}; the composite needs it"
        raise NotImplementedError(msg) from None


def _mass(comp: Distribution, a: ArrayLike, b: ArrayLike) -> Array:
    integral = getattr(comp, "integral", None)
    if callable(integral):
        return integral(a, b)
    if comp.event_dim == 0:
        return _call(comp, "cdf", b) - _call(comp, "cdf", a)
    msg = f"{type(comp).__name__} has neither integral nor a 1-D cdf"
    raise NotImplementedError(msg)


def _dims(components: list[Distribution]) -> list[int]:
    return [comp.event_shape[0] if comp.event_shape else 1 for comp in components]


def _bounds(support: Any) -> tuple[Any, Any] | None:
    """(lower, upper) of a real / interval-like support, else None."""
    base = getattr(support, "base_constraint", support)
    if base is constraints.real or base is constraints.real_vector:
        return -jnp.inf, jnp.inf
    lo = getattr(base, "lower_bound", None)
    hi = getattr(base, "upper_bound", None)
    if lo is None and hi is None:
        return None
    return (-jnp.inf if lo is None else lo), (jnp.inf if hi is None else hi)


def _joint_support(supports: list[Any], event_dim: int) -> Any:
    """The common support, or the hull of the components' ranges."""
    if all(s is supports[0] for s in supports):
        return supports[0]
    real = constraints.real_vector if event_dim else constraints.real
    bounds = [_bounds(s) for s in supports]
    if any(b is None for b in bounds):
        return real
    lo = functools.reduce(
        jnp.minimum, [jnp.asarray(b[0], dtype=jnp.float64) for b in bounds]
    )
    hi = functools.reduce(
        jnp.maximum, [jnp.asarray(b[1], dtype=jnp.float64) for b in bounds]
    )
    if not is_concrete((lo, hi)):
        return real
    lo_ok, hi_ok = bool(np.all(np.isfinite(lo))), bool(np.all(np.isfinite(hi)))
    if lo_ok and hi_ok:
        inner = constraints.interval(lo, hi)
    elif lo_ok:
        inner = constraints.greater_than(lo)
    elif hi_ok:
        inner = constraints.less_than(hi)
    else:
        return real
    return constraints.independent(inner, event_dim) if event_dim else inner
