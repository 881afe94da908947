"""Register-tiled uint8 × int8 dot products over padded rows (docs/ARITHMETIC.md §7.3, §7.4).

A *tile* computes ``out[b0 + f, n0 + r] = Σ_k u[b0 + f, k] · w[n0 + r, k]`` for F activation
rows and R weight rows at once, over rows padded to a multiple of 32 bytes (the layout of
:mod:`int4rt.ops.gemv.weight_layout`). Each loaded 32-byte chunk is reused by the other
operand's rows held in registers.

The AVX2 tiles multiply with ``vpmaddubsw`` (adjacent products summed in int16) and keep
adding those pair sums in int16 lanes for ``flush`` chunks before one ``vpmaddwd`` widens them
to int32; ``flush_period`` gives the largest ``flush`` for which no lane can leave int16
(§7.4), so the integers equal the portable tiles' exactly. The VNNI tiles add four products
straight into int32 lanes with ``vpdpbusd``, on 32-byte registers (``vnni``) or on 64-byte
registers that take two chunks at once (``vnni512``, AVX-512 VNNI). Every tile takes the same
arguments ``(u, w, b0, n0, n_chunks, flush, out)``; the portable and VNNI ones ignore
``flush``.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

CHUNK = 32  # bytes per AVX2 register
INT16_MAX = 32767
TILE_SHAPES = ((2, 4), (1, 4), (2, 1), (1, 1))
"""(activation rows F, weight rows R) of the tiles every path provides."""


def flush_period(max_abs_weight: int, max_code: int) -> int:
    """Chunks whose pair sums one int16 lane may accumulate exactly; 0 if not even one.

    A lane adds one ``vpmaddubsw`` pair per chunk, each at most ``2 · max|w| · max(u)`` in
    magnitude, so ``m`` chunks are exact while ``m · 2 · max|w| · max(u) ≤ 32767`` (§7.4).
    """
    per_chunk = 2 * max_abs_weight * max_code
    return INT16_MAX // per_chunk if per_chunk else 1 << 30


I64 = ir.IntType(64)
I8X32 = ir.VectorType(ir.IntType(8), CHUNK)
I16X16 = ir.VectorType(ir.IntType(16), 16)
I32X8 = ir.VectorType(ir.IntType(32), 8)
I8X64 = ir.VectorType(ir.IntType(8), 2 * CHUNK)
I16X32 = ir.VectorType(ir.IntType(16), 32)
I32X16 = ir.VectorType(ir.IntType(32), 16)
I32X4 = ir.VectorType(ir.IntType(32), 4)


def _as_i64(builder: ir.IRBuilder, value: ir.Value) -> ir.Value:
    return builder.sext(value, I64) if value.type != I64 else value


def avx2_functions(module: ir.Module) -> tuple:
    """``vpmaddubsw`` and ``vpmaddwd``, declared in ``module``."""
    maddubs = cgutils.get_or_insert_function(
        module, ir.FunctionType(I16X16, [I8X32, I8X32]), "llvm.x86.avx2.pmadd.ub.sw")
    maddwd = cgutils.get_or_insert_function(
        module, ir.FunctionType(I32X8, [I16X16, I16X16]), "llvm.x86.avx2.pmadd.wd")
    return maddubs, maddwd


def concat(builder: ir.IRBuilder, low: ir.Value, high: ir.Value) -> ir.Value:
    """Two 32-byte vectors as one 64-byte vector, ``low`` in bytes 0–31."""
    return builder.shuffle_vector(low, high, ir.Constant(ir.VectorType(ir.IntType(32), 64),
                                                         list(range(64))))


def _vnni512_chunks(builder, operands, chunks, rows_f, rows_r, acc32):
    """``vpdpbusd`` on 64-byte registers into ``acc32`` (F × R allocas of int32 × 16): chunk
    pairs (c, c + 1) as ``operands(c, True)``, then an odd last chunk as ``operands(c, False)``
    with zero upper halves (zero codes: products 0, §7.4).
    """
    dpbusd = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(I32X16, [I32X16, I32X16, I32X16]),
        "llvm.x86.avx512.vpdpbusd.512")
    zero = ir.Constant(I8X32, [0] * CHUNK)

    def add(c, wide):
        pairs = operands(c, wide)
        for f in range(rows_f):
            for r in range(rows_r):
                total = builder.load(acc32[f][r])
                for a, b in pairs[f][r]:
                    if not wide:
                        a, b = concat(builder, a, zero), concat(builder, b, zero)
                    total = builder.call(dpbusd, [total, builder.bitcast(a, I32X16),
                                                  builder.bitcast(b, I32X16)])
                builder.store(total, acc32[f][r])

    two = ir.Constant(I64, 2)
    with cgutils.for_range(builder, builder.udiv(chunks, two)) as pair:
        add(builder.mul(pair.index, two), True)
    last = builder.sub(chunks, ir.Constant(I64, 1))
    with builder.if_then(builder.icmp_unsigned("!=", builder.urem(chunks, two),
                                               ir.Constant(I64, 0))):
        add(last, False)


def make_avx2_tile(rows_f: int, rows_r: int, chunk_operands, kind: str = "avx2"):
    """An intrinsic ``tile(u, w, b0, n0, n_chunks, flush, out)`` for F × R outputs.

    ``chunk_operands(builder, u_ptr, w_ptr, b0, n0, n_chunks)`` emits the set-up of one
    operand layout and returns ``operands(c, wide)``, which emits chunk c's 32-byte operand
    vectors (``wide``: the 64-byte vectors of chunks c and c + 1, lane for lane) as an F × R
    nested list of lists of (unsigned, signed) pairs. With ``kind`` ``avx2`` each pair goes
    through ``vpmaddubsw``; the pair sums are added into int16 lanes that are widened to int32
    every ``flush`` chunks (``vpmaddwd`` with ones, §7.4). With ``vnni`` each pair goes
    through ``vpdpbusd``, which adds four products straight into int32 lanes (``flush`` is not
    used); ``vnni512`` does the same on 64-byte registers, two chunks per instruction. Each
    lane total is stored to ``out[b0 + f, n0 + r]``.
    """
    vnni = kind == "vnni"
    wide_lanes = kind == "vnni512"

    @intrinsic
    def tile(typingctx, u, w, b0, n0, n_chunks, flush, out):
        if not all(isinstance(a, types.Array) and a.layout == "C" and a.ndim == 2
                   for a in (u, w, out)):
            return None
        sig = types.void(u, w, b0, n0, n_chunks, flush, out)

        def codegen(context, builder, signature, args):
            u_arr, w_arr, out_arr = (context.make_array(signature.args[i])(context, builder,
                                                                            args[i])
                                     for i in (0, 1, 6))
            b0_v, n0_v, chunks, flush_v = (_as_i64(builder, a) for a in args[2:6])
            operands = chunk_operands(builder, builder.bitcast(u_arr.data, I8X32.as_pointer()),
                                      builder.bitcast(w_arr.data, I8X32.as_pointer()), b0_v,
                                      n0_v, chunks)
            lanes = I32X16 if wide_lanes else I32X8
            acc32 = [[cgutils.alloca_once_value(builder, ir.Constant(lanes, [0] * lanes.count))
                      for _ in range(rows_r)] for _ in range(rows_f)]
            if wide_lanes:
                _vnni512_chunks(builder, operands, chunks, rows_f, rows_r, acc32)
            else:
                _ymm_chunks(builder, operands, chunks, flush_v, rows_f, rows_r, acc32, vnni)
            reduce_add = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.IntType(32), [lanes]),
                f"llvm.vector.reduce.add.v{lanes.count}i32")
            n_cols = _as_i64(builder, cgutils.unpack_tuple(builder, out_arr.shape)[1])
            for f in range(rows_f):
                row = builder.mul(builder.add(b0_v, ir.Constant(I64, f)), n_cols)
                totals = [builder.load(acc32[f][r]) for r in range(rows_r)]
                if rows_r == 4:  # four lane totals at once, one 16-byte store
                    at = builder.gep(out_arr.data, [builder.add(row, n0_v)])
                    builder.store(_four_totals(builder, totals),
                                  builder.bitcast(at, I32X4.as_pointer()), align=4)
                    continue
                for r in range(rows_r):
                    index = builder.add(row, builder.add(n0_v, ir.Constant(I64, r)))
                    total = builder.call(reduce_add, [totals[r]])
                    builder.store(total, builder.gep(out_arr.data, [index]))
            return context.get_dummy_value()

        return sig, codegen

    return tile


def _four_totals(builder: ir.IRBuilder, vectors: list) -> ir.Value:
    """The lane totals of four int32 vectors as one 4-lane vector, by a transposing tree:
    ``vpunpck{l,h}dq`` then ``vpunpck{l,h}qdq`` pairs and adds leave [A, B, C, D] partial
    totals in every 16-byte block, which halving adds then sum. Wrapping int32 adds in another
    order: the same totals (§7.1)."""
    count = vectors[0].type.count

    def shuffle(x, y, pattern):
        mask = [source * count + 4 * block + lane for block in range(count // 4)
                for source, lane in pattern]
        return builder.shuffle_vector(x, y, ir.Constant(ir.VectorType(ir.IntType(32),
                                                                      len(mask)), mask))

    def fold(x, y, low, high):
        return builder.add(shuffle(x, y, low), shuffle(x, y, high))

    dwords = ((0, 0), (1, 0), (0, 1), (1, 1)), ((0, 2), (1, 2), (0, 3), (1, 3))
    qwords = ((0, 0), (0, 1), (1, 0), (1, 1)), ((0, 2), (0, 3), (1, 2), (1, 3))
    a, b, c, d = vectors
    totals = fold(fold(a, b, *dwords), fold(c, d, *dwords), *qwords)
    while totals.type.count > 4:
        half = totals.type.count // 2
        low, high = (ir.Constant(ir.VectorType(ir.IntType(32), half), list(range(k, k + half)))
                     for k in (0, half))
        totals = builder.add(builder.shuffle_vector(totals, totals, low),
                             builder.shuffle_vector(totals, totals, high))
    return totals


def _ymm_chunks(builder, operands, chunks, flush, rows_f, rows_r, acc32, vnni):
    """The chunks on 32-byte registers into ``acc32`` (F × R allocas of int32 × 8): with
    ``vnni`` one ``vpdpbusd`` per pair; else ``vpmaddubsw`` pair sums in int16 lanes, widened
    (``vpmaddwd`` with ones) every ``flush`` chunks (§7.4).
    """
    maddubs, maddwd = avx2_functions(builder.module)
    dpbusd = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(I32X8, [I32X8, I32X8, I32X8]),
        "llvm.x86.avx512.vpdpbusd.256") if vnni else None
    if vnni:
        flush = builder.add(chunks, ir.Constant(I64, 1))  # one block, no int16 lanes
    zero16 = ir.Constant(I16X16, [0] * 16)
    ones = ir.Constant(I16X16, [1] * 16)
    acc16 = [[cgutils.alloca_once_value(builder, zero16)
              for _ in range(rows_r)] for _ in range(rows_f)]

    def add_chunk(c):
        pairs = operands(c, False)
        for f in range(rows_f):
            for r in range(rows_r):
                if vnni:
                    total = builder.load(acc32[f][r])
                    for a, b in pairs[f][r]:
                        total = builder.call(dpbusd, [total, builder.bitcast(a, I32X8),
                                                      builder.bitcast(b, I32X8)])
                    builder.store(total, acc32[f][r])
                    continue
                total = builder.load(acc16[f][r])
                for a, b in pairs[f][r]:
                    total = builder.add(total, builder.call(maddubs, [a, b]))
                builder.store(total, acc16[f][r])

    n_blocks = builder.udiv(builder.add(chunks, builder.sub(flush, ir.Constant(I64, 1))), flush)
    with cgutils.for_range(builder, n_blocks) as block:
        start = builder.mul(block.index, flush)
        stop = builder.add(start, flush)
        stop = builder.select(builder.icmp_signed(">", stop, chunks), chunks, stop)
        with cgutils.for_range_slice(builder, start, stop, ir.Constant(I64, 1),
                                     intp=I64) as (c, _):
            add_chunk(c)
        if not vnni:
            for f in range(rows_f):
                for r in range(rows_r):
                    wide = builder.call(maddwd, [builder.load(acc16[f][r]), ones])
                    builder.store(builder.add(builder.load(acc32[f][r]), wide), acc32[f][r])
                    builder.store(zero16, acc16[f][r])


def _make_avx2_tile(rows_f: int, rows_r: int, kind: str = "avx2"):
    """The F × R tile over int8 weights: chunk c of each row is one 32-byte load, chunks c and
    c + 1 one 64-byte load (§7.4).
    """

    def chunk_operands(builder, u_ptr, w_ptr, b0, n0, chunks):
        u_base = [builder.mul(builder.add(b0, ir.Constant(I64, f)), chunks)
                  for f in range(rows_f)]
        w_base = [builder.mul(builder.add(n0, ir.Constant(I64, r)), chunks)
                  for r in range(rows_r)]

        def load(ptr, at, wide):
            address = builder.gep(ptr, [at])
            if wide:
                address = builder.bitcast(address, I8X64.as_pointer())
            return builder.load(address, align=1)

        def operands(c, wide):
            w_vecs = [load(w_ptr, builder.add(w_base[r], c), wide) for r in range(rows_r)]
            out = []
            for f in range(rows_f):
                u_vec = load(u_ptr, builder.add(u_base[f], c), wide)
                out.append([[(u_vec, w_vecs[r])] for r in range(rows_r)])
            return out

        return operands

    return make_avx2_tile(rows_f, rows_r, chunk_operands, kind)


def _make_portable_tile(rows_f: int, rows_r: int):
    """A plain-loop F × R tile with the AVX2 tiles' signature; exact for any codes."""

    @nb.njit(inline="always")
    def tile(u, w, b0, n0, n_chunks, flush, out):
        width = n_chunks * CHUNK
        for f in range(rows_f):
            u_row = u[b0 + f]
            for r in range(rows_r):
                w_row = w[n0 + r]
                acc = np.int32(0)
                for k in range(width):
                    acc += np.int32(u_row[k]) * np.int32(w_row[k])
                out[b0 + f, n0 + r] = np.int32(acc)

    return tile


AVX2_TILES = {shape: _make_avx2_tile(*shape) for shape in TILE_SHAPES}
VNNI_TILES = {shape: _make_avx2_tile(*shape, "vnni") for shape in TILE_SHAPES}
"""``vpdpbusd`` tiles; compiled only where the host has VNNI (``dispatch.HAS_VNNI``)."""
VNNI512_TILES = {shape: _make_avx2_tile(*shape, "vnni512") for shape in TILE_SHAPES}
"""``vpdpbusd`` tiles on 64-byte registers; compiled only where the host has AVX-512 VNNI
(``dispatch.HAS_VNNI512``)."""
PORTABLE_TILES = {shape: _make_portable_tile(*shape) for shape in TILE_SHAPES}
