"""Random models from configurations: deterministic, well-formed, sensibly scaled."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from int4rt import Int4rtError
from int4rt.arith import get_profile, quantize_multiplier
from int4rt.model.config import load_config, parse_config
from int4rt.model.container import save_model
from int4rt.model.lm import LmModel
from int4rt.model.random_model import random_model
from int4rt.model.rnnt import RnntModel
from int4rt.model.validation import check_model
from int4rt.ops.log_softmax.tables import exp2_table, ln_table

CONFIGS = Path(__file__).parents[1] / "configs"


def _config(name: str, **quant) -> dict:
    data = json.loads((CONFIGS / f"{name}.json").read_text())
    data["quantization"].update(quant)
    return data


def test_configs_parse():
    paper = load_config(CONFIGS / "paper.json")
    assert paper.frontend.feature_dim == 120 and paper.encoder.stack[0] == 2
    assert len(paper.vocab) == 46 and paper.vocab[paper.blank_id] == "<blk>"
    assert (paper.encoder.num_layers, paper.encoder.hidden_size) == (6, 640)
    assert paper.joint.mode == "multiplicative"
    lm = load_config(CONFIGS / "lm-paper.json")
    assert lm.vocab == paper.vocab and (lm.num_layers, lm.hidden_size) == (2, 1024)
    assert load_config(CONFIGS / "tiny.json").architecture == "rnnt"
    assert load_config(CONFIGS / "lm-tiny.json").architecture == "lm"


@pytest.mark.parametrize("name", ["tiny", "lm-tiny"])
def test_same_seed_same_bytes(tmp_path, name):
    config = load_config(CONFIGS / f"{name}.json")
    paths = [tmp_path / f"{i}.safetensors" for i in range(3)]
    for path, seed in zip(paths, (5, 5, 6), strict=True):
        save_model(random_model(config, seed), path)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()


@pytest.mark.parametrize("mode", ["additive", "multiplicative"])
def test_rnnt_structure_and_joint_scales(mode):
    data = _config("tiny")
    data["joint"]["mode"] = mode
    config = parse_config(data)
    model = random_model(config, 0)
    assert isinstance(model, RnntModel)
    check_model(model)
    assert model.encoder.layers[0].stack == 2
    assert model.encoder.layers[0].cells[0].input_size == 240
    assert all(len(layer.cells) == 2 for layer in model.encoder.layers)
    np.testing.assert_array_equal(model.frontend.cmvn_mean, np.zeros(120, np.float32))
    np.testing.assert_array_equal(model.frontend.cmvn_std, np.ones(120, np.float32))
    np.testing.assert_array_equal(model.sigmoid_table, get_profile("int4rt").table)
    np.testing.assert_array_equal(model.exp2_table, exp2_table())
    np.testing.assert_array_equal(model.ln_table, ln_table())
    joint = model.joint
    if mode == "additive":
        assert (joint.combine_multiplier, joint.combine_shift) == (0, 0)
    else:
        assert (joint.combine_multiplier, joint.combine_shift) == quantize_multiplier(2.0**-8)
    assert (joint.hidden_multiplier, joint.hidden_shift) == quantize_multiplier(
        2.0**-15 / joint.hidden.scale)
    fmt = model.predictor.layers[0].input
    assert model.predictor.embedding.dtype == fmt.dtype
    assert model.predictor.embedding.min() >= fmt.qmin
    assert model.predictor.embedding.max() <= fmt.qmax
    assert model.predictor.embedding.shape == (len(config.vocab), 8)


def test_random_encoder_output_varies():
    model = random_model(load_config(CONFIGS / "tiny.json"), 3)
    feats = np.random.default_rng(0).standard_normal((30, 120)).astype(np.float32)
    codes, fmt = model.encode(feats)
    assert codes.shape == (15, 32) and codes.dtype == fmt.dtype
    assert np.unique(codes).size > 3
    out, _ = model.predictor_step(np.array([0, 1, 2]), model.predictor_initial_state(3))
    assert out.shape == (3, 16) and np.unique(out).size > 2


def test_overrides_and_tflm_profile():
    data = _config("tiny")
    data["quantization"]["overrides"] = {
        "encoder.input": {"activation_bits": 8}, "encoder.layer0": {"weight_bits": 8},
        "joint.out": {"weight_bits": 8}, "predictor.layer0": {"activation_bits": 8}}
    model = random_model(parse_config(data), 1)
    assert model.encoder.input.bits == 8 and model.encoder.layers[0].cells[0].input.bits == 8
    assert model.encoder.layers[0].cells[1].input_fc.weight_bits == 8
    assert model.encoder.layers[1].cells[0].input_fc.weight_bits == 4
    assert model.joint.out.weight_bits == 8 and model.joint.enc_proj.weight_bits == 4
    assert model.predictor.output.bits == 8 and model.joint.pred_proj.weight_bits == 4
    tflm = random_model(parse_config(_config("tiny", profile="tflm", weight_bits=8,
                                             activation_bits=8, activation_signed=True)), 1)
    np.testing.assert_array_equal(tflm.sigmoid_table, get_profile("tflm").table)
    assert tflm.encoder.input.signed and tflm.encoder.input.zero_point == 0


def test_lm_structure():
    model = random_model(load_config(CONFIGS / "lm-tiny.json"), 0)
    assert isinstance(model, LmModel)
    check_model(model)
    assert [cell.hidden_size for cell in model.layers] == [13, 13]
    assert model.embedding.shape == (11, 8) and model.out.weight.shape == (11, 13)


BAD_CONFIGS = [
    (lambda d: d.update(extra=1), "config extra: unknown key"),
    (lambda d: d["encoder"].update(hidden_size=0), "config encoder.hidden_size"),
    (lambda d: d["encoder"].update(hidden_size="16"), "config encoder.hidden_size"),
    (lambda d: d["encoder"].update(stack=[2]), "config encoder.stack"),
    (lambda d: d["joint"].update(mode="concat"), "config joint.mode"),
    (lambda d: d["frontend"].pop("n_mels"), "config frontend.n_mels: missing"),
    (lambda d: d.update(vocab=["a", "a", "b"]), "config vocab[1]: 'a' appears twice"),
    (lambda d: d.update(blank_id=99), "config blank_id"),
    (lambda d: d["quantization"].update(weight_bits=3), "config quantization.weight_bits"),
    (lambda d: d["quantization"].update(profile="tflm"), "not allowed by profile 'tflm'"),
    (lambda d: d["quantization"].update(rounding="single", profile="tflm"),
     "config quantization.rounding"),
    (lambda d: d["quantization"]["overrides"].update({"encoder.layer9": {"weight_bits": 8}}),
     "config quantization.overrides.encoder.layer9: no such layer"),
    (lambda d: d["quantization"]["overrides"].update({"joint.out": {"activation_bits": 8}}),
     "config quantization.overrides.joint.out.activation_bits"),
    (lambda d: d["quantization"]["overrides"].update({"joint": {"bits": 8}}),
     "config quantization.overrides.joint.bits: unknown key"),
]


@pytest.mark.parametrize(("edit", "message"), BAD_CONFIGS)
def test_bad_config_is_one_clear_error(edit, message):
    data = copy.deepcopy(_config("tiny"))
    edit(data)
    with pytest.raises(Int4rtError) as info:
        parse_config(data)
    assert message in str(info.value)


def test_bad_config_file(tmp_path):
    path = tmp_path / "c.json"
    path.write_text("{not json")
    with pytest.raises(Int4rtError, match="is not valid JSON"):
        load_config(path)
    with pytest.raises(Int4rtError, match="cannot read config"):
        load_config(tmp_path / "missing.json")
    path.write_text('{"architecture": "lm", "architecture": "rnnt"}')
    with pytest.raises(Int4rtError, match="duplicate key 'architecture'"):
        load_config(path)
    with pytest.raises(Int4rtError, match=r"config \(top level\): expected an object"):
        parse_config([])
