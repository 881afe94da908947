"""Runtime choice of the dot-product path for this CPU (docs/ARITHMETIC.md §7.4).

Paths: ``avx2`` (``vpmaddubsw`` tiles with int16 lanes) where the host has AVX2, and
``portable`` (plain loops) everywhere. Both give the same integers; ``int4rt selftest`` runs
every path the host supports against the NumPy reference. ``INT4RT_KERNELS=portable`` forces
the portable path. AVX-512 VNNI / AVX-VNNI (``vpdpbusd``) is not implemented yet: such CPUs
take the AVX2 path.
"""

from __future__ import annotations

import os

import llvmlite.binding as llvm_binding
from numba.core import config

from int4rt.ops.gemv.dot_tiles import AVX2_TILES, PORTABLE_TILES
from int4rt.ops.numba_runtime import import_array_math

import_array_math()  # before the first kernel loads: keeps SciPy out of process start


def host_features() -> frozenset[str]:
    """The CPU features LLVM sees on this host (empty when Numba targets another CPU)."""
    if config.CPU_NAME not in (None, "host"):
        return frozenset()
    return frozenset(k for k, v in llvm_binding.get_host_cpu_features().items() if v)


def supported_paths() -> tuple[str, ...]:
    """The paths this host can run, fastest first."""
    return ("avx2", "portable") if "avx2" in host_features() else ("portable",)


def _chosen_path() -> str:
    wanted = os.environ.get("INT4RT_KERNELS", "").strip().lower()
    return wanted if wanted in supported_paths() else supported_paths()[0]


ACTIVE_PATH = _chosen_path()
"""The path the model's layers use."""
FAST_TILES = AVX2_TILES if "avx2" in supported_paths() else PORTABLE_TILES
"""The tiles a kernel uses when its int16 flush period is positive (§7.4)."""
