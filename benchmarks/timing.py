"""Shared helpers of the benchmark scripts: one thread, medians."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "NUMBA_NUM_THREADS")


def pin_one_thread() -> None:
    """Ask every thread pool for one thread; call before importing NumPy, Numba or torch."""
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, "1")


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``fn()`` in seconds, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    times.sort()
    middle = len(times) // 2
    return times[middle] if len(times) % 2 else (times[middle - 1] + times[middle]) / 2
