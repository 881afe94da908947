"""``int4rt sweep``: every grid point equals a separate decode; the encoder runs once each."""

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
from int4rt.model.rnnt import RnntModel

CONFIGS = Path(__file__).parents[1] / "configs"
GRID = ["--lm-weights", "0,0.6", "--source-lm-weights", "0,0.3", "--beams", "2,3"]


@pytest.fixture(scope="module")
def dev(tmp_path_factory) -> dict:
    """A tiny model, two tiny LMs, four noise files with references."""
    root = tmp_path_factory.mktemp("sweep")
    paths = {}
    for name, config, seed in (("model", "tiny", 0), ("lm", "lm-tiny", 1), ("src", "lm-tiny", 2)):
        paths[name] = str(root / f"{name}.safetensors")
        save_model(random_model(load_config(CONFIGS / f"{config}.json"), seed), paths[name])
    rng = np.random.default_rng(9)
    texts = ["hello", "a tale", "the sea", "no"]
    entries = []
    for index, text in enumerate(texts):
        paths[f"wav{index}"] = str(root / f"s{index}.wav")
        sf.write(paths[f"wav{index}"], 0.3 * rng.standard_normal(3000 + 700 * index), 8000)
        entries.append({"audio_filepath": f"s{index}.wav", "text": text, "duration": 1.0})
    paths["manifest"] = str(root / "dev.json")
    Path(paths["manifest"]).write_text("".join(json.dumps(e) + "\n" for e in entries))
    paths["texts"] = texts
    paths["args"] = [paths["model"], "--manifest", paths["manifest"], "--lm", paths["lm"],
                     "--source-lm", paths["src"], *GRID]
    return paths


def test_grid_points_equal_separate_decodes(dev, tmp_path, capsys):
    out = tmp_path / "sweep.json"
    assert main(["sweep", *dev["args"], "--output", str(out)]) == 0
    report = json.loads(out.read_text())
    recognizer = int4rt.load(dev["model"])
    assert len(report["points"]) == 8 and report["utterances"] == 4
    for row in report["points"]:
        hyps = [recognizer.transcribe(dev[f"wav{i}"], method="beam", beam=row["beam"],
                                      lm=dev["lm"], lm_weight=row["lm_weight"],
                                      source_lm=dev["src"],
                                      source_lm_weight=row["source_lm_weight"]).text
                for i in range(4)]
        assert row["wer"] == wer(dev["texts"], hyps)
        assert row["cer"] == cer(dev["texts"], hyps)
    assert report["best"]["wer"] == min(row["wer"] for row in report["points"])
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 10 and printed[-1].startswith("best: lm_weight ")


def test_encoder_runs_once_per_utterance(dev, monkeypatch, capsys):
    calls = []
    original = RnntModel.encode

    def counting(self, features, **kwargs):
        calls.append(features.shape)
        return original(self, features, **kwargs)

    monkeypatch.setattr(RnntModel, "encode", counting)
    assert main(["sweep", *dev["args"]]) == 0
    assert len(calls) == 4  # 4 utterances, 8 grid points


@pytest.mark.thorough  # starts worker processes: the full suite only
def test_two_processes_give_the_same_table(dev, tmp_path, capsys):
    small = [dev["model"], "--manifest", dev["manifest"], "--beams", "2,3", "--shard-size", "2"]
    reports = []
    for jobs in ("1", "2"):
        out = tmp_path / f"jobs{jobs}.json"
        assert main(["sweep", *small, "--jobs", jobs, "--output", str(out)]) == 0
        reports.append(out.read_text())
    assert reports[0] == reports[1]
    assert [row["beam"] for row in json.loads(reports[0])["points"]] == [2, 3]
    capsys.readouterr()


def test_bad_sweeps(dev, capsys):
    assert main(["sweep", *dev["args"], "--jobs", "2", "--dask", "local:1"]) == 2
    assert "give --jobs N or --dask ADDRESS, not both" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["sweep", *dev["args"], "--lm-weights", "0,x"])
    assert "expected numbers separated by commas" in capsys.readouterr().err


def test_sweep_needs_references_and_lms(dev, tmp_path, capsys):
    bare = tmp_path / "bare.jsonl"
    bare.write_text(json.dumps({"audio": dev["wav0"]}) + "\n")
    assert main(["sweep", dev["model"], "--manifest", str(bare)]) == 2
    assert "no reference texts" in capsys.readouterr().err
    assert main(["sweep", dev["model"], "--manifest", dev["manifest"],
                 "--lm-weights", "0.5"]) == 2
    assert "lm_weight is 0.5 but no lm was given" in capsys.readouterr().err
