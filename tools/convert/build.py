"""Integer model construction: float weights + ranges → int4rt layers (ARITHMETIC.md §3, §7–§9).

Every (multiplier, shift) comes from ``quantize_multiplier`` of a double product of float32
scales (§3): LSTM gate rows to Q3.12 (§8.1), ``tanh(c)·o`` (scale 2^-30) to the hidden format
(§8.4), joint projections to Q3.12 (additive) or to int16 scales chosen from the calibrated
range (multiplicative), their product back to Q3.12, the joint tanh (Q0.15) to its hidden
format and the output rows to logits of scale 2^-logit_frac_bits (§9.1). An activation range
comes from, in this order: QAT clip values in the checkpoint, calibration, a static range
(hidden states and the joint's tanh lie in [-1, 1]; embeddings are their table's values).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from int4rt.arith import INT32_MAX, accumulator_bound, quantize_multiplier
from int4rt.errors import ArithmeticSpecError
from int4rt.layers import ActQuant, Encoder, EncoderLayer, Joint, LstmCell, Predictor, QLinear
from int4rt.model.config import LmConfig, ModelConfig, RnntConfig
from int4rt.model.lm import LmModel
from int4rt.model.rnnt import Frontend, RnntModel
from int4rt.model.validation import profile_tables
from int4rt.quantization import (
    GATE_PRE_SCALE,
    HIDDEN_RANGE,
    f32,
    hidden_requant,
    joint_hidden_requant,
    quantize_weight_codes,
    requant_params,
)

from .calibration import Calibration
from .errors import ConvertError
from .float_model import FloatLm, FloatRnnt, Linear, Lstm
from .layout import LSTM_GATES, Tensors
from .quantizers import (
    cell_clip_code,
    cell_scale_log2,
    estimate_range,
    format_with_zero,
    weight_scales,
)

INT16_MAX = 32767


@dataclass(frozen=True)
class QuantOptions:
    """How to quantize (docs/CONVERT.md §4): weight clip method and granularity, activation
    range method (and percentile), cell-scale source, a float cell clip for every LSTM layer.
    """

    weight_scale: str = "mse"
    granularity: str = "per_row"
    activation_range: str = "mse"
    percentile: float = 99.99
    cell_scale: str = "calibrate"
    cell_clip: float | None = None


@dataclass(frozen=True, eq=False)
class LinearInfo:
    """What the report needs about one quantized fully connected layer."""

    weight: np.ndarray
    scales: np.ndarray
    bias_rows_raised: int
    scale_source: str


@dataclass(frozen=True)
class FormatInfo:
    """An activation format and where its range came from."""

    format: ActQuant
    low: float
    high: float
    source: str


@dataclass(frozen=True)
class CellInfo:
    """A cell's scale and clip, with the calibrated max |c| (None without calibration)."""

    observed_max_abs: float | None
    float_clip: float | None
    scale_source: str


@dataclass
class BuildInfo:
    """Per-layer facts for the report, keyed by int4rt layer names."""

    linears: dict[str, LinearInfo] = field(default_factory=dict)
    formats: dict[str, FormatInfo] = field(default_factory=dict)
    cells: dict[str, CellInfo] = field(default_factory=dict)
    projection_scales: dict[str, tuple[float, str]] = field(default_factory=dict)


def cell_clips(tensors: Tensors, option: float | None, layers: list[str]) -> dict[str, float]:
    """Float cell clip per LSTM layer: the checkpoint's ``<layer>.cell_clip``, else the option."""
    clips = {}
    for layer in layers:
        value = tensors.scalar(f"{layer}.cell_clip")
        value = option if value is None else value
        if value is not None:
            if not value > 0:
                raise ConvertError(f"{layer}: cell clip must be positive, got {value!r}")
            clips[layer] = value
    return clips


class Builder:
    """Builds one integer model; collects :class:`BuildInfo` on the way."""

    def __init__(self, config: ModelConfig, tensors: Tensors, calibration: Calibration | None,
                 options: QuantOptions, clips: dict[str, float]) -> None:
        self.config, self.quant = config, config.quantization
        self.tensors, self.calibration, self.options = tensors, calibration, options
        self.clips = clips
        self.info = BuildInfo()

    # --- activation formats and scales ----------------------------------------------------

    def activation(self, name: str, static: tuple[float, float] | np.ndarray | None) -> ActQuant:
        """The format of the codes layer ``name`` produces (FORMAT.md §6.2 names)."""
        bits, signed = self.quant.activation_bits_for(name), self.quant.activation_signed
        method, percentile = self.options.activation_range, self.options.percentile
        low_t, high_t = (self.tensors.scalar(f"{name}.act_clip_{end}") for end in ("low", "high"))
        observer = self.calibration.observers.get(name) if self.calibration else None
        if low_t is not None or high_t is not None:
            if low_t is None or high_t is None:
                raise ConvertError(f"{name}: the checkpoint has only one of {name}.act_clip_low "
                                   f"and {name}.act_clip_high")
            if not low_t < high_t:
                raise ConvertError(f"{name}: QAT clip low {low_t!r} is not below high {high_t!r}")
            low, high, source = low_t, high_t, "QAT clip values"
        elif observer is not None:
            low, high = estimate_range(observer.samples, observer.low, observer.high, bits,
                                       signed, method, percentile)
            source = f"calibration ({method})"
        elif isinstance(static, np.ndarray):
            values = static.ravel()
            low, high = estimate_range(values, float(values.min()), float(values.max()), bits,
                                       signed, method, percentile)
            source = f"embedding table ({method})"
        elif static is not None:
            (low, high), source = static, "static range [-1, 1]"
        else:
            raise ConvertError(f"{name}: no calibration data (--calib) and no QAT clip values "
                               f"({name}.act_clip_low/high) to choose its range from")
        fmt = format_with_zero(bits, signed, low, high)
        self.info.formats[name] = FormatInfo(fmt, float(low), float(high), source)
        return fmt

    def linear(self, name: str, layer: Linear, bits: int, x_format: ActQuant, out_scale: float,
               gate_blocks: int) -> QLinear:
        """A §7.1 layer: weight codes, int32 bias in the accumulator scale s_x·s_w, per-row
        (M, s) = QM(s_x·s_w[r] / out_scale). Scales per row or per gate block (``gate_blocks``
        blocks, stored per gate, FORMAT.md §2.4), or the checkpoint's learned ones (CONVERT.md
        §1.3). A row whose bias would not fit the int32 guard of §7.1 gets a larger weight
        scale (its whole block, per gate; an error with learned scales).
        """
        weight, bias = layer.weight, layer.bias
        rows = weight.shape[0]
        if layer.scale is not None:
            blocks, source = len(layer.scale), "checkpoint (QAT)"
            scales = np.repeat(layer.scale.astype(np.float32), rows // blocks)
        else:
            per_gate = self.options.granularity == "per_gate"
            blocks, source = (gate_blocks if per_gate else 0), f"{self.options.weight_scale} search"
            scales = weight_scales(weight, bits, self.options.weight_scale,
                                   self.options.granularity, gate_blocks)
        s_x = f32(x_format.scale)
        raised = 0
        bias_codes = np.zeros(rows, dtype=np.int32)
        if bias is not None:
            limit = INT32_MAX - accumulator_bound(weight.shape[1], 8, 8)
            needed = np.abs(bias) / (s_x * limit)
            low = scales.astype(np.float64) < needed
            raised = int(low.sum())
            if raised and layer.scale is not None:
                row = int(np.argmax(low))
                raise ConvertError(f"{name}: the bias of row {row} does not fit the int32 "
                                   f"accumulator (ARITHMETIC.md §7.1) with the checkpoint's "
                                   f"weight scale {float(scales[row])!r}; it needs at least "
                                   f"{float(needed[row])!r} (a larger learned scale or a "
                                   "smaller bias)")
            if raised:
                bumped = np.nextafter(needed.astype(np.float32), np.float32(np.inf))
                scales = np.where(low, bumped, scales).astype(np.float32)
                if blocks:  # one scale per block: the block takes its largest
                    scales = np.repeat(scales.reshape(blocks, -1).max(axis=1), rows // blocks)
            acc_scale = s_x * scales.astype(np.float64)
            bias_codes = np.clip(np.floor(bias / acc_scale + 0.5), -limit, limit).astype(np.int32)
        try:
            multiplier, shift = requant_params(s_x, scales, out_scale)
        except ArithmeticSpecError as error:
            raise ConvertError(f"{name}: {error}") from None
        self.info.linears[name] = LinearInfo(weight, scales, raised, source)
        return QLinear(quantize_weight_codes(weight, scales, bits), bits, bias_codes, multiplier,
                       shift, blocks)

    def cell(self, prefix: str, layer: str, cell: Lstm, x_format: ActQuant,
             h_format: ActQuant) -> LstmCell:
        """One LSTM direction (§8.1): gate FCs to Q3.12, cell scale and clip, hidden requant."""
        bits = self.quant.weight_bits_for(layer)
        input_fc = self.linear(f"{prefix}.input_fc", Linear(cell.w_ih, cell.bias, cell.w_ih_scale),
                               bits, x_format, GATE_PRE_SCALE, LSTM_GATES)
        recurrent_fc = self.linear(f"{prefix}.recurrent_fc",
                                   Linear(cell.w_hh, None, cell.w_hh_scale), bits, h_format,
                                   GATE_PRE_SCALE, LSTM_GATES)
        observer = self.calibration.observers.get(f"{prefix}.cell") if self.calibration else None
        clip = self.clips.get(layer)
        if self.options.cell_scale == "calibrate" and observer is not None:
            covered = observer.max_abs if clip is None else min(observer.max_abs, clip)
            scale_log2, source = cell_scale_log2(covered), "calibration"
        else:
            scale_log2, source = self.quant.cell_scale_log2, "config"
        clip_code = self.quant.cell_clip if clip is None else cell_clip_code(prefix, clip,
                                                                             scale_log2)
        self.info.cells[prefix] = CellInfo(observer.max_abs if observer else None, clip, source)
        hidden_m, hidden_s = hidden_requant(h_format)
        return LstmCell(input_fc, recurrent_fc, x_format, h_format, scale_log2, clip_code,
                        hidden_m, hidden_s)

    def stack(self, name: str, cells: tuple[Lstm, ...], x_format: ActQuant
              ) -> tuple[LstmCell, ...]:
        """Unidirectional layers ``{name}.layer{l}``, each fed by the previous one."""
        out = []
        for index, cell in enumerate(cells):
            layer = f"{name}.layer{index}"
            h_format = self.activation(layer, HIDDEN_RANGE)
            out.append(self.cell(layer, layer, cell, x_format, h_format))
            x_format = h_format
        return tuple(out)

    def projection_scale(self, name: str, layer: Linear, x_format: ActQuant) -> float:
        """int16 output scale of a multiplicative joint projection: calibrated max |y| / 32767,
        else a bound from the weights and the input format's range (no saturation).
        """
        observer = self.calibration.observers.get(name) if self.calibration else None
        if observer is not None and observer.max_abs > 0:
            peak, source = observer.max_abs, "calibration (max |y|)"
        else:
            extreme = max(abs(x_format.qmin - x_format.zero_point),
                          abs(x_format.qmax - x_format.zero_point)) * x_format.scale
            bias = 0.0 if layer.bias is None else np.abs(layer.bias)
            peak = float(np.max(np.abs(layer.weight).sum(axis=1) * extreme + bias))
            source = "bound from weights and input range"
        scale = f32(max(peak, 1e-30) / INT16_MAX)
        self.info.projection_scales[name] = (scale, source)
        return scale

    # --- whole models -----------------------------------------------------------------------

    def rnnt(self, model: FloatRnnt) -> RnntModel:
        """The integer RNN-T of ``model`` (FORMAT.md §2)."""
        config = self.config
        assert isinstance(config, RnntConfig)
        x_format = features = self.activation("encoder.input", None)
        layers = []
        for index, (cells, stack) in enumerate(model.encoder):
            layer = f"encoder.layer{index}"
            h_format = self.activation(layer, HIDDEN_RANGE)
            layers.append(EncoderLayer(tuple(
                self.cell(f"{layer}.{direction}", layer, cell, x_format, h_format)
                for direction, cell in zip(("fwd", "bwd"), cells, strict=False)), stack))
            x_format = h_format
        embedding_format = self.activation("predictor.embedding", model.embedding)
        predictor = self.stack("predictor", model.predictor, embedding_format)
        joint = self.joint(model, x_format, predictor[-1].hidden)
        fe = config.frontend
        cmvn = (None, None) if model.cmvn is None else tuple(
            np.asarray(stat, dtype=np.float32) for stat in model.cmvn)
        frontend = Frontend(fe.sample_rate, fe.n_mels, fe.frame_length_ms, fe.frame_shift_ms,
                            fe.deltas, *cmvn, fe.kaldi_fbank)
        return RnntModel(config.vocab, config.blank_id, frontend, Encoder(features, tuple(layers)),
                         Predictor(embedding_format.quantize(model.embedding), predictor), joint,
                         self.quant.profile, self.quant.rounding, *self.tables())

    def joint(self, model: FloatRnnt, enc_format: ActQuant, pred_format: ActQuant) -> Joint:
        """§9: projections, combine, hidden format and requantization, output layer."""
        config = self.config
        assert isinstance(config, RnntConfig)
        bits = self.quant.weight_bits_for("joint")
        if config.joint.mode == "additive":
            enc_scale = pred_scale = GATE_PRE_SCALE
            combine = (0, 0)
        else:
            enc_scale = self.projection_scale("joint.enc_proj", model.joint_enc, enc_format)
            pred_scale = self.projection_scale("joint.pred_proj", model.joint_pred, pred_format)
            combine = quantize_multiplier(enc_scale * pred_scale / GATE_PRE_SCALE)
        enc_proj = self.linear("joint.enc_proj", model.joint_enc, bits, enc_format, enc_scale, 1)
        pred_proj = self.linear("joint.pred_proj", model.joint_pred, bits, pred_format,
                                pred_scale, 1)
        hidden = self.activation("joint", HIDDEN_RANGE)
        hidden_m, hidden_s = joint_hidden_requant(hidden)
        frac_bits = config.joint.logit_frac_bits
        out = self.linear("joint.out", model.joint_out, self.quant.weight_bits_for("joint.out"),
                          hidden, 2.0**-frac_bits, 1)
        return Joint(enc_proj, pred_proj, config.joint.mode, *combine, hidden, hidden_m,
                     hidden_s, out, frac_bits)

    def lm(self, model: FloatLm) -> LmModel:
        """The integer LM of ``model`` (FORMAT.md §2.8)."""
        config = self.config
        assert isinstance(config, LmConfig)
        embedding_format = self.activation("lm.embedding", model.embedding)
        layers = self.stack("lm", model.layers, embedding_format)
        out = self.linear("lm.out", model.out, self.quant.weight_bits_for("lm.out"),
                          layers[-1].hidden, 2.0**-config.logit_frac_bits, 1)
        return LmModel(config.vocab, embedding_format.quantize(model.embedding), layers, out,
                       config.logit_frac_bits, self.quant.profile, self.quant.rounding,
                       *self.tables())

    def tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The profile's sigmoid, EXP2 and LN tables (ARITHMETIC.md §6.2, §10.1), as copies."""
        return tuple(table.copy() for table in profile_tables(self.quant.profile))
