"""Cold start (process start → first transcript, warm Numba cache) and peak RSS.

Each probe is a fresh ``python -m benchmarks.child transcribe ...`` process; its wall time
from launch to exit is the cold start, and it reports its own peak RSS. Its CPU time (user +
system, from ``getrusage``) is reported too: on a shared machine the wall time also holds the
time the process waited for a core.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]


def _probe(args: list[str], threads: int) -> tuple[float, int, float]:
    """(wall seconds, peak RSS KiB, CPU seconds) of one fresh process."""
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads), OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "benchmarks.child", "transcribe", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise RuntimeError(f"int4rt transcribe failed: {done.stderr[-2000:]}")
    peak = json.loads(done.stderr.strip().splitlines()[-1])["peak_rss_kib"]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, peak, cpu


def cold_start(model: Path, audio: Path, repeats: int) -> dict[str, float]:
    """Greedy transcript of ``audio``: median seconds over ``repeats`` processes (one warm-up
    process first fills Numba's cache) and the largest peak RSS in MiB."""
    args = [str(model), str(audio), "--method", "greedy"]
    _probe(args, 1)
    probes = [_probe(args, 1) for _ in range(repeats)]
    return {"cold_start_s": statistics.median(p[0] for p in probes),
            "cold_start_cpu_s": statistics.median(p[2] for p in probes),
            "peak_rss_mib": max(p[1] for p in probes) / 1024}


def fused_peak_rss(model: Path, ext: Path, src: Path, audio: Path) -> dict[str, float]:
    """Peak RSS (MiB) and wall time of beam 8 with density ratio, and the files' sizes, in a
    process after a warm-up one: a process that compiles the search's kernels into Numba's
    cache peaks at LLVM's memory, not the decoder's."""
    args = [str(model), str(audio), "--method", "beam", "--beam", "8", "--lm", str(ext),
            "--lm-weight", "0.5", "--source-lm", str(src), "--source-lm-weight", "0.3",
            "--length-reward", "0.5"]
    _probe(args, 1)
    seconds, peak, _ = _probe(args, 1)
    files = sum(p.stat().st_size for p in (model, ext, src))
    return {"process_s": seconds, "peak_rss_mib": peak / 1024, "model_files_mib": files / 2**20,
            "rss_limit_mib": 2 * files / 2**20 + 300}
