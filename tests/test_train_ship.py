"""The default-model builder ``int4rt_train.ship``: weights from every source kind, clip choice."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

torch = pytest.importorskip("torch")

from int4rt_train.checkpoint import save_checkpoint  # noqa: E402
from int4rt_train.milestone import write_milestone  # noqa: E402
from int4rt_train.ship import choose_clips, main, read_weights, voice_family  # noqa: E402


@pytest.fixture
def run(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    state = {"step": 12, "epoch": 1, "audio_seconds": 7200.0, "best_dev_wer": 55.5}
    save_checkpoint(folder / "ckpt-000000012.safetensors", model, optimizer, state)
    return folder, model


def test_read_weights_from_run_checkpoint_milestone_and_plain_file(run, tmp_path):
    folder, model = run
    want = {name: value.detach() for name, value in model.state_dict().items()}
    from_run = read_weights(folder)
    assert set(from_run.tensors) == {"weight", "bias"}  # no optimizer state, no RNG
    assert from_run.source == "ckpt-000000012.safetensors"
    assert from_run.state["step"] == 12 and from_run.state["audio_seconds"] == 7200.0
    from_file = read_weights(folder / "ckpt-000000012.safetensors")
    milestone = tmp_path / "milestone"
    write_milestone(folder / "ckpt-000000012.safetensors", milestone, 2**20)
    from_milestone = read_weights(milestone)
    assert from_milestone.state["step"] == 12
    from safetensors.torch import save_file

    save_file(want, str(tmp_path / "plain.safetensors"))
    from_plain = read_weights(tmp_path / "plain.safetensors")
    assert from_plain.state == {}
    for weights in (from_run, from_file, from_milestone, from_plain):
        for name, value in want.items():
            assert torch.equal(weights.tensors[name], value), name


def test_read_weights_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="no ckpt-"):
        read_weights(tmp_path / "empty")
    with pytest.raises(SystemExit, match="no such checkpoint"):
        read_weights(tmp_path / "missing.safetensors")


def test_voice_family():
    assert voice_family("espeak:en-029+f2:s176:p38") == "espeak:f2"
    assert voice_family("espeak:en-gb-x-rp+klatt4:s166:p59") == "espeak:klatt4"
    assert voice_family("flite:slt") == "flite:slt"


def test_choose_clips_one_per_voice_alternating_synthesizers(tmp_path):
    voices = ["espeak:en+f2:s150:p50", "espeak:en-us+f2:s170:p40", "espeak:en+m3:s150:p50",
              "flite:rms", "flite:slt", "flite:slt", "espeak:en+f5:s150:p50"]
    seconds = [2.0, 2.5, 1.0, 3.0, 2.0, 5.0, 2.2]  # m3's only clip is too short
    (tmp_path / "wav").mkdir()
    rows = []
    for index, (voice, length) in enumerate(zip(voices, seconds, strict=True)):
        name = f"wav/u{index}.wav"
        sf.write(tmp_path / name, np.zeros(int(16000 * length), np.int16), 16000)
        rows.append({"audio": name, "id": f"u{index}", "text": f"text {index}", "voice": voice})
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    chosen = choose_clips(manifest, 4)
    assert [voice_family(row["voice"]) for row in chosen] == [
        "espeak:f2", "flite:rms", "espeak:f5", "flite:slt"]
    assert chosen[3]["id"] == "u4"  # the 5 s slt clip is too long
    assert chosen == choose_clips(manifest, 4)
    with pytest.raises(SystemExit, match="fewer than --count 5"):
        choose_clips(manifest, 5)


def test_missing_inputs_are_one_message(tmp_path, capsys):
    corpus = tmp_path / "corpus"
    args = ["--model", str(tmp_path / "none.safetensors"), "--out", str(tmp_path / "b"),
            "--corpus", str(corpus)]
    with pytest.raises(SystemExit):
        main(args)
    assert "missing " + str(corpus / "sets" / "eval-heldout-clean") in capsys.readouterr().err
    for name in ("eval-heldout-clean", "dev-fortunes", "dev-bible"):
        (corpus / "sets" / name).mkdir(parents=True)
        (corpus / "sets" / name / "manifest.jsonl").write_text("")
    with pytest.raises(SystemExit, match="no such checkpoint"):
        main(args)
    assert not (tmp_path / "b").exists()


def test_a_run_started_from_a_milestone_says_so(run):
    folder, _ = run
    assert "init_from" not in read_weights(folder).state
    started = {"event": "started", "options": {"init_from": "models/checkpoints/small-fp32"}}
    (folder / "metrics.jsonl").write_text(json.dumps(started) + "\n{\"step\": 1}\n")
    assert read_weights(folder).state["init_from"] == "models/checkpoints/small-fp32"
    (folder / "metrics.jsonl").write_text(json.dumps(
        {"event": "started", "options": {"init_from": "None"}}) + "\n")
    assert "init_from" not in read_weights(folder).state


@pytest.mark.parametrize("qat", [False, True])
def test_a_qat_checkpoint_keeps_the_config_cell_scale(tmp_path, monkeypatch, qat):
    import int4rt_train.ship as ship

    seen = []
    monkeypatch.setattr(ship, "convert", seen.append)
    tensors = {"joint.out.weight": torch.zeros(2, 2)}
    if qat:
        tensors["joint.act_clip_low"] = torch.tensor(-1.0)
    ship.convert_weights(ship.Weights(tensors, "x", {}), "small", tmp_path / "calib.jsonl",
                         tmp_path / "model.safetensors", tmp_path, None)
    assert seen[0].quant.cell_scale == ("config" if qat else "calibrate")
    assert seen[0].calibration == tmp_path / "calib.jsonl"
