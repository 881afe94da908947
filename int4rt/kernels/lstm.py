"""Integer LSTM, Numba kernels: bit-identical twins of ``int4rt.ref.lstm`` (ARITHMETIC.md §8)."""

from __future__ import annotations

import numba as nb
import numpy as np

from int4rt.arith import tanh_input_scaling
from int4rt.kernels.activations import sigmoid16_one, tanh16_one
from int4rt.kernels.fixedpoint import requantize_one, rounding_code
from int4rt.kernels.gemm_blocked import gemm as blocked_gemm
from int4rt.kernels.gemv import linear
from int4rt.kernels.weight_layout import stream_layout
from int4rt.layers import ActQuant, LstmCell, QLinear, initial_state
from int4rt.trace import Trace

INT16_MIN, INT16_MAX = -32768, 32767


def linear16(x: np.ndarray, layer: QLinear, x_format: ActQuant, rounding: str) -> np.ndarray:
    """§7.1 with an int16 output (the gate FCs of §8.2), on the Numba GEMM."""
    return linear(x, layer, x_format, rounding, INT16_MIN, INT16_MAX).astype(np.int16)


@nb.njit(cache=True, inline="always")
def _sat16(v):
    return min(max(v, INT16_MIN), INT16_MAX)


@nb.njit(cache=True, nogil=True)
def _recurrent_steps(projected, w_h, offsets_h, flush, mult_h, shift_h, h_zp, h_min, h_max,
                     hid_m, hid_s, f_m, f_s, i_m, i_s, tanh_m, tanh_s, clip, table, rounding,
                     reverse, h_state, c_state, pre_out, gate_out, cell_out, hidden_out):
    """Run the recurrence over ``projected`` [B, T, 4H] for B independent rows, in place.

    ``h_state`` [B, H] (codes, int16-held) and ``c_state`` [B, H] carry the state in and out.
    The recurrent dot products run on ``h − qmin`` with the zero point folded into
    ``offsets_h`` (§7.3), on the blocked kernel over ``w_h`` in the padded layout (§7.4).
    Gate outputs go to ``gate_out`` [B, T, 4, H] in order i, f, g, o.
    """
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
                rec = _sat16(requantize_one(acc[b, r], mult_h[r], shift_h[r], rounding))
                pre[r] = _sat16(np.int64(projected[b, t, r]) + rec)
            for j in range(hs):
                i = sigmoid16_one(pre[j], table, 3, 0)
                f = sigmoid16_one(pre[hs + j], table, 3, 0)
                g = tanh16_one(pre[2 * hs + j], table, 3, 0)
                o = sigmoid16_one(pre[3 * hs + j], table, 3, 0)
                forget = _sat16(requantize_one(f * np.int64(c_row[j]), f_m, f_s, rounding))
                update = _sat16(requantize_one(i * g, i_m, i_s, rounding))
                c = _sat16(forget + update)
                if clip > 0:
                    c = min(max(c, -clip), clip)
                tanh_c = tanh16_one(c, table, tanh_m, tanh_s)
                h = requantize_one(tanh_c * o, hid_m, hid_s, rounding) + h_zp
                h = min(max(h, h_min), h_max)
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
    f_m, f_s = cell.forget_requant
    i_m, i_s = cell.input_requant
    tanh_m, tanh_s = tanh_input_scaling(cell.cell_scale_log2)
    rec = cell.recurrent_fc
    layout = stream_layout(rec, cell.hidden)
    _recurrent_steps(
        np.ascontiguousarray(projected), layout.weight, layout.offsets, layout.flush,
        rec.multiplier.astype(np.int64),
        rec.shift.astype(np.int64), cell.hidden.zero_point, cell.hidden.qmin, cell.hidden.qmax,
        cell.hidden_multiplier, cell.hidden_shift, f_m, f_s, i_m, i_s, tanh_m, tanh_s,
        cell.cell_clip, table, rounding_code(rounding), reverse, h, c, pre, gates, cells, hidden,
    )
    return pre, gates, cells, hidden


def lstm_step(
    cell: LstmCell,
    x: np.ndarray,
    h: np.ndarray,
    c: np.ndarray,
    table: np.ndarray,
    rounding: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Numba twin of :func:`int4rt.ref.lstm.lstm_step` (§8.2–§8.4), batch over rows."""
    projected = linear16(x, cell.input_fc, cell.input, rounding)
    h_state = h.astype(np.int16)
    c_state = c.astype(np.int16)
    _run(cell, projected[:, None, :], h_state, c_state, table, rounding, False)
    return h_state.astype(h.dtype), c_state


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
    """Numba twin of :func:`int4rt.ref.lstm.lstm_sequence` (§8.2–§8.5)."""
    projected = linear16(x, cell.input_fc, cell.input, rounding)
    h0, c_state = initial_state(cell, 1)
    h_state = h0.astype(np.int16)
    pre, gates, cells, hidden = (
        out[0] for out in _run(cell, projected[None], h_state, c_state, table, rounding, reverse))
    hidden = hidden.astype(cell.hidden.dtype)
    if trace is not None:
        trace.record(f"{prefix}.input_proj", projected)
        trace.record(f"{prefix}.gate_pre", pre)
        for k, name in enumerate("ifgo"):
            trace.record(f"{prefix}.gate.{name}", gates[:, k])
        trace.record(f"{prefix}.cell", cells)
        trace.record(f"{prefix}.hidden", hidden)
    return hidden, h_state[0].astype(cell.hidden.dtype), c_state[0]
