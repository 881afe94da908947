"""GEMV speed of the Numba kernels against NumPy's float32 matrix-vector product.

Shape 2560 x 640 (the recurrent weights of one 640-cell LSTM direction, four gates), one
thread, median of repeated calls. Run: ``python benchmarks/bench_gemv.py`` (it pins BLAS to one
thread itself). Results go to docs/RESULTS.md by hand, with the command.
"""

from __future__ import annotations

from timing import median_seconds, pin_one_thread

pin_one_thread()

import argparse

import numpy as np

from int4rt import arith
from int4rt.ops.gemv import numba as gemv_numba


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2560)
    parser.add_argument("--cols", type=int, default=640)
    parser.add_argument("--repeats", type=int, default=2000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n, k = args.rows, args.cols
    x = rng.integers(-128, 128, size=k).astype(np.int8)
    w8 = rng.integers(-127, 128, size=(n, k)).astype(np.int8)
    w4 = rng.integers(-8, 8, size=(n, k)).astype(np.int8)
    packed = arith.pack_int4(w4)
    bias = rng.integers(-1000, 1000, size=n).astype(np.int32)
    kw = dict(x_zero_point=3, multiplier=rng.integers(2**30, 2**31, size=n),
              shift=rng.integers(-14, -6, size=n), y_zero_point=0, y_min=-32768, y_max=32767)
    wf = w8.astype(np.float32)
    xf = x.astype(np.float32)
    runs = {
        "numpy float32 W @ x (peer)": lambda: wf @ xf,
        "int4rt gemv_numba.fully_connected, int8 weights": lambda: gemv_numba.fully_connected(
            x, w8, bias, **kw),
        "int4rt gemv_numba.fully_connected_int4, packed int4":
            lambda: gemv_numba.fully_connected_int4(x, packed, n, bias, **kw),
        "int4rt arith.fully_connected (NumPy reference)": lambda: arith.fully_connected(
            x, w8, bias, **kw),
    }
    peer = None
    print(f"GEMV {n}x{k}, 1 thread, median of {args.repeats} calls")
    for name, fn in runs.items():
        reps = args.repeats if "reference" not in name else max(args.repeats // 20, 5)
        us = median_seconds(fn, reps) * 1e6
        peer = peer or us
        print(f"| {name} | {us:8.1f} µs | {us / peer:5.2f}x |")


if __name__ == "__main__":
    main()
