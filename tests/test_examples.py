"""The examples run as documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


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
