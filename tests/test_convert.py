"""int4rt convert on trained checkpoints: a PyTorch model of configs/tiny.json end to end.

The checkpoints come from small ``torch.nn`` modules with the reference names
(docs/CONVERT.md §1); the float reference for SQNR is PyTorch itself.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from int4rt.cli import main
from int4rt.model.config import load_config
from int4rt.model.container import load_model
from int4rt.model.lm import LmModel
from int4rt.model.rnnt import RnntModel
from int4rt_convert import ConvertError, ConvertOptions, QuantOptions, convert
from int4rt_convert.frontend_check import FrontendMismatchWarning
from int4rt_convert.quantizers import format_with_zero

torch = pytest.importorskip("torch")
nn = torch.nn

ROOT = Path(__file__).parents[1]
TINY = ROOT / "configs" / "tiny.json"
LM_TINY = ROOT / "configs" / "lm-tiny.json"
FEATURES = 120  # tiny.json: 40 mels + deltas + delta-deltas
UTTERANCES = 5
INT4_ENCODER_SQNR_MIN = 10.0  # measured 14.5–15 dB (mse weights and ranges, 5 utterances)


class TinyRnnt(nn.Module):
    """configs/tiny.json with the reference names: encoder.lstm, predictor.*, joint.*."""

    def __init__(self, cmvn: bool = True) -> None:
        super().__init__()
        self.encoder = nn.Module()
        self.encoder.lstm = nn.LSTM(2 * FEATURES, 16, num_layers=2, bidirectional=True,
                                    batch_first=True)
        self.predictor = nn.Module()
        self.predictor.embedding = nn.Embedding(11, 8)
        self.predictor.lstm = nn.LSTM(8, 16, batch_first=True)
        self.joint = nn.Module()
        self.joint.enc = nn.Linear(32, 15)
        self.joint.pred = nn.Linear(16, 15)
        self.joint.out = nn.Linear(15, 11)
        if cmvn:
            generator = torch.Generator().manual_seed(7)
            self.frontend = nn.Module()
            self.frontend.register_buffer("cmvn_mean", 3 * torch.randn(FEATURES,
                                                                       generator=generator))
            self.frontend.register_buffer("cmvn_std", 0.5 + 2 * torch.rand(FEATURES,
                                                                           generator=generator))

    def encode(self, features: np.ndarray) -> np.ndarray:
        """The float encoder output [T/2, 32] (CMVN, stack 2 frames, Bi-LSTM x 2)."""
        with torch.no_grad():
            x = torch.from_numpy(features.astype(np.float32))
            x = (x - self.frontend.cmvn_mean) / self.frontend.cmvn_std
            if x.shape[0] % 2:
                x = torch.cat([x, torch.zeros(1, FEATURES)])
            out, _ = self.encoder.lstm(x.reshape(1, -1, 2 * FEATURES))
        return out[0].double().numpy()


class IcefallStyle(nn.Module):
    """The same network under icefall-like names (examples/mapping_icefall.json)."""

    def __init__(self, reference: TinyRnnt) -> None:
        super().__init__()
        self.encoder = nn.Module()
        self.encoder.layers = nn.ModuleList()
        for layer, inputs in enumerate((2 * FEATURES, 32)):
            block = nn.Module()
            block.lstm = nn.LSTM(inputs, 16, bidirectional=True, batch_first=True)
            for name, _ in block.lstm.named_parameters():
                source = getattr(reference.encoder.lstm, name.replace("_l0", f"_l{layer}"))
                getattr(block.lstm, name).data.copy_(source.data)
            self.encoder.layers.append(block)
        self.decoder = nn.Module()
        self.decoder.embedding = reference.predictor.embedding
        self.decoder.rnn = reference.predictor.lstm
        self.joiner = nn.Module()
        self.joiner.encoder_proj = reference.joint.enc
        self.joiner.decoder_proj = reference.joint.pred
        self.joiner.output_linear = reference.joint.out
        self.simple_am_proj = nn.Linear(32, 11)  # a pruned-RNN-T head the mapping ignores


class TinyLm(nn.Module):
    """configs/lm-tiny.json with the reference names: embedding, lstm, out."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(11, 8)
        self.lstm = nn.LSTM(8, 13, num_layers=2, batch_first=True)
        self.out = nn.Linear(13, 11)


def state_dict(module: nn.Module) -> dict[str, np.ndarray]:
    """A module's state dict as float32 NumPy arrays."""
    return {name: value.detach().numpy().copy() for name, value in module.state_dict().items()}


@pytest.fixture(scope="session")
def data(tmp_path_factory) -> dict:
    """A tiny RNN-T saved by torch.save, its float module, features and a manifest."""
    root = tmp_path_factory.mktemp("convert")
    torch.manual_seed(0)
    model = TinyRnnt()
    torch.save(model.state_dict(), root / "tiny.pt")
    rng = np.random.default_rng(0)
    mean, std = model.frontend.cmvn_mean.numpy(), model.frontend.cmvn_std.numpy()
    features, lines = [], []
    (root / "feats").mkdir()
    for index in range(UTTERANCES):
        frames = 80 + index % 2  # odd lengths exercise the stacking pad
        feats = (mean + std * rng.standard_normal((frames, FEATURES))).astype(np.float32)
        np.save(root / "feats" / f"u{index}.npy", feats)
        features.append(feats)
        lines.append(json.dumps({"features": f"feats/u{index}.npy", "text": "hello tea"}))
    (root / "calib.jsonl").write_text("\n".join(lines) + "\n")
    return {"root": root, "model": model, "features": features}


def run(data: dict, out: Path, **kwargs) -> object:
    """convert() of the tiny checkpoint with the manifest; keyword arguments override."""
    options = {"checkpoint": data["root"] / "tiny.pt", "config": TINY, "output": out,
               "calibration": data["root"] / "calib.jsonl", **kwargs}
    return convert(ConvertOptions(**options))


def sqnr(reference: np.ndarray, approximation: np.ndarray) -> float:
    return 10 * np.log10(np.sum(reference**2) / np.sum((reference - approximation) ** 2))


def encoder_sqnr(data: dict, model: RnntModel) -> float:
    """SQNR of the integer encoder output against PyTorch's over every utterance."""
    reference, approximation = [], []
    for feats in data["features"]:
        codes, fmt = model.encode(feats)
        reference.append(data["model"].encode(feats))
        approximation.append((codes.astype(np.float64) - fmt.zero_point) * fmt.scale)
    return sqnr(np.concatenate(reference), np.concatenate(approximation))


@pytest.mark.parametrize(("bits", "bound"), [(8, 30.0), (4, INT4_ENCODER_SQNR_MIN)])
def test_tiny_torch_checkpoint_encoder_sqnr(data, tmp_path, bits, bound, report_count):
    result = run(data, tmp_path / "m.safetensors", weight_bits=bits, activation_bits=bits)
    model = load_model(tmp_path / "m.safetensors")
    measured = encoder_sqnr(data, model)
    reported = result.report["summary"]["encoder_output_sqnr_db"]
    report_count(f"convert tiny int{bits}/int{bits}: encoder output SQNR {measured:.2f} dB vs "
                 f"PyTorch ({reported} dB in the report)")
    assert measured >= bound
    assert reported == pytest.approx(measured, abs=0.01)
    assert result.report["summary"]["evaluated_utterances"] == UTTERANCES
    assert all(layer["weight_bits"] == bits for layer in result.report["layers"])
    assert result.report["sizes"]["file_bytes"] == (tmp_path / "m.safetensors").stat().st_size
    names = {entry["name"] for entry in result.report["activations"]}
    assert {"encoder.input", "encoder.layer1.bwd.hidden", "joint.logits",
            "joint.log_probs"} <= names
    saved = json.loads((tmp_path / "m.report.json").read_text())
    assert saved == json.loads(json.dumps(result.report))


def _assert_same(a: object, b: object, path: str = "model") -> None:
    assert type(a) is type(b), path
    if dataclasses.is_dataclass(a):
        for field in dataclasses.fields(a):
            _assert_same(getattr(a, field.name), getattr(b, field.name), f"{path}.{field.name}")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, path
        np.testing.assert_array_equal(a, b, err_msg=path)
    elif isinstance(a, tuple):
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{path}[{index}]")
    else:
        assert a == b, f"{path}: {a!r} vs {b!r}"


def _format(fmt) -> dict:
    return {"bits": fmt.bits, "signed": fmt.signed, "zero_point": fmt.zero_point,
            "scale": fmt.scale}


def test_round_trip_load_and_inspect(data, tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    result = run(data, out)
    loaded = load_model(out)
    _assert_same(result.model, loaded)
    report = result.report
    layers = {name: (layer, fmt) for name, layer, fmt in loaded.linear_layers()}
    assert [entry["name"] for entry in report["layers"]] == list(layers)
    for entry in report["layers"]:
        layer, fmt = layers[entry["name"]]
        assert entry["weight_bits"] == layer.weight_bits
        assert entry["input"] == _format(fmt)
        assert entry["multiplier"] == layer.multiplier.tolist()
        assert entry["shift"] == layer.shift.tolist()
        assert entry["bias"] == bool(layer.bias.any())
    cells = {f"encoder.layer{i}.{d}": cell for i, layer in enumerate(loaded.encoder.layers)
             for d, cell in zip(("fwd", "bwd"), layer.cells, strict=True)}
    cells["predictor.layer0"] = loaded.predictor.layers[0]
    assert [entry["name"] for entry in report["cells"]] == list(cells)
    for entry in report["cells"]:
        cell = cells[entry["name"]]
        assert (entry["cell_scale_log2"], entry["cell_clip"], entry["hidden_multiplier"],
                entry["hidden_shift"]) == (cell.cell_scale_log2, cell.cell_clip,
                                           cell.hidden_multiplier, cell.hidden_shift)
    formats = {"encoder.input": loaded.encoder.input, "joint": loaded.joint.hidden,
               "predictor.embedding": loaded.predictor.layers[0].input,
               "predictor.layer0": loaded.predictor.layers[0].hidden,
               **{f"encoder.layer{i}": layer.hidden
                  for i, layer in enumerate(loaded.encoder.layers)}}
    assert sorted(report["formats"]) == sorted(formats)
    for name, fmt in formats.items():
        entry = report["formats"][name]
        assert {key: entry[key] for key in ("bits", "signed", "zero_point", "scale")} == \
            _format(fmt)
    joint = loaded.joint
    assert {key: report["joint"][key] for key in (
        "mode", "combine_multiplier", "combine_shift", "hidden_multiplier", "hidden_shift",
        "logit_frac_bits")} == {
        "mode": joint.mode, "combine_multiplier": joint.combine_multiplier,
        "combine_shift": joint.combine_shift, "hidden_multiplier": joint.hidden_multiplier,
        "hidden_shift": joint.hidden_shift, "logit_frac_bits": joint.logit_frac_bits}
    capsys.readouterr()
    assert main(["inspect", str(out), "--json"]) == 0
    inspected = json.loads(capsys.readouterr().out)
    assert inspected["file_bytes"] == report["sizes"]["file_bytes"]
    assert [(layer["name"], layer["shape"], layer["weight_bits"], layer["input"])
            for layer in inspected["layers"]] == [
        (entry["name"], entry["shape"], entry["weight_bits"], entry["input"])
        for entry in report["layers"]]


@pytest.mark.thorough
def test_checkpoint_formats_and_mapping_give_the_same_bytes(data, tmp_path):
    """.pt, .safetensors, .npz and the icefall-style names + mapping: identical model files."""
    reference = TinyRnnt(cmvn=False)
    reference.load_state_dict({k: v for k, v in data["model"].state_dict().items()
                               if not k.startswith("frontend.")})
    arrays = state_dict(reference)
    torch.save(reference.state_dict(), tmp_path / "ref.pt")
    save_file(arrays, str(tmp_path / "ref.safetensors"))
    np.savez(tmp_path / "ref.npz", **arrays)
    icefall = IcefallStyle(reference)
    torch.save({"model": icefall.state_dict(), "epoch": 3}, tmp_path / "icefall.pt")
    outputs = []
    for name, mapping in (("ref.pt", None), ("ref.safetensors", None), ("ref.npz", None),
                          ("icefall.pt", ROOT / "examples" / "mapping_icefall.json")):
        out = tmp_path / f"{name}.safetensors"
        # the icefall mapping with the tiny (log-Mel) config: the front-end mismatch warning
        with pytest.warns(FrontendMismatchWarning) if mapping else contextlib.nullcontext():
            result = run(data, out, checkpoint=tmp_path / name, mapping=mapping)
        assert result.report["calibration"]["cmvn"] == "calibration data"
        outputs.append(out.read_bytes())
    assert all(blob == outputs[0] for blob in outputs[1:])


def test_overrides_from_the_command_line(data, tmp_path, capsys):
    out = tmp_path / "mixed.safetensors"
    assert main(["convert", str(data["root"] / "tiny.pt"), "--config", str(TINY), "-o", str(out),
                 "--calib", str(data["root"] / "calib.jsonl"), "--override", "encoder.input=a8",
                 "--override", "encoder.layer0=w8", "--override", "joint.out=w8",
                 "--weight-scale", "sawb", "--granularity", "per_gate"]) == 0
    printed = capsys.readouterr().out
    assert "weight SQNR" in printed and "encoder.layer0.fwd.input_fc" in printed
    model = load_model(out)
    bits = {name: layer.weight_bits for name, layer, _ in model.linear_layers()}
    assert {name for name, b in bits.items() if b == 8} == {
        "encoder.layer0.fwd.input_fc", "encoder.layer0.fwd.recurrent_fc",
        "encoder.layer0.bwd.input_fc", "encoder.layer0.bwd.recurrent_fc", "joint.out"}
    assert model.encoder.input.bits == 8 and model.encoder.layers[0].hidden.bits == 4
    for layer in (model.encoder.layers[1].cells[0].input_fc, model.joint.enc_proj):
        rows = layer.multiplier.reshape(4 if layer.n_out == 64 else 1, -1)
        assert (rows == rows[:, :1]).all()  # per-gate: one scale per block
    report = json.loads((tmp_path / "mixed.report.json").read_text())
    assert report["options"]["overrides"]["encoder.layer0"] == {"weight_bits": 8}
    assert report["options"]["weight_scale"] == "sawb"


@pytest.mark.parametrize(("override", "message"), [
    ("nosuch=w8", "no such layer"),
    ("encoder.input=w8", "has no weights to set"),
    ("encoder.layer0=w5", "5 bits not allowed by profile"),
    ("encoder.layer0", "expected LAYER=wN"),
])
def test_bad_override(data, tmp_path, capsys, override, message):
    out = tmp_path / "m.safetensors"
    assert main(["convert", str(data["root"] / "tiny.pt"), "--config", str(TINY), "-o", str(out),
                 "--override", override]) == 2
    err = capsys.readouterr().err
    assert err.startswith("int4rt: error: ") and message in err and err.count("\n") == 1
    assert not out.exists()


def test_qat_clip_values_replace_calibration(data, tmp_path):
    """A QAT checkpoint: clip values give every format; no calibration data needed."""
    arrays = state_dict(data["model"])
    clips = {"encoder.input": (-3.0, 2.5), "encoder.layer0": (-0.9, 0.8),
             "encoder.layer1": (-0.7, 0.95), "predictor.embedding": (-1.5, 1.5),
             "predictor.layer0": (-0.6, 0.6), "joint": (-0.99, 0.99)}
    for layer, (low, high) in clips.items():
        arrays[f"{layer}.act_clip_low"] = np.float32(low)
        arrays[f"{layer}.act_clip_high"] = np.array([high], np.float32)
    arrays["encoder.layer1.cell_clip"] = np.float32(3.0)
    np.savez(tmp_path / "qat.npz", **arrays)
    result = run(data, tmp_path / "qat.safetensors", checkpoint=tmp_path / "qat.npz",
                 calibration=None)
    model = result.model
    assert result.report["formats"]["encoder.layer0"]["source"] == "QAT clip values"
    for layer, (low, high) in clips.items():
        expected = format_with_zero(4, False, np.float32(low), np.float32(high))
        assert result.report["formats"][layer]["zero_point"] == expected.zero_point
        assert result.report["formats"][layer]["scale"] == expected.scale
    assert model.encoder.input == format_with_zero(4, False, np.float32(-3.0), np.float32(2.5))
    assert model.encoder.layers[1].cells[0].cell_scale_log2 == -11  # config (no calibration)
    assert model.encoder.layers[1].cells[0].cell_clip == int(3.0 / 2**-11)
    assert model.encoder.layers[0].cells[0].cell_clip == 0
    assert result.report["activations"] == []
    assert result.report["joint"]["projection_scales"]["joint.enc_proj"]["source"] == \
        "bound from weights and input range"


def test_cell_clip_below_one_step_is_rejected(data, tmp_path):
    out = tmp_path / "m.safetensors"
    with pytest.raises(ConvertError, match=r"cell clip 0\.0001 is smaller than one cell step "
                                           r"2\^-11"):
        run(data, out, quant=QuantOptions(cell_scale="config", cell_clip=1e-4))
    assert not out.exists()


def test_cell_scale_covers_the_calibrated_range(data, tmp_path):
    result = run(data, tmp_path / "m.safetensors", quant=QuantOptions(cell_clip=0.75))
    for entry in result.report["cells"]:
        covered = min(entry["observed_max_abs_cell"], 0.75)
        assert 32767 * 2.0 ** entry["cell_scale_log2"] >= covered
        assert 32767 * 2.0 ** (entry["cell_scale_log2"] - 1) < covered
        assert entry["cell_clip"] == min(int(0.75 / 2.0 ** entry["cell_scale_log2"]), 32767)


@pytest.mark.parametrize("mode", ["additive", "multiplicative"])
def test_joint_modes(data, tmp_path, mode):
    config = json.loads(TINY.read_text())
    config["joint"]["mode"] = mode
    (tmp_path / "c.json").write_text(json.dumps(config))
    result = run(data, tmp_path / "m.safetensors", config=tmp_path / "c.json",
                 weight_bits=8, activation_bits=8)
    activations = {entry["name"]: entry["sqnr_db"] for entry in result.report["activations"]}
    assert activations["joint.logits"] > 25.0
    assert result.model.joint.mode == mode


@pytest.mark.parametrize("quantization", [
    {"profile": "tflm", "weight_bits": 8, "activation_bits": 8, "activation_signed": True},
    {"rounding": "single", "activation_signed": True},
])
def test_profiles_and_signed_codes(data, tmp_path, quantization):
    config = json.loads(TINY.read_text())
    config["quantization"].update(quantization)
    (tmp_path / "c.json").write_text(json.dumps(config))
    result = run(data, tmp_path / "m.safetensors", config=tmp_path / "c.json")
    model = load_model(tmp_path / "m.safetensors")
    assert model.profile == config["quantization"]["profile"]
    assert model.rounding == config["quantization"]["rounding"]
    assert all(fmt.signed for _, _, fmt in model.linear_layers())
    assert result.report["summary"]["encoder_output_sqnr_db"] > INT4_ENCODER_SQNR_MIN


def test_lm_checkpoint(tmp_path, report_count):
    torch.manual_seed(1)
    torch.save(TinyLm().state_dict(), tmp_path / "lm.pt")
    (tmp_path / "text.txt").write_text("hello tea\nthe sea shell\nlet's not sell\n")
    result = convert(ConvertOptions(tmp_path / "lm.pt", LM_TINY, tmp_path / "lm.safetensors",
                                    calibration=tmp_path / "text.txt", weight_bits=8,
                                    activation_bits=8))
    model = load_model(tmp_path / "lm.safetensors")
    assert isinstance(model, LmModel)
    activations = {entry["name"]: entry["sqnr_db"] for entry in result.report["activations"]}
    report_count(f"convert lm-tiny int8/int8: logits SQNR {activations['lm.logits']} dB")
    assert activations["lm.logits"] > 25.0
    assert result.report["calibration"]["labels"] == "text"
    no_calibration = convert(ConvertOptions(tmp_path / "lm.pt", LM_TINY,
                                            tmp_path / "lm2.safetensors"))
    assert no_calibration.report["formats"]["lm.layer0"]["source"] == "static range [-1, 1]"
    assert no_calibration.report["formats"]["lm.embedding"]["source"] == "embedding table (mse)"


def test_calibration_from_a_folder_with_greedy_labels(data, tmp_path, monkeypatch):
    monkeypatch.chdir(data["root"])  # a relative folder
    result = run(data, tmp_path / "m.safetensors", calibration=Path("feats"),
                 calibration_limit=2)
    assert result.report["calibration"]["utterances"] == 2
    assert result.report["calibration"]["labels"] == "greedy search"
    (tmp_path / "plain").write_text("")  # written files get the usual permissions
    for path in (tmp_path / "m.safetensors", tmp_path / "m.report.json"):
        assert path.stat().st_mode == (tmp_path / "plain").stat().st_mode


def test_calibration_from_audio(data, tmp_path):
    frontend = pytest.importorskip("int4rt.frontend")
    import soundfile

    rng = np.random.default_rng(3)
    soundfile.write(tmp_path / "a.wav", 0.1 * rng.standard_normal(8000), 8000)
    (tmp_path / "audio.jsonl").write_text(json.dumps({"audio": "a.wav", "text": "tea"}) + "\n")
    result = run(data, tmp_path / "m.safetensors", calibration=tmp_path / "audio.jsonl")
    assert result.report["calibration"]["frames"] == frontend.compute_features(
        frontend.load_audio(tmp_path / "a.wav", 8000), load_model(
            tmp_path / "m.safetensors").frontend).shape[0]


def test_plot(data, tmp_path):
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        with pytest.raises(ConvertError, match=r"--plot needs matplotlib"):
            run(data, tmp_path / "m.safetensors", plot=True)
        assert not (tmp_path / "m.safetensors").exists()
        return
    result = run(data, tmp_path / "m.safetensors", plot=True)
    assert result.plot_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_config_needs_cmvn_source(data, tmp_path):
    reference = TinyRnnt(cmvn=False)
    torch.save(reference.state_dict(), tmp_path / "plain.pt")
    with pytest.raises(ConvertError, match=r"no frontend\.cmvn_mean/frontend\.cmvn_std"):
        run(data, tmp_path / "m.safetensors", checkpoint=tmp_path / "plain.pt",
            calibration=None)
    assert load_config(TINY).frontend.cmvn
