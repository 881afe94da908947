"""Shared files of the hostile-input tests (issue 14): a tiny model, an LM, good audio."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from int4rt.cli import main
from int4rt.model.config import load_config
from int4rt.model.container import save_model
from int4rt.model.random_model import random_model

CONFIGS = Path(__file__).parents[2] / "configs"


@pytest.fixture(scope="session")
def hostile_files(tmp_path_factory) -> dict[str, Path]:
    """A tiny RNN-T, a tiny LM and three good 8 kHz WAV files."""
    root = tmp_path_factory.mktemp("hostile")
    paths = {"model": root / "model.safetensors", "lm": root / "lm.safetensors"}
    save_model(random_model(load_config(CONFIGS / "tiny.json"), 0), paths["model"])
    save_model(random_model(load_config(CONFIGS / "lm-tiny.json"), 1), paths["lm"])
    rng = np.random.default_rng(0)
    for index in range(3):
        paths[f"good{index}"] = root / f"good{index}.wav"
        sf.write(paths[f"good{index}"], 0.3 * rng.standard_normal(4000 + 800 * index), 8000)
    return paths


def run_transcribe(args: list[str], capsys) -> tuple[int, list[str], str]:
    """Exit status, stdout lines (raw text) and stderr of ``int4rt transcribe ARGS``."""
    status = main(["transcribe", *map(str, args)])
    captured = capsys.readouterr()
    return status, [line for line in captured.out.split("\n") if line], captured.err


def write_manifest(path: Path, entries: list[dict]) -> Path:
    """A JSON-lines manifest (ASCII escapes, so lone surrogates can be written)."""
    path.write_text("".join(json.dumps(entry) + "\n" for entry in entries), encoding="utf-8")
    return path
