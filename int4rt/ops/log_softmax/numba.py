"""Numba twin of the integer log-softmax (docs/ARITHMETIC.md §10)."""

from __future__ import annotations

import numba as nb
import numpy as np

from int4rt.ops.log_softmax.tables import CUTOFF_NATS, LOG2E_Q30, prepare_log_softmax

INT32_MIN = -(1 << 31)


@nb.njit(cache=True, inline="always")
def exp_term(a: int, frac_bits: int, exp2: np.ndarray) -> int:
    """``e ≈ 2^20 · exp(−a · 2^−F)`` for one distance ``a ≥ 0`` from the maximum (§10.2)."""
    if a > np.int64(CUTOFF_NATS) << frac_bits:
        return np.int64(0)
    b = (a * LOG2E_Q30 + (np.int64(1) << (frac_bits + 13))) >> (frac_bits + 14)
    n = b >> 16
    f = b & 0xFFFF
    u = f >> 8
    w = f & 255
    r = exp2[u] - ((w * (exp2[u] - exp2[u + 1]) + 128) >> 8)
    if n > 0:
        return (r + (np.int64(1) << (n - 1))) >> n
    return r


@nb.njit(cache=True, inline="always")
def log_sum(s: int, frac_bits: int, ln: np.ndarray) -> int:
    """``L ≈ 2^F · ln(S / 2^20)`` for one sum ``2^20 ≤ S < 2^31`` (§10.4)."""
    k = 20
    while s >> (k + 1) > 0:
        k += 1
    frac = (s >> (k - 16)) - (1 << 16)
    u = frac >> 8
    w = frac & 255
    lnm = ln[u] + ((w * (ln[u + 1] - ln[u]) + 128) >> 8)
    l24 = (k - 20) * ln[256] + lnm
    return (l24 + (np.int64(1) << (23 - frac_bits))) >> (24 - frac_bits)


@nb.njit(cache=True)
def _log_softmax_rows(z, frac_bits, exp2, ln, out):
    for row in range(z.shape[0]):
        zr = z[row]
        m = zr[0]
        for i in range(zr.size):
            m = max(m, zr[i])
        s = np.int64(0)
        for i in range(zr.size):
            s += exp_term(m - zr[i], frac_bits, exp2)
        big_l = log_sum(s, frac_bits, ln)
        for i in range(zr.size):
            out[row, i] = max(zr[i] - m - big_l, INT32_MIN)


def log_softmax(
    logits: object, frac_bits: int, exp_table: object, ln_table: object
) -> np.ndarray:
    """Numba twin of :func:`int4rt.ops.log_softmax.reference.log_softmax` (ARITHMETIC.md §10)."""
    z, frac_bits, exp2, ln = prepare_log_softmax(logits, frac_bits, exp_table, ln_table)
    rows = np.ascontiguousarray(z.reshape(-1, z.shape[-1]))
    out = np.empty(rows.shape, dtype=np.int32)
    _log_softmax_rows(rows, frac_bits, exp2, ln, out)
    return out.reshape(z.shape)


def log_softmax_trusted(logits: np.ndarray, frac_bits: int, exp2: np.ndarray,
                        ln: np.ndarray) -> np.ndarray:
    """:func:`log_softmax` of int32 logits [N, V] with ``frac_bits`` and int64 tables that
    ``prepare_log_softmax`` accepted once: no checks on the search's hot path.
    """
    out = np.empty(logits.shape, dtype=np.int32)
    _log_softmax_rows(logits, frac_bits, exp2, ln, out)
    return out
