"""Manifests in: int4rt JSONL, NeMo JSONL, lhotse cuts and Kaldi data directories → items.

DECODING.md, "Manifests", specifies each format, how it is detected, how relative paths resolve
and every error. An item is one utterance: a file, or a segment of one (offset and duration in
seconds, read without cutting the file first). Every bad entry raises one :class:`Int4rtError`
naming the file, the line and what to do.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from int4rt.errors import Int4rtError
from int4rt.options import MANIFEST_FORMATS, ManifestFormat


class ManifestError(Int4rtError, ValueError):
    """A manifest that cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class Item:
    """One utterance: the audio as given, the path to read, an optional reference and segment.

    ``id`` names a segment (Kaldi utterance, lhotse cut, NeMo offset entry); ``key`` is what a
    resumed run matches an output line by. ``offset``/``duration`` are seconds (None: to the
    end); ``channel`` picks one channel of a multi-channel file (None: the channel average).
    """

    audio: str
    path: str
    reference: str | None = None
    id: str | None = None
    offset: float = 0.0
    duration: float | None = None
    channel: int | None = None

    @property
    def key(self) -> str:
        """The output line's identity: ``id`` when the item has one, else ``audio``."""
        return self.id if self.id is not None else self.audio

    @property
    def is_segment(self) -> bool:
        """Whether only part of the file (or one channel) is read."""
        return self.offset != 0.0 or self.duration is not None or self.channel is not None


def read_manifest(path: str | Path, manifest_format: ManifestFormat = "auto") -> list[Item]:
    """The items of ``path`` in file order; ``manifest_format`` one of ``MANIFEST_FORMATS``."""
    if manifest_format not in MANIFEST_FORMATS:
        raise ManifestError(f"--manifest-format must be one of {', '.join(MANIFEST_FORMATS)}, "
                            f"got {manifest_format!r}")
    source = Path(path)
    if not source.exists():
        raise ManifestError(f"manifest {source}: no such file or directory; check the path")
    kind = detect_format(source) if manifest_format == "auto" else manifest_format
    if kind == "kaldi":
        items = _kaldi(source.parent if source.name == "wav.scp" else source)
        _check_unique(items, source)
        return items
    if source.is_dir():
        raise ManifestError(f"manifest {source} is a directory; only a Kaldi data directory "
                            "(with wav.scp) can be given as a directory")
    reader = {"int4rt": _int4rt_entry, "nemo": _nemo_entry, "lhotse": _lhotse_entry}[kind]
    items = [reader(entry, where, source.parent) for entry, where in _json_lines(source)]
    if kind != "int4rt":  # the original format keeps its behaviour: repeats are decoded twice
        _check_unique(items, source)
    return items


def detect_format(source: Path) -> str:
    """``kaldi`` for a directory or ``wav.scp``, else from the first JSON line's keys."""
    if source.is_dir() or source.name == "wav.scp":
        return "kaldi"
    for entry, where in _json_lines(source):
        if "recording" in entry or entry.get("type") == "MonoCut":
            return "lhotse"
        if "audio_filepath" in entry:
            return "nemo"
        if "audio" in entry:
            return "int4rt"
        raise ManifestError(f"{where}: cannot tell the manifest format (no 'audio', "
                            "'audio_filepath' or 'recording' key); pass --manifest-format")
    raise ManifestError(f"manifest {source} has no entries")


def _json_lines(source: Path) -> Iterator[tuple[dict, str]]:
    """(object, "file:line") for each non-blank line, streamed; ``.gz`` files decompressed."""
    try:
        with (gzip.open(source, "rt", encoding="utf-8") if source.suffix == ".gz"
              else source.open(encoding="utf-8")) as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    yield _json_object(line, f"{source}:{number}"), f"{source}:{number}"
    except (OSError, UnicodeDecodeError, EOFError) as error:
        raise ManifestError(f"cannot read manifest {source}: {error}") from None


def _json_object(line: str, where: str) -> dict:
    try:
        entry = json.loads(line)
    except json.JSONDecodeError as error:
        raise ManifestError(f"{where}: not JSON ({error.msg})") from None
    if not isinstance(entry, dict):
        raise ManifestError(f"{where}: expected a JSON object per line")
    return entry


def _resolve(name: str, base: Path) -> str:
    path = Path(name)
    return str(path if path.is_absolute() else base / path)


def _text(entry: dict, key: str, where: str) -> str | None:
    value = entry.get(key)
    if value is not None and not isinstance(value, str):
        raise ManifestError(f'{where}: "{key}" must be a string')
    return value


def _seconds(entry: dict, key: str, where: str, *, positive: bool) -> float | None:
    value = entry.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(
            value) or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise ManifestError(f'{where}: "{key}" must be a number of seconds {bound}, '
                            f"got {value!r}")
    return float(value)


def _int4rt_entry(entry: dict, where: str, base: Path) -> Item:
    audio = entry.get("audio")
    if not isinstance(audio, str) or not audio:
        raise ManifestError(f'{where}: needs an "audio" string')
    return Item(audio, _resolve(audio, base), _text(entry, "text", where))


def _nemo_entry(entry: dict, where: str, base: Path) -> Item:
    """NeMo: ``audio_filepath``, ``text``; ``offset`` present → the segment [offset, +duration]."""
    audio = entry.get("audio_filepath")
    if not isinstance(audio, str) or not audio:
        raise ManifestError(f'{where}: needs an "audio_filepath" string (NeMo manifest)')
    duration = _seconds(entry, "duration", where, positive=True)
    offset = _seconds(entry, "offset", where, positive=False)
    reference = _text(entry, "text", where)
    if offset is None:
        return Item(audio, _resolve(audio, base), reference)
    if duration is None:
        raise ManifestError(f'{where}: "offset" needs a "duration" (NeMo reads duration '
                            "seconds from offset)")
    return Item(audio, _resolve(audio, base), reference, f"{audio}@{offset:g}+{duration:g}",
                offset, duration)


def _lhotse_entry(entry: dict, where: str, base: Path) -> Item:
    """A lhotse MonoCut with its recording inline: one file source, the cut's start/duration."""
    cut_type = entry.get("type", "MonoCut")
    if cut_type != "MonoCut":
        raise ManifestError(f"{where}: lhotse cut type {cut_type!r} is not supported; only "
                            "MonoCut (e.g. cuts.to_eager() after cuts.trim_to_supervisions())")
    cut_id = entry.get("id")
    if not isinstance(cut_id, str) or not cut_id:
        raise ManifestError(f'{where}: a lhotse cut needs an "id" string')
    recording = entry.get("recording")
    if not isinstance(recording, dict):
        raise ManifestError(f'{where}: cut {cut_id!r} has no inline "recording"; save the cut '
                            "set with its recordings (CutSet.to_file), not a lazy reference")
    sources = recording.get("sources")
    if not isinstance(sources, list) or len(sources) != 1 or not isinstance(sources[0], dict):
        raise ManifestError(f"{where}: cut {cut_id!r}: recordings with exactly one source are "
                            "supported; convert multi-file recordings to one file first")
    source = sources[0]
    if source.get("type") != "file" or not isinstance(source.get("source"), str):
        raise ManifestError(f"{where}: cut {cut_id!r}: audio source type "
                            f"{source.get('type')!r} is not supported (piped commands, URLs "
                            "and in-memory audio are refused); use a plain file path")
    start = _seconds(entry, "start", where, positive=False) or 0.0
    duration = _seconds(entry, "duration", where, positive=True)
    if duration is None:
        raise ManifestError(f'{where}: cut {cut_id!r} needs a "duration"')
    channel = entry.get("channel", 0)
    channels = source.get("channels", [0])
    if isinstance(channel, list):
        if len(channel) != 1:
            raise ManifestError(f"{where}: cut {cut_id!r} has channels {channel}; only "
                                "single-channel cuts are supported")
        channel = channel[0]
    if isinstance(channel, bool) or not isinstance(channel, int) or not isinstance(
            channels, list) or channel not in channels:
        raise ManifestError(f"{where}: cut {cut_id!r}: channel {channel!r} is not one of the "
                            f"source's channels {channels!r}")
    texts = [_text(sup, "text", where) for sup in entry.get("supervisions") or []
             if isinstance(sup, dict)]
    words = [text for text in texts if text]
    reference = " ".join(words) if words else None
    audio = source["source"]
    return Item(audio, _resolve(audio, base), reference, cut_id, start, duration,
                channels.index(channel) if len(channels) > 1 else None)


def _kaldi(directory: Path) -> list[Item]:
    """A Kaldi data directory: ``wav.scp``, optional ``text`` and ``segments``."""
    wav_scp = directory / "wav.scp"
    if not wav_scp.is_file():
        raise ManifestError(f"Kaldi data directory {directory}: no wav.scp")
    recordings = {}
    for key, value, where in _kaldi_table(wav_scp):
        if value.endswith("|") or value.startswith("-") or " " in value.strip():
            raise ManifestError(f"{where}: piped commands are not supported ({value!r}); "
                                "write the audio to files and list plain paths in wav.scp")
        if _is_ark_offset(value):
            raise ManifestError(f"{where}: archive offsets ({value!r}) are not supported; "
                                "list plain audio file paths in wav.scp")
        recordings[key] = value
    texts = {}
    if (directory / "text").is_file():
        texts = {key: value for key, value, _ in _kaldi_table(directory / "text", empty=True)}
    segments_file = directory / "segments"
    if not segments_file.is_file():
        return [Item(path, path, texts.get(key), key) for key, path in recordings.items()]
    items = []
    for key, value, where in _kaldi_table(segments_file):
        fields = value.split()
        if len(fields) != 3:
            raise ManifestError(f"{where}: expected 'utt-id recording-id start end'")
        recording, start_text, end_text = fields
        if recording not in recordings:
            raise ManifestError(f"{where}: recording {recording!r} is not in wav.scp")
        try:
            start, end = float(start_text), float(end_text)
        except ValueError:
            raise ManifestError(f"{where}: start and end must be seconds") from None
        if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or (
                end != -1 and end <= start):
            raise ManifestError(f"{where}: segment [{start_text}, {end_text}] is not a "
                                "range of seconds with 0 <= start < end (or end = -1)")
        path = recordings[recording]
        items.append(Item(path, path, texts.get(key), key, start,
                          None if end == -1 else end - start))
    return items


def _is_ark_offset(value: str) -> bool:
    head, _, tail = value.rpartition(":")
    return bool(head) and tail.isdigit()


def _kaldi_table(path: Path, *, empty: bool = False) -> Iterator[tuple[str, str, str]]:
    """(key, rest of line, "file:line") of a Kaldi table file."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise ManifestError(f"cannot read {path}: {error}") from None
    seen: set[str] = set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        key, _, rest = line.strip().partition(" ")
        rest = rest.strip()
        if not rest and not empty:
            raise ManifestError(f"{path}:{number}: expected 'key value', got {line.strip()!r}")
        if key in seen:
            raise ManifestError(f"{path}:{number}: {key!r} appears twice; each key must be "
                                "listed once")
        seen.add(key)
        yield key, rest, f"{path}:{number}"


def _check_unique(items: list[Item], source: Path) -> None:
    seen: set[str] = set()
    for item in items:
        if item.key in seen:
            raise ManifestError(f"manifest {source}: {item.key!r} appears twice; each "
                                "utterance must be listed once (give segments distinct ids)")
        seen.add(item.key)
