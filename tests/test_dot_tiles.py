"""Every dot-product path this CPU runs equals an int64 matrix product (ARITHMETIC.md §7.3, §7.4).

The independent check is NumPy's int64 ``@`` on the unpadded codes; edge cases (all extreme
codes, the int16 flush bound met exactly, odd shapes that use every tile) come from
hypothesis and from hand-picked values.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from int4rt.layers import ActQuant, QLinear
from int4rt.ops.gemv import reference
from int4rt.ops.gemv.dispatch import layouts_on_path, supported_paths
from int4rt.ops.gemv.dot_tiles import flush_period
from int4rt.ops.gemv.gemm_blocked import GEMM_PATHS
from int4rt.ops.gemv.numba import linear_rows
from int4rt.ops.gemv.weight_layout import padded_width, stream_layout
from int4rt.ops.requantize.scalar import rounding_code

PATHS = sorted(GEMM_PATHS)


def _padded(a: np.ndarray, dtype: type) -> np.ndarray:
    out = np.zeros((a.shape[0], padded_width(a.shape[1])), dtype=dtype)
    out[:, :a.shape[1]] = a
    return out


def _run(path: str, u: np.ndarray, w: np.ndarray, offsets: np.ndarray, flush: int) -> np.ndarray:
    out = np.full((u.shape[0], w.shape[0]), 12345, dtype=np.int32)
    GEMM_PATHS[path](_padded(u, np.uint8), _padded(w, np.int8), offsets, flush, out)
    return out


def _want(u: np.ndarray, w: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    return u.astype(np.int64) @ w.astype(np.int64).T - offsets


@st.composite
def problems(draw):
    """Codes of 4 or 8 bits, shapes that hit every tile and remainder, extreme fills."""
    weight_bits = draw(st.sampled_from([4, 8]))
    code_bits = draw(st.sampled_from([4, 8]))
    frames = draw(st.integers(1, 70))
    rows = draw(st.integers(1, 11))
    width = draw(st.integers(1, 300))
    w_max = 1 << (weight_bits - 1)
    u_max = (1 << code_bits) - 1
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    w = rng.integers(-w_max, w_max, size=(rows, width))
    u = rng.integers(0, u_max, size=(frames, width), endpoint=True)
    fill = draw(st.sampled_from(["random", "min", "max"]))
    if fill != "random":
        w[:] = -w_max if fill == "min" else w_max - 1
        u[:] = u_max
    offsets = rng.integers(-(2**20), 2**20, size=rows).astype(np.int32)
    return u.astype(np.uint8), w.astype(np.int8), offsets, flush_period(w_max, u_max)


@pytest.mark.parametrize("path", PATHS)
@settings(max_examples=60, deadline=None)
@given(problem=problems())
def test_paths_equal_int64_product(path, problem):
    u, w, offsets, flush = problem
    np.testing.assert_array_equal(_run(path, u, w, offsets, flush), _want(u, w, offsets))


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("flush", [1, 2, 7, 136])
def test_any_flush_within_the_bound_is_exact(path, flush):
    """4-bit extremes: every pair sum is −240, so lanes reach −240·flush, inside int16."""
    u = np.full((9, 1280), 15, np.uint8)
    w = np.full((5, 1280), -8, np.int8)
    offsets = np.zeros(5, np.int32)
    np.testing.assert_array_equal(_run(path, u, w, offsets, flush), _want(u, w, offsets))


@st.composite
def layers(draw, weight_bits: int | None = None):
    """A layer (``weight_bits`` wide, else 4 or 8) and its codes at the edges of §7.1 and §4:
    extreme codes and weights whose sums reach the overflow guard (|acc + bias| up to
    2^31 − 1), multipliers from 2^30 (ties with a negative shift) to 2^31 − 1 with shifts up to
    30 (saturation), int16 or int32 outputs, 1–5 rows of codes."""
    if weight_bits is None:
        weight_bits = draw(st.sampled_from([4, 8]))
    bits = draw(st.sampled_from([4, 8]))
    signed = draw(st.booleans())
    fmt = ActQuant(bits=bits, signed=signed, scale=0.1, zero_point=0)
    zp = draw(st.integers(fmt.qmin, fmt.qmax))
    fmt = ActQuant(bits=bits, signed=signed, scale=0.1, zero_point=zp)
    rows, width, frames = draw(st.integers(1, 9)), draw(st.integers(1, 200)), draw(
        st.integers(1, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    w_max = 1 << (weight_bits - 1)
    w = rng.integers(-w_max, w_max, size=(rows, width))
    x = rng.integers(fmt.qmin, fmt.qmax, size=(frames, width), endpoint=True)
    fill = draw(st.sampled_from(["random", "min", "max"]))
    if fill != "random":
        w[:] = -w_max if fill == "min" else w_max - 1
        x[:] = fmt.qmax if zp - fmt.qmin < fmt.qmax - zp else fmt.qmin
    room = 2**31 - 1 - width * 128 * 255  # the §7.1 guard's bias allowance
    bias = rng.integers(-room, room, size=rows, endpoint=True)
    bias[0] = draw(st.sampled_from([-room, room, 0]))
    multiplier = rng.integers(2**30, 2**31, size=rows)
    multiplier[0] = draw(st.sampled_from([2**30, 2**31 - 1]))
    shift = rng.integers(-31, 31, size=rows)
    shift[0] = draw(st.integers(-31, 30))
    layer = QLinear(w.astype(np.int8), weight_bits, bias.astype(np.int32),
                    multiplier.astype(np.int32), shift.astype(np.int32))
    layer.validate("layer", bits)
    return layer, fmt, x.astype(fmt.dtype), draw(st.sampled_from(["double", "single"])), \
        np.dtype(draw(st.sampled_from([np.int16, np.int32])))


@pytest.mark.parametrize("path", supported_paths())
@settings(max_examples=60, deadline=None)
@given(case=layers())
def test_every_path_equals_reference_linear(path, case):
    """§7.1 end to end (folded zero point, padding, requantization, clamp) on each path."""
    layer, fmt, x, rounding, out_dtype = case
    want = reference.linear(x, layer, fmt, rounding, out_dtype)
    with layouts_on_path(path):
        layout = stream_layout(layer, fmt)
    info = np.iinfo(out_dtype)
    out = np.empty((x.shape[0], layer.n_out), dtype=out_dtype)
    linear_rows(x, layout, rounding_code(rounding), info.min, info.max, out)
    np.testing.assert_array_equal(out, want)


def test_flush_period_is_the_int16_bound():
    assert flush_period(8, 15) == 136 and 136 * 240 <= 32767 < 137 * 240
    assert flush_period(128, 15) == 8 and flush_period(8, 255) == 8
    assert flush_period(128, 255) == 0  # 8 × 8 bits: not even one chunk; portable tiles
    assert flush_period(0, 15) > 10**6


@pytest.mark.skipif("avx2" not in supported_paths(), reason="needs an AVX2 host")
def test_avx2_lanes_wrap_past_the_bound():
    """One chunk more than the bound per widening really breaks int16 lanes: it is needed."""
    u = np.full((1, 32 * 137), 15, np.uint8)
    w = np.full((1, 32 * 137), -8, np.int8)
    offsets = np.zeros(1, np.int32)
    assert _run("avx2", u, w, offsets, 137)[0, 0] != _want(u, w, offsets)[0, 0]
    assert _run("avx2", u, w, offsets, 136)[0, 0] == -8 * 15 * 32 * 137


def test_portable_path_always_present():
    assert "portable" in PATHS and supported_paths()[-1] == "portable"
