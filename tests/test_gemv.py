"""Fully connected / GEMV: reference, both kernels and the naive twin agree (§7)."""

from __future__ import annotations

import naive
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from int4rt import arith
from int4rt.ops.gemv import numba as gemv_numba

ACT = {"int8": (np.int8, -128, 127), "uint8": (np.uint8, 0, 255), "int4": (np.int8, -8, 7),
       "uint4": (np.uint8, 0, 15)}


@st.composite
def layers(draw):
    """A random layer with edge values: extreme codes, zero points at the ends, ties."""
    weight_bits = draw(st.sampled_from([4, 8]))
    act = draw(st.sampled_from(sorted(ACT)))
    dtype, lo, hi = ACT[act]
    n_in = draw(st.integers(1, 70))
    n_out = draw(st.integers(1, 12))
    batch = draw(st.integers(1, 3))
    w_lo, w_hi = (-8, 7) if weight_bits == 4 else (-128, 127)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    weights = rng.integers(w_lo, w_hi, size=(n_out, n_in), endpoint=True)
    mode = draw(st.sampled_from(["random", "min", "max"]))
    if mode != "random":
        weights[:] = w_lo if mode == "min" else w_hi
    x = rng.integers(lo, hi, size=(batch, n_in), endpoint=True)
    if draw(st.booleans()):
        x[0] = draw(st.sampled_from([lo, hi]))
    x_zp = draw(st.sampled_from([lo, hi, 0 if lo < 0 else lo, int(rng.integers(lo, hi + 1))]))
    ties = draw(st.booleans())
    multiplier = np.where(
        ties, 2**30, rng.integers(2**30, 2**31, size=n_out)
    ) * np.ones(n_out, dtype=np.int64)
    shift = rng.integers(-14, 1, size=n_out)
    bias = None if draw(st.booleans()) else rng.integers(-(2**20), 2**20, size=n_out)
    y_lo, y_hi = draw(st.sampled_from([(-128, 127), (0, 255), (-8, 7), (0, 15), (-32768, 32767)]))
    return dict(
        x=x.astype(dtype), weights=weights.astype(np.int8), bias=bias, x_zero_point=x_zp,
        multiplier=multiplier, shift=shift,
        y_zero_point=draw(st.sampled_from([y_lo, y_hi, 0, (y_lo + y_hi) // 2])),
        y_min=y_lo, y_max=y_hi, rounding=draw(st.sampled_from(["double", "single"])),
        weight_bits=weight_bits,
    )


@pytest.mark.thorough
@settings(max_examples=300, deadline=None)
@given(layer=layers())
def test_implementations_agree(layer):
    weight_bits = layer.pop("weight_bits")
    ref = arith.fully_connected(**layer)
    assert ref.dtype == np.int32 and ref.shape == (layer["x"].shape[0], layer["weights"].shape[0])
    np.testing.assert_array_equal(gemv_numba.fully_connected(**layer), ref)
    if weight_bits == 4:
        args = dict(layer)
        w = args.pop("weights")
        x = args.pop("x")
        bias = args.pop("bias")
        packed = arith.pack_int4(w)
        np.testing.assert_array_equal(
            gemv_numba.fully_connected_int4(x, packed, w.shape[0], bias, **args), ref
        )
    x, w = layer["x"], layer["weights"]
    for b in range(x.shape[0]):
        want = naive.fully_connected(
            x[b].tolist(), w.tolist(), layer["bias"], layer["x_zero_point"],
            layer["multiplier"].tolist(), layer["shift"].tolist(), layer["y_zero_point"],
            layer["y_min"], layer["y_max"], layer["rounding"],
        )
        assert ref[b].tolist() == want


def test_one_dimensional_input_and_scalar_requant():
    w = np.array([[1, -2, 3], [-8, 7, 0]], dtype=np.int8)
    x = np.array([10, 20, -30], dtype=np.int8)
    kw = dict(x_zero_point=-2, multiplier=2**30, shift=0, y_zero_point=1, y_min=-128,
              y_max=127)
    # acc = [12 - 44 - 84, -96 + 154] = [-116, 58]; ·1/2 -> [-58, 29]; +1 -> [-57, 30]
    for impl in (arith.fully_connected, gemv_numba.fully_connected):
        assert impl(x, w, None, **kw).tolist() == [-57, 30]
    packed = arith.pack_int4(w)
    assert gemv_numba.fully_connected_int4(x, packed, 2, None, **kw).tolist() == [-57, 30]


def _layer():
    return dict(
        x=np.zeros((2, 5), np.int8), weights=np.zeros((3, 5), np.int8), bias=np.zeros(3, np.int32),
        x_zero_point=0, multiplier=2**30, shift=0, y_zero_point=0, y_min=-128, y_max=127,
    )


@pytest.mark.parametrize("impl", [arith.fully_connected, gemv_numba.fully_connected])
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"x": np.zeros((2, 4), np.int8)}, r"activations have shape \(2, 4\)"),
        ({"x": np.zeros((2, 5), np.int16)}, "activations must be int8 or uint8"),
        ({"weights": np.zeros((3, 5), np.int16)}, "weights must be an int8"),
        ({"bias": np.zeros(4, np.int32)}, r"bias has shape \(4,\)"),
        ({"bias": np.full(3, 2**31)}, "bias holds 2147483648"),
        ({"multiplier": np.ones(2, np.int32)}, r"multiplier has shape \(2,\)"),
        ({"shift": 31}, "shift holds 31"),
        ({"x_zero_point": 128}, "x_zero_point 128 is outside"),
        ({"y_min": 5, "y_max": 4}, "y_min 5 is greater than y_max 4"),
        ({"rounding": "even"}, "unknown rounding mode 'even'"),
    ],
)
def test_rejects_bad_input(impl, change, message):
    layer = _layer() | change
    with pytest.raises(ValueError, match=message):
        impl(**layer)


def test_rejects_accumulator_overflow():
    n_in = 70_000
    layer = _layer() | {"x": np.zeros(n_in, np.int8), "weights": np.zeros((3, n_in), np.int8)}
    with pytest.raises(ValueError, match="int32 accumulator can overflow"):
        arith.fully_connected(**layer)


def test_int4_kernel_rejects_bad_packing():
    layer = _layer()
    x, bias = layer.pop("x"), layer.pop("bias")
    layer.pop("weights")
    with pytest.raises(ValueError, match="need 8 bytes, got 7"):
        gemv_numba.fully_connected_int4(x, np.zeros(7, np.uint8), 3, bias, **layer)
    padded = np.zeros(8, np.uint8)
    padded[-1] = 0x10
    with pytest.raises(ValueError, match="padding nibble"):
        gemv_numba.fully_connected_int4(x, padded, 3, bias, **layer)


@pytest.mark.parametrize(
    ("k", "wb", "ab", "zp", "bound", "bits"),
    [(1920, 4, 4, True, 1920 * 8 * 15, 19), (1280, 8, 8, True, 1280 * 128 * 255, 27),
     (640, 4, 8, False, 640 * 8 * 128, 21), (1, 4, 4, True, 120, 8)],
)
def test_accumulator_bound(k, wb, ab, zp, bound, bits):
    assert arith.accumulator_bound(k, wb, ab, zp) == bound
    assert arith.signed_bits(bound) == bits
