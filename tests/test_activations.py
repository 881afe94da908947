"""Interpolated sigmoid and tanh: reference vs kernel, exhaustively; accuracy vs float (§6)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from int4rt import arith
from int4rt.ops.activations import numba as activations_numba
from int4rt.ops.activations.lookup import LUT_OFFSET, cell_tanh_lut, gate_luts
from int4rt.ops.activations.reference import tanh_input_scaling

ALL_INT16 = np.arange(-32768, 32768, dtype=np.int64)
TABLES = {"tflm": arith.TFLM_SIGMOID_TABLE, "int4rt": arith.sigmoid_table()}
SCALINGS = [(3, 0), (6, 0), (3 << 14, 0), (65535, 0), (3, 1), (3, 3), (3, 31), (16384, 13),
            (32767, 31)]


@pytest.mark.parametrize("table_name", sorted(TABLES))
@pytest.mark.parametrize(("mult", "shift"), SCALINGS)
@pytest.mark.parametrize("fn", ["sigmoid16", "tanh16"])
def test_kernel_matches_reference_on_every_input(fn, table_name, mult, shift):
    table = TABLES[table_name]
    ref = getattr(arith, fn)(ALL_INT16, table, mult, shift)
    fast = getattr(activations_numba, fn)(ALL_INT16, table, mult, shift)
    assert ref.dtype == fast.dtype == np.int16
    np.testing.assert_array_equal(ref, fast)


@pytest.mark.parametrize("table_name", sorted(TABLES))
def test_gate_luts_equal_the_kernels_on_every_input(table_name):
    """The LSTM's whole-domain gate tables (Q3.12, scaling (3, 0)) against the Numba kernels."""
    table = TABLES[table_name]
    sigmoid, tanh = gate_luts(table)
    assert sigmoid.dtype == tanh.dtype == np.int16 and sigmoid.shape == tanh.shape == (65536,)
    np.testing.assert_array_equal(sigmoid, activations_numba.sigmoid16(ALL_INT16, table, 3, 0))
    np.testing.assert_array_equal(tanh, activations_numba.tanh16(ALL_INT16, table, 3, 0))
    # §6.3 worked examples: x = −32768, −1000, 0, 1000, 32767.
    at = np.array([-32768, -1000, 0, 1000, 32767]) + LUT_OFFSET
    assert sigmoid[at].tolist() == [11, 14394, 16384, 18374, 32757]
    assert tanh[at].tolist() == [-32767, *tanh[at][1:4].tolist(), 32767]
    assert tanh[LUT_OFFSET] == 0 and tanh[LUT_OFFSET + 1000] == -tanh[LUT_OFFSET - 1000]
    assert gate_luts(table.copy())[0] is sigmoid  # cached by contents
    assert not sigmoid.flags.writeable


@pytest.mark.parametrize("table_name", sorted(TABLES))
@pytest.mark.parametrize("scale_log2", [-15, -11, -9, 0, 2])
def test_cell_tanh_lut_equals_the_kernel_on_every_input(table_name, scale_log2):
    """tanh of the cell state at its scale (§6.4, §8.4), one table per scaling."""
    table = TABLES[table_name]
    scaling = tanh_input_scaling(scale_log2)
    lut = cell_tanh_lut(table, *scaling)
    np.testing.assert_array_equal(lut, activations_numba.tanh16(ALL_INT16, table, *scaling))
    assert cell_tanh_lut(table.copy(), *scaling) is lut and not lut.flags.writeable
    if scaling == (3, 0):
        assert lut is gate_luts(table)[1]


def test_gate_luts_reject_a_bad_table():
    broken = arith.TFLM_SIGMOID_TABLE.copy()
    broken[10] = 0
    with pytest.raises(ValueError, match="non-decreasing"):
        gate_luts(broken)
    with pytest.raises(ValueError, match="uint16"):
        gate_luts(arith.TFLM_SIGMOID_TABLE.astype(np.int32))


def test_generated_table():
    """§6.1: entries from the formula, computed here with exact float checks of its ties."""
    table = arith.sigmoid_table()
    assert table.dtype == np.uint16 and table.shape == (256,)
    for k in range(256):
        exact = 65536 / (1 + math.exp(-k / 24))
        assert abs(int(table[k]) - exact) <= 0.5 + 1e-9
    assert int(table[0]) == 32768 and int(table[255]) == 65534
    diff = TABLES["tflm"].astype(int) - table.astype(int)
    assert set(diff.tolist()) == {0, 1} and int(diff.sum()) == 44


@pytest.mark.parametrize("table_name", sorted(TABLES))
def test_accuracy_against_float(table_name):
    """Q3.12 in, Q0.15 out: the interpolated functions stay within a few LSB of float."""
    table = TABLES[table_name]
    x = ALL_INT16 / 4096.0
    sig = arith.sigmoid16(ALL_INT16, table) / 32768.0
    tanh = arith.tanh16(ALL_INT16, table) / 32768.0
    assert np.max(np.abs(sig - 1 / (1 + np.exp(-x)))) < 2.0**-12
    assert np.max(np.abs(tanh - np.tanh(x))) < 2.0**-11
    assert np.all(np.diff(arith.sigmoid16(ALL_INT16, table).astype(int)) >= 0)
    assert np.all(np.diff(arith.tanh16(ALL_INT16, table).astype(int)) >= 0)


def test_known_points():
    table = arith.TFLM_SIGMOID_TABLE
    x = np.array([-32768, 0, 32767])
    # Q3.12 ±8: 32768·σ(±8) = 10.99 and 32757.0; tanh(±8) saturates the Q0.15 range.
    assert arith.sigmoid16(x, table).tolist() == [11, 16384, 32757]
    assert arith.tanh16(x, table).tolist() == [-32767, 0, 32767]
    # Multiplier 6 puts ±32767 past the last table entry: the saturated ends of §6.3.
    assert arith.sigmoid16(np.array([-32767, 32767]), table, 6, 0).tolist() == [1, 32767]


@pytest.mark.parametrize(
    ("scale_log2", "expected"), [(-12, (3, 0)), (-11, (6, 0)), (-10, (12, 0)), (-15, (3, 3))]
)
def test_tanh_input_scaling(scale_log2, expected):
    assert arith.tanh_input_scaling(scale_log2) == expected


@pytest.mark.parametrize("impl", [arith, activations_numba])
def test_rejects_bad_input(impl):
    table = arith.TFLM_SIGMOID_TABLE
    with pytest.raises(ValueError, match="shape"):
        impl.sigmoid16([0], table[:255])
    with pytest.raises(ValueError, match="uint16"):
        impl.sigmoid16([0], table.astype(np.int32))
    broken = table.copy()
    broken[10] = 0
    with pytest.raises(ValueError, match="non-decreasing"):
        impl.tanh16([0], broken)
    with pytest.raises(ValueError, match="entry 254"):
        impl.tanh16([0], np.r_[np.uint16(32768), np.full(255, 65535, np.uint16)])
    with pytest.raises(ValueError, match=r"x holds 32768"):
        impl.sigmoid16([32768], table)
    with pytest.raises(ValueError, match="input_multiplier"):
        impl.sigmoid16([0], table, 0, 0)
    with pytest.raises(ValueError, match="input_shift"):
        impl.tanh16([0], table, 3, 32)
    with pytest.raises(ValueError, match=r"input_multiplier must be in \[1, 32767\]"):
        impl.tanh16([0], table, 32768, 1)
