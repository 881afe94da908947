"""Numba's NumPy support, imported without SciPy (docs/RESULTS.md, "Cold start").

Numba installs its array implementations (``numba.np.arraymath``) when the first kernel is
compiled or loaded from its cache. That module imports ``scipy.linalg`` (0.3–0.5 s of every
process start here) only to learn whether a BLAS exists for floating-point ``np.dot``.
int4rt's kernels are integer-only and call no BLAS, so :func:`import_array_math` imports it
with ``scipy.linalg.cython_blas`` marked absent for that one import; Numba's ``np.dot`` and
``np.linalg`` still import SciPy themselves when a kernel that uses them is compiled.
"""

from __future__ import annotations

import sys

BLAS_MODULE = "scipy.linalg.cython_blas"


def import_array_math() -> None:
    """Import ``numba.np.arraymath`` without SciPy, unless either is imported already."""
    if "numba.np.arraymath" in sys.modules or BLAS_MODULE in sys.modules:
        return
    sys.modules[BLAS_MODULE] = None  # type: ignore[assignment]  # the import raises ImportError
    try:
        import numba.np.arraymath  # noqa: F401
    finally:
        del sys.modules[BLAS_MODULE]
