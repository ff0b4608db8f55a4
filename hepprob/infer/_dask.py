"""Chunks of a vectorised computation on a ``dask.distributed`` cluster.

Each task is one call of a picklable payload's ``run(rows)`` (one compiled,
vectorised JAX program over a chunk); results are merged in order. A task
that raises is resubmitted up to ``retries`` times; one that still fails is
reported (its rows named in ``failed`` with the error), never dropped.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from hepprob._optional import require

__all__ = ["connect", "run_chunks"]


def __dir__() -> list[str]:
    return __all__


@contextlib.contextmanager
def connect(client: Any) -> Iterator[Any]:
    """``client`` itself, or for ``"local"`` a ``LocalCluster`` client closed on exit."""
    distributed = require("distributed", "Dask scans (client=...)")
    if not isinstance(client, str):
        yield client
        return
    if client != "local":
        msg = f"client must be a dask.distributed Client or 'local', got {client!r}"
        raise ValueError(msg)
    with (
        distributed.LocalCluster(threads_per_worker=1) as cluster,
        distributed.Client(cluster) as local,
    ):
        yield local


def _task(payload: Any, rows: Any) -> Any:
    return payload.run(rows)


def run_chunks(
    client: Any,
    payload: Any,
    source: Any,
    names: Sequence[str],
    chunk_size: int | None,
    retries: int,
    progress: bool | None,
    rows_of: Callable[[Any, np.ndarray], Any],
) -> tuple[list[tuple[np.ndarray, Any]], dict[str, str], dict[str, int]]:
    """Run ``payload.run(rows_of(source, idx))`` over chunks ``idx`` of ``names``.

    Returns ``(results, failed, retried)``: ``(idx, output or None)`` per
    chunk in order, ``{name: error}`` of rows whose task failed every try,
    ``{name: retries}`` of rows whose task was resubmitted.
    """
    from hepprob import _progress

    distributed = require("distributed", "Dask scans (client=...)")
    n = len(names)
    with connect(client) as dask_client:
        workers = max(len(dask_client.scheduler_info().get("workers", {})), 1)
        size = chunk_size or max(1, math.ceil(n / (4 * workers)))
        chunks = [np.arange(i, min(i + size, n)) for i in range(0, n, size)]
        futures = {}
        for j, idx in enumerate(chunks):
            fut = dask_client.submit(_task, payload, rows_of(source, idx), pure=False)
            futures[fut] = (j, 0)
        outputs: list[Any] = [None] * len(chunks)
        failed: dict[str, str] = {}
        retried: dict[str, int] = {}
        pending = distributed.as_completed(list(futures))
        with _progress.progress(total=n, desc="CLs", show=progress) as bar:
            for fut in pending:
                j, tries = futures.pop(fut)
                idx = chunks[j]
                if fut.status == "finished":
                    outputs[j] = fut.result()
                    bar.update(len(idx))
                    continue
                error = fut.exception()
                if tries < retries:
                    again = dask_client.submit(
                        _task, payload, rows_of(source, idx), pure=False
                    )
                    futures[again] = (j, tries + 1)
                    pending.add(again)
                    for i in idx:
                        retried[names[i]] = tries + 1
                    continue
                for i in idx:
                    failed[names[i]] = f"{type(error).__name__}: {error}"
                bar.update(len(idx))
    return list(zip(chunks, outputs, strict=True)), failed, retried
