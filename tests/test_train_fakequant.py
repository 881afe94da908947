"""QAT integer building blocks in PyTorch against int4rt's NumPy reference, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from int4rt.layers import initial_state  # noqa: E402
from int4rt.model.config import load_config  # noqa: E402
from int4rt.model.random_model import random_model  # noqa: E402
from int4rt.ops.activations.reference import sigmoid16 as reference_sigmoid16  # noqa: E402
from int4rt.ops.activations.reference import tanh16 as reference_tanh16  # noqa: E402
from int4rt.ops.activations.tables import sigmoid_table  # noqa: E402
from int4rt.ops.gemv.reference import fully_connected as reference_fc  # noqa: E402
from int4rt.ops.log_softmax.reference import log_softmax as reference_log_softmax  # noqa: E402
from int4rt.ops.lstm.reference import lstm_step as reference_step  # noqa: E402
from int4rt.ops.requantize.reference import requantize as reference_requantize  # noqa: E402
from int4rt.trace import Trace  # noqa: E402
from int4rt_train import fakequant as fq  # noqa: E402
from int4rt_train.fakequant import ActClip, quantize_codes, requantize  # noqa: E402

EDGES = np.array([-(1 << 31), (1 << 31) - 1, 0, 1, -1, 12345, -678, 1 << 30, -(1 << 30)])


@pytest.mark.parametrize("rounding", ["double", "single"])
def test_requantize_equals_reference(rounding: str) -> None:
    rng = np.random.default_rng(0)
    acc = np.concatenate([EDGES, rng.integers(-(1 << 31), 1 << 31, 4000)])
    for shift in range(-31, 31):
        multiplier = np.concatenate([EDGES, rng.integers(-(1 << 31), 1 << 31, 4000)])
        if rounding == "single":   # keep acc·M + 2^(30−s) inside int64
            multiplier = multiplier[np.abs(multiplier) < (1 << 31)]
        acc_b = acc[:multiplier.size]
        expect = reference_requantize(acc_b, multiplier, shift, rounding=rounding)
        got = requantize(torch.from_numpy(acc_b), torch.from_numpy(multiplier),
                         torch.tensor(shift), rounding)
        np.testing.assert_array_equal(got.numpy(), expect, err_msg=f"shift {shift}")


def test_per_row_shifts_broadcast() -> None:
    rng = np.random.default_rng(1)
    acc = rng.integers(-(1 << 20), 1 << 20, (5, 4))
    multiplier = rng.integers(1 << 30, 1 << 31, (5, 1))
    shift = rng.integers(-20, 3, (5, 1))
    got = requantize(torch.from_numpy(acc), torch.from_numpy(multiplier),
                     torch.from_numpy(shift), "double").numpy()
    for row in range(5):
        np.testing.assert_array_equal(got[row], reference_requantize(
            acc[row], int(multiplier[row, 0]), int(shift[row, 0]), rounding="double"))


def test_feature_quantizer_matches_the_engine_format() -> None:
    quantizer = ActClip(-2.7, 3.1)
    fmt = quantizer.format()
    rng = np.random.default_rng(2)
    ties = (np.arange(-20, 21) + 0.5 - fmt.zero_point) * np.float64(fmt.scale)  # x / s + 1/2 exact
    values = np.concatenate([rng.normal(0, 2, 3000), ties])
    codes = quantize_codes(torch.from_numpy(values), fmt.scale, fmt.zero_point, fmt.qmin,
                           fmt.qmax)
    np.testing.assert_array_equal(codes.numpy(), fmt.quantize(values))
    x = torch.tensor(values, requires_grad=True)
    out = quantizer(x)
    np.testing.assert_array_equal(
        out.detach().numpy(),
        (fmt.quantize(values).astype(np.int64) - fmt.zero_point) * np.float64(fmt.scale))
    out.sum().backward()
    inside = (values > -2.7) & (values < 3.1)
    np.testing.assert_array_equal(x.grad.numpy(), inside.astype(np.float64))


@pytest.mark.parametrize("scaling", [(3, 0), (3, 2), (12, 0), (3, 9)])
def test_sigmoid_and_tanh_tables_exhaustive(scaling: tuple[int, int]) -> None:
    table = sigmoid_table()
    x = np.arange(-32768, 32768)
    for exact, reference in ((fq.sigmoid16, reference_sigmoid16), (fq.tanh16, reference_tanh16)):
        got = exact(torch.from_numpy(x), torch.from_numpy(table.astype(np.int64)), *scaling)
        np.testing.assert_array_equal(got.numpy(), reference(x, table, *scaling))


@pytest.mark.parametrize("rounding", ["double", "single"])
def test_fully_connected_equals_reference(rounding: str) -> None:
    rng = np.random.default_rng(3)
    x = rng.integers(0, 16, (6, 300)).astype(np.uint8)
    w = rng.integers(-7, 8, (20, 300)).astype(np.int8)
    bias = rng.integers(-5000, 5000, 20).astype(np.int32)
    multiplier = rng.integers(1 << 30, 1 << 31, 20)
    shift = rng.integers(-14, 0, 20)
    expect = reference_fc(x, w, bias, x_zero_point=6, multiplier=multiplier, shift=shift,
                          y_zero_point=3, y_min=-128, y_max=127, rounding=rounding)
    got = fq.fully_connected(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(bias), 6,
                             torch.from_numpy(multiplier), torch.from_numpy(shift), 3, -128, 127,
                             rounding)
    np.testing.assert_array_equal(got.numpy(), expect)


@pytest.mark.parametrize("rounding", ["double", "single"])
def test_lstm_steps_equal_the_engine(rounding: str) -> None:
    model = random_model(load_config("configs/tiny.json"), seed=4)
    table = torch.from_numpy(model.sigmoid_table.astype(np.int64))
    rng = np.random.default_rng(5)
    for layer in model.encoder.layers:
        for cell in layer.cells:
            x = rng.integers(cell.input.qmin, cell.input.qmax + 1, (3, cell.input_size))
            h, c = initial_state(cell, 3)
            h_t, c_t = torch.from_numpy(h.astype(np.int64)), torch.from_numpy(c.astype(np.int64))
            for _ in range(6):
                h, c = reference_step(cell, x.astype(cell.input.dtype), h, c,
                                      model.sigmoid_table, rounding)
                h_t, c_t = fq.lstm_step(cell, torch.from_numpy(x), h_t, c_t, table, rounding)
                np.testing.assert_array_equal(h_t.numpy(), h)
                np.testing.assert_array_equal(c_t.numpy(), c)
                x = rng.integers(cell.input.qmin, cell.input.qmax + 1, x.shape)


@pytest.mark.parametrize(("mode", "rounding"), [("additive", "double"),
                                                ("multiplicative", "double"),
                                                ("multiplicative", "single")])
def test_joint_and_log_softmax_equal_the_engine(mode: str, rounding: str) -> None:
    from dataclasses import replace
    config = load_config("configs/tiny.json")
    config = replace(config, joint=replace(config.joint, mode=mode),
                     quantization=replace(config.quantization, rounding=rounding))
    model = random_model(config, seed=6)
    rng = np.random.default_rng(7)
    features = rng.standard_normal((30, model.frontend.feature_dim)).astype(np.float32)
    labels = [3, 4, 9, 1]
    trace = Trace()
    model.lattice(features, labels, backend="numpy", trace=trace)
    table = torch.from_numpy(model.sigmoid_table.astype(np.int64))
    joint = model.joint
    enc_codes, enc_format = model.encode(features, backend="numpy")
    enc_proj = fq.project(joint.enc_proj, torch.from_numpy(enc_codes.astype(np.int64)),
                          enc_format, rounding)
    np.testing.assert_array_equal(enc_proj.numpy(), trace["joint.enc_proj"])
    pred_proj = torch.from_numpy(trace["joint.pred_proj"].astype(np.int64))
    frames = torch.arange(enc_proj.shape[0]).repeat_interleave(pred_proj.shape[0])
    states = torch.arange(pred_proj.shape[0]).repeat(enc_proj.shape[0])
    logits = fq.joint_logits(joint, enc_proj[frames], pred_proj[states], table, rounding)
    np.testing.assert_array_equal(logits.numpy(), trace["joint.logits"])
    log_probs = fq.log_softmax(logits, joint.logit_frac_bits,
                               torch.from_numpy(model.exp2_table.astype(np.int64)),
                               torch.from_numpy(model.ln_table.astype(np.int64)))
    np.testing.assert_array_equal(log_probs.numpy(), trace["joint.log_probs"])
    extreme = torch.tensor([[0, -(1 << 31), (1 << 31) - 1, 5, 5]])
    np.testing.assert_array_equal(
        fq.log_softmax(extreme, 10, torch.from_numpy(model.exp2_table.astype(np.int64)),
                       torch.from_numpy(model.ln_table.astype(np.int64))).numpy(),
        reference_log_softmax(extreme.numpy(), 10, model.exp2_table, model.ln_table))
