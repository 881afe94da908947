"""The ``real-speech`` set builder (tools/train/real_speech.py), on stand-in recordings."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from int4rt_train import real_speech
from int4rt_train.corpus import read_shard
from int4rt_train.data import features_of


@pytest.mark.skipif(shutil.which("sox") is None, reason="needs sox (apt-get install sox)")
def test_set_holds_16_khz_wavs_manifest_and_their_features(tmp_path):
    rng = np.random.default_rng(0)
    sources = []
    for index, (rate, channels) in enumerate(((48000, 1), (22050, 2))):
        path = tmp_path / f"source{index}.wav"
        sf.write(path, (rng.normal(size=(rate, channels)) * 3000).astype(np.int16), rate)
        sources.append(real_speech.Recording(path, f"words {index}", f"recorded:test{index}"))
    folder = real_speech.write_recorded_set(tmp_path / "corpus", sources, "real-test")
    rows = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]
    assert [(r["text"], r["voice"], r["aug"]) for r in rows] == [
        ("words 0", "recorded:test0", "clean"), ("words 1", "recorded:test1", "clean")]
    utterances = read_shard(folder / "features")
    assert [u.text for u in utterances] == ["words 0", "words 1"]
    for row, utterance in zip(rows, utterances, strict=True):
        pcm, rate = sf.read(folder / row["audio"], dtype="int16")
        assert rate == 16000 and pcm.ndim == 1
        assert abs(pcm.size - 16000) <= 1  # one second at any source rate
        np.testing.assert_array_equal(utterance.features, features_of(pcm))


def test_missing_alsa_clips_name_the_package(tmp_path):
    (tmp_path / "Front_Center.wav").write_bytes(b"")
    with pytest.raises(real_speech.RealSpeechError, match="apt-get install -y alsa-utils") as error:
        real_speech.alsa_recordings(tmp_path)
    assert "Front_Left.wav" in str(error.value) and "Front_Center.wav" not in str(error.value)


def test_alsa_clips_carry_their_channel_names(tmp_path):
    for name in real_speech.ALSA_CLIPS:
        (tmp_path / f"{name}.wav").write_bytes(b"")
    texts = [r.text for r in real_speech.alsa_recordings(tmp_path)]
    assert texts[0] == "front center" and texts[-1] == "side right" and len(texts) == 8


def test_missing_npm_is_one_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(real_speech.shutil, "which",
                        lambda tool: None if tool == "npm" else "/usr/bin/" + tool)
    monkeypatch.setattr(real_speech, "ALSA_FOLDER", tmp_path)
    for name in real_speech.ALSA_CLIPS:
        (tmp_path / f"{name}.wav").write_bytes(b"")
    assert real_speech.main(["--corpus", str(tmp_path / "corpus")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "npm is not installed" in err


@pytest.mark.skipif(shutil.which("sox") is None, reason="needs sox (apt-get install sox)")
def test_unreadable_clip_is_one_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(real_speech, "ALSA_FOLDER", tmp_path)
    for name in real_speech.ALSA_CLIPS:
        (tmp_path / f"{name}.wav").write_bytes(b"not a wav")
    monkeypatch.setattr(real_speech, "jfk_recording", lambda work: real_speech.Recording(
        tmp_path / "Front_Left.wav", "x", "recorded:jfk"))
    assert real_speech.main(["--corpus", str(tmp_path / "corpus")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sox could not read" in err and "Front_Center.wav" in err
