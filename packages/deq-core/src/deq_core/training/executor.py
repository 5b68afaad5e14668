"""``map_chunks``: run a function over many items in chunks on a ``concurrent.futures.Executor``.

Dataset generation and classical-baseline runs are embarrassingly parallel. They take any executor: a
process pool (the default, started with ``forkserver`` or ``spawn`` so that no threaded framework state is
forked), a thread pool, or a dask cluster through ``distributed.Client(...).get_executor()``. Results come
back in item order whatever the executor and chunking; give each item its own seed (:func:`spawn_seeds`)
so that results do not depend on how the items were split either.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Executor, Future, ProcessPoolExecutor, wait
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")
R = TypeVar("R")


def spawn_seeds(seed: int, count: int) -> list[int]:
    """``count`` independent 63-bit seeds derived from ``seed`` (numpy ``SeedSequence.spawn``)."""
    if count < 0:
        raise ValueError(f"spawn_seeds count must be >= 0, got {count}")
    children = np.random.SeedSequence(seed).spawn(count)
    return [int(child.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)) for child in children]


def _apply_chunk(fn: Callable[[T], R], chunk: Sequence[T]) -> list[R]:
    """Apply ``fn`` to each item of one chunk (runs in the worker)."""
    return [fn(item) for item in chunk]


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def map_chunks(
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    executor: Executor | None = None,
    workers: int | None = None,
    chunk_size: int | None = None,
    progress: bool = True,
    desc: str = "map",
) -> list[R]:
    """``[fn(item) for item in items]``, computed in chunks on ``executor``; results are in item order.

    Without ``executor`` a process pool of ``workers`` processes (default: the available CPUs) is created
    and shut down here; ``fn`` and the items must then be picklable (``fn`` defined at module level).
    ``chunk_size`` defaults to about four chunks per worker. The first failing chunk cancels the rest and
    its exception is re-raised with a note naming the chunk's item range.
    """
    items = list(items)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"map_chunks workers must be an integer >= 1 or None, got {workers!r}")
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1
    ):
        raise ValueError(f"map_chunks chunk_size must be an integer >= 1 or None, got {chunk_size!r}")
    if executor is not None and not hasattr(executor, "submit"):
        raise TypeError(
            f"map_chunks executor must be a concurrent.futures.Executor, got {type(executor).__name__}"
        )
    if not items:
        return []
    parallel = workers or available_cpus()
    size = chunk_size or max(1, math.ceil(len(items) / (4 * parallel)))
    bounds = [(lo, min(lo + size, len(items))) for lo in range(0, len(items), size)]
    own = executor is None
    if own:
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        executor = ProcessPoolExecutor(max_workers=min(parallel, len(bounds)), mp_context=context)
    bar = _progress_bar(len(items), desc) if progress else None
    try:
        futures: dict[Future, tuple[int, int]] = {
            executor.submit(_apply_chunk, fn, items[lo:hi]): (lo, hi) for lo, hi in bounds
        }
        results: list[Any] = [None] * len(items)
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for future in done:
                lo, hi = futures[future]
                error = future.exception()
                if error is not None:
                    for other in pending:
                        other.cancel()
                    error.add_note(f"in map_chunks chunk of items [{lo}, {hi}) of {len(items)}")
                    raise error
                values = future.result()
                if len(values) != hi - lo:
                    raise RuntimeError(f"map_chunks chunk [{lo}, {hi}) returned {len(values)} results")
                results[lo:hi] = values
                if bar is not None:
                    bar.update(hi - lo)
        return results
    finally:
        if bar is not None:
            bar.close()
        if own:
            executor.shutdown(wait=True, cancel_futures=True)


def _progress_bar(total: int, desc: str) -> Any:
    """A tqdm bar over ``total`` items."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        raise ImportError(
            "map_chunks(progress=True) needs tqdm: pip install tqdm (or pass progress=False)"
        ) from None
    return tqdm(total=total, desc=desc, unit="item", dynamic_ncols=True)
