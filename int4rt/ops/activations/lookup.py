"""Sigmoid and tanh of Q3.12 gate pre-activations as whole-domain look-up tables (§6.3, §6.4).

An LSTM gate reads its int16 Q3.12 pre-activation through sigmoid16 or tanh16 with the input
scaling (3, 0) (§8.3). The input is one of 65536 values, so the kernels index a table of all
65536 outputs, ``lut[x + 32768]``, instead of interpolating each time. The tables are the
NumPy reference's own outputs for every int16 input, made once per sigmoid table (§6.2): a
kernel reading them gives the integers of §6.3/§6.4 by construction.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from int4rt.ops.activations.reference import sigmoid16, tanh16
from int4rt.ops.activations.tables import check_sigmoid_table

LUT_OFFSET = 32768  # lut[x + LUT_OFFSET] for int16 x
GATE_SCALING = (3, 0)  # (input multiplier, input shift) of a Q3.12 input (§6.3)


@lru_cache(maxsize=8)
def _luts(table_bytes: bytes, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    table = check_sigmoid_table(np.frombuffer(table_bytes, dtype=dtype))
    every_input = np.arange(-LUT_OFFSET, LUT_OFFSET, dtype=np.int64)
    sigmoid = np.ascontiguousarray(sigmoid16(every_input, table, *GATE_SCALING))
    tanh = np.ascontiguousarray(tanh16(every_input, table, *GATE_SCALING))
    sigmoid.flags.writeable = False
    tanh.flags.writeable = False
    return sigmoid, tanh


def gate_luts(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sigmoid, tanh) int16 [65536] of every Q3.12 input under ``table``; cached per table
    contents (checked against §6.2 when first seen, so a hot loop pays one dictionary look-up).
    """
    arr = np.asarray(table)
    return _luts(arr.tobytes(), arr.dtype.str)
