"""The lane-row GEMV (ARITHMETIC.md §7.6) equals an int64 matrix product, and so does its
NumPy twin.

The independent check is NumPy's int64 ``@`` on the unpadded codes; hypothesis draws the edge
cases (``test_packed_gemv.problems``): every weight at −8 or 7, every code at its maximum (15 or
127, the largest the kernel takes) or zero, widths that are not a multiple of 8 or 64, row
counts that are not a multiple of 16 or 64, and 1–9 activation rows (so the 4-row and 1-row
tiles both run).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings

from int4rt.layers import ActQuant, QLinear
from int4rt.ops.gemv import reference
from int4rt.ops.gemv.dispatch import ACTIVE_PATH, layouts_on_path, supported_paths
from int4rt.ops.gemv.lane_rows import (
    LANE_PATHS,
    MAX_CODE,
    NO_LANES,
    lane_rows_layout,
    lane_rows_sums,
    pack_lane_rows,
)
from int4rt.ops.gemv.numba import linear_rows_lanes
from int4rt.ops.gemv.packed_gemv import packed_width
from int4rt.ops.gemv.weight_layout import stream_layout
from int4rt.ops.requantize.scalar import rounding_code
from tests.test_dot_tiles import layers
from tests.test_packed_gemv import problems

needs_vnni512 = pytest.mark.skipif("vnni512" not in supported_paths(),
                                   reason="needs an AVX-512 VNNI host")


def _padded(problem: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    u, w, offsets, _ = problem
    padded = np.zeros((u.shape[0], packed_width(u.shape[1])), np.uint8)
    padded[:, :u.shape[1]] = u
    return padded, w, offsets


LANE_PROBLEMS = problems(code_maxes=(15, MAX_CODE), max_frames=9, max_rows=70)
"""4-bit weights, codes up to 15 or 127 (the largest the kernel takes), 1–9 activation rows
(the 4-row and the 1-row tiles) and 1–70 weight rows (whole and partial groups of 16 and 64)."""


def _want(u: np.ndarray, w: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    return u[:, :w.shape[1]].astype(np.int64) @ w.astype(np.int64).T - offsets


def test_layout_puts_one_row_in_each_lane():
    w = np.zeros((17, 70), np.int8)
    w[0, 0], w[0, 4], w[1, 3], w[15, 7], w[16, 69], w[2, 8] = -8, 7, 5, -1, 3, 2
    lanes = pack_lane_rows(w)
    assert lanes.shape == (2, 128 // 8 * 64) and lanes.dtype == np.uint8
    assert lanes[0, 0] == 0 | (15 << 4)  # row 0, codes 0 (−8 + 8, low) and 4 (7 + 8, high)
    assert lanes[0, 4 * 1 + 3] == 13 | (8 << 4)  # row 1, codes 3 and 7
    assert lanes[0, 4 * 15 + 3] == 8 | (7 << 4)  # row 15, codes 3 and 7
    assert lanes[0, 64 + 4 * 2] == 10 | (8 << 4)  # block 1: row 2, codes 8 and 12
    assert lanes[1, 8 * 64 + 1] == 8 | (11 << 4)  # group 1 (row 16), block 8: codes 65, 69
    assert lanes[1, 4] == 8 | (8 << 4)  # row 17 is padding: q = 8 in both nibbles


@settings(max_examples=80, deadline=None)
@given(problem=LANE_PROBLEMS)
def test_twin_equals_int64_product(problem):
    u, w, offsets = _padded(problem)
    np.testing.assert_array_equal(lane_rows_sums(u, pack_lane_rows(w), w.shape[0]) - offsets,
                                  _want(u, w, offsets))


@pytest.mark.parametrize("path", sorted(LANE_PATHS))
@settings(max_examples=80, deadline=None)
@given(problem=LANE_PROBLEMS)
def test_kernel_equals_int64_product(path, problem):
    u, w, offsets = _padded(problem)
    lanes = pack_lane_rows(w)
    out = np.full((u.shape[0], 16 * lanes.shape[0]), 12345, dtype=np.int32)
    LANE_PATHS[path](u, lanes, offsets, out)
    np.testing.assert_array_equal(out[:, :w.shape[0]], _want(u, w, offsets))


def _layer(weight: np.ndarray, bits: int) -> QLinear:
    n = weight.shape[0]
    return QLinear(weight.astype(np.int8), bits, np.zeros(n, np.int32),
                   np.full(n, 2**30, np.int32), np.zeros(n, np.int32))


def test_only_4_bit_weights_and_codes_up_to_127_on_vnni512_get_lanes():
    rng = np.random.default_rng(2)
    four = _layer(rng.integers(-8, 8, size=(8, 40)), 4)
    eight = _layer(rng.integers(-128, 128, size=(8, 40)), 8)
    codes4 = ActQuant(bits=4, signed=False, scale=0.1, zero_point=3)
    codes8 = ActQuant(bits=8, signed=False, scale=0.1, zero_point=3)
    assert lane_rows_layout(eight, codes4) is NO_LANES
    assert lane_rows_layout(four, codes8) is NO_LANES  # codes up to 255 > 127
    lanes = lane_rows_layout(four, codes4)
    if ACTIVE_PATH == "vnni512":
        assert lanes.shape == (1, 64 // 8 * 64) and lane_rows_layout(four, codes4) is lanes
    else:  # INT4RT_KERNELS picked another path, or the host has no AVX-512 VNNI
        assert lanes is NO_LANES
    if "vnni" in supported_paths():
        with layouts_on_path("vnni"):
            assert lane_rows_layout(_layer(four.weight, 4), codes4) is NO_LANES


@settings(max_examples=60, deadline=None)
@given(case=layers(weight_bits=4))
def test_linear_on_lanes_equals_reference_linear(case):
    """§7.1 end to end on the lane-row kernel (the encoder's input projections): folded zero
    point, padding, requantization and clamp give the reference's integers. A host without
    AVX-512 VNNI runs the kernel's plain-loop tiles here (it never builds a lane-row form)."""
    layer, fmt, x, rounding, out_dtype = case
    assume(fmt.qmax - fmt.qmin <= MAX_CODE)
    want = reference.linear(x, layer, fmt, rounding, out_dtype)
    lanes = pack_lane_rows(layer.weight)
    info = np.iinfo(out_dtype)
    out = np.full((x.shape[0], layer.n_out), 12345, dtype=out_dtype)
    linear_rows_lanes(x, stream_layout(layer, fmt), lanes, rounding_code(rounding),
                      int(info.min), int(info.max), out)
    np.testing.assert_array_equal(out, want)
