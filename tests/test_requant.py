"""Requantization and multiplier quantization: reference, kernel and naive twin (§3, §4)."""

from __future__ import annotations

import math

import naive
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from int4rt import arith
from int4rt.errors import ArithmeticSpecError
from int4rt.ops.requantize import numba as requantize_numba

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
EDGE_ACC = [INT32_MIN, INT32_MIN + 1, -(2**30), -3, -2, -1, 0, 1, 2, 3, 2**30, INT32_MAX]
EDGE_MULT = [INT32_MIN, -1, 0, 1, 2**30, 2**30 + 1, INT32_MAX]
ROUNDINGS = ["double", "single"]

acc_st = st.one_of(st.sampled_from(EDGE_ACC), st.integers(INT32_MIN, INT32_MAX))
mult_st = st.one_of(st.sampled_from(EDGE_MULT), st.integers(INT32_MIN, INT32_MAX))
shift_st = st.integers(-31, 30)


def _both(acc, multiplier, shift, rounding):
    ref = arith.requantize(acc, multiplier, shift, rounding)
    fast = requantize_numba.requantize(acc, multiplier, shift, rounding)
    np.testing.assert_array_equal(ref, fast)
    return ref


@pytest.mark.thorough
@pytest.mark.parametrize("rounding", ROUNDINGS)
@settings(max_examples=400, deadline=None)
@given(acc=acc_st, multiplier=mult_st, shift=shift_st)
def test_requantize_matches_naive(rounding, acc, multiplier, shift):
    got = _both([acc], [multiplier], [shift], rounding)
    assert int(got[0]) == naive.requantize(acc, multiplier, shift, rounding)


@pytest.mark.thorough
@pytest.mark.parametrize("rounding", ROUNDINGS)
@settings(max_examples=400, deadline=None)
@given(shift=st.integers(-30, 0), odd=st.integers(-(2**20), 2**20), data=st.data())
def test_exact_ties(rounding, shift, odd, data):
    """Effective scale 2^(s−1) with acc = odd·2^(−s): every case is an exact tie."""
    acc = (2 * odd + 1) << (-shift)
    if not INT32_MIN <= acc <= INT32_MAX:
        acc = data.draw(st.sampled_from([1, -1, 3, -3]))
    got = _both([acc], [2**30], [shift], rounding)
    assert int(got[0]) == naive.requantize(acc, 2**30, shift, rounding)


@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_every_shift_in_range(rounding):
    rng = np.random.default_rng(7)
    shifts = np.arange(-31, 31)
    acc = rng.integers(INT32_MIN, INT32_MAX, size=(50, shifts.size), endpoint=True)
    acc[0] = INT32_MIN
    acc[1] = INT32_MAX
    mult = rng.integers(2**30, 2**31, size=shifts.size)
    got = _both(acc, mult, shifts, rounding)
    for i in range(acc.shape[0]):
        for j in range(shifts.size):
            want = naive.requantize(int(acc[i, j]), int(mult[j]), int(shifts[j]), rounding)
            assert got[i, j] == want, (acc[i, j], mult[j], shifts[j])


def test_hand_computed_values():
    """Values worked by hand from §4 (not from the code)."""
    rdbpot = arith.rounding_divide_by_pot
    assert rdbpot(np.array([-5, -3, 5, 3, -4]), np.array([1, 1, 1, 1, 1])).tolist() == [
        -3, -2, 3, 2, -2,
    ]
    # SRDHM rounds half toward +inf: -1.5 -> -1, 1.5 -> 2; RDBPOT then rounds half away.
    assert _both([-3, 3], 2**30, 0, "double").tolist() == [-1, 2]
    assert _both([-3, 3], 2**30, -1, "double").tolist() == [-1, 1]  # -0.75, 0.75
    assert _both([-6, 6], 2**30, -1, "double").tolist() == [-2, 2]  # -1.5 -> -2 (away)
    assert _both([-6, 6], 2**30, -1, "single").tolist() == [-1, 2]  # -1.5 -> -1 (up)
    assert _both(INT32_MIN, INT32_MIN, 0, "double").tolist() == INT32_MAX
    assert _both(INT32_MIN, INT32_MIN, 0, "single").tolist() == 2**31
    # shift > 0 wraps the left-shifted accumulator to int32 (§4.3).
    assert _both(2**30, 2**30, 1, "double").tolist() == -(2**30)


@pytest.mark.parametrize(
    ("real", "expected"),
    [
        (0.5, (2**30, 0)),
        (1.0, (2**30, 1)),
        (2.0**-15, (2**30, -14)),
        (0.75, (3 * 2**29, 0)),
        (2.0**-31, (2**30, -30)),
        (2.0**-32, (2**30, -31)),
        (2.0**-33, (0, 0)),
        (1 - 2.0**-40, (2**30, 1)),  # rounds up to 2^31 and carries into the shift
    ],
)
def test_quantize_multiplier_values(real, expected):
    assert arith.quantize_multiplier(real) == expected


@pytest.mark.thorough
@settings(max_examples=500, deadline=None)
@given(real=st.floats(min_value=2.0**-31, max_value=2.0**29, allow_nan=False))
def test_quantize_multiplier_is_nearest(real):
    multiplier, shift = arith.quantize_multiplier(real)
    assert 2**30 <= multiplier < 2**31
    assert -31 <= shift <= 30
    # multiplier is the nearest integer to real·2^(31−shift) (ties away), so within 1/2.
    exact = real * 2.0 ** (31 - shift)
    assert abs(exact - multiplier) <= 0.5 or (multiplier == 2**30 and math.isclose(exact, 2**31))


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), -float("inf"), "x"])
def test_quantize_multiplier_rejects(bad):
    with pytest.raises(ValueError, match="real multiplier"):
        arith.quantize_multiplier(bad)


def test_quantize_multiplier_rejects_too_large():
    with pytest.raises(ValueError, match="shift 31"):
        arith.quantize_multiplier(2.0**30)


@pytest.mark.parametrize("impl", [arith.requantize, requantize_numba.requantize])
def test_requantize_rejects_bad_input(impl):
    with pytest.raises(ArithmeticSpecError, match="rounding mode 'nearest'"):
        impl([1], 2**30, 0, "nearest")
    with pytest.raises(ValueError, match="do not broadcast"):
        impl([1, 2, 3], [2**30, 2**30], 0)
    with pytest.raises(ValueError, match=r"shift holds 31, outside \[-31, 30\]"):
        impl([1], 2**30, 31)
    with pytest.raises(ValueError, match="acc holds 2147483648"):
        impl([2**31], 2**30, 0)
    with pytest.raises(ValueError, match="acc must hold integers"):
        impl([1.5], 2**30, 0)
