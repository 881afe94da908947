"""The default model bundle shipped in the package (``int4rt/default_model/``).

DECODING.md, "The default model". A bundle is a folder with ``bundle.json`` (format, files
with their SHA-256, provenance, the recommended decoding settings, the shipped clips), the
INT4 RNN-T file, optional external and source LM files, and ``clips.jsonl`` (short WAV clips
with their transcripts, a manifest ``int4rt transcribe --manifest`` reads). It is written by
``python -m int4rt_train.ship`` (docs/TRAINING.md §7). ``load_bundle`` checks it whole: a
missing or altered file is one :class:`Int4rtError` saying how to get a good bundle back.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from int4rt.errors import Int4rtError

BUNDLE_DIR = Path(__file__).parent / "default_model"
BUNDLE_FORMAT = "int4rt-default-model"
BUNDLE_VERSION = 1
LM_ROLES = ("lm", "source_lm")  # bundle.json keys of the external and the source LM
DECODING_KEYS = ("method", "beam", "lm_weight", "source_lm_weight", "length_reward",
                 "blank_penalty")
_REPAIR = ("reinstall int4rt, or rebuild the bundle with `python -m int4rt_train.ship` "
           "(docs/TRAINING.md §7)")


@dataclass(frozen=True)
class Clip:
    """A shipped clip: its WAV file, reference transcript, voice, id and SHA-256."""

    audio: Path
    text: str
    voice: str
    id: str
    sha256: str


@dataclass(frozen=True)
class Bundle:
    """A checked bundle folder and its ``bundle.json``."""

    folder: Path
    info: dict[str, Any]

    @property
    def model_path(self) -> Path:
        """The INT4 RNN-T model file."""
        return self.folder / self.info["model"]["file"]

    def lm_path(self, role: str) -> Path | None:
        """The file of the ``lm`` (external) or ``source_lm``, None when none ships."""
        entry = self.info.get(role)
        return None if entry is None else self.folder / entry["file"]

    @property
    def decoding(self) -> dict[str, Any]:
        """The recommended settings as ``Recognizer.transcribe`` keywords, with the path of
        each LM they give a weight (an LM that ships but is not recommended is left out).
        """
        settings = {key: self.info["decoding"][key] for key in DECODING_KEYS
                    if key in self.info["decoding"]}
        for role in LM_ROLES:
            path = self.lm_path(role)
            if path is not None and settings.get(f"{role}_weight", 0) > 0:
                settings[role] = str(path)
        return settings

    @property
    def clips_manifest(self) -> Path:
        """``clips.jsonl``: the shipped clips as a manifest (audio paths relative to it)."""
        return self.folder / self.info["clips"]["manifest"]

    @property
    def clips(self) -> list[Clip]:
        """The shipped clips, in manifest order."""
        rows = [json.loads(line) for line in
                self.clips_manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
        return [Clip(self.folder / row["audio"], row["text"], row["voice"], row["id"],
                     row["sha256"]) for row in rows]

    def describe(self) -> str:
        """One line: the model's provenance, the recommended decoding and the LMs shipped."""
        model = self.info["model"]
        settings = {key: value for key, value in self.info["decoding"].items()
                    if key in DECODING_KEYS}
        lms = [f"{self.info[role]['file']} (weight {settings.get(f'{role}_weight', 0)})"
               for role in LM_ROLES if self.info.get(role)]
        origin = f" of a run from {model['init_from']}" if model.get("init_from") else ""
        return (f"{model['file']} ({model.get('config')}, INT4, step {model.get('step')}"
                f"{origin}, {model.get('audio_hours')} h of audio seen); decoding "
                + " ".join(f"{key}={value}" for key, value in settings.items())
                + f"; LMs shipped: {', '.join(lms) if lms else 'none'}")


def merge_settings(recommended: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """``given`` decoding settings over ``recommended`` ones. An LM and its weight go together:
    giving ``lm`` or ``lm_weight`` (``source_lm`` or ``source_lm_weight``) drops both
    recommended ones, so a weight never applies to another LM than the one it was chosen for.
    """
    merged = dict(recommended)
    for pair in (("lm", "lm_weight"), ("source_lm", "source_lm_weight")):
        if any(key in given for key in pair):
            for key in pair:
                merged.pop(key, None)
    merged.update(given)
    return merged


def file_digest(path: Path) -> str:
    """SHA-256 of a file, hex."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_bundle(folder: str | Path | None = None) -> Bundle:
    """The bundle at ``folder`` (default: the one shipped in the package), checked.

    Every listed file must exist with its recorded SHA-256; otherwise :class:`Int4rtError`.
    """
    root = BUNDLE_DIR if folder is None else Path(folder)
    where = f"default model bundle {str(root)!r}"
    try:
        info = json.loads((root / "bundle.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise Int4rtError(f"{where} has no bundle.json (no default model is installed); "
                          f"give a model file, or {_REPAIR}") from None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise Int4rtError(f"{where}: bundle.json is unreadable ({error}); {_REPAIR}") from None
    if not isinstance(info, dict) or info.get("format") != BUNDLE_FORMAT:
        raise Int4rtError(f"{where}: bundle.json is not an {BUNDLE_FORMAT} file; {_REPAIR}")
    if info.get("version") != BUNDLE_VERSION:
        raise Int4rtError(f"{where}: bundle version {info.get('version')!r}, this int4rt reads "
                          f"version {BUNDLE_VERSION}; {_REPAIR}")
    try:
        entries = [info["model"], *(info[role] for role in LM_ROLES if info.get(role))]
        files = [(entry["file"], entry["sha256"]) for entry in entries]
        files.append((info["clips"]["manifest"], info["clips"]["sha256"]))
        if not isinstance(info["decoding"], dict):
            raise TypeError("decoding must be an object")
    except (KeyError, TypeError) as error:
        raise Int4rtError(f"{where}: bundle.json lacks {error}; {_REPAIR}") from None
    for name, digest in files:
        path = root / name
        if not path.is_file():
            raise Int4rtError(f"{where}: {name} is missing; {_REPAIR}")
        if file_digest(path) != digest:
            raise Int4rtError(f"{where}: {name} does not match its SHA-256 in bundle.json "
                              f"(altered or truncated); {_REPAIR}")
    bundle = Bundle(root, info)
    for clip in bundle.clips:
        if not clip.audio.is_file() or file_digest(clip.audio) != clip.sha256:
            raise Int4rtError(f"{where}: clip {clip.audio.name} is missing or altered; "
                              f"{_REPAIR}")
    return bundle
