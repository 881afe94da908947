"""Speech synthesis with Debian ``espeak-ng`` and ``flite``, resampled to 16 kHz by ``sox``.

A :class:`Voice` names the synthesizer and its settings; :func:`synthesize` runs
``synthesizer | sox`` and returns float32 samples in [-1, 1). The voice pools keep the
reserved evaluation voices (flite ``slt`` and ``rms``, espeak-ng variants ``f2``, ``f5``,
``m3``, ``klatt4``, every festival voice) out of training, and hold out two more espeak-ng
variants for the development set.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
ACCENTS = ("en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
           "en-029", "en-us-nyc")
RESERVED_VARIANTS = ("f2", "f5", "m3", "klatt4")
RESERVED_FLITE = ("slt", "rms")
DEV_VARIANTS = ("m6", "f4")
COMMON_VARIANTS = ("", "m1", "m2", "m4", "m5", "m7", "m8", "f1", "f3", "klatt", "klatt2",
                   "klatt3", "klatt5", "klatt6")
OTHER_VARIANTS = ("adam", "anika", "announcer", "aunty", "belinda", "benjamin", "boris",
                  "caleb", "david", "ed", "edward", "grandma", "grandpa", "gustave", "iven",
                  "iven2", "iven3", "john", "linda", "max", "michel", "norbert", "paul",
                  "quincy", "rob", "robert", "shelby", "steph", "travis", "victor", "croak",
                  "whisper", "Alex", "Andy", "Annie", "Denis", "Gene", "Jacky", "Lee", "Mike",
                  "Storm", "antonio", "marcelo", "pablo", "sandro")
TRAIN_FLITE = ("kal", "kal16", "awb")
FLITE_SHARE = 0.4
FLITE_F0_HZ = (85, 240)
REQUIRED_TOOLS = {"espeak-ng": "espeak-ng", "flite": "flite", "sox": "sox",
                  "bible": "bible-kjv"}


class MissingToolError(RuntimeError):
    """A synthesis or text tool is not installed."""


def check_tools() -> None:
    """Raise with the ``apt-get`` line when espeak-ng, flite, sox, bible or fortunes is missing."""
    missing = [package for tool, package in REQUIRED_TOOLS.items() if shutil.which(tool) is None]
    if not Path("/usr/share/games/fortunes").is_dir():
        missing.append("fortunes")
    if missing:
        raise MissingToolError(
            "missing corpus tools; install them with: sudo apt-get install -y "
            + " ".join(sorted(set(missing))))


def flite_voices() -> tuple[str, ...]:
    """The voices ``flite -lv`` lists (an unknown ``-voice`` silently falls back to another)."""
    listing = subprocess.run(["flite", "-lv"], check=True, capture_output=True, text=True).stdout
    return tuple(listing.partition(":")[2].split())


@dataclass(frozen=True)
class Voice:
    """One synthesizer setting: ``engine`` 'espeak' (voice 'accent+variant') or 'flite'."""

    engine: str
    name: str
    rate: int = 175
    pitch: int = 50
    f0: int = 0

    def label(self) -> str:
        """A short name for manifests, e.g. ``espeak:en-us+m1:s170:p55`` or ``flite:kal:f0190``."""
        if self.engine == "flite":
            return f"flite:{self.name}" + (f":f0{self.f0}" if self.f0 else "")
        return f"espeak:{self.name}:s{self.rate}:p{self.pitch}"


def is_reserved(voice: Voice) -> bool:
    """True for a voice reserved for evaluation (never allowed in training audio)."""
    if voice.engine == "flite":
        return voice.name in RESERVED_FLITE
    variant = voice.name.partition("+")[2]
    return voice.engine != "espeak" or variant in RESERVED_VARIANTS


def espeak_voice(rng: np.random.Generator, variants: tuple[str, ...]) -> Voice:
    """An espeak-ng voice: random accent, one of ``variants``, rate 130–210, pitch 25–75."""
    accent = str(rng.choice(ACCENTS))
    variant = str(rng.choice(variants))
    name = f"{accent}+{variant}" if variant else accent
    return Voice("espeak", name, int(rng.integers(130, 211)), int(rng.integers(25, 76)))


def training_voice(rng: np.random.Generator) -> Voice:
    """A training voice: 40 % flite, else espeak-ng (70 % common variants).

    A flite voice (kal, kal16, awb: all male) gets a mean pitch of 85–240 Hz 70 % of the time,
    so that the model hears flite's diphone and clustergen timbre at female pitches too.
    """
    if rng.random() < FLITE_SHARE:
        name = str(rng.choice(TRAIN_FLITE))
        f0 = int(rng.integers(FLITE_F0_HZ[0], FLITE_F0_HZ[1] + 1)) if rng.random() < 0.7 else 0
        return Voice("flite", name, f0=f0)
    pool = COMMON_VARIANTS if rng.random() < 0.7 else OTHER_VARIANTS
    return espeak_voice(rng, pool)


def synthesize(text: str, voice: Voice, sox_effects: tuple[str, ...] = (),
               band_effects: tuple[str, ...] = ()) -> np.ndarray:
    """Float32 samples at 16 kHz of ``text`` spoken by ``voice``: ``sox_effects`` at the
    synthesizer's rate, then resampling to 16 kHz, then ``band_effects``."""
    with tempfile.TemporaryDirectory(dir=_scratch()) as scratch:
        wav = Path(scratch) / "tts.wav"
        if voice.engine == "espeak":
            command = ["espeak-ng", "-v", voice.name, "-s", str(voice.rate), "-p",
                       str(voice.pitch), "-w", str(wav), text]
        else:
            command = ["flite", "-voice", voice.name, "-t", text, "-o", str(wav)]
            if voice.f0:
                command += ["--setf", f"int_f0_target_mean={voice.f0}",
                            "--setf", f"int_f0_target_stddev={max(voice.f0 // 6, 10)}"]
        subprocess.run(command, check=True, capture_output=True)
        raw = subprocess.run(
            ["sox", "-V1", str(wav), "-t", "raw", "-e", "signed", "-b", "16", "-c", "1", "-",
             "vol", "0.5", *sox_effects, "rate", str(SAMPLE_RATE), *band_effects,
             "gain", "-n", "-1"],
            check=True, capture_output=True).stdout
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0


def _scratch() -> str | None:
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() else None
