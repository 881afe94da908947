"""Learned weight scales (docs/CONVERT.md §1.3) and ``--granularity per_gate`` (§4.1): the
converter writes the compact per-gate form (FORMAT.md §2.4), and with a checkpoint's
``<weight>_scale`` tensors it uses exactly those scales.

The checkpoints are small random QAT-style state dicts of configs/tiny.json written with
NumPy (activation clips for every layer, so no calibration data is needed); the expected
codes are computed here from the weights and scales.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from int4rt.model.container import load_model
from int4rt.quantization import GATE_PRE_SCALE, requant_params
from int4rt_convert import ConvertError, ConvertOptions, QuantOptions, convert
from tests.test_container import split_file

ROOT = Path(__file__).parents[1]
TINY = ROOT / "configs" / "tiny.json"
FEATURES = 120
CLIPS = {"encoder.input": (-3.0, 3.0), "encoder.layer0": (-1.0, 1.0),
         "encoder.layer1": (-1.0, 1.0), "predictor.embedding": (-0.9, 0.9),
         "predictor.layer0": (-1.0, 1.0), "joint": (-1.0, 1.0)}
# int4rt layer name -> (reference weight name, gate blocks), for configs/tiny.json
WEIGHTS = {
    **{f"encoder.layer{layer}.{d}.{fc}": (f"encoder.lstm.weight_{part}_l{layer}{suffix}", 4)
       for layer in (0, 1) for d, suffix in (("fwd", ""), ("bwd", "_reverse"))
       for fc, part in (("input_fc", "ih"), ("recurrent_fc", "hh"))},
    "predictor.layer0.input_fc": ("predictor.lstm.weight_ih_l0", 4),
    "predictor.layer0.recurrent_fc": ("predictor.lstm.weight_hh_l0", 4),
    "joint.enc_proj": ("joint.enc.weight", 1), "joint.pred_proj": ("joint.pred.weight", 1),
    "joint.out": ("joint.out.weight", 1),
}
SHAPES = {"encoder.lstm.weight_ih_l0": (64, 240), "encoder.lstm.weight_hh_l0": (64, 16),
          "encoder.lstm.weight_ih_l1": (64, 32), "encoder.lstm.weight_hh_l1": (64, 16),
          "predictor.lstm.weight_ih_l0": (64, 8), "predictor.lstm.weight_hh_l0": (64, 16),
          "joint.enc.weight": (15, 32), "joint.pred.weight": (15, 16),
          "joint.out.weight": (11, 15)}


def _shape(reference: str) -> tuple[int, int]:
    return SHAPES[reference.removesuffix("_reverse")]


def checkpoint(seed: int = 0, scales: bool = True) -> dict[str, np.ndarray]:
    """A QAT-style tiny RNN-T state dict; with ``scales``, a ``_scale`` for every weight,
    between 0.6 and 1.1 of the block's max |w| / 7 (so some codes clamp at ±7).
    """
    rng = np.random.default_rng(seed)
    state: dict[str, np.ndarray] = {}
    for reference, blocks in WEIGHTS.values():
        weight = (0.3 * rng.standard_normal(_shape(reference))).astype(np.float32)
        state[reference] = weight
        if scales:
            peak = np.abs(weight.reshape(blocks, -1)).max(axis=1) / 7
            state[reference + "_scale"] = (peak * rng.uniform(0.6, 1.1, blocks)).astype(
                np.float32)
        state[reference.replace("weight", "bias")] = (
            0.1 * rng.standard_normal(_shape(reference)[0])).astype(np.float32)
    state["predictor.embedding.weight"] = rng.uniform(-0.9, 0.9, (11, 8)).astype(np.float32)
    state["frontend.cmvn_mean"] = np.zeros(FEATURES, np.float32)
    state["frontend.cmvn_std"] = np.ones(FEATURES, np.float32)
    for layer, (low, high) in CLIPS.items():
        state[f"{layer}.act_clip_low"] = np.array(low, np.float32)
        state[f"{layer}.act_clip_high"] = np.array(high, np.float32)
    return state


def run(tmp_path: Path, state: dict[str, np.ndarray], name: str = "m", **quant):
    path = tmp_path / f"{name}.ckpt.safetensors"
    save_file(state, path)
    return convert(ConvertOptions(checkpoint=path, config=TINY,
                                  output=tmp_path / f"{name}.safetensors",
                                  quant=QuantOptions(**quant)))


def _expected_codes(weight: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """clamp(floor(w / s + 1/2), −7, 7) with s repeated over each block's rows."""
    per_row = np.repeat(scales.astype(np.float64), weight.shape[0] // len(scales))
    return np.clip(np.floor(weight.astype(np.float64) / per_row[:, None] + 0.5), -7, 7)


def _out_scale(name: str, report: dict) -> float:
    joint = report["joint"]["projection_scales"]
    if name in joint:
        return joint[name]["scale"]
    return 2.0**-10 if name == "joint.out" else GATE_PRE_SCALE


def test_learned_scales_are_used_exactly(tmp_path):
    state = checkpoint()
    result = run(tmp_path, state)
    model = load_model(result.model_path)
    stored = load_file(result.model_path)
    layers = {entry["name"]: entry for entry in result.report["layers"]}
    clamped = 0
    for name, layer, fmt in model.linear_layers():
        reference, blocks = WEIGHTS[name]
        scales = state[reference + "_scale"]
        expected = _expected_codes(state[reference], scales)
        clamped += int(np.count_nonzero(np.abs(
            state[reference] / np.repeat(scales, len(expected) // blocks)[:, None]) > 7.5))
        np.testing.assert_array_equal(layer.weight, expected, err_msg=name)
        assert (layer.blocks, layer.granularity) == (blocks, "per_gate")
        multiplier, shift = requant_params(fmt.scale, scales, _out_scale(name, result.report))
        np.testing.assert_array_equal(stored[f"{name}.multiplier"], multiplier, err_msg=name)
        np.testing.assert_array_equal(stored[f"{name}.shift"], shift, err_msg=name)
        assert stored[f"{name}.multiplier"].shape == (blocks,)
        entry = layers[name]
        assert entry["weight_scale_source"] == "checkpoint (QAT)"
        assert entry["weight_scales"] == np.repeat(scales, layer.n_out // blocks).tolist()
        assert entry["granularity"] == "per_gate" and entry["bias_rows_rescaled"] == 0
    assert clamped > 100  # the scales are below max|w| / 7: some codes saturate
    meta, _ = split_file(result.model_path.read_bytes())
    assert meta["format_version"] == 3
    assert meta["joint"]["out"]["blocks"] == 1
    assert meta["encoder"]["layers"][1]["bwd"]["recurrent_fc"]["blocks"] == 4
    # no clip search: other weight options give the same file
    other = run(tmp_path, state, "max", weight_scale="max", granularity="per_row")
    assert other.model_path.read_bytes() == result.model_path.read_bytes()


def test_layers_without_learned_scales_keep_the_options(tmp_path):
    state = checkpoint()
    del state["joint.out.weight_scale"], state["encoder.lstm.weight_hh_l1_scale"]
    model = load_model(run(tmp_path, state).model_path)
    blocks = {name: layer.blocks for name, layer, _ in model.linear_layers()}
    assert blocks["joint.out"] == 0 and blocks["encoder.layer1.fwd.recurrent_fc"] == 0
    assert blocks["encoder.layer1.bwd.recurrent_fc"] == 4 and blocks["joint.enc_proj"] == 1


def test_per_gate_option_writes_the_compact_form(tmp_path):
    state = checkpoint(1, scales=False)
    per_row, per_gate = (run(tmp_path, state, granularity, granularity=granularity)
                         for granularity in ("per_row", "per_gate"))
    model = load_model(per_gate.model_path)
    for name, layer, fmt in model.linear_layers():
        reference, blocks = WEIGHTS[name]
        assert layer.blocks == blocks
        entry = next(e for e in per_gate.report["layers"] if e["name"] == name)
        scales = np.array(entry["weight_scales"], np.float32).reshape(blocks, -1)
        assert (scales == scales[:, :1]).all()  # one clip per gate block
        np.testing.assert_array_equal(layer.weight,
                                      _expected_codes(state[reference], scales[:, 0]))
        multiplier, shift = requant_params(fmt.scale, scales[:, 0],
                                           _out_scale(name, per_gate.report))
        np.testing.assert_array_equal(layer.block_requant()[0], multiplier)
        np.testing.assert_array_equal(layer.block_requant()[1], shift)
        assert entry["weight_scale_source"] == "mse search"
    assert all(layer.blocks == 0 for _, layer, _ in load_model(per_row.model_path).linear_layers())
    pairs_saved = 8 * (10 * 64 + 15 + 15 + 11 - (10 * 4 + 3))
    saved = per_row.report["sizes"]["file_bytes"] - per_gate.report["sizes"]["file_bytes"]
    assert 0 < pairs_saved - saved <= 160  # the header says per_gate and blocks in 13 layers


def test_per_gate_bias_that_does_not_fit_raises_its_whole_block(tmp_path):
    state = checkpoint(2, scales=False)
    state["joint.out.bias"][3] = 1e8  # / (s_x · s_w) beyond the int32 guard at any clip
    result = run(tmp_path, state, granularity="per_gate")
    entry = next(e for e in result.report["layers"] if e["name"] == "joint.out")
    assert entry["bias_rows_rescaled"] == 1
    assert len(set(entry["weight_scales"])) == 1 and entry["weight_scales"][0] > 0.1
    layer = load_model(result.model_path).joint.out
    assert layer.blocks == 1 and abs(int(layer.bias[3])) < 2**31 - 15 * 128 * 255


def _scale(name: str, value: object):
    def edit(state):
        state[name] = np.asarray(value, np.float32)
    return edit


BAD = [
    ("shape", _scale("encoder.lstm.weight_ih_l0_scale", [0.1, 0.1, 0.1]),
     "tensor 'encoder.lstm.weight_ih_l0_scale' has shape [3] in the checkpoint; the config "
     "expects [4]"),
    ("per-row scales", _scale("encoder.lstm.weight_hh_l1_reverse_scale", np.full(64, 0.1)),
     "tensor 'encoder.lstm.weight_hh_l1_reverse_scale' has shape [64] in the checkpoint; the "
     "config expects [4]"),
    ("linear with 4", _scale("joint.out.weight_scale", [0.1] * 4),
     "tensor 'joint.out.weight_scale' has shape [4] in the checkpoint; the config expects [1]"),
    ("zero", _scale("joint.enc.weight_scale", [0.0]),
     "tensor 'joint.enc.weight_scale' has entries <= 0 as float32 ([0.0]): a learned weight "
     "scale must be positive"),
    ("negative", _scale("predictor.lstm.weight_hh_l0_scale", [0.1, -0.1, 0.1, 0.1]),
     "tensor 'predictor.lstm.weight_hh_l0_scale' has entries <= 0"),
    ("underflows float32", lambda s: s.update(
        {"joint.out.weight_scale": np.array([1e-50], np.float64)}),
     "tensor 'joint.out.weight_scale' has entries <= 0 as float32"),
    ("nan", _scale("joint.pred.weight_scale", [np.nan]),
     "tensor 'joint.pred.weight_scale' has 1 non-finite values (NaN or inf)"),
    ("inf", _scale("encoder.lstm.weight_ih_l1_scale", [0.1, np.inf, 0.1, 0.1]),
     "tensor 'encoder.lstm.weight_ih_l1_scale' has 1 non-finite values"),
    ("embedding", _scale("predictor.embedding.weight_scale", [0.1]),
     "unknown tensor 'predictor.embedding.weight_scale'"),
    ("requantization out of range", _scale("joint.out.weight_scale", [1e30]),
     "joint.out: "),
    ("bias does not fit", lambda s: s["joint.out.bias"].__setitem__(3, 1e8),
     "joint.out: the bias of row 3 does not fit the int32 accumulator (ARITHMETIC.md §7.1) "
     "with the checkpoint's weight scale"),
]


@pytest.mark.parametrize(("edit", "message"), [case[1:] for case in BAD],
                         ids=[case[0] for case in BAD])
def test_bad_learned_scales_are_one_convert_error(tmp_path, edit, message):
    state = checkpoint()
    edit(state)
    with pytest.raises(ConvertError) as info:
        run(tmp_path, state)
    assert message in str(info.value)
    assert not (tmp_path / "m.safetensors").exists()
