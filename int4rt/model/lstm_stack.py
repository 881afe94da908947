"""A stack of unidirectional integer LSTM layers: the predictor and the LMs (ARITHMETIC.md §8.5).

Layer ``l + 1`` reads the hidden codes of layer ``l``. ``step`` advances every layer one time
step for a batch of independent rows with an explicit :class:`LstmState`; ``sequence`` runs
one row over T steps and traces every layer as ``{prefix}.layer{l}.*`` (§8.7).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from int4rt.errors import ArithmeticSpecError, Int4rtError
from int4rt.layers import LstmCell, initial_state
from int4rt.ops.registry import get_backend
from int4rt.trace import Trace
from int4rt.trace_names import stack_layer


@dataclass(frozen=True, eq=False)
class LstmState:
    """The state of every layer of a stack: h codes and c (int16), batched over rows [B, H]."""

    h: tuple[np.ndarray, ...]
    c: tuple[np.ndarray, ...]


@dataclass(frozen=True, eq=False)
class LstmStack:
    """Unidirectional LSTM cells, each fed by the previous one, with their arithmetic."""

    layers: tuple[LstmCell, ...]
    sigmoid_table: np.ndarray
    rounding: str

    def initial_state(self, batch: int) -> LstmState:
        """State before any input: h = each layer's hidden zero point, c = 0 (§8.4)."""
        states = [initial_state(cell, batch) for cell in self.layers]
        return LstmState(tuple(h for h, _ in states), tuple(c for _, c in states))

    def step(self, x: np.ndarray, state: LstmState, *,
             backend: str = "numba") -> tuple[np.ndarray, LstmState]:
        """Input codes ``x`` [B, I] through every layer one step: (last hidden codes, state)."""
        lstm = get_backend(backend).lstm
        hs, cs = [], []
        for cell, h, c in zip(self.layers, state.h, state.c, strict=True):
            x, c_new = lstm.lstm_step(cell, x, h, c, self.sigmoid_table, self.rounding)
            hs.append(x)
            cs.append(c_new)
        return x, LstmState(tuple(hs), tuple(cs))

    def sequence(self, x: np.ndarray, *, backend: str = "numba", trace: Trace | None = None,
                 prefix: str) -> np.ndarray:
        """Input codes ``x`` [T, I] through every layer from the initial state: [T, H] codes."""
        lstm = get_backend(backend).lstm
        for index, cell in enumerate(self.layers):
            x = lstm.lstm_sequence(cell, x, self.sigmoid_table, self.rounding, trace=trace,
                                   prefix=stack_layer(prefix, index))[0]
        return x

    def validate(self, name: str) -> None:
        """Check every cell ``{name}.layer{l}`` and that each is fed by the previous one."""
        _need(len(self.layers) > 0, f"{name}: needs at least one LSTM layer")
        for index, cell in enumerate(self.layers):
            cell.validate(f"{name}.layer{index}")
            if index:
                prev = self.layers[index - 1]
                _need(cell.input == prev.hidden,
                      f"{name}.layer{index}.input: format differs from "
                      f"{name}.layer{index - 1}.hidden")
                _need(cell.input_size == prev.hidden_size,
                      f"{name}.layer{index}: input size {cell.input_size} != hidden size "
                      f"{prev.hidden_size} of {name}.layer{index - 1}")


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
