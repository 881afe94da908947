"""Interpolated sigmoid and tanh on int16 inputs (docs/ARITHMETIC.md §6.3, §6.4)."""

from __future__ import annotations

import numpy as np

from int4rt.errors import ArithmeticSpecError
from int4rt.ops.activations.tables import check_sigmoid_table
from int4rt.ops.formats import as_int64, check_range

INPUT_MULTIPLIER_MAX = (1 << 16) - 1
INPUT_MULTIPLIER_MAX_SHIFTED = (1 << 15) - 1
INPUT_SHIFT_MAX = 31


def check_input_scaling(input_multiplier: int, input_shift: int) -> None:
    """Raise :class:`ArithmeticSpecError` unless (multiplier, shift) obey §6.3.

    The limits keep ``x · multiplier + rounding`` inside int32 for every int16 x.
    """
    if not 0 <= int(input_shift) <= INPUT_SHIFT_MAX:
        raise ArithmeticSpecError(
            f"input_shift must be in [0, {INPUT_SHIFT_MAX}], got {input_shift}"
        )
    limit = INPUT_MULTIPLIER_MAX if int(input_shift) == 0 else INPUT_MULTIPLIER_MAX_SHIFTED
    if not 1 <= int(input_multiplier) <= limit:
        raise ArithmeticSpecError(
            f"input_multiplier must be in [1, {limit}] with input_shift {input_shift}, "
            f"got {input_multiplier}"
        )


def table_input(x: object, input_multiplier: int, input_shift: int) -> np.ndarray:
    """``(x · multiplier + rounding) >> shift`` of int16 ``x``: the table argument (§6.3)."""
    check_input_scaling(input_multiplier, input_shift)
    values = as_int64("x", x)
    check_range("x", values, -32768, 32767)
    rounding = (1 << (input_shift - 1)) if input_shift > 0 else 0
    return (values * int(input_multiplier) + rounding) >> int(input_shift)


def interpolate(
    table: np.ndarray, magnitude: np.ndarray, frac_bits: int, saturated: int
) -> np.ndarray:
    """``T[u]·2^b + (a mod 2^b)·(T[u+1] − T[u])`` with ``u = a >> b``; ``saturated`` for u ≥ 255.

    ARITHMETIC.md §6.3, §6.4.
    """
    t = table.astype(np.int64)
    u = magnitude >> frac_bits
    index = np.minimum(u, 254)
    lo, hi = t[index], t[index + 1]
    value = (lo << frac_bits) + (magnitude & ((1 << frac_bits) - 1)) * (hi - lo)
    return np.where(u >= 255, saturated, value)


def sigmoid16(
    x: object, table: object, input_multiplier: int = 3, input_shift: int = 0
) -> np.ndarray:
    """Sigmoid of int16 ``x`` to Q0.15 int16 by table interpolation (§6.3).

    The defaults take a Q3.12 input, the scale of LSTM gate pre-activations.
    """
    table = check_sigmoid_table(table)
    v = table_input(x, input_multiplier, input_shift)
    r = interpolate(table, np.abs(v), 9, 0x7FFF << 10)
    r = np.where(v >= 0, r + (1 << 9), (1 << 25) - r + (1 << 9) - 1)
    return (r >> 10).astype(np.int16)


def tanh16(
    x: object, table: object, input_multiplier: int = 3, input_shift: int = 0
) -> np.ndarray:
    """Tanh of int16 ``x`` to Q0.15 int16 through the sigmoid table (§6.4).

    The defaults take a Q3.12 input; ``tanh_input_scaling`` gives the scaling for other
    power-of-two input scales.
    """
    table = check_sigmoid_table(table)
    v = table_input(x, input_multiplier, input_shift)
    r = interpolate(table, np.abs(v), 8, 0xFFFF << 8)
    r = np.where(v >= 0, r - (1 << 23) + (1 << 7), -r + (1 << 23) + (1 << 7) - 1)
    return (r >> 8).astype(np.int16)


def tanh_input_scaling(scale_log2: int) -> tuple[int, int]:
    """(input_multiplier, input_shift) for a tanh input with scale ``2^scale_log2`` (§6.4)."""
    left = 12 + int(scale_log2)
    if left >= 0:
        if 3 << left > INPUT_MULTIPLIER_MAX:
            raise ArithmeticSpecError(
                f"tanh input scale 2^{scale_log2} is too coarse; at most 2^2 is supported"
            )
        return 3 << left, 0
    if -left > INPUT_SHIFT_MAX:
        raise ArithmeticSpecError(f"tanh input scale 2^{scale_log2} is too fine")
    return 3, -left
