"""Independent pieces of work run on threads when the user allows more than one.

The thread count is Numba's (``NUMBA_NUM_THREADS`` or ``numba.set_num_threads``), so one knob
governs every kernel. The kernels release the GIL, so the two directions of a Bi-LSTM layer
(§8.5) run truly in parallel; results are the same integers in the same order either way.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numba

T = TypeVar("T")


def run_all(tasks: list[Callable[[], T]]) -> list[T]:
    """``[task() for task in tasks]``, on up to ``numba.get_num_threads()`` threads."""
    workers = min(len(tasks), numba.get_num_threads())
    if workers < 2:
        return [task() for task in tasks]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda task: task(), tasks))
