"""Float to integer parameters: the rules the converter and ``random_model`` share.

Weights are quantized symmetrically per row to ``2^(b-1) - 1`` levels each side; activation
formats cover a float range (ARITHMETIC.md §2); every (multiplier, shift) is derived from
float32 scales in double precision (ARITHMETIC.md §3). The converter (``tools/convert``)
chooses the scales from data; ``int4rt.model.random_model`` draws random weights; both turn
them into integers here, so a trained and a random model follow the same rules.
"""

from __future__ import annotations

import numpy as np

from int4rt.layers import ActQuant
from int4rt.ops.requantize.reference import quantize_multiplier

GATE_PRE_SCALE = 2.0**-12  # Q3.12, the gate pre-activations and an additive joint (§8.2, §9)
HIDDEN_RANGE = (-1.0, 1.0)  # h = o·tanh(c) and the joint's tanh lie in (-1, 1)
TANH_OUTPUT_SCALE_LOG2 = -15  # Q0.15 (§6.4)
HIDDEN_PRODUCT_SCALE_LOG2 = -30  # tanh(c)·o, Q0.15 · Q0.15 (§8.4)


def f32(value: float) -> float:
    """``value`` rounded to float32, as a Python float (scales are stored as float32)."""
    return float(np.float32(value))


def weight_qmax(bits: int) -> int:
    """Largest weight code magnitude: 7 for 4 bits, 127 for 8 (symmetric, 2^b − 1 levels)."""
    return (1 << (bits - 1)) - 1


def quantize_weight_codes(weight: np.ndarray, scales: np.ndarray, bits: int) -> np.ndarray:
    """``clamp(floor(w / s + 1/2), −qmax, qmax)`` per row, as int8."""
    qmax = weight_qmax(bits)
    scaled = weight / scales.astype(np.float64)[:, None]
    return np.clip(np.floor(scaled + 0.5), -qmax, qmax).astype(np.int8)


def max_scales(weights: np.ndarray, bits: int) -> np.ndarray:
    """Per-row float32 scales ``max|w| / qmax`` (1 for an all-zero row)."""
    peak = np.abs(weights).max(axis=1)
    return np.where(peak > 0, peak / weight_qmax(bits), 1.0).astype(np.float32)


def requant_params(scale_in: float, weight_scales: np.ndarray,
                   scale_out: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-row (multiplier, shift) of ``s_in · s_w[r] / s_out`` from float32 scales (§3)."""
    pairs = [quantize_multiplier(f32(scale_in) * f32(s) / f32(scale_out))
             for s in weight_scales]
    return (np.array([m for m, _ in pairs], dtype=np.int32),
            np.array([s for _, s in pairs], dtype=np.int32))


def hidden_requant(hidden: ActQuant) -> tuple[int, int]:
    """(M, s) of ``tanh(c)·o`` (scale 2^-30) to the ``hidden`` codes (§8.4)."""
    return quantize_multiplier(2.0**HIDDEN_PRODUCT_SCALE_LOG2 / f32(hidden.scale))


def joint_hidden_requant(hidden: ActQuant) -> tuple[int, int]:
    """(M, s) of the joint's tanh (Q0.15) to its ``hidden`` codes (§9.2)."""
    return quantize_multiplier(2.0**TANH_OUTPUT_SCALE_LOG2 / f32(hidden.scale))


def format_covering(bits: int, signed: bool, low: float, high: float) -> ActQuant:
    """The asymmetric (or, signed with ``low == -high``, symmetric) format covering [low, high]."""
    levels = (1 << bits) - 1 if not signed or low != -high else (1 << (bits - 1)) - 1
    scale = f32((high - low) / levels) if levels == (1 << bits) - 1 else f32(high / levels)
    qmin = -(1 << (bits - 1)) if signed else 0
    zero_point = 0 if signed and low == -high else int(np.clip(
        qmin - np.floor(low / scale + 0.5), qmin, qmin + (1 << bits) - 1))
    return ActQuant(bits, signed, zero_point, scale)
