"""Numba fully-connected layer with int8 or packed int4 weights (docs/ARITHMETIC.md §5, §7)."""

from __future__ import annotations

import numba as nb
import numpy as np

from int4rt.errors import ArithmeticSpecError
from int4rt.layers import ActQuant, QLinear
from int4rt.ops.gemv.dot_tiles import CHUNK
from int4rt.ops.gemv.gemm_blocked import FRAME_BLOCK, tiles
from int4rt.ops.gemv.reference import (
    FullyConnectedArgs,
    check_packed_weights,
    check_weights,
    output_range,
    prepare_fully_connected,
)
from int4rt.ops.gemv.weight_layout import padded_unsigned, stream_layout
from int4rt.ops.requantize.reference import check_rounding
from int4rt.ops.requantize.scalar import requantize_one, rounding_code


@nb.njit(cache=True, nogil=True)
def _requantize_rows(acc, bias, multiplier, shift, y_zero_point, y_min, y_max, rounding, out):
    """Second pass of §7.1 over int32 accumulators; kept out of the dot loops so they vectorize."""
    for b in range(acc.shape[0]):
        for n in range(acc.shape[1]):
            y = requantize_one(np.int64(acc[b, n]) + bias[n], multiplier[n], shift[n], rounding)
            out[b, n] = min(max(y + y_zero_point, y_min), y_max)


@nb.njit(cache=True, nogil=True)
def _linear_rows(u, w, offsets, flush, bias, multiplier, shift, y_zero_point, y_min, y_max,
                 rounding, out):
    """§7.1 over padded unsigned codes ``u`` [B, Kp] (§7.3, §7.4), requantized into ``out``.

    Each block of ``FRAME_BLOCK`` rows runs the blocked GEMM into a block of int32
    accumulators, which is requantized while it is still in cache (no second pass over all
    B rows).
    """
    n_frames, n_rows = u.shape[0], w.shape[0]
    chunks = u.shape[1] // CHUNK
    acc = np.empty((min(FRAME_BLOCK, n_frames), n_rows), dtype=np.int32)
    for b_start in range(0, n_frames, FRAME_BLOCK):
        b_stop = min(b_start + FRAME_BLOCK, n_frames)
        tiles(u[b_start:b_stop], w, chunks, flush, acc, 0, b_stop - b_start)
        for b in range(b_stop - b_start):
            for n in range(n_rows):
                y = requantize_one(np.int64(acc[b, n]) - offsets[n] + bias[n], multiplier[n],
                                   shift[n], rounding)
                out[b_start + b, n] = min(max(y + y_zero_point, y_min), y_max)


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
    constant (§7.3), on the blocked kernel (§7.4), requantized block by block. The layer was
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
    layout = stream_layout(layer, x_format)
    u = padded_unsigned(codes, layout)
    out = np.empty((u.shape[0], layer.n_out), dtype=out_dtype)
    _linear_rows(u, layout.weight, layout.offsets, layout.flush, layout.bias, layout.multiplier,
                 layout.shift, 0, y_min, y_max, rounding_code(rounding), out)
    return out.reshape(*codes.shape[:-1], layer.n_out)


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
