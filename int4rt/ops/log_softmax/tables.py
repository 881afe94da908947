"""Tables, constants and argument checks of the integer log-softmax (ARITHMETIC.md §10).

Like the sigmoid table (§6.1) they are generated in 50-digit decimal arithmetic, so no entry
depends on the platform's libm, and they are data: a model file stores them.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, localcontext

import numpy as np

from int4rt.errors import ArithmeticSpecError
from int4rt.ops.formats import INT32_MAX, INT32_MIN, as_int64, check_range

TABLE_SIZE = 257
STEPS = 256  # entries per octave (EXP2) or per unit of the mantissa fraction (LN)
EXP2_ONE = 1 << 20  # EXP2 entries carry 20 fraction bits: 2^0 = 2^20
LN_FRAC_BITS = 24  # LN entries carry 24 fraction bits


def _round_half_up(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_HALF_UP))


def _ln2() -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 50
        return Decimal(2).ln()


def _log2e_q30() -> int:
    with localcontext() as ctx:
        ctx.prec = 50
        return _round_half_up(Decimal(1 << 30) / _ln2())


LOG2E_Q30 = _log2e_q30()  # round_half_up(log2(e) · 2^30) = 1549082005
LN_TOP_BOUND = int(Decimal(1 << LN_FRAC_BITS) * _ln2()) + 1  # floor(2^24·ln 2 + 1) = 11629080


def exp2_table() -> np.ndarray:
    """``EXP2[k] = round_half_up(2^20 · 2^(−k/256))`` for k = 0..256, int32 (§10.1).

    EXP2[0] = 2^20 and EXP2[256] = 2^19; every other exact value is irrational.
    """
    with localcontext() as ctx:
        ctx.prec = 50
        ln2 = _ln2()
        entries = [_round_half_up(EXP2_ONE * (Decimal(-k) / STEPS * ln2).exp())
                   for k in range(TABLE_SIZE)]
    return np.array(entries, dtype=np.int32)


def ln_table() -> np.ndarray:
    """``LN[j] = round_half_up(2^24 · ln(1 + j/256))`` for j = 0..256, int32 (§10.1)."""
    with localcontext() as ctx:
        ctx.prec = 50
        entries = [_round_half_up((1 << LN_FRAC_BITS) * (1 + Decimal(j) / STEPS).ln())
                   for j in range(TABLE_SIZE)]
    return np.array(entries, dtype=np.int32)


def _check_shape(name: str, table: object) -> np.ndarray:
    arr = np.asarray(table)
    if arr.shape != (TABLE_SIZE,):
        raise ArithmeticSpecError(f"{name} table must have shape (257,), got {arr.shape}")
    if arr.dtype != np.int32:
        raise ArithmeticSpecError(f"{name} table must be int32, got dtype {arr.dtype}")
    return arr


def check_exp2_table(table: object) -> np.ndarray:
    """``table`` as int32[257] after checking the invariants of §10.1; else an error.

    EXP2[0] = 2^20, EXP2[256] = 2^19 and strictly decreasing in between: then every
    interpolated value lies in [2^19, 2^20] and the row maximum contributes exactly 2^20.
    """
    arr = _check_shape("EXP2", table)
    if int(arr[0]) != EXP2_ONE or int(arr[-1]) != EXP2_ONE // 2:
        raise ArithmeticSpecError(
            f"EXP2 table must run from 2^20 to 2^19, got {int(arr[0])} .. {int(arr[-1])}"
        )
    if np.any(np.diff(arr.astype(np.int64)) >= 0):
        raise ArithmeticSpecError("EXP2 table must be strictly decreasing")
    return arr


def check_ln_table(table: object) -> np.ndarray:
    """``table`` as int32[257] after checking the invariants of §10.1; else an error.

    LN[0] = 0, non-decreasing, LN[256] ≤ 2^24·ln 2 + 1: every interpolated value then lies in
    [0, LN[256]].
    """
    arr = _check_shape("LN", table)
    if int(arr[0]) != 0:
        raise ArithmeticSpecError(f"LN table entry 0 must be 0, got {int(arr[0])}")
    if np.any(np.diff(arr.astype(np.int64)) < 0):
        raise ArithmeticSpecError("LN table must be non-decreasing")
    if int(arr[-1]) > LN_TOP_BOUND:
        raise ArithmeticSpecError(
            f"LN table entry 256 must be <= {LN_TOP_BOUND} (2^24·ln 2 + 1), got {int(arr[-1])}"
        )
    return arr


FRAC_BITS_MIN, FRAC_BITS_MAX = 4, 16
VOCAB_MAX = 2047  # S = Σ e_i ≤ 2047 · 2^20 fits int32 (§10.3)
CUTOFF_NATS = 24  # a_i > 24 · 2^F gives e_i = 0 (§10.2)


def prepare_log_softmax(
    logits: object, frac_bits: int, exp_table: object, ln_table: object
) -> tuple[np.ndarray, int, np.ndarray, np.ndarray]:
    """Check the arguments of §10 and return (logits int64 [..., V], F, EXP2, LN as int64)."""
    if isinstance(frac_bits, bool) or not isinstance(frac_bits, (int, np.integer)):
        raise ArithmeticSpecError(f"frac_bits must be an integer, got {frac_bits!r}")
    if not FRAC_BITS_MIN <= frac_bits <= FRAC_BITS_MAX:
        raise ArithmeticSpecError(
            f"frac_bits must be in [{FRAC_BITS_MIN}, {FRAC_BITS_MAX}], got {frac_bits}"
        )
    exp2 = check_exp2_table(exp_table).astype(np.int64)
    ln = check_ln_table(ln_table).astype(np.int64)
    z = as_int64("logits", logits)
    if z.ndim == 0 or not 1 <= z.shape[-1] <= VOCAB_MAX:
        raise ArithmeticSpecError(
            f"logits have shape {z.shape}; the last axis (vocabulary) must have 1 to "
            f"{VOCAB_MAX} entries"
        )
    check_range("logits", z, INT32_MIN, INT32_MAX)
    return z, int(frac_bits), exp2, ln
