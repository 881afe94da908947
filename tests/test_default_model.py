"""The default model bundle shipped in the package (int4rt.bundle, int4rt/default_model)."""

from __future__ import annotations

import fnmatch
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

import int4rt
from int4rt import bundle as bundle_module
from int4rt.bundle import BUNDLE_DIR, load_bundle, merge_settings
from int4rt.cli import main
from int4rt.errors import Int4rtError
from int4rt.recognizer import Recognizer

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the dev extra installs tomli there
    import tomli as tomllib

RESERVED = ("f2", "f5", "m3", "klatt4", "slt", "rms")  # TRAINING.md §1: never in training


@pytest.fixture(scope="module")
def bundle():
    return load_bundle()


def test_bundle_is_small_and_its_clips_are_held_out_voices(bundle):
    files = [p for p in BUNDLE_DIR.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert sum(p.stat().st_size for p in files) <= 5 * 2**20
    clips = bundle.clips
    assert 3 <= len(clips) <= 8
    families = [clip.voice.split(":")[1].split("+")[-1] if clip.voice.startswith("espeak")
                else clip.voice.split(":")[1] for clip in clips]
    assert len(set(families)) == len(clips)
    assert set(families) <= set(RESERVED)
    for clip in clips:
        info = sf.info(clip.audio)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert 1.0 <= info.duration <= 5.0
        assert clip.text and clip.text == clip.text.lower().strip()
    info = bundle.info
    assert info["model"]["step"] > 0 and info["model"]["audio_hours"] > 0
    assert info["command"].startswith("python -m int4rt_train.ship ")
    assert info["decoding"]["method"] in ("greedy", "beam", "alsd")


def test_every_bundle_file_is_package_data():
    root = Path(__file__).parents[1]
    setuptools = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = setuptools["package-data"]["int4rt"]
    package = root / "int4rt"
    for path in BUNDLE_DIR.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            name = path.relative_to(package).as_posix()
            assert any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns), name


def test_default_recognizer_uses_the_bundle_and_its_decoding(bundle):
    clip = bundle.clips[0].audio
    recognizer = Recognizer.default()
    assert recognizer.recommended == bundle.decoding
    explicit = int4rt.load(bundle.model_path).transcribe(clip, **bundle.decoding)
    assert recognizer.transcribe(clip).tokens == explicit.tokens
    assert int4rt.load().transcribe(clip).tokens == explicit.tokens
    plain = int4rt.load(bundle.model_path)
    greedy = plain.transcribe(clip, **{**bundle.decoding, "method": "greedy"})
    assert recognizer.transcribe(clip, method="greedy").tokens == greedy.tokens
    alone = plain.transcribe(clip, method="greedy")
    assert recognizer.transcribe(clip, method="greedy", lm=None, source_lm=None,
                                 length_reward=0.0).tokens == alone.tokens


def test_merge_settings_keeps_an_lm_with_its_weight():
    recommended = {"method": "beam", "beam": 4, "lm": "ext", "lm_weight": 0.3,
                   "source_lm": "src", "source_lm_weight": 0.1}
    assert merge_settings(recommended, {"beam": 8}) == {**recommended, "beam": 8}
    assert merge_settings(recommended, {"lm": "other"}) == {
        "method": "beam", "beam": 4, "lm": "other", "source_lm": "src",
        "source_lm_weight": 0.1}
    assert merge_settings(recommended, {"source_lm_weight": 0.0}) == {
        "method": "beam", "beam": 4, "lm": "ext", "lm_weight": 0.3, "source_lm_weight": 0.0}


def test_transcribe_without_a_model_from_another_folder(bundle, tmp_path):
    clip = tmp_path / "clip.wav"
    shutil.copy(bundle.clips[0].audio, clip)
    proc = subprocess.run([sys.executable, "-m", "int4rt.cli", "transcribe", "clip.wav"],
                          cwd=tmp_path, capture_output=True, text=True, check=False,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    line = json.loads(proc.stdout)
    assert line["audio"] == "clip.wav" and "error" not in line
    want = int4rt.load(bundle.model_path).transcribe(clip, **bundle.decoding)
    assert (line["text"], line["token_ids"]) == (want.text, [int(t) for t in want.tokens])
    assert "default model: model.safetensors" in proc.stderr


def test_transcribe_the_shipped_manifest_reports_wer(bundle, capsys):
    assert main(["transcribe", "--manifest", str(bundle.clips_manifest)]) == 0
    out, err = capsys.readouterr()
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["text"] for line in lines] == [
        int4rt.load(bundle.model_path).transcribe(clip.audio, **bundle.decoding).text
        for clip in bundle.clips]
    assert f"over {len(bundle.clips)} references" in err


def test_flags_override_the_recommended_decoding(bundle, capsys):
    clip = str(bundle.clips[0].audio)
    assert main(["transcribe", clip, "--method", "beam", "--beam", "2", "--nbest", "2"]) == 0
    line = json.loads(capsys.readouterr().out)
    assert len(line["nbest"]) == 2


@pytest.mark.parametrize(("damage", "message"), [
    ("delete bundle.json", "no bundle.json"),
    ("truncate model", "model.safetensors does not match its SHA-256"),
    ("delete clip", "is missing or altered"),
    ("bad json", "bundle.json is unreadable"),
])
def test_a_damaged_bundle_is_one_clear_error(bundle, tmp_path, monkeypatch, capsys, damage,
                                             message):
    folder = tmp_path / "bundle"
    shutil.copytree(BUNDLE_DIR, folder, ignore=shutil.ignore_patterns("__pycache__"))
    if damage == "delete bundle.json":
        (folder / "bundle.json").unlink()
    elif damage == "truncate model":
        model = folder / "model.safetensors"
        model.write_bytes(model.read_bytes()[:1000])
    elif damage == "delete clip":
        next((folder / "clips").iterdir()).unlink()
    else:
        (folder / "bundle.json").write_text("{not json")
    with pytest.raises(Int4rtError, match=message):
        load_bundle(folder)
    monkeypatch.setattr(bundle_module, "BUNDLE_DIR", folder)
    with pytest.raises(Int4rtError, match=message):
        Recognizer.default()
    assert main(["transcribe", str(bundle.clips[0].audio)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("int4rt: error: default model bundle") and message in err
    assert "int4rt_train.ship" in err and "Traceback" not in err


def _random_bundle(folder: Path, clip: Path, decoding: dict) -> Path:
    """A bundle of random tiny models (configs/tiny.json, lm-tiny.json) and one clip."""
    from int4rt.bundle import file_digest
    from int4rt.model.config import load_config
    from int4rt.model.container import save_model
    from int4rt.model.random_model import random_model

    folder.mkdir()
    entries = {}
    for key, name, config, seed in (("model", "model.safetensors", "tiny", 0),
                                    ("lm", "ext.safetensors", "lm-tiny", 1),
                                    ("source_lm", "src.safetensors", "lm-tiny", 2)):
        save_model(random_model(load_config(config), seed), folder / name)
        entries[key] = {"file": name, "sha256": file_digest(folder / name), "step": 1}
    (folder / "clips").mkdir()
    shutil.copy(clip, folder / "clips" / "a.wav")
    row = {"audio": "clips/a.wav", "id": "a", "text": "a test", "voice": "flite:slt",
           "sha256": file_digest(folder / "clips" / "a.wav")}
    (folder / "clips.jsonl").write_text(json.dumps(row) + "\n")
    info = {"format": "int4rt-default-model", "version": 1, **entries, "decoding": decoding,
            "clips": {"manifest": "clips.jsonl", "sha256": file_digest(folder / "clips.jsonl")}}
    (folder / "bundle.json").write_text(json.dumps(info))
    return folder


def test_recommended_fusion_loads_the_bundled_lms(bundle, tmp_path, monkeypatch):
    decoding = {"method": "beam", "beam": 3, "lm_weight": 0.4, "source_lm_weight": 0.2,
                "length_reward": 0.5}
    folder = _random_bundle(tmp_path / "b", bundle.clips[0].audio, decoding)
    loaded = load_bundle(folder)
    assert loaded.decoding == {**decoding, "lm": str(folder / "ext.safetensors"),
                               "source_lm": str(folder / "src.safetensors")}
    monkeypatch.setattr(bundle_module, "BUNDLE_DIR", folder)
    recognizer = Recognizer.default()
    clip = folder / "clips" / "a.wav"
    result = recognizer.transcribe(clip)
    want = int4rt.load(folder / "model.safetensors").transcribe(
        clip, method="beam", beam=3, lm=str(folder / "ext.safetensors"), lm_weight=0.4,
        source_lm=str(folder / "src.safetensors"), source_lm_weight=0.2, length_reward=0.5)
    assert (result.tokens, result.score) == (want.tokens, want.score)
    assert result.components["ext"] != 0 and result.components["src"] != 0
    no_lm = recognizer.transcribe(clip, lm=None, source_lm=None)
    assert no_lm.components["ext"] == no_lm.components["src"] == 0
    unused = load_bundle(_random_bundle(tmp_path / "c", clip, {"method": "greedy"}))
    assert unused.decoding == {"method": "greedy"}
    assert "LMs shipped: ext.safetensors (weight 0), src.safetensors (weight 0)" in \
        unused.describe()
