"""Random but sensibly scaled quantized layers, for tests, benchmarks and golden vectors.

Float weights are drawn uniformly, quantized symmetrically per output row, and every
(multiplier, shift) is derived from float32 scales in double precision (ARITHMETIC.md §3),
exactly as the converter does for trained weights.
"""

from __future__ import annotations

import numpy as np

from int4rt.arith import quantize_multiplier
from int4rt.layers import ActQuant, LstmCell, QLinear

GATE_PRE_SCALE = 2.0**-12  # Q3.12 (ARITHMETIC.md §8.2)


def _f32(value: float) -> float:
    return float(np.float32(value))


def requant_params(scale_in: float, weight_scales: np.ndarray,
                   scale_out: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-row (multiplier, shift) of ``s_in · s_w[r] / s_out`` from float32 scales (§3)."""
    pairs = [quantize_multiplier(_f32(scale_in) * _f32(s) / _f32(scale_out))
             for s in weight_scales]
    return (np.array([m for m, _ in pairs], dtype=np.int32),
            np.array([s for _, s in pairs], dtype=np.int32))


def quantize_rows(weights: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-row codes in [-(2^(b-1) - 1), 2^(b-1) - 1] and their float32 scales."""
    qmax = (1 << (bits - 1)) - 1
    peak = np.abs(weights).max(axis=1)
    scales = np.where(peak > 0, peak / qmax, 1.0).astype(np.float32)
    codes = np.clip(np.floor(weights / scales[:, None] + 0.5), -qmax, qmax)
    return codes.astype(np.int8), scales


def random_linear(rng: np.random.Generator, n_out: int, n_in: int, weight_bits: int,
                  x_format: ActQuant, out_scale: float, bias: bool = True,
                  spread: float = 1.0) -> QLinear:
    """A random §7.1 layer from ``x_format`` to outputs of scale ``out_scale``."""
    limit = spread * np.sqrt(3.0 / max(n_in, 1))
    codes, scales = quantize_rows(rng.uniform(-limit, limit, size=(n_out, n_in)), weight_bits)
    multiplier, shift = requant_params(x_format.scale, scales, out_scale)
    if bias:
        acc_scale = _f32(x_format.scale) * scales.astype(np.float64)
        bias_codes = np.floor(rng.uniform(-0.5, 0.5, size=n_out) / acc_scale + 0.5)
        bias_codes = np.clip(bias_codes, -(2**24), 2**24).astype(np.int32)
    else:
        bias_codes = np.zeros(n_out, dtype=np.int32)
    return QLinear(codes, weight_bits, bias_codes, multiplier, shift)


def activation_format(bits: int, signed: bool, low: float, high: float) -> ActQuant:
    """The asymmetric (or, signed with ``low == -high``, symmetric) format covering [low, high]."""
    levels = (1 << bits) - 1 if not signed or low != -high else (1 << (bits - 1)) - 1
    scale = _f32((high - low) / levels) if levels == (1 << bits) - 1 else _f32(high / levels)
    qmin = -(1 << (bits - 1)) if signed else 0
    zero_point = 0 if signed and low == -high else int(np.clip(
        qmin - np.floor(low / scale + 0.5), qmin, qmin + (1 << bits) - 1))
    return ActQuant(bits, signed, zero_point, scale)


def random_lstm_cell(rng: np.random.Generator, input_size: int, input_format: ActQuant,
                     hidden_size: int, weight_bits: int, hidden_format: ActQuant,
                     cell_scale_log2: int = -11, cell_clip: int = 0) -> LstmCell:
    """A random LSTM direction whose gate pre-activations mostly stay inside Q3.12."""
    gates = 4 * hidden_size
    input_fc = random_linear(rng, gates, input_size, weight_bits, input_format, GATE_PRE_SCALE,
                             spread=1.5)
    recurrent_fc = random_linear(rng, gates, hidden_size, weight_bits, hidden_format,
                                 GATE_PRE_SCALE, bias=False, spread=1.5)
    hidden_m, hidden_s = quantize_multiplier(2.0**-30 / _f32(hidden_format.scale))
    return LstmCell(input_fc, recurrent_fc, input_format, hidden_format, cell_scale_log2,
                    cell_clip, hidden_m, hidden_s)
