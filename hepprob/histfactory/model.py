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

from hepprob._typing import Array, ArrayLike
from hepprob.errors import DataError, ModelError, ParameterError
from hepprob.histfactory import kernel
from hepprob.histfactory.compile import CompiledSpec, ParamSet, compile_spec
from hepprob.histfactory.kernel import Structure, poisson_logpdf, to_device
from hepprob.histfactory.modifiers.correlated import correlated_layout
from hepprob.histfactory.modifiers.custom import YieldFunction, extra_paramsets
from hepprob.histfactory.modifiers.eft import EFTMorphing
from hepprob.histfactory.modifiers.regularisation import Tikhonov

__all__ = ["Model", "ModelConfig", "Structure", "poisson_logpdf"]


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
        return self._m._batched("by_sample" if return_by_sample else "main", p)

    def logpdf(self, maindata: ArrayLike, pars: ArrayLike) -> Array:
        """Sum of Poisson log-probabilities of the main counts."""
        p = self._m._check_pars(pars)
        d = self._m._check_data(maindata, self._m.config.nmaindata, "maindata")
        return self._m._vectorize("main_logpdf", p, d)


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
        return self._m._batched("aux", p)

    def logpdf(self, auxdata: ArrayLike, pars: ArrayLike) -> Array:
        """Sum of constraint log-probabilities."""
        p = self._m._check_pars(pars)
        d = self._m._check_data(auxdata, self._m.config.nauxdata, "auxdata")
        return self._m._vectorize("constraint_logpdf", p, d)


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
        checked: a dict shared by models built from one workspace: samples
            checked once are not checked again (patchset scans).

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
        checked: dict[int, Any] | None = None,
    ) -> None:
        if validate:
            _validate(spec)
        self.spec = spec
        compiled = compile_spec(spec, modifier_settings, checked=checked)
        self._nbase = compiled.npars
        self.compiled = _with_extra_parameters(compiled, extra_parameters)
        self.config = ModelConfig(self.compiled, poi_name)
        self.clip_sample_data = clip_sample_data
        self.clip_bin_data = clip_bin_data
        self.batch_size = None
        self.main_model = _MainModel(self)
        self.constraint_model = _ConstraintModel(self)
        host = _host_arrays(self.compiled, self._nbase)
        extras = self._setup_extras(yield_functions, eft, correlations, regularisation)
        host.update(extras.pop("arrays"))
        self._arrays: dict[str, Any] = jax.tree_util.tree_map(jax.device_put, host)
        #: what the compiled programs depend on besides array values (hashable):
        #: models of equal structure and array shapes share them
        self.structure = Structure(
            nbase=self._nbase,
            npars=self.compiled.npars,
            nmain=self.compiled.nbins,
            naux=int(self.compiled.aux_index.size),
            ns_code=self.compiled.ns_code if self.compiled.ns_index.size else None,
            hs_code=self.compiled.hs_code if self.compiled.hs_index.size else None,
            hs_region=self.compiled.hs_region,
            n_layers=int(self.compiled.gather.shape[1]),
            onehot=tuple(k for k in _INDEX_TABLES if k + "_onehot" in host),
            clip_sample=None if clip_sample_data is None else float(clip_sample_data),
            clip_bin=None if clip_bin_data is None else float(clip_bin_data),
            **extras,
        )
        self._k = kernel.kernels(self.structure)

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
        return self._batched("expected" if include_auxdata else "main", p)

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
            return self._vectorize("logpdf", p, d)[None]
        return self._vectorize("logpdf", p, d)

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
        """The pure scalar function ``(pars, data) -> logpdf`` (no input checks).

        It closes over this model's arrays (constants of any program that
        traces it); :meth:`logpdf_kernel` takes them as an argument instead.
        """
        return self._logpdf_single

    @property
    def arrays(self) -> dict[str, Any]:
        """The model's arrays: the pytree the kernel functions take last."""
        return self._arrays

    def logpdf_kernel(self) -> Callable[[Array, Array, Any], Array]:
        """The pure scalar ``(pars, data, arrays) -> logpdf``, one per structure.

        With ``arrays=model.arrays`` it equals :meth:`logpdf_fn`. The function
        object is shared by every model of equal :attr:`structure`, so a
        program compiled for one (a fit taking the arrays as data) serves all
        of them, e.g. every signal patch of a grid (see
        :mod:`hepprob.histfactory.padding` for patches that differ in shape).
        """
        return self._k.logpdf

    def expected_kernel(self) -> Callable[[Array, Any], Array]:
        """The pure ``(pars, arrays) -> expected main + auxiliary data``."""
        return self._k.expected

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
        p = to_device(pars)
        if p.ndim == 0 or p.shape[-1] != self.config.npars:
            msg = (
                f"pars must have length {self.config.npars} (the model's npars, "
                f"order config.par_names), got shape {tuple(p.shape)}"
            )
            raise ParameterError(msg)
        return p

    def _check_data(self, data: ArrayLike, n: int, what: str) -> Array:
        d = to_device(data)
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

    def _batched(self, name: str, p: Array) -> Array:
        """Kernel ``name`` jitted (once per structure), mapped over leading axes of ``p``."""
        if p.ndim == 1:
            return self._k.jitted(name, False)(p, self._arrays)
        out = self._k.jitted(name, True)(p.reshape(-1, p.shape[-1]), self._arrays)
        return out.reshape(*p.shape[:-1], *out.shape[1:])

    def _vectorize(self, name: str, p: Array, d: Array) -> Array:
        """Log-density kernel ``name`` broadcast over leading axes of ``p`` and ``d``."""
        batched = p.ndim > 1 or d.ndim > 1
        return self._k.jitted(name, batched)(p, d, self._arrays)

    # ------------------------------------------------------------ pure core
    # (closures over this model's arrays, for programs traced elsewhere)

    def _by_sample(self, pars: Array) -> Array:
        """Expected yields ``(samples, bins)`` for one parameter vector."""
        return self._k.by_sample(pars, self._arrays)

    def _main(self, pars: Array) -> Array:
        return self._k.main(pars, self._arrays)

    def _aux(self, pars: Array) -> Array:
        return self._k.aux(pars, self._arrays)

    def _full(self, pars: Array) -> Array:
        return self._k.expected(pars, self._arrays)

    def _main_logpdf(self, pars: Array, maindata: Array) -> Array:
        return self._k.main_logpdf(pars, maindata, self._arrays)

    def _constraint_logpdf(self, pars: Array, auxdata: Array) -> Array:
        return self._k.constraint_logpdf(pars, auxdata, self._arrays)

    def _regularisation(self, pars: Array) -> Array:
        """Sum of Tikhonov penalties ``-tau |D (theta - theta0)|^2`` (0 if none)."""
        return kernel.regularisation(self.structure, self._arrays, pars)

    def _logpdf_single(self, pars: Array, data: Array) -> Array:
        return self._k.logpdf(pars, data, self._arrays)

    def _values(self, pars: Array) -> dict[str, Array]:
        """``{name: value}`` (scalars for scalar sets) of a flat vector."""
        return {
            p.name: pars[p.start] if p.is_scalar else pars[p.slice]
            for p in self.compiled.paramsets
        }

    @property
    def _corr(self) -> dict[str, Array] | None:
        return self._arrays.get("corr")

    @property
    def _tikhonov(self) -> list[Any]:
        return self._arrays.get("tikhonov", [])

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
    ) -> dict[str, Any]:
        """Checked extras: :class:`Structure` fields, and their arrays under ``"arrays"``."""
        cfg = self.config
        sidx = {s: i for i, s in enumerate(cfg.samples)}
        arrays: dict[str, Any] = {}
        out: dict[str, Any] = {"arrays": arrays}

        def where(kind: str, channel: str, sample: str) -> tuple[int, slice]:
            if channel not in cfg.channel_slices or sample not in sidx:
                msg = (
                    f"{kind}: no sample {sample!r} in channel {channel!r}; channels "
                    f"{cfg.channels}, samples {cfg.samples}"
                )
                raise ModelError(msg)
            return sidx[sample], cfg.channel_slices[channel]

        eft_layout, eft_arrays = [], []
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
            eft_layout.append((s_idx, sl.start, sl.stop, tuple(term.coefficients)))
            eft_arrays.append(
                (np.asarray(term.linear, float), np.asarray(term.quadratic, float))
            )
        if eft_layout:
            out["eft"] = tuple(eft_layout)
            arrays["eft"] = eft_arrays
        yf_layout = []
        init_values = self._values(np.asarray(cfg.suggested_init()))
        for yf in yield_functions or []:
            s_idx, sl = where("yield_functions", yf.channel, yf.sample)
            try:
                value = np.asarray(yf.fn(init_values))
                np.broadcast_to(value, (sl.stop - sl.start,))
            except Exception as err:
                msg = (
                    f"yield function for ({yf.channel!r}, {yf.sample!r}) must map "
                    f"{{name: value}} to a scalar or {sl.stop - sl.start} values: {err}"
                )
                raise ModelError(msg) from err
            yf_layout.append((s_idx, sl.start, sl.stop, yf.fn))
        if yf_layout:
            out["yield_functions"] = tuple(yf_layout)
        if eft_layout or yf_layout:
            out["values"] = tuple(
                (p.name, p.start, p.n_parameters, p.is_scalar)
                for p in self.compiled.paramsets
            )
        layout = correlated_layout(correlations, self.compiled.paramsets)
        if layout is not None:
            out["correlated"] = True
            arrays["corr"] = layout
        if isinstance(regularisation, Tikhonov):
            regularisation = [regularisation]
        tikhonov = []
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
                else np.asarray(reg.reference, dtype=float)
            )
            tikhonov.append((idx, np.asarray(dmat), ref, np.float64(reg.tau)))
        if tikhonov:
            out["n_tikhonov"] = len(tikhonov)
            arrays["tikhonov"] = tikhonov
        return out


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
_INDEX_TABLES = ("ns_index", "aux_index")


def _host_arrays(c: CompiledSpec, nbase: int) -> dict[str, np.ndarray]:
    """The kernel's arrays (NumPy) of a compiled spec; absent families left out."""
    names = ["nominal", "gather", "aux_index", "aux_poisson", "aux_sigma", "aux_factor"]
    if c.ns_index.size:
        names += ["ns_index", "ns_lo", "ns_hi"]
        if c.ns_coef is not None:
            names.append("ns_coef")
    out = {n: np.asarray(getattr(c, n)) for n in names}
    if c.hs_index.size:
        out["hs_sym"], out["hs_asym"] = _histosys_maps(c, nbase)
    if c.ns_index.size:
        out["ns_log_hi"] = np.log(c.ns_hi)
        out["ns_log_lo"] = np.log(c.ns_lo)
    for key in _INDEX_TABLES:
        idx = getattr(c, key)
        if idx.size and c.npars * idx.size <= _ONEHOT_MAX:
            onehot = np.zeros((int(idx.max()) + 1, idx.size))
            onehot[idx, np.arange(idx.size)] = 1.0
            out[key + "_onehot"] = onehot
    return out


def _histosys_maps(c: CompiledSpec, nbase: int) -> tuple[np.ndarray, np.ndarray]:
    """``(samples * bins, nbase)`` matrices of the symmetric and asymmetric parts.

    Occurrence ``o`` (a histosys parameter on one sample) adds ``alpha S_o +
    g(alpha) A_o`` to its sample's bins; both sums are linear maps of the
    parameter vector (and of ``g`` applied to it), whose derivatives are the
    matrices themselves.
    """
    n_s, n_b = c.nominal.shape
    sample = np.argmax(c.hs_onehot, axis=0)  # (O,): each occurrence's sample
    rows = (sample[:, None] * n_b + np.arange(n_b)[None, :]).ravel()
    cols = np.repeat(c.hs_index, n_b)
    maps = []
    for part in (c.hs_sym, c.hs_asym):
        m = np.zeros((n_s * n_b, nbase))
        np.add.at(m, (rows, cols), part.ravel())
        maps.append(m)
    return maps[0], maps[1]


def _validate(spec: Mapping[str, Any]) -> None:
    """Schema validation by the spec module (skipped while it is not available)."""
    try:
        from hepprob.histfactory.spec import validate_model_spec
    except ImportError:  # pragma: no cover - spec module being written
        return
    validate_model_spec(spec)
