"""Sigmoid and tanh of Q3.12 gate pre-activations as whole-domain look-up tables (§6.3, §6.4).

An LSTM gate reads its int16 Q3.12 pre-activation through sigmoid16 or tanh16 with the input
scaling (3, 0) (§8.3). The input is one of 65536 values, so the kernels index a table of all
65536 outputs, ``lut[x + 32768]``, instead of interpolating each time. The tables are the
NumPy reference's own outputs for every int16 input, made once per sigmoid table (§6.2): a
kernel reading them gives the integers of §6.3/§6.4 by construction. The tanh of the int16
cell state (§8.4), whose input scaling follows the cell scale, has such a table too.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from int4rt.ops.activations.reference import sigmoid16, tanh16
from int4rt.ops.activations.tables import check_sigmoid_table

LUT_OFFSET = 32768  # lut[x + LUT_OFFSET] for int16 x
GATE_SCALING = (3, 0)  # (input multiplier, input shift) of a Q3.12 input (§6.3)


@lru_cache(maxsize=16)
def _lut(table_bytes: bytes, dtype: str, tanh: bool, multiplier: int, shift: int) -> np.ndarray:
    table = check_sigmoid_table(np.frombuffer(table_bytes, dtype=dtype))
    every_input = np.arange(-LUT_OFFSET, LUT_OFFSET, dtype=np.int64)
    out = np.ascontiguousarray((tanh16 if tanh else sigmoid16)(every_input, table, multiplier,
                                                                 shift))
    out.flags.writeable = False
    return out


def gate_luts(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sigmoid, tanh) int16 [65536] of every Q3.12 input under ``table``; cached per table
    contents (checked against §6.2 when first seen, so a hot loop pays one dictionary look-up).
    """
    arr = np.asarray(table)
    key = arr.tobytes(), arr.dtype.str
    return _lut(*key, False, *GATE_SCALING), _lut(*key, True, *GATE_SCALING)


def cell_tanh_lut(table: np.ndarray, multiplier: int, shift: int) -> np.ndarray:
    """tanh16 int16 [65536] of every int16 cell state under the input scaling
    (``multiplier``, ``shift``) of its cell scale (§6.4, ``tanh_input_scaling``; §8.4 reads
    it as ``lut[c + 32768]``); cached per table contents and scaling.
    """
    arr = np.asarray(table)
    return _lut(arr.tobytes(), arr.dtype.str, True, int(multiplier), int(shift))
