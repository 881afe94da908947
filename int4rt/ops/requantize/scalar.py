"""Scalar Numba twins of the requantization primitives (docs/ARITHMETIC.md §4).

Every argument and result is an int64 holding the integer the specification names.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from int4rt.ops.requantize.reference import check_rounding

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
DOUBLE_ROUNDING = 0
SINGLE_ROUNDING = 1


@nb.njit(cache=True, inline="always")
def srdhm(a: int, b: int) -> int:
    """Saturating rounding doubling high multiply (§4.1)."""
    if a == INT32_MIN and b == INT32_MIN:
        return INT32_MAX
    p = np.int64(a) * np.int64(b)
    q = p + (np.int64(1 << 30) if p >= 0 else np.int64(1 - (1 << 30)))
    if q >= 0:
        return q >> 31
    return -((-q) >> 31)


@nb.njit(cache=True, inline="always")
def rounding_divide_by_pot(x: int, exponent: int) -> int:
    """``x / 2^exponent`` rounded half away from zero (§4.2)."""
    mask = (np.int64(1) << exponent) - 1
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if (x & mask) > threshold else 0)


@nb.njit(cache=True, inline="always")
def wrap_int32(x: int) -> int:
    """Two's-complement wrap to int32 (§1)."""
    return ((np.int64(x) + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


@nb.njit(cache=True, inline="always")
def requantize_one(acc: int, multiplier: int, shift: int, rounding: int) -> int:
    """One int32 accumulator scaled by ``multiplier · 2^(shift − 31)`` (§4.3, §4.4)."""
    if rounding == DOUBLE_ROUNDING:
        if shift > 0:
            return rounding_divide_by_pot(srdhm(wrap_int32(np.int64(acc) << shift), multiplier), 0)
        return rounding_divide_by_pot(srdhm(acc, multiplier), -shift)
    total = 31 - shift
    return (np.int64(acc) * np.int64(multiplier) + (np.int64(1) << (total - 1))) >> total


def rounding_code(rounding: str) -> int:
    """The integer the kernels use for a rounding mode of §4; an error for any other name."""
    check_rounding(rounding)
    return DOUBLE_ROUNDING if rounding == "double" else SINGLE_ROUNDING
