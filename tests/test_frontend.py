"""The audio front end (docs/DECODING.md, "Front end"): reading, resampling, features, errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from int4rt.errors import Int4rtError
from int4rt.frontend import (
    AudioError,
    compute_features,
    deltas,
    features,
    frame_geometry,
    load_audio,
    load_features,
    log_mel,
)
from int4rt.model.rnnt import Frontend

PAPER = Frontend(8000, 40, 25.0, 10.0, 2)  # configs/paper.json
WIDE = Frontend(16000, 40, 25.0, 10.0, 2)
FLOOR = math.log(1e-10)


def tone(freq: float, rate: int, seconds: float = 0.5, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return amplitude * np.sin(2 * np.pi * freq * t)


def dominant_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate / len(samples))


def htk_centers(rate: int, n_mels: int) -> np.ndarray:
    top = 2595 * math.log10(1 + rate / 2 / 700)
    return np.array([700 * (10 ** (top * m / (n_mels + 1) / 2595) - 1)
                     for m in range(1, n_mels + 1)])


def naive_features(audio: np.ndarray, fe: Frontend) -> np.ndarray:
    """The front end written from the DECODING.md text, one frame and one filter at a time."""
    win = math.floor(fe.sample_rate * fe.frame_length_ms / 1000 + 0.5)
    hop = math.floor(fe.sample_rate * fe.frame_shift_ms / 1000 + 0.5)
    n_fft = 1
    while n_fft < win:
        n_fft *= 2
    hann = [0.5 - 0.5 * math.cos(2 * math.pi * n / win) for n in range(win)]
    top = 2595 * math.log10(1 + fe.sample_rate / 2 / 700)
    edges = [700 * (10 ** (top * i / (fe.n_mels + 1) / 2595) - 1) for i in range(fe.n_mels + 2)]
    rows = []
    for t in range(1 + (len(audio) - win) // hop):
        frame = [float(audio[t * hop + n]) * hann[n] for n in range(win)] + [0.0] * (n_fft - win)
        power = np.abs(np.fft.fft(frame)[:n_fft // 2 + 1]) ** 2
        row = []
        for m in range(1, fe.n_mels + 1):
            lo, mid, hi = edges[m - 1], edges[m], edges[m + 1]
            energy = 0.0
            for k, p in enumerate(power):
                f = k * fe.sample_rate / n_fft
                energy += p * max(0.0, min((f - lo) / (mid - lo), (hi - f) / (hi - mid)))
            row.append(math.log(max(energy, 1e-10)))
        rows.append(row)
    blocks = [np.array(rows)]
    for _ in range(fe.deltas):
        c, count = blocks[-1], len(rows)
        blocks.append(np.array([
            sum(n * (c[min(t + n, count - 1)] - c[max(t - n, 0)]) for n in (1, 2)) / 10
            for t in range(count)]))
    return np.concatenate(blocks, axis=1)


# --- framing and features -------------------------------------------------------------------

@pytest.mark.parametrize(("rate", "expected"), [
    (8000, (200, 80, 256)),
    (16000, (400, 160, 512)),
    (44100, (1103, 441, 2048)),   # 1102.5 rounds half up
    (22050, (551, 221, 1024)),    # 551.25 rounds down, 220.5 up
])
def test_frame_geometry(rate, expected):
    assert tuple(frame_geometry(Frontend(rate, 40, 25.0, 10.0, 2))) == expected


def test_frame_geometry_rejects_empty_window():
    with pytest.raises(Int4rtError, match="window of 0"):
        frame_geometry(Frontend(8000, 40, 0.01, 10.0, 2))


@pytest.mark.parametrize("length", [200, 201, 279, 280, 1000, 12345])
def test_frame_count_rule(length):
    feats = compute_features(np.zeros(length, np.float32), PAPER)
    assert feats.shape == (1 + (length - 200) // 80, 120)
    assert feats.dtype == np.float32


def test_matches_text_spec_naive_implementation():
    rng = np.random.default_rng(1)
    audio = (rng.standard_normal(2000) * 0.1 + tone(700, 8000, 0.25)).astype(np.float32)
    expected = naive_features(audio, PAPER)
    got = compute_features(audio, PAPER)
    assert got.shape == expected.shape == (23, 120)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


def test_output_order_mels_delta_delta_delta():
    audio = tone(500, 16000) + tone(3000, 16000, amplitude=0.1)
    base = log_mel(audio, WIDE)
    first = deltas(base)
    expected = np.concatenate([base, first, deltas(first)], axis=1).astype(np.float32)
    np.testing.assert_array_equal(compute_features(audio, WIDE), expected)
    for order in (0, 1):
        fe = Frontend(16000, 40, 25.0, 10.0, order)
        np.testing.assert_array_equal(compute_features(audio, fe), expected[:, :40 * (1 + order)])


@pytest.mark.parametrize(("rate", "freq"), [(8000, 300), (8000, 1000), (8000, 2500),
                                            (16000, 440), (16000, 2500), (16000, 3700)])
def test_tone_lands_in_nearest_mel_band(rate, freq):
    centers = htk_centers(rate, 40)
    distance = np.sort(np.abs(centers - freq))
    assert distance[1] - distance[0] > 10  # the nearest band is unambiguous
    feats = compute_features(tone(freq, rate).astype(np.float32), Frontend(rate, 40, 25.0, 10.0, 0))
    assert int(np.argmax(feats.mean(axis=0))) == int(np.argmin(np.abs(centers - freq)))


def test_silence_gives_the_log_floor():
    feats = compute_features(np.zeros(8000, np.float32), PAPER)
    np.testing.assert_array_equal(feats[:, :40], np.float32(FLOOR))
    np.testing.assert_array_equal(feats[:, 40:], 0.0)


def test_empty_filters_give_the_floor():
    """128 mels at 8 kHz: some narrow low filters hold no FFT bin (DECODING.md, Mel filterbank)."""
    fe = Frontend(8000, 128, 25.0, 10.0, 0)
    edges = np.concatenate([[0.0], htk_centers(8000, 128), [4000.0]])
    bins = np.arange(129) * 8000 / 256
    empty = [m for m in range(128) if not np.any((bins > edges[m]) & (bins < edges[m + 2]))]
    assert empty
    noise = np.random.default_rng(6).uniform(-0.5, 0.5, 4000).astype(np.float32)
    feats = compute_features(noise, fe)
    np.testing.assert_array_equal(feats[:, empty], np.float32(FLOOR))
    assert np.all(np.delete(feats, empty, axis=1) > FLOOR)


def test_delta_of_linear_ramp_is_the_slope():
    slope = np.array([0.5, -3.0, 7.25])
    ramp = np.arange(12)[:, None] * slope + 4.0
    d = deltas(ramp)
    np.testing.assert_allclose(d[2:-2], np.broadcast_to(slope, (8, 3)), rtol=1e-12)
    # Edges replicate the first/last frame: (1·a + 2·2a)/10 and (1·2a + 2·3a)/10.
    np.testing.assert_allclose(d[[0, -1]], [slope / 2, slope / 2], rtol=1e-12)
    np.testing.assert_allclose(d[[1, -2]], [slope * 0.8, slope * 0.8], rtol=1e-12)
    np.testing.assert_allclose(deltas(d)[4:-4], 0.0, atol=1e-12)


def test_frame_blocking_does_not_change_features(monkeypatch):
    audio = np.random.default_rng(8).uniform(-0.5, 0.5, 30000).astype(np.float32)
    whole = compute_features(audio, WIDE)
    monkeypatch.setattr(features, "FRAME_BLOCK", 7)
    np.testing.assert_array_equal(compute_features(audio, WIDE), whole)


def test_features_are_deterministic():
    audio = np.random.default_rng(2).uniform(-0.5, 0.5, 160000).astype(np.float32)
    first = compute_features(audio, WIDE)
    again = compute_features(audio.copy(), WIDE)
    np.testing.assert_array_equal(first, again)
    assert first.shape == (998, 120)  # 1 + (160000 - 400) // 160 frames of 25 ms every 10 ms


# --- reading and resampling -----------------------------------------------------------------

@pytest.mark.parametrize("source_rate", [8000, 16000, 44100, 48000])
@pytest.mark.parametrize("target_rate", [8000, 16000])
def test_resampling_preserves_tone(tmp_path, source_rate, target_rate):
    path = tmp_path / "tone.wav"
    sf.write(path, tone(1000, source_rate, seconds=1.0), source_rate, subtype="PCM_16")
    audio = load_audio(path, target_rate)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert len(audio) == target_rate
    assert dominant_hz(audio, target_rate) == pytest.approx(1000, abs=1.5)
    middle = audio[target_rate // 10:-target_rate // 10]  # away from the filter's edge effects
    assert np.sqrt(np.mean(middle.astype(np.float64) ** 2)) == pytest.approx(0.5 / math.sqrt(2),
                                                                             rel=2e-3)


def test_resampling_length_and_ratio_from_gcd():
    audio = load_audio(np.zeros(44101), 8000, source_rate=44100)  # up 80, down 441
    assert len(audio) == math.ceil(44101 * 80 / 441)


def test_stereo_is_mixed_down_to_the_mean(tmp_path):
    rng = np.random.default_rng(3)
    stereo = rng.uniform(-0.9, 0.9, (4000, 2)).astype(np.float32)
    path = tmp_path / "stereo.wav"
    sf.write(path, stereo, 16000, subtype="FLOAT")
    expected = stereo.astype(np.float64).mean(axis=1).astype(np.float32)
    np.testing.assert_array_equal(load_audio(path, 16000), expected)
    np.testing.assert_array_equal(load_audio(stereo, 16000, source_rate=16000), expected)


@pytest.mark.parametrize(("ext", "subtype", "bits"), [
    ("wav", "PCM_16", 16), ("wav", "PCM_24", 24), ("wav", "PCM_32", 32),
    ("flac", "PCM_16", 16), ("flac", "PCM_24", 24),
])
def test_integer_depths_scale_to_unit_range(tmp_path, ext, subtype, bits):
    rng = np.random.default_rng(bits)
    codes = rng.integers(-(2 ** (bits - 1)), 2 ** (bits - 1), 3000)
    codes[:2] = [-(2 ** (bits - 1)), 2 ** (bits - 1) - 1]
    path = tmp_path / f"x.{ext}"
    sf.write(path, (codes << (32 - bits)).astype(np.int32), 8000, subtype=subtype)
    expected = (codes / 2.0 ** (bits - 1)).astype(np.float32)
    audio = load_audio(path, 8000)
    np.testing.assert_array_equal(audio, expected)
    assert audio.min() == -1.0 and audio.max() <= 1.0  # 1 - 2^-31 rounds to 1 in float32


@pytest.mark.parametrize("subtype", ["FLOAT", "DOUBLE"])
def test_float_files_are_read_unchanged(tmp_path, subtype):
    samples = np.random.default_rng(4).uniform(-1, 1, 3000).astype(np.float32)
    path = tmp_path / "float.wav"
    sf.write(path, samples, 8000, subtype=subtype)
    np.testing.assert_array_equal(load_audio(path, 8000), samples)


def test_ogg_vorbis_is_read(tmp_path):
    path = tmp_path / "tone.ogg"
    sf.write(path, tone(1000, 16000, seconds=1.0), 16000, format="OGG", subtype="VORBIS")
    audio = load_audio(path, 8000)
    assert len(audio) == 8000
    assert dominant_hz(audio, 8000) == pytest.approx(1000, abs=1.5)


def test_integer_arrays_scale_like_files():
    codes = np.array([-32768, -1, 0, 1, 32767], np.int16)
    np.testing.assert_array_equal(load_audio(codes, 8000, source_rate=8000),
                                  (codes / 32768).astype(np.float32))


@pytest.mark.parametrize(("rate", "subtype"), [(16000, "FLOAT"), (44100, "PCM_16"),
                                               (8000, "PCM_24")])
def test_features_of_a_path_equal_features_of_the_array(tmp_path, rate, subtype):
    samples = (tone(440, rate, 1.0) + tone(1800, rate, 1.0, 0.2)).astype(np.float32)
    path = tmp_path / "speech.wav"
    sf.write(path, samples, rate, subtype=subtype)
    stored, _ = sf.read(path, dtype="float32")
    from_path = load_features(path, PAPER)
    np.testing.assert_array_equal(from_path, load_features(stored, PAPER, source_rate=rate))
    np.testing.assert_array_equal(from_path,
                                  compute_features(load_audio(str(path), 8000), PAPER))
    assert from_path.shape == (1 + (8000 - 200) // 80, 120)


# --- bad input --------------------------------------------------------------------------------

def _write_bytes(data: bytes, name: str):
    def make(tmp: Path) -> Path:
        path = tmp / name
        path.write_bytes(data)
        return path
    return make


def _write_samples(samples: np.ndarray, name: str = "x.wav", subtype: str = "FLOAT"):
    def make(tmp: Path) -> Path:
        path = tmp / name
        sf.write(path, samples, 8000, subtype=subtype)
        return path
    return make


def _truncated_wav(tmp: Path) -> Path:
    whole = tmp / "whole.wav"
    sf.write(whole, np.zeros(800), 8000)
    path = tmp / "cut.wav"
    path.write_bytes(whole.read_bytes()[:30])
    return path


def _directory(tmp: Path) -> Path:
    path = tmp / "folder.wav"
    path.mkdir()
    return path


BAD_FILES = {
    "missing": (lambda tmp: tmp / "missing.wav", "no such file"),
    "directory": (_directory, "is a directory"),
    "empty": (_write_bytes(b"", "empty.wav"), r"file is empty \(0 bytes\)"),
    "no samples": (_write_samples(np.zeros(0)), "contains no audio samples"),
    "text bytes": (_write_bytes(b"hello, this is not audio\n" * 40, "notes.wav"),
                   "not an audio file"),
    "random bytes": (_write_bytes(np.random.default_rng(5).bytes(4096), "blob"),
                     "not an audio file"),
    "mp4": (_write_bytes(b"\0\0\0\x18ftypM4A \0\0\0\0M4A mp42isom" + bytes(512), "a.m4a"),
            r"unsupported audio format \(MP4/M4A"),
    "webm": (_write_bytes(b"\x1a\x45\xdf\xa3" + bytes(512), "a.webm"),
             r"unsupported audio format \(WebM"),
    "raw pcm": (_write_bytes(bytes(1600), "a.raw"), "headerless raw PCM is not supported"),
    "truncated": (_truncated_wav, "a WAV file that cannot be decoded"),
    "nan": (_write_samples(np.array([0.0, 0.1, np.nan] + [0.0] * 500)),
            r"NaN or infinite samples \(first at sample 2, channel 0\)"),
    "inf": (_write_samples(np.array([0.0] * 300 + [np.inf] + [0.0] * 300)),
            r"NaN or infinite samples \(first at sample 300"),
    "too short": (_write_samples(np.zeros(199), subtype="PCM_16"),
                  r"too short: 199 samples at 8000 Hz, fewer than one analysis window of 200 "
                  r"samples \(25 ms\)"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_files_raise_audio_error_naming_the_file(tmp_path, case):
    make, message = BAD_FILES[case]
    path = make(tmp_path)
    with pytest.raises(AudioError, match=message) as info:
        load_features(path, PAPER)
    assert str(path) in str(info.value)
    assert isinstance(info.value, Int4rtError)


@pytest.mark.parametrize(("source", "kwargs", "message"), [
    (np.zeros(100), {}, "source_rate is required"),
    (np.zeros(100), {"source_rate": 0}, "source_rate must be a positive integer"),
    (np.zeros(100), {"source_rate": 8000.0}, "source_rate must be a positive integer"),
    (np.zeros((2, 400)), {"source_rate": 8000}, "transpose it"),
    (np.zeros((2, 2, 400)), {"source_rate": 8000}, "expected shape"),
    (np.zeros(400, np.uint8), {"source_rate": 8000}, "unsupported dtype uint8"),
    (np.zeros(0), {"source_rate": 8000}, "contains no audio samples"),
    (np.zeros((0, 2)), {"source_rate": 8000}, "contains no audio samples"),
    (np.zeros((400, 0)), {"source_rate": 8000}, "contains no audio samples"),
    (np.full(400, np.nan), {"source_rate": 8000}, "NaN or infinite"),
    (np.zeros(150), {"source_rate": 8000}, "too short: 150 samples"),
    (b"RIFF", {}, "cannot read audio from a bytes"),
])
def test_bad_arrays_raise_audio_error(source, kwargs, message):
    with pytest.raises(AudioError, match=message):
        load_features(source, PAPER, **kwargs)


@pytest.mark.parametrize(("audio", "message"), [
    (np.zeros(199, np.float32), "too short: 199 samples"),
    (np.zeros((400, 2), np.float32), "1-D float samples"),
    (np.zeros(400, np.int16), "1-D float samples"),
    (np.array([np.inf] * 400), "NaN or infinite"),
])
def test_compute_features_rejects_bad_audio(audio, message):
    with pytest.raises(AudioError, match=message):
        compute_features(audio, PAPER)


def test_bad_target_rate():
    with pytest.raises(AudioError, match="sample_rate must be a positive integer"):
        load_audio(np.zeros(400), -8000, source_rate=8000)
