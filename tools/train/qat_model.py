"""QAT versions of the RNN-T and the character LM whose integers are the engine's (TRAINING.md §6).

``QatTransducer(fp32, config)`` / ``QatCharLm(fp32, config)`` take over an FP32 model's modules
(same parameter names), add one learned scale per gate block of every weight
(``<weight>_scale``, SAWB or MSE initialized) and learned activation clips per layer
(``clips``; exported as ``<layer>.act_clip_low/high``). Their ``forward`` has the FP32 model's
signature and returns the engine's log-probabilities (ARITHMETIC.md §10) as floats, in eval
and in train mode alike; in train mode the values carry straight-through surrogate gradients.
``integers`` returns every §8.7 trace tensor of a padded batch; ``engine_model`` the int4rt
model of the current parameters; ``export_tensors`` the checkpoint ``int4rt convert`` reads
(docs/CONVERT.md §1.1, §1.3: float weights, ``<weight>_scale``, clips).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

from int4rt import trace_names as names
from int4rt.arith import quantize_multiplier
from int4rt.decode import DecodeOptions, decode
from int4rt.layers import ActQuant, Encoder, EncoderLayer, Joint, Predictor
from int4rt.model.config import LmConfig, ModelConfig, RnntConfig
from int4rt.model.lm import LmModel
from int4rt.model.rnnt import Frontend, RnntModel
from int4rt.model.validation import profile_tables
from int4rt.quantization import GATE_PRE_SCALE, joint_hidden_requant
from int4rt_convert.build import Builder, QuantOptions
from int4rt_convert.float_model import Linear
from int4rt_convert.layout import activation_layers, lstm_layers
from int4rt_train import fakequant as fq
from int4rt_train.fakequant import ActClip, straight_through
from int4rt_train.model import CharLm, Transducer, stack_frames
from int4rt_train.qat_layers import (
    LSTM_GATES,
    MIN_SCALE,
    LstmDirection,
    QuantizedWeight,
    add_weight_scale,
    build_qlinear,
    dequantized,
    initial_scales,
    run_direction,
)

JOINT_CHUNK = 1 << 22  # integers per exact joint chunk (bounds the int64 temporaries)
CALIBRATION_SAMPLES = 200_000  # values kept per layer and batch for the percentiles
CALIBRATION_PERCENTILES = (0.1, 99.9)


def clip_key(layer: str) -> str:
    """``clips`` module key of a layer name (``encoder.layer0`` → ``encoder_layer0``)."""
    return layer.replace(".", "_")


class _QatBase(nn.Module):
    """Scales, clips, tables and export shared by the RNN-T and the LM."""

    config: ModelConfig

    def _setup(self, config: ModelConfig) -> None:
        self.config = config
        self.quant = config.quantization
        self.weights: list[QuantizedWeight] = []  # every weight with learned scales
        self.rounding = self.quant.rounding
        tables = profile_tables(self.quant.profile)
        self.tables = tuple(torch.from_numpy(t.astype(np.int64)) for t in tables)
        self.clips = nn.ModuleDict({
            clip_key(layer): ActClip(-1.0, 1.0, self.quant.activation_bits_for(layer),
                                     self.quant.activation_signed)
            for layer in activation_layers(config)})
        p, code = self.quant.cell_scale_log2, self.quant.cell_clip
        for layer in lstm_layers(config):
            if code:  # the config's clip (cell codes) as the float clip CONVERT.md §1.3 reads
                self.clips[clip_key(layer)].register_buffer(
                    "cell_clip", torch.tensor(float(code * 2.0**p)))

    def clip(self, layer: str) -> ActClip:
        """The activation clips of layer ``layer`` (a ``layer_names`` name)."""
        return self.clips[clip_key(layer)]

    def _lstm(self, lstm: nn.Module, layer: int, suffix: str, bits: int, init: str
              ) -> LstmDirection:
        """Direction ``suffix`` of layer ``layer`` of ``lstm``; adds its scales when ``init``."""
        keys = {kind: f"{kind}_l{layer}{suffix}"
                  for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
        if init:
            for kind in ("weight_ih", "weight_hh"):
                add_weight_scale(lstm, keys[kind], LSTM_GATES, bits, init)
        weight = {kind: QuantizedWeight(getattr(lstm, keys[kind]),
                                        getattr(lstm, keys[kind] + "_scale"), bits)
                  for kind in ("weight_ih", "weight_hh")}
        self.weights.extend(weight.values())
        return LstmDirection(weight["weight_ih"], weight["weight_hh"],
                             getattr(lstm, keys["bias_ih"], None),
                             getattr(lstm, keys["bias_hh"], None))

    def builder(self) -> Builder:
        """The converter's builder as it runs on this model's export: no calibration data, the
        config's cell scale, the exported cell clips (CONVERT.md §1.3)."""
        clips = {layer: float(self.clip(layer).cell_clip) for layer in lstm_layers(self.config)
                 if hasattr(self.clip(layer), "cell_clip")}
        return Builder(self.config, None, None, QuantOptions(), clips)

    def _linear(self, linear: nn.Linear, bits: int, init: str) -> QuantizedWeight:
        add_weight_scale(linear, "weight", 1, bits, init)
        self.weights.append(QuantizedWeight(linear.weight, linear.weight_scale, bits))
        return self.weights[-1]

    def init_scales(self, method: str) -> None:
        """Every weight scale from the current weights by ``method`` (SAWB or MSE)."""
        with torch.no_grad():
            for weight in self.weights:
                weight.scale.copy_(initial_scales(weight.weight, weight.scale.shape[0],
                                                  weight.bits, method))

    def _run_stack(self, stack: str, directions: list[list[LstmDirection]],
                   codes: torch.Tensor, values: torch.Tensor | None, fmt: ActQuant,
                   lengths: torch.Tensor | None, records: dict[str, torch.Tensor] | None
                   ) -> tuple[torch.Tensor, torch.Tensor | None, ActQuant]:
        """Unidirectional LSTM layers ``{stack}.layer{l}`` (predictor, LM) over codes [B, N, I]."""
        builder = self.builder()
        for index, (direction,) in enumerate(directions):
            layer = names.stack_layer(stack, index)
            cell, rows = direction.cell(builder, layer, layer, fmt, self.clip(layer).format())
            out = run_direction(cell, rows, direction, self.clip(layer), codes, values, lengths,
                                False, self.tables[0], self.rounding, records is not None)
            if records is not None:
                records.update({names.name(layer, k): v for k, v in out.records.items()})
            codes, values, fmt = out.codes, out.values, self.clip(layer).format()
        return codes, values, fmt

    def _embedding_codes(self, layer: str, table: torch.Tensor, tokens: torch.Tensor
                         ) -> tuple[torch.Tensor, torch.Tensor | None, ActQuant]:
        """Embedding codes of ``tokens`` (the table quantized in its format, §8.6) and, in
        training, their values with the PACT gradient to the table and the clips."""
        fmt = self.clip(layer).format()
        codes = torch.from_numpy(fmt.quantize(table.detach().numpy()).astype(np.int64))[tokens]
        values = None
        if self.training:
            values = straight_through(dequantized(codes, fmt), self.clip(layer).clamp(
                nn.functional.embedding(tokens, table)))
        return codes, values, fmt

    def _log_probs(self, logits: torch.Tensor) -> torch.Tensor:
        """§10 on int32 logits [..., V]."""
        return fq.log_softmax(logits, self.config_frac_bits(), self.tables[1], self.tables[2])

    def config_frac_bits(self) -> int:
        """F of the logits (scale 2^−F)."""
        config = self.config
        return config.joint.logit_frac_bits if isinstance(config, RnntConfig) \
            else config.logit_frac_bits

    def export_tensors(self) -> dict[str, torch.Tensor]:
        """The QAT checkpoint: float weights, ``<weight>_scale`` (floored as used),
        ``<layer>.act_clip_low/high`` and ``<lstm layer>.cell_clip``, float32, converter names."""
        out = {}
        for key, value in self.state_dict().items():
            if key.startswith("clips."):
                continue
            value = value.detach().float()
            out[key] = value.clamp(min=MIN_SCALE) if key.endswith("_scale") else value
        for layer in activation_layers(self.config):
            clip = self.clip(layer)
            out[f"{layer}.act_clip_low"] = clip.act_clip_low.detach().float()
            out[f"{layer}.act_clip_high"] = clip.act_clip_high.detach().float()
        for layer in lstm_layers(self.config):
            cell_clip = getattr(self.clip(layer), "cell_clip", None)
            if cell_clip is not None:
                out[f"{layer}.cell_clip"] = cell_clip.float()
        return {key: value.contiguous() for key, value in out.items()}

    def set_clips(self, ranges: dict[str, tuple[float, float]]) -> None:
        """Set each named layer's clips to (low, high)."""
        with torch.no_grad():
            for layer, (low, high) in ranges.items():
                self.clip(layer).act_clip_low.fill_(low)
                self.clip(layer).act_clip_high.fill_(high)


class QatTransducer(_QatBase):
    """The RNN-T of ``int4rt_train.model.Transducer`` computing int4rt's integers."""

    def __init__(self, fp32: Transducer, config: RnntConfig, scale_init: str = "sawb") -> None:
        super().__init__()
        self._setup(config)
        self.blank = config.blank_id
        self.frontend, self.encoder = fp32.frontend, fp32.encoder
        self.predictor, self.joint = fp32.predictor, fp32.joint
        lstm, quant = self.encoder.lstm, self.quant
        self.encoder_directions = [
            [self._lstm(lstm, index, suffix, quant.weight_bits_for(f"encoder.layer{index}"),
                        scale_init) for suffix in lstm._suffixes()]
            for index in range(len(lstm.stack))]
        pred = self.predictor.lstm
        self.predictor_directions = [
            [self._lstm(pred, index, "", quant.weight_bits_for(f"predictor.layer{index}"),
                        scale_init)] for index in range(pred.num_layers)]
        self.joint_weights = {
            part: self._linear(getattr(self.joint, part),
                               quant.weight_bits_for("joint.out" if part == "out" else "joint"),
                               scale_init) for part in ("enc", "pred", "out")}

    # --- integer path -------------------------------------------------------------------------

    def _features(self, features: torch.Tensor, lengths: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor | None, ActQuant]:
        """§8.6: CMVN in float64, then the input format's codes; zp past each length."""
        clip = self.clip(names.ENCODER_INPUT)
        fmt = clip.format()
        mean = self.frontend.cmvn_mean.double()
        normalized = (features.double() - mean) / self.frontend.cmvn_std.double()
        codes = fq.quantize_codes(normalized, fmt.scale, fmt.zero_point, fmt.qmin, fmt.qmax)
        valid = (torch.arange(features.shape[1])[None, :] < lengths[:, None])[..., None]
        codes = torch.where(valid, codes, fmt.zero_point)
        values = None
        if self.training:
            values = straight_through(dequantized(codes, fmt),
                                      clip.clamp(self.frontend(features)) * valid)
        return codes, values, fmt

    def _encode(self, features: torch.Tensor, lengths: torch.Tensor,
                records: dict[str, torch.Tensor] | None
                ) -> tuple[torch.Tensor, torch.Tensor | None, ActQuant, torch.Tensor]:
        codes, values, fmt = self._features(features, lengths)
        if records is not None:
            records[names.ENCODER_INPUT] = codes
        builder = self.builder()
        for index, (factor, directions) in enumerate(zip(self.encoder.lstm.stack,
                                                         self.encoder_directions, strict=True)):
            if factor > 1:
                codes, stacked = stack_frames(codes - fmt.zero_point, lengths, factor)
                codes = codes + fmt.zero_point
                if values is not None:
                    values, _ = stack_frames(values, lengths, factor)
                lengths = stacked
                if records is not None:
                    records[names.stacked(index)] = codes
            layer = names.stack_layer(names.ENCODER, index)
            outs = [run_direction(*direction.cell(builder, names.encoder_cell(index, d), layer,
                                                  fmt, self.clip(layer).format()),
                                  direction, self.clip(layer), codes, values, lengths, bool(d),
                                  self.tables[0], self.rounding, records is not None)
                    for d, direction in enumerate(directions)]
            fmt = self.clip(layer).format()
            valid = (torch.arange(codes.shape[1])[None, :] < lengths[:, None])[..., None]
            codes = torch.where(valid, torch.cat([o.codes for o in outs], -1), fmt.zero_point)
            if values is not None:
                values = torch.cat([o.values for o in outs], -1) * valid
            if records is not None:
                for d, out in enumerate(outs):
                    cell = names.encoder_cell(index, d)
                    records.update({names.name(cell, k): v for k, v in out.records.items()})
        return codes, values, fmt, lengths

    def _joint_layer(self, enc_format: ActQuant, pred_format: ActQuant
                     ) -> tuple[Joint, dict[str, np.ndarray], tuple[float, float]]:
        """The engine's ``Joint`` (§9) of the current parameters, row scales, projection
        scales. Multiplicative projection scales: the converter's bound from the weights and
        the input range (``Builder.projection_scale`` without calibration data)."""
        config = self.config
        weights = self.joint_weights
        builder = self.builder()
        if config.joint.mode == "additive":
            scales = (GATE_PRE_SCALE, GATE_PRE_SCALE)
            combine = (0, 0)
        else:
            scales = tuple(builder.projection_scale(
                f"joint.{part}_proj", Linear(weights[part].weight.detach().numpy(),
                                             getattr(self.joint, part).bias.detach().numpy()),
                fmt) for part, fmt in (("enc", enc_format), ("pred", pred_format)))
            combine = quantize_multiplier(scales[0] * scales[1] / GATE_PRE_SCALE)
        hidden = self.clip(names.JOINT).format()
        frac_bits = config.joint.logit_frac_bits
        layers, rows = {}, {}
        for part, fmt, out_scale in (("enc", enc_format, scales[0]),
                                     ("pred", pred_format, scales[1]),
                                     ("out", hidden, 2.0**-frac_bits)):
            layers[part], rows[part] = build_qlinear(
                builder, "joint.out" if part == "out" else f"joint.{part}_proj",
                weights[part], getattr(self.joint, part).bias.detach().numpy(), fmt, out_scale)
        joint = Joint(layers["enc"], layers["pred"], config.joint.mode, *combine, hidden,
                      *joint_hidden_requant(hidden), layers["out"], frac_bits)
        return joint, rows, scales

    def _run(self, features: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor,
             records: dict[str, torch.Tensor] | None
             ) -> tuple[torch.Tensor, torch.Tensor]:
        enc_codes, enc_values, enc_fmt, enc_lengths = self._encode(features, lengths, records)
        history = torch.cat([labels.new_full((labels.shape[0], 1), self.blank), labels], 1)
        codes, values, emb_fmt = self._embedding_codes(
            names.embedding(names.PREDICTOR), self.predictor.embedding.weight, history)
        if records is not None:
            records[names.embedding(names.PREDICTOR)] = codes
        pred_codes, pred_values, pred_fmt = self._run_stack(
            names.PREDICTOR, self.predictor_directions, codes, values, emb_fmt, None, records)
        joint, rows, scales = self._joint_layer(enc_fmt, pred_fmt)
        enc_proj = fq.project(joint.enc_proj, enc_codes.flatten(0, 1), enc_fmt, self.rounding)
        enc_proj = enc_proj.reshape(*enc_codes.shape[:2], -1)
        pred_proj = fq.project(joint.pred_proj, pred_codes.flatten(0, 1), pred_fmt,
                               self.rounding).reshape(*pred_codes.shape[:2], -1)
        stages = self._joint_stages(joint, enc_proj, pred_proj)
        if records is not None:
            records[names.JOINT_ENC_PROJ] = enc_proj
            records[names.JOINT_PRED_PROJ] = pred_proj
            records.update({names.name(names.JOINT, k): v for k, v in stages.items()
                            if k != "log_probs"})
            records[names.JOINT_LOG_PROBS] = stages["log_probs"]
        frac = 2.0**-joint.logit_frac_bits
        if not self.training:
            return stages["log_probs"].float() * frac, enc_lengths
        layers = {"enc": joint.enc_proj, "pred": joint.pred_proj, "out": joint.out}
        weights = {part: self.joint_weights[part].surrogate(layer.weight, rows[part])
                   for part, layer in layers.items()}
        e = straight_through(enc_proj * scales[0], nn.functional.linear(
            enc_values, weights["enc"], self.joint.enc.bias))
        p = straight_through(pred_proj * scales[1], nn.functional.linear(
            pred_values, weights["pred"], self.joint.pred.bias))
        e, p = e[:, :, None], p[:, None]
        pre_s = e + p if joint.mode == "additive" else e * p
        pre = straight_through(stages["pre"] * GATE_PRE_SCALE, pre_s)
        act = straight_through(stages["tanh"] * 2.0**-15, torch.tanh(pre))
        hidden = straight_through(dequantized(stages["hidden"], joint.hidden),
                                  self.clip(names.JOINT).clamp(act))
        logits = straight_through(stages["logits"] * frac, nn.functional.linear(
            hidden, weights["out"], self.joint.out.bias))
        return straight_through(stages["log_probs"] * frac, logits.log_softmax(-1)), enc_lengths

    def _joint_stages(self, joint: Joint, enc_proj: torch.Tensor, pred_proj: torch.Tensor
                      ) -> dict[str, torch.Tensor]:
        """§9.2 and §10 over the lattice [B, T, U+1, …], in frame chunks (int16/int32 kept)."""
        batch, frames, width = enc_proj.shape
        per_frame = batch * pred_proj.shape[1] * width
        chunk = max(1, JOINT_CHUNK // max(per_frame, 1))
        parts: dict[str, list[torch.Tensor]] = {}
        dtypes = {"pre": torch.int16, "tanh": torch.int16, "hidden": torch.int16,
                  "logits": torch.int32, "log_probs": torch.int32}
        for start in range(0, frames, chunk):
            stages = fq.joint_stages(joint, enc_proj[:, start:start + chunk, None],
                                     pred_proj[:, None], self.tables[0], self.rounding)
            stages["log_probs"] = self._log_probs(stages["logits"])
            for key, value in stages.items():
                parts.setdefault(key, []).append(value.to(dtypes[key]))
        return {key: torch.cat(value, dim=1).long() for key, value in parts.items()}

    # --- public -------------------------------------------------------------------------------

    def forward(self, features: torch.Tensor, lengths: torch.Tensor,
                labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The engine's log-probabilities [B, T', U+1, V] as floats (× 2^−F), and T'_b."""
        if self.training:
            return self._run(features, lengths, labels, None)
        with torch.no_grad():
            return self._run(features, lengths, labels, None)

    @torch.no_grad()
    def greedy(self, features: torch.Tensor, lengths: torch.Tensor,
               max_symbols: int = 5) -> list[list[int]]:
        """The engine's greedy labels (``int4rt.decode``, DECODING.md) of each utterance, on the
        int4rt model of the current parameters: the dev WER of what would be shipped.

        torch's intra-op thread count is restored afterwards: Numba's OpenMP threading layer
        sets the process's OpenMP thread count (which torch uses) to ``NUMBA_NUM_THREADS`` on
        a parallel launch; left so, every later training step ran on that many threads
        (docs/TRAINING.md §4: 6× slower QAT steps)."""
        engine = self.engine_model()
        options = DecodeOptions(method="greedy", max_symbols_per_frame=max_symbols)
        threads = torch.get_num_threads()
        try:
            return [decode(engine, features[b, :n].numpy(), options).tokens
                    for b, n in enumerate(lengths.tolist())]
        finally:
            torch.set_num_threads(threads)

    @torch.no_grad()
    def integers(self, features: torch.Tensor, lengths: torch.Tensor,
                 labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every §8.7 trace tensor of the batch, int64, [B, …] (joint ones [B, T', U+1, …])."""
        records: dict[str, torch.Tensor] = {}
        training = self.training
        self.eval()
        try:
            self._run(features, lengths, labels, records)
        finally:
            self.train(training)
        return records

    def engine_model(self) -> RnntModel:
        """The int4rt model of the current parameters (as the converter builds it)."""
        config = self.config
        features = self.clip(names.ENCODER_INPUT).format()
        fmt, layers = features, []
        builder = self.builder()
        for index, directions in enumerate(self.encoder_directions):
            layer = names.stack_layer(names.ENCODER, index)
            h_format = self.clip(layer).format()
            layers.append(EncoderLayer(tuple(
                d.cell(builder, names.encoder_cell(index, i), layer, fmt, h_format)[0]
                for i, d in enumerate(directions)),
                                       self.encoder.lstm.stack[index]))
            fmt = h_format
        emb_layer = names.embedding(names.PREDICTOR)
        emb_fmt = self.clip(emb_layer).format()
        cells, pred_fmt = [], emb_fmt
        for index, (direction,) in enumerate(self.predictor_directions):
            h_format = self.clip(names.stack_layer(names.PREDICTOR, index)).format()
            layer = names.stack_layer(names.PREDICTOR, index)
            cells.append(direction.cell(builder, layer, layer, pred_fmt, h_format)[0])
            pred_fmt = h_format
        joint, _, _ = self._joint_layer(fmt, pred_fmt)
        fe = config.frontend
        frontend = Frontend(fe.sample_rate, fe.n_mels, fe.frame_length_ms, fe.frame_shift_ms,
                            fe.deltas, self.frontend.cmvn_mean.numpy().astype(np.float32),
                            self.frontend.cmvn_std.numpy().astype(np.float32), fe.kaldi_fbank)
        embedding = emb_fmt.quantize(self.predictor.embedding.weight.detach().numpy())
        return RnntModel(config.vocab, config.blank_id, frontend,
                         Encoder(features, tuple(layers)), Predictor(embedding, tuple(cells)),
                         joint, self.quant.profile, self.rounding,
                         *profile_tables(self.quant.profile))

    @torch.no_grad()
    def float_activations(self, features: torch.Tensor, lengths: torch.Tensor,
                          labels: torch.Tensor, label_lengths: torch.Tensor
                          ) -> dict[str, torch.Tensor]:
        """The FP32 model's values at every clipped layer (valid positions only, flattened)."""
        out: dict[str, torch.Tensor] = {}
        x = self.frontend(features)
        valid = torch.arange(x.shape[1])[None, :] < lengths[:, None]
        out[names.ENCODER_INPUT] = x[valid].flatten()
        layers: list[tuple[torch.Tensor, torch.Tensor]] = []
        enc, enc_lengths = self.encoder.lstm(x * valid[..., None], lengths, layers)
        for index, (y, n) in enumerate(layers):
            keep = torch.arange(y.shape[1])[None, :] < n[:, None]
            out[names.stack_layer(names.ENCODER, index)] = y[keep].flatten()
        history = torch.cat([labels.new_full((labels.shape[0], 1), self.blank), labels], 1)
        keep_u = torch.arange(history.shape[1])[None, :] <= label_lengths[:, None]
        y = self.predictor.embedding(history)
        out[names.embedding(names.PREDICTOR)] = y[keep_u].flatten()
        for index, hidden in enumerate(lstm_layer_outputs(self.predictor.lstm, y)):
            out[names.stack_layer(names.PREDICTOR, index)] = hidden[keep_u].flatten()
            y = hidden
        pre = self.joint.enc(enc)[:, :, None] + self.joint.pred(y)[:, None] \
            if self.joint.mode == "additive" else \
            self.joint.enc(enc)[:, :, None] * self.joint.pred(y)[:, None]
        keep_t = torch.arange(enc.shape[1])[None, :] < enc_lengths[:, None]
        lattice = keep_t[:, :, None] & keep_u[:, None, :]
        out[names.JOINT] = torch.tanh(pre)[lattice].flatten()
        return out


class QatCharLm(_QatBase):
    """The character LM of ``int4rt_train.model.CharLm`` computing int4rt's integers."""

    def __init__(self, fp32: CharLm, config: LmConfig, scale_init: str = "sawb") -> None:
        super().__init__()
        self._setup(config)
        self.embedding, self.lstm, self.out = fp32.embedding, fp32.lstm, fp32.out
        self.directions = [
            [self._lstm(self.lstm, index, "", self.quant.weight_bits_for(f"lm.layer{index}"),
                        scale_init)] for index in range(self.lstm.num_layers)]
        self.out_weight = self._linear(self.out, self.quant.weight_bits_for("lm.out"), scale_init)

    def _run(self, tokens: torch.Tensor, records: dict[str, torch.Tensor] | None
             ) -> torch.Tensor:
        codes, values, fmt = self._embedding_codes(names.embedding(names.LM),
                                                   self.embedding.weight, tokens)
        if records is not None:
            records[names.embedding(names.LM)] = codes
        codes, values, fmt = self._run_stack(names.LM, self.directions, codes, values, fmt,
                                             None, records)
        frac = 2.0**-self.config.logit_frac_bits
        out, rows = build_qlinear(self.builder(), "lm.out", self.out_weight,
                                  self.out.bias.detach().numpy(), fmt, frac)
        logits = fq.fully_connected(codes.flatten(0, 1), torch.from_numpy(out.weight),
                                    torch.from_numpy(out.bias), fmt.zero_point,
                                    torch.from_numpy(out.multiplier),
                                    torch.from_numpy(out.shift), 0, fq.INT32_MIN, fq.INT32_MAX,
                                    self.rounding).reshape(*codes.shape[:2], -1)
        log_probs = self._log_probs(logits)
        if records is not None:
            records[names.LM_LOGITS] = logits
            records[names.LM_LOG_PROBS] = log_probs
        if not self.training:
            return log_probs.float() * frac
        weight = self.out_weight.surrogate(out.weight, rows)
        surrogate = straight_through(logits * frac,
                                     nn.functional.linear(values, weight, self.out.bias))
        return straight_through(log_probs * frac, surrogate.log_softmax(-1))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """The engine's log-probabilities [B, N, V] (× 2^−F) of the token after each prefix."""
        if self.training:
            return self._run(tokens, None)
        with torch.no_grad():
            return self._run(tokens, None)

    @torch.no_grad()
    def integers(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every §8.7 trace tensor (``lm.*``) of a batch of token sequences, int64 [B, N, …]."""
        records: dict[str, torch.Tensor] = {}
        training = self.training
        self.eval()
        try:
            self._run(tokens, records)
        finally:
            self.train(training)
        return records

    def engine_model(self) -> LmModel:
        """The int4rt LM of the current parameters (as the converter builds it)."""
        config = self.config
        emb_fmt = self.clip(names.embedding(names.LM)).format()
        cells, fmt = [], emb_fmt
        builder = self.builder()
        for index, (direction,) in enumerate(self.directions):
            h_format = self.clip(names.stack_layer(names.LM, index)).format()
            layer = names.stack_layer(names.LM, index)
            cells.append(direction.cell(builder, layer, layer, fmt, h_format)[0])
            fmt = h_format
        out, _ = build_qlinear(builder, "lm.out", self.out_weight,
                               self.out.bias.detach().numpy(), fmt, 2.0**-config.logit_frac_bits)
        return LmModel(config.vocab, emb_fmt.quantize(self.embedding.weight.detach().numpy()),
                       tuple(cells), out, config.logit_frac_bits, self.quant.profile,
                       self.rounding, *profile_tables(self.quant.profile))

    @torch.no_grad()
    def float_activations(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        """The FP32 LM's values at every clipped layer, flattened."""
        y = self.embedding(tokens)
        out = {names.embedding(names.LM): y.flatten()}
        for index, hidden in enumerate(lstm_layer_outputs(self.lstm, y)):
            out[names.stack_layer(names.LM, index)] = hidden.flatten()
        return out


def lstm_layer_outputs(lstm: nn.LSTM, x: torch.Tensor) -> list[torch.Tensor]:
    """Every layer's output [B, N, H] of a unidirectional batch-first ``nn.LSTM``."""
    outs = []
    for layer in range(lstm.num_layers):
        weights = [getattr(lstm, f"{kind}_l{layer}")
                   for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        zeros = x.new_zeros(1, x.shape[0], lstm.hidden_size)
        x, _, _ = torch.lstm(x, (zeros, zeros), weights, True, 1, 0.0, False, False, True)
        outs.append(x)
    return outs


def calibrate(model: QatTransducer | QatCharLm, batches: Iterable[tuple[torch.Tensor, ...]],
              seed: int = 0) -> dict[str, tuple[float, float]]:
    """Set every clip to the 0.1 / 99.9 percentiles of the FP32 model's values on ``batches``
    (each the arguments of ``float_activations``); returns the ranges set."""
    rng = np.random.default_rng(seed)
    samples: dict[str, list[np.ndarray]] = {}
    for batch in batches:
        for layer, values in model.float_activations(*batch).items():
            values = values.numpy()
            if values.size > CALIBRATION_SAMPLES:
                values = rng.choice(values, CALIBRATION_SAMPLES, replace=False)
            samples.setdefault(layer, []).append(values)
    ranges = {}
    for layer, parts in samples.items():
        low, high = np.percentile(np.concatenate(parts), CALIBRATION_PERCENTILES)
        ranges[layer] = (float(low), float(high))
    model.set_clips(ranges)
    return ranges
