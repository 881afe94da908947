"""``int4rt transcribe`` and ``Recognizer.transcribe``: JSON lines, errors, resume, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import int4rt
from int4rt.cli import main
from int4rt.metrics import cer, wer
from int4rt.model.config import load_config
from int4rt.model.container import save_model
from int4rt.model.random_model import random_model

CONFIGS = Path(__file__).parents[1] / "configs"


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    """A tiny model, two tiny LMs and audio files: good, converted and broken ones."""
    root = tmp_path_factory.mktemp("transcribe")
    paths = {}
    for name, config, seed in (("model", "tiny", 0), ("lm", "lm-tiny", 1), ("src", "lm-tiny", 2)):
        paths[name] = str(root / f"{name}.safetensors")
        save_model(random_model(load_config(CONFIGS / f"{config}.json"), seed), paths[name])
    rng = np.random.default_rng(0)
    for index in range(3):
        paths[f"good{index}"] = str(root / f"good{index}.wav")
        sf.write(paths[f"good{index}"], 0.3 * rng.standard_normal(4000 + 800 * index), 8000)
    paths["stereo24"] = str(root / "stereo24.flac")
    sf.write(paths["stereo24"], 0.2 * rng.standard_normal((16000, 2)), 16000, subtype="PCM_24")
    paths["empty"] = str(root / "empty.wav")
    Path(paths["empty"]).write_bytes(b"")
    paths["nan"] = str(root / "nan.wav")
    sf.write(paths["nan"], np.full(4000, np.nan), 8000, subtype="FLOAT")
    paths["text"] = str(root / "notes.wav")
    Path(paths["text"]).write_text("this is not audio\n" * 50)
    paths["mp3"] = str(root / "song.mp3")
    Path(paths["mp3"]).write_bytes(b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(2000))
    return paths


def _run(args: list[str], capsys) -> tuple[int, list[dict], str]:
    status = main(["transcribe", *args])
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines() if line.strip()]
    return status, lines, captured.err


def _stable(lines: list[dict]) -> list[dict]:
    return [{k: v for k, v in line.items() if k != "decode_seconds"} for line in lines]


def test_good_and_bad_audio(files, capsys):
    names = ["good0", "empty", "stereo24", "nan", "text", "mp3", "good1"]
    status, lines, _ = _run([files["model"], *(files[n] for n in names)], capsys)
    assert status == 0
    assert [line["audio"] for line in lines] == [files[n] for n in names]
    by_name = dict(zip(names, lines, strict=True))
    for name in ("good0", "stereo24", "good1"):
        line = by_name[name]
        assert "error" not in line, line
        assert line["text"] == "".join(line["tokens"])
        assert len(line["frame_indices"]) == len(line["tokens"]) == len(line["token_ids"])
        assert line["times_s"] == [round(0.02 * f, 4) for f in line["frame_indices"]]
        assert "timestamps" not in line
        assert sum(line["components"].values()) == line["score"]
        assert line["decode_seconds"] > 0
    assert by_name["good0"]["duration"] == 0.5
    assert by_name["stereo24"]["duration"] == 1.0  # 16 kHz stereo 24-bit, read at 8 kHz mono
    for name in ("empty", "nan", "text", "mp3"):
        assert set(by_name[name]) == {"audio", "error"}, by_name[name]
    assert "NaN" in by_name["nan"]["error"] or "finite" in by_name["nan"]["error"]


@pytest.mark.thorough
@pytest.mark.parametrize("method", ["greedy", "beam", "alsd"])
def test_identical_across_runs_jobs_batches_and_backends(files, capsys, method):
    audios = [files["good0"], files["good1"], files["good2"]]
    fusion = ["--lm", files["lm"], "--lm-weight", "0.4", "--source-lm", files["src"],
              "--source-lm-weight", "0.2"] if method != "greedy" else []
    common = [files["model"], *audios, "--method", method, "--beam", "3", *fusion]
    reference = _stable(_run(common, capsys)[1])
    assert _stable(_run(common, capsys)[1]) == reference
    assert _stable(_run([*common, "--backend", "numpy"], capsys)[1]) == reference
    alone = _stable(_run([files["model"], audios[1], *common[4:]], capsys)[1])
    assert alone == reference[1:2]
    if method == "beam":
        assert _stable(_run([*common, "--jobs", "2"], capsys)[1]) == reference


def test_resume_skips_done_inputs_and_cuts_a_partial_line(files, tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    audios = [files["good0"], files["good1"], files["good2"]]
    assert main(["transcribe", files["model"], *audios, "--output", str(out)]) == 0
    complete = out.read_text().splitlines()
    assert len(complete) == 3
    out.write_text(complete[0] + "\n" + complete[1][:25])  # as if killed mid-write
    assert main(["transcribe", files["model"], *audios, "--output", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["audio"] for line in lines] == [audios[0], audios[1], audios[2]]
    assert _stable(lines) == _stable([json.loads(line) for line in complete])
    assert main(["transcribe", files["model"], *audios, "--output", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 3
    capsys.readouterr()


def test_manifest_error_rates(files, tmp_path, capsys):
    manifest = tmp_path / "m.jsonl"
    refs = {"good0": "the cat", "good1": "a test sentence", "nan": "never decoded"}
    manifest.write_text("".join(json.dumps({"audio": files[n], "text": t}) + "\n"
                                for n, t in refs.items()))
    status, lines, err = _run([files["model"], "--manifest", str(manifest)], capsys)
    assert status == 0 and len(lines) == 3 and "error" in lines[2]
    hyps = [lines[0]["text"], lines[1]["text"]]
    want_wer = wer(["the cat", "a test sentence"], hyps)
    want_cer = cer(["the cat", "a test sentence"], hyps)
    assert f"WER {100 * want_wer:.2f}%" in err and f"CER {100 * want_cer:.2f}%" in err
    assert "1 inputs failed" in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--beam", "0"], "beam"), (["--lm-weight", "0.5"], "lm"),
     (["--jobs", "0"], "--jobs must be >= 1"), (["--nbest", "2"], "nbest")],
)
def test_bad_options_are_one_line(files, capsys, extra, message):
    status = main(["transcribe", files["model"], files["good0"], *extra])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("int4rt: error:") and message in err and "Traceback" not in err


def test_lm_file_as_model_is_an_error(files, capsys):
    assert main(["transcribe", files["lm"], files["good0"]]) == 2
    assert "LM file" in capsys.readouterr().err


def test_python_api(files):
    recognizer = int4rt.load(files["model"])
    result = recognizer.transcribe(files["good1"], method="beam", beam=4, nbest=2,
                                   lm=files["lm"], lm_weight=0.3, source_lm=files["src"],
                                   source_lm_weight=0.1)
    assert result.text == "".join(recognizer.vocab[t] for t in result.tokens)
    assert len(result.nbest) == 2 and result.nbest[0]["score"] == result.score
    assert set(result.components) == {"am", "ext", "src", "length", "blank"}
    samples, rate = sf.read(files["good1"])
    same = recognizer.transcribe(samples, sample_rate=rate, method="beam", beam=4, nbest=2,
                                 lm=files["lm"], lm_weight=0.3, source_lm=files["src"],
                                 source_lm_weight=0.1)
    assert same.to_json() == result.to_json()
    with pytest.raises(int4rt.Int4rtError, match="sample_rate"):
        recognizer.transcribe(samples)
    with pytest.raises(int4rt.Int4rtError, match="unknown decoding option"):
        recognizer.transcribe(files["good1"], beams=3)
