"""Converter building blocks: quantizers, ranges, mapping rules, overrides, observers."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from int4rt.arith import quantize_multiplier
from int4rt.quantization import quantize_weight_codes
from int4rt_convert import ConvertError
from int4rt_convert.calibration import RangeObserver, observer_name, tokenize
from int4rt_convert.mapping import Mapping, compile_rule, load_mapping
from int4rt_convert.options import parse_override
from int4rt_convert.quantizers import (
    cell_clip_code,
    cell_scale_log2,
    estimate_range,
    format_with_zero,
    sqnr_db,
    weight_scales,
)


def test_sawb_clip_formula_and_fallback():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((1, 4000))
    alpha = 12.035 * np.sqrt(np.mean(w**2)) - 12.03 * np.mean(np.abs(w))
    assert weight_scales(w, 4, "sawb", "per_row", 1)[0] == np.float32(alpha / 7)
    spiky = np.array([[0.0] * 99 + [5.0]])  # alpha = 12.035·0.5 − 12.03·0.05 > max|w| = 5
    assert weight_scales(spiky, 4, "sawb", "per_row", 1)[0] == np.float32(5.0 / 7)
    flat = np.array([[1.0, 1.0, 1.0, 1.0001]])  # 8 bits: 31.76·rms − 35.04·mean|w| ≤ 0
    assert 31.76 * np.sqrt(np.mean(flat**2)) - 35.04 * np.mean(np.abs(flat)) <= 0
    assert weight_scales(flat, 8, "sawb", "per_row", 1)[0] == np.float32(1.0001 / 127)
    assert weight_scales(flat, 4, "max", "per_row", 1)[0] == np.float32(1.0001 / 7)


def test_mse_clip_never_worse_than_max_and_gate_blocks_share():
    rng = np.random.default_rng(1)
    w = rng.laplace(size=(8, 64))
    errors = {}
    for method in ("max", "mse"):
        scales = weight_scales(w, 4, method, "per_row", 4)
        codes = quantize_weight_codes(w, scales, 4)
        assert codes.dtype == np.int8 and np.abs(codes).max() <= 7
        errors[method] = np.sum((codes * scales[:, None].astype(np.float64) - w) ** 2)
    assert errors["mse"] < errors["max"]
    gate = weight_scales(w, 8, "max", "per_gate", 4)
    assert np.all(gate.reshape(4, 2) == gate.reshape(4, 2)[:, :1])
    assert gate[0] == np.float32(np.abs(w[:2]).max() / 127)
    assert weight_scales(np.zeros((2, 3)), 4, "mse", "per_row", 1).tolist() == [1.0, 1.0]


def test_activation_format_covers_zero_and_range():
    fmt = format_with_zero(4, False, 0.2, 1.0)  # zero added to the range
    assert fmt.zero_point == 0 and fmt.scale == np.float32(1.0 / 15)
    fmt = format_with_zero(8, True, -1.0, 3.0)
    assert fmt.qmin == -128 and fmt.scale == np.float32(4.0 / 255)
    assert fmt.quantize(np.array([0.0]))[0] == fmt.zero_point
    assert format_with_zero(4, False, 0.0, 0.0).scale > 0


def test_estimate_range():
    rng = np.random.default_rng(2)
    values = np.concatenate([rng.standard_normal(20000), [40.0]])
    assert estimate_range(values, values.min(), 40.0, 4, False, "minmax", 99.9)[1] == 40.0
    low, high = estimate_range(values, values.min(), 40.0, 4, False, "percentile", 99.9)
    assert [low, high] == pytest.approx(np.percentile(values, [0.1, 99.9]))
    low, high = estimate_range(values, values.min(), 40.0, 4, False, "mse", 99.9)
    assert high < 40.0  # the outlier is clipped


def test_cell_scale_and_clip():
    assert cell_scale_log2(1.0) == -14  # 32767 · 2^-15 = 0.99997 < 1 ≤ 32767 · 2^-14
    assert cell_scale_log2(0.99) == -15
    assert cell_scale_log2(1e9) == 0 and cell_scale_log2(0.0) == -20
    assert cell_clip_code("x", 3.0, -11) == 6144
    assert cell_clip_code("x", 1e6, -11) == 32767
    assert cell_clip_code("x", 2.0**-11, -11) == 1
    with pytest.raises(ConvertError, match="smaller than one cell step"):
        cell_clip_code("encoder.layer0.fwd", 2.0**-12, -11)


def test_sqnr():
    assert sqnr_db(np.array([1.0, 1.0]), np.array([1.0, 1.0])) is None
    assert sqnr_db(np.array([3.0, 4.0]), np.array([3.0, 3.0])) == pytest.approx(
        10 * math.log10(25.0))


def test_mapping_rules(tmp_path):
    rule = compile_rule("encoder.layers.{n}.lstm.{p}_l0{d}", "encoder.lstm.{p}_l{n}{d}", "r")
    assert rule.apply("encoder.layers.3.lstm.weight_ih_l0_reverse") == \
        "encoder.lstm.weight_ih_l3_reverse"
    assert rule.apply("encoder.layers.3.lstm.bias_hh_l0") == "encoder.lstm.bias_hh_l3"
    assert rule.apply("encoder.layers.3.x.lstm.w_l0") is None
    mapping = Mapping((rule,), ("head.*",))
    renamed = mapping.rename({"encoder.layers.0.lstm.w_l0": np.zeros(1), "head.w": np.zeros(1),
                              "other": np.zeros(2)})
    assert sorted(renamed) == ["encoder.lstm.w_l0", "other"]
    assert renamed["encoder.lstm.w_l0"][0] == "encoder.layers.0.lstm.w_l0"
    with pytest.raises(ConvertError, match="both map to"):
        Mapping((compile_rule("{a}", "same", "r"),)).rename({"x": np.zeros(1), "y": np.zeros(1)})
    with pytest.raises(ConvertError, match=r"'to' uses \{m\}"):
        compile_rule("a.{n}", "b.{m}", "rule 0")
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"int4rt_mapping": 1, "rename": [{"from": "a", "to": "b"}],
                                "extra": 1}))
    with pytest.raises(ConvertError, match="mapping extra: unknown key"):
        load_mapping(path)
    path.write_text(json.dumps({"int4rt_mapping": 2}))
    with pytest.raises(ConvertError, match="int4rt_mapping"):
        load_mapping(path)


def test_parse_override():
    assert parse_override("encoder.layer0=w8,a4") == ("encoder.layer0",
                                                      {"weight_bits": 8, "activation_bits": 4})
    assert parse_override("joint.out=w8") == ("joint.out", {"weight_bits": 8})
    for bad in ("encoder.layer0", "x=8", "x=w8,w4", "x=b8"):
        with pytest.raises(ConvertError):
            parse_override(bad)


def test_range_observer_keeps_extremes_and_a_uniform_sample():
    observer = RangeObserver(seed=0, capacity=1000)
    for start in range(0, 100000, 10000):
        observer.add(np.arange(start, start + 10000, dtype=np.float64))
    assert (observer.low, observer.high, observer.count) == (0.0, 99999.0, 100000)
    assert observer.samples.size == 1000 and len(set(observer.samples)) == 1000
    assert 40000 < observer.samples.mean() < 60000
    assert observer.max_abs == 99999.0


def test_observer_names_and_tokenize():
    assert observer_name("encoder.layer1.bwd.hidden") == "encoder.layer1"
    assert observer_name("predictor.layer0.hidden") == "predictor.layer0"
    assert observer_name("encoder.layer1.bwd.cell") == "encoder.layer1.bwd.cell"
    assert observer_name("joint.tanh") == "joint"
    assert observer_name("joint.logits") is None
    vocab = ("<blk>", " ", "a", "ab", "b")
    assert tokenize("ab a", vocab, 0, "x") == [3, 1, 2]
    with pytest.raises(ConvertError, match="character 'z' at position 1"):
        tokenize("az", vocab, 0, "item 0")


def test_quantize_multiplier_rule_for_gate_rows():
    """Gate rows: QM(double(s_x) · double(s_w) / 2^-12) (ARITHMETIC.md §3, §8.1)."""
    from int4rt.quantization import requant_params

    s_x, s_w = np.float32(1 / 15), np.float32(0.0123)
    multiplier, shift = requant_params(float(s_x), np.array([s_w]), 2.0**-12)
    assert (int(multiplier[0]), int(shift[0])) == quantize_multiplier(
        float(s_x) * float(s_w) / 2.0**-12)
