"""QAT integer building blocks in PyTorch against int4rt's NumPy reference, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from int4rt.arith import requantize as reference_requantize  # noqa: E402
from int4rt_train.fakequant import FeatureQuantizer, quantize_codes, requantize  # noqa: E402

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
    quantizer = FeatureQuantizer(-2.7, 3.1)
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
