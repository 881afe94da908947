"""Reading part of an audio file: [offset, offset + duration) seconds, optionally one channel.

DECODING.md, "Manifests" (Segments): only the segment's samples are read from the file (no cut
files first); then the same checks, channel mixing and resampling as ``load_audio``. A segment
that starts or ends beyond the file is an error, never clipped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from int4rt.frontend.audio import AudioError, load_audio


def load_segment(path: str | Path, sample_rate: int, *, offset: float = 0.0,
                 duration: float | None = None, channel: int | None = None,
                 min_samples: int = 1) -> np.ndarray:
    """Mono float32 samples of a file's segment at ``sample_rate`` Hz.

    ``offset`` and ``duration`` are seconds (``duration`` None: to the end of the file); the
    first sample read is round(offset · rate) at the file's own rate, and round(duration ·
    rate) samples are read. ``channel`` keeps that channel only (None: the average).
    """
    name = f"{path} [{offset:g} s + {'end' if duration is None else f'{duration:g} s'}]"
    try:
        info = sf.info(str(path))
    except (sf.SoundFileError, RuntimeError, TypeError, ValueError, OSError):
        load_audio(path, sample_rate, min_samples=min_samples)  # raises the precise error
        raise AudioError(f"{path}: cannot be read; {name}") from None
    rate, total = int(info.samplerate), int(info.frames)
    start = round(offset * rate)
    stop = total if duration is None else start + round(duration * rate)
    if start >= total or stop > total:
        raise AudioError(f"{name}: the segment ends beyond the file ({total / rate:g} s, "
                         f"{total} samples at {rate} Hz); fix the manifest's offset/duration")
    if channel is not None and not 0 <= channel < info.channels:
        raise AudioError(f"{name}: channel {channel} requested, the file has {info.channels}")
    try:
        samples, _ = sf.read(str(path), start=start, stop=stop, dtype="float64", always_2d=True)
    except (sf.SoundFileError, RuntimeError, TypeError, ValueError, OSError) as error:
        raise AudioError(f"{name}: cannot be read ({error}); re-export the file") from None
    if channel is not None:
        samples = samples[:, channel:channel + 1]
    try:
        return load_audio(samples, sample_rate, source_rate=rate, min_samples=min_samples)
    except AudioError as error:
        raise AudioError(f"{name}: {str(error).removeprefix('audio array: ')}") from None
