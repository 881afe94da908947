"""The public primitive API: the NumPy references of docs/ARITHMETIC.md under short names.

Nothing is implemented here: every name is re-exported from its operator folder
``int4rt/ops/<op>/reference.py`` (or the shared ``int4rt.ops.formats`` / ``profiles``);
the Numba twins are ``int4rt/ops/<op>/numba.py`` (``int4rt.ops.registry.get_backend``).
"""

from int4rt.ops.activations.reference import sigmoid16, tanh16, tanh_input_scaling
from int4rt.ops.activations.tables import TFLM_SIGMOID_TABLE, check_sigmoid_table, sigmoid_table
from int4rt.ops.formats import FORMATS, INT32_MAX, INT32_MIN, code_range, saturate
from int4rt.ops.gemv.reference import (
    accumulator_bound,
    fully_connected,
    fully_connected_int4,
    signed_bits,
)
from int4rt.ops.int4.reference import pack_int4, unpack_int4
from int4rt.ops.log_softmax.tables import (
    LOG2E_Q30,
    check_exp2_table,
    check_ln_table,
    exp2_table,
    ln_table,
)
from int4rt.ops.profiles import Profile, get_profile
from int4rt.ops.requantize.reference import (
    ROUNDING_MODES,
    quantize_multiplier,
    requantize,
    rounding_divide_by_pot,
    srdhm,
)

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
    "fully_connected_int4",
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
