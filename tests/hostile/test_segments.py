"""Manifest segments through the streamed reader: the numbers of ``load_segment``, the duration
limit on the segment (not the file), and a run record that names a Kaldi directory once."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import int4rt.frontend.audio as audio
import int4rt.frontend.stream as stream
from int4rt.frontend import AudioError, compute_features, frame_geometry
from int4rt.frontend.segment import load_segment
from int4rt.model.container import load_model
from int4rt.output_file import RECORD_SUFFIX

from .conftest import run_transcribe


@pytest.fixture(scope="module")
def stereo(tmp_path_factory) -> Path:
    """Three seconds of 2-channel noise at 22 050 Hz (resampled to the model's 8 kHz)."""
    path = tmp_path_factory.mktemp("segments") / "stereo.wav"
    rng = np.random.default_rng(7)
    sf.write(path, 0.2 * rng.standard_normal((3 * 22050, 2)), 22050, subtype="FLOAT")
    return path


@pytest.mark.parametrize(("offset", "duration", "channel"),
                         [(0.3, 0.75, 1), (1.0, None, None), (0.0, 2.5, 0)])
def test_streamed_segment_equals_load_segment(hostile_files, stereo, offset, duration, channel,
                                              monkeypatch):
    model = load_model(hostile_files["model"])
    monkeypatch.setattr(stream, "READ_BLOCK", 997)  # many blocks, none aligned to anything
    monkeypatch.setattr(stream, "CHUNK_FRAMES", 7)
    codes, count = stream.segment_codes(stereo, model, offset, duration, channel)
    samples = load_segment(stereo, model.frontend.sample_rate, offset=offset, duration=duration,
                           channel=channel, min_samples=frame_geometry(model.frontend).window)
    want = model.quantize_features(compute_features(samples, model.frontend))
    assert count == samples.shape[0]
    np.testing.assert_array_equal(codes, want)


def test_the_duration_limit_applies_to_the_segment(hostile_files, stereo, monkeypatch):
    model = load_model(hostile_files["model"])
    monkeypatch.setattr(audio, "MAX_DURATION_SECONDS", 1)
    with pytest.raises(AudioError, match="longer than the limit of 1 s"):
        stream.file_codes(stereo, model)
    codes, count = stream.segment_codes(stereo, model, 0.5, 0.9, None)
    assert count == 7200 and codes.shape[0] > 0  # ceil(round(0.9 · 22050) · 160 / 441)
    with pytest.raises(AudioError, match=r"stereo.wav \[0.5 s \+ 1.5 s\]: .*longer than"):
        stream.segment_codes(stereo, model, 0.5, 1.5, None)
    with pytest.raises(AudioError, match="the segment ends beyond the file"):
        stream.segment_codes(stereo, model, 2.5, 1.0, None)


def test_a_kaldi_directory_is_recorded_once(hostile_files, stereo, tmp_path, capsys):
    kaldi = tmp_path / "data"
    kaldi.mkdir()
    (kaldi / "wav.scp").write_text(f"rec {stereo}\n")
    (kaldi / "segments").write_text("utt1 rec 0.0 1.0\n")
    out = tmp_path / "out.jsonl"
    assert run_transcribe([hostile_files["model"], "--manifest", kaldi, "--output", out],
                          capsys)[0] == 0
    record = json.loads(Path(str(out) + RECORD_SUFFIX).read_text())
    assert (record["manifest"], record["manifest_format"]) == (str(kaldi), "kaldi")
    status, _, err = run_transcribe([hostile_files["model"], "--manifest", kaldi / "wav.scp",
                                     "--manifest-format", "kaldi", "--output", out], capsys)
    assert status == 0, err
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["utt1"]
