"""Python's cyclic garbage collector paused while hepprob traces a program.

Tracing and lowering allocate many short-lived objects, which set off full
collections; with jax, numpyro and arviz imported, each walks millions of
objects. A first ``hepprob.mcmc`` call in a new process spent about a third of
its time there (0.2-0.3 s of 0.9 s). Reference counting still frees
everything acyclic; cycles wait for the next collection after the call.
"""

from __future__ import annotations

import contextlib
import functools
import gc
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

__all__ = ["gc_paused"]

F = TypeVar("F", bound=Callable[..., Any])


@contextlib.contextmanager
def _paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def gc_paused(fn: F) -> F:
    """Decorate ``fn`` to run with the collector off (restored afterwards)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _paused():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
