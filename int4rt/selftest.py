"""``int4rt selftest``: the NumPy reference against the Numba kernels on this machine.

Until a trained model ships, this is what ``make demo`` runs: it shows the integer
primitives of docs/ARITHMETIC.md agreeing bit for bit between their two implementations.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from int4rt import arith, kernels

INT32_MIN, INT32_MAX = arith.INT32_MIN, arith.INT32_MAX


def _requantize_cases(rng: np.random.Generator, count: int) -> list[tuple[str, Callable]]:
    acc = rng.integers(INT32_MIN, INT32_MAX, size=count, endpoint=True)
    acc[:4] = [INT32_MIN, INT32_MAX, -1, 1]
    multiplier = rng.integers(2**30, 2**31, size=count)
    multiplier[:2] = INT32_MIN
    shift = rng.integers(-31, 31, size=count)
    shift[:2] = 0
    cases = []
    for rounding in arith.ROUNDING_MODES:
        cases.append((
            f"requantize ({rounding} rounding), {count} accumulators",
            lambda impl, r=rounding: impl.requantize(acc, multiplier, shift, r),
        ))
    return cases


def _activation_cases() -> list[tuple[str, Callable]]:
    x = np.arange(-32768, 32768, dtype=np.int64)
    cases = []
    for profile in ("tflm", "int4rt"):
        table = arith.get_profile(profile).table
        for fn in ("sigmoid16", "tanh16"):
            cases.append((
                f"{fn}, all 65536 int16 inputs, {profile} table",
                lambda impl, f=fn, t=table: getattr(impl, f)(x, t),
            ))
    return cases


def _fully_connected_cases(rng: np.random.Generator) -> list[tuple[str, Callable]]:
    n_out, n_in, batch = 256, 640, 8
    x = rng.integers(-128, 128, size=(batch, n_in)).astype(np.int8)
    bias = rng.integers(-(2**16), 2**16, size=n_out)
    kw = dict(x_zero_point=-3, multiplier=rng.integers(2**30, 2**31, size=n_out),
              shift=rng.integers(-14, -6, size=n_out), y_zero_point=2, y_min=-128, y_max=127)
    w8 = rng.integers(-127, 128, size=(n_out, n_in)).astype(np.int8)
    w4 = rng.integers(-8, 8, size=(n_out, n_in)).astype(np.int8)
    packed = arith.pack_int4(w4)

    def int4(impl):
        if impl is kernels:
            return kernels.fully_connected_int4(x, packed, n_out, bias, **kw)
        return arith.fully_connected(x, w4, bias, **kw)

    return [
        (f"fully_connected int8 weights {n_out}x{n_in}, batch {batch}",
         lambda impl: impl.fully_connected(x, w8, bias, **kw)),
        (f"fully_connected packed int4 weights {n_out}x{n_in}, batch {batch}", int4),
    ]


def _kernel_path_cases(rng: np.random.Generator) -> list[tuple[str, Callable]]:
    """§7.1 on every dot-product path this CPU supports (§7.4), against the reference."""
    from int4rt.kernels.dot_tiles import flush_period
    from int4rt.kernels.gemm_blocked import GEMM_PATHS
    from int4rt.kernels.weight_layout import padded_width

    cases = []
    n_out, n_in, batch = 130, 1290, 9
    for weight_bits, code_bits in ((4, 4), (8, 4), (8, 8)):
        w = rng.integers(-(1 << (weight_bits - 1)), 1 << (weight_bits - 1), size=(n_out, n_in))
        x = rng.integers(0, 1 << code_bits, size=(batch, n_in))
        x[0], w[0] = (1 << code_bits) - 1, -(1 << (weight_bits - 1))
        zp = int(rng.integers(0, 1 << code_bits))
        bias = rng.integers(-(2**16), 2**16, size=n_out)
        mult = rng.integers(2**30, 2**31, size=n_out)
        shift = rng.integers(-14, -6, size=n_out)
        flush = flush_period(1 << (weight_bits - 1), (1 << code_bits) - 1)
        for path, gemm in GEMM_PATHS.items():

            def run(impl, w=w, x=x, zp=zp, bias=bias, mult=mult, shift=shift, gemm=gemm,
                    flush=flush):
                if impl is not kernels:
                    return arith.fully_connected(
                        x.astype(np.uint8), w.astype(np.int8), bias, x_zero_point=zp,
                        multiplier=mult, shift=shift, y_zero_point=0, y_min=INT32_MIN,
                        y_max=INT32_MAX)
                width = padded_width(n_in)
                u = np.zeros((batch, width), np.uint8)
                u[:, :n_in] = x
                wp = np.zeros((n_out, width), np.int8)
                wp[:, :n_in] = w
                acc = np.empty((batch, n_out), np.int32)
                gemm(u, wp, (zp * w.sum(axis=1) - bias).astype(np.int32), flush, acc)
                return kernels.requantize(acc, mult, shift)

            cases.append((f"{path} path, {weight_bits}-bit weights x {code_bits}-bit codes "
                          f"{n_out}x{n_in}, batch {batch}", run))
    return cases


def run_selftest(seed: int = 0, count: int = 100_000) -> int:
    """Compare every primitive's two implementations; 0 if all agree, 1 otherwise."""
    rng = np.random.default_rng(seed)
    print("int4rt selftest: no trained model ships yet, so this demo checks the integer")
    print("arithmetic itself: NumPy reference (int4rt.arith) vs Numba kernels (int4rt.kernels).")
    cases = _requantize_cases(rng, count) + _activation_cases() + _fully_connected_cases(rng)
    cases += _kernel_path_cases(rng)
    failures = 0
    for name, run in cases:
        run(kernels)  # compile (or load from Numba's cache) before timing
        start = time.perf_counter()
        want = run(arith)
        ref_s = time.perf_counter() - start
        start = time.perf_counter()
        got = run(kernels)
        fast_s = time.perf_counter() - start
        mismatches = int(np.count_nonzero(np.asarray(want) != np.asarray(got)))
        failures += mismatches > 0
        verdict = "identical" if not mismatches else f"{mismatches} MISMATCHES"
        print(f"  {name}: {np.size(want)} outputs {verdict} "
              f"(reference {ref_s * 1e3:.1f} ms, kernel {fast_s * 1e3:.1f} ms)")
    print("all primitives agree bit for bit" if not failures else f"{failures} primitives differ")
    return 1 if failures else 0
