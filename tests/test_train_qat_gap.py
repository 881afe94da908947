"""``int4rt_train.qat_gap``: whole-set FP32 against INT4, rows per voice that add up to the set,
and an INT4 column equal to what ``int4rt transcribe`` scores on the same manifest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from int4rt.cli import main as int4rt_main
from int4rt_train import qat_gap
from int4rt_train.accuracy import convert
from tests.test_accuracy import CONFIGS, random_checkpoint

TEXTS = ("the host", "a son", "tea", "hello to all", "no", "the oath")
VOICES = ("espeak:en-us+m3:s150:p50", "flite:slt", "espeak:en+f2:s170:p40")


def _corpus(root: Path) -> Path:
    rng = np.random.default_rng(3)
    for name in ("test-a", "dev-fortunes"):
        folder = root / "sets" / name
        (folder / "wav").mkdir(parents=True)
        lines = []
        for index, text in enumerate(TEXTS):
            uid = f"{name}-{index:05d}"
            sf.write(folder / "wav" / f"{uid}.wav",
                     0.3 * rng.standard_normal(3200 + 800 * index), 16000)
            lines.append(json.dumps({"audio": f"wav/{uid}.wav", "id": uid, "text": text,
                                     "voice": VOICES[index % len(VOICES)]}))
        (folder / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return root


def _rows(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_voice_rows_add_up_and_int4_matches_transcribe(tmp_path: Path, capsys) -> None:
    corpus = _corpus(tmp_path / "corpus")
    fp32 = random_checkpoint("tiny", tmp_path / "fp32.safetensors", 4)
    int4 = convert(fp32, CONFIGS / "tiny.json", tmp_path / "int4.safetensors",
                   corpus / "sets" / "dev-fortunes" / "manifest.jsonl", 4, False).path
    argv = ["--fp32", str(fp32), "--int4", str(int4), "--config", str(CONFIGS / "tiny.json"),
            "--corpus", str(corpus), "--sets", "test-a", "--beam", "2", "--by-voice",
            "--work", str(tmp_path / "work")]
    assert qat_gap.main(argv) == 0
    rows = _rows(capsys)
    whole = [r for r in rows if "voice" not in r]
    voices = [r for r in rows if "voice" in r]
    assert len(whole) == 1 and {r["voice"] for r in voices} == {"espeak:m3", "flite:slt",
                                                                 "espeak:f2"}
    for key in ("utterances", "words", "fp32_errors", "int4_errors"):
        assert whole[0][key] == sum(r[key] for r in voices), key
    assert whole[0]["utterances"] == len(TEXTS) and whole[0]["words"] == 11
    assert whole[0]["gap"] == round(whole[0]["int4_wer"] - whole[0]["fp32_wer"], 2)
    manifest = tmp_path / "abs.jsonl"
    folder = corpus / "sets" / "test-a"
    manifest.write_text("".join(
        json.dumps({**row, "audio": str(folder / row["audio"])}) + "\n"
        for row in map(json.loads, (folder / "manifest.jsonl").read_text().splitlines())))
    summary = tmp_path / "summary.json"
    assert int4rt_main(["transcribe", str(int4), "--manifest", str(manifest), "--method",
                        "alsd", "--beam", "2", "--summary", str(summary), "--output",
                        str(tmp_path / "out.jsonl")]) == 0
    capsys.readouterr()
    assert round(100 * json.loads(summary.read_text())["wer"], 2) == whole[0]["int4_wer"]
    assert qat_gap.main([*argv[:-3], "--limit", "2", "--work", str(tmp_path / "work")]) == 0
    limited = _rows(capsys)
    assert len(limited) == 1 and limited[0]["utterances"] == 2


def test_bad_inputs_stop_with_one_line(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "corpus")
    fp32 = random_checkpoint("tiny", tmp_path / "fp32.safetensors", 4)
    base = ["--config", str(CONFIGS / "tiny.json"), "--corpus", str(corpus)]
    with pytest.raises(SystemExit, match=r"--int4 .*missing\.safetensors: no such"):
        qat_gap.main(["--fp32", str(fp32), "--int4", str(tmp_path / "missing.safetensors"),
                      *base])
    with pytest.raises(SystemExit, match="no manifest for test-b"):
        qat_gap.main(["--fp32", str(fp32), "--int4", str(fp32), *base, "--sets", "test-b"])
    with pytest.raises(SystemExit, match=r"--int4 .*fp32\.safetensors: header"):
        qat_gap.main(["--fp32", str(fp32), "--int4", str(fp32), *base, "--sets", "test-a"])
    (tmp_path / "calib.txt").write_text("the host\nno son\n")
    lm = convert(random_checkpoint("lm-tiny", tmp_path / "lm.safetensors", 5),
                 CONFIGS / "lm-tiny.json", tmp_path / "lm4.safetensors",
                 tmp_path / "calib.txt", 4, False)
    with pytest.raises(SystemExit, match="not an RNN-T model file"):
        qat_gap.main(["--fp32", str(fp32), "--int4", str(lm.path), *base, "--sets", "test-a"])
    int4 = convert(fp32, CONFIGS / "tiny.json", tmp_path / "int4.safetensors",
                   corpus / "sets" / "dev-fortunes" / "manifest.jsonl", 4, False).path
    good = ["--fp32", str(fp32), "--int4", str(int4), "--corpus", str(corpus), "--sets", "test-a",
            "--work", str(tmp_path / "work")]
    with pytest.raises(SystemExit, match=r"--fp32 .*lm-tiny\.json"):
        qat_gap.main([*good, "--config", str(CONFIGS / "lm-tiny.json")])
    with pytest.raises(SystemExit, match=r"--config .*missing\.json"):
        qat_gap.main([*good, "--config", str(tmp_path / "missing.json")])
    for flag in ("--beam", "--limit"):
        with pytest.raises(SystemExit):
            qat_gap.main([*good, "--config", str(CONFIGS / "tiny.json"), flag, "0"])


def test_rows_sum_counts_and_leave_rates_empty_without_words() -> None:
    row = qat_gap._row("s", "flite:slt", [(4, 1, 2), (6, 0, 3)])
    assert (row["words"], row["fp32_errors"], row["int4_errors"]) == (10, 1, 5)
    assert (row["fp32_wer"], row["int4_wer"], row["gap"]) == (10.0, 50.0, 40.0)
    empty = qat_gap._row("s", None, [(0, 0, 1)])
    assert "voice" not in empty and empty["fp32_wer"] is None and empty["gap"] is None
