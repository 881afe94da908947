"""Integer log-softmax (§10): tables, reference vs kernel vs a naive twin, accuracy vs float."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import int4rt.ops.log_softmax.numba as fast
import int4rt.ops.log_softmax.reference as ref
from int4rt.ops.log_softmax.tables import (
    LOG2E_Q30,
    check_exp2_table,
    check_ln_table,
    exp2_table,
    ln_table,
)

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
EXP2 = exp2_table()
LN = ln_table()
IMPLS = [ref.log_softmax, fast.log_softmax]


def naive_log_softmax(row: list[int], f: int, exp2: list[int], ln: list[int]) -> list[int]:
    """§10 for one row, step by step on Python integers."""
    m = max(row)
    e = []
    for z in row:
        a = m - z
        if a > 24 * 2**f:
            e.append(0)
            continue
        b = (a * 1549082005 + 2 ** (f + 13)) // 2 ** (f + 14)
        n, frac = divmod(b, 2**16)
        u, w = divmod(frac, 256)
        r = exp2[u] - (w * (exp2[u] - exp2[u + 1]) + 128) // 256
        e.append((r + 2 ** (n - 1)) // 2**n if n > 0 else r)
    s = sum(e)
    k = s.bit_length() - 1
    frac = s // 2 ** (k - 16) - 2**16
    u, w = divmod(frac, 256)
    lnm = ln[u] + (w * (ln[u + 1] - ln[u]) + 128) // 256
    big_l = ((k - 20) * ln[256] + lnm + 2 ** (23 - f)) // 2 ** (24 - f)
    return [max(z - m - big_l, INT32_MIN) for z in row]


def float_log_softmax(z: np.ndarray, f: int) -> np.ndarray:
    x = z.astype(np.float64) / 2.0**f
    d = x - x.max(axis=-1, keepdims=True)
    return d - np.log(np.exp(d).sum(axis=-1, keepdims=True))


def test_tables_and_constant():
    """§10.1: every entry within 1/2 of the exact value (ties are ≥ 0.0012 away); end points."""
    assert LOG2E_Q30 == 1549082005 == round(2**30 / math.log(2))
    assert EXP2.dtype == LN.dtype == np.int32 and EXP2.shape == LN.shape == (257,)
    k = np.arange(257)
    assert np.abs(EXP2 - 2.0**20 * 2.0 ** (-k / 256)).max() <= 0.5
    assert np.abs(LN - 2.0**24 * np.log1p(k / 256)).max() <= 0.5
    assert EXP2[[0, 1, 255, 256]].tolist() == [1048576, 1045741, 525709, 524288]
    assert LN[[0, 1, 255, 256]].tolist() == [0, 65408, 11596280, 11629080]
    check_exp2_table(EXP2)
    check_ln_table(LN)


@pytest.mark.parametrize("impl", IMPLS)
def test_worked_example(impl):
    """§10.6: V = 3, F = 8."""
    assert impl(np.array([110, -89, -64]), 8, EXP2, LN).tolist() == [-173, -372, -347]
    assert impl(np.array([1000, 744, -2000]), 8, EXP2, LN).tolist() == [-80, -336, -3080]


def _distances(rng: np.random.Generator, f: int, size: tuple[int, ...]) -> np.ndarray:
    """Distances below the maximum at the edges of §10.2: the cutoff and the last e_i = 1."""
    cutoff = 24 << f
    last_one = round(21 * math.log(2) * 2**f)
    edges = [0, 1, 2, cutoff - 1, cutoff, cutoff + 1, *range(last_one - 3, last_one + 4)]
    return rng.choice(edges, size=size)


@st.composite
def cases(draw):
    """Rows of logits: full int32 range, near the maximum, equal, one huge gap, ties, edges."""
    f = draw(st.integers(4, 16))
    v = draw(st.one_of(st.sampled_from([1, 2, 3, 2047]), st.integers(1, 300)))
    shape = (draw(st.integers(1, 3)), v)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["wide", "near", "equal", "gap", "extreme", "ties", "edges"]))
    top = int(rng.integers(INT32_MIN + (30 << f), INT32_MAX, endpoint=True))
    if kind == "wide":
        z = rng.integers(INT32_MIN, INT32_MAX, size=shape, endpoint=True)
    elif kind == "near":
        z = top - rng.integers(0, 30 << f, size=shape, endpoint=True)
    elif kind == "equal":
        z = np.full(shape, top)
    elif kind == "gap":
        z = np.full(shape, INT32_MIN)
        z[:, rng.integers(v)] = INT32_MAX
    elif kind == "extreme":
        z = rng.choice([INT32_MIN, INT32_MAX], size=shape)
    elif kind == "ties":
        z = rng.choice(top - rng.integers(0, 5 << f, size=3), size=shape)
        z[:, 0] = top
    else:
        z = top - _distances(rng, f, shape)
    return z.astype(draw(st.sampled_from([np.int32, np.int64]))), f


@pytest.mark.thorough
@settings(max_examples=400, deadline=None)
@given(case=cases())
def test_implementations_agree(case):
    z, f = case
    want = ref.log_softmax(z, f, EXP2, LN)
    assert want.dtype == np.int32 and want.shape == z.shape
    np.testing.assert_array_equal(fast.log_softmax(z, f, EXP2, LN), want)
    for row, got in zip(z.tolist(), want.tolist(), strict=True):
        assert got == naive_log_softmax(row, f, EXP2.tolist(), LN.tolist())


@pytest.mark.parametrize("impl", IMPLS)
def test_shapes_and_special_rows(impl):
    f = 8
    assert impl(np.array([5], np.int32), f, EXP2, LN).tolist() == [0]
    # Two equal logits: L = round(2^8 · ln 2) = 177; INT32_MIN stays INT32_MIN.
    assert impl(np.array([7, 7, INT32_MIN]), f, EXP2, LN).tolist() == [-177, -177, INT32_MIN]
    # The largest distance, 2^32 - 1, saturates at INT32_MIN.
    assert impl(np.array([INT32_MAX, INT32_MIN]), f, EXP2, LN).tolist() == [0, INT32_MIN]
    z = np.arange(2 * 3 * 5).reshape(2, 3, 5) * 37
    out = impl(z, f, EXP2, LN)
    assert out.shape == (2, 3, 5)
    np.testing.assert_array_equal(out[1, 2], impl(z[1, 2], f, EXP2, LN))
    assert impl(np.zeros((0, 4), np.int32), f, EXP2, LN).shape == (0, 4)


def test_cutoff_changes_nothing():
    """Past the cutoff of §10.2 the formula already gives 0: n ≥ 34, and e_i = 0 once n ≥ 22."""
    for f in range(4, 17):
        a = (24 << f) + 1  # b grows with a: this is the smallest distance the cutoff removes
        assert ((a * LOG2E_Q30 + 2 ** (f + 13)) >> (f + 14)) >> 16 >= 34
    assert all((2**20 + 2 ** (n - 1)) >> n == 0 for n in range(22, 35))  # r ≤ 2^20


def error_bound(f: int, v: int, total: np.ndarray) -> np.ndarray:
    """Worst |lp − float lp| in nats (§10.7): output rounding, the 2^−20 rounding of the
    V − 1 smaller terms relative to the sum ``total`` = Σ exp(d), 3e-5 for tables and the
    16-bit mantissa of S."""
    return 2.0 ** -(f + 1) + 3e-5 + (v - 1) * 2.0**-21 / total


@pytest.mark.parametrize("f", range(4, 17))
def test_accuracy_against_float(f):
    """Random logits (spread 0.1 to 30 nats) and the adversarial rows of the analysis."""
    rng = np.random.default_rng(f)
    worst_typical = 0.0
    for v in (1, 2, 3, 10, 100, 1000, 2047):
        for sigma in (0.1, 1.0, 3.0, 10.0, 30.0):
            z = np.round(rng.normal(0.0, sigma, size=(40, v)) * 2**f).astype(np.int64)
            lp = fast.log_softmax(z, f, EXP2, LN)
            want = float_log_softmax(z, f)
            err = np.abs(lp / 2.0**f - want).max(axis=-1)
            total = np.exp(want - want.max(axis=-1, keepdims=True)).sum(axis=-1)
            assert np.all(err <= error_bound(f, v, total))
            worst_typical = max(worst_typical, float(err.max()))
            mass = np.exp(lp / 2.0**f).sum(axis=-1)
            assert np.all(np.abs(mass - 1) <= np.expm1(2.0 ** -(f + 1) + 1e-4))
    # Measured over these rows: 2^-(F+1) + at most 4.6e-5 (F = 14); 9.4e-5 over the 195,000
    # random rows of §10.7, all from V = 2047 (V <= 100: 1.7e-5).
    assert worst_typical <= 2.0 ** -(f + 1) + 1e-4
    # Adversarial: 2046 terms at 14.556 nats below the maximum all round from ~0.5 up to 1.
    z = np.full(2047, -round(21 * math.log(2) * 2**f) - 1, dtype=np.int64)
    z[0] = 0
    want = float_log_softmax(z, f)
    err = np.abs(fast.log_softmax(z, f, EXP2, LN) / 2.0**f - want).max()
    assert err <= error_bound(f, 2047, np.exp(want - want.max()).sum())


def _bad_tables():
    exp2_up = EXP2.copy()
    exp2_up[5] = exp2_up[4]
    ln_down = LN.copy()
    ln_down[5] = ln_down[4] - 1
    ln_big = LN.copy()
    ln_big[256] = 11629081
    return [
        ({"exp_table": EXP2[:256]}, r"EXP2 table must have shape \(257,\)"),
        ({"exp_table": EXP2.astype(np.int64)}, "EXP2 table must be int32"),
        ({"exp_table": exp2_up}, "strictly decreasing"),
        ({"exp_table": EXP2 - 1}, "from 2\\^20 to 2\\^19"),
        ({"ln_table": LN.astype(np.uint32)}, "LN table must be int32"),
        ({"ln_table": LN + 1}, "LN table entry 0 must be 0"),
        ({"ln_table": ln_down}, "non-decreasing"),
        ({"ln_table": ln_big}, "entry 256 must be <= 11629080"),
    ]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"logits": np.zeros(3)}, "logits must hold integers"),
        ({"logits": np.zeros((2, 0), np.int32)}, r"shape \(2, 0\); the last axis"),
        ({"logits": np.zeros(2048, np.int32)}, r"shape \(2048,\)"),
        ({"logits": np.int32(3)}, r"shape \(\)"),
        ({"logits": np.array([0, 2**31])}, "logits holds 2147483648"),
        ({"logits": np.array([INT32_MIN - 1, 0])}, "logits holds -2147483649"),
        ({"frac_bits": 3}, r"frac_bits must be in \[4, 16\], got 3"),
        ({"frac_bits": 17}, "got 17"),
        ({"frac_bits": 8.0}, "frac_bits must be an integer"),
        ({"frac_bits": True}, "frac_bits must be an integer"),
        *_bad_tables(),
    ],
)
def test_rejects_bad_input(impl, change, message):
    args = {"logits": np.zeros(4, np.int32), "frac_bits": 8, "exp_table": EXP2,
            "ln_table": LN} | change
    with pytest.raises(ValueError, match=message):
        impl(**args)
