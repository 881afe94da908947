"""The GEMV over offset nibbles equals an int64 matrix product (ARITHMETIC.md §7.5).

The independent check is NumPy's int64 ``@`` on the unpadded codes; edge cases (every weight
at −8 or 7, every code at its maximum, the int16 flush bound met exactly, widths that are not
a multiple of 64, row counts that are not a multiple of 4 and 1–3 activation rows, so both the
2 × R and 1 × R tiles run) come from hypothesis and from hand-picked values.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from int4rt.layers import ActQuant, QLinear
from int4rt.ops.gemv import reference
from int4rt.ops.gemv.dispatch import ACTIVE_PATH, PATH_FLUSH, layouts_on_path, supported_paths
from int4rt.ops.gemv.numba import linear_rows_packed
from int4rt.ops.gemv.packed_gemv import (
    NO_PACKED,
    PACKED_PATHS,
    gemv_packed,
    pack_offset_nibbles,
    packed_flush_period,
    packed_layout,
    packed_width,
)
from int4rt.ops.gemv.weight_layout import stream_layout
from int4rt.ops.requantize.scalar import rounding_code
from tests.test_dot_tiles import layers

needs_avx2 = pytest.mark.skipif("avx2" not in supported_paths(), reason="needs an AVX2 host")


def _run(u: np.ndarray, w: np.ndarray, offsets: np.ndarray, flush: int,
         kernel=gemv_packed) -> np.ndarray:
    padded = np.zeros((u.shape[0], packed_width(u.shape[1])), np.uint8)
    padded[:, :u.shape[1]] = u
    out = np.full((u.shape[0], w.shape[0]), 12345, dtype=np.int32)
    kernel(padded, pack_offset_nibbles(w), offsets, flush, out)
    return out


def _want(u: np.ndarray, w: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    return u.astype(np.int64) @ w.astype(np.int64).T - offsets


def test_layout_holds_offset_nibbles_in_64_code_chunks():
    w = np.zeros((1, 70), np.int8)
    w[0, 0], w[0, 32], w[0, 1], w[0, 63], w[0, 64], w[0, 69] = -8, 7, 3, -1, 5, -2
    packed = pack_offset_nibbles(w)
    assert packed.shape == (1, 64) and packed.dtype == np.uint8
    assert packed[0, 0] == 0 | (15 << 4)  # codes 0 and 32: −8 + 8 low, 7 + 8 high
    assert packed[0, 1] == 11 | (8 << 4)  # codes 1 and 33
    assert packed[0, 31] == 8 | (7 << 4)  # codes 31 and 63
    assert packed[0, 32] == 13 | (8 << 4)  # codes 64 and 96 (padding holds 0 + 8)
    assert packed[0, 37] == 6 | (8 << 4)  # code 69
    assert packed_width(1) == 64 and packed_width(64) == 64 and packed_width(65) == 128


@st.composite
def problems(draw, code_maxes: tuple[int, ...] = (15, 255), max_frames: int = 3,
             max_rows: int = 11):
    """4-bit weights, unsigned codes up to one of ``code_maxes`` (4- or 8-bit codes), any
    shape, random or extreme fills."""
    u_max = draw(st.sampled_from(code_maxes))
    frames = draw(st.integers(1, max_frames))
    rows = draw(st.integers(1, max_rows))
    width = draw(st.integers(1, 300))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    w = rng.integers(-8, 7, size=(rows, width), endpoint=True)
    u = rng.integers(0, u_max, size=(frames, width), endpoint=True)
    fill = draw(st.sampled_from(["random", "min", "max", "zero codes"]))
    if fill in ("min", "max"):
        w[:] = -8 if fill == "min" else 7
        u[:] = u_max
    elif fill == "zero codes":
        u[:] = 0
    offsets = rng.integers(-(2**20), 2**20, size=rows).astype(np.int32)
    return u.astype(np.uint8), w.astype(np.int8), offsets, packed_flush_period(u_max)


@pytest.mark.parametrize("path", sorted(PACKED_PATHS))
@settings(max_examples=80, deadline=None)
@given(problem=problems())
def test_packed_paths_equal_int64_product(path, problem):
    u, w, offsets, flush = problem
    np.testing.assert_array_equal(_run(u, w, offsets, flush, PACKED_PATHS[path]),
                                  _want(u, w, offsets))


@pytest.mark.parametrize("path", sorted(PACKED_PATHS))
@pytest.mark.parametrize("flush", [1, 2, 35, 36])
def test_any_flush_within_the_bound_is_exact(path, flush):
    """Every product at 15 · 15: a lane gains 900 per chunk and reaches 900·flush ≤ 32767
    (the VNNI path has no int16 lanes and ignores ``flush``)."""
    u = np.full((1, 64 * 40 - 3), 15, np.uint8)
    w = np.full((6, u.shape[1]), 7, np.int8)
    offsets = np.array([0, 1, -1, 2**20, -(2**20), 7], np.int32)
    np.testing.assert_array_equal(_run(u, w, offsets, flush, PACKED_PATHS[path]),
                                  _want(u, w, offsets))


@needs_avx2
def test_lanes_wrap_past_the_bound():
    """One chunk more than the bound per widening really breaks int16 lanes: it is needed."""
    u = np.full((1, 64 * 37), 15, np.uint8)
    w = np.full((1, 64 * 37), 7, np.int8)
    offsets = np.zeros(1, np.int32)
    assert packed_flush_period(15) == 36 and 36 * 900 <= 32767 < 37 * 900
    assert _run(u, w, offsets, 37)[0, 0] != _want(u, w, offsets)[0, 0]
    assert _run(u, w, offsets, 36)[0, 0] == 7 * 15 * 64 * 37


def test_flush_period_is_the_int16_bound():
    assert packed_flush_period(15) == 36
    assert packed_flush_period(255) == 2 and 2 * 4 * 15 * 255 <= 32767 < 3 * 4 * 15 * 255
    assert packed_flush_period(0) > 10**6


def _layer(weight: np.ndarray, bits: int) -> QLinear:
    n = weight.shape[0]
    return QLinear(weight.astype(np.int8), bits, np.zeros(n, np.int32),
                   np.full(n, 2**30, np.int32), np.zeros(n, np.int32))


def test_only_4_bit_codes_get_a_packed_form():
    fmt = ActQuant(bits=4, signed=False, scale=0.1, zero_point=3)
    rng = np.random.default_rng(1)
    four = _layer(rng.integers(-8, 8, size=(8, 40)), 4)
    eight = _layer(rng.integers(-128, 128, size=(8, 40)), 8)
    small_eight = _layer(np.full((8, 40), 8), 8)  # |w| ≤ 8 but 8 has no offset nibble
    assert packed_layout(eight, fmt) is NO_PACKED
    assert packed_layout(small_eight, fmt) is NO_PACKED
    layout = packed_layout(four, fmt)
    if ACTIVE_PATH != "portable":  # INT4RT_KERNELS=portable keeps the §7.4 portable tiles only
        assert layout.flush == PATH_FLUSH.get(ACTIVE_PATH, 36)
        assert layout.weight.shape == (8, 32)
        assert packed_layout(four, fmt) is layout
    else:
        assert layout is NO_PACKED


@needs_avx2
@pytest.mark.parametrize("path", [p for p in supported_paths() if p != "portable"])
@settings(max_examples=60, deadline=None)
@given(case=layers(weight_bits=4))
def test_packed_linear_equals_reference_linear(path, case):
    """§7.1 end to end on the offset nibbles (the search's input projections): folded zero
    point, padding, requantization and clamp give the reference's integers."""
    layer, fmt, x, rounding, out_dtype = case
    want = reference.linear(x, layer, fmt, rounding, out_dtype)
    with layouts_on_path(path):
        layout, packed = stream_layout(layer, fmt), packed_layout(layer, fmt)
    info = np.iinfo(out_dtype)
    out = np.full((x.shape[0], layer.n_out), 12345, dtype=out_dtype)
    linear_rows_packed(x, layout, packed.weight, packed.flush, rounding_code(rounding),
                       int(info.min), int(info.max), out)
    np.testing.assert_array_equal(out, want)
