"""Numba fully-connected layer with int8 or packed int4 weights (docs/ARITHMETIC.md §5, §7)."""

from __future__ import annotations

import numba as nb
import numpy as np

from int4rt.errors import ArithmeticSpecError
from int4rt.layers import ActQuant, QLinear
from int4rt.ops.gemv.dot_tiles import CHUNK
from int4rt.ops.gemv.gemm_blocked import FRAME_BLOCK, tiles
from int4rt.ops.gemv.lane_rows import (
    BLOCK_CODES,
    LANES,
    NO_LANES,
    lane_rows_layout,
    lane_rows_raw,
)
from int4rt.ops.gemv.packed_gemv import NIBBLE_OFFSET, gemv_packed
from int4rt.ops.gemv.reference import (
    FullyConnectedArgs,
    check_packed_weights,
    check_weights,
    output_range,
    prepare_fully_connected,
)
from int4rt.ops.gemv.weight_layout import stream_layout
from int4rt.ops.requantize.reference import check_rounding
from int4rt.ops.requantize.scalar import requantize_one, rounding_code


@nb.njit(cache=True, nogil=True)
def _requantize_rows(acc, bias, multiplier, shift, y_zero_point, y_min, y_max, rounding, out):
    """Second pass of §7.1 over int32 accumulators; kept out of the dot loops so they vectorize."""
    for b in range(acc.shape[0]):
        for n in range(acc.shape[1]):
            y = requantize_one(np.int64(acc[b, n]) + bias[n], multiplier[n], shift[n], rounding)
            out[b, n] = min(max(y + y_zero_point, y_min), y_max)


@nb.njit(cache=True)
def _dot_int8(x, w, acc_out):
    for b in range(x.shape[0]):
        xb = x[b]
        for n in range(w.shape[0]):
            wn = w[n]
            acc = np.int32(0)
            for k in range(xb.size):
                acc += np.int32(wn[k]) * np.int32(xb[k])
            acc_out[b, n] = np.int32(acc)


@nb.njit(cache=True)
def _dot_int4_even(x_even, x_odd, packed_signed, acc_out):
    """Even K: byte j of a row holds codes 2j (low nibble) and 2j+1 (high nibble), §5."""
    half = x_even.shape[1]
    for b in range(x_even.shape[0]):
        xe = x_even[b]
        xo = x_odd[b]
        for n in range(acc_out.shape[1]):
            row = packed_signed[n * half:(n + 1) * half]
            acc = np.int32(0)
            for j in range(half):
                byte = row[j]
                low = np.int8(byte << 4) >> 4
                high = byte >> 4
                acc += np.int32(low) * np.int32(xe[j]) + np.int32(high) * np.int32(xo[j])
            acc_out[b, n] = np.int32(acc)


@nb.njit(cache=True)
def _dot_int4_any(x, packed, acc_out):
    n_in = x.shape[1]
    for b in range(x.shape[0]):
        xb = x[b]
        for n in range(acc_out.shape[1]):
            acc = np.int32(0)
            for k in range(n_in):
                element = n * n_in + k
                nibble = (np.int32(packed[element >> 1]) >> ((element & 1) * 4)) & 15
                acc += ((nibble ^ 8) - 8) * np.int32(xb[k])
            acc_out[b, n] = np.int32(acc)


def offset_sums(layer: QLinear, fmt: ActQuant) -> np.ndarray:
    """``(zp − qmin) · Σ_k w[n, k]`` per row: the zero point folded out of the dot (§7.3)."""
    return (fmt.zero_point - fmt.qmin) * layer.row_sums


def linear(x: np.ndarray, layer: QLinear, x_format: ActQuant, rounding: str,
           out_dtype: type) -> np.ndarray:
    """Numba twin of :func:`int4rt.ops.gemv.reference.linear` (§7.1).

    The dot products run on unsigned codes with the zero point folded into a per-row
    constant (§7.3), on the lane-row kernel where the layer has that form (§7.6), else on the
    blocked kernel (§7.4), requantized block by block (:func:`linear_rows`). The layer was
    validated when it was loaded, so a call checks only what it is given: the codes' shape,
    dtype and range (one reduction each), the rounding name and the output dtype.
    """
    y_min, y_max = output_range(out_dtype)
    codes = np.asarray(x)
    if codes.ndim not in (1, 2) or codes.shape[-1] != layer.n_in:
        raise ArithmeticSpecError(f"activations have shape {codes.shape}; expected "
                                  f"({layer.n_in},) or (batch, {layer.n_in})")
    if codes.dtype != x_format.dtype:
        raise ArithmeticSpecError(
            f"activations must be {x_format.dtype} codes, got dtype {codes.dtype}")
    if codes.size and (int(codes.min()) < x_format.qmin or int(codes.max()) > x_format.qmax):
        raise ArithmeticSpecError(
            f"activations: codes outside [{x_format.qmin}, {x_format.qmax}]")
    check_rounding(rounding)
    rows = codes.reshape(-1, layer.n_in)
    out = np.empty((rows.shape[0], layer.n_out), dtype=out_dtype)
    linear_rows_lanes(rows, stream_layout(layer, x_format), lane_rows_layout(layer, x_format),
                      rounding_code(rounding), y_min, y_max, out)
    return out.reshape(*codes.shape[:-1], layer.n_out)


@nb.njit(cache=True, nogil=True)
def linear_rows(x, layout, rounding, y_min, y_max, out):
    """§7.1 of valid codes ``x`` [B, K] into ``out`` [B, N] with a :class:`StreamLayout`, on
    the blocked GEMM (§7.4): :func:`linear_rows_lanes` without a lane-row form.
    """
    linear_rows_lanes(x, layout, NO_LANES, rounding, y_min, y_max, out)


@nb.njit(cache=True, nogil=True)
def linear_rows_lanes(x, layout, lanes, rounding, y_min, y_max, out):
    """§7.1 of valid codes ``x`` [B, K] into ``out`` [B, N] with a :class:`StreamLayout`.

    The codes become unsigned padded codes (§7.3); each block of ``FRAME_BLOCK`` rows then
    runs the blocked GEMM (§7.4), or the lane-row kernel over ``lanes`` when that is not empty
    (§7.6, :func:`~int4rt.ops.gemv.lane_rows.lane_rows_layout`), into a block of int32
    accumulators, which is requantized while it is still in cache (no second pass over all B
    rows).
    """
    rows, n_rows = x.shape[0], layout.weight.shape[0]
    by_lanes = lanes.shape[0] > 0
    width = lanes.shape[1] // BLOCK_CODES if by_lanes else layout.weight.shape[1]
    u = np.zeros((rows, width), dtype=np.uint8)
    for b in range(rows):
        for k in range(layout.n_in):
            u[b, k] = x[b, k] - layout.qmin
    code_sums = np.zeros(rows if by_lanes else 0, dtype=np.int64)
    for b in range(code_sums.size):
        for k in range(layout.n_in):
            code_sums[b] += u[b, k]
    offsets, bias = layout.offsets, layout.bias
    multiplier, shift = layout.multiplier, layout.shift
    acc = np.empty((min(FRAME_BLOCK, rows), LANES * lanes.shape[0] if by_lanes else n_rows),
                   dtype=np.int32)
    for b_start in range(0, rows, FRAME_BLOCK):
        b_stop = min(b_start + FRAME_BLOCK, rows)
        if by_lanes:
            lane_rows_raw(u[b_start:b_stop], lanes, acc, b_stop - b_start)
        else:
            tiles(u[b_start:b_stop], layout.weight, width // CHUNK, layout.flush, acc, 0,
                  b_stop - b_start)
        for b in range(b_stop - b_start):
            nibble_sum = NIBBLE_OFFSET * code_sums[b_start + b] if by_lanes else 0
            for n in range(n_rows):
                y = requantize_one(np.int64(acc[b, n]) - nibble_sum - offsets[n] + bias[n],
                                   multiplier[n], shift[n], rounding)
                out[b_start + b, n] = min(max(y, y_min), y_max)


@nb.njit(cache=True, nogil=True)
def linear_rows_packed(x, layout, packed, packed_flush, rounding, y_min, y_max, out):
    """:func:`linear_rows` with the dot products on the layer's offset nibbles ``packed``
    (uint8 [N, Kq/2], :func:`~int4rt.ops.gemv.packed_gemv.packed_layout`, §7.5) for a few
    rows ``x`` [B, K] (a search step): half the weight bytes, the same integers.
    """
    rows, n_rows = x.shape[0], packed.shape[0]
    u = np.zeros((rows, 2 * packed.shape[1]), dtype=np.uint8)
    for b in range(rows):
        for k in range(layout.n_in):
            u[b, k] = x[b, k] - layout.qmin
    acc = np.empty((rows, n_rows), dtype=np.int32)
    gemv_packed(u, packed, layout.offsets, packed_flush, acc)
    bias, multiplier, shift = layout.bias, layout.multiplier, layout.shift
    for b in range(rows):
        for n in range(n_rows):
            y = requantize_one(np.int64(acc[b, n]) + bias[n], multiplier[n], shift[n], rounding)
            out[b, n] = min(max(y, y_min), y_max)


def _requantize(acc: np.ndarray, args: FullyConnectedArgs, rounding: str) -> np.ndarray:
    out = np.empty_like(acc)
    _requantize_rows(acc, args.bias.astype(np.int64), args.multiplier.astype(np.int64),
                     args.shift.astype(np.int64), args.y_zero_point, args.y_min, args.y_max,
                     rounding_code(rounding), out)
    return out.reshape(*args.batch_shape, acc.shape[1])


def fully_connected(
    x: object,
    weights: object,
    bias: object,
    *,
    x_zero_point: int,
    multiplier: object,
    shift: object,
    y_zero_point: int,
    y_min: int,
    y_max: int,
    rounding: str = "double",
) -> np.ndarray:
    """Numba twin of :func:`int4rt.ops.gemv.reference.fully_connected` (§7.1)."""
    w = check_weights(weights)
    args = prepare_fully_connected(
        x, w.shape[0], w.shape[1], bias, x_zero_point, multiplier, shift,
        y_zero_point, y_min, y_max, rounding,
    )
    acc = np.empty((args.x.shape[0], w.shape[0]), dtype=np.int32)
    _dot_int8(args.x, np.ascontiguousarray(w), acc)
    return _requantize(acc, args, rounding)


def fully_connected_int4(
    x: object,
    packed_weights: object,
    n_out: int,
    bias: object,
    *,
    x_zero_point: int,
    multiplier: object,
    shift: object,
    y_zero_point: int,
    y_min: int,
    y_max: int,
    rounding: str = "double",
) -> np.ndarray:
    """Numba twin of :func:`int4rt.ops.gemv.reference.fully_connected_int4` (§5, §7.1).

    Even K takes the fast path; odd K rows straddle bytes.
    """
    packed, x_arr, n_in = check_packed_weights(packed_weights, x, n_out)
    args = prepare_fully_connected(
        x_arr, n_out, n_in, bias, x_zero_point, multiplier, shift,
        y_zero_point, y_min, y_max, rounding,
    )
    acc = np.empty((args.x.shape[0], n_out), dtype=np.int32)
    if n_in % 2 == 0:
        x_even = np.ascontiguousarray(args.x[:, 0::2])
        x_odd = np.ascontiguousarray(args.x[:, 1::2])
        _dot_int4_even(x_even, x_odd, packed.view(np.int8), acc)
    else:
        _dot_int4_any(args.x, packed, acc)
    return _requantize(acc, args, rounding)
