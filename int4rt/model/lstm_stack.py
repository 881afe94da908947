"""A stack of integer LSTM layers: the encoder, the predictor and the LMs (ARITHMETIC.md §8.5).

Layer ``l + 1`` reads the hidden codes of layer ``l``. A layer is an :class:`EncoderLayer`:
``stack`` input frames concatenated (§8.5), then one forward cell or a forward and a backward
cell whose outputs sit side by side; the predictor's and the LMs' layers are one forward cell
without stacking. ``step`` advances every layer of such a unidirectional stack one time step
for a batch of independent rows with an explicit :class:`LstmState`; ``sequence`` runs one row
over T steps, traces every cell (``{prefix}.layer{l}.*``, or ``encoder.layer{l}.{fwd,bwd}.*``:
``trace_names.lstm_cell``, §8.7) and, untraced, runs the directions of a layer on threads
(``run_all``) and may hold only ``chunk_steps`` steps of intermediates at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, partial

import numpy as np

from int4rt import trace_names as names
from int4rt.errors import ArithmeticSpecError, Int4rtError
from int4rt.layers import Encoder, EncoderLayer, LstmCell, initial_state, stack_frames
from int4rt.model.parallel import run_all
from int4rt.ops.gemv.numba import linear
from int4rt.ops.lstm.numba import StepPlan, _run, step_plan, token_inputs
from int4rt.ops.registry import get_backend
from int4rt.trace import Trace


@dataclass(frozen=True, eq=False)
class LstmState:
    """The state of every layer of a stack: h codes and c (int16), batched over rows [B, H]."""

    h: tuple[np.ndarray, ...]
    c: tuple[np.ndarray, ...]


@dataclass(frozen=True, eq=False)
class LstmStack:
    """LSTM layers, each fed by the previous one, with their arithmetic."""

    layers: tuple[EncoderLayer, ...]
    sigmoid_table: np.ndarray
    rounding: str

    @classmethod
    def of_cells(cls, cells: tuple[LstmCell, ...], sigmoid_table: np.ndarray,
                 rounding: str) -> LstmStack:
        """A unidirectional stack, one forward cell per layer, no frame stacking."""
        return cls(tuple(EncoderLayer((cell,)) for cell in cells), sigmoid_table, rounding)

    @classmethod
    def of_encoder(cls, encoder: Encoder, sigmoid_table: np.ndarray,
                   rounding: str) -> LstmStack:
        """The encoder's (Bi-)LSTM layers with their frame stacking."""
        return cls(encoder.layers, sigmoid_table, rounding)

    @property
    def cells(self) -> tuple[LstmCell, ...]:
        """Each layer's cell of a unidirectional stack (``step`` and ``validate``)."""
        if any(len(layer.cells) != 1 or layer.stack != 1 for layer in self.layers):
            raise Int4rtError("step and validate need one forward cell per layer, no stacking")
        return tuple(layer.cells[0] for layer in self.layers)

    def initial_state(self, batch: int) -> LstmState:
        """State before any input: h = each layer's hidden zero point, c = 0 (§8.4)."""
        states = [initial_state(cell, batch) for cell in self.cells]
        return LstmState(tuple(h for h, _ in states), tuple(c for _, c in states))

    def step(self, x: np.ndarray, state: LstmState, *,
             backend: str = "numba") -> tuple[np.ndarray, LstmState]:
        """Input codes ``x`` [B, I] through every layer one step: (last hidden codes, state)."""
        lstm = get_backend(backend).lstm
        hs, cs = [], []
        for cell, h, c in zip(self.cells, state.h, state.c, strict=True):
            x, c_new = lstm.lstm_step(cell, x, h, c, self.sigmoid_table, self.rounding)
            hs.append(x)
            cs.append(c_new)
        return x, LstmState(tuple(hs), tuple(cs))

    @cached_property
    def step_plans(self) -> tuple[StepPlan, ...]:
        """Each layer's :class:`StepPlan` for the search's kernels, derived once."""
        return tuple(step_plan(cell, self.rounding, self.sigmoid_table) for cell in self.cells)

    def token_inputs(self, embedding: np.ndarray) -> np.ndarray:
        """The first layer's input product of every row of ``embedding`` (int16 [V, 4H],
        :func:`~int4rt.ops.lstm.numba.token_inputs`, made once), for the search's kernels
        (:mod:`int4rt.decode.slots`)."""
        return token_inputs(self.cells[0], self.rounding, embedding)

    def sequence(self, x: np.ndarray, *, backend: str = "numba", trace: Trace | None = None,
                 prefix: str, chunk_steps: int = 0) -> np.ndarray:
        """Input codes ``x`` [T, I] through every layer from the initial state: [T', H] codes.

        Before layer ``l`` its ``stack`` frames are concatenated (traced as
        ``{prefix}.layer{l}.stacked`` when > 1); a backward cell runs from the last step to the
        first. With ``chunk_steps`` > 0, no trace and the Numba backend, each cell keeps only
        its hidden codes and ``chunk_steps`` steps of intermediates, carrying (h, c) from chunk
        to chunk: the same integer steps (§8.2–§8.4), so the same output.
        """
        lstm = get_backend(backend).lstm
        bounded = chunk_steps > 0 and trace is None and backend == "numba"
        for index, layer in enumerate(self.layers):
            x = stack_frames(x, layer.stack, layer.cells[0].input.zero_point)
            if trace is not None and layer.stack > 1:
                trace.record(names.stacked(index, prefix), x)
            tasks = [
                partial(_chunked_hidden, cell, x, self.sigmoid_table, self.rounding,
                        direction == 1, chunk_steps) if bounded else
                partial(_hidden, lstm.lstm_sequence, cell, x, self.sigmoid_table, self.rounding,
                        reverse=direction == 1, trace=trace,
                        prefix=names.lstm_cell(prefix, index, direction))
                for direction, cell in enumerate(layer.cells)
            ]
            # Traces record in call order, so a traced run stays on one thread.
            outputs = run_all(tasks) if trace is None else [task() for task in tasks]
            x = np.concatenate(outputs, axis=1) if len(outputs) > 1 else outputs[0]
        return x

    def validate(self, name: str) -> None:
        """Check every cell ``{name}.layer{l}`` and that each is fed by the previous one."""
        cells = self.cells
        _need(len(cells) > 0, f"{name}: needs at least one LSTM layer")
        for index, cell in enumerate(cells):
            cell.validate(f"{name}.layer{index}")
            if index:
                prev = cells[index - 1]
                _need(cell.input == prev.hidden,
                      f"{name}.layer{index}.input: format differs from "
                      f"{name}.layer{index - 1}.hidden")
                _need(cell.input_size == prev.hidden_size,
                      f"{name}.layer{index}: input size {cell.input_size} != hidden size "
                      f"{prev.hidden_size} of {name}.layer{index - 1}")


def _hidden(lstm_sequence: Callable[..., tuple[np.ndarray, ...]], *args: object,
            **kwargs: object) -> np.ndarray:
    """The hidden codes [T, H], first of what a backend's ``lstm_sequence`` returns."""
    return lstm_sequence(*args, **kwargs)[0]


def _chunked_hidden(cell: LstmCell, x: np.ndarray, table: np.ndarray, rounding: str,
                    reverse: bool, chunk_steps: int) -> np.ndarray:
    """Hidden codes [T, H] of one cell over ``x`` [T, I], ``chunk_steps`` steps at a time
    (a backward cell goes through the chunks from the last to the first).
    """
    steps = x.shape[0]
    hidden = np.empty((steps, cell.hidden_size), dtype=cell.hidden.dtype)
    h0, c_state = initial_state(cell, 1)
    h_state = h0.astype(np.int16)
    starts = range(0, steps, chunk_steps)
    for start in reversed(starts) if reverse else starts:
        stop = min(start + chunk_steps, steps)
        projected = linear(x[start:stop], cell.input_fc, cell.input, rounding, np.int16)
        chunk = _run(cell, projected[None], h_state, c_state, table, rounding, reverse,
                     records=False)[3]
        hidden[start:stop] = chunk[0]
    return hidden


def embed(embedding: np.ndarray, tokens: object) -> np.ndarray:
    """The embedding rows of ``tokens`` [B]; an :class:`Int4rtError` for ids outside the table."""
    ids = np.asarray(tokens)
    vocab = embedding.shape[0]
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer) or (
            ids.size and (ids.min() < 0 or ids.max() >= vocab)):
        raise Int4rtError(f"tokens must be a 1-D array of ids in [0, {vocab})")
    return embedding[ids]


def _need(condition: bool, message: str) -> None:
    if not condition:
        raise ArithmeticSpecError(message)
