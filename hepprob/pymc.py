"""PyMC bridge: hepprob likelihoods and distributions inside a ``pm.Model``.

What to use when:

* :func:`HistFactory` — a HistFactory model (``hepprob.histfactory.Model``) with
  its observed data, as one likelihood term of a PyMC model.
* :func:`Likelihood` — the same for any hepprob model function (``hepprob.param``
  sites, observed sites), e.g. an unbinned fit or a mixed binned/unbinned one.
* :func:`Distribution` — one hepprob/NumPyro distribution (say a Crystal Ball)
  as an observed PyMC variable whose parameters are PyMC variables.
* :func:`logp_op` — any JAX function of arrays as a PyTensor ``Op``.

Each parameter of a hepprob model gets exactly one prior: yours, when you pass a
PyMC variable for it in ``pars``; otherwise hepprob creates a free PyMC variable
of that name (transformed to the parameter's support) and adds the model's own
prior for it (``hepprob.param(..., prior=...)``, default uniform within finite
bounds, flat otherwise). For HistFactory models, ``constraints="data"`` treats
auxiliary measurements as observed data (flat priors on the nuisance
parameters) and ``constraints="prior"`` turns them into priors (truncated
Normal; Gamma for Poisson-constrained ``shapesys``). Their posteriors agree up
to the bounds unless you give your own PyMC priors in ``pars``: with
``"data"`` your prior multiplies the constraint term, with ``"prior"`` it
replaces it.

The log-density and its gradient are JAX functions (jitted); the ``Op`` is
registered with PyTensor's JAX backend, so ``pm.sample()`` (PyMC's NUTS, through
the ``Op``'s value and vector-Jacobian product) and
``pm.sample(nuts_sampler="numpyro")`` (the JAX function inlined in the graph) both
work. PyMC and PyTensor are imported only when one of these functions is called.
PyMC's multiprocess sampling forks a process that already runs JAX threads (JAX
warns about it); prefer ``cores=1`` or ``nuts_sampler="numpyro"``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.distributions import constraints
from numpyro.distributions.distribution import Distribution as _NumPyroDist

from hepprob._optional import require
from hepprob.errors import ModelError, ParameterError
from hepprob.model import ModelStructure, log_likelihood, trace_model

__all__ = ["Distribution", "HistFactory", "Likelihood", "logp_op"]


def __dir__() -> list[str]:
    return __all__


def logp_op(
    fn: Callable[..., Any], *, output_ndim: int = 0, name: str | None = None
) -> Any:
    """Wrap a JAX function of float64 arrays as a PyTensor ``Op`` with a gradient.

    The ``Op``'s value is ``jax.jit(fn)``; its gradient is a second ``Op``
    computing the vector-Jacobian product with ``jax.vjp`` (jitted). Both are
    registered with ``pytensor.link.jax.dispatch.jax_funcify``, so a graph
    compiled to JAX (``pm.sample(nuts_sampler="numpyro")``) calls ``fn`` itself.

    Args:
        fn: ``fn(*arrays) -> array`` of ``output_ndim`` dimensions (a scalar
            log-density by default). It must be differentiable by JAX.
        output_ndim: number of dimensions of ``fn``'s output.
        name: label shown in PyTensor graphs.

    Returns:
        An ``Op``: call it on PyTensor variables (or numbers), ``op(x, y)``.

    Example:
        >>> import jax.numpy as jnp
        >>> op = logp_op(lambda x: -0.5 * jnp.sum(x**2))  # doctest: +SKIP
        >>> pm.Potential("gauss", op(x))  # doctest: +SKIP
    """
    if not callable(fn):
        msg = f"logp_op: fn must be callable, got {type(fn).__name__}"
        raise ModelError(msg)
    if (
        isinstance(output_ndim, bool)
        or not isinstance(output_ndim, int)
        or output_ndim < 0
    ):
        msg = (
            f"logp_op: output_ndim must be a non-negative integer, got {output_ndim!r}"
        )
        raise ParameterError(msg)
    value_cls, _ = _op_classes()
    return value_cls(fn, output_ndim, name or getattr(fn, "__name__", "jax_fn"))


def Likelihood(
    name: str,
    model: Callable[..., Any],
    *model_args: Any,
    pars: Mapping[str, Any] | None = None,
    **model_kwargs: Any,
) -> dict[str, Any]:
    """Add a hepprob model's log-likelihood to the current ``pm.Model``.

    The term added is ``pm.Potential(name, log L(pars | data) + Σ log π(p))``,
    where the sum runs over the parameters hepprob created (those not in
    ``pars``), with the model's own priors.

    Args:
        name: name of the Potential in the PyMC model.
        model: a NumPyro model function with ``hepprob.param`` sites.
        *model_args: its arguments (typically the observed data).
        pars: ``{parameter name: PyMC variable or number}``; a number fixes the
            parameter. Parameters left out become PyMC variables of their name.
        **model_kwargs: keyword arguments of ``model``.

    Returns:
        ``{parameter name: PyTensor variable}`` for every model parameter.

    Raises:
        ParameterError: unknown names in ``pars``, or a shape that does not fit.
        ModelError: a parameter's prior has a support PyMC cannot mirror.
    """
    pm = require("pymc", "the PyMC bridge")
    pt = require("pytensor.tensor", "the PyMC bridge")
    structure = ModelStructure.from_model(model, *model_args, **model_kwargs)
    pars = dict(pars or {})
    unknown = sorted(set(pars) - set(structure.names))
    if unknown:
        msg = f"{name}: pars has unknown parameter(s) {unknown}; the model has {structure.names}"
        raise ParameterError(msg)
    priors = _prior_sites(model, structure, model_args, model_kwargs)

    tensors, own_prior = {}, []
    for info in structure.params:
        if info.name in pars:
            tensors[info.name] = _as_param_tensor(pt, name, info, pars[info.name])
        else:
            tensors[info.name] = _free_variable(pm, info, priors[info.name])
            own_prior.append(info.name)

    loglike = log_likelihood(model, structure, model_args, model_kwargs)
    names = structure.names
    shapes = [p.shape for p in structure.params]
    prior_fns = {n: priors[n] for n in own_prior}

    def log_density(*values: jax.Array) -> jax.Array:
        vals = [jnp.reshape(v, s) for v, s in zip(values, shapes, strict=True)]
        total = loglike(jnp.concatenate([jnp.ravel(v) for v in vals]))
        for n, v in zip(names, vals, strict=True):
            if n in prior_fns:
                total = total + jnp.sum(prior_fns[n].log_prob(v))
        return total

    op = logp_op(log_density, name=f"{name}_logp")
    pm.Potential(name, op(*[tensors[n] for n in names]))
    return tensors


def HistFactory(
    name: str,
    model: Any,
    *,
    observed: Any,
    pars: Mapping[str, Any] | None = None,
    constraints: str = "data",
) -> dict[str, Any]:
    """Add a HistFactory model with its data to the current ``pm.Model``.

    Args:
        name: name of the likelihood term (a ``pm.Potential``).
        model: a ``hepprob.histfactory.Model`` (``ws.model()``).
        observed: the data, main bins followed by the auxiliary data (as
            ``ws.data(model)`` and pyhf).
        pars: ``{parameter name: PyMC variable or number}`` (modifier names for
            vector parameters such as ``staterror``); others are created with the
            model's priors.
        constraints: ``"data"``: auxiliary measurements are observed data and
            the nuisance parameters have flat priors; ``"prior"``: the
            constraint terms are the nuisance parameters' priors.

    Returns:
        ``{parameter name: PyTensor variable}``.

    Raises:
        ModelError: ``model`` is not a HistFactory model.
        ParameterError: bad ``constraints`` or ``pars``.
    """
    if not hasattr(model, "numpyro_model"):
        msg = (
            f"{name}: model must be a hepprob.histfactory.Model (ws.model()), "
            f"got {type(model).__name__}; use hepprob.pymc.Likelihood for model functions"
        )
        raise ModelError(msg)
    if constraints not in ("data", "prior"):
        msg = f"{name}: constraints must be 'data' or 'prior', got {constraints!r}"
        raise ParameterError(msg)
    fn = model.numpyro_model(constraints=constraints)
    data = np.asarray(observed, dtype=np.float64)
    return Likelihood(name, fn, data, pars=pars)


def Distribution(
    name: str,
    factory: Callable[..., _NumPyroDist],
    *params: Any,
    observed: Any = None,
    **kwargs: Any,
) -> Any:
    """A NumPyro/hepprob distribution as a PyMC variable (``pm.CustomDist``).

    ``factory(*param_values)`` builds the distribution, e.g.
    ``lambda m, s: hepprob.dist.CrystalBall(m, s, 1.5, 3.0)``. Its ``log_prob``
    (elementwise, via :func:`logp_op`) is the variable's log-density, and its
    ``sample`` draws prior/posterior predictive values.

    Args:
        name: the PyMC variable name.
        factory: parameters -> NumPyro distribution (scalar support).
        *params: PyMC variables or numbers, passed to ``factory`` in order.
        observed: data for an observed variable (the usual case).
        **kwargs: passed on to ``pm.CustomDist`` (``shape``, ``dims``, ...).

    Returns:
        The PyMC variable.

    Raises:
        ModelError: ``factory`` is not callable or does not return a distribution.
    """
    pm = require("pymc", "the PyMC bridge")
    if not callable(factory):
        msg = f"{name}: factory must be callable, got {type(factory).__name__}"
        raise ModelError(msg)
    probe = factory(*[_probe_value(p) for p in params])
    if not isinstance(probe, _NumPyroDist):
        msg = f"{name}: factory must return a numpyro distribution, got {type(probe).__name__}"
        raise ModelError(msg)

    def elementwise(value: jax.Array, *values: jax.Array) -> jax.Array:
        return factory(*values).log_prob(value)

    def logp(value: Any, *values: Any) -> Any:
        op = logp_op(elementwise, output_ndim=value.ndim, name=f"{name}_logp")
        return op(value, *values)

    def random(*values: Any, rng: Any = None, size: Any = None) -> np.ndarray:
        rng = np.random.default_rng(rng)
        dist = factory(*[jnp.asarray(v, dtype=jnp.float64) for v in values])
        if size is not None:  # independent draws for every entry of size
            dist = dist.expand(tuple(int(n) for n in size))
        key = jax.random.PRNGKey(int(rng.integers(2**31)))
        return np.asarray(dist.sample(key), dtype=np.float64)

    return pm.CustomDist(
        name,
        *params,
        logp=logp,
        random=random,
        observed=observed,
        dtype="float64",
        **kwargs,
    )


# --------------------------------------------------------------------------- #
# private helpers


@functools.cache
def _op_classes() -> tuple[type, type]:
    """Define the value and VJP ``Op`` classes (PyTensor is imported lazily)."""
    require("pytensor", "the PyMC bridge")
    import pytensor.tensor as pt
    from pytensor.graph.basic import Apply
    from pytensor.graph.op import Op
    from pytensor.link.jax.dispatch import jax_funcify

    class JaxVJPOp(Op):
        """Vector-Jacobian product of a JAX function: ``(*x, v) -> v·∂fn/∂x``."""

        def __init__(self, fn: Callable[..., Any], name: str) -> None:
            self.fn = fn
            self.name = name

            def vjp(*args: jax.Array) -> tuple[jax.Array, ...]:
                *xs, cotangent = args
                _, pullback = jax.vjp(fn, *xs)
                return tuple(pullback(cotangent))

            self.jax_fn = vjp
            self._jitted = jax.jit(vjp)

        def make_node(self, *inputs: Any) -> Any:
            inputs = [_as_float64(pt, x) for x in inputs]
            outputs = [x.type() for x in inputs[:-1]]
            return Apply(self, inputs, outputs)

        def perform(self, node: Any, inputs: Any, outputs: Any) -> None:
            grads = self._jitted(*inputs)
            for out, g, x in zip(outputs, grads, inputs[:-1], strict=True):
                out[0] = np.asarray(g, dtype=np.float64).reshape(np.shape(x))

        def __str__(self) -> str:
            return f"JaxVJP{{{self.name}}}"

    class JaxOp(Op):
        """A JAX function as a PyTensor Op; gradient through :class:`JaxVJPOp`."""

        def __init__(self, fn: Callable[..., Any], output_ndim: int, name: str) -> None:
            self.fn = fn
            self.output_ndim = output_ndim
            self.name = name
            self.jax_fn = fn
            self._jitted = jax.jit(fn)
            self._vjp = JaxVJPOp(fn, name)

        def make_node(self, *inputs: Any) -> Any:
            inputs = [_as_float64(pt, x) for x in inputs]
            out = pt.TensorType("float64", shape=(None,) * self.output_ndim)()
            return Apply(self, inputs, [out])

        def perform(self, node: Any, inputs: Any, outputs: Any) -> None:
            value = np.asarray(self._jitted(*inputs), dtype=np.float64)
            if value.ndim != self.output_ndim:
                msg = (
                    f"{self.name}: the JAX function returned {value.ndim} dimension(s), "
                    f"the Op was declared with output_ndim={self.output_ndim}"
                )
                raise ModelError(msg)
            outputs[0][0] = value

        def grad(self, inputs: Any, output_grads: Any) -> list[Any]:
            return list(_as_list(self._vjp(*inputs, output_grads[0])))

        def __str__(self) -> str:
            return f"JaxOp{{{self.name}}}"

    @jax_funcify.register(JaxOp)
    @jax_funcify.register(JaxVJPOp)
    def _jax_funcify_hepprob(op: Any, **kwargs: Any) -> Callable[..., Any]:
        return op.jax_fn

    return JaxOp, JaxVJPOp


def _as_list(x: Any) -> list[Any]:
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _as_float64(pt: Any, x: Any) -> Any:
    var = pt.as_tensor_variable(x)
    return var if var.dtype == "float64" else pt.cast(var, "float64")


def _probe_value(p: Any) -> Any:
    """A concrete stand-in for a parameter, to check a factory before tracing."""
    test = getattr(p, "type", None)
    if test is None:
        return jnp.asarray(p, dtype=jnp.float64)
    shape = tuple(1 if s is None else s for s in getattr(test, "shape", ()))
    return jnp.ones(shape, dtype=jnp.float64)


def _prior_sites(
    model: Callable[..., Any],
    structure: ModelStructure,
    args: Any,
    kwargs: Mapping[str, Any],
) -> dict[str, Any]:
    """The prior distribution of each ``param`` site (as NumPyro traced it)."""
    tr = trace_model(model, None, args, kwargs)
    return {n: tr[n]["fn"] for n in structure.names}


def _as_param_tensor(pt: Any, where: str, info: Any, value: Any) -> Any:
    var = _as_float64(pt, value)
    static = getattr(var.type, "shape", None)
    if static is not None and (
        len(static) != len(info.shape)
        or any(
            s is not None and s != t for s, t in zip(static, info.shape, strict=True)
        )
    ):
        msg = (
            f"{where}: pars[{info.name!r}] has shape {tuple(static)}, parameter "
            f"{info.name!r} has shape {info.shape}"
        )
        raise ParameterError(msg)
    return var


def _free_variable(pm: Any, info: Any, prior: Any) -> Any:
    """A flat PyMC variable on the prior's support; the prior itself is in the Op."""
    from pymc.distributions.transforms import Interval

    support = prior.support
    while isinstance(support, constraints.independent):
        support = support.base_constraint
    shape = info.shape if info.shape else None
    init = np.asarray(info.init, dtype=np.float64)
    if support is constraints.real or isinstance(support, type(constraints.real)):
        return pm.Flat(info.name, shape=shape, initval=init)
    if isinstance(support, constraints.interval):
        lo, hi = np.asarray(support.lower_bound), np.asarray(support.upper_bound)
    elif isinstance(support, constraints.greater_than):
        lo, hi = np.asarray(support.lower_bound), None
    elif isinstance(support, constraints.less_than):
        lo, hi = None, np.asarray(support.upper_bound)
    else:
        msg = (
            f"parameter {info.name!r}: its prior's support {support} has no PyMC "
            "transform here; pass your own PyMC variable in pars"
        )
        raise ModelError(msg)
    init = _inside(init, lo, hi)
    return pm.Flat(
        info.name, shape=shape, initval=init, default_transform=Interval(lo, hi)
    )


def _inside(init: np.ndarray, lo: Any, hi: Any) -> np.ndarray:
    """Start values strictly inside the support (PyMC's transform is open)."""
    lo_ = -np.inf if lo is None else lo
    hi_ = np.inf if hi is None else hi
    width = np.where(np.isfinite(hi_ - lo_), hi_ - lo_, 1.0)
    return np.clip(init, lo_ + 1e-6 * width, hi_ - 1e-6 * width)
