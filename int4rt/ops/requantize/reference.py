"""Multiplier quantization and requantization (docs/ARITHMETIC.md §3, §4)."""

from __future__ import annotations

import math

import numpy as np

from int4rt.errors import ArithmeticSpecError
from int4rt.ops.formats import INT32_MAX, INT32_MIN, as_int64, check_range
from int4rt.options import ROUNDING_MODES

SHIFT_MIN = -31
SHIFT_MAX = 30


def check_rounding(rounding: str) -> None:
    """Raise :class:`ArithmeticSpecError` unless ``rounding`` names a mode of §4."""
    if rounding not in ROUNDING_MODES:
        raise ArithmeticSpecError(
            f"unknown rounding mode {rounding!r}; expected 'double' (gemmlowp/TFLM) or "
            "'single' (round half up)"
        )


def quantize_multiplier(real: float) -> tuple[int, int]:
    """(multiplier, shift) with ``real ≈ multiplier · 2^(shift - 31)`` (ARITHMETIC.md §3).

    The multiplier lies in [2^30, 2^31) and the shift in [-31, 30]; a ``real`` whose shift
    would fall below -31 flushes to (0, 0), as TFLite's QuantizeMultiplier does.
    """
    try:
        real = float(real)
    except (TypeError, ValueError):
        raise ArithmeticSpecError(f"real multiplier must be a number, got {real!r}") from None
    if not math.isfinite(real) or real <= 0.0:
        raise ArithmeticSpecError(
            f"real multiplier must be finite and positive, got {real!r}"
        )
    q, exponent = math.frexp(real)
    scaled = q * (1 << 31)
    multiplier = math.floor(scaled + 0.5)  # q > 0: round half away from zero
    if multiplier == 1 << 31:
        multiplier, exponent = 1 << 30, exponent + 1
    if exponent < SHIFT_MIN:
        return 0, 0
    if exponent > SHIFT_MAX:
        raise ArithmeticSpecError(
            f"real multiplier {real!r} needs shift {exponent} > {SHIFT_MAX}; "
            "no int32 requantization can represent it"
        )
    return multiplier, exponent


def srdhm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Saturating rounding doubling high multiply of int32 values held in int64 (§4.1)."""
    both_min = (a == INT32_MIN) & (b == INT32_MIN)
    p = a * b
    q = p + np.where(p >= 0, 1 << 30, 1 - (1 << 30))
    high = np.where(q >= 0, q >> 31, -((-q) >> 31))
    return np.where(both_min, INT32_MAX, high)


def rounding_divide_by_pot(x: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """``x / 2^exponent`` rounded half away from zero, exponent in [0, 31] (§4.2)."""
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def wrap_int32(x: np.ndarray) -> np.ndarray:
    """Two's-complement wrap of int64 values to int32 (§1)."""
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def prepare_requantize(
    acc: object, multiplier: object, shift: object, rounding: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check the arguments of §4 and broadcast them to int64 arrays of one shape."""
    check_rounding(rounding)
    acc = as_int64("acc", acc)
    multiplier = as_int64("multiplier", multiplier)
    shift = as_int64("shift", shift)
    check_range("acc", acc, INT32_MIN, INT32_MAX)
    check_range("multiplier", multiplier, INT32_MIN, INT32_MAX)
    check_range("shift", shift, SHIFT_MIN, SHIFT_MAX)
    try:
        return tuple(np.broadcast_arrays(acc, multiplier, shift))
    except ValueError:
        raise ArithmeticSpecError(
            f"acc {acc.shape}, multiplier {multiplier.shape} and shift {shift.shape} "
            "do not broadcast"
        ) from None


def requantize(
    acc: object, multiplier: object, shift: object, rounding: str = "double"
) -> np.ndarray:
    """Scale int32 accumulators by ``multiplier · 2^(shift - 31)`` (ARITHMETIC.md §4).

    ``acc``, ``multiplier`` and ``shift`` broadcast against each other. Values are int32,
    held in int64; the result is int64 and is not clamped. ``rounding="double"`` is
    gemmlowp's SRDHM followed by RoundingDivideByPOT (§4.3, the TFLM default);
    ``rounding="single"`` rounds half up once (§4.4).
    """
    acc, multiplier, shift = prepare_requantize(acc, multiplier, shift, rounding)
    if rounding == "double":
        left = np.maximum(shift, 0)
        right = np.maximum(-shift, 0)
        return rounding_divide_by_pot(srdhm(wrap_int32(acc << left), multiplier), right)
    total = 31 - shift
    return (acc * multiplier + (np.int64(1) << (total - 1))) >> total
