"""ARITHMETIC.md §8, the integer LSTM: ``reference`` (NumPy), ``numba`` (kernel)."""
