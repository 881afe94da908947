"""Manifests in (NeMo, lhotse, Kaldi), detection, segments, errors, resume by id."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from int4rt.cli import main
from int4rt.manifests import Item, ManifestError, detect_format, read_manifest
from int4rt.model.config import load_config
from int4rt.model.container import save_model
from int4rt.model.random_model import random_model

CONFIGS = Path(__file__).parents[1] / "configs"
RATE = 8000


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    """A tiny 8 kHz model; a 2 s mono file, a 1.5 s stereo file, and the segments cut out by
    slicing (the independent twin of reading by offset/duration)."""
    root = tmp_path_factory.mktemp("manifests")
    save_model(random_model(load_config(CONFIGS / "tiny.json"), 0), root / "model.safetensors")
    rng = np.random.default_rng(4)
    long = (0.3 * rng.standard_normal(2 * RATE)).astype(np.float32)
    stereo = (0.3 * rng.standard_normal((3 * RATE // 2, 2))).astype(np.float32)
    sf.write(root / "long.wav", long, RATE, subtype="FLOAT")
    sf.write(root / "stereo.wav", stereo, RATE, subtype="FLOAT")
    cuts = {"seg_a": long[int(0.25 * RATE):int(0.95 * RATE)], "seg_b": long[RATE:],
            "right": stereo[int(0.5 * RATE):int(1.25 * RATE), 1]}
    for name, samples in cuts.items():
        sf.write(root / f"{name}.wav", samples, RATE, subtype="FLOAT")
    return {"root": root, "model": str(root / "model.safetensors")}


def _decode(data: dict, capsys, *args: str) -> list[dict]:
    assert main(["transcribe", data["model"], *args]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def _decoded(line: dict) -> dict:
    return {k: v for k, v in line.items() if k not in ("audio", "id", "decode_seconds")}


def _twins(data: dict, capsys, *names: str) -> list[dict]:
    return _decode(data, capsys, *(str(data["root"] / f"{name}.wav") for name in names))


def test_nemo_segments_equal_cut_files(data, capsys):
    manifest = data["root"] / "nemo.json"
    entries = [{"audio_filepath": "long.wav", "duration": 0.7, "offset": 0.25, "text": "a"},
               {"audio_filepath": str(data["root"] / "long.wav"), "duration": 1.0,
                "offset": 1.0, "text": "b"},
               {"audio_filepath": "seg_a.wav", "duration": 0.7, "text": "c"}]
    manifest.write_text("".join(json.dumps(e) + "\n" for e in entries))
    assert detect_format(manifest) == "nemo"
    lines = _decode(data, capsys, "--manifest", str(manifest))
    twins = _twins(data, capsys, "seg_a", "seg_b", "seg_a")
    assert [_decoded(line) for line in lines] == [
        {**_decoded(twin), "reference": ref} for twin, ref in zip(twins, "abc", strict=True)]
    assert [line.get("id") for line in lines] == [
        "long.wav@0.25+0.7", f"{data['root'] / 'long.wav'}@1+1", None]
    assert lines[0]["duration"] == 0.7 and lines[1]["duration"] == 1.0


def test_lhotse_cuts_with_channels(data, capsys):
    def cut(cut_id: str, source: str, start: float, duration: float, channel: int,
            channels: list[int], text: str) -> dict:
        return {"id": cut_id, "start": start, "duration": duration, "channel": channel,
                "supervisions": [{"id": f"{cut_id}-s", "text": text}],
                "recording": {"id": source, "sources": [
                    {"type": "file", "channels": channels, "source": source}],
                    "sampling_rate": RATE, "num_samples": 1, "duration": 2.0},
                "type": "MonoCut"}

    manifest = data["root"] / "cuts.jsonl.gz"
    cuts = [cut("c1", "long.wav", 0.25, 0.7, 0, [0], "one"),
            cut("c2", "stereo.wav", 0.5, 0.75, 1, [0, 1], "two")]
    with gzip.open(manifest, "wt") as handle:
        handle.write("".join(json.dumps(c) + "\n" for c in cuts))
    assert detect_format(manifest) == "lhotse"
    lines = _decode(data, capsys, "--manifest", str(manifest))
    twins = _twins(data, capsys, "seg_a", "right")
    assert [line["id"] for line in lines] == ["c1", "c2"]
    assert [_decoded(line) for line in lines] == [
        {**_decoded(twin), "reference": ref} for twin, ref in zip(twins, ("one", "two"),
                                                                   strict=True)]


def test_kaldi_data_dir_with_segments_and_resume(data, capsys, tmp_path):
    kaldi = tmp_path / "data"
    kaldi.mkdir()
    (kaldi / "wav.scp").write_text(f"rec1 {data['root'] / 'long.wav'}\n")
    (kaldi / "segments").write_text("utt1 rec1 0.25 0.95\nutt2 rec1 1.0 -1\n")
    (kaldi / "text").write_text("utt1 hello there\nutt2 a tale\n")
    assert detect_format(kaldi) == detect_format(kaldi / "wav.scp") == "kaldi"
    out = tmp_path / "out.jsonl"
    assert main(["transcribe", data["model"], "--manifest", str(kaldi), "--output",
                 str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    twins = _twins(data, capsys, "seg_a", "seg_b")
    assert [line["id"] for line in lines] == ["utt1", "utt2"]
    assert [line["reference"] for line in lines] == ["hello there", "a tale"]
    assert [_decoded(line) for line in lines] == [
        {**_decoded(twin), "reference": line["reference"]}
        for twin, line in zip(twins, lines, strict=True)]
    before = out.read_bytes()
    assert main(["transcribe", data["model"], "--manifest", str(kaldi / "wav.scp"),
                 "--output", str(out)]) == 0
    assert out.read_bytes() == before  # resumed by utterance id: nothing decoded twice


def test_kaldi_without_segments(data, tmp_path):
    kaldi = tmp_path / "d"
    kaldi.mkdir()
    (kaldi / "wav.scp").write_text(f"a {data['root'] / 'seg_a.wav'}\nb {data['root']}/x.wav\n")
    assert read_manifest(kaldi) == [
        Item(str(data["root"] / "seg_a.wav"), str(data["root"] / "seg_a.wav"), None, "a"),
        Item(f"{data['root']}/x.wav", f"{data['root']}/x.wav", None, "b")]


@pytest.mark.parametrize(("files", "message"), [
    ({"wav.scp": "r1 sox in.flac -t wav - |\n"}, "piped commands are not supported"),
    ({"wav.scp": "r1 /data/a.ark:1234\n"}, "archive offsets"),
    ({"wav.scp": "r1 /a.wav\n", "segments": "u1 r2 0 1\n"}, "'r2' is not in wav.scp"),
    ({"wav.scp": "r1 /a.wav\n", "segments": "u1 r1 2 1\n"}, "0 <= start < end"),
    ({"wav.scp": "r1 /a.wav\n", "segments": "u1 r1 0\n"}, "expected 'utt-id recording-id"),
    ({"wav.scp": "r1 /a.wav\nr1 /b.wav\n"}, "'r1' appears twice"),
    ({"text": "u1 hi\n"}, "no wav.scp"),
])
def test_bad_kaldi_dirs(tmp_path, files, message):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(ManifestError, match=message):
        read_manifest(tmp_path, "kaldi")


@pytest.mark.parametrize(("entry", "message"), [
    ({"audio_filepath": "a.wav", "offset": 1.0}, '"offset" needs a "duration"'),
    ({"audio_filepath": "a.wav", "duration": -1}, "number of seconds > 0"),
    ({"audio_filepath": 3}, 'needs an "audio_filepath" string'),
    ({"id": "c", "duration": 1, "recording": {"sources": [
        {"type": "command", "source": "sox x.flac -t wav -"}]}}, "piped commands, URLs"),
    ({"id": "c", "duration": 1, "type": "MixedCut", "recording": {}}, "'MixedCut'"),
    ({"id": "c", "duration": 1, "recording_id": "r", "recording": None}, 'no inline'),
    ({"id": "c", "duration": 1, "channel": 2, "recording": {"sources": [
        {"type": "file", "source": "a.wav", "channels": [0, 1]}]}}, "channel 2 is not one"),
])
def test_bad_json_manifests(tmp_path, entry, message):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps(entry) + "\n")
    kind = "nemo" if "audio_filepath" in entry else "lhotse"
    with pytest.raises(ManifestError, match=message):
        read_manifest(manifest, kind)


def test_format_detection_errors(tmp_path):
    odd = tmp_path / "odd.jsonl"
    odd.write_text('{"wav": "a.wav"}\n')
    with pytest.raises(ManifestError, match="cannot tell the manifest format"):
        read_manifest(odd)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"audio_filepath": "a.wav"}\n\n{"audio_filepath": \n')
    with pytest.raises(ManifestError, match=r"broken\.jsonl:3: not JSON"):
        read_manifest(broken)
    fake_gz = tmp_path / "cuts.jsonl.gz"
    fake_gz.write_text('{"id": "c"}\n')
    with pytest.raises(ManifestError, match="cannot read manifest"):
        read_manifest(fake_gz)
    with pytest.raises(ManifestError, match="no such file"):
        read_manifest(tmp_path / "missing.jsonl")
    with pytest.raises(ManifestError, match="only a Kaldi data directory"):
        read_manifest(tmp_path, "nemo")


def test_segment_beyond_the_file_is_an_error_line(data, capsys, tmp_path):
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps({"audio_filepath": str(data["root"] / "long.wav"),
                                    "offset": 1.5, "duration": 1.0}) + "\n")
    lines = _decode(data, capsys, "--manifest", str(manifest))
    assert "the segment ends beyond the file (2 s" in lines[0]["error"]
