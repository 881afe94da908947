"""The integer RNN-T model: encoder, predictor and joint over quantized layers."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from int4rt.errors import Int4rtError
from int4rt.layers import (
    ActQuant,
    Encoder,
    Joint,
    LstmCell,
    Predictor,
    initial_state,
    stack_frames,
)
from int4rt.model.backend import lstm_backend
from int4rt.trace import Trace


@dataclass(frozen=True)
class Frontend:
    """Feature extraction settings stored with the model (the front end itself: issue 5)."""

    sample_rate: int = 16000
    n_mels: int = 40
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    deltas: int = 2
    cmvn_mean: np.ndarray | None = field(default=None, compare=False)
    cmvn_std: np.ndarray | None = field(default=None, compare=False)

    @property
    def feature_dim(self) -> int:
        """Features per frame before stacking: mels × (1 + deltas)."""
        return self.n_mels * (1 + self.deltas)


@dataclass(frozen=True, eq=False)
class RnntModel:
    """A loaded integer RNN-T: every tensor and parameter the operators need."""

    vocab: tuple[str, ...]
    blank_id: int
    frontend: Frontend
    encoder: Encoder
    predictor: Predictor
    joint: Joint
    profile: str
    rounding: str
    sigmoid_table: np.ndarray
    exp2_table: np.ndarray
    ln_table: np.ndarray

    def quantize_features(self, features: np.ndarray) -> np.ndarray:
        """Float features [T, F] to the encoder's input codes (ARITHMETIC.md §8.6)."""
        feats = np.asarray(features)
        expected = self.encoder.layers[0].cells[0].input_size // self.encoder.layers[0].stack
        if feats.ndim != 2 or feats.shape[1] != expected:
            raise Int4rtError(
                f"features must have shape [frames, {expected}], got {feats.shape}")
        if not np.issubdtype(feats.dtype, np.floating) or not np.all(np.isfinite(feats)):
            raise Int4rtError("features must be finite floating-point values")
        return self.encoder.input.quantize(feats)

    def encode(self, features: np.ndarray, *, backend: str = "numba",
               trace: Trace | None = None) -> tuple[np.ndarray, ActQuant]:
        """Encoder output codes [T', E] and their format, from float features [T, F]."""
        ops = lstm_backend(backend)
        x = self.quantize_features(features)
        if trace is not None:
            trace.record("encoder.input", x)
        for index, layer in enumerate(self.encoder.layers):
            prefix = f"encoder.layer{index}"
            x = stack_frames(x, layer.stack, layer.cells[0].input.zero_point)
            if trace is not None and layer.stack > 1:
                trace.record(f"{prefix}.stacked", x)
            outputs = [
                ops.lstm_sequence(cell, x, self.sigmoid_table, self.rounding,
                                  reverse=direction == 1, trace=trace,
                                  prefix=f"{prefix}.{'bwd' if direction else 'fwd'}")[0]
                for direction, cell in enumerate(layer.cells)
            ]
            x = np.concatenate(outputs, axis=1) if len(outputs) > 1 else outputs[0]
        return x, self.encoder.output


@dataclass(frozen=True, eq=False)
class PredictorState:
    """Per-hypothesis predictor state: h codes and c per layer, batched over rows [B, H]."""

    h: tuple[np.ndarray, ...]
    c: tuple[np.ndarray, ...]


def predictor_initial_state(predictor: Predictor, batch: int) -> PredictorState:
    """h = each layer's hidden zero point, c = 0 (ARITHMETIC.md §8.4)."""
    states = [initial_state(cell, batch) for cell in predictor.layers]
    return PredictorState(tuple(h for h, _ in states), tuple(c for _, c in states))


def predictor_step(model: RnntModel, tokens: np.ndarray, state: PredictorState, *,
                   backend: str = "numba") -> tuple[np.ndarray, PredictorState]:
    """Embed ``tokens`` [B] and advance every layer one step; returns (output codes, state)."""
    ops = lstm_backend(backend)
    tokens = np.asarray(tokens)
    vocab = model.predictor.embedding.shape[0]
    if tokens.ndim != 1 or (tokens.size and (tokens.min() < 0 or tokens.max() >= vocab)):
        raise Int4rtError(f"tokens must be a 1-D array of ids in [0, {vocab})")
    x = model.predictor.embedding[tokens]
    hs, cs = [], []
    cell: LstmCell
    for cell, h, c in zip(model.predictor.layers, state.h, state.c, strict=True):
        x, c_new = ops.lstm_step(cell, x, h, c, model.sigmoid_table, model.rounding)
        hs.append(x)
        cs.append(c_new)
    return x, PredictorState(tuple(hs), tuple(cs))
