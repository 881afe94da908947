"""Corpus building blocks that need no synthesizer: text cleaning, splits, noise, shards."""

from __future__ import annotations

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


def test_reserved_voices_are_never_training_voices() -> None:
    rng = np.random.default_rng(0)
    for _ in range(2000):
        voice = synth.training_voice(rng)
        assert not synth.is_reserved(voice)
        assert voice.name.partition("+")[2] not in synth.DEV_VARIANTS
    assert synth.is_reserved(synth.Voice("flite", "slt"))
    assert synth.is_reserved(synth.Voice("espeak", "en-us+klatt4"))


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
    write_shard(tmp_path / "s-0", [{"id": "a", "text": "x y"}, {"id": "b", "text": "z"}], feats)
    utts = read_shard(tmp_path / "s-0")
    assert [(u.uid, u.text) for u in utts] == [("a", "x y"), ("b", "z")]
    np.testing.assert_array_equal(utts[0].features, feats[0])
    np.testing.assert_array_equal(utts[1].features, feats[1])
