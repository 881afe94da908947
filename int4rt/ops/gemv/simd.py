"""Exact uint8 × int8 dot products, with an AVX2 fast path (docs/ARITHMETIC.md §7.3).

``dot_u8s8`` is the portable loop. ``dot_u8s8_pairs`` computes the same integer with AVX2's
``vpmaddubsw`` (pairs of products summed to int16, saturating) and ``vpmaddwd`` (to int32):
it is exact only when no pair sum can reach the int16 limits, i.e. when
``2 · max|b| · max(a) ≤ 32767`` (``pairs_exact``). Without AVX2 it is the portable loop.
"""

from __future__ import annotations

import llvmlite.binding as llvm_binding
import numba as nb
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils, config
from numba.extending import intrinsic

CHUNK = 32  # bytes per AVX2 register


def _host_has_avx2() -> bool:
    if config.CPU_NAME not in (None, "host"):
        return False
    return bool(llvm_binding.get_host_cpu_features().get("avx2", False))


HAS_AVX2 = _host_has_avx2()


def pairs_exact(max_abs_b: int, max_a: int) -> bool:
    """Whether ``dot_u8s8_pairs`` is exact: no int16 pair sum can saturate."""
    return 2 * max_abs_b * max_a <= 32767


@intrinsic
def _avx2_chunks(typingctx, a, b, n_chunks):
    """Σ a[k]·b[k] over the first 32·n_chunks bytes (a uint8, b int8), int32 lanes."""
    if not (isinstance(a, types.Array) and isinstance(b, types.Array)
            and a.layout == "C" and b.layout == "C"):
        return None
    sig = types.int32(a, b, n_chunks)

    def codegen(context, builder, signature, args):
        a_arr = context.make_array(signature.args[0])(context, builder, args[0])
        b_arr = context.make_array(signature.args[1])(context, builder, args[1])
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
        a_ptr = builder.bitcast(a_arr.data, i8x32.as_pointer())
        b_ptr = builder.bitcast(b_arr.data, i8x32.as_pointer())
        ones = ir.Constant(i16x16, [1] * 16)
        acc = cgutils.alloca_once_value(builder, ir.Constant(i32x8, [0] * 8))
        with cgutils.for_range(builder, args[2]) as loop:
            va = builder.load(builder.gep(a_ptr, [loop.index]), align=1)
            vb = builder.load(builder.gep(b_ptr, [loop.index]), align=1)
            pairs = builder.call(maddwd, [builder.call(maddubs, [va, vb]), ones])
            builder.store(builder.add(builder.load(acc), pairs), acc)
        return builder.call(reduce_add, [builder.load(acc)])

    return sig, codegen


@nb.njit(cache=True)
def dot_u8s8(a, b):
    """Σ a[k]·b[k] for uint8 a and int8 b of one length, in int32."""
    acc = np.int32(0)
    for k in range(a.size):
        acc += np.int32(a[k]) * np.int32(b[k])
    return np.int32(acc)


@nb.njit(cache=True)
def _dot_u8s8_avx2(a, b):
    chunks = a.size // CHUNK
    acc = _avx2_chunks(a, b, chunks)
    for k in range(chunks * CHUNK, a.size):
        acc += np.int32(a[k]) * np.int32(b[k])
    return np.int32(acc)


dot_u8s8_pairs = _dot_u8s8_avx2 if HAS_AVX2 else dot_u8s8
