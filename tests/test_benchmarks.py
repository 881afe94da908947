"""The benchmark runner's quick mode works end to end on the tiny configs, without peers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile

from int4rt.bundle import load_bundle

pytestmark = pytest.mark.thorough  # a subprocess run of the whole runner (~16 s)

ROOT = Path(__file__).parents[1]


def test_quick_mode_writes_every_table(tmp_path):
    results_md = tmp_path / "RESULTS.md"
    results_md.write_text("# Results\n\nkept text\n")
    out = tmp_path / "bench.json"
    env = dict(os.environ, NUMBA_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--no-peers", "--tables",
         "encoder,decode,trained",
         "--compare-paths", "portable", "--json", str(out), "--results", str(results_md)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["config"] == "tiny.json" and results["seconds"] == 1.0
    assert list(results["encoder"]["1"]) == ["int4rt (Numba)", "int4rt (Numba), `portable` path"]
    grid = results["decode"]["1"]
    assert len(grid) == 2 * 3 + 2  # quick: 2 searches × 3 fusions, every frame, portable path
    assert "beam 8 / density ratio, `portable` path" in grid
    assert all(len(times) == 1 and times[0] > 0 for times in grid.values())
    assert 5.0 <= results["label_rate"] <= 30.0  # tuned toward 15 labels/s on 1 s of audio
    trained = results["trained"]
    clips = load_bundle().clips
    assert trained["clips"] == len(clips)
    seconds = sum(soundfile.info(clip.audio).duration for clip in clips)
    assert trained["seconds"] == pytest.approx(seconds, abs=1e-3)
    # greedy search on clean speech emits about one label per reference character
    reference_rate = sum(len(clip.text) for clip in clips) / seconds
    assert 0.7 * reference_rate <= trained["label_rate"] <= 1.3 * reference_rate
    assert list(trained["times"]) == [f"{search} / {fusion}" for search in ("greedy", "beam 8")
                                      for fusion in ("no LM", "shallow", "density ratio")]
    text = results_md.read_text()
    assert "### Full decode, trained default model (one thread)" in text
    assert text.startswith("# Results\n\nkept text\n")
    assert text.count("<!-- benchmarks:main:begin -->") == 1
    assert "| beam 8 / density ratio |" in text
