"""Integer LSTM, Numba kernels (docs/ARITHMETIC.md §8): twins of ``reference``."""

from __future__ import annotations

import weakref
from typing import NamedTuple

import numba as nb
import numpy as np

from int4rt.layers import LstmCell, initial_state
from int4rt.ops.activations.numba import sigmoid16_one, tanh16_one
from int4rt.ops.activations.reference import tanh_input_scaling
from int4rt.ops.gemv.gemm_blocked import gemm as blocked_gemm
from int4rt.ops.gemv.numba import linear, linear_rows
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
    tanh_multiplier: int  # tanh input scaling of the cell state (§6.4)
    tanh_shift: int
    cell_clip: int  # 0 = none
    rounding: int  # DOUBLE_ROUNDING or SINGLE_ROUNDING


_PARAMS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def recurrent_params(cell: LstmCell, rounding: str) -> RecurrentParams:
    """The :class:`RecurrentParams` of a validated ``cell`` under ``rounding``, built on
    first use and kept with the cell."""
    per_cell = _PARAMS.setdefault(cell, {})
    params = per_cell.get(rounding)
    if params is None:
        params = per_cell[rounding] = _recurrent_params(cell, rounding)
    return params


def _recurrent_params(cell: LstmCell, rounding: str) -> RecurrentParams:
    rec = cell.recurrent_fc
    layout = stream_layout(rec, cell.hidden)
    f_m, f_s = cell.forget_requant
    i_m, i_s = cell.input_requant
    tanh_m, tanh_s = tanh_input_scaling(cell.cell_scale_log2)
    return RecurrentParams(
        weight=layout.weight, offsets=layout.offsets, flush=layout.flush,
        multiplier=layout.multiplier, shift=layout.shift,
        h_zero_point=int(cell.hidden.zero_point), h_min=int(cell.hidden.qmin),
        h_max=int(cell.hidden.qmax), hidden_multiplier=int(cell.hidden_multiplier),
        hidden_shift=int(cell.hidden_shift), forget_multiplier=int(f_m), forget_shift=int(f_s),
        input_multiplier=int(i_m), input_shift=int(i_s), tanh_multiplier=int(tanh_m),
        tanh_shift=int(tanh_s), cell_clip=int(cell.cell_clip), rounding=rounding_code(rounding),
    )


@nb.njit(cache=True, nogil=True)
def _recurrent_steps(projected, p, table, reverse, h_state, c_state, pre_out, gate_out,
                     cell_out, hidden_out):
    """Run the recurrence over ``projected`` [B, T, 4H] for B independent rows, in place.

    ``p`` is a :class:`RecurrentParams`. ``h_state`` [B, H] (codes, int16-held) and
    ``c_state`` [B, H] carry the state in and out. The recurrent dot products run on
    ``h − qmin`` with the zero point folded into ``p.offsets`` (§7.3), on the blocked kernel
    over ``p.weight`` in the padded layout (§7.4). Gate outputs go to ``gate_out``
    [B, T, 4, H] in order i, f, g, o.
    """
    w_h, offsets_h, flush = p.weight, p.offsets, p.flush
    rounding, h_min, clip = p.rounding, p.h_min, p.cell_clip
    rows, steps = projected.shape[0], projected.shape[1]
    hs = c_state.shape[1]
    u = np.zeros((rows, w_h.shape[1]), dtype=np.uint8)
    acc = np.empty((rows, 4 * hs), dtype=np.int32)
    for step in range(steps):
        t = steps - 1 - step if reverse else step
        for b in range(rows):
            for k in range(hs):
                u[b, k] = h_state[b, k] - h_min
        blocked_gemm(u, w_h, offsets_h, flush, acc)
        for b in range(rows):
            h_row = h_state[b]
            c_row = c_state[b]
            pre = pre_out[b, t]
            for r in range(4 * hs):
                rec = _sat16(requantize_one(acc[b, r], p.multiplier[r], p.shift[r], rounding))
                pre[r] = _sat16(np.int64(projected[b, t, r]) + rec)
            for j in range(hs):
                i = sigmoid16_one(pre[j], table, 3, 0)
                f = sigmoid16_one(pre[hs + j], table, 3, 0)
                g = tanh16_one(pre[2 * hs + j], table, 3, 0)
                o = sigmoid16_one(pre[3 * hs + j], table, 3, 0)
                forget = _sat16(requantize_one(f * np.int64(c_row[j]), p.forget_multiplier,
                                               p.forget_shift, rounding))
                update = _sat16(requantize_one(i * g, p.input_multiplier, p.input_shift,
                                               rounding))
                c = _sat16(forget + update)
                if clip > 0:
                    c = min(max(c, -clip), clip)
                tanh_c = tanh16_one(c, table, p.tanh_multiplier, p.tanh_shift)
                h = requantize_one(tanh_c * o, p.hidden_multiplier, p.hidden_shift,
                                  rounding) + p.h_zero_point
                h = min(max(h, h_min), p.h_max)
                c_row[j] = c
                h_row[j] = h
                gate_out[b, t, 0, j] = i
                gate_out[b, t, 1, j] = f
                gate_out[b, t, 2, j] = g
                gate_out[b, t, 3, j] = o
                cell_out[b, t, j] = c
                hidden_out[b, t, j] = h


def _run(cell: LstmCell, projected: np.ndarray, h: np.ndarray, c: np.ndarray, table: np.ndarray,
         rounding: str, reverse: bool) -> tuple[np.ndarray, ...]:
    """Recurrence over ``projected`` [B, T, 4H] from states h, c [B, H] (updated in place)."""
    rows, steps, hs = projected.shape[0], projected.shape[1], cell.hidden_size
    pre = np.empty((rows, steps, 4 * hs), dtype=np.int16)
    gates = np.empty((rows, steps, 4, hs), dtype=np.int16)
    cells = np.empty((rows, steps, hs), dtype=np.int16)
    hidden = np.empty((rows, steps, hs), dtype=np.int16)
    _recurrent_steps(np.ascontiguousarray(projected), recurrent_params(cell, rounding), table,
                     reverse, h, c, pre, gates, cells, hidden)
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
    recurrent: RecurrentParams


def step_plan(cell: LstmCell, rounding: str) -> StepPlan:
    """The :class:`StepPlan` of a validated ``cell`` under ``rounding``."""
    return StepPlan(stream_layout(cell.input_fc, cell.input), recurrent_params(cell, rounding))


@nb.njit(cache=True, nogil=True)
def lstm_step_trusted(plan, x, h, c, table):
    """:func:`lstm_step` of valid codes ``x`` [B, I] in one kernel, without checks: the int16
    states ``h`` (codes) and ``c`` [B, H] advance in place; returns the new hidden codes
    (int16 [B, H]). The search's hot path (``plan``: :func:`step_plan`).
    """
    rows, hs = x.shape[0], c.shape[1]
    projected = np.empty((rows, 4 * hs), dtype=np.int16)
    linear_rows(x, plan.input_layout, plan.recurrent.rounding, INT16_MIN, INT16_MAX, projected)
    pre = np.empty((rows, 1, 4 * hs), dtype=np.int16)
    gates = np.empty((rows, 1, 4, hs), dtype=np.int16)
    cells = np.empty((rows, 1, hs), dtype=np.int16)
    hidden = np.empty((rows, 1, hs), dtype=np.int16)
    _recurrent_steps(projected.reshape(rows, 1, 4 * hs), plan.recurrent, table, False, h, c,
                     pre, gates, cells, hidden)
    return hidden.reshape(rows, hs)


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
        out[0] for out in _run(cell, projected[None], h_state, c_state, table, rounding, reverse))
    hidden = hidden.astype(cell.hidden.dtype)
    if trace is not None:
        values = (projected, pre, *(gates[:, k] for k in range(len(GATES))), cells, hidden)
        for key, value in zip(LSTM_RECORDS, values, strict=True):
            trace.record(name(prefix, key), value)
    return hidden, h_state[0].astype(cell.hidden.dtype), c_state[0]
