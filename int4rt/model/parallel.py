"""Independent pieces of work run on threads when the user allows more than one.

The thread count is Numba's (``NUMBA_NUM_THREADS`` or ``numba.set_num_threads``), so one knob
governs every kernel. The kernels release the GIL, so the two directions of a Bi-LSTM layer
(§8.5) run truly in parallel; results are the same integers in the same order either way.

The worker threads persist between calls (a search makes one call per evaluation, a few
hundred per utterance): the calling thread and one shared pool of ``threads − 1`` workers take
the tasks; a task that calls :func:`run_all` again from a worker runs its own tasks in order
on that worker, so no worker ever waits for the pool.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numba

T = TypeVar("T")

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_workers = 0
_in_worker = threading.local()


def _mark_worker() -> None:
    _in_worker.active = True


def _workers(count: int) -> ThreadPoolExecutor:
    """The shared pool, made (again) when ``count`` workers are wanted and it has others."""
    global _pool, _pool_workers
    with _lock:
        if _pool is None or _pool_workers != count:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=count, thread_name_prefix="int4rt",
                                       initializer=_mark_worker)
            _pool_workers = count
        return _pool


def run_all(tasks: list[Callable[[], T]]) -> list[T]:
    """``[task() for task in tasks]``, on up to ``numba.get_num_threads()`` threads: the
    calling thread and ``threads − 1`` pool workers each take the next task not yet taken
    until none is left."""
    threads = min(len(tasks), numba.get_num_threads())
    if threads < 2 or getattr(_in_worker, "active", False):
        return [task() for task in tasks]
    results: list[T] = [None] * len(tasks)  # type: ignore[list-item]
    order = iter(range(len(tasks)))  # shared: each index is taken once (under the GIL)

    def drain() -> None:
        for index in order:
            results[index] = tasks[index]()

    pool = _workers(numba.get_num_threads() - 1)
    futures = [pool.submit(drain) for _ in range(threads - 1)]
    drain()
    for future in futures:
        future.result()
    return results
