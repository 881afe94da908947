"""NumPy reference operators built from ``int4rt.arith`` (docs/ARITHMETIC.md §8 onwards)."""
