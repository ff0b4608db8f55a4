"""NUTS runs that compile their transition loop once per model structure and shapes.

NumPyro's ``MCMC.run`` wraps its loop in a new ``jax.jit`` on every call, so a
second run of the same model on new data (toys, another seed) traces and
compiles again: seconds on a CPU, more than the sampling itself at 1000 draws.
Here the loop over NUTS transitions is jitted once per *key*: the model function
(by identity), the tree structure of its arguments, the shapes and dtypes of
their array leaves, the values of their other leaves (Python numbers, strings)
and the sampler settings. Array leaves are arguments of the compiled loop, never
constants in it, so a cached loop run on new data samples the new posterior.

The start point comes from NumPyro's own ``NUTS.init`` at each call (its "no
valid initial parameters" error is raised here), and each step is NumPyro's
``NUTS.sample``: the draws are those of ``MCMC(NUTS(model)).run`` with the same
key, for one chain (several vectorised ones: to rounding).

Across processes, both programs (start-point search and loop) are kept on disk
by :mod:`hepprob._program_store`, keyed by a probe of the model (:func:`_probe`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import jax
import numpy as np
from numpyro import handlers
from numpyro.infer import NUTS, init_to_sample
from numpyro.infer.util import constrain_fn, potential_energy, unconstrain_fn
from numpyro.util import nested_attrgetter

from hepprob._program_cache import cached, split_arguments
from hepprob._program_store import probe_key, stored_program

__all__ = ["run_nuts"]

# calls of the compiled loop per run when a progress bar is shown
_PROGRESS_UPDATES = 50


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
    progress_bar: bool = False,
    **nuts_settings: Any,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Draws (constrained sites) and the extra fields, each shaped (chain, draw, ...).

    ``nuts_settings`` go to ``numpyro.infer.NUTS`` (hashable values); several
    chains run vectorised on one device. With ``progress_bar`` the loop runs in
    about 50 calls of one compiled chunk of steps, a tqdm bar advancing between
    them (host callbacks inside the loop could not be stored on disk).
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
    key_of = cached(  # the disk store's key: one probe trace per structure
        ("nuts-key", model, signature, settings),
        lambda: probe_key(
            _probe(model, rebuild),
            (key[0] if num_chains > 1 else key, arrays),
            settings,
        ),
    )
    set_up = []  # holds True once `kernel` was initialised (traced or run) here

    def start(key: jax.Array, arrays: Sequence[Any]) -> Any:
        state = kernel.init(key, num_warmup, None, *rebuild(arrays))
        set_up.append(True)
        return state

    def ready_kernel(args: tuple[Any, ...], kwargs: dict[str, Any]) -> NUTS:
        """``kernel`` if set up here, else a new one set up for these arguments
        (the start state came from a stored program): a fixed key, the start
        point it finds unused."""
        if set_up:
            return kernel
        fresh = NUTS(model, init_strategy=init_to_sample, **nuts_settings)
        dummy = jax.random.PRNGKey(0)
        if num_chains > 1:
            dummy = jax.random.split(dummy, num_chains)
        fresh.init(dummy, num_warmup, None, args, kwargs)
        return fresh

    if init_strategy is init_to_sample:  # a start rule without values of its own
        init = cached(
            ("init", model, signature, settings),
            lambda: stored_program(key_of and key_of + "-init", start, (key, arrays)),
        )
        state = init(key, arrays)
        if not np.all(np.isfinite(jax.device_get(state.potential_energy))):
            msg = "Cannot find valid initial parameters (non-finite log density)"
            raise RuntimeError(msg)
    else:
        state = start(key, arrays)  # eagerly: the start values are the user's
    total = num_warmup + num_samples
    steps = -(-total // _PROGRESS_UPDATES) if progress_bar else total
    loop = cached(
        ("nuts", model, signature, settings, steps),
        lambda: stored_program(
            key_of and f"{key_of}-loop{steps}",
            _loop(
                ready_kernel,
                rebuild,
                num_warmup,
                steps,
                num_chains,
                fields,
            ),
            (state, arrays),
        ),
    )
    chunks = []
    with _progress(total, num_warmup, progress_bar) as advance:
        for done in range(0, total, steps):
            state, chunk = loop(state, arrays)
            chunks.append(jax.device_get(chunk))
            advance(min(steps, total - done))
    collected = jax.tree_util.tree_map(
        lambda *parts: np.concatenate(parts)[num_warmup:total], *chunks
    )
    if num_chains == 1:
        collected = jax.tree_util.tree_map(lambda x: x[None], collected)
    else:  # (draw, chain, ...) -> (chain, draw, ...)
        collected = jax.tree_util.tree_map(lambda x: np.swapaxes(x, 0, 1), collected)
    samples, *rest = collected
    return samples, dict(zip(fields[1:], rest, strict=True))


def _probe(
    model: Callable[..., Any],
    rebuild: Callable[[Sequence[Any]], tuple[tuple[Any, ...], dict[str, Any]]],
) -> Callable[..., Any]:
    """What the NUTS programs compute of the model, traced once for their key.

    A draw of every site by the start rule (``init_to_sample``: improper priors
    uniform in the unconstrained space), and at a point of the unconstrained
    space the potential energy with its gradient and the constrained values:
    with NumPyro's version and the sampler settings these fix the start-point
    search and the NUTS loop.
    """

    def probe(key: jax.Array, arrays: Sequence[Any]) -> Any:
        args, kwargs = rebuild(arrays)
        seeded = handlers.seed(model, key)
        start = handlers.substitute(seeded, substitute_fn=init_to_sample)
        draw = handlers.trace(start).get_trace(*args, **kwargs)
        latent = {
            name: site["value"]
            for name, site in draw.items()
            if site["type"] == "sample" and not site["is_observed"]
        }
        point = unconstrain_fn(model, args, kwargs, latent)

        def potential(point: Any) -> Any:
            return potential_energy(model, args, kwargs, point)

        return (
            latent,
            jax.value_and_grad(potential)(point),
            constrain_fn(model, args, kwargs, point),
        )

    return probe


def _loop(
    ready_kernel: Callable[[tuple[Any, ...], dict[str, Any]], NUTS],
    rebuild: Callable[[Sequence[Any]], tuple[tuple[Any, ...], dict[str, Any]]],
    num_warmup: int,
    steps: int,
    num_chains: int,
    fields: tuple[str, ...],
) -> Callable[..., Any]:
    """``steps`` NUTS transitions from a state: the new state and the stacked fields.

    The transitions of ``numpyro.util.fori_collect``, each collecting ``fields``
    (latent values constrained, as NumPyro's ``postprocess_fn`` does). One
    ``lax.scan`` runs warmup and sampling alike (the kernel adapts while
    ``state.i < num_warmup``), so the program holds one copy of the NUTS
    transition, not two; the caller drops the warmup rows.
    """

    def loop(state: Any, arrays: Sequence[Any]) -> list[Any]:
        args, kwargs = rebuild(arrays)
        kernel = ready_kernel(args, kwargs)
        constrain = kernel.postprocess_fn(args, kwargs)
        if num_chains > 1:
            constrain = jax.vmap(constrain)

        def draw(state: Any, _: Any) -> tuple[Any, list[Any]]:
            state = kernel.sample(state, args, kwargs)
            values = list(nested_attrgetter(*fields)(state))
            values[0] = constrain(values[0])
            return state, values

        return jax.lax.scan(draw, state, length=steps)

    return loop


@contextlib.contextmanager
def _progress(
    total: int, num_warmup: int, show: bool
) -> Iterator[Callable[[int], None]]:
    """A tqdm bar over all steps, labelled warmup, then sample; a no-op if not shown."""
    from hepprob._progress import progress

    with progress(total=total, desc="warmup", unit="step", show=show) as bar:

        def advance(n: int) -> None:
            bar.update(n)
            if bar.n >= num_warmup and bar.desc != "sample":
                bar.set_description("sample")

        yield advance
