"""The AVX2 pair dot product equals the portable one whenever it claims to (ARITHMETIC.md §7.3)."""

from __future__ import annotations

import numpy as np
import pytest

from int4rt.ops.gemv.simd import HAS_AVX2, dot_u8s8, dot_u8s8_pairs, pairs_exact


@pytest.mark.parametrize("length", [0, 1, 31, 32, 33, 64, 240, 641, 1280])
@pytest.mark.parametrize(("max_abs_b", "max_a"), [(8, 15), (8, 255), (128, 15), (128, 127)])
def test_pairs_equal_portable_at_the_extremes(length, max_abs_b, max_a):
    assert pairs_exact(max_abs_b, max_a)
    rng = np.random.default_rng(length + max_a)
    for a_fill, b_fill in ((max_a, -max_abs_b), (max_a, max_abs_b - 1), (None, None)):
        if a_fill is None:
            a = rng.integers(0, max_a, size=length, endpoint=True).astype(np.uint8)
            b = rng.integers(-max_abs_b, max_abs_b, size=length).astype(np.int8)
        else:
            a = np.full(length, a_fill, np.uint8)
            b = np.full(length, b_fill, np.int8)
        want = int(np.dot(a.astype(np.int64), b.astype(np.int64)))
        assert dot_u8s8(a, b) == want
        assert dot_u8s8_pairs(a, b) == want


def test_pairs_bound():
    assert pairs_exact(128, 127) and not pairs_exact(128, 128)
    assert pairs_exact(8, 255) and not pairs_exact(128, 255)


@pytest.mark.skipif(not HAS_AVX2, reason="the saturating path exists only with AVX2")
def test_pairs_saturate_outside_the_bound():
    """8-bit weights with 8-bit codes really saturate: the bound is needed."""
    a = np.full(64, 255, np.uint8)
    b = np.full(64, 127, np.int8)
    assert dot_u8s8_pairs(a, b) != dot_u8s8(a, b) == 64 * 255 * 127
