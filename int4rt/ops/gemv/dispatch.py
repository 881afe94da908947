"""Runtime choice of the dot-product path for this CPU (docs/ARITHMETIC.md §7.4).

Paths: ``vnni512`` (``vpdpbusd`` on 64-byte registers, two 32-byte chunks per instruction)
where the host has AVX-512 VNNI with BW, ``vnni`` (``vpdpbusd`` tiles on 32-byte registers,
four products straight into int32 lanes) where it has AVX-VNNI or AVX-512 VNNI with VL,
``avx2`` (``vpmaddubsw`` tiles with int16 lanes) where it has AVX2, and ``portable`` (plain
loops) everywhere. All give the same integers; ``int4rt selftest`` runs every path the host
supports against the NumPy reference. ``INT4RT_KERNELS=vnni``, ``=avx2`` or ``=portable``
picks a slower path. The choice is made at run time:
a layer's ``flush`` value carries it into the kernels (:func:`kernel_flush`), so Numba's cache,
which is keyed by the host CPU but not by the environment, never pins one path.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import llvmlite.binding as llvm_binding
import numba as nb
from numba.core import config

from int4rt.ops.numba_runtime import import_array_math

import_array_math()  # before the first kernel loads: keeps SciPy out of process start


def host_features() -> frozenset[str]:
    """The CPU features Numba compiles for: the host's, or, when ``NUMBA_CPU_NAME`` names
    another CPU, only those ``NUMBA_CPU_FEATURES`` adds (``+avx2,...``; a named CPU's own
    defaults are unknown here, so without that list the kernels take the portable path).
    ``-feature`` entries of ``NUMBA_CPU_FEATURES`` remove features either way.
    """
    named = config.CPU_NAME not in (None, "host")
    features = set() if named else {
        k for k, v in llvm_binding.get_host_cpu_features().items() if v}
    for entry in (config.CPU_FEATURES or "").split(","):
        entry = entry.strip()
        if entry[:1] == "+":
            features.add(entry[1:])
        elif entry[:1] == "-":
            features.discard(entry[1:])
    return frozenset(features)


def _has_vnni(features: frozenset[str]) -> bool:
    return "avx2" in features and ("avxvnni" in features
                                   or {"avx512vnni", "avx512vl"} <= features)


HAS_VNNI = _has_vnni(host_features())
"""Whether this host runs ``vpdpbusd`` on 32-byte registers (the ``vnni`` path)."""
HAS_VNNI512 = HAS_VNNI and {"avx512f", "avx512bw", "avx512vnni"} <= host_features()
"""Whether this host runs ``vpdpbusd`` on 64-byte registers (the ``vnni512`` path)."""
VNNI_FLUSH = -1
"""The ``flush`` value that selects the ``vnni`` tiles (§7.4: no int16 lanes to flush)."""
VNNI512_FLUSH = -2
"""The ``flush`` value that selects the ``vnni512`` tiles (§7.4, as ``VNNI_FLUSH``)."""


def supported_paths() -> tuple[str, ...]:
    """The paths this host can run, fastest first."""
    if "avx2" not in host_features():
        return ("portable",)
    vnni = ("vnni512", "vnni") if HAS_VNNI512 else ("vnni",) if HAS_VNNI else ()
    return (*vnni, "avx2", "portable")


def _chosen_path() -> str:
    wanted = os.environ.get("INT4RT_KERNELS", "").strip().lower()
    return wanted if wanted in supported_paths() else supported_paths()[0]


ACTIVE_PATH = _chosen_path()
"""The path the model's layers use."""


def path_tile(zmm_tile: Callable, wide_tile: Callable, fast_tile: Callable,
              portable_tile: Callable) -> Callable:
    """One tile that takes the form its ``flush`` selects: ``zmm_tile`` for ``VNNI512_FLUSH``,
    ``wide_tile`` for ``VNNI_FLUSH``, ``fast_tile`` for a positive int16 period (§7.4),
    ``portable_tile`` for 0. Pass forms this host lacks as they are: their flush never
    occurs on it (``kernel_flush``), and each is replaced by the next form the host runs, so
    it is never compiled (an intrinsic the target lacks aborts LLVM).
    """
    fast_tile = fast_tile if "avx2" in supported_paths() else portable_tile
    wide = wide_tile if HAS_VNNI else fast_tile
    zmm = zmm_tile if HAS_VNNI512 else wide

    @nb.njit(inline="always")
    def tile(u, w, b0, n0, chunks, flush, out):
        if flush == VNNI512_FLUSH:
            zmm(u, w, b0, n0, chunks, flush, out)
        elif flush < 0:
            wide(u, w, b0, n0, chunks, flush, out)
        elif flush > 0:
            fast_tile(u, w, b0, n0, chunks, flush, out)
        else:
            portable_tile(u, w, b0, n0, chunks, flush, out)

    return tile


PATH_FLUSH = {"vnni512": VNNI512_FLUSH, "vnni": VNNI_FLUSH}
"""The ``flush`` of the two VNNI paths (exact for every code width, §7.4)."""


def path_flush(path: str, flush: int) -> int:
    """The ``flush`` a layer passes to the kernels on ``path``: ``VNNI512_FLUSH`` or
    ``VNNI_FLUSH`` on the VNNI paths (exact for every code width, §7.4), ``flush`` (the int16
    period, 0 = portable tiles) on ``avx2``, 0 on ``portable``.
    """
    if path in PATH_FLUSH:
        return PATH_FLUSH[path]
    return int(flush) if path == "avx2" else 0


def kernel_flush(flush: int) -> int:
    """:func:`path_flush` on ``ACTIVE_PATH`` (read when a layer's layout is built)."""
    return path_flush(ACTIVE_PATH, flush)


@contextmanager
def layouts_on_path(path: str) -> Iterator[None]:
    """Layer layouts built inside take ``path`` (one this host supports) instead of
    ``ACTIVE_PATH``; layouts are kept per layer, so a model loaded and first run inside keeps
    that path afterwards. For comparing paths in one process (the benchmark runner).
    """
    global ACTIVE_PATH
    if path not in supported_paths():
        raise ValueError(f"kernel path {path!r} not in {supported_paths()}")
    saved, ACTIVE_PATH = ACTIVE_PATH, path
    try:
        yield
    finally:
        ACTIVE_PATH = saved
