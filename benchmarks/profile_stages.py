"""Where the time goes: a per-stage profile of the encoder and of beam 8 with density ratio.

``python -m benchmarks.profile_stages [--seconds 10]`` (one thread; random paper model tuned to
15 labels/s, two random ``lm-paper`` LMs). Stages are read from cProfile's per-function times
of one run (Numba kernels are opaque to it, so each kernel is one stage); the recurrent GEMV
inside the LSTM recurrence is timed on its own, with the same shapes, and subtracted to give
the gate arithmetic. Every time is CPU time of this process (``time.process_time``; one
thread, so it is the work itself): on a shared machine the time spent waiting for a core does
not count. Prints Markdown tables.
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_name] = "1"

import argparse
import cProfile
import pstats
import time
from functools import partial

import numpy as np

from benchmarks.decode_grid import FUSIONS
from benchmarks.workload import build, features_for, tune_label_rate
from int4rt.decode import DecodeOptions, decode
from int4rt.ops.gemv.gemm_blocked import gemm
from int4rt.ops.gemv.lane_rows import BLOCK_CODES, LANES, gemv_lane_rows, lane_rows_layout
from int4rt.ops.gemv.packed_gemv import gemv_packed, packed_layout
from int4rt.ops.gemv.weight_layout import stream_layout

KERNELS = ("_recurrent_steps", "linear_rows", "linear_rows_lanes", "predictor_slots",
           "lm_slots", "_logits_rows", "_log_softmax_rows", "expand_select")
"""The Numba kernels whose own time cProfile reports (each is one stage)."""


def _profile(fn) -> tuple[float, dict[str, float]]:
    profiler = cProfile.Profile(time.process_time)
    start = time.process_time()
    profiler.runcall(fn)
    total = time.process_time() - start
    stats = pstats.Stats(profiler).stats
    own: dict[str, float] = {}
    for (_, _, name), (_, _, tottime, _, _) in stats.items():
        if name in KERNELS:
            own[name] = own.get(name, 0.0) + tottime
    return total, own


def _recurrent_gemv_seconds(cells, steps_per_cell: list[int], rows: int) -> float:
    """Time of the recurrent GEMVs alone: each cell's 4H × H product, ``steps`` times, on the
    kernel the recurrence uses (for one row: lane rows where the layer has them, §7.6, else
    offset nibbles, §7.5; else the blocked tiles, §7.4).
    """
    total = 0.0
    for cell, steps in zip(cells, steps_per_cell, strict=True):
        layout = stream_layout(cell.recurrent_fc, cell.hidden)
        packed = packed_layout(cell.recurrent_fc, cell.hidden)
        lanes = lane_rows_layout(cell.recurrent_fc, cell.hidden)
        if rows == 1 and lanes.shape[0]:
            u = np.zeros((rows, lanes.shape[1] // BLOCK_CODES), np.uint8)
            acc = np.empty((rows, LANES * lanes.shape[0]), np.int32)
            call = partial(gemv_lane_rows, u, lanes, layout.offsets, acc)
        elif rows == 1 and packed.flush:
            u = np.zeros((rows, 2 * packed.weight.shape[1]), np.uint8)
            acc = np.empty((rows, layout.weight.shape[0]), np.int32)
            call = partial(gemv_packed, u, packed.weight, layout.offsets, packed.flush, acc)
        else:
            u = np.zeros((rows, layout.weight.shape[1]), np.uint8)
            acc = np.empty((rows, layout.weight.shape[0]), np.int32)
            call = partial(gemm, u, layout.weight, layout.offsets, layout.flush, acc)
        call()
        start = time.process_time()
        for _ in range(steps):
            call()
        total += time.process_time() - start
    return total


def _table(title: str, total: float, rows: list[tuple[str, float]]) -> str:
    lines = [f"### {title}", "", "| stage | CPU seconds | share |", "|---|---|---|"]
    rest = total - sum(seconds for _, seconds in rows)
    for name, seconds in [*rows, ("everything else (Python: search, caches, glue)", rest)]:
        lines.append(f"| {name} | {seconds:.3f} | {seconds / total:.0%} |")
    lines.append(f"| **total** | {total:.3f} | 100% |")
    return "\n".join(lines)


def main() -> None:
    """Profile the encoder and the headline decode; print both tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    model, ext, src = build("paper.json", "lm-paper.json")
    features = features_for(model, args.seconds)
    tuned, rate = tune_label_rate(model, features, args.seconds, 15.0)
    model.encode(features)
    total, own = _profile(lambda: model.encode(features))
    cells = [cell for layer in model.encoder.layers for cell in layer.cells]
    frames = model.encode(features)[0].shape[0]
    gemv = _recurrent_gemv_seconds(cells, [frames] * len(cells), 1)
    rec = own.get("_recurrent_steps", 0.0)
    print(_table(f"Encoder, {args.seconds:g} s, one thread", total, [
        ("input projections: GEMM (lane rows on vnni512, else 2 × 4 tiles) + requantization "
         "per block", own.get("linear_rows_lanes", 0.0) + own.get("linear_rows", 0.0)),
        ("recurrence: GEMV (lane rows on vnni512, else offset nibbles 1 × 4; timed alone)",
         min(gemv, rec)),
        ("recurrence: gates, cell and hidden update", max(rec - gemv, 0.0)),
    ]))
    options = DecodeOptions(method="beam", beam=8, **FUSIONS["density ratio"])
    decode(tuned, features, options, lm=ext, source_lm=src)
    total, own = _profile(lambda: decode(tuned, features, options, lm=ext, source_lm=src))
    enc_total, enc_own = _profile(lambda: tuned.encode(features))

    def search_part(name: str) -> float:
        return max(own.get(name, 0.0) - enc_own.get(name, 0.0), 0.0)

    print()
    print(_table(f"Beam 8 + density ratio, {args.seconds:g} s, {rate:.1f} labels/s, one thread",
                 total, [
                     ("encoder (whole, profiled alone)", enc_total),
                     ("search: predictor and LMs, one kernel per stack (LSTM steps, "
                      "predictor projection, LM outputs and log-softmax)",
                      search_part("predictor_slots") + search_part("lm_slots")),
                     ("search: joint (combine, tanh, output layer)",
                      search_part("_logits_rows")),
                     ("search: RNN-T log-softmax", search_part("_log_softmax_rows")),
                     ("search: scoring, recombination, pruning (one kernel per frame)",
                      search_part("expand_select")),
                 ]))


if __name__ == "__main__":
    main()
