"""Running a task over shards of a manifest: local worker processes or a Dask cluster.

DECODING.md, "Dask": a task is a picklable function of one shard (a list of items) returning
a list of results; workers keep their loaded models between shards (``worker_state``). Results
come back in shard order whatever order the shards finish in, each shard exactly once; a shard
lost with a killed worker is run again by the Dask scheduler.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from int4rt.errors import Int4rtError

T = TypeVar("T")
LOCAL_PREFIX = "local:"
_STATE: dict[Any, Any] = {}
_STATE_LOCK = threading.Lock()


def worker_state(key: Any, factory: Callable[[], T]) -> T:
    """The worker's object for ``key``, made by ``factory`` on the first call (per process).

    A worker loads a model and its LMs once and keeps them for every later shard.
    """
    with _STATE_LOCK:
        if key not in _STATE:
            _STATE[key] = factory()
        return _STATE[key]


def split(items: Sequence[T], size: int) -> list[list[T]]:
    """Consecutive shards of at most ``size`` items."""
    if size < 1:
        raise Int4rtError(f"--shard-size must be >= 1, got {size}")
    return [list(items[start:start + size]) for start in range(0, len(items), size)]


def map_shards(task: Callable[[list], list], shards: list[list], *, jobs: int = 1,
               dask: str | None = None,
               done: Callable[[int, int], None] | None = None) -> Iterator[tuple[int, list]]:
    """(shard index, results) in shard order; ``done(finished, total)`` as shards finish.

    ``dask`` is a scheduler address or ``local:N``; else ``jobs`` local processes (1: in
    this process).
    """
    if dask is not None:
        with dask_client(dask) as client:
            yield from _dask_map(client, task, shards, done)
        return
    if jobs < 1:
        raise Int4rtError(f"--jobs must be >= 1, got {jobs}")
    if jobs == 1 or len(shards) <= 1:
        for index, shard in enumerate(shards):
            result = task(shard)
            if done:
                done(index + 1, len(shards))
            yield index, result
        return
    context = multiprocessing.get_context("spawn")
    with context.Pool(min(jobs, len(shards))) as pool:
        for index, result in enumerate(pool.imap(task, shards)):
            if done:
                done(index + 1, len(shards))
            yield index, result


@contextlib.contextmanager
def dask_client(address: str) -> Iterator[Any]:
    """A ``distributed.Client`` for a scheduler address, or on a new ``LocalCluster`` of
    ``local:N`` single-threaded worker processes; closed (and the cluster stopped) after.
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise Int4rtError("--dask needs the 'distributed' package: pip install "
                          "'int4rt[dask]' (or pip install distributed)") from None
    cluster = None
    if address.startswith(LOCAL_PREFIX):
        count = address[len(LOCAL_PREFIX):]
        if not count.isdigit() or int(count) < 1:
            raise Int4rtError(f"--dask {address}: expected local:N with N >= 1 workers")
        cluster = LocalCluster(n_workers=int(count), threads_per_worker=1, processes=True,
                               dashboard_address=":0", silence_logs=logging.ERROR)
        client = Client(cluster)
    else:
        try:
            client = Client(address, timeout="20s")
        except (OSError, TimeoutError, ValueError) as error:
            raise Int4rtError(f"--dask {address}: cannot reach the Dask scheduler ({error}); "
                              "give its address, e.g. tcp://host:8786, or local:N") from None
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _dask_map(client: Any, task: Callable[[list], list], shards: list[list],
              done: Callable[[int, int], None] | None) -> Iterator[tuple[int, list]]:
    """Submit every shard, yield finished ones in order, skipping failed ones; then raise."""
    from distributed import as_completed

    futures = [client.submit(task, shard, pure=False) for shard in shards]
    index_of = {future.key: index for index, future in enumerate(futures)}
    ready: dict[int, list] = {}
    failed: dict[int, BaseException] = {}
    next_index = finished = 0
    for future in as_completed(futures):
        index = index_of[future.key]
        try:
            ready[index] = future.result()
        except Exception as error:  # a task that raised, or a shard whose workers kept dying
            failed[index] = error
        finished += 1
        if done:
            done(finished, len(shards))
        while next_index in ready or next_index in failed:
            if next_index in ready:
                yield next_index, ready.pop(next_index)
            next_index += 1
    if failed:
        index = min(failed)
        raise Int4rtError(f"{len(failed)} of {len(shards)} shards failed on the Dask cluster "
                          f"(shard {index}: {type(failed[index]).__name__}: {failed[index]}); "
                          "the results of the others were kept: rerun the same command to "
                          "finish")
