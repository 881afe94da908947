"""Issue 14 §2, §7: sample-rate bombs, huge samples, FIFOs and odd paths are refused early."""

from __future__ import annotations

import os
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from int4rt.frontend import AudioError, load_audio
from int4rt.frontend.audio import MAX_DURATION_SECONDS, MAX_SOURCE_RATE, MIN_SOURCE_RATE
from int4rt.frontend.stream import file_codes

from .test_corpus import _wav_header_with_rate


@pytest.mark.parametrize("rate", [1, MIN_SOURCE_RATE - 1, MAX_SOURCE_RATE + 1, 1_000_000])
def test_out_of_range_file_rates_fail_before_reading_samples(tmp_path, rate):
    path = tmp_path / "r.wav"
    path.write_bytes(_wav_header_with_rate(rate, frames=20_000))  # 40 KB
    tracemalloc.start()
    with pytest.raises(AudioError, match=rf"{path}: sample rate {rate} Hz is outside"):
        load_audio(path, 8000)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 5_000_000


@pytest.mark.parametrize("rate", [MIN_SOURCE_RATE, MAX_SOURCE_RATE])
def test_rates_at_the_limits_are_accepted(rate):
    samples = load_audio(np.zeros(rate // 10), 8000, source_rate=rate)
    assert samples.shape == (800,)


def test_api_rate_of_10_to_the_12_is_an_audio_error():
    with pytest.raises(AudioError, match="sample rate 1000000000000 Hz is outside"):
        load_audio(np.zeros(16000), 16000, source_rate=10**12)


def test_too_long_input_is_refused_from_its_header(tmp_path):
    path = tmp_path / "long.wav"
    frames = (MAX_DURATION_SECONDS + 1) * MIN_SOURCE_RATE
    header = bytearray(_wav_header_with_rate(MIN_SOURCE_RATE, frames=0))
    header[40:44] = (2 * frames).to_bytes(4, "little")  # data chunk declares the samples
    header[4:8] = (36 + 2 * frames).to_bytes(4, "little")
    path.write_bytes(bytes(header))
    with open(path, "r+b") as handle:  # a sparse file: the samples are never written
        handle.truncate(44 + 2 * frames)
    with pytest.raises(AudioError, match="longer than the limit"):
        load_audio(path, 8000)


def test_huge_float_samples_name_the_file(tmp_path):
    path = tmp_path / "big.wav"
    sf.write(path, np.full(4000, 1e300), 8000, subtype="DOUBLE")
    with pytest.raises(AudioError, match=rf"{path}: contains samples beyond"):
        load_audio(path, 8000)


def test_fifo_is_refused_without_opening(tmp_path):
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)  # opening it would block forever
    with pytest.raises(AudioError, match="not a regular file"):
        load_audio(fifo, 8000)


def test_symlink_loop_and_long_names(tmp_path):
    loop = tmp_path / "loop.wav"
    os.symlink(loop, loop)
    with pytest.raises(AudioError, match="a loop of symbolic links"):
        load_audio(loop, 8000)
    with pytest.raises(AudioError, match="file name too long"):
        load_audio(tmp_path / ("x" * 300 + ".wav"), 8000)


def test_streamed_codes_equal_the_whole_signal_path(hostile_files, tmp_path, monkeypatch):
    """The bounded-memory front end is bit-identical to load_audio → features → quantize."""
    import int4rt
    import int4rt.frontend.resampling as resampling
    import int4rt.frontend.stream as stream

    model = int4rt.load(hostile_files["model"]).model
    monkeypatch.setattr(stream, "CHUNK_FRAMES", 7)
    monkeypatch.setattr(stream, "READ_BLOCK", 333)
    monkeypatch.setattr(resampling, "OUTPUT_BLOCK", 101)
    rng = np.random.default_rng(5)
    for frames, channels, rate in ((4000, 1, 8000), (12345, 2, 8000), (200, 1, 8000),
                                   (30001, 1, 16000), (9999, 3, 44100), (2000, 1, 1000),
                                   (48000, 2, 48000), (1103, 1, 44100)):
        path = tmp_path / f"s{frames}.wav"
        sf.write(path, 0.3 * rng.standard_normal((frames, channels)), rate, subtype="FLOAT")
        samples = load_audio(path, 8000, min_samples=200)
        from int4rt.frontend import compute_features

        want = model.quantize_features(compute_features(samples, model.frontend))
        got, count = file_codes(path, model)
        assert count == samples.shape[0]
        np.testing.assert_array_equal(got, want)
