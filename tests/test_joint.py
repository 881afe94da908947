"""Joint network (§9): reference vs kernel with traces and log-probs; float check of the network."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import int4rt.ops.joint.numba as fast
import int4rt.ops.joint.reference as ref
import int4rt.ops.log_softmax.numba as fast_ls
import int4rt.ops.log_softmax.reference as ref_ls
from int4rt.arith import TFLM_SIGMOID_TABLE, quantize_multiplier, sigmoid_table
from int4rt.layers import ActQuant, Joint, QLinear
from int4rt.model.random_model import random_linear
from int4rt.ops.log_softmax.tables import exp2_table, ln_table
from int4rt.quantization import format_covering
from int4rt.trace import Trace

Q3_12 = 2.0**-12
ENC_DIM, PRED_DIM, JOINT_DIM, VOCAB = 24, 20, 32, 29
FRAMES, STATES = 6, 5
COMBOS = [(wb, ab, mode, rounding) for wb in (4, 8) for ab in (4, 8)
          for mode in ("additive", "multiplicative") for rounding in ("double", "single")]


def _f32(value: float) -> float:
    return float(np.float32(value))


@dataclasses.dataclass
class Setup:
    """A random joint with its input formats, the output scales of the projections and inputs."""

    joint: Joint
    enc_format: ActQuant
    pred_format: ActQuant
    enc_scale: float
    pred_scale: float
    enc_codes: np.ndarray  # [FRAMES, ENC_DIM]
    pred_codes: np.ndarray  # [STATES, PRED_DIM]


def random_joint(seed: int, weight_bits: int, act_bits: int, mode: str) -> Setup:
    """A §9 joint whose scales follow the converter rule (§3) and inputs over every code."""
    rng = np.random.default_rng(seed)
    enc_format = format_covering(act_bits, True, -1.0, 0.6)
    pred_format = format_covering(act_bits, False, -1.0, 1.0)
    hidden = format_covering(act_bits, weight_bits == 8, -1.0, 1.0)
    if mode == "additive":
        enc_scale = pred_scale = Q3_12
        combine = (0, 0)
    else:
        enc_scale, pred_scale = _f32(1 / 3000), _f32(1 / 5000)
        combine = quantize_multiplier(enc_scale * pred_scale / Q3_12)
    frac_bits = int(rng.integers(4, 17))
    joint = Joint(
        enc_proj=random_linear(rng, JOINT_DIM, ENC_DIM, weight_bits, enc_format, enc_scale,
                               spread=3.0),
        pred_proj=random_linear(rng, JOINT_DIM, PRED_DIM, weight_bits, pred_format, pred_scale,
                                spread=3.0),
        mode=mode,
        combine_multiplier=combine[0],
        combine_shift=combine[1],
        hidden=hidden,
        hidden_multiplier=quantize_multiplier(2.0**-15 / _f32(hidden.scale))[0],
        hidden_shift=quantize_multiplier(2.0**-15 / _f32(hidden.scale))[1],
        out=random_linear(rng, VOCAB, JOINT_DIM, weight_bits, hidden, 2.0**-frac_bits,
                          spread=2.0),
        logit_frac_bits=frac_bits,
    )

    def codes(fmt: ActQuant, shape: tuple[int, int]) -> np.ndarray:
        return rng.integers(fmt.qmin, fmt.qmax, size=shape, endpoint=True).astype(fmt.dtype)

    return Setup(joint, enc_format, pred_format, enc_scale, pred_scale,
                 codes(enc_format, (FRAMES, ENC_DIM)), codes(pred_format, (STATES, PRED_DIM)))


def all_pairs(enc: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of every (frame, label state) pair, frame-major: N = FRAMES · STATES."""
    return np.repeat(enc, pred.shape[0], axis=0), np.tile(pred, (enc.shape[0], 1))


def run(impl, setup: Setup, table: np.ndarray, rounding: str) -> tuple[np.ndarray, Trace]:
    joint, trace = setup.joint, Trace()
    enc = impl.project_encoder(joint, setup.enc_codes, setup.enc_format, rounding)
    pred = impl.project_predictor(joint, setup.pred_codes, setup.pred_format, rounding)
    trace.record("joint.enc_proj", enc)
    trace.record("joint.pred_proj", pred)
    logits = impl.joint_logits(joint, *all_pairs(enc, pred), table, rounding, trace=trace)
    return logits, trace


def table_for(rounding: str) -> np.ndarray:
    return TFLM_SIGMOID_TABLE if rounding == "double" else sigmoid_table()


@pytest.mark.thorough
@pytest.mark.parametrize(("weight_bits", "act_bits", "mode", "rounding"), COMBOS)
def test_implementations_agree(weight_bits, act_bits, mode, rounding):
    for seed in range(3):
        setup = random_joint(seed, weight_bits, act_bits, mode)
        table = table_for(rounding)
        logits, trace = run(ref, setup, table, rounding)
        fast_logits, fast_trace = run(fast, setup, table, rounding)
        assert logits.dtype == np.int32 and logits.shape == (FRAMES * STATES, VOCAB)
        names = ["joint.enc_proj", "joint.pred_proj", "joint.pre", "joint.tanh",
                 "joint.hidden", "joint.logits"]
        assert list(trace) == list(fast_trace) == names
        dtypes = [np.int16, np.int16, np.int16, np.int16, setup.joint.hidden.dtype, np.int32]
        for name, dtype in zip(names, dtypes, strict=True):
            assert trace[name].dtype == fast_trace[name].dtype == dtype, name
            np.testing.assert_array_equal(fast_trace[name], trace[name], err_msg=name)
        np.testing.assert_array_equal(fast_logits, logits)
        frac_bits = setup.joint.logit_frac_bits
        lp = ref_ls.log_softmax(logits, frac_bits, exp2_table(), ln_table())
        np.testing.assert_array_equal(fast_ls.log_softmax(logits, frac_bits, exp2_table(),
                                                          ln_table()), lp)


def dequantize(layer: QLinear, s_in: float, s_out: float) -> tuple[np.ndarray, np.ndarray]:
    """Float64 weights ``w · s_w`` and bias ``b · s_in · s_w`` of a layer, with the per-row
    weight scale ``s_w = M·2^(s−31) · s_out / s_in`` that its (M, s) encode (§3)."""
    s_w = layer.multiplier * 2.0 ** (layer.shift.astype(np.float64) - 31) * s_out / s_in
    return layer.weight * s_w[:, None], layer.bias * s_in * s_w


def float_linear(layer: QLinear, codes: np.ndarray, fmt: ActQuant, s_out: float) -> np.ndarray:
    """The layer in float64 on the dequantized inputs ``(x − zp) · s_in``."""
    weight, bias = dequantize(layer, float(fmt.scale), s_out)
    return ((codes.astype(np.float64) - fmt.zero_point) * float(fmt.scale)) @ weight.T + bias


@pytest.mark.parametrize(("weight_bits", "act_bits", "mode", "rounding"), COMBOS)
def test_matches_float_network(weight_bits, act_bits, mode, rounding, report_count):
    """The integers against float64 of the same quantized network, stage by stage.

    Tolerances (each requantization errs by < 1 output LSB, §4):
    projections: 1 LSB. pre (real): additive 2 · 2^−12; multiplicative s_e·|P| + s_p·|E| +
    s_e·s_p + 2^−12. tanh16 errs by < 2^−11 (test_activations) and tanh is 1-Lipschitz, so the
    real hidden value errs by δ = pre error + 2^−11; its code is a rounding of a value within
    δ / s_h + 2^−6 (the first rounding of §4.3) of the float one: it must lie in
    [round(h − t), round(h + t)]. Logits: the output requantization (< 2^−F) plus, for hidden
    units whose interval is not a single code, |w_real| · s_h · interval width.
    """
    setup = random_joint(100 + COMBOS.index((weight_bits, act_bits, mode, rounding)),
                         weight_bits, act_bits, mode)
    joint, table = setup.joint, table_for(rounding)
    logits, trace = run(ref, setup, table, rounding)
    s_e, s_p, s_h = setup.enc_scale, setup.pred_scale, float(joint.hidden.scale)

    enc_f = float_linear(joint.enc_proj, setup.enc_codes, setup.enc_format, s_e)
    pred_f = float_linear(joint.pred_proj, setup.pred_codes, setup.pred_format, s_p)
    for name, real, scale in (("enc_proj", enc_f, s_e), ("pred_proj", pred_f, s_p)):
        clipped = np.clip(real / scale, -32768, 32767)
        assert np.abs(trace[f"joint.{name}"] - clipped).max() < 1, name
    enc_f, pred_f = (np.clip(x, -32768 * s, 32767 * s) for x, s in ((enc_f, s_e), (pred_f, s_p)))
    enc_f, pred_f = all_pairs(enc_f, pred_f)
    if mode == "additive":
        pre_f = enc_f + pred_f
        pre_err = 2 * Q3_12
    else:
        pre_f = enc_f * pred_f
        pre_err = s_e * np.abs(pred_f) + s_p * np.abs(enc_f) + s_e * s_p + Q3_12 + 2.0**-24
    pre_f = np.clip(pre_f, -32768 * Q3_12, 32767 * Q3_12)
    assert np.all(np.abs(trace["joint.pre"] * Q3_12 - pre_f) <= pre_err)

    fmt = joint.hidden
    h_f = np.tanh(pre_f) / s_h
    t = (pre_err + 2.0**-11) / s_h + 2.0**-6
    lo, hi = (np.clip(np.floor(h + 0.5) + fmt.zero_point, fmt.qmin, fmt.qmax)
              for h in (h_f - t, h_f + t))
    hidden = trace["joint.hidden"]
    assert np.all((lo <= hidden) & (hidden <= hi))

    code_f = np.clip(np.floor(h_f + 0.5) + fmt.zero_point, fmt.qmin, fmt.qmax)
    scale_out = 2.0**-joint.logit_frac_bits
    logits_f = float_linear(joint.out, code_f, fmt, scale_out)
    w_real = np.abs(dequantize(joint.out, s_h, scale_out)[0])
    tol = scale_out + (hi - lo) @ (w_real * s_h).T + 1e-9
    assert np.all(np.abs(logits * scale_out - logits_f) <= tol)

    # Each stage again, from the previous stage's integers: within one rounding.
    enc, pred = all_pairs(trace["joint.enc_proj"], trace["joint.pred_proj"])
    enc, pred = enc.astype(np.float64), pred.astype(np.float64)
    if mode == "additive":
        np.testing.assert_array_equal(trace["joint.pre"], np.clip(enc + pred, -32768, 32767))
    else:
        combine = joint.combine_multiplier * 2.0 ** (joint.combine_shift - 31)
        assert np.all(np.abs(trace["joint.pre"] - np.clip(enc * pred * combine, -32768, 32767))
                      < 1)
    tanh = trace["joint.tanh"] / 32768
    assert np.all(np.abs(tanh - np.tanh(trace["joint.pre"] * Q3_12)) < 2.0**-11)
    unclamped = tanh / s_h + fmt.zero_point
    inside = (unclamped > fmt.qmin) & (unclamped < fmt.qmax)
    assert np.all(np.abs(hidden - unclamped)[inside] <= 0.5 + 2.0**-6)
    assert np.all(hidden[~inside] == np.clip(np.floor(unclamped[~inside] + 0.5), fmt.qmin,
                                             fmt.qmax))
    assert np.all(np.abs(logits - float_linear(joint.out, hidden, fmt, scale_out) / scale_out)
                  < 1)
    report_count(f"joint float check {weight_bits}w{act_bits}a {mode} {rounding}: hidden codes "
                 f"pinned {np.mean(hi == lo):.0%}, logits max err "
                 f"{np.abs(logits * scale_out - logits_f).max():.2e}")


@pytest.mark.parametrize("impl", [ref, fast])
def test_rejects_bad_input(impl):
    setup = random_joint(0, 8, 8, "additive")
    joint = setup.joint
    e = np.zeros((3, JOINT_DIM), np.int16)
    table = sigmoid_table()
    with pytest.raises(ValueError, match="joint: unknown mode 'concat'"):
        impl.joint_logits(dataclasses.replace(joint, mode="concat"), e, e, table, "double")
    with pytest.raises(ValueError, match=r"pred_proj has shape \(3, 5\)"):
        impl.joint_logits(joint, e, e[:, :5], table, "double")
    with pytest.raises(ValueError, match=r"enc_proj \(3, 32\) and pred_proj \(2, 32\) differ"):
        impl.joint_logits(joint, e, e[:2], table, "double")
    with pytest.raises(ValueError, match="enc_proj holds 32768"):
        impl.joint_logits(joint, e.astype(np.int32) + 32768, e, table, "double")
    with pytest.raises(ValueError, match="pred_proj must hold integers"):
        impl.joint_logits(joint, e, e.astype(np.float32), table, "double")
    with pytest.raises(ValueError, match="unknown rounding mode"):
        impl.joint_logits(joint, e, e, table, "even")
    with pytest.raises(ValueError, match=r"joint\.hidden multiplier -1 outside"):
        impl.joint_logits(dataclasses.replace(joint, hidden_multiplier=-1, hidden_shift=0), e,
                          e, table, "double")
    with pytest.raises(ValueError, match="sigmoid table must be uint16"):
        impl.joint_logits(joint, e, e, table.astype(np.int32), "double")
    with pytest.raises(ValueError, match=r"activations have shape \(5, 20\)"):
        impl.project_encoder(joint, setup.pred_codes, setup.enc_format, "double")


@pytest.mark.parametrize("impl", [ref, fast])
def test_worked_example(impl):
    """The example of §9.4: both modes, both roundings, int8 symmetric hidden codes, F = 8."""
    hidden = ActQuant(8, True, 0, _f32(1 / 127))
    assert quantize_multiplier(2.0**-15 / hidden.scale) == (2130706440, -8)
    assert quantize_multiplier(hidden.scale * 0.05 / 2.0**-8) == (1731514368, -3)
    out = QLinear(np.array([[3, -2], [-1, 4], [0, 5]], np.int8), 8,
                  np.array([600, -300, 0], np.int32), np.full(3, 1731514368, np.int32),
                  np.full(3, -3, np.int32))
    unused = QLinear(np.zeros((2, 1), np.int8), 8, *(np.zeros(2, np.int32) for _ in range(3)))
    enc = np.array([[1000, -30000]], np.int16)
    pred = np.array([[2000, -5000]], np.int16)
    want = {
        ("additive", "double"): ([3000, -32768], [20465, -32767], [79, -127], [110, -89, -64]),
        ("multiplicative", "double"): ([3906, 32767], [24294, 32767], [94, 127], [63, 12, 64]),
        ("multiplicative", "single"): ([3906, 32767], [24294, 32767], [94, 127], [63, 11, 64]),
    }
    want[("additive", "single")] = want[("additive", "double")]
    for (mode, rounding), stages in want.items():
        joint = Joint(unused, unused, mode, 1 << 30, -8, hidden, 2130706440, -8, out, 8)
        trace = Trace()
        impl.joint_logits(joint, enc, pred, sigmoid_table(), rounding, trace=trace)
        got = tuple(trace[f"joint.{name}"][0].tolist()
                    for name in ("pre", "tanh", "hidden", "logits"))
        assert got == stages, (mode, rounding)
