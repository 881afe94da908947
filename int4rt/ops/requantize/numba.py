"""Numba requantization of arrays (docs/ARITHMETIC.md §4)."""

from __future__ import annotations

import numba as nb
import numpy as np

from int4rt.ops.requantize.reference import prepare_requantize
from int4rt.ops.requantize.scalar import requantize_one, rounding_code


@nb.njit(cache=True)
def _requantize_flat(acc, multiplier, shift, rounding, out):
    for i in range(acc.size):
        out[i] = requantize_one(acc[i], multiplier[i], shift[i], rounding)


def requantize(
    acc: object, multiplier: object, shift: object, rounding: str = "double"
) -> np.ndarray:
    """Numba twin of :func:`int4rt.ops.requantize.reference.requantize` (§4); int64 result."""
    a, m, s = prepare_requantize(acc, multiplier, shift, rounding)
    out = np.empty(a.size, dtype=np.int64)
    _requantize_flat(
        np.ascontiguousarray(a).ravel(), np.ascontiguousarray(m).ravel(),
        np.ascontiguousarray(s).ravel(), rounding_code(rounding), out,
    )
    return out.reshape(a.shape)
