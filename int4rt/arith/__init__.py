"""Integer arithmetic primitives: the readable NumPy reference of docs/ARITHMETIC.md.

Every function here is the specification's executable twin; ``int4rt.kernels`` holds the
Numba implementations that must agree with it bit for bit.
"""

from int4rt.arith.activations import sigmoid16, tanh16, tanh_input_scaling
from int4rt.arith.formats import FORMATS, INT32_MAX, INT32_MIN, code_range, saturate
from int4rt.arith.gemv import accumulator_bound, fully_connected, signed_bits
from int4rt.arith.int4 import pack_int4, unpack_int4
from int4rt.arith.logsoftmax_tables import (
    LOG2E_Q30,
    check_exp2_table,
    check_ln_table,
    exp2_table,
    ln_table,
)
from int4rt.arith.profiles import Profile, get_profile
from int4rt.arith.requant import (
    ROUNDING_MODES,
    quantize_multiplier,
    requantize,
    rounding_divide_by_pot,
    srdhm,
)
from int4rt.arith.tables import TFLM_SIGMOID_TABLE, check_sigmoid_table, sigmoid_table

__all__ = [
    "FORMATS",
    "INT32_MAX",
    "INT32_MIN",
    "LOG2E_Q30",
    "ROUNDING_MODES",
    "TFLM_SIGMOID_TABLE",
    "Profile",
    "accumulator_bound",
    "check_exp2_table",
    "check_ln_table",
    "check_sigmoid_table",
    "code_range",
    "exp2_table",
    "fully_connected",
    "get_profile",
    "ln_table",
    "pack_int4",
    "quantize_multiplier",
    "requantize",
    "rounding_divide_by_pot",
    "saturate",
    "sigmoid16",
    "sigmoid_table",
    "signed_bits",
    "srdhm",
    "tanh16",
    "tanh_input_scaling",
    "unpack_int4",
]
