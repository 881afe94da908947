"""Packing of 4-bit codes two per byte, Numba kernels (docs/ARITHMETIC.md §5)."""

from __future__ import annotations

import numba as nb
import numpy as np

from int4rt.ops.int4.reference import check_codes, check_packed


@nb.njit(cache=True)
def _pack(codes, out):
    for i in range(codes.size):
        nibble = np.uint8(codes[i] & 15)
        if i % 2:
            out[i >> 1] |= nibble << 4
        else:
            out[i >> 1] = nibble


@nb.njit(cache=True)
def _unpack(packed, count, out):
    for i in range(count):
        nibble = (np.int32(packed[i >> 1]) >> ((i & 1) * 4)) & 15
        out[i] = (nibble ^ 8) - 8


def pack_int4(codes: object) -> np.ndarray:
    """Numba twin of :func:`int4rt.ops.int4.reference.pack_int4` (§5)."""
    flat = check_codes(codes)
    out = np.zeros((flat.size + 1) // 2, dtype=np.uint8)
    _pack(flat, out)
    return out


def unpack_int4(packed: object, count: int) -> np.ndarray:
    """Numba twin of :func:`int4rt.ops.int4.reference.unpack_int4` (§5)."""
    flat = np.ascontiguousarray(check_packed(packed, count))
    out = np.empty(int(count), dtype=np.int8)
    _unpack(flat, int(count), out)
    return out
