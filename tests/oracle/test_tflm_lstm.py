"""int4rt's integer LSTM (``tflm`` profile) is bit-exact with tflite-micro's LSTM.

Hundreds of one-operator UNIDIRECTIONAL_SEQUENCE_LSTM models (8x8_16: int8 weights and
activations, int16 cell state) are authored in pure Python (``tflite_builder``) with random
sizes, input/hidden scales and zero points (extremes -128 and 127 included), per-gate weight
scales, biases, cell scales 2^-11 … 2^-15 and optional cell clips. Each model runs three
sequences on the tflite-micro interpreter: one after a reset, one continuing from the
state that left (no reset; compared with int4rt over the concatenation), and one after
another reset. The output sequence and the final hidden and cell states (the operator's
variable tensors) are compared with ``int4rt.ops.lstm.reference.lstm_sequence`` and
``int4rt.ops.lstm.numba.lstm_sequence``; the states catch table errors the outputs miss.

TFLite quantization maps to int4rt as follows. Gate FC (M, s) = quantize_multiplier of
``double(s_x) * double(s_w_gate) / 2^-12`` (the wheel forms the product in double from the
float32 scales), the same for every row of the gate; the hidden requantization is
quantize_multiplier(2^-30 / double(s_h)); the clip in cell codes is
``int16(min(max(double(clip) / double(s_c), -32768), 32767))`` (truncating).

Negative controls show the oracle discriminates: int4rt with single rounding, with its own
(math-generated) sigmoid table, or with gate scale products formed in float32 must disagree
with tflite-micro. (A clip below one cell LSB, which TFLM turns into a clip to 0, is not
generated: int4rt's ``cell_clip = 0`` means "no clip".)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest

pytest.importorskip("tflite_micro")
pytest.importorskip("ai_edge_litert")

import int4rt.ops.lstm.numba as kernel_lstm
import int4rt.ops.lstm.reference as ref_lstm
from int4rt.arith import TFLM_SIGMOID_TABLE, quantize_multiplier, sigmoid_table
from int4rt.layers import ActQuant, LstmCell, QLinear

from .tflite_builder import build_unidirectional_sequence_lstm

pytestmark = pytest.mark.oracle

SEED = 20_240_612
N_MODELS = 200
MIN_OUTPUTS = 100_000
MIN_STATES = 10_000
CELL_SCALE_LOG2 = (-11, -12, -13, -14, -15)
TIME_STEPS = (1, 2, 3, 5, 8, 13, 21, 34)
GATE_PRE_SCALE = 2.0**-12  # Q3.12 gate pre-activations
INT8_MIN, INT8_MAX = -128, 127
ARENA_SIZE = 1 << 18

LstmFn = Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray]]
IMPLEMENTATIONS: dict[str, LstmFn] = {
    "ref": ref_lstm.lstm_sequence,
    "kernels": kernel_lstm.lstm_sequence,
}


@dataclass
class LstmCase:
    """One LSTM model in TFLite terms, and its input sequences."""

    input_weights: list[np.ndarray]  # int8 [H, I] per gate, order i, f, g, o
    recurrent_weights: list[np.ndarray]  # int8 [H, H] per gate
    biases: list[np.ndarray]  # int32 [H] per gate
    input_weight_scales: list[float]  # float32 values, one per gate
    recurrent_weight_scales: list[float]
    x_scale: float
    x_zero_point: int
    h_scale: float
    h_zero_point: int
    cell_scale_log2: int
    cell_clip: float  # float32 value; 0 = none
    time_steps: int
    batch: int
    time_major: bool
    sequences: list[np.ndarray] = field(default_factory=list)  # 3 x int8 [batch, T, I]

    @property
    def hidden_size(self) -> int:
        """H."""
        return int(self.input_weights[0].shape[0])

    @property
    def input_size(self) -> int:
        """I."""
        return int(self.input_weights[0].shape[1])


@dataclass
class TflmResult:
    """What tflite-micro produced for one sequence: outputs and the states it left."""

    output: np.ndarray  # int8 [batch, T, H]
    hidden: np.ndarray  # int8 [batch, H]
    cell: np.ndarray  # int16 [batch, H]


def _f32(value: float) -> float:
    return float(np.float32(value))


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _zero_point(rng: np.random.Generator) -> int:
    """A zero point; the extremes -128 and 127 each come up about one time in eight."""
    pick = rng.random()
    if pick < 1 / 8:
        return INT8_MIN
    if pick < 2 / 8:
        return INT8_MAX
    return int(rng.integers(INT8_MIN, INT8_MAX + 1))


def _weights(rng: np.random.Generator, rows: int, cols: int) -> tuple[np.ndarray, float]:
    """Random int8 codes [rows, cols] of a random spread; returns (codes, their rms)."""
    amplitude = _log_uniform(rng, 4.0, 120.0)
    codes = np.clip(np.rint(rng.normal(0.0, amplitude, (rows, cols))), INT8_MIN, INT8_MAX)
    codes = codes.astype(np.int8)
    rms = float(np.sqrt(np.mean(codes.astype(np.float64) ** 2))) or 1.0
    return codes, rms


def _gate_scale(rng: np.random.Generator, act_scale: float, act_rms: float, w_rms: float,
                depth: int) -> float:
    """A float32 weight scale giving gate pre-activations of a random real spread (0.2…12)."""
    target = _log_uniform(rng, 0.2, 12.0)
    return _f32(target / (act_scale * act_rms * w_rms * math.sqrt(depth)))


def random_case(rng: np.random.Generator) -> LstmCase:
    """A random 8x8_16 LSTM model and three input sequences."""
    i_size = int(rng.integers(1, 41))
    h_size = int(rng.integers(1, 33))
    x_scale = _f32(_log_uniform(rng, 2.0**-9, 2.0**-2))
    x_zp = _zero_point(rng)
    h_scale = _f32(_log_uniform(rng, 2.0**-8, 2.0**-4))
    h_zp = _zero_point(rng)
    # rms of (code - zero point): uniform x codes; h codes spread about 0.4 / s_h.
    x_rms = math.sqrt(256.0**2 / 12 + (x_zp + 0.5) ** 2)
    h_rms = min(0.4 / h_scale, 128.0)
    input_weights, recurrent_weights, biases, in_scales, rec_scales = [], [], [], [], []
    for _ in range(4):
        w_x, w_x_rms = _weights(rng, h_size, i_size)
        w_h, w_h_rms = _weights(rng, h_size, h_size)
        s_wx = _gate_scale(rng, x_scale, x_rms, w_x_rms, i_size)
        s_wh = _gate_scale(rng, h_scale, h_rms, w_h_rms, h_size)
        bias_real = rng.normal(rng.uniform(-2.0, 2.0), rng.uniform(0.0, 3.0), h_size)
        bias = np.rint(bias_real / (float(x_scale) * s_wx))
        input_weights.append(w_x)
        recurrent_weights.append(w_h)
        biases.append(np.clip(bias, -(2**30), 2**30).astype(np.int32))
        in_scales.append(s_wx)
        rec_scales.append(s_wh)
    cell_scale_log2 = int(rng.choice(CELL_SCALE_LOG2))
    cell_range = 32768.0 * 2.0**cell_scale_log2
    clip_pick = rng.random()
    if clip_pick < 0.5:
        cell_clip = 0.0
    elif clip_pick < 0.9:
        cell_clip = _f32(rng.uniform(0.05, 1.0) * cell_range)
    else:
        cell_clip = _f32(rng.uniform(1.0, 4.0) * cell_range)  # beyond int16: 32767 codes
    time_steps = int(rng.choice(TIME_STEPS))
    batch = int(rng.choice((1, 1, 1, 1, 2, 3)))
    case = LstmCase(
        input_weights, recurrent_weights, biases, in_scales, rec_scales, x_scale, x_zp,
        h_scale, h_zp, cell_scale_log2, cell_clip, time_steps, batch,
        time_major=bool(rng.integers(0, 2)),
    )
    case.sequences = [
        rng.integers(INT8_MIN, INT8_MAX + 1, (batch, time_steps, i_size)).astype(np.int8)
        for _ in range(3)
    ]
    return case


def gate_requant(act_scale: float, weight_scale: float, *, double: bool = True) -> tuple[int, int]:
    """(M, s) of a gate FC: ``s_act * s_w / 2^-12``, the product in double (or float32)."""
    if double:
        product = float(np.float64(np.float32(act_scale)) * np.float64(np.float32(weight_scale)))
    else:
        product = float(np.float32(act_scale) * np.float32(weight_scale))
    return quantize_multiplier(product / GATE_PRE_SCALE)


def quantized_cell_clip(case: LstmCase) -> int:
    """The clip in cell codes as TFLM's CreateLstmCellStateInfo forms it (0 = no clip)."""
    if case.cell_clip <= 0.0:
        return 0
    codes = min(max(float(np.float32(case.cell_clip)) / 2.0**case.cell_scale_log2, -32768.0),
                32767.0)
    return int(codes)  # static_cast<int16_t>: truncation toward zero


def _gate_linear(weights: list[np.ndarray], bias: np.ndarray, act_scale: float,
                 weight_scales: list[float], double: bool) -> QLinear:
    h_size = weights[0].shape[0]
    pairs = [gate_requant(act_scale, s, double=double) for s in weight_scales]
    multiplier = np.repeat([m for m, _ in pairs], h_size).astype(np.int32)
    shift = np.repeat([s for _, s in pairs], h_size).astype(np.int32)
    return QLinear(np.vstack(weights).astype(np.int8), 8, bias, multiplier, shift)


def int4rt_cell(case: LstmCase, *, double: bool = True) -> LstmCell:
    """The int4rt LstmCell that TFLM's Prepare derives from the case's tensors and options.

    ``double=False`` forms the gate scale products in float32 instead (a negative control).
    """
    h_size = case.hidden_size
    hidden_m, hidden_s = quantize_multiplier(2.0**-30 / float(np.float32(case.h_scale)))
    cell = LstmCell(
        input_fc=_gate_linear(case.input_weights, np.concatenate(case.biases).astype(np.int32),
                              case.x_scale, case.input_weight_scales, double),
        recurrent_fc=_gate_linear(case.recurrent_weights, np.zeros(4 * h_size, np.int32),
                                  case.h_scale, case.recurrent_weight_scales, double),
        input=ActQuant(bits=8, signed=True, zero_point=case.x_zero_point, scale=case.x_scale),
        hidden=ActQuant(bits=8, signed=True, zero_point=case.h_zero_point, scale=case.h_scale),
        cell_scale_log2=case.cell_scale_log2,
        cell_clip=quantized_cell_clip(case),
        hidden_multiplier=hidden_m,
        hidden_shift=hidden_s,
    )
    cell.validate("oracle_lstm")
    return cell


def run_tflm(case: LstmCase) -> list[TflmResult]:
    """Run the three sequences: reset, invoke; invoke again (state carried); reset, invoke."""
    from tflite_micro import runtime

    model = build_unidirectional_sequence_lstm(
        input_weights=case.input_weights,
        recurrent_weights=case.recurrent_weights,
        biases=case.biases,
        input_weight_scales=case.input_weight_scales,
        recurrent_weight_scales=case.recurrent_weight_scales,
        time_steps=case.time_steps,
        x_scale=case.x_scale,
        x_zero_point=case.x_zero_point,
        h_scale=case.h_scale,
        h_zero_point=case.h_zero_point,
        cell_scale_log2=case.cell_scale_log2,
        cell_clip=case.cell_clip,
        batch=case.batch,
        time_major=case.time_major,
    )
    interp = runtime.Interpreter.from_bytes(
        model.buffer,
        arena_size=ARENA_SIZE,
        intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors,
    )
    results = []
    for k, seq in enumerate(case.sequences):
        if k != 1:
            interp.reset()
        x = seq.transpose(1, 0, 2) if case.time_major else seq
        interp.set_input(np.ascontiguousarray(x), 0)
        interp.invoke()
        y = np.array(interp.get_output(0), copy=True)
        if case.time_major:
            y = y.transpose(1, 0, 2)
        h_size = case.hidden_size
        hidden = np.array(interp.GetTensor(model.hidden_state, 0)["tensor_data"], copy=True)
        cell = np.array(interp.GetTensor(model.cell_state, 0)["tensor_data"], copy=True)
        results.append(TflmResult(y, hidden.reshape(case.batch, h_size),
                                  cell.reshape(case.batch, h_size)))
    return results


@dataclass
class Tally:
    """Comparison counts over all models."""

    outputs: int = 0
    states: int = 0
    models: int = 0
    mismatched_outputs: int = 0
    mismatched_states: int = 0
    first: list[str] = field(default_factory=list)

    def compare(self, what: str, expected: np.ndarray, got: np.ndarray, state: bool) -> None:
        """Count ``expected`` values and those of ``got`` that differ."""
        bad = int(np.count_nonzero(expected.astype(np.int32) != got.astype(np.int32)))
        if state:
            self.states += expected.size
            self.mismatched_states += bad
        else:
            self.outputs += expected.size
            self.mismatched_outputs += bad
        if bad and len(self.first) < 5:
            self.first.append(f"{what}: expected {expected.ravel()[:16]} got {got.ravel()[:16]}")


def compare_case(case: LstmCase, cell: LstmCell, results: list[TflmResult], fn: LstmFn,
                 table: np.ndarray, rounding: str, tally: Tally, label: str) -> None:
    """Compare one model's three TFLM runs with int4rt's ``fn`` for every batch row."""
    steps = case.time_steps
    for b in range(case.batch):
        runs = [
            (case.sequences[0][b], results[0], 0),
            (np.concatenate([case.sequences[0][b], case.sequences[1][b]]), results[1], steps),
            (case.sequences[2][b], results[2], 0),
        ]
        for k, (x, res, start) in enumerate(runs):
            hidden, h_last, c_last = fn(cell, x, table, rounding)
            where = f"{label} seq {k} batch {b}"
            tally.compare(f"{where} output", res.output[b], hidden[start:], state=False)
            tally.compare(f"{where} hidden state", res.hidden[b], h_last, state=True)
            tally.compare(f"{where} cell state", res.cell[b], c_last, state=True)
    tally.models += 1


@pytest.fixture(scope="module")
def oracle_runs() -> list[tuple[LstmCase, LstmCell, list[TflmResult]]]:
    """The random models, their int4rt cells and tflite-micro's results."""
    rng = np.random.default_rng(SEED)
    runs = []
    for _ in range(N_MODELS):
        case = random_case(rng)
        runs.append((case, int4rt_cell(case), run_tflm(case)))
    return runs


def _describe(case: LstmCase) -> str:
    return (f"I={case.input_size} H={case.hidden_size} T={case.time_steps} batch={case.batch} "
            f"time_major={case.time_major} s_x={case.x_scale!r} zp_x={case.x_zero_point} "
            f"s_h={case.h_scale!r} zp_h={case.h_zero_point} s_c=2^{case.cell_scale_log2} "
            f"clip={case.cell_clip!r}")


@pytest.mark.parametrize("impl", list(IMPLEMENTATIONS))
def test_lstm_matches_tflm(
    impl: str,
    oracle_runs: list[tuple[LstmCase, LstmCell, list[TflmResult]]],
    report_count: Callable[[str], None],
) -> None:
    """Outputs and final states of every model agree with tflite-micro bit for bit."""
    tally = Tally()
    fn = IMPLEMENTATIONS[impl]
    for n, (case, cell, results) in enumerate(oracle_runs):
        compare_case(case, cell, results, fn, TFLM_SIGMOID_TABLE, "double", tally,
                     f"model {n} ({_describe(case)})")
    mismatches = tally.mismatched_outputs + tally.mismatched_states
    report_count(
        f"TFLM UNIDIRECTIONAL_SEQUENCE_LSTM ({impl}): {tally.outputs} outputs + "
        f"{tally.states} state values compared over {tally.models} models, "
        f"{mismatches} mismatches"
    )
    assert mismatches == 0, "\n".join(tally.first)
    assert tally.outputs >= MIN_OUTPUTS
    assert tally.states >= MIN_STATES


@pytest.mark.parametrize(
    ("control", "table", "rounding", "double"),
    [("single rounding", TFLM_SIGMOID_TABLE, "single", True),
     ("int4rt's own sigmoid table", sigmoid_table(), "double", True),
     ("float32 gate scale products", TFLM_SIGMOID_TABLE, "double", False)],
)
def test_negative_controls(
    control: str,
    table: np.ndarray,
    rounding: str,
    double: bool,
    oracle_runs: list[tuple[LstmCase, LstmCell, list[TflmResult]]],
    report_count: Callable[[str], None],
) -> None:
    """A deliberately wrong int4rt (rounding, table or multipliers) disagrees with tflite-micro.

    The float32-product control shows the wheel forms ``s_x * s_w`` in double; its effect is
    rare (a multiplier off by a few parts in 2^24), and it shows up in the cell states.
    """
    tally = Tally()
    for n, (case, cell, results) in enumerate(oracle_runs):
        if not double:
            cell = int4rt_cell(case, double=False)
        compare_case(case, cell, results, kernel_lstm.lstm_sequence, table, rounding, tally,
                     f"model {n}")
    report_count(
        f"TFLM LSTM negative control ({control}): {tally.mismatched_outputs} of "
        f"{tally.outputs} outputs and {tally.mismatched_states} of {tally.states} state "
        f"values differ over {tally.models} models"
    )
    assert tally.mismatched_outputs + tally.mismatched_states > 0
    if double:
        assert tally.mismatched_outputs > 0 and tally.mismatched_states > 0
