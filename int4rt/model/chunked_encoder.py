"""The encoder over a long input in memory proportional to its codes (DECODING.md, "Limits").

``RnntModel.encode_codes`` keeps every LSTM intermediate of every step (the trace's gate
pre-activations, gates and cells, int16) and the input projection of all steps at once: for
one hour that is several times the input codes. Without a trace none of that is needed, so
``encode_codes_bounded`` runs each direction ``CHUNK_STEPS`` steps at a time, carrying the
state (h, c) from chunk to chunk (a reverse direction goes through the chunks from the last
to the first), and keeps only each layer's output codes. Every step is the same integer step
(ARITHMETIC.md §8.2–§8.5), so the output is identical to ``encode_codes``.
"""

from __future__ import annotations

import numpy as np

from int4rt.layers import ActQuant, LstmCell, initial_state, stack_frames
from int4rt.model.rnnt import RnntModel
from int4rt.ops.gemv.numba import linear
from int4rt.ops.lstm.numba import _run

CHUNK_STEPS = 4096  # LSTM steps whose intermediates are held at a time


def encode_codes_bounded(model: RnntModel, codes: np.ndarray, *,
                         backend: str = "numba") -> tuple[np.ndarray, ActQuant]:
    """``model.encode_codes(codes)`` without a trace, in bounded memory (Numba backend; the
    NumPy reference backend runs ``encode_codes`` itself).
    """
    if backend != "numba":
        return model.encode_codes(codes, backend=backend)
    x = codes
    for layer in model.encoder.layers:
        x = stack_frames(x, layer.stack, layer.cells[0].input.zero_point)
        outputs = [_direction(cell, x, model.sigmoid_table, model.rounding, direction == 1)
                   for direction, cell in enumerate(layer.cells)]
        x = np.concatenate(outputs, axis=1) if len(outputs) > 1 else outputs[0]
    return x, model.encoder.output


def _direction(cell: LstmCell, x: np.ndarray, table: np.ndarray, rounding: str,
               reverse: bool) -> np.ndarray:
    """Hidden codes [T, H] of one direction over ``x`` [T, I], chunk by chunk."""
    steps = x.shape[0]
    hidden = np.empty((steps, cell.hidden_size), dtype=cell.hidden.dtype)
    h0, c_state = initial_state(cell, 1)
    h_state = h0.astype(np.int16)
    starts = range(0, steps, CHUNK_STEPS)
    for start in reversed(starts) if reverse else starts:
        stop = min(start + CHUNK_STEPS, steps)
        projected = linear(x[start:stop], cell.input_fc, cell.input, rounding, np.int16)
        chunk = _run(cell, projected[None], h_state, c_state, table, rounding, reverse)[3]
        hidden[start:stop] = chunk[0]
    return hidden
