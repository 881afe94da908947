"""The integer character LSTM language model used for fusion (docs/FORMAT.md §2.8)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from int4rt import trace_names as names
from int4rt.layers import ActQuant, LstmCell, QLinear
from int4rt.model.lstm_stack import LstmStack, LstmState, embed
from int4rt.ops.registry import get_backend
from int4rt.trace import Trace


@dataclass(frozen=True, eq=False)
class LmModel:
    """A loaded integer LSTM LM: embedding codes, a stack of LSTM cells, an output layer.

    ``embedding`` [V, E] holds codes in ``layers[0].input`` format; ``out`` maps the last
    layer's hidden codes to int32 logits with scale ``2^-logit_frac_bits``. Its vocabulary is
    the RNN-T's (same symbols, same order); the RNN-T's blank id is the sentence-start input
    that begins every history (docs/DECODING.md, "Label histories and batching").
    """

    vocab: tuple[str, ...]
    embedding: np.ndarray
    layers: tuple[LstmCell, ...]
    out: QLinear
    logit_frac_bits: int
    profile: str
    rounding: str
    sigmoid_table: np.ndarray
    exp2_table: np.ndarray
    ln_table: np.ndarray

    @property
    def input(self) -> ActQuant:
        """Format of the embedding codes (= the first layer's input format)."""
        return self.layers[0].input

    @property
    def output(self) -> ActQuant:
        """Format of the last layer's hidden codes, the output layer's input."""
        return self.layers[-1].hidden

    @property
    def stack(self) -> LstmStack:
        """The LSTM layers with this model's arithmetic (§8.5)."""
        return LstmStack.of_cells(self.layers, self.sigmoid_table, self.rounding)

    def initial_state(self, batch: int) -> LstmState:
        """State before any input: h = each layer's hidden zero point, c = 0 (§8.4)."""
        return self.stack.initial_state(batch)

    def step(self, tokens: np.ndarray, state: LstmState, *,
             backend: str = "numba") -> tuple[np.ndarray, LstmState]:
        """Feed ``tokens`` [B] and return (log-probabilities int32 [B, V] of the next token, state).

        Embedding codes → every LSTM layer one step (§8.2–§8.4) → ``out`` to int32 logits
        (§7.1, output zero point 0, clamped to int32) → integer log-softmax with scale
        ``2^-logit_frac_bits`` (§10). Rows are independent: a row's result does not depend on
        the other rows of the batch.
        """
        x, state = self.stack.step(embed(self.embedding, tokens), state, backend=backend)
        return self._log_probs(x, backend, None), state

    def sequence(self, tokens: np.ndarray, *, backend: str = "numba",
                 trace: Trace | None = None) -> np.ndarray:
        """Log-probabilities int32 [T, V] after each of ``tokens`` [T], from the initial state.

        The same integers as T calls of :meth:`step`; with ``trace``, records
        ``lm.embedding``, ``lm.layer{l}.*`` (§8.7), ``lm.logits`` and ``lm.log_probs``.
        """
        x = embed(self.embedding, tokens)
        if trace is not None:
            trace.record(names.embedding(names.LM), x)
        x = self.stack.sequence(x, backend=backend, trace=trace, prefix=names.LM)
        return self._log_probs(x, backend, trace)

    def _log_probs(self, x: np.ndarray, backend: str, trace: Trace | None) -> np.ndarray:
        ops = get_backend(backend)
        logits = ops.gemv.linear(x, self.out, self.output, self.rounding, np.int32)
        log_probs = ops.log_softmax.log_softmax(logits, self.logit_frac_bits, self.exp2_table,
                                                self.ln_table)
        if trace is not None:
            trace.record(names.LM_LOGITS, logits)
            trace.record(names.LM_LOG_PROBS, log_probs)
        return log_probs

    def lstm_cells(self) -> Iterator[tuple[str, LstmCell]]:
        """Every LSTM layer: (layer name, cell)."""
        for index, cell in enumerate(self.layers):
            yield names.stack_layer(names.LM, index), cell

    def linear_layers(self) -> Iterator[tuple[str, QLinear, ActQuant]]:
        """Every fully connected layer: (name, layer, format of its input codes)."""
        for prefix, cell in self.lstm_cells():
            yield from cell.linear_layers(prefix)
        yield names.name(names.LM, "out"), self.out, self.output
