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


# The shipped model's real tuning scores (INT4 QAT from FP32 step 3211 with the bible and source
# LMs, the first 15 dev-fortunes + 15 dev-bible utterances by id): modified beam search, one
# symbol per 40 ms frame, loses to greedy; ALSD does not.
MEASURED = [
    ({"method": "greedy"}, 29.8, 12.36),
    ({"method": "beam", "beam": 4, "length_reward": 0.0}, 43.71, 18.28),
    ({"method": "beam", "beam": 4, "length_reward": 1.0, "lm_weight": 0.6}, 38.41, 17.62),
    ({"method": "beam", "beam": 8, "length_reward": 1.0, "lm_weight": 0.6}, 38.74, 17.36),
    ({"method": "alsd", "beam": 4, "length_reward": 0.0}, 28.15, 11.37),
    ({"method": "alsd", "beam": 8, "length_reward": 0.0}, 28.15, 11.64),
    ({"method": "alsd", "beam": 8, "length_reward": 1.0, "lm_weight": 0.6}, 28.81, 12.82),
]


def test_default_grid_holds_beam_8_alsd_and_larger_weights():
    from int4rt_train.fusion_tuning import DecodingGrid, decoding_points

    points = decoding_points(DecodingGrid(), has_lm=True, has_source=True)
    assert points[0] == {"method": "greedy"}
    # (λ_ext, λ_src): (0, 0) and every pair with 0 ≤ λ_src ≤ λ_ext, λ_ext > 0: 1 + 2 + 3 + 3
    assert len(points) == 1 + 2 * 2 * 9 * 2
    assert {p["method"] for p in points[1:]} == {"beam", "alsd"}
    assert {p["beam"] for p in points[1:]} == {4, 8}
    assert max(p.get("lm_weight", 0) for p in points) == 1.0
    assert max(p.get("source_lm_weight", 0) for p in points) == 0.6
    assert all(0 < p["source_lm_weight"] <= p["lm_weight"] for p in points
               if "source_lm_weight" in p)
    assert len(points) == len({json.dumps(p, sort_keys=True) for p in points})
    assert points[1] == {"method": "beam", "beam": 4, "length_reward": 0.0}
    assert points[-1] == {"method": "alsd", "beam": 8, "length_reward": 1.0, "lm_weight": 1.0,
                          "source_lm_weight": 0.6}
    no_source = decoding_points(DecodingGrid(), has_lm=True, has_source=False)
    assert len(no_source) == 1 + 2 * 2 * 4 * 2
    assert not any("source_lm_weight" in p for p in no_source)
    assert len(decoding_points(DecodingGrid(), has_lm=False, has_source=False)) == 1 + 2 * 2 * 2


def test_best_point_on_measured_scores():
    from int4rt_train.fusion_tuning import best_point

    table = [{**point, "wer": wer, "cer": cer} for point, wer, cer in MEASURED]
    assert MEASURED[best_point(table)][0] == {"method": "alsd", "beam": 4, "length_reward": 0.0}
    assert best_point(table[:4]) == 0          # beam ≤ 8 without ALSD: greedy, as shipped
    tied = [table[5], table[4]]                 # same WER: the lower CER wins
    assert best_point(tied) == 1
    assert best_point([table[4], dict(table[4])]) == 0   # all equal: the first (simplest)


def test_tune_decodes_every_point_with_its_lm_files(monkeypatch):
    import int4rt_train.ship as ship
    from int4rt_train.fusion_tuning import DecodingGrid

    class Recognizer:
        def features(self, audio):
            return audio

        def decode_features(self, features, **settings):
            seen.append(settings)
            text = "a b" if settings.get("method") == "alsd" and settings["beam"] == 8 else "a"
            return type("Result", (), {"text": text})()

    seen = []
    rows = [{"audio": "x.wav", "text": "a b"}]
    grid = DecodingGrid(lm_weights=(0.0, 0.5), source_weights=(0.0, 0.5), length_rewards=(0.0,))
    best, table = ship.tune(Recognizer(), rows, {"lm": "ext.st", "source_lm": "src.st"}, grid)
    assert best == {"method": "alsd", "beam": 8, "length_reward": 0.0}
    assert len(table) == len(seen) == 1 + 2 * 2 * 3
    assert all(s.get("lm") == "ext.st" for s in seen if "lm_weight" in s)
    assert all(s.get("source_lm") == "src.st" for s in seen if "source_lm_weight" in s)
    assert all("lm" not in row for row in table)          # the table names no file


def test_provenance_of_a_qat_export_reaches_bundle_json(run, tmp_path):
    """A QAT run started from a checkpoint records it; its export carries the run's state;
    ship's model entry fills step, init_from, what the FP32 weights had seen and both dev
    WERs without hand editing, and ``--provenance`` adds or replaces fields."""
    from int4rt_train.milestone import export_metadata
    from int4rt_train.qat import origin_state
    from int4rt_train.ship import _key_value, model_entry

    folder, model = run
    fp32 = folder / "ckpt-000000012.safetensors"
    qat_run = tmp_path / "qat"
    qat_run.mkdir()
    optimizer = torch.optim.Adam(model.parameters())
    state = {"step": 294, "epoch": 0, "audio_seconds": 3600.0, "best_dev_wer": 28.1,
             **origin_state(fp32)}
    save_checkpoint(qat_run / "ckpt-000000294.safetensors", model, optimizer, state)
    from safetensors.torch import save_file

    export = tmp_path / "qat-export.safetensors"
    save_file({"joint.act_clip_low": torch.tensor(-1.0), "weight": torch.zeros(2, 3)},
              str(export), metadata=export_metadata(qat_run / "ckpt-000000294.safetensors"))
    weights = read_weights(export)
    assert weights.state["step"] == 294 and weights.state["init_state"]["step"] == 12
    entry = model_entry(weights, export, tmp_path / "calib.jsonl",
                        dict([_key_value("note=from session 17"), _key_value("step=300")]))
    assert entry["weights"] == "INT4 QAT" and entry["init_from"] == str(fp32)
    assert entry["init"] == {"step": 12, "epoch": 1, "best_dev_wer": 55.5, "audio_hours": 2.0}
    assert entry["qat_best_dev_wer"] == 28.1 and entry["fp32_best_dev_wer"] == 55.5
    assert entry["audio_hours"] == 1.0
    assert entry["note"] == "from session 17" and entry["step"] == 300
    milestone = tmp_path / "milestone"
    write_milestone(fp32, milestone, 2**20)
    plain = model_entry(read_weights(milestone), export, tmp_path / "calib.jsonl", {})
    assert plain["weights"] == "INT4 PTQ" and plain["step"] == 12
    assert plain["fp32_best_dev_wer"] == 55.5 and plain["audio_hours"] == 2.0
    assert "qat_best_dev_wer" not in plain and "init" not in plain
