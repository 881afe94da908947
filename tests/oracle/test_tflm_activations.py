"""int4rt's int16 sigmoid and tanh are bit-exact with tflite-micro's LOGISTIC and TANH.

Every one of the 65536 int16 inputs is run through one-operator .tflite models for several
input scales, and compared with ``int4rt.arith`` and ``int4rt.ops.activations.numba`` using
``TFLM_SIGMOID_TABLE``. A separate test reads the table entries back out of the interpreter,
so the carried table is checked against tflite-micro rather than against itself.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("tflite_micro")
pytest.importorskip("ai_edge_litert")

from int4rt import arith
from int4rt.arith import TFLM_SIGMOID_TABLE
from int4rt.ops.activations import numba as activations_numba

from .tflite_builder import BuiltinOperator, build_unary_int16, run

pytestmark = pytest.mark.oracle

ALL_INT16 = np.arange(-32768, 32768, dtype=np.int16)
THIRD_F32 = float(np.float32(1.0 / 3.0))  # float32(1/3) is a little above 1/3
# Input scale for which TFLM's doubling loop gives multiplier 16384, shift 13: v = 2x.
SCALE_V_2X = THIRD_F32 * 2.0**-11
# ... and multiplier 16384, shift 14: v = x.
SCALE_V_X = THIRD_F32 * 2.0**-12
SCALE_RANDOM = float(np.float32(np.random.default_rng(20_240_611).uniform(1e-4, 1e-3)))

OPS = {"LOGISTIC": BuiltinOperator.LOGISTIC, "TANH": BuiltinOperator.TANH}


def _checked_log2(x: float) -> tuple[bool, int]:
    """TFLite ``CheckedLog2``: (is power of two within 1e-3 in log2, rounded log2), in float32."""
    x_log2 = np.float32(np.log(np.float32(x))) * np.float32(1.0 / np.log(np.float32(2.0)))
    rounded = int(math.copysign(math.floor(abs(float(x_log2)) + 0.5), float(x_log2)))
    return abs(float(x_log2 - np.float32(rounded))) < 1e-3, rounded


def tflm_int16_input_scaling(op: str, input_scale: float) -> tuple[int, int]:
    """(input_multiplier, input_shift) that TFLM's int16 LOGISTIC/TANH use for ``input_scale``.

    Mirrors the int16 branch of Prepare in micro/kernels/logistic_common.cc and tanh.cc,
    plus the start of reference_integer_ops::Logistic/Tanh, which turns the power-of-two
    case (multiplier 0) into multiplier ``3 << left_shift`` with shift 0. A scale counts as
    a power of two when its log2 is within 1e-3 of an integer k and ``left_shift = 12 + k``
    is 0 (LOGISTIC) or 0 or 1 (TANH). Otherwise ``input_scale * 4096 * 3`` is doubled
    until it exceeds 32767 / 2, counting doublings in the shift, and truncated.
    """
    is_pot, log2 = _checked_log2(input_scale)
    left_shift = 12 + log2
    if is_pot and left_shift in ((0,) if op == "LOGISTIC" else (0, 1)):
        return 3 << left_shift, 0
    multiplier = float(np.float32(input_scale)) * 4096.0 * 3.0
    left_shift = 0
    while multiplier <= 32767.0 / 2.0 and left_shift <= 30:
        left_shift += 1
        multiplier *= 2.0
    return int(multiplier), left_shift


def test_input_scaling_mirror_known_values() -> None:
    """The Prepare mirror gives the expected settings for the scales exercised below."""
    assert tflm_int16_input_scaling("LOGISTIC", 2.0**-12) == (3, 0)  # Q3.12 LSTM gates
    assert tflm_int16_input_scaling("TANH", 2.0**-12) == (3, 0)
    assert tflm_int16_input_scaling("TANH", 2.0**-11) == (6, 0)  # POT with left shift 1
    assert tflm_int16_input_scaling("LOGISTIC", 2.0**-11) == (24576, 12)  # v = 6x, via loop
    assert tflm_int16_input_scaling("TANH", SCALE_V_2X) == (16384, 13)
    assert tflm_int16_input_scaling("LOGISTIC", SCALE_V_2X) == (16384, 13)
    assert tflm_int16_input_scaling("TANH", SCALE_V_X) == (16384, 14)


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize(
    "input_scale",
    [2.0**-12, 2.0**-11, 2.0**-13, SCALE_V_2X, SCALE_V_X, SCALE_RANDOM, 1.0],
    ids=["2^-12", "2^-11", "2^-13", "v=2x", "v=x", "random", "1.0"],
)
def test_int16_activation_matches_tflm_exhaustively(
    op: str, input_scale: float, report_count
) -> None:
    """All 65536 int16 inputs: int4rt arith and kernels equal the interpreter's outputs."""
    multiplier, shift = tflm_int16_input_scaling(op, input_scale)
    expected = run(build_unary_int16(OPS[op], input_scale), [ALL_INT16])[0]
    assert expected.dtype == np.int16
    if op == "LOGISTIC":
        impls = {"arith.sigmoid16": arith.sigmoid16, "numba.sigmoid16": activations_numba.sigmoid16}
    else:
        impls = {"arith.tanh16": arith.tanh16, "numba.tanh16": activations_numba.tanh16}
    for name, fn in impls.items():
        got = np.asarray(fn(ALL_INT16, TFLM_SIGMOID_TABLE, multiplier, shift))
        bad = np.flatnonzero(got.astype(np.int64) != expected.astype(np.int64))
        detail = [(int(ALL_INT16[i]), int(got[i]), int(expected[i])) for i in bad[:10]]
        assert bad.size == 0, (
            f"{name} (mult {multiplier}, shift {shift}) differs from TFLM {op} at "
            f"{bad.size} inputs; (x, int4rt, tflm): {detail}"
        )
    report_count(
        f"TFLM {op} int16 scale {input_scale!r} (mult {multiplier}, shift {shift}): "
        f"{ALL_INT16.size} inputs x {len(impls)} implementations, 0 mismatches"
    )


def test_sigmoid_table_recovered_from_tflm(report_count) -> None:
    """Read TFLM's sigmoid table back out of the interpreter and compare it with int4rt's.

    TANH with v = 2x (multiplier 16384, shift 13) maps x = 128u to v = 256u, where the
    interpolation weight is 0 and the output is exactly ``T[u] - 32768`` for u in 0..254.
    T[255] only enters as the upper end of segment 254: x = 32512 + j (j in 0..127) gives
    v = 65024 + t with offset t = 2j and output
    ``floor((256·T[254] + t·(T[255] - T[254]) + 128) / 256) - 32768``; exactly one uint16
    value of T[255] must explain all 128 of these outputs.
    """
    assert tflm_int16_input_scaling("TANH", SCALE_V_2X) == (16384, 13)
    out = run(build_unary_int16(BuiltinOperator.TANH, SCALE_V_2X), [ALL_INT16])[0]
    out = out.astype(np.int64) + 32768  # indexed by x + 32768

    u = np.arange(255)
    table = np.zeros(256, dtype=np.int64)
    table[:255] = out[32768 + 128 * u]

    j = np.arange(128, dtype=np.int64)
    t = 2 * j
    observed = out[32768 + 32512 + j]
    candidates = np.arange(0, 65536, dtype=np.int64)[:, None]
    predicted = (256 * table[254] + t * (candidates - table[254]) + 128) // 256
    matches = np.flatnonzero((predicted == observed).all(axis=1))
    assert matches.size == 1, f"T[255] not determined uniquely: candidates {matches[:10]}"
    table[255] = matches[0]

    carried = np.asarray(TFLM_SIGMOID_TABLE, dtype=np.int64)
    diff = np.flatnonzero(table != carried)
    assert diff.size == 0, (
        f"TFLM_SIGMOID_TABLE differs from the interpreter at entries {diff.tolist()}: "
        f"carried {carried[diff].tolist()}, tflm {table[diff].tolist()}"
    )
    report_count(
        f"TFLM sigmoid table: all {table.size} entries recovered from the interpreter match"
    )
