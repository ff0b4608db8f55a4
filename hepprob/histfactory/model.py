r"""HistFactory ``Model``: pyhf-compatible config, expected data and logpdf, in pure JAX.

``Model(spec)`` takes the ``{"channels": [...], "parameters": [...]}`` dict that
``pyhf.Model`` takes and compiles it once (:mod:`hepprob.histfactory.compile`).
Every method is a pure ``jax.numpy`` program of the flat parameter vector (same
order as pyhf 0.7): jit, grad and vmap it over parameter vectors and datasets.

.. math::
    L(n, a \mid \theta) = \prod_b \mathrm{Pois}\big(n_b \mid \nu_b(\theta)\big)
    \prod_{j\in\text{normal}} \mathcal{N}(a_j \mid \theta_j, \sigma_j)
    \prod_{j\in\text{poisson}} \mathrm{Pois}(a_j \mid \theta_j \tau_j)

with :math:`\nu_b = \sum_s (\nu^0_{sb} + \sum_k \delta_{ksb}) \prod_m f_{msb}`
(CERN-OPEN-2012-016, section 3). ``Pois`` uses the continuous form
``n log(nu) - nu - lgamma(n + 1)`` as pyhf does (Asimov data are not integers).

Negative or zero expected yields: where pyhf returns NaN (``log`` of a negative
rate), hepprob returns ``-inf`` for that bin (an impossible point, which
minimisers and NUTS reject) with finite gradients elsewhere; ``clip_sample_data``
and ``clip_bin_data`` clip yields from below as in pyhf.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln, xlogy

from hepprob._typing import Array, ArrayLike
from hepprob.errors import DataError, ModelError, ParameterError
from hepprob.histfactory import interpolation
from hepprob.histfactory.compile import CompiledSpec, ParamSet, compile_spec
from hepprob.histfactory.modifiers.correlated import correlated_layout
from hepprob.histfactory.modifiers.custom import YieldFunction, extra_paramsets
from hepprob.histfactory.modifiers.eft import EFTMorphing
from hepprob.histfactory.modifiers.regularisation import Tikhonov

__all__ = ["Model", "ModelConfig"]


def __dir__() -> list[str]:
    return __all__


class ModelConfig:
    """Parameter and channel layout of a :class:`Model`, as ``pyhf.Model.config``."""

    def __init__(self, compiled: CompiledSpec, poi_name: str | None) -> None:
        self._c = compiled
        self._sets = {p.name: p for p in compiled.paramsets}
        self.par_order: list[str] = [p.name for p in compiled.paramsets]
        self.parameters: list[str] = sorted(self.par_order)
        self.npars: int = compiled.npars
        self.channels: list[str] = list(compiled.channels)
        self.samples: list[str] = list(compiled.samples)
        self.modifiers: list[tuple[str, str]] = list(compiled.modifiers)
        self.channel_nbins: dict[str, int] = dict(compiled.channel_nbins)
        starts = np.cumsum([0] + [compiled.channel_nbins[c] for c in self.channels])
        self.channel_slices: dict[str, slice] = {
            c: slice(int(starts[i]), int(starts[i + 1]))
            for i, c in enumerate(self.channels)
        }
        self.nmaindata: int = compiled.nbins
        self.auxdata: list[float] = compiled.auxdata.tolist()
        self.nauxdata: int = len(self.auxdata)
        self.auxdata_order: list[str] = list(compiled.auxdata_order)
        self.par_map = {
            p.name: {"slice": p.slice, "paramset": p} for p in compiled.paramsets
        }
        self.poi_name: str | None = None
        self.poi_index: int | None = None
        self.set_poi(poi_name)

    @property
    def par_names(self) -> list[str]:
        """Flat parameter names; vector sets expand to ``name[i]`` (as pyhf)."""
        out: list[str] = []
        for p in self._c.paramsets:
            if p.is_scalar:
                out.append(p.name)
            else:
                out.extend(f"{p.name}[{i}]" for i in range(p.n_parameters))
        return out

    def set_poi(self, name: str | None) -> None:
        """Choose the parameter of interest (``None`` or ``""``: none)."""
        if name is None or name == "":
            self.poi_name, self.poi_index = None, None
            return
        if name not in self._sets:
            msg = (
                f"poi_name {name!r} is not a parameter of the model; "
                f"parameters are {self.par_order}"
            )
            raise ModelError(msg)
        if not self._sets[name].is_scalar:
            msg = (
                f"poi_name {name!r} is a vector parameter set; the POI must be a scalar"
            )
            raise ModelError(msg)
        self.poi_name, self.poi_index = name, self._sets[name].start

    def param_set(self, name: str) -> ParamSet:
        """The :class:`~hepprob.histfactory.compile.ParamSet` called ``name``."""
        try:
            return self._sets[name]
        except KeyError:
            msg = f"unknown parameter set {name!r}; the model has {self.par_order}"
            raise ParameterError(msg) from None

    def par_slice(self, name: str) -> slice:
        """Slice of the flat parameter vector holding parameter set ``name``."""
        return self.param_set(name).slice

    def suggested_init(self) -> list[float]:
        """Start values, flat, in ``par_names`` order."""
        return [v for p in self._c.paramsets for v in p.suggested_init]

    def suggested_bounds(self) -> list[tuple[float, float]]:
        """``(lower, upper)`` per flat parameter."""
        return [b for p in self._c.paramsets for b in p.suggested_bounds]

    def suggested_fixed(self) -> list[bool]:
        """Whether each flat parameter is held constant by default."""
        return [f for p in self._c.paramsets for f in p.suggested_fixed]


class _MainModel:
    """The Poisson main-measurement part: ``expected_data`` and ``logpdf``."""

    def __init__(self, model: Model) -> None:
        self._m = model

    def expected_data(self, pars: ArrayLike, return_by_sample: bool = False) -> Array:
        """Expected main counts ``(bins,)``, or ``(samples, bins)`` by sample."""
        p = self._m._check_pars(pars)
        if return_by_sample:
            return self._m._batched(self._m._by_sample, p)
        return self._m._batched(self._m._main, p)

    def logpdf(self, maindata: ArrayLike, pars: ArrayLike) -> Array:
        """Sum of Poisson log-probabilities of the main counts."""
        p = self._m._check_pars(pars)
        d = self._m._check_data(maindata, self._m.config.nmaindata, "maindata")
        return _vectorize(self._m._main_logpdf, p, d)


class _ConstraintModel:
    """The auxiliary-measurement part: Normal and Poisson constraint terms."""

    def __init__(self, model: Model) -> None:
        self._m = model

    def has_pdf(self) -> bool:
        """Whether any parameter is constrained."""
        return self._m.config.nauxdata > 0

    def expected_data(self, pars: ArrayLike) -> Array:
        """Expected auxiliary data: theta (Normal) or theta * tau (Poisson)."""
        p = self._m._check_pars(pars)
        return self._m._batched(self._m._aux, p)

    def logpdf(self, auxdata: ArrayLike, pars: ArrayLike) -> Array:
        """Sum of constraint log-probabilities."""
        p = self._m._check_pars(pars)
        d = self._m._check_data(auxdata, self._m.config.nauxdata, "auxdata")
        return _vectorize(self._m._constraint_logpdf, p, d)


class Model:
    """A compiled HistFactory model with pyhf 0.7's interface, in pure JAX.

    Args:
        spec: ``{"channels": [...], "parameters": [...]}`` as ``pyhf.Model`` takes
            (the measurement's ``config.parameters`` give inits, bounds, fixed,
            lumi auxdata/sigmas).
        poi_name: the parameter of interest (``None``: none).
        modifier_settings: interpolation per type, e.g.
            ``{"normsys": {"interpcode": "code1"}}``; defaults (pyhf 0.7):
            normsys ``code4``, histosys ``code4p``. Types not named keep their
            default (pyhf resets them to its per-type fallbacks). Also
            ``"lnN_smooth"`` (normsys) and ``"poly6"`` with ``"smooth_region"``
            (histosys): Combine's smooth interpolations.
        validate: check the spec against the HistFactory JSON schema first.
        clip_sample_data: clip each sample's expected yield below at this value.
        clip_bin_data: clip each bin's total expected yield below at this value.
        extra_parameters: unconstrained parameters beyond the spec's,
            ``[{"name": "cW", "inits": [0.0], "bounds": [[-5, 5]]}]``, appended
            after pyhf's parameters (for yield functions and EFT morphing).
        yield_functions: :class:`~hepprob.histfactory.modifiers.custom.YieldFunction`
            multipliers ``fn(params)`` of a sample's yield, in JAX.
        eft: :class:`~hepprob.histfactory.modifiers.eft.EFTMorphing` terms.
        correlations: ``{(name, ...): correlation_matrix}`` replacing the
            independent Gaussian constraints of those parameters by one
            multivariate Gaussian.
        regularisation: :class:`~hepprob.histfactory.modifiers.regularisation.Tikhonov`
            penalties (counted in ``constraint_model.logpdf`` and ``logpdf``).

    Raises:
        SpecError: the spec is invalid (the message names the JSON path).
        ModelError: ``poi_name`` is not a scalar parameter of the model.

    Example:
        >>> spec = {"channels": [{"name": "sr", "samples": [
        ...     {"name": "sig", "data": [5.0], "modifiers": [
        ...         {"name": "mu", "type": "normfactor", "data": None}]},
        ...     {"name": "bkg", "data": [50.0], "modifiers": []}]}]}
        >>> model = Model(spec)
        >>> float(model.expected_actualdata([2.0])[0])
        60.0
    """

    def __init__(
        self,
        spec: Mapping[str, Any],
        *,
        poi_name: str | None = "mu",
        modifier_settings: Mapping[str, Any] | None = None,
        validate: bool = True,
        clip_sample_data: float | None = None,
        clip_bin_data: float | None = None,
        extra_parameters: Sequence[Mapping[str, Any]] | None = None,
        yield_functions: Sequence[YieldFunction] | None = None,
        eft: Sequence[EFTMorphing] | None = None,
        correlations: Mapping[Sequence[str], ArrayLike] | None = None,
        regularisation: Tikhonov | Sequence[Tikhonov] | None = None,
    ) -> None:
        if validate:
            _validate(spec)
        self.spec = spec
        compiled = compile_spec(spec, modifier_settings)
        self._nbase = compiled.npars
        self.compiled = _with_extra_parameters(compiled, extra_parameters)
        self.config = ModelConfig(self.compiled, poi_name)
        self.clip_sample_data = clip_sample_data
        self.clip_bin_data = clip_bin_data
        self.batch_size = None
        self.main_model = _MainModel(self)
        self.constraint_model = _ConstraintModel(self)
        self._arrays = _device_arrays(self.compiled)
        self._setup_extras(yield_functions, eft, correlations, regularisation)
        self._jitted: dict[Any, Callable[..., Array]] = {}

    # ------------------------------------------------------------ public API

    def expected_actualdata(self, pars: ArrayLike) -> Array:
        """Expected main-measurement counts, ``(nmaindata,)`` per parameter vector."""
        return self.main_model.expected_data(pars)

    def expected_auxdata(self, pars: ArrayLike) -> Array:
        """Expected auxiliary data, ``(nauxdata,)`` per parameter vector."""
        return self.constraint_model.expected_data(pars)

    def expected_data(self, pars: ArrayLike, include_auxdata: bool = True) -> Array:
        """Expected main counts followed (by default) by the expected auxdata."""
        p = self._check_pars(pars)
        if not include_auxdata:
            return self._batched(self._main, p)
        return self._batched(self._full, p)

    def logpdf(self, pars: ArrayLike, data: ArrayLike) -> Array:
        """Log-likelihood of ``data`` (main + aux), shape ``(1,)`` as pyhf.

        Batches broadcast: ``pars`` ``(..., npars)`` and ``data`` ``(..., ndata)``
        give the batch shape.

        Raises:
            ParameterError: ``pars`` has the wrong length.
            DataError: ``data`` has the wrong length, or NaN/negative entries.
        """
        p = self._check_pars(pars)
        d = self._check_data(data, self.config.nmaindata + self.config.nauxdata, "data")
        if p.ndim == 1 and d.ndim == 1:
            return _vectorize(self._logpdf_single, p, d)[None]
        return _vectorize(self._logpdf_single, p, d)

    def mainlogpdf(self, maindata: ArrayLike, pars: ArrayLike) -> Array:
        """Same as ``main_model.logpdf`` (pyhf's name)."""
        return self.main_model.logpdf(maindata, pars)

    def constraint_logpdf(self, auxdata: ArrayLike, pars: ArrayLike) -> Array:
        """Same as ``constraint_model.logpdf`` (pyhf's name)."""
        return self.constraint_model.logpdf(auxdata, pars)

    @property
    def nominal_rates(self) -> Array:
        """Nominal yields ``(samples, bins)``."""
        return self._arrays["nominal"]

    def logpdf_fn(self) -> Callable[[Array, Array], Array]:
        """The pure scalar function ``(pars, data) -> logpdf`` (no input checks)."""
        return self._logpdf_single

    def numpyro_model(self, *args: Any, **kwargs: Any) -> Callable[..., None]:
        """A NumPyro model function ``f(data)``: see :func:`make_numpyro_model`."""
        from hepprob.histfactory.distribution import make_numpyro_model

        return make_numpyro_model(self, *args, **kwargs)

    def __repr__(self) -> str:
        return (
            f"Model(channels={self.config.channels}, samples={self.config.samples}, "
            f"npars={self.config.npars}, poi={self.config.poi_name!r})"
        )

    # ------------------------------------------------------------ checks

    def _check_pars(self, pars: ArrayLike) -> Array:
        p = jnp.asarray(pars, dtype=jnp.float64)
        if p.ndim == 0 or p.shape[-1] != self.config.npars:
            msg = (
                f"pars must have length {self.config.npars} (the model's npars, "
                f"order config.par_names), got shape {tuple(p.shape)}"
            )
            raise ParameterError(msg)
        return p

    def _check_data(self, data: ArrayLike, n: int, what: str) -> Array:
        d = jnp.asarray(data, dtype=jnp.float64)
        if d.ndim == 0 or d.shape[-1] != n:
            hint = (
                f" (main {self.config.nmaindata} + aux {self.config.nauxdata})"
                if what == "data"
                else ""
            )
            msg = f"{what} must have length {n}{hint}, got shape {tuple(d.shape)}"
            raise DataError(msg)
        if not isinstance(d, jax.core.Tracer):
            host = np.asarray(d)
            if np.any(np.isnan(host)):
                msg = f"{what} contains NaN at positions {np.flatnonzero(np.isnan(host))[:10].tolist()}"
                raise DataError(msg)
            counts = self._count_mask(what)  # Gaussian auxdata may be negative
            negative = (host < 0) & counts
            if np.any(negative):
                bad = np.flatnonzero(negative.reshape(-1))[:10].tolist()
                msg = (
                    f"{what} must be non-negative counts (main bins and Poisson auxdata); "
                    f"negative at flat positions {bad}"
                )
                raise DataError(msg)
        return d

    def _count_mask(self, what: str) -> np.ndarray:
        """Which entries of ``what`` are Poisson counts (must be >= 0)."""
        main = np.ones(self.config.nmaindata, dtype=bool)
        aux = self.compiled.aux_poisson
        return {"data": np.concatenate([main, aux]), "maindata": main, "auxdata": aux}[
            what
        ]

    def _batched(self, fn: Callable[[Array], Array], p: Array) -> Array:
        """``fn`` jitted, mapped over leading batch axes of ``p``."""
        key = (fn.__name__, p.ndim > 1)
        if key not in self._jitted:
            self._jitted[key] = jax.jit(jax.vmap(fn) if p.ndim > 1 else fn)
        if p.ndim == 1:
            return self._jitted[key](p)
        out = self._jitted[key](p.reshape(-1, p.shape[-1]))
        return out.reshape(*p.shape[:-1], *out.shape[1:])

    # ------------------------------------------------------------ pure core

    def _by_sample(self, pars: Array) -> Array:
        """Expected yields ``(samples, bins)`` for one parameter vector."""
        a, c = self._arrays, self.compiled
        ext = [pars[: self._nbase], jnp.ones(1)]
        if c.ns_index.size:
            alpha = _take(pars, a, "ns_index")[:, None]
            ext.append(_normsys_product(c.ns_code, alpha, a))
        p_ext = jnp.concatenate(ext)
        yields = a["nominal"]
        if c.hs_index.size:
            alpha = _take(pars, a, "hs_index")
            g = interpolation.additive_weight(c.hs_code, alpha, c.hs_region)
            yields = (
                yields
                + (a["hs_onehot"] * alpha) @ a["hs_sym"]
                + (a["hs_onehot"] * g) @ a["hs_asym"]
            )
        if self._eft:
            values = self._values(pars)
            for s_idx, sl, names, lin, quad in self._eft:
                cw = jnp.stack([jnp.asarray(values[n]).reshape(()) for n in names])
                extra = cw @ lin + jnp.einsum("i,j,ijb->b", cw, cw, quad)
                yields = yields.at[s_idx, sl].add(extra)
        if c.gather.shape[1]:
            factors = p_ext[a["gather"]]  # (samples, layers, bins); few layers
            for layer in range(factors.shape[1]):
                yields = yields * factors[:, layer]
        if self._yield_functions:
            values = self._values(pars)
            for s_idx, sl, fn in self._yield_functions:
                yields = yields.at[s_idx, sl].multiply(jnp.asarray(fn(values)))
        if self.clip_sample_data is not None:
            yields = jnp.maximum(yields, self.clip_sample_data)
        return yields

    def _main(self, pars: Array) -> Array:
        out = jnp.sum(self._by_sample(pars), axis=0)
        if self.clip_bin_data is not None:
            out = jnp.maximum(out, self.clip_bin_data)
        return out

    def _aux(self, pars: Array) -> Array:
        a = self._arrays
        theta = _take(pars, a, "aux_index")
        return jnp.where(a["aux_poisson"], theta * a["aux_factor"], theta)

    def _full(self, pars: Array) -> Array:
        return jnp.concatenate([self._main(pars), self._aux(pars)])

    def _main_logpdf(self, pars: Array, maindata: Array) -> Array:
        return jnp.sum(poisson_logpdf(maindata, self._main(pars)))

    def _constraint_logpdf(self, pars: Array, auxdata: Array) -> Array:
        a = self._arrays
        theta = _take(pars, a, "aux_index")
        rate = theta * a["aux_factor"]
        normal = (
            -0.5 * ((auxdata - theta) / a["aux_sigma"]) ** 2
            - jnp.log(a["aux_sigma"])
            - 0.5 * jnp.log(2.0 * jnp.pi)
        )
        pois = poisson_logpdf(auxdata, rate)
        total = jnp.sum(jnp.where(a["aux_poisson"], pois, normal))
        if self._corr is not None:
            k = self._corr
            pos = k["positions"]
            resid = auxdata[pos] - theta[pos]
            mvn = -0.5 * resid @ k["precision"] @ resid - 0.5 * k["logdet"]
            mvn = mvn - 0.5 * pos.size * jnp.log(2.0 * jnp.pi)
            total = total - jnp.sum(normal[pos]) + mvn
        return total + self._regularisation(pars)

    def _regularisation(self, pars: Array) -> Array:
        """Sum of Tikhonov penalties ``-tau |D (theta - theta0)|^2`` (0 if none)."""
        total = jnp.zeros((), dtype=jnp.float64)
        for idx, dmat, ref, tau in self._tikhonov:
            diff = dmat @ (pars[idx] - ref)
            total = total - tau * jnp.sum(diff * diff)
        return total

    def _logpdf_single(self, pars: Array, data: Array) -> Array:
        n = self.config.nmaindata
        return self._main_logpdf(pars, data[:n]) + self._constraint_logpdf(
            pars, data[n:]
        )

    def _values(self, pars: Array) -> dict[str, Array]:
        """``{name: value}`` (scalars for scalar sets) of a flat vector."""
        return {
            p.name: pars[p.start] if p.is_scalar else pars[p.slice]
            for p in self.compiled.paramsets
        }

    def _gauss_noise(self, key: Array, shape: tuple[int, ...]) -> Array:
        """Noise of Gaussian auxdata: ``sigma * z``, correlated within groups."""
        a = self._arrays
        z = jax.random.normal(key, (*shape, self.config.nauxdata), dtype=jnp.float64)
        noise = a["aux_sigma"] * z
        if self._corr is not None:
            pos = self._corr["positions"]
            noise = noise.at[..., pos].set(z[..., pos] @ self._corr["chol"].T)
        return noise

    def _setup_extras(
        self,
        yield_functions: Sequence[YieldFunction] | None,
        eft: Sequence[EFTMorphing] | None,
        correlations: Mapping[Sequence[str], ArrayLike] | None,
        regularisation: Tikhonov | Sequence[Tikhonov] | None,
    ) -> None:
        cfg = self.config
        sidx = {s: i for i, s in enumerate(cfg.samples)}

        def where(kind: str, channel: str, sample: str) -> tuple[int, slice]:
            if channel not in cfg.channel_slices or sample not in sidx:
                msg = (
                    f"{kind}: no sample {sample!r} in channel {channel!r}; channels "
                    f"{cfg.channels}, samples {cfg.samples}"
                )
                raise ModelError(msg)
            return sidx[sample], cfg.channel_slices[channel]

        self._eft = []
        for term in eft or []:
            s_idx, sl = where("eft", term.channel, term.sample)
            unknown = [n for n in term.coefficients if n not in cfg.par_order]
            nb = sl.stop - sl.start
            if unknown or term.linear.shape[1] != nb:
                msg = (
                    f"eft ({term.channel!r}, {term.sample!r}): coefficients must be model "
                    f"parameters (unknown: {unknown}; add them with extra_parameters) and "
                    f"templates must have {nb} bins, got {term.linear.shape[1]}"
                )
                raise ModelError(msg)
            lin, quad = jnp.asarray(term.linear), jnp.asarray(term.quadratic)
            self._eft.append((s_idx, sl, term.coefficients, lin, quad))
        self._yield_functions = []
        init_values = self._values(jnp.asarray(cfg.suggested_init()))
        for yf in yield_functions or []:
            s_idx, sl = where("yield_functions", yf.channel, yf.sample)
            try:
                out = np.asarray(yf.fn(init_values))
                np.broadcast_to(out, (sl.stop - sl.start,))
            except Exception as err:
                msg = (
                    f"yield function for ({yf.channel!r}, {yf.sample!r}) must map "
                    f"{{name: value}} to a scalar or {sl.stop - sl.start} values: {err}"
                )
                raise ModelError(msg) from err
            self._yield_functions.append((s_idx, sl, yf.fn))
        self._corr = None
        layout = correlated_layout(correlations, self.compiled.paramsets)
        if layout is not None:
            self._corr = {k: jnp.asarray(v) for k, v in layout.items()}
        if isinstance(regularisation, Tikhonov):
            regularisation = [regularisation]
        self._tikhonov = []
        for reg in regularisation or []:
            dmat = reg.matrix()
            missing = [n for n in reg.parameters if n not in cfg.par_names]
            if missing:
                msg = f"Tikhonov: unknown parameters {missing}; the model has {cfg.par_names}"
                raise ParameterError(msg)
            idx = np.array([cfg.par_names.index(n) for n in reg.parameters])
            ref = (
                np.zeros(idx.size)
                if reg.reference is None
                else np.asarray(reg.reference)
            )
            self._tikhonov.append(
                (
                    jnp.asarray(idx),
                    jnp.asarray(dmat),
                    jnp.asarray(ref, dtype=float),
                    float(reg.tau),
                )
            )


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


# ---------------------------------------------------------------- helpers


def _take(pars: Array, a: dict[str, Array], key: str) -> Array:
    """``pars[index]``; as a one-hot matrix product for small models, whose
    gradient avoids a scatter (a fixed cost that dominates tiny likelihoods)."""
    onehot = a.get(key + "_onehot")
    if onehot is not None:
        return pars[: onehot.shape[0]] @ onehot
    return pars[a[key]]


def _normsys_product(code: str, alpha: Array, a: dict[str, Array]) -> Array:
    """Product over normsys parameters of their factors, per (sample, channel).

    For the exponential codes the factors are positive and the product is
    ``exp`` of a sum of logarithms (one matrix product for code 1), which is
    cheaper to differentiate than a product reduction.
    """
    if code == "code1":
        a0 = alpha[:, 0]
        return jnp.exp(
            jnp.maximum(a0, 0.0) @ a["ns_log_hi"]
            - jnp.minimum(a0, 0.0) @ a["ns_log_lo"]
        )
    if code == "lnN_smooth":
        return jnp.exp(jnp.sum(jnp.log(_normsys(code, alpha, a)), axis=0))
    return jnp.prod(_normsys(code, alpha, a), axis=0)


def _normsys(code: str, alpha: Array, a: dict[str, Array]) -> Array:
    lo, hi = a["ns_lo"], a["ns_hi"]
    if code == "code1":
        return interpolation.code1(alpha, lo, hi)
    if code == "code4":
        return interpolation.code4(alpha, lo, hi, coefficients=a["ns_coef"])
    if code == "lnN_smooth":
        return interpolation.lnn_smooth(alpha, lo, hi)
    if code == "code0":
        return 1.0 + interpolation.code0(alpha, lo, 1.0, hi)
    return 1.0 + interpolation.code2(alpha, lo, 1.0, hi)


def _with_extra_parameters(
    compiled: CompiledSpec, configs: Sequence[Mapping[str, Any]] | None
) -> CompiledSpec:
    extra = extra_paramsets(configs, {p.name for p in compiled.paramsets})
    if not extra:
        return compiled
    sets, start = list(compiled.paramsets), compiled.npars
    for e in extra:
        n = e["inits"].size
        sets.append(
            ParamSet(
                name=e["name"], constraint="none", n_parameters=n, is_scalar=n == 1,
                inits=e["inits"], bounds=e["bounds"], fixed=e["fixed"], auxdata=None,
                sigmas=None, factors=None, start=start, types=("extra",),
            )
        )  # fmt: skip
        start += n
    return dataclasses.replace(compiled, paramsets=tuple(sets), npars=start)


_ONEHOT_MAX = 4096  # entries of a one-hot gather matrix worth a matmul


def _device_arrays(c: CompiledSpec) -> dict[str, Array]:
    names = [
        "nominal", "gather", "ns_index", "ns_lo", "ns_hi", "ns_coef", "hs_index",
        "hs_onehot", "hs_sym", "hs_asym", "aux_index", "aux_poisson", "aux_sigma",
        "aux_factor",
    ]  # fmt: skip
    out = {
        n: None if getattr(c, n) is None else jnp.asarray(getattr(c, n)) for n in names
    }
    for key in ("ns_index", "hs_index", "aux_index"):
        idx = getattr(c, key)
        n_base = c.npars
        if idx.size and n_base * idx.size <= _ONEHOT_MAX:
            onehot = np.zeros((int(idx.max()) + 1, idx.size))
            onehot[idx, np.arange(idx.size)] = 1.0
            out[key + "_onehot"] = jnp.asarray(onehot)
    out["ns_log_hi"] = jnp.log(out["ns_hi"])
    out["ns_log_lo"] = jnp.log(out["ns_lo"])
    return out


def _vectorize(fn: Callable[[Array, Array], Array], p: Array, d: Array) -> Array:
    """Broadcast a scalar ``fn(pars, data)`` over leading batch axes (jitted once)."""
    model = fn.__self__  # a bound method of Model
    key = (fn.__name__, p.ndim > 1 or d.ndim > 1)
    if key not in model._jitted:
        mapped = jnp.vectorize(fn, signature="(p),(d)->()") if key[1] else fn
        model._jitted[key] = jax.jit(mapped)
    return model._jitted[key](p, d)


def _validate(spec: Mapping[str, Any]) -> None:
    """Schema validation by the spec module (skipped while it is not available)."""
    try:
        from hepprob.histfactory.spec import validate_model_spec
    except ImportError:  # pragma: no cover - spec module being written
        return
    validate_model_spec(spec)
