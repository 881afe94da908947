"""Golden sets of single integer LSTM layers (ARITHMETIC.md §8, docs/VERIFICATION.md §2).

One set per (weight bits, activation bits, rounding) combination of the ``int4rt`` profile,
plus one ``tflm``-profile layer built from TFLite-style float scales the way the tflite-micro
oracle test builds it (tests/oracle/test_tflm_lstm.py). Each layer runs forward and, for the
``int4rt`` sets, backward over the same input codes; the trace of both directions is stored.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from int4rt.arith import ROUNDING_MODES, get_profile, quantize_multiplier
from int4rt.golden.layer_tensors import cell_from_set, cell_scalars, cell_tensors
from int4rt.golden.store import Computed, GoldenSet, Tensor
from int4rt.golden.traces import trace_tensors
from int4rt.layers import ActQuant, LstmCell, QLinear
from int4rt.model.random_model import random_lstm_cell
from int4rt.ops.registry import get_backend
from int4rt.quantization import format_covering, requant_params
from int4rt.trace import Trace

SEED = 20_250_602
STEPS, INPUTS, HIDDEN = 12, 13, 8  # odd I: packed int4 rows of the input FC straddle bytes
DIRECTIONS = (("lstm.fwd", False), ("lstm.bwd", True))
GATE_PRE_SCALE = 2.0**-12


def _inputs(rng: np.random.Generator, fmt: ActQuant, steps: int, width: int) -> np.ndarray:
    """Random codes over the whole range; step 0 all qmax and step 1 all qmin (extremes)."""
    x = rng.integers(fmt.qmin, fmt.qmax, size=(steps, width), endpoint=True)
    x[0], x[1] = fmt.qmax, fmt.qmin
    return x.astype(fmt.dtype)


def _run(cell: LstmCell, x: np.ndarray, table: np.ndarray, rounding: str, backend: str,
         directions: tuple[tuple[str, bool], ...]) -> Trace:
    trace = Trace()
    for prefix, reverse in directions:
        get_backend(backend).lstm.lstm_sequence(cell, x, table, rounding, reverse=reverse,
                                                trace=trace, prefix=prefix)
    return trace


def _lstm_set(name: str, description: str, cell: LstmCell, x: np.ndarray, profile: str,
              rounding: str, directions: tuple[tuple[str, bool], ...],
              extra: dict[str, Any]) -> GoldenSet:
    table = np.array(get_profile(profile).table)
    trace = _run(cell, x, table, rounding, "numpy", directions)
    params = {"spec": "ARITHMETIC.md §8.1-§8.5", "profile": profile, "rounding": rounding,
              "directions": [{"prefix": p, "reverse": r} for p, r in directions],
              "cell": cell_scalars(cell), **extra}
    tensors = [Tensor("x", "input", x, ("t", "I"), "input codes, one row per time step"),
               Tensor("tables.sigmoid", "table", table, ("k",)), *cell_tensors("", cell),
               *trace_tensors(trace, tuple(f"{p}.hidden" for p, _ in directions))]
    return GoldenSet(name, "lstm", description, params, tensors)


def build_lstm_sets() -> list[GoldenSet]:
    """One layer per (weight bits, activation bits, rounding), int4rt profile.

    Single-rounding sets use signed activations, cell scale 2^-12 and a cell clip of 3000;
    double-rounding sets use unsigned activations, cell scale 2^-11 and no clip. Input
    formats are asymmetric (non-zero zero points); hidden formats cover [-1, 1].
    """
    sets = []
    for index, (wb, ab, rounding) in enumerate(itertools.product((4, 8), (4, 8), ROUNDING_MODES)):
        rng = np.random.default_rng(SEED + index)
        signed = rounding == "single"
        p, clip = (-12, 3000) if signed else (-11, 0)
        x_fmt = format_covering(ab, signed, -3.0, 5.0)
        cell = random_lstm_cell(rng, INPUTS, x_fmt, HIDDEN, wb,
                                format_covering(ab, signed, -1.0, 1.0), p, clip)
        kind = "signed" if signed else "unsigned"
        name = f"lstm_w{wb}_a{ab}{kind[0]}_{rounding}"
        sets.append(_lstm_set(
            name, f"one LSTM layer, {wb}-bit weights, {ab}-bit {kind} activations, {rounding} "
            f"rounding, cell scale 2^{p}, cell clip {clip}: I = {INPUTS}, H = {HIDDEN}, "
            f"T = {STEPS}, forward and backward over the same input codes",
            cell, _inputs(rng, x_fmt, STEPS, INPUTS), "int4rt", rounding, DIRECTIONS, {}))
    return [*sets, _tflm_set()]


def _f32(value: float) -> float:
    return float(np.float32(value))


def _tflm_set() -> GoldenSet:
    """An 8x8_16 LSTM as TFLite quantizes it: per-gate weight scales, int8 zero points."""
    rng = np.random.default_rng(SEED + 100)
    steps, inputs, hidden = 10, 12, 9
    x_scale, x_zp, h_scale, h_zp = _f32(0.0478), -128, _f32(1 / 128), 5
    cell_scale_log2, clip_float = -15, 0.75
    fcs, scales = {}, {}
    # rms of (code − zero point): uniform x codes with zp −128 (≈ 147); h codes ≈ 0.4 / s_h
    for part, width, act_scale, rms in (("input_fc", inputs, x_scale, 147.0),
                                        ("recurrent_fc", hidden, h_scale, 51.0)):
        weights = np.clip(np.rint(rng.normal(0.0, 40.0, (4 * hidden, width))), -127, 127)
        # one weight scale per gate: pre-activations of real spread 1 … 4 (weights rms ≈ 40)
        gate_scales = [_f32(spread / (act_scale * rms * 40.0 * np.sqrt(width)))
                       for spread in rng.uniform(1.0, 4.0, 4)]
        row_scales = np.repeat(gate_scales, hidden)
        multiplier, shift = requant_params(act_scale, row_scales, GATE_PRE_SCALE)
        bias = np.zeros(4 * hidden, dtype=np.int32)
        if part == "input_fc":
            bias = np.rint(rng.uniform(-0.5, 0.5, 4 * hidden)
                           / (act_scale * row_scales)).astype(np.int32)
        fcs[part] = QLinear(weights.astype(np.int8), 8, bias, multiplier, shift)
        scales[part] = gate_scales
    hidden_m, hidden_s = quantize_multiplier(2.0**-30 / h_scale)
    clip = int(min(max(clip_float / 2.0**cell_scale_log2, -32768), 32767))
    cell = LstmCell(fcs["input_fc"], fcs["recurrent_fc"], ActQuant(8, True, x_zp, x_scale),
                    ActQuant(8, True, h_zp, h_scale), cell_scale_log2, clip, hidden_m, hidden_s)
    cell.validate("lstm_tflm")
    tflite = {"input_scale": x_scale, "input_zero_point": x_zp, "output_scale": h_scale,
              "output_zero_point": h_zp,
              "input_weight_scales_ifgo": scales["input_fc"],
              "recurrent_weight_scales_ifgo": scales["recurrent_fc"],
              "cell_scale": 2.0**cell_scale_log2, "cell_clip": clip_float,
              "mapping": "gate (M, s) = quantize_multiplier(double(s_x) * double(s_w_gate) / "
                         "2^-12), hidden (M, s) = quantize_multiplier(2^-30 / double(s_h)), "
                         "clip in cell codes = int16(min(max(clip / s_c, -32768), 32767))"}
    return _lstm_set(
        "lstm_tflm", f"an 8x8_16 UNIDIRECTIONAL_SEQUENCE_LSTM of the tflm profile (TFLM's sigmoid "
        f"table, double rounding, per-gate scales, input zero point -128, cell scale "
        f"2^{cell_scale_log2}, cell clip {clip_float}): I = {inputs}, H = {hidden}, T = {steps}",
        cell, _inputs(rng, cell.input, steps, inputs), "tflm", "double", DIRECTIONS[:1],
        {"tflite": tflite})


def replay_lstm(gset: GoldenSet, backend: str) -> list[Computed]:
    """Rebuild the layer from its stored parameters and rerun every direction."""
    p = gset.params
    cell = cell_from_set(gset, p["cell"])
    directions = tuple((d["prefix"], d["reverse"]) for d in p["directions"])
    trace = _run(cell, gset["x"], gset["tables.sigmoid"], p["rounding"], backend, directions)
    via = f"{get_backend(backend).lstm.__name__}.lstm_sequence"
    return [Computed(name, value, via) for name, value in trace.items()]
