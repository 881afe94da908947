"""ARITHMETIC.md §7: fully connected / GEMV.

``reference`` (NumPy), ``numba`` (kernel), ``simd`` (the §7.3 dot products).
"""
