"""The examples run as documented."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import jiwer
import pytest

from int4rt.bundle import load_bundle

ROOT = Path(__file__).parents[1]


def test_demo_prints_each_clip_and_error_rates_of_what_it_printed():
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "demo.py")],
                          capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    clips = load_bundle().clips
    assert out.startswith("model: model.safetensors (small, INT4, step ")
    refs = re.findall(r"^  ref: (.*)$", out, re.M)
    hyps = re.findall(r"^  hyp: ?(.*)$", out, re.M)
    assert refs == [clip.text for clip in clips] and len(hyps) == len(clips)
    rates = re.search(r"^WER ([\d.]+) %  CER ([\d.]+) %  over (\d+) clips$", out, re.M)
    assert rates is not None, out
    assert float(rates[1]) == pytest.approx(100 * jiwer.wer(refs, hyps), abs=0.006)
    assert float(rates[2]) == pytest.approx(100 * jiwer.cer(refs, hyps), abs=0.006)
    assert int(rates[3]) == len(clips)
    rtf = re.search(r"^RTF ([\d.]+): ([\d.]+) s to decode ([\d.]+) s of audio", out, re.M)
    assert rtf is not None and float(rtf[2]) > 0
    assert float(rtf[3]) == pytest.approx(sum(sf_seconds(c.audio) for c in clips), abs=0.011)
    assert float(rtf[1]) == pytest.approx(float(rtf[2]) / float(rtf[3]), abs=0.002)


def sf_seconds(path: Path) -> float:
    import soundfile as sf

    return sf.info(path).duration


@pytest.mark.thorough
def test_transcribe_example_runs():
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "transcribe.py")],
                          capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("text: ")
    assert lines[1].startswith("times_s: [")
    score = float(lines[2].split(":")[1])
    parts = [float(line.split(":")[1]) for line in lines[3:8]]
    assert [line.split(":")[0].strip() for line in lines[3:8]] == [
        "am", "ext", "src", "length", "blank"]
    assert abs(sum(parts) - score) < 5e-3
