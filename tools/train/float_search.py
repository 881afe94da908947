"""FP32 decoding with int4rt's own search: the converter's float model behind the model
interface ``int4rt.decode.search`` calls (docs/RESULTS.md, "Accuracy").

The search (docs/DECODING.md) only calls a handful of model methods: ``predictor_initial_state``,
``predictor_step``, ``project_predictor``, ``joint_log_probs`` and, per LM, ``initial_state`` and
``step``; it reads ``vocab``, ``blank_id``, ``joint.logit_frac_bits``, the encoder's ``stack``
factors and the front end's frame shift. :class:`FloatSearchRnnt` and :class:`FloatSearchLm`
provide exactly these on top of ``int4rt_convert.float_model`` (the converter's independent
NumPy float forward), so FP32 rows run the same greedy / modified beam search, the same
candidate order, recombination and fusion arithmetic as the integer rows.

The search keeps scores as integers. The adapters hand it float log-probabilities in fixed
point with ``FLOAT_FRAC_BITS`` = 16 fractional bits (round half to even, 2^-16 ≈ 1.5e-5 nats,
clamped to int32: a log-probability below −32768 nats is held at that floor); the LM terms use
the same scale. Nothing else is rounded: predictor and LM states stay float.

The "projections" the search caches are the float predictor outputs and encoder outputs
themselves; ``joint_log_probs`` runs the float model's whole joint (both projections, tanh,
output layer, log-softmax) on each (frame, history) pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from int4rt.model.config import LmConfig, ModelConfig, RnntConfig, load_config
from int4rt.model.lstm_stack import LstmState
from int4rt_convert.build import cell_clips
from int4rt_convert.checkpoint import read_checkpoint
from int4rt_convert.float_model import FloatLm, FloatRnnt, Lstm, float_model, log_softmax
from int4rt_convert.layout import Tensors, lstm_layers

FLOAT_FRAC_BITS = 16
_INT32 = np.iinfo(np.int32)


def fixed_point_log_probs(log_probs: np.ndarray) -> np.ndarray:
    """Float log-probabilities → int32 in units of 2^-FLOAT_FRAC_BITS (rounded, clamped)."""
    scaled = np.rint(np.asarray(log_probs, dtype=np.float64) * (1 << FLOAT_FRAC_BITS))
    return np.clip(scaled, _INT32.min, _INT32.max).astype(np.int32)


@dataclass(frozen=True)
class _Joint:
    logit_frac_bits: int


@dataclass(frozen=True)
class _Layer:
    stack: int


@dataclass(frozen=True)
class _Encoder:
    layers: tuple[_Layer, ...]


@dataclass(frozen=True)
class _Frontend:
    frame_shift_ms: float


def _initial(cells: tuple[Lstm, ...], batch: int) -> LstmState:
    zeros = tuple(np.zeros((batch, cell.hidden_size), np.float32) for cell in cells)
    return LstmState(zeros, zeros)


def _step(cells: tuple[Lstm, ...], x: np.ndarray, state: LstmState
          ) -> tuple[np.ndarray, LstmState]:
    """Every layer one step, row by row with the float model's own ``Lstm.step``."""
    hs, cs = [], []
    for layer, cell in enumerate(cells):
        projected = cell.project(x)
        rows = [cell.step(projected[b], state.h[layer][b], state.c[layer][b])
                for b in range(len(x))]
        h = np.stack([r[0] for r in rows]).astype(np.float32)
        hs.append(h)
        cs.append(np.stack([r[1] for r in rows]).astype(np.float32))
        x = h
    return x, LstmState(tuple(hs), tuple(cs))


class FloatSearchRnnt:
    """A :class:`FloatRnnt` with the interface ``int4rt.decode.search`` calls."""

    def __init__(self, fmodel: FloatRnnt, config: RnntConfig) -> None:
        self.fmodel = fmodel
        self.vocab = tuple(config.vocab)
        self.blank_id = config.blank_id
        self.joint = _Joint(FLOAT_FRAC_BITS)
        self.encoder = _Encoder(tuple(_Layer(stack) for stack in config.encoder.stack))
        self.frontend = _Frontend(config.frontend.frame_shift_ms)

    def encode_features(self, features: np.ndarray) -> np.ndarray:
        """What ``search`` takes as ``enc_proj``: the float encoder output [T', E]."""
        return self.fmodel.encode(features)

    def predictor_initial_state(self, batch: int) -> LstmState:
        """h = c = 0 for every predictor layer."""
        return _initial(self.fmodel.predictor, batch)

    def predictor_step(self, tokens: np.ndarray, state: LstmState, *, backend: str = "numba"
                       ) -> tuple[np.ndarray, LstmState]:
        """Embed ``tokens`` [B] and advance the predictor one step (``backend`` unused)."""
        return _step(self.fmodel.predictor, self.fmodel.embedding[np.asarray(tokens)], state)

    def project_predictor(self, pred: np.ndarray, *, backend: str = "numba") -> np.ndarray:
        """The predictor output itself (the joint projects it in ``joint_log_probs``)."""
        return pred

    def joint_log_probs(self, enc: np.ndarray, pred: np.ndarray, *, backend: str = "numba"
                        ) -> np.ndarray:
        """Fixed-point log-probabilities int32 [N, V] of N (encoder, predictor) output rows."""
        rows = np.arange(len(enc))
        return fixed_point_log_probs(self.fmodel.joint(enc, pred, pairs=(rows, rows)))


class FloatSearchLm:
    """A :class:`FloatLm` with the interface of ``LmModel`` that the search calls."""

    def __init__(self, fmodel: FloatLm, config: LmConfig) -> None:
        self.fmodel = fmodel
        self.vocab = tuple(config.vocab)
        self.logit_frac_bits = FLOAT_FRAC_BITS

    def initial_state(self, batch: int) -> LstmState:
        """h = c = 0 for every layer."""
        return _initial(self.fmodel.layers, batch)

    def step(self, tokens: np.ndarray, state: LstmState, *, backend: str = "numba"
             ) -> tuple[np.ndarray, LstmState]:
        """Feed ``tokens`` [B]: (fixed-point log-probabilities int32 [B, V], state)."""
        hidden, state = _step(self.fmodel.layers, self.fmodel.embedding[np.asarray(tokens)],
                              state)
        return fixed_point_log_probs(log_softmax(self.fmodel.out(hidden))), state


def load_float(checkpoint: str | Path, config: str | Path | ModelConfig,
               cmvn: tuple[np.ndarray, np.ndarray] | None = None
               ) -> FloatSearchRnnt | FloatSearchLm:
    """The float model of a checkpoint (converter reference names), ready for the search.

    ``cmvn`` (mean, std) is used when the checkpoint holds no ``frontend.cmvn_*`` tensors;
    pass the statistics the converter stored in the integer model (``model.frontend``).
    """
    cfg = config if isinstance(config, ModelConfig) else load_config(config)
    tensors = Tensors({name: (name, value) for name, value in read_checkpoint(checkpoint).items()},
                      cfg)
    clips = cell_clips(tensors, None, lstm_layers(cfg))
    if isinstance(cfg, LmConfig):
        return FloatSearchLm(float_model(cfg, tensors, clips, None), cfg)
    mean, std = tensors.get("frontend.cmvn_mean"), tensors.get("frontend.cmvn_std")
    stats = (mean, std) if mean is not None and std is not None else cmvn
    if cfg.frontend.cmvn and stats is None:
        raise ValueError(f"{checkpoint}: no CMVN statistics in the checkpoint; pass cmvn=")
    if stats is not None:
        stats = (np.asarray(stats[0], np.float32), np.asarray(stats[1], np.float32))
    return FloatSearchRnnt(float_model(cfg, tensors, clips, stats), cfg)
