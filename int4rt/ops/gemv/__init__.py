"""ARITHMETIC.md §7: fully connected / GEMV.

``reference`` (NumPy), ``numba`` (kernel); the kernel's §7.3/§7.4 dot products:
``dot_tiles`` (register tiles), ``gemm_blocked`` (blocked GEMM over them), ``weight_layout``
(padded weights), ``dispatch`` (which path this CPU runs).
"""
