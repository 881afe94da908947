"""The integer RNN-T model: encoder, predictor and joint over quantized layers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from int4rt import trace_names as names
from int4rt.errors import Int4rtError
from int4rt.layers import (
    ActQuant,
    Encoder,
    Joint,
    LstmCell,
    Predictor,
    QLinear,
)
from int4rt.model.frontend_kinds import KaldiFbankOptions
from int4rt.model.lstm_stack import LstmStack, LstmState, embed
from int4rt.ops.registry import get_backend
from int4rt.options import KALDI_FBANK, LOG_MEL, FrontendKind
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
    kaldi_fbank: KaldiFbankOptions | None = None  # None: the log-mel front end

    @property
    def kind(self) -> FrontendKind:
        """``log-mel`` or ``kaldi-fbank`` (FORMAT.md §2.6)."""
        return LOG_MEL if self.kaldi_fbank is None else KALDI_FBANK

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
        """Float features [T, F] → global CMVN → the encoder's input codes (§8.6)."""
        feats = np.asarray(features)
        expected = self.frontend.feature_dim
        if feats.ndim != 2 or feats.shape[1] != expected:
            raise Int4rtError(
                f"features must have shape [frames, {expected}], got {list(feats.shape)}")
        if not np.issubdtype(feats.dtype, np.floating) or not np.all(np.isfinite(feats)):
            raise Int4rtError("features must be finite floating-point values")
        values = feats.astype(np.float64)
        if self.frontend.cmvn_mean is not None:
            values = (values - self.frontend.cmvn_mean.astype(np.float64)) / \
                self.frontend.cmvn_std.astype(np.float64)
        return self.encoder.input.quantize(values)

    def encode(self, features: np.ndarray, *, backend: str = "numba",
               trace: Trace | None = None) -> tuple[np.ndarray, ActQuant]:
        """Encoder output codes [T', E] and their format, from float features [T, F]."""
        return self.encode_codes(self.quantize_features(features), backend=backend, trace=trace)

    def encode_codes(self, codes: np.ndarray, *, backend: str = "numba",
                     trace: Trace | None = None) -> tuple[np.ndarray, ActQuant]:
        """``encode`` from the encoder's input codes [T, F] (``quantize_features``' output)."""
        if trace is not None:
            trace.record(names.ENCODER_INPUT, codes)
        x = self.encoder_stack.sequence(codes, backend=backend, trace=trace, prefix=names.ENCODER)
        return x, self.encoder.output

    def lstm_cells(self) -> Iterator[tuple[str, LstmCell]]:
        """Every LSTM direction, encoder then predictor: (layer name, cell)."""
        for index, layer in enumerate(self.encoder.layers):
            for direction, cell in enumerate(layer.cells):
                yield names.encoder_cell(index, direction), cell
        for index, cell in enumerate(self.predictor.layers):
            yield names.stack_layer(names.PREDICTOR, index), cell

    def linear_layers(self) -> Iterator[tuple[str, QLinear, ActQuant]]:
        """Every fully connected layer: (name, layer, format of its input codes)."""
        for prefix, cell in self.lstm_cells():
            yield from cell.linear_layers(prefix)
        yield names.JOINT_ENC_PROJ, self.joint.enc_proj, self.encoder.output
        yield names.JOINT_PRED_PROJ, self.joint.pred_proj, self.predictor.output
        yield names.name(names.JOINT, "out"), self.joint.out, self.joint.hidden

    @property
    def encoder_stack(self) -> LstmStack:
        """The encoder's (Bi-)LSTM layers with this model's arithmetic (§8.5)."""
        return LstmStack.of_encoder(self.encoder, self.sigmoid_table, self.rounding)

    @property
    def predictor_stack(self) -> LstmStack:
        """The predictor's LSTM layers with this model's arithmetic (§8.5, §8.6)."""
        return LstmStack.of_cells(self.predictor.layers, self.sigmoid_table, self.rounding)

    def predictor_initial_state(self, batch: int) -> LstmState:
        """State before any label: h = each layer's hidden zero point, c = 0 (§8.4)."""
        return self.predictor_stack.initial_state(batch)

    def predictor_step(self, tokens: np.ndarray, state: LstmState, *,
                       backend: str = "numba") -> tuple[np.ndarray, LstmState]:
        """Embed ``tokens`` [B] and advance every layer one step: (output codes [B, H], state)."""
        return self.predictor_stack.step(embed(self.predictor.embedding, tokens), state,
                                         backend=backend)

    def project_encoder(self, enc_codes: np.ndarray, *, backend: str = "numba") -> np.ndarray:
        """Joint encoder projection int16 [T, J], computed once per utterance (§9.1)."""
        return get_backend(backend).joint.project_encoder(
            self.joint, enc_codes, self.encoder.output, self.rounding)

    def project_predictor(self, pred_codes: np.ndarray, *, backend: str = "numba") -> np.ndarray:
        """Joint predictor projection int16 [N, J] of predictor outputs [N, H] (§9.1)."""
        return get_backend(backend).joint.project_predictor(
            self.joint, pred_codes, self.predictor.output, self.rounding)

    def joint_log_probs(self, enc_proj: np.ndarray, pred_proj: np.ndarray, *,
                        backend: str = "numba", trace: Trace | None = None) -> np.ndarray:
        """Log-probabilities int32 [N, V] (scale 2^-logit_frac_bits) of N projection pairs."""
        ops = get_backend(backend)
        logits = ops.joint.joint_logits(self.joint, enc_proj, pred_proj, self.sigmoid_table,
                                        self.rounding, trace=trace)
        log_probs = ops.log_softmax.log_softmax(logits, self.joint.logit_frac_bits,
                                                self.exp2_table, self.ln_table)
        if trace is not None:
            trace.record(names.JOINT_LOG_PROBS, log_probs)
        return log_probs

    def lattice(self, features: np.ndarray, labels: list[int] | np.ndarray, *,
                backend: str = "numba", trace: Trace | None = None) -> np.ndarray:
        """Log-probabilities int32 [T', U + 1, V] of every (frame, label prefix) pair.

        The label history starts with blank (§8.6); ``labels`` are U non-blank ids (a blank
        among them is an error). With a trace, every intermediate from feature codes to
        log-probabilities is recorded.
        """
        enc, _ = self.encode(features, backend=backend, trace=trace)
        history = np.concatenate([[self.blank_id], np.asarray(labels, dtype=np.int64)])
        vocab = self.predictor.embedding.shape[0]
        if history.min() < 0 or history.max() >= vocab:
            raise Int4rtError(f"labels must be ids in [0, {vocab})")
        if np.any(history[1:] == self.blank_id):
            raise Int4rtError(f"labels must be non-blank ids: the blank id {self.blank_id} "
                              "starts every history by itself (ARITHMETIC.md §8.6)")
        x = self.predictor.embedding[history]
        if trace is not None:
            trace.record(names.embedding(names.PREDICTOR), x)
        x = self.predictor_stack.sequence(x, backend=backend, trace=trace,
                                          prefix=names.PREDICTOR)
        enc_proj = self.project_encoder(enc, backend=backend)
        pred_proj = self.project_predictor(x, backend=backend)
        if trace is not None:
            trace.record(names.JOINT_ENC_PROJ, enc_proj)
            trace.record(names.JOINT_PRED_PROJ, pred_proj)
        frames, prefixes = enc_proj.shape[0], pred_proj.shape[0]
        pairs_e = np.repeat(enc_proj, prefixes, axis=0)
        pairs_p = np.tile(pred_proj, (frames, 1))
        log_probs = self.joint_log_probs(pairs_e, pairs_p, backend=backend, trace=trace)
        return log_probs.reshape(frames, prefixes, -1)

