"""INT4 packing (§5) and saturation (§2)."""

from __future__ import annotations

import naive
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from int4rt import arith


def test_worked_example():
    """§5's example: codes [1, -2, 7, -8, 3] pack to 0xE1, 0x87, 0x03."""
    packed = arith.pack_int4(np.array([1, -2, 7, -8, 3], dtype=np.int8))
    assert packed.tolist() == [0xE1, 0x87, 0x03]
    assert arith.unpack_int4(packed, 5).tolist() == [1, -2, 7, -8, 3]


@pytest.mark.thorough
@settings(max_examples=300, deadline=None)
@given(codes=st.lists(st.integers(-8, 7), min_size=0, max_size=65))
def test_pack_matches_naive_and_roundtrips(codes):
    packed = arith.pack_int4(np.array(codes, dtype=np.int64))
    assert packed.dtype == np.uint8
    assert bytes(packed) == naive.pack_int4(codes)
    assert arith.unpack_int4(packed, len(codes)).tolist() == codes


def test_pack_flattens_row_major():
    codes = np.arange(-8, 7).reshape(3, 5)
    assert arith.unpack_int4(arith.pack_int4(codes), 15).tolist() == codes.ravel().tolist()


def test_every_byte_unpacks_to_its_nibbles():
    packed = np.arange(256, dtype=np.uint8)
    codes = arith.unpack_int4(packed, 512).reshape(256, 2).astype(int)
    lo = [(b & 0xF) - 16 if b & 0x8 else b & 0xF for b in range(256)]
    hi = [(b >> 4) - 16 if b & 0x80 else b >> 4 for b in range(256)]
    assert codes[:, 0].tolist() == lo
    assert codes[:, 1].tolist() == hi


@pytest.mark.parametrize("bad", [[8], [-9], [0, 1, 100]])
def test_pack_rejects_out_of_range(bad):
    with pytest.raises(ValueError, match=r"int4 codes holds -?\d+, outside \[-8, 7\]"):
        arith.pack_int4(bad)


def test_unpack_rejects_bad_input():
    with pytest.raises(ValueError, match="need 2 bytes, got 1"):
        arith.unpack_int4(np.zeros(1, np.uint8), 3)
    with pytest.raises(ValueError, match="need 1 bytes, got 3"):
        arith.unpack_int4(np.zeros(3, np.uint8), 2)
    with pytest.raises(ValueError, match="must be uint8"):
        arith.unpack_int4(np.zeros(2, np.int8), 3)
    with pytest.raises(ValueError, match="padding nibble"):
        arith.unpack_int4(np.array([0x10], np.uint8), 1)
    with pytest.raises(ValueError, match="non-negative integer"):
        arith.unpack_int4(np.zeros(2, np.uint8), -1)


@pytest.mark.parametrize(
    ("fmt", "lo", "hi"),
    [("int4", -8, 7), ("uint4", 0, 15), ("int8", -128, 127), ("uint8", 0, 255),
     ("int16", -32768, 32767), ("int32", -(2**31), 2**31 - 1)],
)
def test_saturate(fmt, lo, hi):
    x = np.array([-(2**40), lo - 1, lo, lo + 1, 0, hi - 1, hi, hi + 1, 2**40], dtype=np.int64)
    want = [lo, lo, lo, lo + 1, min(max(0, lo), hi), hi - 1, hi, hi, hi]
    assert arith.saturate(x, fmt).tolist() == want
    assert arith.code_range(fmt) == (lo, hi)


def test_saturate_rejects():
    with pytest.raises(ValueError, match="unknown integer format 'int5'"):
        arith.saturate([1], "int5")
    with pytest.raises(ValueError, match="must hold integers"):
        arith.saturate([1.0], "int8")
