"""GEMV over weights held as offset nibbles, half the bytes of §7.4 (ARITHMETIC.md §7.5).

A recurrent step multiplies one row of hidden codes (or a search step's few rows) by the same
weights at every step, so its speed is that of streaming the weights through the cache. For
4-bit weight codes ``w ∈ [−8, 7]`` this layout holds ``w + 8 ∈ [0, 15]`` two per byte, so a
4H × H layer of the paper model (2560 × 640) takes 800 KiB instead of 1.6 MiB and stays in a
1 MiB L2, and a search step of two 2 × 1024 LMs streams 13 MB instead of 26 MB.

- **Layout (made once per layer at load time; the file format of §5 is unchanged).** Rows are
  padded with zero codes to ``Kq``, a multiple of 64 codes. Packed chunk c of row n is 32 bytes:
  byte j holds ``w[n, 64c + j] + 8`` in its low nibble and ``w[n, 64c + 32 + j] + 8`` in its
  high nibble. Activations are unsigned codes ``u`` (§7.3) padded to ``Kq`` with zeros.
- **Kernel.** A chunk gives two 32-byte vectors of nibbles (mask; shift by 4, mask), each
  multiplied with its 32 codes by ``vpmaddubsw``; both pair sums are added to int16 lanes,
  widened every ``flush`` chunks. Then ``Σ_k u·w = Σ_k u·(w + 8) − 8·Σ_k u``: the kernel
  subtracts ``8·Σ_k u`` once per activation row. On the ``vnni`` path ``vpdpbusd`` adds the
  products straight into int32 lanes instead (``flush`` = ``VNNI_FLUSH``); on ``vnni512`` it
  does so on 64-byte registers, two packed chunks per instruction (``VNNI512_FLUSH``).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numba as nb
import numpy as np
from llvmlite import ir
from numba.core import cgutils

from int4rt.layers import ActQuant, QLinear
from int4rt.ops.gemv.dispatch import (
    ACTIVE_PATH,
    HAS_VNNI,
    HAS_VNNI512,
    VNNI512_FLUSH,
    VNNI_FLUSH,
    kernel_flush,
    path_tile,
)
from int4rt.ops.gemv.dot_tiles import (
    CHUNK,
    I8X32,
    I8X64,
    I16X16,
    I16X32,
    I64,
    INT16_MAX,
    concat,
    make_avx2_tile,
)

CODES_PER_CHUNK = 2 * CHUNK  # 64 codes in one 32-byte packed chunk
NIBBLE_OFFSET = 8  # stored nibble = w + 8 for w in [−8, 7]
NIBBLE_MAX = 15
PREFETCH_CHUNKS = 512
"""How far ahead in the weight stream (in 32-byte chunks: 16 KiB) a tile asks for the bytes
it will need next, into L2 (``prefetcht1``). A search step streams the predictor's and both
LMs' layers (13–15 MB) one after the other, more than this host's share of L3 keeps, so they
come from memory; the hardware prefetchers alone left it latency-bound (≈3× slower)."""


def packed_flush_period(max_code: int) -> int:
    """Packed chunks an int16 lane may accumulate exactly (§7.5).

    Every product ``u·(w + 8)`` is in [0, 15·max(u)]; a lane adds four of them per chunk (two
    ``vpmaddubsw`` pairs), so ``m`` chunks are exact while ``m · 4 · 15 · max(u) ≤ 32767``.
    """
    per_chunk = 4 * NIBBLE_MAX * max_code
    return INT16_MAX // per_chunk if per_chunk else 1 << 30


def packed_width(n_in: int) -> int:
    """K rounded up to a multiple of 64 codes (at least 64)."""
    return max(CODES_PER_CHUNK, -(-n_in // CODES_PER_CHUNK) * CODES_PER_CHUNK)


def pack_offset_nibbles(weight: np.ndarray) -> np.ndarray:
    """int8 codes [N, K] in [−8, 7] to uint8 [N, Kq/2] in the layout above (zero padding)."""
    n_out, n_in = weight.shape
    width = packed_width(n_in)
    codes = np.full((n_out, width), NIBBLE_OFFSET, dtype=np.uint8)
    codes[:, :n_in] = weight.astype(np.int16) + NIBBLE_OFFSET
    chunks = codes.reshape(n_out, width // CODES_PER_CHUNK, 2, CHUNK)
    packed = chunks[:, :, 0, :] | (chunks[:, :, 1, :] << 4)
    return np.ascontiguousarray(packed.reshape(n_out, width // 2))


@dataclass(frozen=True, eq=False)
class PackedLayout:
    """One layer's offset-nibble weights and the int16 flush period for its codes."""

    weight: np.ndarray
    """uint8 [N, Kq/2]; empty ([0, 32]) when the layer has no packed form."""
    flush: int
    """Packed chunks per widening, ``VNNI_FLUSH`` for the VNNI tiles; 0 when the layer has no
    packed form."""


NO_PACKED = PackedLayout(np.zeros((0, CHUNK), np.uint8), 0)
_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def packed_layout(layer: QLinear, fmt: ActQuant) -> PackedLayout:
    """The packed form of ``layer`` fed with codes of ``fmt``, built on first use and kept.

    Only 4-bit weight codes within [−8, 7] with a positive flush period, on the AVX2 or a VNNI
    path, have one (its flush is ``kernel_flush``'s); everything else gets
    :data:`NO_PACKED` (the caller keeps the §7.4 kernels).
    """
    per_layer = _CACHE.setdefault(layer, {})
    layout = per_layer.get(fmt)
    if layout is None:
        flush = packed_flush_period(fmt.qmax - fmt.qmin)
        chosen = kernel_flush(flush)  # 0 on the portable path
        weight = layer.weight
        usable = (chosen != 0 and flush > 0 and weight.size > 0
                  and int(weight.min()) >= -NIBBLE_OFFSET
                  and int(weight.max()) <= NIBBLE_MAX - NIBBLE_OFFSET)
        layout = (PackedLayout(pack_offset_nibbles(weight), chosen) if usable
                  else NO_PACKED)
        per_layer[fmt] = layout
    return layout


def _prefetch_l2(builder: ir.IRBuilder, address: ir.Value) -> None:
    """``prefetcht1 [address]``: a hint that never faults, so it may point past the array."""
    prefetch = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(ir.VoidType(), [ir.IntType(8).as_pointer()]
                                        + [ir.IntType(32)] * 3), "llvm.prefetch.p0")
    i32 = ir.IntType(32)
    builder.call(prefetch, [builder.bitcast(address, ir.IntType(8).as_pointer()),
                            ir.Constant(i32, 0), ir.Constant(i32, 2), ir.Constant(i32, 1)])


def _make_packed_tile(rows_f: int, rows_r: int, kind: str = "avx2"):
    """The F × R tile summing ``u · (w + 8)`` over offset nibbles (the layout above): each
    packed chunk of the R weight rows is loaded and unpacked once for the F activation rows.

    Wide operands (``vnni512``) take packed chunks c and c + 1 in one 64-byte load: its low
    nibbles are codes [64c, 64c + 32) and [64c + 64, 64c + 96), its high nibbles the other two
    quarters, so the codes are gathered to match (two 32-byte loads each).
    """

    def chunk_operands(builder, u_ptr, w_ptr, b0, n0, chunks):
        two = ir.Constant(I64, 2)
        u_base = [builder.mul(builder.add(b0, ir.Constant(I64, f)), builder.mul(chunks, two))
                  for f in range(rows_f)]
        w_base = [builder.mul(builder.add(n0, ir.Constant(I64, r)), chunks)
                  for r in range(rows_r)]
        ahead = ir.Constant(I64, PREFETCH_CHUNKS)

        def u_chunk(at, k):
            return builder.load(builder.gep(u_ptr, [builder.add(at, ir.Constant(I64, k))]),
                                align=1)

        def operands(c, wide):
            vector, halves = (I8X64, I16X32) if wide else (I8X32, I16X16)
            low_nibbles = ir.Constant(vector, [NIBBLE_MAX] * vector.count)
            four = ir.Constant(halves, [4] * halves.count)
            weights = []
            for r in range(rows_r):
                _prefetch_l2(builder, builder.gep(w_ptr, [builder.add(w_base[r],
                                                                      builder.add(ahead, c))]))
                address = builder.gep(w_ptr, [builder.add(w_base[r], c)])
                packed = builder.load(builder.bitcast(address, vector.as_pointer()), align=1)
                w_low = builder.and_(packed, low_nibbles)
                shifted = builder.lshr(builder.bitcast(packed, halves), four)
                weights.append((w_low, builder.and_(builder.bitcast(shifted, vector),
                                                    low_nibbles)))
            out = []
            for f in range(rows_f):
                u_at = builder.add(u_base[f], builder.mul(c, two))
                if wide:
                    u_low = concat(builder, u_chunk(u_at, 0), u_chunk(u_at, 2))
                    u_high = concat(builder, u_chunk(u_at, 1), u_chunk(u_at, 3))
                else:
                    u_low, u_high = u_chunk(u_at, 0), u_chunk(u_at, 1)
                out.append([[(u_low, w_low), (u_high, w_high)] for w_low, w_high in weights])
            return out

        return operands

    return make_avx2_tile(rows_f, rows_r, chunk_operands, kind)


def _make_portable_packed_tile(rows_f: int, rows_r: int):
    """A plain-loop F × R tile summing ``u · (w + 8)`` over the layout above (flush 0;
    ARITHMETIC.md §7.5, "Portable")."""

    @nb.njit(inline="always")
    def tile(u, wp, b0, n0, n_chunks, flush, out):
        for f in range(rows_f):
            u_row = u[b0 + f]
            for r in range(rows_r):
                w_row = wp[n0 + r]
                acc = np.int32(0)
                for c in range(n_chunks):
                    for j in range(CHUNK):
                        byte = np.int32(w_row[c * CHUNK + j])
                        acc += np.int32(u_row[c * CODES_PER_CHUNK + j]) * (byte & NIBBLE_MAX)
                        acc += np.int32(u_row[c * CODES_PER_CHUNK + CHUNK + j]) * (byte >> 4)
                out[b0 + f, n0 + r] = np.int32(acc)

    return tile


def _packed_tile(rows_f: int, rows_r: int):
    """The F × R packed tile of every path; the plain-loop one for flush 0."""
    zmm, wide, fast = (_make_packed_tile(rows_f, rows_r, kind)
                       for kind in ("vnni512", "vnni", "avx2"))
    return path_tile(zmm, wide, fast, _make_portable_packed_tile(rows_f, rows_r))


_P24, _P14, _P21, _P11 = (_packed_tile(*shape) for shape in ((2, 4), (1, 4), (2, 1), (1, 1)))


@nb.njit(nogil=True, cache=True)
def gemv_packed(u, wp, offsets, flush, out):
    """``out[b, n] = Σ_k u[b, k]·w[n, k] − offsets[n]`` in int32 from packed ``wp`` (§7.5).

    ``u`` [B, Kq] uint8 codes, zero in the padding. Every four weight rows are streamed once
    for all activation rows, two at a time (2 × 4 tiles; a last odd row takes 1 × 4), as the
    blocked tiles of §7.4 do: a search step's few rows share each weight load.
    """
    chunks = wp.shape[1] // CHUNK
    n_rows, n_frames = wp.shape[0], u.shape[0]
    n0 = 0
    while n0 < n_rows:
        quad = n0 + 4 <= n_rows
        b0 = 0
        while b0 + 2 <= n_frames:
            if quad:
                _P24(u, wp, b0, n0, chunks, flush, out)
            else:
                _P21(u, wp, b0, n0, chunks, flush, out)
            b0 += 2
        if b0 < n_frames:
            if quad:
                _P14(u, wp, b0, n0, chunks, flush, out)
            else:
                _P11(u, wp, b0, n0, chunks, flush, out)
        n0 += 4 if quad else 1
    for b in range(n_frames):
        code_sum = np.int64(0)
        for k in range(u.shape[1]):
            code_sum += u[b, k]
        for n in range(n_rows):
            out[b, n] = out[b, n] - NIBBLE_OFFSET * code_sum - offsets[n]


def _vnni_gemv_packed(u, wp, offsets, flush, out) -> None:
    """The same GEMV on the ``vpdpbusd`` tiles (no int16 lanes, so ``flush`` is unused)."""
    gemv_packed(u, wp, offsets, VNNI_FLUSH, out)


def _vnni512_gemv_packed(u, wp, offsets, flush, out) -> None:
    """The same GEMV on the 64-byte ``vpdpbusd`` tiles (``flush`` is unused)."""
    gemv_packed(u, wp, offsets, VNNI512_FLUSH, out)


def _portable_gemv_packed(u, wp, offsets, flush, out) -> None:
    """The same GEMV on the plain-loop tiles (flush 0 selects them)."""
    gemv_packed(u, wp, offsets, 0, out)


PACKED_PATHS = {"portable offset-nibble": _portable_gemv_packed}
"""The offset-nibble paths of §7.5 this host runs, ``path(u, wp, offsets, flush, out)`` (the
selftest and the tests check each)."""
if ACTIVE_PATH != "portable":
    PACKED_PATHS["avx2 offset-nibble"] = gemv_packed
    if HAS_VNNI:
        PACKED_PATHS["vnni offset-nibble"] = _vnni_gemv_packed
    if HAS_VNNI512:
        PACKED_PATHS["vnni512 offset-nibble"] = _vnni512_gemv_packed
