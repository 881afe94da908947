"""Scalar Numba twins of the requantization primitives (docs/ARITHMETIC.md §4).

Every argument and result is an int64 holding the integer the specification names. The
forms have no data-dependent branches (selects, min/max), so loops over them vectorize: the
§4.1 saturation is a ``min`` (only a = b = −2^31 gives a product whose rounded high half,
2^31, exceeds int32), and a non-positive shift is a left shift by 0 (§4.3: left = max(s, 0),
right = max(−s, 0)).
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
    """Saturating rounding doubling high multiply (§4.1) of int32 values.

    ``(a·b + 2^30) >> 31`` is at most ``(2^62 − 2^31 + 2^30) >> 31 = 2^31 − 1`` unless
    a = b = −2^31, where it is 2^31 and §4.1 gives 2^31 − 1: one ``min`` covers both.
    """
    p = np.int64(a) * np.int64(b)
    return min((p + np.int64(1 << 30)) >> 31, np.int64(INT32_MAX))


@nb.njit(cache=True, inline="always")
def rounding_divide_by_pot(x: int, exponent: int) -> int:
    """``x / 2^exponent`` rounded half away from zero (§4.2)."""
    mask = (np.int64(1) << exponent) - 1
    threshold = (mask >> 1) + np.int64(x < 0)
    return (x >> exponent) + np.int64((x & mask) > threshold)


@nb.njit(cache=True, inline="always")
def wrap_int32(x: int) -> int:
    """Two's-complement wrap to int32 (§1)."""
    return ((np.int64(x) + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


@nb.njit(cache=True, inline="always")
def requantize_one(acc: int, multiplier: int, shift: int, rounding: int) -> int:
    """One int32 accumulator scaled by ``multiplier · 2^(shift − 31)`` (§4.3, §4.4)."""
    if rounding == DOUBLE_ROUNDING:
        x = wrap_int32(np.int64(acc) << max(shift, 0))
        return rounding_divide_by_pot(srdhm(x, multiplier), max(-shift, 0))
    total = 31 - shift
    return (np.int64(acc) * np.int64(multiplier) + (np.int64(1) << (total - 1))) >> total


def rounding_code(rounding: str) -> int:
    """The integer the kernels use for a rounding mode of §4; an error for any other name."""
    check_rounding(rounding)
    return DOUBLE_ROUNDING if rounding == "double" else SINGLE_ROUNDING
