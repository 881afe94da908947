"""ARITHMETIC.md §3 (multiplier quantization) and §4 (requantization).

``reference`` (NumPy), ``numba`` (kernel), ``scalar`` (per-value Numba primitives).
"""
