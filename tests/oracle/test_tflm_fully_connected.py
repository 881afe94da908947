"""int4rt's integer FULLY_CONNECTED is bit-exact with tflite-micro's.

Hundreds of one-operator .tflite models are authored in pure Python (``tflite_builder``)
and run on the tflite-micro interpreter; every output is compared with
``int4rt.arith.fully_connected`` (NumPy reference), ``int4rt.ops.gemv.numba.fully_connected`` and,
for int4 weights, ``int4rt.ops.gemv.numba.fully_connected_int4``.

Many models get an effective scale ``s_x * s_w / s_y`` that is exactly ``2^-k``, so a
large share of outputs are exact ties before rounding (``acc * 2^-k`` ends in ``.5``) or
are values where TFLM's double rounding (SRDHM, then RoundingDivideByPOT) differs from
rounding the exact product once. Both counts are printed and asserted to be substantial.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pytest

pytest.importorskip("tflite_micro")
pytest.importorskip("ai_edge_litert")

from int4rt import arith
from int4rt.ops.gemv import numba as gemv_numba

from .tflite_builder import ActivationFunctionType, build_fully_connected, pack_int4, run

pytestmark = pytest.mark.oracle

SEED = 20_240_611
MIN_OUTPUTS = 25_000  # compared outputs per weight kind
MIN_TIES = 1_000  # exact, unclamped ties per weight kind
INT8_MIN, INT8_MAX = -128, 127


@dataclass
class FcCase:
    """One FULLY_CONNECTED model and its input, in TFLite quantization terms."""

    x: np.ndarray  # int8 [B, K]
    weights: np.ndarray  # int8 codes [N, K] (int4 codes when int4)
    bias: np.ndarray | None  # int32 [N]
    x_scale: float
    x_zero_point: int
    w_scales: list[float]  # N scales (int8, per-channel) or one (int4, per-tensor)
    y_scale: float
    y_zero_point: int
    activation: int = ActivationFunctionType.NONE
    int4: bool = False
    vector_input: bool = False  # pass x to int4rt as [K] instead of [1, K]
    pot_exponents: list[int] = field(default_factory=list)  # k with real == 2^-k, if chosen


@dataclass
class Tally:
    """Counts accumulated over all models of one weight kind."""

    outputs: int = 0
    ties: int = 0
    double_rounding: int = 0
    mismatches: list[str] = field(default_factory=list)


def effective_scale(x_scale: float, w_scale: float, y_scale: float) -> float:
    """``s_x * s_w / s_y`` as the tflite-micro wheel forms it: in double, from float32."""
    return float(
        np.float64(np.float32(x_scale)) * np.float64(np.float32(w_scale))
        / np.float64(np.float32(y_scale))
    )


def _round_half_away(value: float) -> int:
    """``TfLiteRound`` (std::round) of a float."""
    return int(math.copysign(math.floor(abs(value) + 0.5), value))


def tflm_activation_range(activation: int, y_scale: float, y_zero_point: int) -> tuple[int, int]:
    """(y_min, y_max) for an int8 output, mirroring TFLite's CalculateActivationRangeQuantized.

    ``Quantize(f) = zero_point + TfLiteRound(f / scale)`` with a float32 division.
    """

    def quantize(f: float) -> int:
        return y_zero_point + _round_half_away(float(np.float32(f) / np.float32(y_scale)))

    if activation == ActivationFunctionType.NONE:
        return INT8_MIN, INT8_MAX
    if activation == ActivationFunctionType.RELU:
        return max(INT8_MIN, quantize(0.0)), INT8_MAX
    if activation == ActivationFunctionType.RELU6:
        return max(INT8_MIN, quantize(0.0)), min(INT8_MAX, quantize(6.0))
    raise ValueError(f"activation {activation} is not covered by this test")


def _mantissa(rng: np.random.Generator) -> float:
    """A random float32-exact value in [1, 2) with 8 fractional bits."""
    return 1.0 + int(rng.integers(0, 256)) / 256.0


def _codes(rng: np.random.Generator, shape: tuple[int, ...], lo: int, hi: int) -> np.ndarray:
    """Uniform integer codes in [lo, hi] with both extremes planted when there is room."""
    codes = rng.integers(lo, hi + 1, size=shape)
    flat = codes.reshape(-1)
    if flat.size >= 4:
        where = rng.choice(flat.size, size=2, replace=False)
        flat[where] = [lo, hi]
    return codes


def _zero_point(rng: np.random.Generator) -> int:
    """An int8 zero point; the extremes -128 and 127 are drawn often."""
    if rng.random() < 0.3:
        return int(rng.choice([INT8_MIN, INT8_MAX]))
    return int(rng.integers(INT8_MIN, INT8_MAX + 1))


def random_case(rng: np.random.Generator, int4: bool) -> FcCase:
    """A random model whose outputs mostly fall inside the int8 range, often on exact ties."""
    batch = int(rng.integers(1, 7))
    depth = int(rng.integers(1, 33) if rng.random() < 0.5 else rng.integers(33, 301))
    n_out = int(rng.integers(1, 49))
    if int4:
        w_max = int(rng.choice([1, 2, 4, 8]))
        weights = _codes(rng, (n_out, depth), -w_max if w_max < 8 else -8, min(w_max, 7))
    else:
        w_max = int(rng.choice([1, 2, 7, 15, 31, 63, 127, 128]))
        weights = _codes(rng, (n_out, depth), -w_max if w_max < 128 else -128, min(w_max, 127))
    x_zero_point = _zero_point(rng)
    spread = int(rng.choice([1, 4, 16, 64, 255]))
    x = np.clip(x_zero_point + rng.integers(-spread, spread + 1, size=(batch, depth)),
                INT8_MIN, INT8_MAX)
    if rng.random() < 0.5 and x.size >= 4:
        x.reshape(-1)[rng.choice(x.size, size=2, replace=False)] = [INT8_MIN, INT8_MAX]
    acc = (x - x_zero_point) @ weights.T
    sigma = np.sqrt(np.mean(acc.astype(np.float64) ** 2, axis=0)) + 1.0  # per channel

    bias: np.ndarray | None = None
    if rng.random() < 0.5:
        big = rng.random() < 0.1
        bias = np.round(rng.normal(0.0, 1 << 20 if big else 1.0, n_out) * (1 if big else sigma))
        bias = bias.astype(np.int32)

    if int4:
        sigma = np.array([float(np.sqrt(np.mean(sigma**2)))])
    x_scale: float
    y_scale: float
    pot: list[int] = []
    if rng.random() < 0.65:
        # s_x = mx 2^ex, s_y = mx mw 2^ey, s_w[c] = mw 2^(ey - ex - k): real == 2^-k exactly.
        m_x, m_w = _mantissa(rng), _mantissa(rng)
        e_x, e_y = int(rng.integers(-10, -2)), int(rng.integers(-6, 1))
        pot = [int(np.clip(round(math.log2(s / 48.0)) + rng.integers(-1, 2), 1, 12))
               for s in sigma]
        x_scale = math.ldexp(m_x, e_x)
        y_scale = math.ldexp(m_x * m_w, e_y)
        w_scales = [math.ldexp(m_w, e_y - e_x - k) for k in pot]
    else:
        x_scale = float(np.float32(math.exp(rng.uniform(math.log(1e-3), math.log(0.1)))))
        y_scale = float(np.float32(math.exp(rng.uniform(math.log(1e-2), math.log(1.0)))))
        real = 48.0 / sigma * np.exp2(rng.uniform(-1.5, 1.5, size=sigma.size))
        w_scales = [float(np.float32(r * y_scale / x_scale)) for r in real]
    activation = int(rng.choice(
        [ActivationFunctionType.NONE, ActivationFunctionType.RELU, ActivationFunctionType.RELU6],
        p=[0.7, 0.15, 0.15],
    ))
    return FcCase(
        x=x.astype(np.int8), weights=weights.astype(np.int8), bias=bias,
        x_scale=x_scale, x_zero_point=x_zero_point, w_scales=w_scales,
        y_scale=y_scale, y_zero_point=_zero_point(rng), activation=activation, int4=int4,
        vector_input=batch == 1 and rng.random() < 0.5, pot_exponents=pot,
    )


def edge_cases(int4: bool) -> list[FcCase]:
    """Hand-picked extremes: K=1, saturated accumulators, all-extreme codes and zero points."""
    w_lo, w_hi = (-8, 7) if int4 else (INT8_MIN, INT8_MAX)
    n_out = 3
    n_scales = 1 if int4 else n_out
    cases = []
    for depth, x_val, zp, w_val, k in [
        (1, INT8_MIN, INT8_MAX, w_lo, 1),
        (1, INT8_MAX, INT8_MIN, w_hi, 1),
        (300, INT8_MIN, INT8_MAX, w_lo, 12),
        (299, INT8_MAX, INT8_MIN, w_lo, 12),
        (2, INT8_MAX, INT8_MIN, w_hi, 2),
    ]:
        cases.append(FcCase(
            x=np.full((2, depth), x_val, dtype=np.int8),
            weights=np.full((n_out, depth), w_val, dtype=np.int8),
            bias=np.array([0, 1, -1], dtype=np.int32),
            x_scale=2.0**-4, x_zero_point=zp,
            w_scales=[2.0**-k] * n_scales, y_scale=2.0**-4,
            y_zero_point=-zp - 1, int4=int4, pot_exponents=[k] * n_scales,
        ))
    return cases


def check_case(case: FcCase, tally: Tally) -> None:
    """Run one model on tflite-micro and on int4rt; record mismatches, ties, counts."""
    n_out = case.weights.shape[0]
    model = build_fully_connected(
        weights=case.weights, batch=case.x.shape[0], x_scale=case.x_scale,
        x_zero_point=case.x_zero_point, w_scales=case.w_scales, y_scale=case.y_scale,
        y_zero_point=case.y_zero_point, bias=case.bias, int4_weights=case.int4,
        activation=case.activation,
    )
    tflm = run(model, [case.x])[0].astype(np.int64)

    reals = [effective_scale(case.x_scale, s, case.y_scale) for s in case.w_scales]
    if case.pot_exponents:
        exact = [2.0**-k for k in case.pot_exponents]
        assert reals == exact, "power-of-two effective scale is not exact"
    quantized = [arith.quantize_multiplier(r) for r in reals]
    multiplier: object = np.array([m for m, _ in quantized], dtype=np.int64)
    shift: object = np.array([s for _, s in quantized], dtype=np.int64)
    if case.int4:  # per-tensor: scalars, broadcast by int4rt
        multiplier, shift = quantized[0]
    y_min, y_max = tflm_activation_range(case.activation, case.y_scale, case.y_zero_point)
    kwargs = dict(
        bias=case.bias, x_zero_point=case.x_zero_point, multiplier=multiplier, shift=shift,
        y_zero_point=case.y_zero_point, y_min=y_min, y_max=y_max, rounding="double",
    )
    x_in = case.x[0] if case.vector_input else case.x
    results = {
        "arith.fully_connected": arith.fully_connected(x_in, case.weights, **kwargs),
        "gemv_numba.fully_connected": gemv_numba.fully_connected(x_in, case.weights, **kwargs),
    }
    if case.int4:
        packed = arith.pack_int4(case.weights)
        assert packed.tobytes() == pack_int4(case.weights), "int4 packing differs from TFLite's"
        results["gemv_numba.fully_connected_int4"] = gemv_numba.fully_connected_int4(
            x_in, packed, n_out, **kwargs
        )
    for name, got in results.items():
        got = np.asarray(got, dtype=np.int64).reshape(tflm.shape)
        bad = np.argwhere(got != tflm)
        for b, n in bad[:3]:
            tally.mismatches.append(
                f"{name}: batch {b} channel {n}: int4rt {got[b, n]} != tflm {tflm[b, n]}; "
                f"x={case.x[b].tolist()} w={case.weights[n].tolist()} "
                f"bias={None if case.bias is None else int(case.bias[n])} "
                f"x_zp={case.x_zero_point} y_zp={case.y_zero_point} "
                f"M={quantized[min(n, len(quantized) - 1)]} y_range=({y_min}, {y_max})"
            )
    _count_rounding_cases(case, reals, tflm, y_min, y_max, tally)
    tally.outputs += tflm.size


def _count_rounding_cases(
    case: FcCase, reals: list[float], tflm: np.ndarray, y_min: int, y_max: int, tally: Tally
) -> None:
    """Count exact unclamped ties of ``acc * real`` and outputs where double rounding shows.

    Exact rational arithmetic: ``real = p / q`` with q a power of two.
    """
    acc = (case.x.astype(np.int64) - case.x_zero_point) @ case.weights.astype(np.int64).T
    if case.bias is not None:
        acc = acc + case.bias.astype(np.int64)
    for (b, n), a in np.ndenumerate(acc):
        p, q = reals[min(n, len(reals) - 1)].as_integer_ratio()
        num = int(a) * p
        floor_v = num // q
        if 2 * num % q == 0 and num % q != 0:  # acc * real ends in exactly .5
            if y_min <= floor_v + case.y_zero_point and floor_v + 1 + case.y_zero_point <= y_max:
                tally.ties += 1
        twice = 2 * abs(num) + q
        once = (twice // (2 * q)) * (1 if num >= 0 else -1)  # round half away, exactly
        if min(max(once + case.y_zero_point, y_min), y_max) != tflm[b, n]:
            tally.double_rounding += 1


def _run_kind(int4: bool, seed: int) -> Tally:
    rng = np.random.default_rng(seed)
    tally = Tally()
    for case in edge_cases(int4):
        check_case(case, tally)
    while tally.outputs < MIN_OUTPUTS:
        check_case(random_case(rng, int4), tally)
    return tally


def _report(label: str, tally: Tally, report_count) -> None:
    report_count(
        f"TFLM FULLY_CONNECTED {label}: {tally.outputs} outputs compared, "
        f"{tally.ties} exact ties (unclamped), {tally.double_rounding} where double rounding "
        f"differs from exact rounding, {len(tally.mismatches)} mismatches"
    )
    assert not tally.mismatches, "\n".join(tally.mismatches[:5])
    assert tally.outputs >= MIN_OUTPUTS
    assert tally.ties >= MIN_TIES, "too few exact ties: the rounding claim would be hollow"
    assert tally.double_rounding > 0


def test_fully_connected_int8_per_channel_matches_tflm(report_count) -> None:
    """int8 weights with per-channel scales, int8 activations with non-zero zero points."""
    _report("int8 weights per-channel", _run_kind(int4=False, seed=SEED), report_count)


def test_fully_connected_int4_per_tensor_matches_tflm(report_count) -> None:
    """Packed int4 weights (per-tensor scale), int8 activations with non-zero zero points."""
    _report("int4 weights per-tensor", _run_kind(int4=True, seed=SEED + 1), report_count)
