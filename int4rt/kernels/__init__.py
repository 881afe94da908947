"""Numba kernels: the fast twins of ``int4rt.arith``, bit for bit (docs/ARITHMETIC.md)."""

from int4rt.kernels.activations import sigmoid16, tanh16
from int4rt.kernels.gemv import fully_connected, fully_connected_int4
from int4rt.kernels.requant import requantize

__all__ = ["fully_connected", "fully_connected_int4", "requantize", "sigmoid16", "tanh16"]
