"""Runtime choice of the dot-product path for this CPU (docs/ARITHMETIC.md §7.4).

Paths: ``avx2`` (``vpmaddubsw`` tiles with int16 accumulation) where the host has AVX2, and
``portable`` (plain loops) everywhere. Both give the same integers; ``int4rt selftest`` runs
every path the host supports against the NumPy reference. ``INT4RT_KERNELS=portable`` forces
the portable path. AVX-512 VNNI / AVX-VNNI (``vpdpbusd``) is not implemented yet: such CPUs
take the AVX2 path.
"""

from __future__ import annotations

import os

import llvmlite.binding as llvm_binding
from numba.core import config

from int4rt.kernels.dot_tiles import AVX2_TILES, PORTABLE_TILES
from int4rt.kernels.gemm_blocked import make_blocked_gemm


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


GEMM_PATHS = {"portable": make_blocked_gemm(PORTABLE_TILES, PORTABLE_TILES)}
if "avx2" in supported_paths():
    GEMM_PATHS["avx2"] = make_blocked_gemm(AVX2_TILES, PORTABLE_TILES)

ACTIVE_PATH = _chosen_path()
blocked_gemm = GEMM_PATHS[ACTIVE_PATH]
"""``blocked_gemm(u, w, offsets, flush, out)`` on the path chosen for this host."""
