"""Slow, obviously-correct twins of the integer primitives, written from ARITHMETIC.md.

They use Python integers and exact fractions, one element at a time, and share no code with
``int4rt``: every fast path and every NumPy reference is tested against them.
"""

from __future__ import annotations

from fractions import Fraction
from math import floor

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


def wrap32(v: int) -> int:
    """Two's-complement wrap to int32."""
    v %= 2**32
    return v - 2**32 if v >= 2**31 else v


def round_half_up(q: Fraction) -> int:
    """Nearest integer, ties toward +infinity."""
    return floor(q + Fraction(1, 2))


def round_half_away(q: Fraction) -> int:
    """Nearest integer, ties away from zero."""
    return round_half_up(q) if q >= 0 else -round_half_up(-q)


def requantize_double(acc: int, multiplier: int, shift: int) -> int:
    """§4.3: high multiply rounded half up (saturating at INT32_MIN²), then half away."""
    x = wrap32(acc * 2 ** max(shift, 0))
    if x == multiplier == INT32_MIN:
        high = INT32_MAX
    else:
        high = round_half_up(Fraction(x * multiplier, 2**31))
    return round_half_away(Fraction(high, 2 ** max(-shift, 0)))


def requantize_single(acc: int, multiplier: int, shift: int) -> int:
    """§4.4: one rounding, half up."""
    return round_half_up(Fraction(acc * multiplier, 2 ** (31 - shift)))


def requantize(acc: int, multiplier: int, shift: int, rounding: str) -> int:
    """§4 by name."""
    fn = requantize_double if rounding == "double" else requantize_single
    return fn(acc, multiplier, shift)


def fully_connected(x, w, bias, x_zp, multiplier, shift, y_zp, y_min, y_max, rounding):
    """§7.1 over nested Python lists: x[K], w[N][K], per-channel multiplier/shift."""
    out = []
    for n, row in enumerate(w):
        acc = sum(int(wk) * (int(xk) - x_zp) for wk, xk in zip(row, x, strict=True))
        acc += int(bias[n]) if bias is not None else 0
        y = requantize(acc, int(multiplier[n]), int(shift[n]), rounding) + y_zp
        out.append(min(max(y, y_min), y_max))
    return out


def pack_int4(codes: list[int]) -> bytes:
    """§5: element 2i in the low nibble, 2i+1 in the high nibble."""
    padded = list(codes) + [0] * (len(codes) % 2)
    return bytes((padded[i] & 0xF) | ((padded[i + 1] & 0xF) << 4) for i in range(0, len(padded), 2))
