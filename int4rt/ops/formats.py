"""Integer code formats and saturation (docs/ARITHMETIC.md §2)."""

from __future__ import annotations

import numpy as np

from int4rt.errors import ArithmeticSpecError

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1

FORMATS: dict[str, tuple[int, int]] = {
    "int4": (-8, 7),
    "uint4": (0, 15),
    "int8": (-128, 127),
    "uint8": (0, 255),
    "int16": (-32768, 32767),
    "int32": (INT32_MIN, INT32_MAX),
}


def code_range(fmt: str) -> tuple[int, int]:
    """Smallest and largest code of format ``fmt`` (ARITHMETIC.md §2)."""
    try:
        return FORMATS[fmt]
    except KeyError:
        raise ArithmeticSpecError(
            f"unknown integer format {fmt!r}; expected one of {', '.join(FORMATS)}"
        ) from None


def as_int64(name: str, values: object) -> np.ndarray:
    """``values`` as an int64 array; an :class:`ArithmeticSpecError` if they are not integers."""
    arr = np.asarray(values)
    if arr.dtype == np.uint64 or not (
        np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_
    ):
        raise ArithmeticSpecError(
            f"{name} must hold integers (got dtype {arr.dtype}); quantize floats first"
        )
    return arr.astype(np.int64)


def check_range(name: str, values: np.ndarray, lo: int, hi: int) -> None:
    """Raise :class:`ArithmeticSpecError` naming ``name`` if any value lies outside [lo, hi]."""
    if values.size and (values.min() < lo or values.max() > hi):
        bad = values[(values < lo) | (values > hi)].flat[0]
        raise ArithmeticSpecError(f"{name} holds {bad}, outside [{lo}, {hi}]")


def saturate(x: object, fmt: str) -> np.ndarray:
    """Clamp integers ``x`` to the range of ``fmt`` (ARITHMETIC.md §2); int64 result."""
    lo, hi = code_range(fmt)
    return np.clip(as_int64("x", x), lo, hi)
