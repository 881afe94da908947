"""Products with one weight row per 32-bit lane, over offset nibbles (ARITHMETIC.md §7.6).

The tiles of §7.4 and §7.5 give each weight row its own vector of partial sums and add its
lanes at the end. Here the weights are laid out so that lane r of a 64-byte vector belongs to
weight row 16g + r and the activation codes are broadcast to every lane, so 16 rows are summed
at once and no horizontal addition is needed: the recurrent product of an encoder direction
(one activation row, §8.2) and the encoder's input projections (all frames) on ``vnni512``.

- **Layout (made once per layer at load time; the file format of §5 is unchanged).** Rows are
  padded with zero codes to ``Kq`` (a multiple of 64, as in §7.5) and the row count to a
  multiple of 16 (``q = 8`` there: those rows are computed and dropped). Group g of 16 rows is
  ``Kq / 8`` blocks of 64 bytes; byte ``4r + i`` of block b holds ``q[16g + r, 8b + i]`` in bits
  0–3 and ``q[16g + r, 8b + 4 + i]`` in bits 4–7 (r ∈ [0, 16), i ∈ [0, 4)), ``q = w + 8``.
- **Kernel.** Per block, ``vpdpbusd`` multiplies the low nibbles (one mask) by codes
  ``u[8b .. 8b + 4)`` broadcast to all lanes and, into a second accumulator, the high nibbles
  masked in place (``16·q``, no shift) by ``u[8b + 4 .. 8b + 8)``; the nibbles are the unsigned
  operand and the codes the signed one, so codes must be ≤ 127. Lane r then holds
  ``Σ q·u`` of its row over the low halves and ``16·Σ q·u`` over the high halves; the row's sum
  is ``low + (high >> 4)`` (exact: a multiple of 16), less ``8·Σ u`` and the §7.3 constant.
  Several activation rows (four at a time) shift the low nibbles up as well and share one
  accumulator of ``16·Σ q·u`` per row and group.
"""

from __future__ import annotations

import weakref

import numba as nb
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from int4rt.layers import ActQuant, QLinear
from int4rt.ops.gemv.dispatch import HAS_VNNI512, VNNI512_FLUSH
from int4rt.ops.gemv.dot_tiles import I8X64, I32X16, I64
from int4rt.ops.gemv.packed_gemv import NIBBLE_MAX, NIBBLE_OFFSET, packed_layout, packed_width

LANES = 16
"""Weight rows per 64-byte vector (one per int32 lane)."""
BLOCK_CODES = 8
"""Codes per row in one 64-byte block (four in the low nibbles, four in the high)."""
GROUPS_PER_TILE = 4
"""Row groups one tile sums at once: eight independent ``vpdpbusd`` chains."""
MAX_CODE = 127
"""Largest activation code the kernel takes (the signed operand of ``vpdpbusd``)."""


def pack_lane_rows(weight: np.ndarray) -> np.ndarray:
    """int8 codes [N, K] in [−8, 7] to uint8 [ceil(N/16), Kq·8] in the layout above."""
    n_out, n_in = weight.shape
    width = packed_width(n_in)
    groups = -(-n_out // LANES)
    q = np.full((groups * LANES, width), NIBBLE_OFFSET, dtype=np.uint8)
    q[:n_out, :n_in] = weight.astype(np.int16) + NIBBLE_OFFSET
    halves = q.reshape(groups * LANES, width // BLOCK_CODES, 2, 4)  # [row, b, half, i]
    words = np.ascontiguousarray(halves[:, :, 0] | (halves[:, :, 1] << 4)).view(np.uint32)
    # one row's four bytes of block b are one word: [g, r, b] -> [g, b, r]
    lanes = words.reshape(groups, LANES, -1).transpose(0, 2, 1)
    return np.ascontiguousarray(lanes).view(np.uint8).reshape(groups, -1)


def lane_rows_sums(u: np.ndarray, lanes: np.ndarray, n_out: int) -> np.ndarray:
    """NumPy twin of the kernels' sums: ``Σ_k u[b, k]·w[n, k]`` (int64 [B, N]) of codes ``u``
    [B, Kq] from the packed ``lanes``, low and high halves as the kernels add them (§7.6).
    """
    groups = lanes.shape[0]
    blocks = lanes.reshape(groups, -1, LANES, 4).astype(np.int64)  # [g, b, r, i]
    codes = u.astype(np.int64).reshape(u.shape[0], -1, 2, 4)  # [f, b, half, i]
    low = np.einsum("gbri,fbi->fgr", blocks & NIBBLE_MAX, codes[:, :, 0])
    high = np.einsum("gbri,fbi->fgr", blocks & (NIBBLE_MAX << 4), codes[:, :, 1])
    sums = low + (high >> 4) - NIBBLE_OFFSET * u.astype(np.int64).sum(axis=1)[:, None, None]
    return sums.reshape(u.shape[0], -1)[:, :n_out]


def _make_tile(frames: int, groups: int):
    """An intrinsic ``tile(u, lanes, b0, g0, out)``: for activation rows ``b0 .. b0 + frames``
    of ``u`` [B, Kq] (uint8) and weight rows ``16·g0 .. 16·(g0 + groups)`` of ``lanes``, the
    sums ``Σ q·u`` into ``out`` [B, ≥ 16·(g0 + groups)] (int32), without the ``8·Σ u``
    correction. One row keeps the low and high halves in two accumulators (two chains per
    group); several rows shift the low nibbles up too (``16·q``) so that each (row, group)
    needs one accumulator, shifted back by 4 at the end (§7.6).
    """
    split = frames == 1

    @intrinsic
    def tile(typingctx, u, lanes, b0, g0, out):
        if not all(isinstance(a, types.Array) and a.layout == "C" and a.ndim == 2
                   for a in (u, lanes, out)):
            return None
        sig = types.void(u, lanes, b0, g0, out)

        def codegen(context, builder, signature, args):
            u_arr, w_arr, out_arr = (context.make_array(signature.args[i])(context, builder,
                                                                            args[i])
                                     for i in (0, 1, 4))
            b0_v, g0_v = (builder.sext(a, I64) if a.type != I64 else a for a in args[2:4])
            i32 = ir.IntType(32)
            dpbusd = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(I32X16, [I32X16, I32X16, I32X16]),
                "llvm.x86.avx512.vpdpbusd.512")
            u_words = builder.udiv(cgutils.unpack_tuple(builder, u_arr.shape)[1],
                                   ir.Constant(I64, 4))
            out_rows = builder.udiv(cgutils.unpack_tuple(builder, out_arr.shape)[1],
                                    ir.Constant(I64, LANES))
            codes = builder.bitcast(u_arr.data, i32.as_pointer())
            blocks_ptr = builder.bitcast(w_arr.data, I8X64.as_pointer())
            n_blocks = builder.udiv(cgutils.unpack_tuple(builder, w_arr.shape)[1],
                                    ir.Constant(I64, 64))
            zero = ir.Constant(I32X16, [0] * LANES)
            acc = [[[cgutils.alloca_once_value(builder, zero) for _ in range(1 + split)]
                    for _ in range(groups)] for _ in range(frames)]
            low_mask, high_mask = (ir.Constant(I8X64, [m] * 64)
                                   for m in (NIBBLE_MAX, NIBBLE_MAX << 4))
            splat = ir.Constant(ir.VectorType(i32, LANES), [0] * LANES)
            undef = ir.Constant(I32X16, ir.Undefined)
            four16 = ir.Constant(ir.VectorType(ir.IntType(16), 32), [4] * 32)

            def broadcast(f, b, half):
                at = builder.add(builder.mul(builder.add(b0_v, ir.Constant(I64, f)), u_words),
                                 builder.add(builder.mul(b, ir.Constant(I64, 2)),
                                             ir.Constant(I64, half)))
                word = builder.load(builder.gep(codes, [at]))
                one = builder.insert_element(undef, word, ir.Constant(i32, 0))
                return builder.shuffle_vector(one, undef, splat)

            with cgutils.for_range(builder, n_blocks) as block:
                b = block.index
                nibbles = []
                for g in range(groups):
                    at = builder.add(builder.mul(builder.add(g0_v, ir.Constant(I64, g)),
                                                 n_blocks), b)
                    packed = builder.load(builder.gep(blocks_ptr, [at]), align=1)
                    high = builder.and_(packed, high_mask)
                    if split:
                        low = builder.and_(packed, low_mask)
                    else:
                        up = builder.shl(builder.bitcast(packed, four16.type), four16)
                        low = builder.and_(builder.bitcast(up, I8X64), high_mask)
                    nibbles.append([builder.bitcast(v, I32X16) for v in (low, high)])
                for f in range(frames):
                    codes_f = [broadcast(f, b, half) for half in range(2)]
                    for g in range(groups):
                        for half in range(2):
                            slot = acc[f][g][half if split else 0]
                            total = builder.call(dpbusd, [builder.load(slot), nibbles[g][half],
                                                          codes_f[half]])
                            builder.store(total, slot)
            out_ptr = builder.bitcast(out_arr.data, I32X16.as_pointer())
            four = ir.Constant(I32X16, [4] * LANES)
            for f in range(frames):
                row = builder.mul(builder.add(b0_v, ir.Constant(I64, f)), out_rows)
                for g in range(groups):
                    sums = [builder.load(a) for a in acc[f][g]]
                    total = (builder.add(sums[0], builder.ashr(sums[1], four)) if split
                             else builder.ashr(sums[0], four))
                    at = builder.add(row, builder.add(g0_v, ir.Constant(I64, g)))
                    builder.store(total, builder.gep(out_ptr, [at]), align=4)
            return context.get_dummy_value()

        return sig, codegen

    return tile


def _make_portable_tile(frames: int, groups: int):
    """The same sums as :func:`_make_tile`'s intrinsic in plain loops: the form a host
    without AVX-512 VNNI compiles (its lane-row form is never built, :func:`lane_rows_layout`,
    but the kernels that would call it are compiled all the same).
    """

    @nb.njit(inline="always")
    def tile(u, lanes, b0, g0, out):
        n_blocks = lanes.shape[1] // 64
        for f in range(frames):
            for g in range(groups):
                for r in range(LANES):
                    total = np.int64(0)
                    for b in range(n_blocks):
                        for i in range(4):
                            byte = np.int64(lanes[g0 + g, 64 * b + 4 * r + i])
                            total += ((byte & NIBBLE_MAX) * u[b0 + f, BLOCK_CODES * b + i]
                                      + (byte >> 4) * u[b0 + f, BLOCK_CODES * b + 4 + i])
                    out[b0 + f, LANES * (g0 + g) + r] = np.int32(total)

    return tile


_T44, _T41, _T14, _T11 = (
    (_make_tile if HAS_VNNI512 else _make_portable_tile)(*shape)
    for shape in ((4, 4), (4, 1), (1, 4), (1, 1)))


@nb.njit(nogil=True, cache=True)
def lane_rows_raw(u, lanes, out, b_stop):
    """``out[b, n] = Σ_k u[b, k]·q[n, k]`` (``q = w + 8``) for rows b < ``b_stop`` of codes
    ``u`` [B, Kq] (≤ 127, zero in the padding) and every padded row n of ``lanes``; ``out``
    [B, 16·ceil(N/16)] int32. Four row groups (64 weight rows) at a time, for four activation
    rows at a time (then one).
    """
    groups = lanes.shape[0]
    g0 = 0
    while g0 < groups:
        quad = g0 + GROUPS_PER_TILE <= groups
        b0 = 0
        while b0 + 4 <= b_stop:
            if quad:
                _T44(u, lanes, b0, g0, out)
            else:
                _T41(u, lanes, b0, g0, out)
            b0 += 4
        while b0 < b_stop:
            if quad:
                _T14(u, lanes, b0, g0, out)
            else:
                _T11(u, lanes, b0, g0, out)
            b0 += 1
        g0 += GROUPS_PER_TILE if quad else 1


@nb.njit(nogil=True, cache=True)
def gemv_lane_rows(u, lanes, offsets, out):
    """``out[b, n] = Σ_k u[b, k]·w[n, k] − offsets[n]`` for the N = ``offsets.size`` rows of
    ``lanes`` (:func:`pack_lane_rows`); ``u`` [B, Kq] uint8 codes ≤ 127, zero in the padding;
    ``out`` [B, 16·ceil(N/16)] int32 (its last padded lanes are scratch).
    """
    lane_rows_raw(u, lanes, out, u.shape[0])
    for b in range(u.shape[0]):
        code_sum = np.int64(0)
        for k in range(u.shape[1]):
            code_sum += u[b, k]
        for n in range(offsets.size):
            out[b, n] = out[b, n] - NIBBLE_OFFSET * code_sum - offsets[n]


NO_LANES = np.zeros((0, 64), np.uint8)
"""The lane-row form of a layer that has none (the caller keeps §7.5 or §7.4)."""
_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def lane_rows_layout(layer: QLinear, fmt: ActQuant) -> np.ndarray:
    """The lane-row form of ``layer`` fed with codes of ``fmt`` (:func:`pack_lane_rows`),
    built on first use and kept; :data:`NO_LANES` unless the layer has the §7.5 form on the
    ``vnni512`` path and the codes are at most :data:`MAX_CODE`.
    """
    per_layer = _CACHE.setdefault(layer, {})
    lanes = per_layer.get(fmt)
    if lanes is None:
        usable = (HAS_VNNI512 and packed_layout(layer, fmt).flush == VNNI512_FLUSH
                  and fmt.qmax - fmt.qmin <= MAX_CODE)
        lanes = per_layer[fmt] = pack_lane_rows(layer.weight) if usable else NO_LANES
    return lanes


LANE_PATHS = {"vnni512 lane-row": gemv_lane_rows} if HAS_VNNI512 else {}
"""The lane-row kernel where this host runs it, ``path(u, lanes, offsets, out)`` (the
selftest and the tests check it)."""
