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


def table_input(x: int, multiplier: int, shift: int) -> int:
    """§6.3: (x·mult + rounding) >> shift, floor shift."""
    rounding = 2 ** (shift - 1) if shift > 0 else 0
    return (x * multiplier + rounding) // 2**shift


def sigmoid16(x: int, table, multiplier: int = 3, shift: int = 0) -> int:
    """§6.3 on one value."""
    v = table_input(x, multiplier, shift)
    a = abs(v)
    u, frac = divmod(a, 512)
    if u >= 255:
        r = 0x7FFF * 1024
    else:
        r = int(table[u]) * 512 + frac * (int(table[u + 1]) - int(table[u]))
    r = r + 512 if v >= 0 else 2**25 - r + 511
    return r // 1024


def tanh16(x: int, table, multiplier: int = 3, shift: int = 0) -> int:
    """§6.4 on one value."""
    v = table_input(x, multiplier, shift)
    a = abs(v)
    u, frac = divmod(a, 256)
    if u >= 255:
        r = 0xFFFF * 256
    else:
        r = int(table[u]) * 256 + frac * (int(table[u + 1]) - int(table[u]))
    r = r - 2**23 + 128 if v >= 0 else -r + 2**23 + 127
    return r // 256


def clamp(v: int, lo: int, hi: int) -> int:
    """Saturate v to [lo, hi]."""
    return min(max(v, lo), hi)


def lstm_step(cell, x, h, c, table, rounding):
    """§8.2–§8.4 for one sequence: x, h codes and c as lists of Python ints."""
    size = len(c)
    ix, rx = cell.input_fc, cell.recurrent_fc
    pre = []
    for r in range(4 * size):
        zp_x, zp_h = cell.input.zero_point, cell.hidden.zero_point
        acc_x = sum(int(w) * (xk - zp_x) for w, xk in zip(ix.weight[r], x, strict=True))
        acc_x += int(ix.bias[r])
        gx = clamp(requantize(acc_x, int(ix.multiplier[r]), int(ix.shift[r]), rounding),
                   -32768, 32767)
        acc_h = sum(int(w) * (hk - zp_h) for w, hk in zip(rx.weight[r], h, strict=True))
        gh = clamp(requantize(acc_h, int(rx.multiplier[r]), int(rx.shift[r]), rounding),
                   -32768, 32767)
        pre.append(clamp(gx + gh, -32768, 32767))
    left = 12 + cell.cell_scale_log2
    tanh_mult, tanh_shift = (3 * 2**left, 0) if left >= 0 else (3, -left)
    h_new, c_new = [], []
    for j in range(size):
        i = sigmoid16(pre[j], table)
        f = sigmoid16(pre[size + j], table)
        g = tanh16(pre[2 * size + j], table)
        o = sigmoid16(pre[3 * size + j], table)
        forget = clamp(requantize(f * c[j], 2**30, -14, rounding), -32768, 32767)
        update = clamp(requantize(i * g, 2**30, -29 - cell.cell_scale_log2, rounding),
                       -32768, 32767)
        cj = clamp(forget + update, -32768, 32767)
        if cell.cell_clip:
            cj = clamp(cj, -cell.cell_clip, cell.cell_clip)
        t = tanh16(cj, table, tanh_mult, tanh_shift)
        hj = requantize(t * o, cell.hidden_multiplier, cell.hidden_shift, rounding)
        h_new.append(clamp(hj + cell.hidden.zero_point, cell.hidden.qmin, cell.hidden.qmax))
        c_new.append(cj)
    return h_new, c_new
