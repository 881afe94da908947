"""``int4rt trace``: the user's model on the user's input, every traced integer as .npy and
$readmemh hex with a manifest (docs/VERIFICATION.md §8)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

import int4rt
from int4rt.cli import main
from int4rt.errors import Int4rtError
from int4rt.golden.hexfile import read_hex
from int4rt.golden.user_trace import trace_model
from int4rt.model.container import load_model
from int4rt.trace import Trace

ROOT = Path(__file__).parents[1]
COMPARE = ROOT / "examples" / "hardware_testbench" / "compare_dump.py"
LABELS = [3, 5, 4, 10]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("trace_models")
    model, lm = root / "tiny.safetensors", root / "lm.safetensors"
    assert main(["convert", "--random", "7", "--config", str(ROOT / "configs/tiny.json"),
                 "-o", str(model)]) == 0
    assert main(["convert", "--random", "8", "--config", str(ROOT / "configs/lm-tiny.json"),
                 "-o", str(lm)]) == 0
    features = np.random.default_rng(9).standard_normal((13, 120)).astype(np.float32)
    np.save(root / "features.npy", features)
    return model, lm, root / "features.npy"


@pytest.fixture(scope="module")
def traced(models, tmp_path_factory) -> Path:
    model, lm, features = models
    out = tmp_path_factory.mktemp("trace") / "out"
    assert main(["trace", str(model), "--features", str(features), "--labels",
                 ",".join(map(str, LABELS)), "--lm", str(lm), "--out", str(out),
                 "--backend", "numpy", "--chunk-frames", "2"]) == 0
    return out


def test_every_traced_tensor_equals_the_lattice_trace(models, traced):
    model_path, _, features_path = models
    model = load_model(model_path)
    expected = Trace()
    log_probs = model.lattice(np.load(features_path), LABELS, backend="numpy", trace=expected)
    manifest = json.loads((traced / "manifest.json").read_text())
    entries = {e["tensor"]: e for e in manifest["files"] if "step" not in e}
    for name, value in expected.items():
        entry = entries[name]
        npy = np.load(traced / entry["npy"], allow_pickle=False)
        assert npy.dtype == value.dtype and np.array_equal(npy, value), name
        hexed = read_hex(traced / entry["file"], entry["width_bits"], entry["signed"])
        assert np.array_equal(hexed.reshape(value.shape), value), name
        assert entry["shape"] == list(value.shape) and entry["spec"].startswith("§")
    assert entries["joint.log_probs"]["role"] == "output"
    assert np.array_equal(np.load(traced / "npy" / "joint.log_probs.npy"),
                          log_probs.reshape(-1, log_probs.shape[-1]))
    assert manifest["input"]["labels"] == LABELS


def test_lm_steps_equal_stepping_the_lm_one_label_at_a_time(models, traced):
    _, lm_path, _ = models
    lm = load_model(lm_path)
    model = load_model(models[0])
    state = lm.initial_state(1)
    rows = []
    for token in [model.blank_id, *LABELS]:
        log_probs, state = lm.step(np.array([token]), state, backend="numpy")
        rows.append(log_probs[0])
    assert np.array_equal(np.load(traced / "npy" / "lm.log_probs.npy"), np.stack(rows))
    manifest = json.loads((traced / "manifest.json").read_text())
    files = {e["file"] for e in manifest["files"]}
    assert {"tables/lm.sigmoid.hex", "params/lm.layer0.input_fc.weight_packed.hex",
            "outputs/lm.log_probs.hex"} <= files


def test_manifest_lists_every_file_with_params_and_lstm_recipes(models, traced):
    manifest = json.loads((traced / "manifest.json").read_text())
    listed = {e["file"] for e in manifest["files"]}
    assert listed == {str(p.relative_to(traced)) for p in traced.rglob("*.hex")}
    model = load_model(models[0])
    weight = read_hex(traced / "params/encoder.layer1.bwd.recurrent_fc.weight.hex", 8, True)
    assert np.array_equal(weight.reshape(model.encoder.layers[1].cells[1].recurrent_fc.weight
                                         .shape), model.encoder.layers[1].cells[1]
                          .recurrent_fc.weight)
    recipes = {d["prefix"]: d for d in manifest["lstm_directions"]}
    assert recipes["encoder.layer0.bwd"]["reverse"] is True
    assert recipes["encoder.layer0.fwd"]["inputs"] == ["encoder.layer0.stacked"]
    assert recipes["encoder.layer1.fwd"]["inputs"] == ["encoder.layer0.fwd.hidden",
                                                       "encoder.layer0.bwd.hidden"]
    assert recipes["lm.layer1"]["table"] == "lm.tables.sigmoid"
    joint = manifest["constants"]["joint"]
    assert (joint["hidden_multiplier"], joint["hidden_shift"]) == (
        model.joint.hidden_multiplier, model.joint.hidden_shift)
    steps = [e for e in manifest["files"] if e.get("step", {}).get("index") == 12
             and e["tensor"] == "encoder.input"]
    assert steps and steps[0]["file"] == "steps/encoder.input/t0012.hex"


def test_compare_dump_accepts_the_trace_as_golden(traced):
    done = subprocess.run([sys.executable, str(COMPARE), str(traced), str(traced),
                           "--files", "intermediates/*"], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS" in done.stdout


def test_audio_input_and_default_greedy_labels(models, tmp_path):
    model_path = models[0]
    recognizer = int4rt.load(model_path)
    rate = recognizer.frontend.sample_rate
    audio = np.random.default_rng(1).standard_normal(rate // 2).astype(np.float32) * 0.1
    soundfile.write(tmp_path / "a.wav", audio, rate)
    out = tmp_path / "out"
    assert main(["trace", str(model_path), "--audio", str(tmp_path / "a.wav"), "--out",
                 str(out), "--no-steps"]) == 0
    features = np.load(out / "inputs" / "features.npy")
    assert np.array_equal(features, recognizer.features(tmp_path / "a.wav"))
    manifest = json.loads((out / "manifest.json").read_text())
    greedy = recognizer.decode_features(features, method="greedy").tokens
    assert manifest["input"]["labels"] == list(greedy)
    assert manifest["input"]["labels_from"] == "greedy search"
    assert not (out / "steps").exists()


def test_bad_inputs_get_one_clear_error(models, tmp_path, capsys):
    model, lm, features = models
    with pytest.raises(Int4rtError, match="non-blank"):
        trace_model(str(model), tmp_path / "a", features=np.load(features), labels=[3, 0])
    with pytest.raises(Int4rtError, match="LM file"):
        trace_model(str(lm), tmp_path / "b", features=np.load(features), labels=[3])
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(Int4rtError, match="not an empty directory"):
        trace_model(str(model), tmp_path / "full", features=np.load(features), labels=[3])
    with pytest.raises(Int4rtError, match=r"shape \[frames, 120\]"):
        trace_model(str(model), tmp_path / "c", features=np.zeros((4, 7), np.float32))
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert main(["trace", str(model), "--features", str(tmp_path / "obj.npy"), "--out",
                 str(tmp_path / "d")]) == 2
    assert "cannot read features" in capsys.readouterr().err
    assert main(["trace", str(model), "--features", str(features), "--labels", "3,x",
                 "--out", str(tmp_path / "e")]) == 2
    assert "comma-separated" in capsys.readouterr().err
