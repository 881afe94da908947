"""Numba twins of the interpolated sigmoid and tanh (docs/ARITHMETIC.md §6.3, §6.4)."""

from __future__ import annotations

import numba as nb
import numpy as np

from int4rt.ops.activations.reference import check_input_scaling
from int4rt.ops.activations.tables import check_sigmoid_table
from int4rt.ops.formats import as_int64, check_range


@nb.njit(cache=True, inline="always")
def _table_input(x: int, multiplier: int, shift: int) -> int:
    rounding = (np.int64(1) << (shift - 1)) if shift > 0 else np.int64(0)
    return (np.int64(x) * multiplier + rounding) >> shift


@nb.njit(cache=True, inline="always")
def _interpolate(table: np.ndarray, a: int, frac_bits: int) -> int:
    """``(T[u] << frac_bits) + f·(T[u+1] − T[u])`` for u = a >> frac_bits below 255.

    The index is clamped to 254 so both loads stay inside the table whatever ``a`` is; the
    callers replace the result by the saturation value when u ≥ 255 (§6.3, §6.4). No branch
    depends on the data, so loops over these functions vectorize.
    """
    u = min(a >> frac_bits, np.int64(254))
    lo = np.int64(table[u])
    return (lo << frac_bits) + (a & ((1 << frac_bits) - 1)) * (np.int64(table[u + 1]) - lo)


@nb.njit(cache=True, inline="always")
def sigmoid16_one(x: int, table: np.ndarray, multiplier: int, shift: int) -> int:
    """Sigmoid of one int16 value to Q0.15 (§6.3)."""
    v = _table_input(x, multiplier, shift)
    a = abs(v)
    r = _interpolate(table, a, 9)
    r = np.int64(0x7FFF << 10) if a >> 9 >= 255 else r
    r = r + 512 if v >= 0 else (1 << 25) - r + 511
    return r >> 10


@nb.njit(cache=True, inline="always")
def tanh16_one(x: int, table: np.ndarray, multiplier: int, shift: int) -> int:
    """Tanh of one int16 value to Q0.15 (§6.4)."""
    v = _table_input(x, multiplier, shift)
    a = abs(v)
    r = _interpolate(table, a, 8)
    r = np.int64(0xFFFF << 8) if a >> 8 >= 255 else r
    r = r - (1 << 23) + 128 if v >= 0 else -r + (1 << 23) + 127
    return r >> 8


@nb.njit(cache=True)
def _sigmoid16_flat(x, table, multiplier, shift, out):
    for i in range(x.size):
        out[i] = sigmoid16_one(x[i], table, multiplier, shift)


@nb.njit(cache=True)
def _tanh16_flat(x, table, multiplier, shift, out):
    for i in range(x.size):
        out[i] = tanh16_one(x[i], table, multiplier, shift)


def _apply(flat_kernel, x, table, input_multiplier, input_shift) -> np.ndarray:
    table = check_sigmoid_table(table)
    check_input_scaling(input_multiplier, input_shift)
    values = as_int64("x", x)
    check_range("x", values, -32768, 32767)
    out = np.empty(values.size, dtype=np.int16)
    flat_kernel(np.ascontiguousarray(values).ravel(), table, int(input_multiplier),
                int(input_shift), out)
    return out.reshape(values.shape)


def sigmoid16(
    x: object, table: object, input_multiplier: int = 3, input_shift: int = 0
) -> np.ndarray:
    """Numba twin of :func:`int4rt.ops.activations.reference.sigmoid16` (ARITHMETIC.md §6.3)."""
    return _apply(_sigmoid16_flat, x, table, input_multiplier, input_shift)


def tanh16(
    x: object, table: object, input_multiplier: int = 3, input_shift: int = 0
) -> np.ndarray:
    """Numba twin of :func:`int4rt.ops.activations.reference.tanh16` (ARITHMETIC.md §6.4)."""
    return _apply(_tanh16_flat, x, table, input_multiplier, input_shift)
