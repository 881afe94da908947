"""Sigmoid tables for the interpolated sigmoid/tanh (docs/ARITHMETIC.md §6.1, §6.2).

``TFLM_SIGMOID_TABLE`` holds the values of TensorFlow Lite Micro's ``sigmoid_table_uint16``
(tensorflow/lite/kernels/internal/common.h), carried as data under TFLM's licence:

    Copyright The TensorFlow Authors. All Rights Reserved.
    Licensed under the Apache License, Version 2.0 (the "License"); you may not use this
    file except in compliance with the License. You may obtain a copy of the License at
    http://www.apache.org/licenses/LICENSE-2.0
    Unless required by applicable law or agreed to in writing, software distributed under
    the License is distributed on an "AS IS" BASIS, WITHOUT WARRANTIES OR CONDITIONS OF ANY
    KIND, either express or implied. See the License for the specific language governing
    permissions and limitations under the License.

The oracle tests read these entries back from the tflite-micro interpreter.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, localcontext
from functools import cache

import numpy as np

from int4rt.errors import ArithmeticSpecError

TABLE_SIZE = 256
TABLE_STEP_DENOMINATOR = 24

TFLM_SIGMOID_TABLE = np.array(
    [
        32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498,
        40149, 40794, 41432, 42064, 42688, 43304, 43912, 44511, 45102, 45683, 46255,
        46817, 47369, 47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409, 51865,
        52311, 52745, 53169, 53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174,
        56503, 56823, 57133, 57433, 57724, 58007, 58280, 58544, 58800, 59048, 59288,
        59519, 59743, 59959, 60168, 60370, 60565, 60753, 60935, 61110, 61279, 61441,
        61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666, 62778, 62886,
        62990, 63090, 63186, 63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835,
        63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308, 64357, 64405, 64450,
        64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786, 64816, 64845,
        64873, 64900, 64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079, 65097,
        65115, 65132, 65149, 65164, 65179, 65194, 65208, 65221, 65234, 65246, 65258,
        65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360,
        65367, 65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425,
        65429, 65433, 65438, 65442, 65445, 65449, 65453, 65456, 65459, 65462, 65465,
        65468, 65471, 65474, 65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491,
        65493, 65495, 65497, 65498, 65500, 65501, 65503, 65504, 65505, 65507, 65508,
        65509, 65510, 65511, 65512, 65513, 65514, 65515, 65516, 65517, 65517, 65518,
        65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524, 65525,
        65525, 65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529,
        65529, 65529, 65530, 65530, 65530, 65530, 65531, 65531, 65531, 65531, 65531,
        65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533, 65533, 65533,
        65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534,
        65534, 65534, 65535,
    ],
    dtype=np.uint16,
)
TFLM_SIGMOID_TABLE.setflags(write=False)


@cache
def sigmoid_table() -> np.ndarray:
    """int4rt's own sigmoid table: ``T[k] = round_half_up(65536 / (1 + exp(-k/24)))`` (§6.1).

    Evaluated in 50-digit decimal arithmetic, so the entries do not depend on the
    platform's libm; every entry is ≤ 65534 and the table is non-decreasing. The array is
    computed once and read-only.
    """
    with localcontext() as ctx:
        ctx.prec = 50
        one = Decimal(1)
        entries = [
            (Decimal(65536) / (one + (Decimal(-k) / TABLE_STEP_DENOMINATOR).exp()))
            .to_integral_value(rounding=ROUND_HALF_UP)
            for k in range(TABLE_SIZE)
        ]
    table = np.array([int(e) for e in entries], dtype=np.uint16)
    table.setflags(write=False)
    return table


def check_sigmoid_table(table: object) -> np.ndarray:
    """``table`` as uint16[256] after checking the invariants of §6.2; else an error."""
    arr = np.asarray(table)
    if arr.shape != (TABLE_SIZE,):
        raise ArithmeticSpecError(f"sigmoid table must have shape (256,), got {arr.shape}")
    if arr.dtype != np.uint16:
        raise ArithmeticSpecError(f"sigmoid table must be uint16, got dtype {arr.dtype}")
    if int(arr[0]) != 32768:
        raise ArithmeticSpecError(f"sigmoid table entry 0 must be 32768, got {int(arr[0])}")
    if np.any(np.diff(arr.astype(np.int32)) < 0):
        raise ArithmeticSpecError("sigmoid table must be non-decreasing")
    if int(arr[254]) > 65534:
        raise ArithmeticSpecError(f"sigmoid table entry 254 must be <= 65534, got {int(arr[254])}")
    return arr
