"""Process start stays lean (docs/RESULTS.md, "Cold start"): running a kernel imports no
SciPy, and Numba's own ``np.dot`` still works afterwards."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
import numba
import numpy as np
import int4rt.cli
from int4rt.ops.gemv.gemm_blocked import gemm
out = np.empty((1, 4), np.int32)
gemm(np.ones((1, 32), np.uint8), np.ones((4, 32), np.int8), np.zeros(4, np.int32), 0, out)
assert out.tolist() == [[32] * 4], out
print("scipy.linalg" in sys.modules)
dot = numba.njit(lambda a, b: np.dot(a, b))
print(dot(np.ones(3), np.ones(3)))
"""


def test_kernels_start_without_scipy_and_numba_dot_still_works():
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          check=True)
    assert done.stdout.split() == ["False", "3.0"]
