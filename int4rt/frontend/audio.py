"""Reading audio: a file or an array → mono float32 samples at the model's rate.

The steps, their order and every error case are specified in docs/DECODING.md, "Front end"
(subsections "Reading audio" and "Errors"). Bad input raises ``AudioError`` with a message
that names the file, the problem and what to do; no soundfile or NumPy exception escapes.
"""

from __future__ import annotations

import errno
import math
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from int4rt.errors import Int4rtError

CONVERT_HINT = "convert it, e.g. `ffmpeg -i INPUT -ac 1 OUTPUT.wav`"

# Containers recognised by their first bytes (offset, magic, name): DECODING.md, Errors.
_UNSUPPORTED_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (4, b"ftyp", "MP4/M4A"),
    (0, b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", "WMA/ASF"),
    (0, b"\x1a\x45\xdf\xa3", "WebM/Matroska"),
    (0, b"#!AMR", "AMR"),
    (0, b"ID3", "MP3 with an ID3 tag"),
)
_READABLE_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"RIFF", "WAV"),
    (0, b"RF64", "WAV (RF64)"),
    (0, b"FORM", "AIFF"),
    (0, b"fLaC", "FLAC"),
    (0, b"OggS", "Ogg"),
)
_RAW_SUFFIXES = frozenset({".raw", ".pcm"})

# Resource limits (DECODING.md, "Limits"): checked from the header before samples are read.
MIN_SOURCE_RATE = 1_000  # Hz, lowest input sample rate accepted
MAX_SOURCE_RATE = 384_000  # Hz, highest input sample rate accepted
MAX_DURATION_SECONDS = 4 * 3600  # longest input accepted, in seconds
MAX_ABS_SAMPLE = 1e6  # float samples beyond this are not audio (float files hold [-1, 1])


class AudioError(Int4rtError, ValueError):
    """Audio that cannot be read or used; the message says which input, why and what to do."""


def load_audio(source: str | os.PathLike[str] | np.ndarray, sample_rate: int, *,
               source_rate: int | None = None, min_samples: int = 1) -> np.ndarray:
    """Mono float32 samples of ``source`` at ``sample_rate`` Hz (DECODING.md, Reading audio).

    ``source`` is a path to any file libsndfile reads (WAV, FLAC, OGG, ...) or an array of
    samples ``[N]`` or ``[N, channels]`` whose rate ``source_rate`` must then be given. Integer
    samples map to [-1, 1) (divided by 2^(bits-1)), float samples are kept as they are;
    channels are averaged; the rate is converted with ``scipy.signal.resample_poly`` by the
    exact ratio of the two rates. ``min_samples`` (the analysis window length, see
    ``frame_geometry``) is the fewest samples accepted after resampling.
    """
    target = _positive_int(sample_rate, "sample_rate")
    if isinstance(source, np.ndarray):
        name = "audio array"
        if source_rate is None:
            raise AudioError(f"{name}: source_rate is required with an array; pass its sample "
                             "rate in Hz, e.g. load_audio(samples, 16000, source_rate=44100)")
        rate = check_source_rate(_positive_int(source_rate, "source_rate"), name)
        samples = _array_samples(source)
        check_duration(samples.shape[0], rate, name)
    elif isinstance(source, (str, os.PathLike)):
        name = str(source)
        samples, rate = _read_file(Path(source))
    else:
        raise AudioError(f"cannot read audio from a {type(source).__name__}; pass a file path "
                         "or a NumPy array of samples")
    if samples.size == 0:
        raise AudioError(f"{name}: contains no audio samples; supply a non-empty recording")
    check_sample_values(samples, name, 0)
    mono = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    if rate != target:
        from scipy.signal import resample_poly  # imported here: scipy.signal takes seconds

        common = math.gcd(rate, target)

        mono = resample_poly(mono, target // common, rate // common)
    if mono.shape[0] < min_samples:
        raise AudioError(
            f"{name}: too short: {mono.shape[0]} samples at {target} Hz, fewer than one "
            f"analysis window of {min_samples} samples ({1000 * min_samples / target:g} ms); "
            "supply a longer recording")
    return np.ascontiguousarray(mono, dtype=np.float32)


def check_source_rate(rate: int, name: str) -> int:
    """``rate`` if it lies in [MIN_SOURCE_RATE, MAX_SOURCE_RATE] Hz, else ``AudioError``."""
    if not MIN_SOURCE_RATE <= rate <= MAX_SOURCE_RATE:
        raise AudioError(f"{name}: sample rate {rate} Hz is outside the accepted {MIN_SOURCE_RATE}"
                         f" to {MAX_SOURCE_RATE} Hz; resample it, e.g. `ffmpeg -i INPUT -ar 16000 "
                         "OUTPUT.wav`")
    return rate


def check_duration(frames: int, rate: int, name: str) -> None:
    """``AudioError`` if ``frames`` samples at ``rate`` Hz last longer than the limit."""
    if frames > MAX_DURATION_SECONDS * rate:
        raise AudioError(f"{name}: {frames / rate:.0f} s of audio is longer than the limit of "
                         f"{MAX_DURATION_SECONDS} s per input; split it into shorter files")


def check_sample_values(samples: np.ndarray, name: str, offset: int) -> None:
    """``AudioError`` at the first NaN, infinite or implausibly large sample.

    ``offset`` is the index of ``samples``' first row in the whole input (for the message).
    """
    bad = ~(np.abs(samples) <= MAX_ABS_SAMPLE)
    if bad.any():
        index, channel = np.argwhere(bad)[0]
        value = samples[index, channel]
        what = "NaN or infinite samples" if not np.isfinite(value) else \
            f"samples beyond ±{MAX_ABS_SAMPLE:g} (e.g. {value:g})"
        raise AudioError(f"{name}: contains {what} (first at sample {offset + index}, "
                         f"channel {channel}); repair or re-export the audio")


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise AudioError(f"{name} must be a positive integer number of Hz, got {value!r}")
    return int(value)


def _array_samples(source: np.ndarray) -> np.ndarray:
    """float64 ``[N, channels]`` from an array source, integers scaled to [-1, 1)."""
    if source.ndim not in (1, 2):
        raise AudioError(f"audio array: expected shape [samples] or [samples, channels], got "
                         f"{list(source.shape)}")
    if source.ndim == 2 and 0 < source.shape[0] < source.shape[1]:
        raise AudioError(f"audio array: shape {list(source.shape)} has more channels than "
                         "samples; arrays are [samples, channels], transpose it")
    if source.dtype in (np.int16, np.int32):
        values = source.astype(np.float64) / 2.0 ** (8 * source.dtype.itemsize - 1)
    elif np.issubdtype(source.dtype, np.floating):
        values = source.astype(np.float64)
    else:
        raise AudioError(f"audio array: unsupported dtype {source.dtype}; use float32/float64 "
                         "samples in [-1, 1] or int16/int32 PCM")
    return values[:, None] if values.ndim == 1 else values


def _read_file(path: Path) -> tuple[np.ndarray, int]:
    """float64 ``[N, channels]`` and the rate of an audio file; every failure as AudioError."""
    head, _ = probe_audio_file(path)
    try:
        samples, rate = sf.read(path, dtype="float64", always_2d=True)
    except (sf.SoundFileError, RuntimeError, TypeError, ValueError, OSError) as exc:
        raise AudioError(_decode_failure(path, head, exc)) from exc
    return samples, int(rate)


def probe_audio_file(path: Path, *, whole: bool = True) -> tuple[bytes, Any]:
    """The first bytes and the header of an audio file, after every check that needs no
    samples: the path (``check_audio_path``), an empty file, a file libsndfile cannot open,
    the sample rate and the duration limits (DECODING.md, Errors and Limits). ``whole``
    False: only a segment is read, whose caller checks its duration instead of the file's.
    """
    size = check_audio_path(path)
    try:
        with path.open("rb") as file:
            head = file.read(16)
    except OSError as exc:
        raise AudioError(f"{path}: cannot be read ({exc.strerror or exc}); check its "
                         "permissions") from exc
    if size == 0:
        raise AudioError(f"{path}: file is empty (0 bytes); re-export or re-record it")
    try:
        info = sf.info(path)
    except (sf.SoundFileError, RuntimeError, TypeError, ValueError, OSError) as exc:
        raise AudioError(_decode_failure(path, head, exc)) from exc
    check_source_rate(int(info.samplerate), str(path))
    if whole:
        check_duration(int(info.frames), int(info.samplerate), str(path))
    return head, info


def check_audio_path(path: Path) -> int:
    """The size of the regular file at ``path``; ``AudioError`` saying why it cannot be read.

    One ``stat`` before any ``open``: a missing file, a symlink loop, a name too long, a
    directory, a FIFO or device, or a raw PCM suffix are refused (DECODING.md, Errors).
    """
    try:
        info = os.stat(path)
    except OSError as exc:
        reasons = {errno.ENOENT: "no such file; check the path",
                   errno.ELOOP: "a loop of symbolic links; fix the link",
                   errno.ENAMETOOLONG: "file name too long; shorten the path",
                   errno.EACCES: "permission denied; check the permissions of its folders"}
        reason = reasons.get(exc.errno, f"cannot be read ({exc.strerror or exc})")
        raise AudioError(f"{path}: {reason}") from None
    except (ValueError, UnicodeError) as exc:
        raise AudioError(f"{path!r}: not a usable file name ({exc})") from None
    if stat.S_ISDIR(info.st_mode):
        raise AudioError(f"{path}: is a directory, not an audio file; pass a file")
    if not stat.S_ISREG(info.st_mode):
        raise AudioError(f"{path}: not a regular file (a FIFO, socket or device); copy the "
                         "audio to a file first")
    if path.suffix.lower() in _RAW_SUFFIXES:
        raise AudioError(f"{path}: headerless raw PCM is not supported (its rate and sample "
                         "format are unknown); convert it stating both, e.g. `ffmpeg -f s16le "
                         "-ar 16000 -ac 1 -i INPUT OUTPUT.wav`")
    return info.st_size


def _decode_failure(path: Path, head: bytes, exc: Exception) -> str:
    """The message for a file libsndfile rejected, from its first bytes and the error."""
    detail = str(exc).split(": ", 1)[-1] if "Error opening" in str(exc) else str(exc)
    for offset, magic, kind in _UNSUPPORTED_SIGNATURES:
        if head[offset:offset + len(magic)] == magic:
            return (f"{path}: unsupported audio format ({kind}; libsndfile: {detail}); "
                    f"{CONVERT_HINT}")
    if len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return (f"{path}: unsupported audio format (raw MPEG/AAC frames; libsndfile: "
                f"{detail}); {CONVERT_HINT}")
    for offset, magic, kind in _READABLE_SIGNATURES:
        if head[offset:offset + len(magic)] == magic:
            return (f"{path}: a {kind} file that cannot be decoded (libsndfile: {detail}); it "
                    f"is truncated, damaged or uses an encoding libsndfile lacks; {CONVERT_HINT}")
    return (f"{path}: not an audio file (libsndfile: {detail}); expected WAV, FLAC, OGG or "
            f"another format libsndfile reads; {CONVERT_HINT}")
