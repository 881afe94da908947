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

from int4rt.ops.gemv.dispatch import supported_paths
from int4rt.ops.gemv.dot_tiles import flush_period
from int4rt.ops.gemv.gemm_blocked import GEMM_PATHS
from int4rt.ops.gemv.weight_layout import padded_width

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
