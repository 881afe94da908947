"""Numba fully-connected layer with int8 or packed int4 weights (docs/ARITHMETIC.md §5, §7)."""

from __future__ import annotations

import numba as nb
import numpy as np

from int4rt.arith.gemv import FullyConnectedArgs, check_weights, prepare_fully_connected
from int4rt.arith.requant import check_rounding
from int4rt.errors import ArithmeticSpecError
from int4rt.kernels.fixedpoint import requantize_one, rounding_code
from int4rt.kernels.gemm_blocked import gemm as blocked_gemm
from int4rt.kernels.weight_layout import padded_unsigned, stream_layout
from int4rt.layers import ActQuant, QLinear


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


def linear(x: np.ndarray, layer: QLinear, fmt: ActQuant, rounding: str, y_min: int,
           y_max: int) -> np.ndarray:
    """§7.1 for a validated layer on codes of format ``fmt``, output zero point 0.

    Same integers as :func:`fully_connected`; the dot products run on unsigned codes with
    the zero point folded into a per-row constant (§7.3), on the blocked kernel (§7.4). The
    layer was validated when it was loaded, so a call checks only what it is given: the
    codes' dtype and range (one reduction each) and the rounding name.
    """
    codes = np.asarray(x)
    if codes.ndim not in (1, 2) or codes.shape[-1] != layer.n_in:
        raise ArithmeticSpecError(f"activations have shape {codes.shape}; expected "
                                  f"({layer.n_in},) or (batch, {layer.n_in})")
    if codes.dtype != fmt.dtype:
        raise ArithmeticSpecError(
            f"activations must be {fmt.dtype} codes, got dtype {codes.dtype}")
    if codes.size and (int(codes.min()) < fmt.qmin or int(codes.max()) > fmt.qmax):
        raise ArithmeticSpecError(f"activations: codes outside [{fmt.qmin}, {fmt.qmax}]")
    check_rounding(rounding)
    layout = stream_layout(layer, fmt)
    u = padded_unsigned(codes, layout)
    acc = np.empty((u.shape[0], layer.n_out), dtype=np.int32)
    blocked_gemm(u, layout.weight, layout.offsets, layout.flush, acc)
    out = np.empty_like(acc)
    _requantize_rows(acc, layout.bias, layout.multiplier, layout.shift, 0, y_min, y_max,
                     rounding_code(rounding), out)
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
    """Numba twin of :func:`int4rt.arith.fully_connected` for int8-held weights (§7.1)."""
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
    """§7.1 with int4 weights packed over the flattened [N, K] tensor as in §5.

    ``packed_weights`` is the uint8 output of :func:`int4rt.arith.pack_int4`; K is taken
    from the activations. Even K takes the fast path; odd K rows straddle bytes.
    """
    packed = np.asarray(packed_weights)
    if packed.dtype != np.uint8 or packed.ndim != 1:
        raise ArithmeticSpecError(
            f"packed int4 weights must be a 1-D uint8 array, got dtype {packed.dtype} "
            f"and shape {packed.shape}"
        )
    x_arr = np.asarray(x)
    n_in = x_arr.shape[-1] if x_arr.ndim else 0
    if packed.size != (n_out * n_in + 1) // 2:
        raise ArithmeticSpecError(
            f"{n_out}x{n_in} int4 weights need {(n_out * n_in + 1) // 2} bytes, "
            f"got {packed.size}"
        )
    if (n_out * n_in) % 2 and packed[-1] >> 4:
        raise ArithmeticSpecError("padding nibble after the last int4 weight must be 0 (§5)")
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
