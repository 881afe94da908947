"""Integer LSTM, Numba kernels (docs/ARITHMETIC.md §8): twins of ``reference``."""

from __future__ import annotations

import weakref
from typing import NamedTuple

import numba as nb
import numpy as np

from int4rt.layers import LstmCell, initial_state
from int4rt.ops.activations.lookup import LUT_OFFSET, cell_tanh_lut, gate_luts
from int4rt.ops.activations.reference import tanh_input_scaling
from int4rt.ops.gemv.gemm_blocked import gemm as blocked_gemm
from int4rt.ops.gemv.lane_rows import (
    BLOCK_CODES,
    LANES,
    NO_LANES,
    gemv_lane_rows,
    lane_rows_layout,
)
from int4rt.ops.gemv.numba import linear, linear_rows, linear_rows_packed
from int4rt.ops.gemv.packed_gemv import gemv_packed, packed_layout
from int4rt.ops.gemv.weight_layout import StreamLayout, stream_layout
from int4rt.ops.requantize.scalar import requantize_one, rounding_code
from int4rt.trace import Trace
from int4rt.trace_names import GATES, LSTM_RECORDS, name

INT16_MIN, INT16_MAX = -32768, 32767


@nb.njit(cache=True, inline="always")
def _sat16(v):
    return min(max(v, INT16_MIN), INT16_MAX)


class RecurrentParams(NamedTuple):
    """The integers of one LSTM direction's recurrence (§8.2–§8.4), passed to Numba by name."""

    weight: np.ndarray  # int8 [4H, Hp] recurrent weights, rows padded to 32 bytes (§7.4)
    offsets: np.ndarray  # int32 [4H] the hidden zero point folded out of the dots (§7.3)
    flush: int  # chunks an int16 lane may accumulate exactly; 0 = portable tiles (§7.4)
    packed: np.ndarray  # uint8 [4H, Kq/2] offset nibbles (§7.5), or empty: use ``weight``
    packed_flush: int  # packed chunks per int16 widening (§7.5)
    multiplier: np.ndarray  # int64 [4H] recurrent FC requantization (§8.2)
    shift: np.ndarray  # int64 [4H]
    h_zero_point: int  # hidden format (§8.4)
    h_min: int
    h_max: int
    hidden_multiplier: int  # tanh(c)·o to hidden codes (§8.4)
    hidden_shift: int
    forget_multiplier: int  # f·c to the cell scale (§8.3)
    forget_shift: int
    input_multiplier: int  # i·g to the cell scale (§8.3)
    input_shift: int
    cell_clip: int  # 0 = none
    rounding: int  # DOUBLE_ROUNDING or SINGLE_ROUNDING


_PARAMS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def recurrent_params(cell: LstmCell, rounding: str) -> RecurrentParams:
    """The :class:`RecurrentParams` of a validated ``cell`` under ``rounding``: the packed
    weights of §7.5 when the layer has them (one row, the encoder's directions, or the few rows
    of a search step, each weight chunk loaded once for all rows), else the blocked tiles of
    §7.4. Built on first use and kept with the cell, keyed by ``rounding``.
    """
    per_cell = _PARAMS.setdefault(cell, {})
    params = per_cell.get(rounding)
    if params is None:
        params = per_cell[rounding] = _recurrent_params(cell, rounding)
    return params


def _recurrent_params(cell: LstmCell, rounding: str) -> RecurrentParams:
    rec = cell.recurrent_fc
    layout = stream_layout(rec, cell.hidden)
    packed = packed_layout(rec, cell.hidden)
    f_m, f_s = cell.forget_requant
    i_m, i_s = cell.input_requant
    return RecurrentParams(
        weight=layout.weight, offsets=layout.offsets, flush=layout.flush,
        packed=packed.weight, packed_flush=packed.flush,
        multiplier=layout.multiplier, shift=layout.shift,
        h_zero_point=int(cell.hidden.zero_point), h_min=int(cell.hidden.qmin),
        h_max=int(cell.hidden.qmax), hidden_multiplier=int(cell.hidden_multiplier),
        hidden_shift=int(cell.hidden_shift), forget_multiplier=int(f_m), forget_shift=int(f_s),
        input_multiplier=int(i_m), input_shift=int(i_s), cell_clip=int(cell.cell_clip),
        rounding=rounding_code(rounding),
    )


@nb.njit(cache=True, nogil=True, inline="always")
def _gate_pre(acc, projected, multiplier, shift, rounding, pre):
    """§8.2 for one row: ``pre = sat16(gx + sat16(requantize(acc)))`` over 4H, branch-free."""
    for r in range(pre.size):
        rec = _sat16(requantize_one(acc[r], multiplier[r], shift[r], rounding))
        pre[r] = _sat16(np.int64(projected[r]) + rec)


@nb.njit(cache=True, nogil=True, inline="always")
def _activate(pre, sigmoid_lut, tanh_lut, gates):
    """§8.3 gates of one row: sigmoid on blocks i, f, o and tanh on g, each one look-up in the
    whole-domain tables of :mod:`int4rt.ops.activations.lookup` (Q3.12 input, scaling (3, 0)).
    """
    hs = gates.shape[1]
    for k in range(4):
        block = pre[k * hs:(k + 1) * hs]
        out = gates[k]
        lut = tanh_lut if k == 2 else sigmoid_lut
        for j in range(hs):
            out[j] = lut[np.int64(block[j]) + LUT_OFFSET]


@nb.njit(cache=True, nogil=True, inline="always")
def _update(gates, p, cell_lut, tanh_c, c_row, h_row, cell_out, hidden_out):
    """§8.3 cell update and §8.4 hidden state of one row, from its gates [4, H].

    Three loops: the cell (requantizations only), tanh of the cell (one look-up each in
    ``cell_lut``, :func:`~int4rt.ops.activations.lookup.cell_tanh_lut`, into the scratch row
    ``tanh_c``) and the hidden codes; the first and the last vectorize.
    """
    rounding, clip = p.rounding, p.cell_clip
    lo = -clip if clip > 0 else INT16_MIN
    hi = clip if clip > 0 else INT16_MAX
    i_gate, f_gate, g_gate, o_gate = gates[0], gates[1], gates[2], gates[3]
    for j in range(c_row.size):
        forget = _sat16(requantize_one(np.int64(f_gate[j]) * np.int64(c_row[j]),
                                       p.forget_multiplier, p.forget_shift, rounding))
        update = _sat16(requantize_one(np.int64(i_gate[j]) * np.int64(g_gate[j]),
                                       p.input_multiplier, p.input_shift, rounding))
        c = min(max(_sat16(forget + update), lo), hi)
        c_row[j] = c
        cell_out[j] = c
    for j in range(c_row.size):
        tanh_c[j] = cell_lut[np.int64(c_row[j]) + LUT_OFFSET]
    for j in range(c_row.size):
        h = requantize_one(np.int64(tanh_c[j]) * np.int64(o_gate[j]), p.hidden_multiplier,
                           p.hidden_shift, rounding) + p.h_zero_point
        h = min(max(h, p.h_min), p.h_max)
        h_row[j] = h
        hidden_out[j] = h


@nb.njit(cache=True, nogil=True)
def _recurrent_steps(projected, p, luts, lanes, reverse, h_state, c_state, pre_out, gate_out,
                     cell_out, hidden_out):
    """Run the recurrence over ``projected`` [B, T, 4H] for B independent rows, in place.

    ``p`` is a :class:`RecurrentParams`; ``luts`` the cell's tables (:func:`step_luts`).
    ``h_state`` [B, H] (codes, int16-held) and
    ``c_state`` [B, H] carry the state in and out. The recurrent dot products run on
    ``h − qmin`` with the zero point folded into ``p.offsets`` (§7.3), on the blocked kernel
    over ``p.weight`` in the padded layout (§7.4), on the offset-nibble kernel over
    ``p.packed`` when it is not empty (§7.5), or, for one row, on the lane-row kernel over
    ``lanes`` when that is not empty (§7.6). Gate outputs go to ``gate_out``
    [B, T, 4, H] in order i, f, g, o. ``pre_out``, ``gate_out`` and ``cell_out`` may instead
    have one time step, then each step overwrites it (no trace wanted, §8.7: the records stay
    in cache); ``hidden_out`` always has T. Each step is three passes over contiguous rows (gate
    pre-activations, gates, cell and hidden) without data-dependent branches, so they vectorize.
    """
    w_h, offsets_h, flush, h_min = p.weight, p.offsets, p.flush, p.h_min
    rows, steps = projected.shape[0], projected.shape[1]
    hs = c_state.shape[1]
    one_row = rows == 1 and lanes.shape[0] > 0
    packed = p.packed.shape[0] > 0
    width = (lanes.shape[1] // BLOCK_CODES if one_row else 2 * p.packed.shape[1] if packed
             else w_h.shape[1])
    u = np.zeros((rows, width), dtype=np.uint8)
    acc = np.empty((rows, LANES * lanes.shape[0] if one_row else 4 * hs), dtype=np.int32)
    tanh_c = np.empty(hs, dtype=np.int16)
    keep = pre_out.shape[1] == steps
    for step in range(steps):
        t = steps - 1 - step if reverse else step
        r = t if keep else 0
        for b in range(rows):
            for k in range(hs):
                u[b, k] = h_state[b, k] - h_min
        if one_row:
            gemv_lane_rows(u, lanes, offsets_h, acc)
        elif packed:
            gemv_packed(u, p.packed, offsets_h, p.packed_flush, acc)
        else:
            blocked_gemm(u, w_h, offsets_h, flush, acc)
        for b in range(rows):
            _gate_pre(acc[b], projected[b, t], p.multiplier, p.shift, p.rounding, pre_out[b, r])
            _activate(pre_out[b, r], luts[0], luts[1], gate_out[b, r])
            _update(gate_out[b, r], p, luts[2], tanh_c, c_state[b], h_state[b], cell_out[b, r],
                    hidden_out[b, t])


def step_luts(cell: LstmCell, table: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The look-up tables of ``cell``'s steps under sigmoid ``table``: the gates' sigmoid and
    tanh (§8.3, :func:`~int4rt.ops.activations.lookup.gate_luts`) and the tanh of its cell
    state at its cell scale (§8.4, :func:`~int4rt.ops.activations.lookup.cell_tanh_lut`).
    """
    return (*gate_luts(table),
            cell_tanh_lut(table, *tanh_input_scaling(cell.cell_scale_log2)))


def _run(cell: LstmCell, projected: np.ndarray, h: np.ndarray, c: np.ndarray, table: np.ndarray,
         rounding: str, reverse: bool, records: bool = True) -> tuple[np.ndarray, ...]:
    """Recurrence over ``projected`` [B, T, 4H] from states h, c [B, H] (updated in place):
    (pre-activations, gates, cells, hidden), the first three of the last step only unless
    ``records``.
    """
    rows, steps, hs = projected.shape[0], projected.shape[1], cell.hidden_size
    kept = steps if records else 1
    pre = np.empty((rows, kept, 4 * hs), dtype=np.int16)
    gates = np.empty((rows, kept, 4, hs), dtype=np.int16)
    cells = np.empty((rows, kept, hs), dtype=np.int16)
    hidden = np.empty((rows, steps, hs), dtype=np.int16)
    lanes = lane_rows_layout(cell.recurrent_fc, cell.hidden) if rows == 1 else NO_LANES
    _recurrent_steps(np.ascontiguousarray(projected), recurrent_params(cell, rounding),
                     step_luts(cell, table), lanes, reverse, h, c, pre, gates, cells, hidden)
    return pre, gates, cells, hidden


def lstm_step(
    cell: LstmCell,
    x: np.ndarray,
    h: np.ndarray,
    c: np.ndarray,
    table: np.ndarray,
    rounding: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Numba twin of :func:`int4rt.ops.lstm.reference.lstm_step` (§8.2–§8.4), batch over rows."""
    projected = linear(x, cell.input_fc, cell.input, rounding, np.int16)
    h_state = h.astype(np.int16)
    c_state = c.astype(np.int16)
    _run(cell, projected[:, None, :], h_state, c_state, table, rounding, False)
    return h_state.astype(h.dtype), c_state


class StepPlan(NamedTuple):
    """What one trusted LSTM step needs, derived once per cell (passed to Numba whole)."""

    input_layout: StreamLayout  # the input FC in kernel order (§7.4)
    input_packed: np.ndarray  # uint8 [4H, Kq/2] its offset nibbles (§7.5), or empty
    input_packed_flush: int  # packed chunks per int16 widening (§7.5)
    recurrent: RecurrentParams
    luts: tuple  # (sigmoid, tanh, cell tanh) tables of the step's sigmoid table (step_luts)


def step_plan(cell: LstmCell, rounding: str, table: np.ndarray) -> StepPlan:
    """The :class:`StepPlan` of a validated ``cell`` under ``rounding`` and sigmoid ``table``."""
    packed = packed_layout(cell.input_fc, cell.input)
    return StepPlan(stream_layout(cell.input_fc, cell.input), packed.weight, packed.flush,
                    recurrent_params(cell, rounding), step_luts(cell, table))


@nb.njit(cache=True, nogil=True)
def _project_input(layout, packed, packed_flush, rounding, x, projected):
    """The input product of a trusted step (§8.2's int16 ``gx``): valid codes ``x`` [B, I]
    into ``projected`` [B, 4H], on the offset nibbles ``packed`` (§7.5) when not empty, else
    on the blocked tiles of ``layout`` (§7.4). Row ``b`` depends on ``x[b]`` only.
    """
    if packed.shape[0] > 0:
        linear_rows_packed(x, layout, packed, packed_flush, rounding, INT16_MIN, INT16_MAX,
                           projected)
    else:
        linear_rows(x, layout, rounding, INT16_MIN, INT16_MAX, projected)


@nb.njit(cache=True, nogil=True)
def _step_projected(plan, projected, h, c):
    """The recurrence of one trusted step (§8.2–§8.4) from its input product ``projected``
    [B, 4H]: ``h`` (codes) and ``c`` [B, H] advance in place.
    """
    rows, hs = projected.shape[0], c.shape[1]
    pre = np.empty((rows, 1, 4 * hs), dtype=np.int16)
    gates = np.empty((rows, 1, 4, hs), dtype=np.int16)
    cells = np.empty((rows, 1, hs), dtype=np.int16)
    hidden = np.empty((rows, 1, hs), dtype=np.int16)
    _recurrent_steps(projected.reshape(rows, 1, 4 * hs), plan.recurrent, plan.luts,
                     NO_LANES, False, h, c, pre, gates, cells, hidden)


@nb.njit(cache=True, nogil=True)
def lstm_step_trusted(plan, x, h, c):
    """:func:`lstm_step` of valid codes ``x`` [B, I] in one kernel, without checks: the int16
    states ``h`` (codes) and ``c`` [B, H] advance in place, so ``h`` then holds the new hidden
    codes (``plan``: :func:`step_plan`). Returns nothing: boxing a returned array costs a
    Python call per kernel call.
    """
    projected = np.empty((x.shape[0], 4 * c.shape[1]), dtype=np.int16)
    _project_input(plan.input_layout, plan.input_packed, plan.input_packed_flush,
                   plan.recurrent.rounding, x, projected)
    _step_projected(plan, projected, h, c)


_TOKEN_INPUTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def token_inputs(cell: LstmCell, rounding: str, embedding: np.ndarray) -> np.ndarray:
    """The input product (§8.2's int16 ``gx``, [V, 4H]) of every row of ``embedding``, the
    codes that feed ``cell`` as a stack's first layer (§8.6), on the kernels of
    :func:`lstm_step_trusted`. A row's product depends on that row only, so a search step
    reads its tokens' rows of this table instead of streaming the input weights: the same
    integers. Made on first use and kept with the cell, keyed by ``rounding`` and
    ``embedding`` (by identity).
    """
    per_cell = _TOKEN_INPUTS.setdefault(cell, {})
    held = per_cell.get(rounding)
    if held is None or held[0] is not embedding:
        packed = packed_layout(cell.input_fc, cell.input)
        table = np.empty((embedding.shape[0], 4 * cell.hidden_size), dtype=np.int16)
        _project_input(stream_layout(cell.input_fc, cell.input), packed.weight, packed.flush,
                       rounding_code(rounding), embedding, table)
        held = per_cell[rounding] = (embedding, table)
    return held[1]


@nb.njit(cache=True, nogil=True)
def stack_step_slots(plans, first_inputs, tokens, parents, slots, h_pools, c_pools, out):
    """Twin of :func:`int4rt.ops.lstm.reference.stack_step_slots` (§8.2–§8.5) in one kernel,
    without checks: every layer of a unidirectional stack (``plans``, one :func:`step_plan`
    per layer) one step for the valid ``tokens`` [B], the first layer's input product read
    from ``first_inputs`` (:func:`token_inputs` of the embedding), each row from the states
    of slot ``parents[b]`` of the int16 pools ``h_pools`` / ``c_pools`` (one [S, H] per
    layer), its new states written to slot ``slots[b]`` (a slot may be its own or another
    row's parent: each layer gathers every row before it scatters). The last layer's hidden
    codes go to ``out`` int16 [B, H].
    """
    rows = tokens.shape[0]
    x = np.empty((rows, first_inputs.shape[1]), dtype=np.int16)
    for b in range(rows):
        x[b] = first_inputs[tokens[b]]
    for layer in range(len(plans)):
        h_pool, c_pool = h_pools[layer], c_pools[layer]
        h = np.empty((rows, h_pool.shape[1]), dtype=np.int16)
        c = np.empty((rows, c_pool.shape[1]), dtype=np.int16)
        for b in range(rows):
            h[b] = h_pool[parents[b]]
            c[b] = c_pool[parents[b]]
        if layer == 0:
            _step_projected(plans[0], x, h, c)
        else:
            lstm_step_trusted(plans[layer], x, h, c)
        for b in range(rows):
            h_pool[slots[b]] = h[b]
            c_pool[slots[b]] = c[b]
        x = h
    out[:] = x


def lstm_sequence(
    cell: LstmCell,
    x: np.ndarray,
    table: np.ndarray,
    rounding: str,
    *,
    reverse: bool = False,
    trace: Trace | None = None,
    prefix: str = "",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Numba twin of :func:`int4rt.ops.lstm.reference.lstm_sequence` (§8.2–§8.5)."""
    projected = linear(x, cell.input_fc, cell.input, rounding, np.int16)
    h0, c_state = initial_state(cell, 1)
    h_state = h0.astype(np.int16)
    pre, gates, cells, hidden = (
        out[0] for out in _run(cell, projected[None], h_state, c_state, table, rounding, reverse,
                               records=trace is not None))
    hidden = hidden.astype(cell.hidden.dtype)
    if trace is not None:
        values = (projected, pre, *(gates[:, k] for k in range(len(GATES))), cells, hidden)
        for key, value in zip(LSTM_RECORDS, values, strict=True):
            trace.record(name(prefix, key), value)
    return hidden, h_state[0].astype(cell.hidden.dtype), c_state[0]
