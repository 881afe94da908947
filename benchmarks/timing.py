"""Shared helpers of the benchmarks: thread pools, medians, alternating measurements."""

from __future__ import annotations

import os
import statistics
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
    return statistics.median(times)


def alternate(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Wall times of each run over ``repeats`` rounds, the runs taken in turn within a round.

    Each run is called once first (warm-up: compilation, caches). Alternating spreads the
    noise of a shared machine over all runs instead of biasing whichever ran in a bad moment.
    """
    for fn in runs.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times
