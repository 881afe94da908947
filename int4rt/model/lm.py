"""The integer character LSTM language model used for fusion (docs/FORMAT.md §2.8)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from int4rt.errors import ArithmeticSpecError, Int4rtError
from int4rt.layers import (
    LOGIT_FRAC_BITS_MAX,
    LOGIT_FRAC_BITS_MIN,
    ActQuant,
    LstmCell,
    Predictor,
    QLinear,
    initial_state,
)
from int4rt.ops.registry import get_backend


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

    def initial_state(self, batch: int) -> LmState:
        """State before any input: h = each layer's hidden zero point, c = 0 (§8.4)."""
        states = [initial_state(cell, batch) for cell in self.layers]
        return LmState(tuple(h for h, _ in states), tuple(c for _, c in states))

    def step(self, tokens: np.ndarray, state: LmState, *,
             backend: str = "numba") -> tuple[np.ndarray, LmState]:
        """Feed ``tokens`` [B] and return (log-probabilities int32 [B, V] of the next token, state).

        Embedding codes → every LSTM layer one step (§8.2–§8.4) → ``out`` to int32 logits
        (§7.1, output zero point 0, clamped to int32) → integer log-softmax with scale
        ``2^-logit_frac_bits`` (§10). Rows are independent: a row's result does not depend on
        the other rows of the batch.
        """
        ops = get_backend(backend)
        tokens = np.asarray(tokens)
        vocab = len(self.vocab)
        if tokens.ndim != 1 or not np.issubdtype(tokens.dtype, np.integer) or (
                tokens.size and (tokens.min() < 0 or tokens.max() >= vocab)):
            raise Int4rtError(f"tokens must be a 1-D array of ids in [0, {vocab})")
        x = self.embedding[tokens]
        hs, cs = [], []
        for cell, h, c in zip(self.layers, state.h, state.c, strict=True):
            x, c_new = ops.lstm.lstm_step(cell, x, h, c, self.sigmoid_table, self.rounding)
            hs.append(x)
            cs.append(c_new)
        logits = ops.gemv.linear(x, self.out, self.output, self.rounding, np.int32)
        log_probs = ops.log_softmax.log_softmax(logits, self.logit_frac_bits, self.exp2_table,
                                                self.ln_table)
        return log_probs, LmState(tuple(hs), tuple(cs))

    def validate(self, name: str = "lm") -> None:
        """Check shapes, the chain of formats and every layer (ARITHMETIC.md §7, §8)."""
        check_lstm_stack(name, self.layers)
        Predictor(self.embedding, self.layers).validate(name)  # embedding dtype, width, codes
        _need(self.embedding.shape[0] == len(self.vocab),
              f"{name}.embedding: {self.embedding.shape[0]} rows, vocabulary has "
              f"{len(self.vocab)} entries")
        _need(self.out.n_in == self.layers[-1].hidden_size and self.out.n_out == len(self.vocab),
              f"{name}.out: shape ({self.out.n_out}, {self.out.n_in}), expected "
              f"({len(self.vocab)}, {self.layers[-1].hidden_size})")
        self.out.validate(f"{name}.out", self.output.bits)
        _need(LOGIT_FRAC_BITS_MIN <= self.logit_frac_bits <= LOGIT_FRAC_BITS_MAX,
              f"{name}.logit_frac_bits {self.logit_frac_bits} outside "
              f"[{LOGIT_FRAC_BITS_MIN}, {LOGIT_FRAC_BITS_MAX}]")


@dataclass(frozen=True, eq=False)
class LmState:
    """Per-history LM state: h codes and c (int16) per layer, batched over rows [B, H]."""

    h: tuple[np.ndarray, ...]
    c: tuple[np.ndarray, ...]


def check_lstm_stack(name: str, cells: tuple[LstmCell, ...]) -> None:
    """Validate unidirectional cells ``{name}.layer{l}``, each fed by the previous one."""
    _need(len(cells) > 0, f"{name}: needs at least one LSTM layer")
    for index, cell in enumerate(cells):
        cell.validate(f"{name}.layer{index}")
        if index:
            prev = cells[index - 1]
            _need(cell.input == prev.hidden,
                  f"{name}.layer{index}.input: format differs from {name}.layer{index - 1}.hidden")
            _need(cell.input_size == prev.hidden_size,
                  f"{name}.layer{index}: input size {cell.input_size} != hidden size "
                  f"{prev.hidden_size} of {name}.layer{index - 1}")


def _need(condition: bool, message: str) -> None:
    if not condition:
        raise ArithmeticSpecError(message)
