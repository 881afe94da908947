"""ARITHMETIC.md §5, int4 packing two codes per byte: ``reference`` (NumPy), ``numba`` (kernel)."""
