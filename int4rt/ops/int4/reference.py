"""Packing of 4-bit codes two per byte, NumPy reference (docs/ARITHMETIC.md §5)."""

from __future__ import annotations

import numpy as np

from int4rt.errors import ArithmeticSpecError
from int4rt.ops.formats import as_int64, check_range


def check_codes(codes: object) -> np.ndarray:
    """``codes`` flattened to int64 after checking they are int4 codes in [-8, 7] (§5)."""
    flat = as_int64("codes", codes).ravel()
    check_range("int4 codes", flat, -8, 7)
    return flat


def check_packed(packed: object, count: int) -> np.ndarray:
    """``packed`` flattened after checking it holds exactly ``count`` codes (§5)."""
    data = np.asarray(packed)
    if data.dtype != np.uint8:
        raise ArithmeticSpecError(f"packed int4 data must be uint8, got dtype {data.dtype}")
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
        raise ArithmeticSpecError(f"count must be a non-negative integer, got {count!r}")
    if data.size * 2 < count or data.size > (count + 1) // 2:
        raise ArithmeticSpecError(
            f"{count} int4 codes need {(count + 1) // 2} bytes, got {data.size}"
        )
    flat = data.ravel()
    if count % 2 and flat[-1] >> 4:
        raise ArithmeticSpecError(
            f"padding nibble after {count} int4 codes must be 0, got {int(flat[-1] >> 4)}"
        )
    return flat


def pack_int4(codes: object) -> np.ndarray:
    """Pack signed 4-bit codes [-8, 7] over the flattened tensor (§5).

    Element 2i goes to the low nibble of byte i and element 2i+1 to its high nibble; an odd
    count leaves the last high nibble 0. Returns ``ceil(n / 2)`` bytes as uint8.
    """
    nibbles = check_codes(codes) & 0xF
    if nibbles.size % 2:
        nibbles = np.append(nibbles, 0)
    return (nibbles[0::2] | (nibbles[1::2] << 4)).astype(np.uint8)


_BYTES = np.arange(256)
_CODE_PAIRS = np.stack([((_BYTES & 0xF) ^ 8) - 8, ((_BYTES >> 4) ^ 8) - 8], axis=1).astype(np.int8)
"""Row b: the signed codes of byte b, low nibble first (§5)."""


def unpack_int4(packed: object, count: int) -> np.ndarray:
    """The first ``count`` signed 4-bit codes of ``packed`` bytes, as int8 (§5).

    Each byte is looked up in :data:`_CODE_PAIRS` (one pass over the bytes, no wider
    temporaries: model loading unpacks every 4-bit layer this way).
    """
    flat = check_packed(packed, count)
    return np.take(_CODE_PAIRS, flat, axis=0).reshape(-1)[:count]
