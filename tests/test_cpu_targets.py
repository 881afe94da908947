"""The kernels compile and agree with the NumPy reference on CPUs without AVX-512 VNNI
(docs/ARITHMETIC.md §7.4–§7.6: every path gives the same integers).

Numba compiles for the host unless ``NUMBA_CPU_NAME`` names another CPU; it then still takes
the host's features unless ``NUMBA_CPU_FEATURES`` gives them, so a subprocess with both builds
what an AVX2-only Zen 3 (path ``avx2``) or a plain x86-64 host (path ``portable``) builds, on
any host. Until session 27 the lane-row kernel (§7.6) was compiled on every host although only
``vnni512`` runs it, and LLVM aborted the process on Zen 3 ("Do not know how to split the
result of this operator")."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = """
import numpy as np
from int4rt.model.config import load_config
from int4rt.model.random_model import random_model
from int4rt.ops.gemv.dispatch import ACTIVE_PATH
model = random_model(load_config("configs/tiny.json"), 5)
features = np.random.default_rng(1).normal(size=(40, model.frontend.feature_dim)).astype(np.float32)
labels = [3, 1, 4, 1, 5]
want = model.lattice(features, labels, backend="numpy")
got = model.lattice(features, labels, backend="numba")
assert np.array_equal(got, want), "numba lattice differs from the reference"
print(ACTIVE_PATH, want.shape)
"""


ZEN3_FEATURES = "+avx,+avx2,+fma,+bmi,+bmi2,+f16c,+popcnt,+sse4.1,+sse4.2,+ssse3,-avx512f,-avxvnni"
"""What AMD Zen 3 has of the features the kernels dispatch on (AVX2, no AVX-512, no VNNI)."""


@pytest.mark.parametrize(("cpu", "features", "path"), [
    ("znver3", ZEN3_FEATURES, "avx2"),
    ("x86-64", "", "portable"),
])
def test_model_kernels_compile_and_match_reference_on_cpu(cpu, features, path, tmp_path):
    env = dict(os.environ, NUMBA_CPU_NAME=cpu, NUMBA_CPU_FEATURES=features,
               NUMBA_CACHE_DIR=str(tmp_path))
    for name in ("INT4RT_NUMBA_CACHE", "INT4RT_KERNELS"):
        env.pop(name, None)
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[0] == path
