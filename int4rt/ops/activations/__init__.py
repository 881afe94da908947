"""ARITHMETIC.md §6: sigmoid16 and tanh16.

``tables`` (§6.1, §6.2), ``reference`` (NumPy), ``numba`` (kernel).
"""
