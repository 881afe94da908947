"""The ``real-speech`` set builder (tools/train/real_speech.py), on stand-in recordings."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from int4rt_train import real_speech
from int4rt_train.corpus import read_shard
from int4rt_train.data import features_of
from int4rt_train.text import split_of


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
    again = real_speech.write_recorded_set(tmp_path / "again", sources, "real-test")
    for row in rows:  # sox's dither is seeded: the same samples at every build
        assert (again / row["audio"]).read_bytes() == (folder / row["audio"]).read_bytes()


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
    monkeypatch.setattr(real_speech, "ASTERISK_TEXTS", tmp_path / "no-asterisk.txt.gz")
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
    monkeypatch.setattr(real_speech, "asterisk_recordings", lambda: [])
    assert real_speech.main(["--corpus", str(tmp_path / "corpus")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sox could not read" in err and "Front_Center.wav" in err


@pytest.mark.parametrize(("raw", "text"), [
    (" Please press 1 to mute, or 2 for more options.",
     "please press one to mute or two for more options"),
    (" Call-Forward on No Answer.", "call forward on no answer"),
    (" I'm sorry, but the user's mailbox is full...", "i'm sorry but the user's mailbox is full"),
    (" zero", "zero"),
    (" [ascending tones]", None),
    (" IAX (note: does not say \"2\")", None),
    (" Dial 500 to attempt an echo test.", None),
    (" 3D audio enabled", None),
    (" press * to toggle pause, press # to enter", None),
    (" M I S D N", None),
    (" A.M.", None),
    (" USB Radio", None),
])
def test_prompt_transcripts_are_kept_only_when_read_as_written(raw, text):
    assert real_speech.prompt_transcript(raw) == text


def test_asterisk_prompts_pair_wavs_with_their_transcripts(tmp_path):
    texts = tmp_path / "core-sounds-en.txt.gz"
    with gzip.open(texts, "wt") as out:
        out.write("; Core Asterisk Sounds in English\n\nactivated: Activated.\n"
                  "beep: [this is a simple beep tone]\ndigits/1: one\nletters/a: a\n"
                  "silence/1: 1 second of silence\nno-wav: Please try again.\n"
                  "vm-next: Press 6 to play the next message.\n")
    for name in ("activated", "beep", "digits/1", "letters/a", "silence/1", "vm-next"):
        (tmp_path / "sounds" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "sounds" / f"{name}.wav").write_bytes(b"")
    recordings = real_speech.asterisk_recordings(tmp_path / "sounds", texts)
    assert [(r.path.name, r.text, r.voice) for r in recordings] == [
        ("activated.wav", "activated", "recorded:allison"),
        ("1.wav", "one", "recorded:allison"),
        ("vm-next.wav", "press six to play the next message", "recorded:allison")]


def test_missing_asterisk_prompts_name_the_packages(tmp_path, monkeypatch, capsys):
    with pytest.raises(real_speech.RealSpeechError, match=real_speech.ASTERISK_INSTALL[5:]):
        real_speech.asterisk_recordings(tmp_path / "sounds", tmp_path / "missing.txt.gz")
    monkeypatch.setattr(real_speech, "ALSA_FOLDER", tmp_path)
    for name in real_speech.ALSA_CLIPS:
        (tmp_path / f"{name}.wav").write_bytes(b"")
    monkeypatch.setattr(real_speech, "jfk_recording", lambda work: real_speech.Recording(
        tmp_path / "Front_Left.wav", "x", "recorded:jfk"))
    monkeypatch.setattr(real_speech, "ASTERISK_TEXTS", tmp_path / "missing.txt.gz")
    monkeypatch.setattr(real_speech.shutil, "which", lambda tool: "/usr/bin/" + tool)
    assert real_speech.main(["--corpus", str(tmp_path / "corpus")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and real_speech.ASTERISK_INSTALL in err


def test_prompt_halves_split_by_transcript_and_keep_every_prompt():
    recordings = [real_speech.Recording(Path(f"p{i}.wav"), text, "recorded:allison")
                  for i, text in enumerate(["press one", "goodbye", "press one", "thank you",
                                            "please hold", "zero", "one", "two", "three"])]
    halves = real_speech.prompt_halves(recordings)
    assert list(halves) == ["recorded-prompts-adapt", "recorded-prompts-test"]
    assert sorted(r.path.name for half in halves.values() for r in half) == \
        sorted(r.path.name for r in recordings)
    for name, half in halves.items():
        wanted = "test" if name.endswith("test") else "train"
        assert all(split_of(r.text, 0, 0.0, 0.5) == wanted for r in half)
    assert all(half for half in halves.values())
    where = {r.path.name: name for name, half in halves.items() for r in half}
    assert where["p0.wav"] == where["p2.wav"]  # the same text, the same half
