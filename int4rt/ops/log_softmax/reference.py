"""Integer log-softmax over the last axis, NumPy reference (docs/ARITHMETIC.md §10)."""

from __future__ import annotations

import numpy as np

from int4rt.ops.formats import INT32_MIN
from int4rt.ops.log_softmax.tables import CUTOFF_NATS, LOG2E_Q30, prepare_log_softmax


def exp_terms(a: np.ndarray, frac_bits: int, exp2: np.ndarray) -> np.ndarray:
    """``e ≈ 2^20 · exp(−a · 2^−F)`` for distances ``a ≥ 0`` from the row maximum (§10.2)."""
    inside = a <= CUTOFF_NATS << frac_bits
    b = (np.where(inside, a, 0) * LOG2E_Q30 + (1 << (frac_bits + 13))) >> (frac_bits + 14)
    n = b >> 16  # whole octaves
    f = b & 0xFFFF  # 16-bit fraction of an octave
    u = f >> 8  # table index
    w = f & 255  # interpolation weight
    r = exp2[u] - ((w * (exp2[u] - exp2[u + 1]) + 128) >> 8)
    half = np.where(n > 0, np.int64(1) << np.maximum(n - 1, 0), 0)
    return np.where(inside, (r + half) >> n, 0)


def bit_length(s: np.ndarray) -> np.ndarray:
    """Bits of the positive int32 values ``s``: the number of j in [0, 31) with ``s >> j > 0``."""
    return ((s[..., None] >> np.arange(31)) > 0).sum(axis=-1)


def log_sum(s: np.ndarray, frac_bits: int, ln: np.ndarray) -> np.ndarray:
    """``L ≈ 2^F · ln(S / 2^20)`` for sums ``2^20 ≤ S < 2^31`` (§10.4)."""
    k = bit_length(s) - 1
    frac = (s >> (k - 16)) - (1 << 16)  # 16-bit mantissa fraction of S / 2^k
    u = frac >> 8
    w = frac & 255
    lnm = ln[u] + ((w * (ln[u + 1] - ln[u]) + 128) >> 8)
    l24 = (k - 20) * ln[256] + lnm
    return (l24 + (1 << (23 - frac_bits))) >> (24 - frac_bits)


def log_softmax(
    logits: object, frac_bits: int, exp_table: object, ln_table: object
) -> np.ndarray:
    """Integer log-softmax of int32 ``logits`` [..., V] with scale 2^−F over the last axis.

    ARITHMETIC.md §10: ``lp_i = max(d_i − L, INT32_MIN)`` with ``d_i = z_i − max z`` and
    ``L ≈ 2^F · ln Σ exp(d_j · 2^−F)``; the result is int32 with the same scale 2^−F.
    ``exp_table`` and ``ln_table`` are the int32[257] tables of §10.1.
    """
    z, frac_bits, exp2, ln = prepare_log_softmax(logits, frac_bits, exp_table, ln_table)
    d = z - z.max(axis=-1, keepdims=True)
    s = exp_terms(-d, frac_bits, exp2).sum(axis=-1, keepdims=True)
    return np.maximum(d - log_sum(s, frac_bits, ln), INT32_MIN).astype(np.int32)
