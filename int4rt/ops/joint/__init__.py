"""ARITHMETIC.md §9, the RNN-T joint network: ``reference`` (NumPy), ``numba`` (kernel)."""
