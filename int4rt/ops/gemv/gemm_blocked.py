"""Blocked uint8 × int8 GEMM over padded rows: ``acc = u @ wᵀ − offsets`` (§7.3, §7.4).

``u`` [B, Kp] holds unsigned codes (B frames or hypotheses), ``w`` [N, Kp] a layer in the
layout of :mod:`int4rt.ops.gemv.weight_layout`. Frames are taken in blocks that stay in L2;
within a block every four weight rows are streamed once for all frames, two frames at a
time (the 2 × 4 tile: 8 int16 accumulators, 4 weight and 1 activation register, inside AVX2's
16; it loads half the activation bytes per product that a 4 × 2 tile does). One activation
row (a GEMV) uses 1 × 4 tiles. With ``flush > 0`` the AVX2 tiles are used, with
``VNNI_FLUSH`` the VNNI ones, with ``VNNI512_FLUSH`` the VNNI ones on 64-byte registers, else
the portable ones (all but AVX2 exact for any codes).
"""

from __future__ import annotations

import numba as nb

from int4rt.ops.gemv.dispatch import (
    HAS_VNNI,
    HAS_VNNI512,
    VNNI512_FLUSH,
    VNNI_FLUSH,
    path_tile,
    supported_paths,
)
from int4rt.ops.gemv.dot_tiles import (
    AVX2_TILES,
    CHUNK,
    PORTABLE_TILES,
    VNNI512_TILES,
    VNNI_TILES,
)

FRAME_BLOCK = 128
"""Activation rows per L2 block: 128 × 1280 bytes = 160 KiB."""


_T24, _T14, _T21, _T11 = (
    path_tile(VNNI512_TILES[s], VNNI_TILES[s], AVX2_TILES[s], PORTABLE_TILES[s])
    for s in ((2, 4), (1, 4), (2, 1), (1, 1)))


@nb.njit(nogil=True, cache=True)
def tiles(u, w, chunks, flush, out, b_start, b_stop):
    """Raw sums ``out[b, n] = Σ_k u[b, k]·w[n, k]`` for rows b in [b_start, b_stop)."""
    n_rows = w.shape[0]
    n0 = 0
    while n0 < n_rows:
        quad = n0 + 4 <= n_rows
        b0 = b_start
        while b0 + 2 <= b_stop:
            if quad:
                _T24(u, w, b0, n0, chunks, flush, out)
            else:
                _T21(u, w, b0, n0, chunks, flush, out)
            b0 += 2
        if b0 < b_stop:
            if quad:
                _T14(u, w, b0, n0, chunks, flush, out)
            else:
                _T11(u, w, b0, n0, chunks, flush, out)
        n0 += 4 if quad else 1


@nb.njit(nogil=True, cache=True)
def gemm(u, w, offsets, flush, out):
    """``out[b, n] = Σ_k u[b, k]·w[n, k] − offsets[n]`` in int32, in place."""
    chunks = u.shape[1] // CHUNK
    n_frames = u.shape[0]
    for b_start in range(0, n_frames, FRAME_BLOCK):
        b_stop = min(b_start + FRAME_BLOCK, n_frames)
        tiles(u, w, chunks, flush, out, b_start, b_stop)
        for b in range(b_start, b_stop):
            for n in range(w.shape[0]):
                out[b, n] -= offsets[n]



def _portable_gemm(u, w, offsets, flush, out) -> None:
    """The same GEMM on the portable tiles only (flush 0 selects them)."""
    gemm(u, w, offsets, 0, out)


GEMM_PATHS = {"portable": _portable_gemm}
"""Every path this host supports, by name: ``path(u, w, offsets, flush, out)``."""
if "avx2" in supported_paths():
    GEMM_PATHS["avx2"] = gemm


def _vnni_gemm(u, w, offsets, flush, out) -> None:
    """The same GEMM on the ``vpdpbusd`` tiles (exact for any codes, so ``flush`` is unused)."""
    gemm(u, w, offsets, VNNI_FLUSH, out)


if HAS_VNNI:
    GEMM_PATHS["vnni"] = _vnni_gemm


def _vnni512_gemm(u, w, offsets, flush, out) -> None:
    """The same GEMM on the 64-byte ``vpdpbusd`` tiles (``flush`` is unused)."""
    gemm(u, w, offsets, VNNI512_FLUSH, out)


if HAS_VNNI512:
    GEMM_PATHS["vnni512"] = _vnni512_gemm
