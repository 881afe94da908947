"""The float NumPy forward of the architectures int4rt runs (float64 throughout).

It mirrors PyTorch: ``nn.LSTM`` (gates i, f, g, o; c = f·c + i·g; h = o·tanh(c)), a Bi-LSTM
concatenating [forward, backward] per frame, frame stacking before a layer (padded at the end
with zero frames, ARITHMETIC.md §8.5), ``nn.Linear``, ``nn.Embedding``, the joint network
(additive: tanh(E + P); multiplicative: tanh(E · P)) and log-softmax. The converter calibrates
on it and the report measures the integer model against it. It computes in float32, as
PyTorch does (a float32 recurrent matrix-vector product is an order of magnitude faster than a
float64 one once the matrix leaves the cache); the layers keep the checkpoint's weights for the
quantizers. ``record(name, values)`` receives
intermediates under the trace names of ARITHMETIC.md §8.7 (joint tensors as [T·(U+1), ·] rows,
frame-major, as ``RnntModel.lattice`` traces them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from int4rt import trace_names as names
from int4rt.model.config import LmConfig, ModelConfig, RnntConfig

from .layout import SCALE_SUFFIX, Tensors, lstm_names

Record = Callable[[str, np.ndarray], None] | None


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function, without overflow."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log-softmax over the last axis."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _f32(array: np.ndarray | None) -> np.ndarray | None:
    return None if array is None else np.ascontiguousarray(array, dtype=np.float32)


@dataclass(frozen=True, eq=False)
class Linear:
    """``nn.Linear``: y = x Wᵀ + b (no b when the layer has none). ``scale``: the learned
    weight scales of a QAT checkpoint, one per row block (CONVERT.md §1.3), else None.
    """

    weight: np.ndarray
    bias: np.ndarray | None
    scale: np.ndarray | None = None

    @cached_property
    def _float32(self) -> tuple[np.ndarray, np.ndarray | None]:
        return _f32(self.weight.T), _f32(self.bias)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        weight_t, bias = self._float32
        y = x.astype(np.float32, copy=False) @ weight_t
        return y if bias is None else y + bias


@dataclass(frozen=True, eq=False)
class Lstm:
    """One direction of one ``nn.LSTM`` layer; ``bias`` = b_ih + b_hh (None without bias).

    ``cell_clip`` > 0 clamps the cell state to [−clip, clip] after each update (as TFLite's
    LSTM does); 0 means none. ``w_ih_scale``/``w_hh_scale``: learned weight scales per gate
    block (CONVERT.md §1.3), else None.
    """

    w_ih: np.ndarray
    w_hh: np.ndarray
    bias: np.ndarray | None
    cell_clip: float = 0.0
    w_ih_scale: np.ndarray | None = None
    w_hh_scale: np.ndarray | None = None

    @property
    def hidden_size(self) -> int:
        """H."""
        return self.w_hh.shape[1]

    @cached_property
    def _input(self) -> Linear:
        return Linear(self.w_ih, self.bias)

    @cached_property
    def _w_hh(self) -> np.ndarray:
        return _f32(self.w_hh)

    def project(self, x: np.ndarray) -> np.ndarray:
        """x·W_ihᵀ + b for every row of x."""
        return self._input(x)

    def step(self, projected: np.ndarray, h: np.ndarray,
             c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One step from the input projection x·W_ihᵀ + b [4H] and the state (h, c)."""
        size = self.hidden_size
        pre = projected + self._w_hh @ h
        i, f, o = (sigmoid(pre[k * size:(k + 1) * size]) for k in (0, 1, 3))
        c = f * c + i * np.tanh(pre[2 * size:3 * size])
        if self.cell_clip > 0:
            c = np.clip(c, -self.cell_clip, self.cell_clip)
        return o * np.tanh(c), c

    def run(self, x: np.ndarray, reverse: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Hidden and cell states [T, H] after every step over x [T, I] (input time order)."""
        steps, size = x.shape[0], self.hidden_size
        projected = self.project(x)
        h, c = np.zeros(size, np.float32), np.zeros(size, np.float32)
        hs, cs = np.zeros((steps, size), np.float32), np.zeros((steps, size), np.float32)
        for t in range(steps - 1, -1, -1) if reverse else range(steps):
            h, c = self.step(projected[t], h, c)
            hs[t], cs[t] = h, c
        return hs, cs


def run_stack(cells: tuple[Lstm, ...], x: np.ndarray, prefix: str, record: Record) -> np.ndarray:
    """Unidirectional layers ``{prefix}.layer{l}`` one after the other."""
    for index, cell in enumerate(cells):
        x, c = cell.run(x)
        if record is not None:
            record(names.name(names.stack_layer(prefix, index), "hidden"), x)
            record(names.name(names.stack_layer(prefix, index), "cell"), c)
    return x


def stack_frames(x: np.ndarray, factor: int) -> np.ndarray:
    """Concatenate ``factor`` consecutive frames, zero-padding the tail (§8.5)."""
    if factor == 1:
        return x
    steps, width = x.shape
    padded = np.zeros((-(-steps // factor) * factor, width), dtype=x.dtype)
    padded[:steps] = x
    return padded.reshape(-1, factor * width)


@dataclass(frozen=True, eq=False)
class FloatRnnt:
    """A float RNN-T: CMVN, (Bi-)LSTM encoder with stacking, predictor, joint."""

    blank_id: int
    cmvn: tuple[np.ndarray, np.ndarray] | None
    encoder: tuple[tuple[tuple[Lstm, ...], int], ...]  # (cells, stack) per layer
    embedding: np.ndarray
    predictor: tuple[Lstm, ...]
    joint_enc: Linear
    joint_pred: Linear
    joint_out: Linear
    mode: str

    def normalize(self, features: np.ndarray) -> np.ndarray:
        """Global CMVN (when the model has it): (x − mean) / std."""
        x = np.asarray(features, dtype=np.float32)
        return x if self.cmvn is None else (x - self.cmvn[0]) / self.cmvn[1]

    def encode(self, features: np.ndarray, record: Record = None) -> np.ndarray:
        """Encoder output [T', E] of float features [T, F]."""
        x = self.normalize(features)
        if record is not None:
            record(names.ENCODER_INPUT, x)
        for index, (cells, stack) in enumerate(self.encoder):
            x = stack_frames(x, stack)
            outputs = []
            for direction, cell in enumerate(cells):
                h, c = cell.run(x, reverse=direction == 1)
                outputs.append(h)
                if record is not None:
                    record(names.name(names.encoder_cell(index, direction), "hidden"), h)
                    record(names.name(names.encoder_cell(index, direction), "cell"), c)
            x = np.concatenate(outputs, axis=1)
        return x

    def predict(self, labels: list[int], record: Record = None) -> np.ndarray:
        """Predictor outputs [U+1, H] for the history blank, labels[0], ..., labels[U−1]."""
        x = self.embedding[[self.blank_id, *labels]]
        if record is not None:
            record(names.embedding(names.PREDICTOR), x)
        return run_stack(self.predictor, x, names.PREDICTOR, record)

    def joint(self, enc: np.ndarray, pred: np.ndarray, record: Record = None,
              pairs: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """Log-probabilities [T, U+1, V] of every (frame, label history) pair.

        With ``pairs`` = (frame indices, history indices), only those pairs: [N, V].
        """
        e, p = self.joint_enc(enc), self.joint_pred(pred)
        if record is not None:
            record(names.JOINT_ENC_PROJ, e)
            record(names.JOINT_PRED_PROJ, p)
        frames, histories = pairs if pairs is not None else (
            np.repeat(np.arange(len(e)), len(p)), np.tile(np.arange(len(p)), len(e)))
        pre = e[frames] + p[histories] if self.mode == "additive" else e[frames] * p[histories]
        hidden = np.tanh(pre)
        logits = self.joint_out(hidden)
        log_probs = log_softmax(logits)
        if record is not None:
            for key, value in (("pre", pre), ("tanh", hidden), ("logits", logits),
                               ("log_probs", log_probs)):
                record(names.name(names.JOINT, key), value)
        return log_probs if pairs is not None else log_probs.reshape(len(e), len(p), -1)

    def greedy_labels(self, enc: np.ndarray, max_symbols: int = 3) -> list[int]:
        """Greedy RNN-T search (at most ``max_symbols`` labels per frame): the label ids."""
        labels: list[int] = []
        states = [(np.zeros(cell.hidden_size, np.float32), np.zeros(cell.hidden_size, np.float32))
                  for cell in self.predictor]

        def advance(token: int) -> np.ndarray:
            x = self.embedding[token]
            for index, cell in enumerate(self.predictor):
                states[index] = cell.step(cell.project(x), *states[index])
                x = states[index][0]
            return self.joint_pred(x)

        pred = advance(self.blank_id)
        for frame in self.joint_enc(enc):
            for _ in range(max_symbols):
                pre = frame + pred if self.mode == "additive" else frame * pred
                best = int(np.argmax(self.joint_out(np.tanh(pre))))
                if best == self.blank_id:
                    break
                labels.append(best)
                pred = advance(best)
        return labels


@dataclass(frozen=True, eq=False)
class FloatLm:
    """A float character LSTM LM: embedding, LSTM layers, output layer."""

    embedding: np.ndarray
    layers: tuple[Lstm, ...]
    out: Linear

    def log_probs(self, ids: list[int], record: Record = None) -> np.ndarray:
        """Next-token log-probabilities [U+1, V] after the boundary (id 0) and ``ids``."""
        x = self.embedding[[0, *ids]]
        if record is not None:
            record(names.embedding(names.LM), x)
        logits = self.out(run_stack(self.layers, x, names.LM, record))
        log_probs = log_softmax(logits)
        if record is not None:
            record(names.LM_LOGITS, logits)
            record(names.LM_LOG_PROBS, log_probs)
        return log_probs


def _lstm(tensors: Tensors, prefix: str, layer: int, reverse: bool, clip: float) -> Lstm:
    parts = lstm_names(prefix, layer, reverse)
    biases = [tensors.get(parts[part]) for part in ("bias_ih", "bias_hh")]
    present = [b for b in biases if b is not None]
    bias = np.sum(present, axis=0) if present else None
    return Lstm(tensors[parts["weight_ih"]], tensors[parts["weight_hh"]], bias, clip,
                tensors.get(parts["weight_ih"] + SCALE_SUFFIX),
                tensors.get(parts["weight_hh"] + SCALE_SUFFIX))


def _linear(tensors: Tensors, prefix: str) -> Linear:
    return Linear(tensors[f"{prefix}.weight"], tensors.get(f"{prefix}.bias"),
                  tensors.get(f"{prefix}.weight{SCALE_SUFFIX}"))


def float_model(config: ModelConfig, tensors: Tensors, cell_clips: dict[str, float],
                cmvn: tuple[np.ndarray, np.ndarray] | None) -> FloatRnnt | FloatLm:
    """The float model of ``config`` from checked tensors; ``cell_clips`` by LSTM layer name."""
    if isinstance(config, LmConfig):
        layers = tuple(_lstm(tensors, "lstm", i, False, cell_clips.get(f"lm.layer{i}", 0.0))
                       for i in range(config.num_layers))
        return FloatLm(tensors["embedding.weight"], layers, _linear(tensors, "out"))
    assert isinstance(config, RnntConfig)
    enc = config.encoder
    encoder = tuple(
        (tuple(_lstm(tensors, "encoder.lstm", i, reverse, cell_clips.get(f"encoder.layer{i}", 0.0))
               for reverse in ((False, True) if enc.bidirectional else (False,))), stack)
        for i, stack in enumerate(enc.stack))
    predictor = tuple(_lstm(tensors, "predictor.lstm", i, False,
                            cell_clips.get(f"predictor.layer{i}", 0.0))
                      for i in range(config.predictor.num_layers))
    return FloatRnnt(config.blank_id, cmvn, encoder, tensors["predictor.embedding.weight"],
                     predictor, _linear(tensors, "joint.enc"), _linear(tensors, "joint.pred"),
                     _linear(tensors, "joint.out"), config.joint.mode)
