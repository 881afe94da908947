"""QAT models against the engine, integer for integer (docs/TRAINING.md §6).

The QAT model's eval-mode integers are compared with the traces of (a) the int4rt model built
from the QAT parameters (``engine_model``: the engine's NumPy operators on the same layers) and
(b) the model ``int4rt convert`` writes from the exported QAT checkpoint (one derivation of
every code, multiplier and format). Every §8.7 trace tensor is compared; 0 mismatches.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from safetensors.torch import save_file  # noqa: E402

from int4rt.layers import ActQuant  # noqa: E402
from int4rt.model.config import LmConfig, RnntConfig, load_config  # noqa: E402
from int4rt.model.container import load_model  # noqa: E402
from int4rt.model.validation import profile_tables  # noqa: E402
from int4rt.ops.lstm.reference import lstm_step as reference_step  # noqa: E402
from int4rt.trace import Trace  # noqa: E402
from int4rt_convert import ConvertOptions, QuantOptions, convert  # noqa: E402
from int4rt_convert.build import Builder  # noqa: E402
from int4rt_convert.float_model import Linear  # noqa: E402
from int4rt_convert.layout import expected_tensors  # noqa: E402
from int4rt_train.fakequant import ActClip  # noqa: E402
from int4rt_train.model import CharLm, Transducer  # noqa: E402
from int4rt_train.qat_layers import (  # noqa: E402
    LstmDirection,
    QuantizedWeight,
    add_weight_scale,
    build_qlinear,
    run_direction,
)
from int4rt_train.qat_model import QatCharLm, QatTransducer, calibrate  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
LENGTHS = (23, 14, 9)  # feature frames per utterance of the test batch (odd: stacking pads)
LABEL_LENGTHS = (5, 2, 4)


def _config_file(tmp_path: Path, name: str, joint_mode: str | None = None,
                 **quantization: object) -> Path:
    """A built-in config with its quantization section (and joint mode) changed."""
    data = json.loads((ROOT / "configs" / name).read_text())
    data["quantization"].update(quantization)
    if joint_mode is not None:
        data["joint"]["mode"] = joint_mode
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def _rnnt(config: RnntConfig, seed: int) -> tuple[QatTransducer, tuple[torch.Tensor, ...]]:
    """A random FP32 RNN-T (CMVN included) as a calibrated QAT model, and a padded batch."""
    torch.manual_seed(seed)
    fp32 = Transducer(config)
    width = config.frontend.feature_dim
    with torch.no_grad():
        fp32.frontend.cmvn_mean.normal_()
        fp32.frontend.cmvn_std.uniform_(0.5, 2.0)
    model = QatTransducer(fp32, config)
    lengths = torch.tensor(LENGTHS)
    features = torch.randn(len(LENGTHS), max(LENGTHS), width) * 1.5 + fp32.frontend.cmvn_mean
    labels = torch.randint(1, len(config.vocab), (len(LENGTHS), max(LABEL_LENGTHS)))
    label_lengths = torch.tensor(LABEL_LENGTHS)
    calibrate(model, [(features, lengths, labels, label_lengths)])
    model.eval()
    return model, (features, lengths, labels, label_lengths)


def _compare_rnnt(model: QatTransducer, engine, batch: tuple[torch.Tensor, ...]
                  ) -> tuple[int, int]:
    """(integers compared, mismatches) of every trace tensor of every utterance."""
    features, lengths, labels, label_lengths = batch
    records = model.integers(features, lengths, labels)
    compared = mismatched = 0
    for b, (frames, count) in enumerate(zip(lengths.tolist(), label_lengths.tolist(),
                                            strict=True)):
        trace = Trace()
        engine.lattice(features[b, :frames].numpy(), labels[b, :count].numpy(),
                       backend="numpy", trace=trace)
        assert set(trace) <= set(records), set(trace) - set(records)
        for name, expected in trace.items():
            got = records[name][b]
            if name.startswith("joint.") and got.dim() == 3:  # [T', U+1, ·] lattice
                steps = expected.shape[0] // (count + 1)
                got = got[:steps, :count + 1].reshape(expected.shape)
            else:
                got = got[:expected.shape[0]]
            compared += expected.size
            mismatched += int(np.count_nonzero(got.numpy() != expected))
    return compared, mismatched


@pytest.mark.parametrize(("config_name", "rounding", "mode"), [
    ("tiny.json", "double", "multiplicative"), ("tiny.json", "single", "multiplicative"),
    ("tiny.json", "double", "additive"), ("tiny.json", "single", "additive")])
def test_rnnt_integers_equal_the_engine(tmp_path: Path, config_name: str, rounding: str,
                                        mode: str) -> None:
    path = _config_file(tmp_path, config_name, mode, rounding=rounding)
    model, batch = _rnnt(load_config(path), seed=1)
    compared, mismatched = _compare_rnnt(model, model.engine_model(), batch)
    assert compared > 40_000
    assert mismatched == 0


def test_rnnt_mixed_bits_and_cell_clip_equal_the_engine(tmp_path: Path) -> None:
    config = load_config(_config_file(tmp_path, "tiny.json", cell_clip=1500, overrides={
        "encoder.input": {"activation_bits": 8},
        "encoder.layer0": {"weight_bits": 8, "activation_bits": 8},
        "joint.out": {"weight_bits": 8}, "predictor.embedding": {"activation_bits": 8}}))
    model, batch = _rnnt(config, seed=2)
    compared, mismatched = _compare_rnnt(model, model.engine_model(), batch)
    assert compared > 40_000
    assert mismatched == 0
    assert model.export_tensors()["encoder.layer0.cell_clip"].item() == 1500 * 2.0**-11


def _lm(config: LmConfig, seed: int) -> tuple[QatCharLm, torch.Tensor]:
    torch.manual_seed(seed)
    model = QatCharLm(CharLm(config), config)
    tokens = torch.randint(0, len(config.vocab), (3, 17))
    calibrate(model, [(tokens,)])
    model.eval()
    return model, tokens


def _compare_lm(model: QatCharLm, engine, tokens: torch.Tensor) -> tuple[int, int]:
    records = model.integers(tokens)
    compared = mismatched = 0
    for b in range(tokens.shape[0]):
        trace = Trace()
        engine.sequence(tokens[b].numpy(), backend="numpy", trace=trace)
        for name, expected in trace.items():
            compared += expected.size
            mismatched += int(np.count_nonzero(records[name][b].numpy() != expected))
    return compared, mismatched


@pytest.mark.parametrize("rounding", ["double", "single"])
def test_lm_integers_equal_the_engine(tmp_path: Path, rounding: str) -> None:
    model, tokens = _lm(load_config(_config_file(tmp_path, "lm-tiny.json", rounding=rounding)),
                        seed=3)
    compared, mismatched = _compare_lm(model, model.engine_model(), tokens)
    assert compared > 10_000
    assert mismatched == 0


def test_lstm_direction_equals_reference_steps() -> None:
    """One backward direction on random codes (4- and 8-bit input, a cell clip) against the
    engine's step (§8.2–§8.4), both roundings."""
    torch.manual_seed(4)
    rng = np.random.default_rng(4)
    lstm = torch.nn.LSTM(6, 5, batch_first=True)
    for kind in ("weight_ih_l0", "weight_hh_l0"):
        add_weight_scale(lstm, kind, 4, 4, "mse")
    direction = LstmDirection(QuantizedWeight(lstm.weight_ih_l0, lstm.weight_ih_l0_scale, 4),
                              QuantizedWeight(lstm.weight_hh_l0, lstm.weight_hh_l0_scale, 4),
                              lstm.bias_ih_l0, lstm.bias_hh_l0)
    builder = Builder(load_config(ROOT / "configs" / "tiny.json"), None, None, QuantOptions(),
                      {"x": 0.5})
    clip = ActClip(-0.7, 0.8)
    sigmoid_table = profile_tables("int4rt")[0]
    table = torch.from_numpy(sigmoid_table.astype(np.int64))
    for x_format in (ActQuant(4, False, 5, 0.3), ActQuant(8, True, -3, 0.02)):
        cell, rows = direction.cell(builder, "x.bwd", "x", x_format, clip.format())
        assert cell.cell_clip == 1024  # 0.5 / 2^-11
        codes = rng.integers(x_format.qmin, x_format.qmax + 1, (2, 7, 6))
        for rounding in ("double", "single"):
            out = run_direction(cell, rows, direction, clip, torch.from_numpy(codes), None,
                                None, True, table, rounding, record=True)
            h = np.full((2, 5), cell.hidden.zero_point, dtype=cell.hidden.dtype)
            c = np.zeros((2, 5), dtype=np.int16)
            for t in range(6, -1, -1):
                h, c = reference_step(cell, codes[:, t].astype(x_format.dtype), h, c,
                                      sigmoid_table, rounding)
                np.testing.assert_array_equal(out.codes[:, t].numpy(), h)
                np.testing.assert_array_equal(out.records["cell"][:, t].numpy(), c)


def test_sawb_scales_are_the_converters_per_gate_search() -> None:
    """Initial SAWB scales, used as learned ones, give the layer the converter's own
    ``--weight-scale sawb --granularity per_gate`` search gives (codes, bias, pairs, blocks)."""
    torch.manual_seed(5)
    linear = torch.nn.Linear(40, 12)
    add_weight_scale(linear, "weight", 4, 4, "sawb")
    fmt = ActQuant(4, False, 3, 0.05)
    config = load_config(ROOT / "configs" / "tiny.json")
    search = Builder(config, None, None, QuantOptions(weight_scale="sawb",
                                                    granularity="per_gate"), {})
    weight, bias = linear.weight.detach().numpy(), linear.bias.detach().numpy()
    expected = search.linear("x", Linear(weight, bias), 4, fmt, 2.0**-12, 4)
    got, rows = build_qlinear(Builder(config, None, None, QuantOptions(), {}), "x",
                              QuantizedWeight(linear.weight, linear.weight_scale, 4), bias, fmt,
                              2.0**-12)
    for field in ("weight", "bias", "multiplier", "shift", "blocks"):
        np.testing.assert_array_equal(getattr(got, field), getattr(expected, field))
    assert got.blocks == 4 and len(set(rows.tolist())) == 4


def test_train_mode_values_are_the_eval_values() -> None:
    config = load_config(ROOT / "configs" / "tiny.json")
    model, (features, lengths, labels, _) = _rnnt(config, seed=6)
    expected, _ = model(features, lengths, labels)
    model.train()
    got, enc_lengths = model(features, lengths, labels)
    np.testing.assert_array_equal(got.detach().numpy(), expected.numpy())
    got[0, :enc_lengths[0]].sum().backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    for name in ("encoder.lstm.weight_ih_l0", "encoder.lstm.weight_hh_l1_reverse_scale",
                 "predictor.lstm.weight_ih_l0_scale", "joint.out.weight_scale",
                 "predictor.embedding.weight", "clips.joint.act_clip_high"):
        assert grads[name] is not None and torch.isfinite(grads[name]).all(), name
        assert grads[name].abs().sum() > 0, name


def _convert(model, config_path: Path, tmp_path: Path):
    checkpoint = tmp_path / "qat.safetensors"
    save_file(model.export_tensors(), str(checkpoint))
    output = tmp_path / "model.safetensors"
    convert(ConvertOptions(checkpoint=checkpoint, config=config_path, output=output))
    return load_model(output)


@pytest.mark.parametrize("rounding", ["double", "single"])
def test_converted_rnnt_equals_qat(tmp_path: Path, rounding: str) -> None:
    path = _config_file(tmp_path, "tiny.json", rounding=rounding)
    model, batch = _rnnt(load_config(path), seed=7)
    compared, mismatched = _compare_rnnt(model, _convert(model, path, tmp_path), batch)
    assert compared > 40_000
    assert mismatched == 0


@pytest.mark.parametrize("rounding", ["double", "single"])
def test_converted_lm_equals_qat(tmp_path: Path, rounding: str) -> None:
    path = _config_file(tmp_path, "lm-tiny.json", rounding=rounding)
    model, tokens = _lm(load_config(path), seed=8)
    compared, mismatched = _compare_lm(model, _convert(model, path, tmp_path), tokens)
    assert compared > 10_000
    assert mismatched == 0


def test_export_names_follow_the_contract() -> None:
    """Every exported tensor is a converter name (CONVERT.md §1.1/§1.3) or ``W + "_scale"``
    of a weight W: [4] for LSTM matrices, [1] for a linear layer; the embedding has none."""
    config = load_config(ROOT / "configs" / "tiny.json")
    model, _ = _rnnt(config, seed=9)
    tensors = model.export_tensors()
    specs = expected_tensors(config)
    assert set(tensors) <= set(specs)
    scales = {name for name in tensors if name.endswith("_scale")}
    assert scales == {name for name in specs if name.endswith("_scale")}
    assert all(name[:-len("_scale")] in specs for name in scales)
    for name in scales:
        blocks = 4 if ".lstm." in name else 1
        assert tensors[name].shape == (blocks,) and tensors[name].dtype == torch.float32
    assert tensors["joint.act_clip_low"].shape == ()


@pytest.mark.thorough
@pytest.mark.parametrize("rounding", ["double", "single"])
def test_trained_small_model_converted_equals_qat(tmp_path: Path, rounding: str) -> None:
    """The committed FP32 milestone as a QAT model (SAWB scales, clips calibrated on its own
    values), exported, converted and run by the Numba engine: every traced integer equal."""
    from int4rt_train.milestone import read_milestone
    path = _config_file(tmp_path, "small.json", rounding=rounding)
    config = load_config(path)
    fp32 = Transducer(config)
    fp32.load_state_dict(read_milestone(ROOT / "models" / "checkpoints" / "small-fp32"))
    model = QatTransducer(fp32, config)
    torch.manual_seed(10)
    lengths = torch.tensor([157, 90])
    std, mean = fp32.frontend.cmvn_std, fp32.frontend.cmvn_mean
    features = torch.randn(2, 157, config.frontend.feature_dim) * std + mean
    labels = torch.randint(1, len(config.vocab), (2, 12))
    batch = (features, lengths, labels, torch.tensor([12, 7]))
    calibrate(model, [batch])
    model.eval()
    engine = _convert(model, path, tmp_path)
    records = model.integers(features, lengths, labels)
    compared = mismatched = 0
    for b, (frames, count) in enumerate(zip(lengths.tolist(), [12, 7], strict=True)):
        trace = Trace()
        engine.lattice(features[b, :frames].numpy(), labels[b, :count].numpy(), trace=trace)
        for name, expected in trace.items():
            got = records[name][b]
            if name.startswith("joint.") and got.dim() == 3:
                got = got[:expected.shape[0] // (count + 1), :count + 1].reshape(expected.shape)
            compared += expected.size
            mismatched += int(np.count_nonzero(got[:expected.shape[0]].numpy() != expected))
    assert compared > 1_000_000
    assert mismatched == 0
