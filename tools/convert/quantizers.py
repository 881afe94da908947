"""Weight quantizers, activation range estimators and the scales of the integer path.

Weights (docs/CONVERT.md §4): symmetric codes in [-(2^(b-1) - 1), 2^(b-1) - 1] with one float32
scale per output row or per gate block, the clip chosen by max, SAWB or an MSE search.
Activations: an asymmetric (or signed, with a zero point) format over a range from min/max,
percentiles or an MSE search (ARITHMETIC.md §2, §8.1). Cell state: a power-of-two scale
(ARITHMETIC.md §8.3).
"""

from __future__ import annotations

import math

import numpy as np

from int4rt.layers import ActQuant
from int4rt.quantization import format_covering, weight_qmax

from .errors import ConvertError

# SAWB clip = c1·sqrt(mean(w²)) + c2·mean(|w|) for symmetric codes with 2^b − 1 levels
# (IBM fms-model-optimizer; shared/reference/paper.md)
SAWB_COEFFICIENTS = {4: (12.035, -12.03), 8: (31.76, -35.04)}
MSE_CLIP_RATIOS = np.linspace(1.0, 0.3, 36)  # candidate clips, as fractions of max|w|
MSE_RANGE_RATIOS = np.linspace(1.0, 0.25, 16)  # candidate range ends, fractions of min/max
MIN_RANGE = 1e-6  # narrowest activation range accepted (a constant tensor gets this)
CELL_MAX = 32767
CELL_SCALE_LOG2_MIN, CELL_SCALE_LOG2_MAX = -20, 0


def _group_clips(groups: np.ndarray, bits: int, method: str) -> np.ndarray:
    """Clip value α per row of ``groups`` [G, n] (float64)."""
    peak = np.abs(groups).max(axis=1)
    if method == "max":
        return peak
    if method == "sawb":
        c1, c2 = SAWB_COEFFICIENTS[bits]
        alpha = c1 * np.sqrt(np.mean(groups**2, axis=1)) + c2 * np.mean(np.abs(groups), axis=1)
        return np.where(alpha > 0, np.minimum(alpha, peak), peak)
    qmax = weight_qmax(bits)
    best, best_error = peak, np.full(len(groups), np.inf)
    values = groups.astype(np.float32)  # the search runs in float32, in place: fast enough
    work = np.empty_like(values)
    for ratio in MSE_CLIP_RATIOS:
        alpha = peak * ratio
        step = np.where(alpha > 0, alpha / qmax, 1.0).astype(np.float32)[:, None]
        np.divide(values, step, out=work)
        work += 0.5
        np.floor(work, out=work)
        np.clip(work, -qmax, qmax, out=work)
        work *= step
        work -= values
        np.square(work, out=work)
        error = work.sum(axis=1, dtype=np.float64)
        better = error < best_error
        best = np.where(better, alpha, best)
        best_error = np.where(better, error, best_error)
    return best


def weight_scales(weight: np.ndarray, bits: int, method: str, granularity: str,
                  gate_blocks: int) -> np.ndarray:
    """Float32 scale per output row of ``weight`` [N, K].

    ``per_row`` gives every row its own clip; ``per_gate`` one clip per block of N /
    ``gate_blocks`` rows (4 gate blocks i, f, g, o for LSTM matrices, 1 for a plain layer).
    An all-zero group gets scale 1.
    """
    rows = weight.shape[0]
    groups = rows if granularity == "per_row" else gate_blocks
    alpha = _group_clips(weight.reshape(groups, -1), bits, method)
    scales = np.where(alpha > 0, alpha / weight_qmax(bits), 1.0)
    return np.repeat(scales, rows // groups).astype(np.float32)


def sqnr_db(reference: np.ndarray, approximation: np.ndarray) -> float | None:
    """10·log10(Σ ref² / Σ (ref − approx)²); None when the two are identical."""
    signal = float(np.sum(np.square(reference, dtype=np.float64)))
    noise = float(np.sum(np.square(np.asarray(reference, np.float64) - approximation)))
    if noise == 0.0:
        return None
    return 10.0 * math.log10(signal / noise) if signal > 0 else -math.inf


def format_with_zero(bits: int, signed: bool, low: float, high: float) -> ActQuant:
    """The format whose codes cover [low, high] extended to include 0 (ARITHMETIC.md §2).

    Zero must be representable exactly: it is the initial hidden state (§8.4) and the frame
    stacking pad (§8.5). A range narrower than ``MIN_RANGE`` is widened to it.
    """
    low, high = min(float(low), 0.0), max(float(high), 0.0)
    if high - low < MIN_RANGE:
        high = low + MIN_RANGE
    return format_covering(bits, signed, low, high)


def _dequantized(fmt: ActQuant, values: np.ndarray) -> np.ndarray:
    return (fmt.quantize(values).astype(np.float64) - fmt.zero_point) * np.float64(fmt.scale)


def estimate_range(samples: np.ndarray, low: float, high: float, bits: int, signed: bool,
                   method: str, percentile: float) -> tuple[float, float]:
    """The [low, high] to quantize a tensor over, from a sample of its values.

    ``low``/``high`` are the exact extremes seen; ``samples`` a uniform subsample.
    ``percentile`` P picks the (100 − P)th and Pth percentiles; ``mse`` searches shrunk
    ranges for the smallest quantization error on the sample (formats of ``bits``/``signed``).
    """
    if method == "minmax" or samples.size == 0:
        return low, high
    if method == "percentile":
        lo, hi = np.percentile(samples, [100.0 - percentile, percentile])
        return float(lo), float(hi)
    best, best_error = (low, high), math.inf
    for r_low in MSE_RANGE_RATIOS:
        for r_high in MSE_RANGE_RATIOS:
            candidate = (low * r_low, high * r_high)
            fmt = format_with_zero(bits, signed, *candidate)
            error = float(np.mean((_dequantized(fmt, samples) - samples) ** 2))
            if error < best_error:
                best, best_error = candidate, error
    return float(best[0]), float(best[1])


def cell_scale_log2(max_abs: float) -> int:
    """Smallest power-of-two exponent p in [−20, 0] with 32767 · 2^p ≥ ``max_abs`` (§8.3)."""
    if max_abs <= 0:
        return CELL_SCALE_LOG2_MIN
    p = math.ceil(math.log2(max_abs / CELL_MAX))
    return min(max(p, CELL_SCALE_LOG2_MIN), CELL_SCALE_LOG2_MAX)


def cell_clip_code(layer: str, clip: float, scale_log2: int) -> int:
    """A float cell clip in cell codes, truncated as TFLM does (§8.3); at most 32767.

    A clip below one cell step is an error: TFLM would truncate it to 0, and 0 means
    "no clip" in int4rt.
    """
    steps = clip / 2.0**scale_log2
    if not steps >= 1.0:
        raise ConvertError(f"{layer}: cell clip {clip!r} is smaller than one cell step "
                           f"2^{scale_log2} = {2.0**scale_log2!r}; TFLM would truncate it to 0, "
                           "and int4rt's 0 means no clip")
    return min(int(steps), CELL_MAX)
