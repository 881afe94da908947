"""Runtime choice of the dot-product path for this CPU (docs/ARITHMETIC.md §7.4).

Paths: ``vnni`` (``vpdpbusd`` tiles, four products straight into int32 lanes) where the host
has AVX-VNNI or AVX-512 VNNI with VL, ``avx2`` (``vpmaddubsw`` tiles with int16 lanes) where it
has AVX2, and ``portable`` (plain loops) everywhere. All give the same integers;
``int4rt selftest`` runs every path the host supports against the NumPy reference.
``INT4RT_KERNELS=avx2`` or ``=portable`` picks a slower path. The choice is made at run time:
a layer's ``flush`` value carries it into the kernels (:func:`kernel_flush`), so Numba's cache,
which is keyed by the host CPU but not by the environment, never pins one path.
"""

from __future__ import annotations

import os

import llvmlite.binding as llvm_binding
from numba.core import config

from int4rt.ops.gemv.dot_tiles import AVX2_TILES, PORTABLE_TILES, VNNI_TILES
from int4rt.ops.numba_runtime import import_array_math

import_array_math()  # before the first kernel loads: keeps SciPy out of process start


def host_features() -> frozenset[str]:
    """The CPU features LLVM sees on this host (empty when Numba targets another CPU)."""
    if config.CPU_NAME not in (None, "host"):
        return frozenset()
    return frozenset(k for k, v in llvm_binding.get_host_cpu_features().items() if v)


def _has_vnni(features: frozenset[str]) -> bool:
    return "avx2" in features and ("avxvnni" in features
                                   or {"avx512vnni", "avx512vl"} <= features)


HAS_VNNI = _has_vnni(host_features())
"""Whether this host runs ``vpdpbusd`` on 32-byte registers (the ``vnni`` path)."""
VNNI_FLUSH = -1
"""The ``flush`` value that selects the ``vnni`` tiles (§7.4: no int16 lanes to flush)."""


def supported_paths() -> tuple[str, ...]:
    """The paths this host can run, fastest first."""
    if "avx2" not in host_features():
        return ("portable",)
    return ("vnni", "avx2", "portable") if HAS_VNNI else ("avx2", "portable")


def _chosen_path() -> str:
    wanted = os.environ.get("INT4RT_KERNELS", "").strip().lower()
    return wanted if wanted in supported_paths() else supported_paths()[0]


ACTIVE_PATH = _chosen_path()
"""The path the model's layers use."""
FAST_TILES = AVX2_TILES if "avx2" in supported_paths() else PORTABLE_TILES
"""The tiles a kernel uses when its int16 flush period is positive (§7.4)."""
WIDE_TILES = VNNI_TILES if HAS_VNNI else FAST_TILES
"""The tiles a kernel uses when its flush is ``VNNI_FLUSH`` (never on hosts without VNNI)."""


def kernel_flush(flush: int) -> int:
    """The ``flush`` a layer passes to the kernels on ``ACTIVE_PATH``: ``VNNI_FLUSH`` on the
    ``vnni`` path (exact for every code width), ``flush`` (the int16 period, 0 = portable
    tiles) on ``avx2``, 0 on ``portable``.
    """
    if ACTIVE_PATH == "vnni":
        return VNNI_FLUSH
    return int(flush) if ACTIVE_PATH == "avx2" else 0
