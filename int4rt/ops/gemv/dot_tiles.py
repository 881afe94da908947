"""Register-tiled uint8 × int8 dot products over padded rows (docs/ARITHMETIC.md §7.3, §7.4).

A *tile* computes ``out[b0 + f, n0 + r] = Σ_k u[b0 + f, k] · w[n0 + r, k]`` for F activation
rows and R weight rows at once, over rows padded to a multiple of 32 bytes (the layout of
:mod:`int4rt.ops.gemv.weight_layout`). Each loaded 32-byte chunk is reused by the other
operand's rows held in registers.

The AVX2 tiles multiply with ``vpmaddubsw`` (adjacent products summed in int16) and keep
adding those pair sums in int16 lanes for ``flush`` chunks before one ``vpmaddwd`` widens them
to int32; ``flush_period`` gives the largest ``flush`` for which no lane can leave int16
(§7.4), so the integers equal the portable tiles' exactly. Every tile takes the same
arguments ``(u, w, b0, n0, n_chunks, flush, out)``; the portable ones ignore ``flush``.
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
TILE_SHAPES = ((4, 2), (1, 4), (1, 2), (4, 1), (1, 1))
"""(activation rows F, weight rows R) of the tiles every path provides."""


def flush_period(max_abs_weight: int, max_code: int) -> int:
    """Chunks whose pair sums one int16 lane may accumulate exactly; 0 if not even one.

    A lane adds one ``vpmaddubsw`` pair per chunk, each at most ``2 · max|w| · max(u)`` in
    magnitude, so ``m`` chunks are exact while ``m · 2 · max|w| · max(u) ≤ 32767`` (§7.4).
    """
    per_chunk = 2 * max_abs_weight * max_code
    return INT16_MAX // per_chunk if per_chunk else 1 << 30


def _make_avx2_tile(rows_f: int, rows_r: int):
    """An intrinsic for one F × R tile on AVX2 (see the module docstring)."""

    @intrinsic
    def tile(typingctx, u, w, b0, n0, n_chunks, flush, out):
        if not all(isinstance(a, types.Array) and a.layout == "C" and a.ndim == 2
                   for a in (u, w, out)):
            return None
        sig = types.void(u, w, b0, n0, n_chunks, flush, out)

        def codegen(context, builder, signature, args):
            u_arr = context.make_array(signature.args[0])(context, builder, args[0])
            w_arr = context.make_array(signature.args[1])(context, builder, args[1])
            out_arr = context.make_array(signature.args[6])(context, builder, args[6])
            i64 = ir.IntType(64)
            i8x32 = ir.VectorType(ir.IntType(8), CHUNK)
            i16x16 = ir.VectorType(ir.IntType(16), 16)
            i32x8 = ir.VectorType(ir.IntType(32), 8)
            module = builder.module
            maddubs = cgutils.get_or_insert_function(
                module, ir.FunctionType(i16x16, [i8x32, i8x32]), "llvm.x86.avx2.pmadd.ub.sw")
            maddwd = cgutils.get_or_insert_function(
                module, ir.FunctionType(i32x8, [i16x16, i16x16]), "llvm.x86.avx2.pmadd.wd")
            reduce_add = cgutils.get_or_insert_function(
                module, ir.FunctionType(ir.IntType(32), [i32x8]), "llvm.vector.reduce.add.v8i32")
            b0_v = builder.sext(args[2], i64) if args[2].type != i64 else args[2]
            n0_v = builder.sext(args[3], i64) if args[3].type != i64 else args[3]
            chunks = builder.sext(args[4], i64) if args[4].type != i64 else args[4]
            flush_v = builder.sext(args[5], i64) if args[5].type != i64 else args[5]
            u_ptr = builder.bitcast(u_arr.data, i8x32.as_pointer())
            w_ptr = builder.bitcast(w_arr.data, i8x32.as_pointer())
            u_base = [builder.mul(builder.add(b0_v, ir.Constant(i64, f)), chunks)
                      for f in range(rows_f)]
            w_base = [builder.mul(builder.add(n0_v, ir.Constant(i64, r)), chunks)
                      for r in range(rows_r)]
            zero16 = ir.Constant(i16x16, [0] * 16)
            ones = ir.Constant(i16x16, [1] * 16)
            acc32 = [[cgutils.alloca_once_value(builder, ir.Constant(i32x8, [0] * 8))
                      for _ in range(rows_r)] for _ in range(rows_f)]
            acc16 = [[cgutils.alloca_once_value(builder, zero16)
                      for _ in range(rows_r)] for _ in range(rows_f)]

            def widen():
                for f in range(rows_f):
                    for r in range(rows_r):
                        wide = builder.call(maddwd, [builder.load(acc16[f][r]), ones])
                        builder.store(builder.add(builder.load(acc32[f][r]), wide), acc32[f][r])
                        builder.store(zero16, acc16[f][r])

            n_blocks = builder.udiv(
                builder.add(chunks, builder.sub(flush_v, ir.Constant(i64, 1))), flush_v)
            with cgutils.for_range(builder, n_blocks) as block:
                start = builder.mul(block.index, flush_v)
                stop = builder.add(start, flush_v)
                over = builder.icmp_signed(">", stop, chunks)
                stop = builder.select(over, chunks, stop)
                with cgutils.for_range_slice(builder, start, stop, ir.Constant(i64, 1),
                                             intp=i64) as (c, _):
                    w_vecs = [builder.load(builder.gep(w_ptr, [builder.add(w_base[r], c)]),
                                           align=1) for r in range(rows_r)]
                    for f in range(rows_f):
                        u_vec = builder.load(builder.gep(u_ptr, [builder.add(u_base[f], c)]),
                                             align=1)
                        for r in range(rows_r):
                            pairs = builder.call(maddubs, [u_vec, w_vecs[r]])
                            builder.store(builder.add(builder.load(acc16[f][r]), pairs),
                                          acc16[f][r])
                widen()
            n_cols = builder.sext(cgutils.unpack_tuple(builder, out_arr.shape)[1], i64)
            for f in range(rows_f):
                row = builder.mul(builder.add(b0_v, ir.Constant(i64, f)), n_cols)
                for r in range(rows_r):
                    index = builder.add(row, builder.add(n0_v, ir.Constant(i64, r)))
                    total = builder.call(reduce_add, [builder.load(acc32[f][r])])
                    builder.store(total, builder.gep(out_arr.data, [index]))
            return context.get_dummy_value()

        return sig, codegen

    return tile


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
PORTABLE_TILES = {shape: _make_portable_tile(*shape) for shape in TILE_SHAPES}
