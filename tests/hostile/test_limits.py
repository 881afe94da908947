"""Issue 14 §3, §7: option limits, WER/CER in two DP rows, and the long-audio memory bound."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from int4rt.corpus import usable_cores
from int4rt.decode import DecodeOptions
from int4rt.decode.options import BEAM_MAX
from int4rt.errors import Int4rtError
from int4rt.metrics import edit_counts

from .conftest import run_transcribe


def test_jobs_above_the_cores_need_force(hostile_files, capsys):
    jobs = usable_cores() + 1
    status, lines, err = run_transcribe([hostile_files["model"], hostile_files["good0"],
                                         "--jobs", jobs], capsys)
    assert status == 2 and not lines and "--force-jobs" in err and f"--jobs {jobs}" in err


def test_beam_has_a_documented_maximum(hostile_files, capsys):
    status, _, err = run_transcribe([hostile_files["model"], hostile_files["good0"], "--method",
                                     "beam", "--beam", 65536], capsys)
    assert status == 2 and f"beam must be an integer in [1, {BEAM_MAX}]" in err
    DecodeOptions(method="beam", beam=BEAM_MAX).validate()
    with pytest.raises(Int4rtError):
        DecodeOptions(method="beam", beam=BEAM_MAX + 1).validate()
    doc = (Path(__file__).parents[2] / "docs" / "DECODING.md").read_text()
    assert f"integer 1 … {BEAM_MAX} |" in doc


def _naive_counts(ref: list, hyp: list) -> tuple[int, int, int]:
    """The specified backtrace over the full matrix (DECODING.md, Alignment and counts)."""
    start = 0
    while start < min(len(ref), len(hyp)) and ref[start] == hyp[start]:
        start += 1
    end_r, end_h = len(ref), len(hyp)
    while end_r > start and end_h > start and ref[end_r - 1] == hyp[end_h - 1]:
        end_r, end_h = end_r - 1, end_h - 1
    r, h = ref[start:end_r], hyp[start:end_h]
    d = [[i + j if i == 0 or j == 0 else 0 for j in range(len(h) + 1)] for i in range(len(r) + 1)]
    for i in range(1, len(r) + 1):
        for j in range(1, len(h) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1,
                          d[i - 1][j - 1] + (r[i - 1] != h[j - 1]))
    subs = dels = ins = 0
    i, j = len(r), len(h)
    while i and j:
        if d[i][j] == d[i - 1][j] + 1:
            dels, i = dels + 1, i - 1
        elif j >= 2 and d[i][j - 1] == d[i - 1][j - 1] - 1:
            ins, j = ins + 1, j - 1
        else:
            subs, i, j = subs + (r[i - 1] != h[j - 1]), i - 1, j - 1
    return subs, dels + i, ins + j


def test_two_row_counts_equal_the_full_matrix_backtrace():
    rng = np.random.default_rng(14)
    for _ in range(1000):
        ref = rng.integers(0, rng.integers(1, 5), rng.integers(0, 12)).tolist()
        hyp = rng.integers(0, rng.integers(1, 5), rng.integers(0, 12)).tolist()
        assert tuple(edit_counts(ref, hyp))[:3] == _naive_counts(ref, hyp), (ref, hyp)


_EDIT_SCRIPT = """
import resource, numpy as np
from int4rt.metrics import edit_counts
edit_counts([1, 2], [2, 3])  # compiled (or loaded from the cache) before the limit
with open("/proc/self/statm") as f:
    used = int(f.read().split()[0]) * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (used + 300_000_000, resource.RLIM_INFINITY))
rng = np.random.default_rng(1)
ref, hyp = rng.integers(0, 50, 15000).tolist(), rng.integers(0, 50, 15100).tolist()
counts = edit_counts(ref, hyp)
print(counts.errors, counts.ref_length)
"""


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs Linux /proc")
def test_edit_counts_memory_is_linear():
    """15000 x 15100 tokens under a 300 MB address-space margin: the full int32 matrix
    (906 MB) could not be allocated.
    """
    result = subprocess.run([sys.executable, "-c", _EDIT_SCRIPT], capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    errors, length = map(int, result.stdout.split())
    assert length == 15000 and errors >= 10000


_MEMORY_SCRIPT = """
import resource, sys, json
import numpy as np, soundfile as sf
import int4rt
from int4rt import corpus
path, model_path = sys.argv[1], sys.argv[2]
corpus.init_worker(model_path, dict(method="greedy"))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
line = corpus.decode_item(corpus.Item(path, path))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"base_kib": base, "peak_kib": peak, "duration": line.get("duration"),
                  "error": line.get("error")}))
"""


@pytest.mark.slow
def test_one_hour_of_audio_in_bounded_memory(tmp_path):
    """One hour at the model's rate (8 kHz, tiny model): at most 300 MB above the model.

    The model's blank logit is raised so that it emits no label: the front end, the encoder
    and the search over 180 000 encoder frames are measured, not the label count.
    """
    import soundfile as sf

    from int4rt.model.config import load_config
    from int4rt.model.container import save_model
    from int4rt.model.random_model import random_model

    model = random_model(load_config(Path(__file__).parents[2] / "configs" / "tiny.json"), 0)
    model.joint.out.bias.setflags(write=True)
    model.joint.out.bias[model.blank_id] = 4096
    model_path = tmp_path / "blank.safetensors"
    save_model(model, model_path)
    path = tmp_path / "hour.wav"
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", 8000, 1, subtype="PCM_16") as audio:
        for _ in range(60):
            audio.write(0.1 * rng.standard_normal(8000 * 60))
    result = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, str(path),
                             str(model_path)], capture_output=True, text=True,
                            check=True, timeout=3600)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["error"] is None and report["duration"] == 3600.0
    assert (report["peak_kib"] - report["base_kib"]) * 1024 <= 300e6, report
