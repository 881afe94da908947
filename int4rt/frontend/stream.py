"""An audio file to the encoder's input codes in bounded memory (DECODING.md, "Limits").

The same numbers as ``load_audio`` → ``compute_features`` → ``RnntModel.quantize_features``,
bit for bit, but neither the float64 samples nor the float features of the whole input are
ever held: samples are read in blocks, features are computed and quantized a chunk of frames
at a time (with the few frames of context the deltas need), and only the integer codes of
the whole input are kept. An input at another rate than the model's is resampled block by
block (``int4rt.frontend.resampling``), with the numbers of ``resample_poly`` on the whole.
A manifest segment is read the same way from its first sample on (``segment_codes``). A
``kaldi-fbank`` front end computes its features on the whole input (its frames are not cut
into chunks here), so such a model's inputs are held whole, within the duration limit.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from int4rt.frontend.audio import (
    AudioError,
    _decode_failure,
    check_duration,
    check_sample_values,
    load_audio,
    probe_audio_file,
)
from int4rt.frontend.features import (
    DELTA_WINDOW,
    compute_features,
    deltas,
    frame_geometry,
    log_mel,
)
from int4rt.frontend.resampling import SampleWindow, TruncatedInputError, resampled_blocks
from int4rt.frontend.segment import load_segment, segment_bounds, segment_name
from int4rt.model.rnnt import Frontend, RnntModel

READ_BLOCK = 1 << 18  # samples read from the file at a time
CHUNK_FRAMES = 4096  # feature frames computed and quantized at a time


def file_codes(path: str | Path, model: RnntModel) -> tuple[np.ndarray, int]:
    """The encoder input codes [T, F] of the audio file at ``path`` and its sample count at
    the model's rate; every problem as ``AudioError`` (DECODING.md, Reading audio, Errors).
    """
    source = Path(path)
    frontend = model.frontend
    window = frame_geometry(frontend).window
    if frontend.kaldi_fbank is not None:  # its features are computed on the whole input
        return _whole_codes(model, load_audio(source, frontend.sample_rate, min_samples=window))
    head, info = probe_audio_file(source)
    count, blocks = _mono_blocks(source, str(source), head, info, 0, int(info.frames), None,
                                 frontend.sample_rate, window)
    try:
        return _codes(model, count, blocks), count
    except TruncatedInputError:  # fewer samples than the header declared: as load_audio does
        return _whole_codes(model, load_audio(source, frontend.sample_rate, min_samples=window))


def segment_codes(path: str | Path, model: RnntModel, offset: float, duration: float | None,
                  channel: int | None) -> tuple[np.ndarray, int]:
    """``file_codes`` of the segment [offset, offset + duration) seconds of one channel (None:
    the channel average) of a file, with the numbers of ``load_segment`` (DECODING.md,
    Manifests); only the segment's samples are read, a block at a time.
    """
    source = Path(path)
    frontend = model.frontend
    window = frame_geometry(frontend).window

    def whole() -> tuple[np.ndarray, int]:
        return _whole_codes(model, load_segment(source, frontend.sample_rate, offset=offset,
                                                duration=duration, channel=channel,
                                                min_samples=window))

    if frontend.kaldi_fbank is not None:
        return whole()
    name = segment_name(source, offset, duration)
    head, info = probe_audio_file(source, whole=False)
    rate = int(info.samplerate)
    start, stop = segment_bounds(name, rate, int(info.frames), info.channels, offset, duration,
                                 channel)
    check_duration(stop - start, rate, name)
    count, blocks = _mono_blocks(source, name, head, info, start, stop, channel,
                                 frontend.sample_rate, window)
    try:
        return _codes(model, count, blocks), count
    except TruncatedInputError:
        return whole()


def _whole_codes(model: RnntModel, samples: np.ndarray) -> tuple[np.ndarray, int]:
    """Codes and sample count of samples held whole (``compute_features`` of all of them)."""
    return model.quantize_features(compute_features(samples, model.frontend)), samples.shape[0]


def _codes(model: RnntModel, count: int, blocks: Iterator[np.ndarray]) -> np.ndarray:
    """Codes [T, F] of ``count`` samples arriving in ``blocks``, CHUNK_FRAMES at a time."""
    frontend = model.frontend
    window, hop, _ = frame_geometry(frontend)
    frames = 1 + (count - window) // hop
    margin = DELTA_WINDOW * frontend.deltas  # frames of context each side for the deltas
    codes: np.ndarray | None = None
    window_samples = SampleWindow(blocks, np.float32)
    for start in range(0, frames, CHUNK_FRAMES):
        stop = min(start + CHUNK_FRAMES, frames)
        lo, hi = max(start - margin, 0), min(stop + margin, frames)
        # samples from the start of frame lo to the end of frame hi - 1
        samples = window_samples.span(lo * hop, (hi - 1) * hop + window)
        chunk = _features(samples, frontend)[start - lo:stop - lo]
        quantized = model.quantize_features(chunk)
        if codes is None:
            codes = np.empty((frames, quantized.shape[1]), quantized.dtype)
        codes[start:stop] = quantized
    assert codes is not None
    return codes


def _features(samples: np.ndarray, frontend: Frontend) -> np.ndarray:
    """``compute_features`` of a stretch of samples (float32 [T, F])."""
    blocks = [log_mel(samples, frontend)]
    for _ in range(frontend.deltas):
        blocks.append(deltas(blocks[-1]))
    return np.concatenate(blocks, axis=1).astype(np.float32)


def _mono_blocks(path: Path, name: str, head: bytes, info: Any, start: int, stop: int,
                 channel: int | None, rate: int,
                 window: int) -> tuple[int, Iterator[np.ndarray]]:
    """The sample count at ``rate`` of samples [start, stop) of a file (``info``: its header)
    and an iterator of float32 mono blocks that hold them.
    """
    source_rate = int(info.samplerate)
    frames = stop - start
    if frames == 0:
        raise AudioError(f"{name}: contains no audio samples; supply a non-empty recording")
    blocks = _read_blocks(path, head, start, stop, channel)
    count = frames
    if source_rate != rate:
        common = math.gcd(source_rate, rate)
        up, down = rate // common, source_rate // common
        count = -(-frames * up // down)
        blocks = resampled_blocks(blocks, frames, up, down)
    if count < window:
        raise AudioError(
            f"{name}: too short: {count} samples at {rate} Hz, fewer than one analysis "
            f"window of {window} samples ({1000 * window / rate:g} ms); supply a longer "
            "recording")
    return count, (block.astype(np.float32) for block in blocks)


def _read_blocks(path: Path, head: bytes, start: int, stop: int,
                 channel: int | None) -> Iterator[np.ndarray]:
    """float64 mono blocks of samples [start, stop) of a file at its own rate: checked, one
    channel kept or the channels averaged.
    """
    offset = start
    try:
        with sf.SoundFile(path) as audio:
            if start:
                audio.seek(start)
            while offset < stop:
                block = audio.read(min(READ_BLOCK, stop - offset), dtype="float64",
                                   always_2d=True)
                if block.shape[0] == 0:
                    return
                if channel is not None:
                    block = block[:, channel:channel + 1]
                check_sample_values(block, str(path), offset)
                offset += block.shape[0]
                mono = block.mean(axis=1) if block.shape[1] > 1 else block[:, 0]
                yield mono
    except (sf.SoundFileError, RuntimeError, TypeError, ValueError, OSError) as exc:
        if isinstance(exc, AudioError):
            raise
        raise AudioError(_decode_failure(path, head, exc)) from exc
