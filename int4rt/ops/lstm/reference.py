"""Integer LSTM, NumPy reference (docs/ARITHMETIC.md §8.1–§8.5)."""

from __future__ import annotations

import numpy as np

from int4rt.layers import LstmCell, initial_state
from int4rt.ops.activations.reference import sigmoid16, tanh16, tanh_input_scaling
from int4rt.ops.gemv.reference import linear
from int4rt.ops.requantize.reference import requantize
from int4rt.trace import Trace
from int4rt.trace_names import GATES, LSTM_RECORDS, name

INT16_MIN, INT16_MAX = -32768, 32767


def cell_update(
    cell: LstmCell,
    pre: np.ndarray,
    c: np.ndarray,
    table: np.ndarray,
    rounding: str,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Gates, cell and hidden state from Q3.12 pre-activations ``pre`` [B, 4H] (§8.3, §8.4).

    Returns (h codes, c int16, gate outputs by name).
    """
    h_size = cell.hidden_size
    blocks = [pre[:, k * h_size:(k + 1) * h_size] for k in range(4)]
    gates = {
        "i": sigmoid16(blocks[0], table),
        "f": sigmoid16(blocks[1], table),
        "g": tanh16(blocks[2], table),
        "o": sigmoid16(blocks[3], table),
    }
    i, f, g, o = (gates[gate].astype(np.int64) for gate in GATES)
    forget = np.clip(requantize(f * c.astype(np.int64), *cell.forget_requant, rounding),
                     INT16_MIN, INT16_MAX)
    update = np.clip(requantize(i * g, *cell.input_requant, rounding), INT16_MIN, INT16_MAX)
    c_new = np.clip(forget + update, INT16_MIN, INT16_MAX)
    if cell.cell_clip:
        c_new = np.clip(c_new, -cell.cell_clip, cell.cell_clip)
    tanh_c = tanh16(c_new, table, *tanh_input_scaling(cell.cell_scale_log2)).astype(np.int64)
    h = requantize(tanh_c * o, cell.hidden_multiplier, cell.hidden_shift, rounding)
    h = np.clip(h + cell.hidden.zero_point, cell.hidden.qmin, cell.hidden.qmax)
    return h.astype(cell.hidden.dtype), c_new.astype(np.int16), gates


def lstm_step(
    cell: LstmCell,
    x: np.ndarray,
    h: np.ndarray,
    c: np.ndarray,
    table: np.ndarray,
    rounding: str,
) -> tuple[np.ndarray, np.ndarray]:
    """One time step for a batch: x [B, I] codes, h [B, H] codes, c [B, H] int16 (§8.2–§8.4)."""
    pre = _saturating_add(linear(x, cell.input_fc, cell.input, rounding, np.int16),
                          linear(h, cell.recurrent_fc, cell.hidden, rounding, np.int16))
    h_new, c_new, _ = cell_update(cell, pre, c, table, rounding)
    return h_new, c_new


def stack_step_slots(
    cells: tuple[LstmCell, ...],
    embedding: np.ndarray,
    tokens: np.ndarray,
    parents: np.ndarray,
    slots: np.ndarray,
    h_pools: tuple[np.ndarray, ...],
    c_pools: tuple[np.ndarray, ...],
    table: np.ndarray,
    rounding: str,
) -> np.ndarray:
    """One step of a unidirectional stack (§8.5) for a batch of label histories held in
    slots: layer ``l`` of row ``b`` starts from ``h_pools[l][parents[b]]``,
    ``c_pools[l][parents[b]]`` ([S, H] pools) and writes its new states to slot ``slots[b]``;
    the first layer reads the embedding rows of ``tokens`` [B]. Returns the last layer's
    hidden codes [B, H].
    """
    x = embedding[tokens]
    for cell, h_pool, c_pool in zip(cells, h_pools, c_pools, strict=True):
        x, c = lstm_step(cell, x, h_pool[parents], c_pool[parents], table, rounding)
        h_pool[slots] = x
        c_pool[slots] = c
    return x


def _saturating_add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.clip(a.astype(np.int32) + b.astype(np.int32), INT16_MIN, INT16_MAX).astype(np.int16)


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
    """Run one direction over x [T, I] codes; returns (hidden [T, H], final h [H], final c [H]).

    The input projection of all T steps is one GEMM before the recurrence (§8.2). With
    ``reverse`` the steps run from T-1 down to 0; outputs stay in input time order.
    """
    steps = x.shape[0]
    h_size = cell.hidden_size
    projected = linear(x, cell.input_fc, cell.input, rounding, np.int16)
    h, c = initial_state(cell, 1)
    record = {key: np.zeros((steps, 4 * h_size if key == "gate_pre" else h_size),
                            dtype=np.int16) for key in LSTM_RECORDS[1:]}
    record["input_proj"] = projected
    record["hidden"] = np.zeros((steps, h_size), dtype=cell.hidden.dtype)
    for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
        pre = _saturating_add(projected[t:t + 1],
                              linear(h, cell.recurrent_fc, cell.hidden, rounding, np.int16))
        h, c, gates = cell_update(cell, pre, c, table, rounding)
        record["gate_pre"][t] = pre[0]
        for gate, value in gates.items():
            record[f"gate.{gate}"][t] = value[0]
        record["cell"][t] = c[0]
        record["hidden"][t] = h[0]
    if trace is not None:
        for key in LSTM_RECORDS:
            trace.record(name(prefix, key), record[key])
    return record["hidden"], h[0], c[0]
