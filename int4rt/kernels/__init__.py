"""Numba kernels: the fast twins of ``int4rt.arith`` and ``int4rt.ref``, bit for bit.

Operator modules (``lstm``, ``joint``, ``log_softmax``) are imported by name.
"""

from int4rt.kernels.activations import sigmoid16, tanh16
from int4rt.kernels.gemv import fully_connected, fully_connected_int4
from int4rt.kernels.requant import requantize

__all__ = [
    "fully_connected",
    "fully_connected_int4",
    "requantize",
    "sigmoid16",
    "tanh16",
]
