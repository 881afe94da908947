"""``int4rt selftest``: every operator's NumPy reference against its Numba kernel.

It iterates :data:`int4rt.ops.registry.OPS` and runs each exported function of each operator
on random and edge inputs on both implementations, on this machine. ``OP_CASES`` holds the
cases per operator; ``tests/test_ops_registry.py`` runs the same cases (fewer values) and
fails for an operator without cases, an export without a case, or a twin that differs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from types import ModuleType

import numpy as np

from int4rt.layers import ActQuant, Joint, LstmCell
from int4rt.model.random_model import random_linear, random_lstm_cell
from int4rt.ops.activations.tables import sigmoid_table
from int4rt.ops.formats import INT32_MAX, INT32_MIN
from int4rt.ops.gemv.dot_tiles import flush_period
from int4rt.ops.gemv.gemm_blocked import GEMM_PATHS
from int4rt.ops.gemv.lane_rows import LANE_PATHS, LANES, MAX_CODE, pack_lane_rows
from int4rt.ops.gemv.packed_gemv import (
    PACKED_PATHS,
    pack_offset_nibbles,
    packed_flush_period,
    packed_width,
)
from int4rt.ops.gemv.weight_layout import padded_width
from int4rt.ops.log_softmax.tables import exp2_table, ln_table
from int4rt.ops.profiles import get_profile
from int4rt.ops.registry import OPS, get_backend
from int4rt.ops.requantize.reference import quantize_multiplier
from int4rt.options import PROFILES, ROUNDING_MODES
from int4rt.quantization import format_covering


@dataclass(frozen=True)
class Case:
    """One call of an operator's exported function ``export`` on either implementation."""

    export: str
    description: str
    run: Callable[[ModuleType], object]


def _requantize_cases(rng: np.random.Generator, count: int) -> list[Case]:
    acc = rng.integers(INT32_MIN, INT32_MAX, size=count, endpoint=True)
    acc[:4] = [INT32_MIN, INT32_MAX, -1, 1]
    multiplier = rng.integers(2**30, 2**31, size=count)
    multiplier[:2] = INT32_MIN
    shift = rng.integers(-31, 31, size=count)
    shift[:2] = 0
    return [Case("requantize", f"requantize ({rounding} rounding), {count} accumulators",
                 lambda impl, r=rounding: impl.requantize(acc, multiplier, shift, r))
            for rounding in ROUNDING_MODES]


def _int4_cases(rng: np.random.Generator, count: int) -> list[Case]:
    codes = rng.integers(-8, 8, size=count | 1).astype(np.int8)  # odd: the padding nibble
    codes[:16] = np.arange(-8, 8)
    packed = get_backend("numpy").int4.pack_int4(codes)
    return [
        Case("pack_int4", f"pack_int4, {codes.size} codes", lambda impl: impl.pack_int4(codes)),
        Case("unpack_int4", f"unpack_int4, {codes.size} codes",
             lambda impl: impl.unpack_int4(packed, codes.size)),
    ]


def _activation_cases(rng: np.random.Generator, count: int) -> list[Case]:
    x = np.arange(-32768, 32768, dtype=np.int64)
    tables = {profile: get_profile(profile).table for profile in PROFILES}
    return [Case(fn, f"{fn}, all 65536 int16 inputs, {profile} table",
                 lambda impl, f=fn, t=table: getattr(impl, f)(x, t))
            for profile, table in tables.items() for fn in ("sigmoid16", "tanh16")]


def _codes(rng: np.random.Generator, fmt: ActQuant, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(fmt.qmin, fmt.qmax, size=shape, endpoint=True).astype(fmt.dtype)


def _gemv_cases(rng: np.random.Generator, count: int) -> list[Case]:
    n_out, n_in, batch = 256, 640, 8
    x = rng.integers(-128, 128, size=(batch, n_in)).astype(np.int8)
    bias = rng.integers(-(2**16), 2**16, size=n_out)
    kw = dict(x_zero_point=-3, multiplier=rng.integers(2**30, 2**31, size=n_out),
              shift=rng.integers(-14, -6, size=n_out), y_zero_point=2, y_min=-128, y_max=127)
    w8 = rng.integers(-127, 128, size=(n_out, n_in)).astype(np.int8)
    packed = get_backend("numpy").int4.pack_int4(rng.integers(-8, 8, size=(n_out, n_in - 1)))
    x_odd = np.ascontiguousarray(x[:, 1:])
    fmt = format_covering(4, False, -1.0, 1.0)
    layer = random_linear(rng, n_out, n_in, 4, fmt, 2.0**-12)
    x4 = _codes(rng, fmt, (batch, n_in))
    cases = [
        Case("fully_connected", f"fully_connected int8 weights {n_out}x{n_in}, batch {batch}",
             lambda impl: impl.fully_connected(x, w8, bias, **kw)),
        Case("fully_connected_int4",
             f"fully_connected_int4 packed weights {n_out}x{n_in - 1}, batch {batch}",
             lambda impl: impl.fully_connected_int4(x_odd, packed, n_out, bias, **kw)),
    ]
    cases += [Case("linear", f"linear {n_out}x{n_in} int4 layer to {np.dtype(d)}, batch {batch}",
                   lambda impl, d=d, r=r: impl.linear(x4, layer, fmt, r, d))
              for d, r in ((np.int16, "double"), (np.int32, "single"))]
    return cases + _gemm_path_cases(rng)


def _gemm_path_cases(rng: np.random.Generator) -> list[Case]:
    """§7.1 on every dot-product path this CPU supports (§7.4), against the reference.

    The kernel side runs one path of the blocked GEMM on padded rows (the layout of
    ``int4rt.ops.gemv.weight_layout``), then the kernel requantization.
    """
    kernel_gemv, kernel_requantize = get_backend("numba").gemv, get_backend("numba").requantize
    n_out, n_in, batch = 130, 1290, 9
    width = padded_width(n_in)
    cases = []
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
                if impl is not kernel_gemv:
                    return impl.fully_connected(
                        x.astype(np.uint8), w.astype(np.int8), bias, x_zero_point=zp,
                        multiplier=mult, shift=shift, y_zero_point=0, y_min=INT32_MIN,
                        y_max=INT32_MAX)
                u = np.zeros((batch, width), np.uint8)
                u[:, :n_in] = x
                wp = np.zeros((n_out, width), np.int8)
                wp[:, :n_in] = w
                acc = np.empty((batch, n_out), np.int32)
                gemm(u, wp, (zp * w.sum(axis=1) - bias).astype(np.int32), flush, acc)
                return kernel_requantize.requantize(acc, mult, shift).astype(np.int32)

            cases.append(Case("fully_connected",
                              f"{path} path, {weight_bits}-bit weights x {code_bits}-bit codes "
                              f"{n_out}x{n_in}, batch {batch}", run))
        if weight_bits == 4:
            cases += _packed_path_cases(w, x, zp, bias, mult, shift, code_bits)
    return cases


def _packed_product(gemv: Callable, flush: int, u: np.ndarray, w: np.ndarray,
                    offsets: np.ndarray) -> np.ndarray:
    acc = np.empty((u.shape[0], w.shape[0]), np.int32)
    gemv(u, pack_offset_nibbles(w), offsets, flush, acc)
    return acc


def _lane_product(gemv: Callable, u: np.ndarray, w: np.ndarray,
                  offsets: np.ndarray) -> np.ndarray:
    lanes = pack_lane_rows(w)
    acc = np.empty((u.shape[0], LANES * lanes.shape[0]), np.int32)
    gemv(u, lanes, offsets, acc)
    return acc[:, :w.shape[0]]


def _packed_path_cases(w: np.ndarray, x: np.ndarray, zp: int, bias: np.ndarray,
                       mult: np.ndarray, shift: np.ndarray, code_bits: int) -> list[Case]:
    """§7.1 on the kernels over offset nibbles (§7.5, and §7.6's lane rows for codes up to
    127), where this CPU has them."""
    kernel_gemv, kernel_requantize = get_backend("numba").gemv, get_backend("numba").requantize
    (batch, n_in), n_out = x.shape, w.shape[0]
    flush = packed_flush_period((1 << code_bits) - 1)
    products = {path: partial(_packed_product, gemv, flush) for path, gemv in PACKED_PATHS.items()}
    if (1 << code_bits) - 1 <= MAX_CODE:
        products |= {path: partial(_lane_product, gemv) for path, gemv in LANE_PATHS.items()}
    cases = []
    for path, product in products.items():

        def run(impl, product=product):
            if impl is not kernel_gemv:
                return impl.fully_connected(
                    x.astype(np.uint8), w.astype(np.int8), bias, x_zero_point=zp,
                    multiplier=mult, shift=shift, y_zero_point=0, y_min=INT32_MIN,
                    y_max=INT32_MAX)
            u = np.zeros((batch, packed_width(n_in)), np.uint8)
            u[:, :n_in] = x
            acc = product(u, w.astype(np.int8), (zp * w.sum(axis=1) - bias).astype(np.int32))
            return kernel_requantize.requantize(acc, mult, shift).astype(np.int32)

        cases.append(Case("fully_connected",
                          f"{path} path, 4-bit weights x {code_bits}-bit codes "
                          f"{n_out}x{n_in}, {batch} rows one by one", run))
    return cases


def _cell(rng: np.random.Generator, input_format: ActQuant, hidden: int) -> LstmCell:
    hidden_format = format_covering(4, True, -1.0, 1.0)
    return random_lstm_cell(rng, 24, input_format, hidden, 4, hidden_format, -11, 0)


def _lstm_cases(rng: np.random.Generator, count: int) -> list[Case]:
    fmt = format_covering(4, False, -2.0, 2.0)
    cell = _cell(rng, fmt, 32)
    table = sigmoid_table()
    steps = max(4, min(count // 1000, 100))
    x = _codes(rng, fmt, (steps, cell.input_size))
    batch = _codes(rng, fmt, (5, cell.input_size))
    h = _codes(rng, cell.hidden, (5, cell.hidden_size))
    c = rng.integers(-32768, 32768, size=(5, cell.hidden_size)).astype(np.int16)
    return [
        Case("lstm_sequence", f"lstm_sequence {steps} steps, hidden {cell.hidden_size}, reverse",
             lambda impl: impl.lstm_sequence(cell, x, table, "single", reverse=True)),
        Case("lstm_step", f"lstm_step, batch 5, hidden {cell.hidden_size}",
             lambda impl: impl.lstm_step(cell, batch, h, c, table, "double")),
    ]


def _joint_cases(rng: np.random.Generator, count: int) -> list[Case]:
    enc_format = format_covering(4, True, -1.0, 0.6)
    pred_format = format_covering(4, False, -1.0, 1.0)
    hidden = format_covering(4, False, -1.0, 1.0)
    hidden_m, hidden_s = quantize_multiplier(2.0**-15 / hidden.scale)
    combine_m, combine_s = quantize_multiplier(2.0**-9 * 2.0**-9 / 2.0**-12)
    joints = {
        mode: Joint(random_linear(rng, 48, 40, 4, enc_format, 2.0**-9, spread=3.0),
                    random_linear(rng, 48, 32, 4, pred_format, 2.0**-9, spread=3.0),
                    mode, combine_m if mode == "multiplicative" else 0,
                    combine_s if mode == "multiplicative" else 0, hidden, hidden_m, hidden_s,
                    random_linear(rng, 30, 48, 8, hidden, 2.0**-8, spread=2.0), 8)
        for mode in ("additive", "multiplicative")
    }
    rows = max(8, min(count // 100, 1000))
    enc = _codes(rng, enc_format, (rows, 40))
    pred = _codes(rng, pred_format, (rows, 32))
    e16 = rng.integers(-32768, 32768, size=(rows, 48)).astype(np.int16)
    p16 = rng.integers(-32768, 32768, size=(rows, 48)).astype(np.int16)
    table = sigmoid_table()
    cases = [
        Case("project_encoder", f"project_encoder, {rows} frames",
             lambda impl: impl.project_encoder(joints["additive"], enc, enc_format, "double")),
        Case("project_predictor", f"project_predictor, {rows} states",
             lambda impl: impl.project_predictor(joints["additive"], pred, pred_format,
                                                 "single")),
    ]
    cases += [Case("joint_logits", f"joint_logits {mode}, {rows} pairs",
                   lambda impl, j=joint: impl.joint_logits(j, e16, p16, table, "double"))
              for mode, joint in joints.items()]
    return cases


def _log_softmax_cases(rng: np.random.Generator, count: int) -> list[Case]:
    rows = max(4, count // 1000)
    logits = rng.integers(-(2**24), 2**24, size=(rows, 1000))
    logits[0] = INT32_MAX
    logits[1, ::2] = INT32_MIN
    frac_bits = 12
    exp2, ln = exp2_table(), ln_table()
    return [Case("log_softmax", f"log_softmax {rows} rows of 1000 logits, F = {frac_bits}",
                 lambda impl: impl.log_softmax(logits, frac_bits, exp2, ln))]


OP_CASES: dict[str, Callable[[np.random.Generator, int], list[Case]]] = {
    "requantize": _requantize_cases,
    "int4": _int4_cases,
    "activations": _activation_cases,
    "gemv": _gemv_cases,
    "lstm": _lstm_cases,
    "joint": _joint_cases,
    "log_softmax": _log_softmax_cases,
}


def as_arrays(result: object) -> list[np.ndarray]:
    """An operator result (an array or a tuple of arrays) as a list of arrays."""
    items = result if isinstance(result, tuple) else (result,)
    return [np.asarray(item) for item in items]


def mismatches(want: object, got: object) -> int:
    """Number of differing integers (every value of a shape or dtype mismatch)."""
    total = 0
    for a, b in zip(as_arrays(want), as_arrays(got), strict=True):
        if a.shape != b.shape or a.dtype != b.dtype:
            total += max(a.size, b.size, 1)
        else:
            total += int(np.count_nonzero(a != b))
    return total


def run_selftest(seed: int = 0, count: int = 100_000) -> int:
    """Compare every operator's two implementations; 0 if all agree, 1 otherwise."""
    rng = np.random.default_rng(seed)
    reference, kernels = get_backend("numpy"), get_backend("numba")
    print("int4rt selftest: no trained model ships yet, so this demo checks the integer")
    print("arithmetic itself: int4rt/ops/<op>/reference.py (NumPy) vs numba.py (kernels).")
    failures = 0
    for op in OPS:
        ref_module, fast_module = getattr(reference, op.name), getattr(kernels, op.name)
        for case in OP_CASES[op.name](rng, count):
            case.run(fast_module)  # compile (or load from Numba's cache) before timing
            start = time.perf_counter()
            want = case.run(ref_module)
            ref_s = time.perf_counter() - start
            start = time.perf_counter()
            got = case.run(fast_module)
            fast_s = time.perf_counter() - start
            bad = mismatches(want, got)
            failures += bad > 0
            verdict = "identical" if not bad else f"{bad} MISMATCHES"
            size = sum(a.size for a in as_arrays(want))
            print(f"  {op.name} {op.sections}: {case.description}: {size} outputs {verdict} "
                  f"(reference {ref_s * 1e3:.1f} ms, kernel {fast_s * 1e3:.1f} ms)")
    print("all operators agree bit for bit" if not failures else f"{failures} cases differ")
    return 1 if failures else 0
