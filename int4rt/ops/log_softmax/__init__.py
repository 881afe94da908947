"""ARITHMETIC.md §10: integer log-softmax.

``tables`` (§10.1), ``reference`` (NumPy), ``numba`` (kernel).
"""
