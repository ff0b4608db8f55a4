"""NUTS runs that compile their transition loop once per model structure and shapes.

NumPyro's ``MCMC.run`` wraps its loop in a new ``jax.jit`` on every call, so a
second run of the same model on new data (toys, another seed) traces and
compiles again: seconds on a CPU, more than the sampling itself at 1000 draws.
Here the loop over NUTS transitions is jitted once per *key*: the model function
(by identity), the tree structure of its arguments, the shapes and dtypes of
their array leaves, the values of their other leaves (Python numbers, strings)
and the sampler settings. Array leaves are arguments of the compiled loop, never
constants in it, so a cached loop run on new data samples the new posterior.

The start point comes from NumPyro's own ``NUTS.init`` at each call (eagerly, so
its "no valid initial parameters" error stays), and each step is NumPyro's
``NUTS.sample``: the draws are those of ``MCMC(NUTS(model)).run`` with the same
key, for one chain or several vectorised ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np
from numpyro.infer import NUTS, init_to_sample
from numpyro.util import nested_attrgetter

from hepprob._program_cache import cached, split_arguments

__all__ = ["run_nuts"]


def run_nuts(
    model: Callable[..., Any],
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    key: jax.Array,
    *,
    num_warmup: int,
    num_samples: int,
    num_chains: int,
    extra_fields: Sequence[str],
    init_strategy: Callable[..., Any],
    **nuts_settings: Any,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Draws (constrained sites) and the extra fields, each shaped (chain, draw, ...).

    ``nuts_settings`` go to ``numpyro.infer.NUTS`` (hashable values); several
    chains run vectorised on one device.
    """
    arrays, rebuild, signature = split_arguments(args, kwargs)
    kernel = NUTS(model, init_strategy=init_strategy, **nuts_settings)
    if num_chains > 1:
        key = jax.random.split(key, num_chains)  # as MCMC.run does
    fields = ("z", "diverging", *extra_fields)
    settings = (
        num_warmup,
        num_samples,
        num_chains,
        fields,
        *sorted(nuts_settings.items()),
    )
    if init_strategy is init_to_sample:  # a start rule without values of its own
        init = cached(
            ("init", model, signature, settings),
            lambda: jax.jit(
                lambda key, arrays: kernel.init(key, num_warmup, None, *rebuild(arrays))
            ),
        )
        state = init(key, arrays)
        if not np.all(np.isfinite(jax.device_get(state.potential_energy))):
            msg = "Cannot find valid initial parameters (non-finite log density)"
            raise RuntimeError(msg)
    else:
        state = kernel.init(key, num_warmup, None, *(args, kwargs))
    loop = cached(
        ("nuts", model, signature, settings),
        lambda: _compile(kernel, rebuild, num_warmup, num_samples, num_chains, fields),
    )
    collected = jax.device_get(loop(state, arrays))
    if num_chains == 1:
        collected = jax.tree_util.tree_map(lambda x: x[None], collected)
    else:  # (draw, chain, ...) -> (chain, draw, ...)
        collected = jax.tree_util.tree_map(lambda x: np.swapaxes(x, 0, 1), collected)
    samples, *rest = collected
    return samples, dict(zip(fields[1:], rest, strict=True))


def _compile(
    kernel: NUTS,
    rebuild: Callable[[Sequence[Any]], tuple[tuple[Any, ...], dict[str, Any]]],
    num_warmup: int,
    num_samples: int,
    num_chains: int,
    fields: tuple[str, ...],
) -> Callable[..., Any]:
    """The jitted warmup + sampling loop; ``kernel`` must be initialised already.

    The same transitions as ``numpyro.util.fori_collect``: ``num_warmup`` steps,
    then ``num_samples`` steps whose fields are collected (latent values
    constrained, as NumPyro's ``postprocess_fn`` does). ``lax.scan`` stacks the
    draws; no buffer is copied per step.
    """

    def loop(state: Any, arrays: Sequence[Any]) -> list[Any]:
        args, kwargs = rebuild(arrays)
        constrain = kernel.postprocess_fn(args, kwargs)
        if num_chains > 1:
            constrain = jax.vmap(constrain)

        def collect(state: Any) -> list[Any]:
            values = list(nested_attrgetter(*fields)(state))
            values[0] = constrain(values[0])
            return values

        def step(_: Any, state: Any) -> Any:
            return kernel.sample(state, args, kwargs)

        def draw(state: Any, _: Any) -> tuple[Any, list[Any]]:
            state = step(None, state)
            return state, collect(state)

        state = jax.lax.fori_loop(0, num_warmup, step, state)
        _, collection = jax.lax.scan(draw, state, length=num_samples)
        return collection

    return jax.jit(loop)
