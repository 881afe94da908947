"""Random but sensibly scaled quantized layers and models, for tests, benchmarks and golden
vectors.

Float weights are drawn uniformly, quantized symmetrically per output row, and every
(multiplier, shift) is derived from float32 scales in double precision (ARITHMETIC.md §3),
exactly as the converter does for trained weights. ``random_model`` builds a whole RNN-T or
LM from a configuration (docs/FORMAT.md §6).
"""

from __future__ import annotations

import numpy as np

from int4rt.layers import ActQuant, Encoder, EncoderLayer, Joint, LstmCell, Predictor, QLinear
from int4rt.model.config import LmConfig, ModelConfig, QuantConfig, RnntConfig
from int4rt.model.lm import LmModel
from int4rt.model.rnnt import Frontend, RnntModel
from int4rt.model.validation import profile_tables
from int4rt.ops.requantize.reference import quantize_multiplier
from int4rt.quantization import (
    GATE_PRE_SCALE,
    HIDDEN_RANGE,
    f32,
    format_covering,
    hidden_requant,
    joint_hidden_requant,
    max_scales,
    quantize_weight_codes,
    requant_params,
)


def random_linear(rng: np.random.Generator, n_out: int, n_in: int, weight_bits: int,
                  x_format: ActQuant, out_scale: float, bias: bool = True,
                  spread: float = 1.0) -> QLinear:
    """A random §7.1 layer from ``x_format`` to outputs of scale ``out_scale``."""
    limit = spread * np.sqrt(3.0 / max(n_in, 1))
    weights = rng.uniform(-limit, limit, size=(n_out, n_in))
    scales = max_scales(weights, weight_bits)
    codes = quantize_weight_codes(weights, scales, weight_bits)
    multiplier, shift = requant_params(x_format.scale, scales, out_scale)
    if bias:
        acc_scale = f32(x_format.scale) * scales.astype(np.float64)
        bias_codes = np.floor(rng.uniform(-0.5, 0.5, size=n_out) / acc_scale + 0.5)
        bias_codes = np.clip(bias_codes, -(2**24), 2**24).astype(np.int32)
    else:
        bias_codes = np.zeros(n_out, dtype=np.int32)
    return QLinear(codes, weight_bits, bias_codes, multiplier, shift)


def random_lstm_cell(rng: np.random.Generator, input_size: int, input_format: ActQuant,
                     hidden_size: int, weight_bits: int, hidden_format: ActQuant,
                     cell_scale_log2: int = -11, cell_clip: int = 0) -> LstmCell:
    """A random LSTM direction whose gate pre-activations mostly stay inside Q3.12."""
    gates = 4 * hidden_size
    input_fc = random_linear(rng, gates, input_size, weight_bits, input_format, GATE_PRE_SCALE,
                             spread=1.5)
    recurrent_fc = random_linear(rng, gates, hidden_size, weight_bits, hidden_format,
                                 GATE_PRE_SCALE, bias=False, spread=1.5)
    hidden_m, hidden_s = hidden_requant(hidden_format)
    return LstmCell(input_fc, recurrent_fc, input_format, hidden_format, cell_scale_log2,
                    cell_clip, hidden_m, hidden_s)


FEATURE_RANGE = (-4.0, 4.0)  # CMVN-normalized features are quantized over [-4, 4]
JOINT_PRODUCT_SCALE = 2.0**-10  # multiplicative joint: scale of each int16 projection


def _tables(profile: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    sigmoid, exp2, ln = profile_tables(profile)
    return sigmoid.copy(), exp2.copy(), ln.copy()


def _format(quant: QuantConfig, layer: str, bounds: tuple[float, float]) -> ActQuant:
    return format_covering(quant.activation_bits_for(layer), quant.activation_signed, *bounds)


def _codes(rng: np.random.Generator, fmt: ActQuant, shape: tuple[int, int]) -> np.ndarray:
    return rng.integers(fmt.qmin, fmt.qmax, size=shape, endpoint=True).astype(fmt.dtype)


def _lstm_stack(rng: np.random.Generator, quant: QuantConfig, prefix: str, count: int,
                input_size: int, input_format: ActQuant, hidden_size: int,
                ) -> tuple[LstmCell, ...]:
    cells = []
    for index in range(count):
        name = f"{prefix}.layer{index}"
        cell = random_lstm_cell(rng, input_size, input_format, hidden_size,
                                quant.weight_bits_for(name), _format(quant, name, HIDDEN_RANGE),
                                quant.cell_scale_log2, quant.cell_clip)
        cells.append(cell)
        input_size, input_format = hidden_size, cell.hidden
    return tuple(cells)


def random_model(config: ModelConfig, seed: int) -> RnntModel | LmModel:
    """A random model of ``config`` (docs/FORMAT.md §6): the same seed gives the same integers."""
    rng = np.random.default_rng(seed)
    quant = config.quantization
    if isinstance(config, LmConfig):
        layers = _lstm_stack(rng, quant, "lm", config.num_layers, config.embedding_size,
                             _format(quant, "lm.embedding", HIDDEN_RANGE), config.hidden_size)
        embedding = _codes(rng, layers[0].input, (len(config.vocab), config.embedding_size))
        out = random_linear(rng, len(config.vocab), config.hidden_size,
                            quant.weight_bits_for("lm.out"), layers[-1].hidden,
                            2.0**-config.logit_frac_bits)
        return LmModel(config.vocab, embedding, layers, out, config.logit_frac_bits,
                       quant.profile, quant.rounding, *_tables(quant.profile))
    fe = config.frontend
    frontend = Frontend(fe.sample_rate, fe.n_mels, fe.frame_length_ms, fe.frame_shift_ms,
                        fe.deltas, *((np.zeros(fe.feature_dim, np.float32),
                                      np.ones(fe.feature_dim, np.float32)) if fe.cmvn
                                     else (None, None)), fe.kaldi_fbank)
    encoder = _random_encoder(rng, config)
    pred = config.predictor
    pred_layers = _lstm_stack(rng, quant, "predictor", pred.num_layers, pred.embedding_size,
                              _format(quant, "predictor.embedding", HIDDEN_RANGE),
                              pred.hidden_size)
    embedding = _codes(rng, pred_layers[0].input, (len(config.vocab), pred.embedding_size))
    joint = _random_joint(rng, config, encoder, pred_layers[-1])
    return RnntModel(config.vocab, config.blank_id, frontend, encoder,
                     Predictor(embedding, pred_layers), joint, quant.profile, quant.rounding,
                     *_tables(quant.profile))


def _random_encoder(rng: np.random.Generator, config: RnntConfig) -> Encoder:
    quant, enc = config.quantization, config.encoder
    features = fmt = _format(quant, "encoder.input", FEATURE_RANGE)
    width = config.frontend.feature_dim
    layers = []
    for index, stack in enumerate(enc.stack):
        name = f"encoder.layer{index}"
        hidden = _format(quant, name, HIDDEN_RANGE)
        cells = tuple(
            random_lstm_cell(rng, width * stack, fmt, enc.hidden_size,
                             quant.weight_bits_for(name), hidden, quant.cell_scale_log2,
                             quant.cell_clip)
            for _ in range(2 if enc.bidirectional else 1))
        layers.append(EncoderLayer(cells, stack))
        fmt, width = hidden, layers[-1].output_size
    return Encoder(features, tuple(layers))


def _random_joint(rng: np.random.Generator, config: RnntConfig, encoder: Encoder,
                  pred_last: LstmCell) -> Joint:
    """Projections to int16, combine, tanh → ``hidden``, output → logits (ARITHMETIC.md §9)."""
    quant, jc = config.quantization, config.joint
    bits = quant.weight_bits_for("joint")
    proj_scale = GATE_PRE_SCALE if jc.mode == "additive" else JOINT_PRODUCT_SCALE
    enc_proj = random_linear(rng, jc.size, encoder.layers[-1].output_size, bits,
                             encoder.output, proj_scale)
    pred_proj = random_linear(rng, jc.size, pred_last.hidden_size, bits, pred_last.hidden,
                              proj_scale)
    combine = ((0, 0) if jc.mode == "additive"
               else quantize_multiplier(proj_scale * proj_scale / GATE_PRE_SCALE))
    hidden = _format(quant, "joint", HIDDEN_RANGE)
    hidden_m, hidden_s = joint_hidden_requant(hidden)
    out = random_linear(rng, len(config.vocab), jc.size, quant.weight_bits_for("joint.out"),
                        hidden, 2.0**-jc.logit_frac_bits)
    return Joint(enc_proj, pred_proj, jc.mode, *combine, hidden, hidden_m, hidden_s, out,
                 jc.logit_frac_bits)
