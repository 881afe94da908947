"""The SystemVerilog reference datapath (hardware/rtl) in Icarus Verilog under cocotb, fed
with exported files (``int4rt golden export``, ``int4rt trace`` of a random model and LM),
every output compared with tolerance zero (docs/VERIFICATION.md §8).

Marked ``rtl``: skipped when cocotb or iverilog is missing locally (``make rtl-test``
installs both); in CI a skip fails the run (tests/conftest.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_golden import GOLDEN, golden

from int4rt.cli import main

pytestmark = pytest.mark.rtl

ROOT = Path(__file__).parents[1]
RUNNER = ROOT / "hardware" / "run_rtl.py"
LSTM_SETS = ("lstm_w4_a4u_double", "lstm_w4_a8s_single", "lstm_w8_a4s_single", "lstm_tflm")


def _missing() -> str | None:
    try:
        import cocotb  # noqa: F401
    except ImportError:
        return "cocotb is not installed (pip install -e '.[rtl]', or make rtl-test)"
    if shutil.which("iverilog") is None:
        return "iverilog is not on PATH (apt-get install iverilog, or make rtl-test)"
    return None


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> dict[str, list[Path]]:
    reason = _missing()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("rtl")
    dirs: dict[str, list[Path]] = {"requant": [], "act": [], "fc": [], "lstm": []}
    for key, name in [("requant", "arith_requantize"), ("act", "arith_activations"),
                      ("fc", "arith_fully_connected")] + [("lstm", s) for s in LSTM_SETS]:
        assert golden("export", name, "--dir", str(GOLDEN), "--out", str(root / name)) == 0
        dirs[key].append(root / name)
    model, lm = root / "tiny.safetensors", root / "lm.safetensors"
    assert main(["convert", "--random", "3", "--config", str(ROOT / "configs/tiny.json"),
                 "-o", str(model)]) == 0
    assert main(["convert", "--random", "4", "--config", str(ROOT / "configs/lm-tiny.json"),
                 "-o", str(lm)]) == 0
    features = np.random.default_rng(5).standard_normal((11, 120)).astype(np.float32) * 2
    np.save(root / "features.npy", features)
    assert main(["trace", str(model), "--features", str(root / "features.npy"), "--labels",
                 "3,5,4,10", "--lm", str(lm), "--no-steps", "--out", str(root / "trace")]) == 0
    dirs["lstm"].append(root / "trace")
    return dirs


def _run(dirs: dict[str, list[Path]], build: Path) -> tuple[int, dict, str]:
    report = build / "counts.json"
    command = [sys.executable, str(RUNNER), "--build", str(build), "--report", str(report)]
    for key, paths in dirs.items():
        for path in paths:
            command += [f"--{key}", str(path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    counts = json.loads(report.read_text()) if report.exists() else {}
    return done.returncode, counts, done.stdout + done.stderr


def test_rtl_units_match_every_exported_value(bench, tmp_path, report_count):
    status, counts, log = _run(bench, tmp_path / "build")
    assert status == 0, log[-3000:]
    assert set(counts) == {"requantize", "activation", "fully_connected", "lstm"}, log[-2000:]
    total = sum(c["compared"] for c in counts.values())
    assert all(c["mismatches"] == 0 for c in counts.values()), counts
    assert counts["activation"]["compared"] == 4 * 65536
    assert counts["requantize"]["compared"] == 2 * 6410
    assert total >= 100_000
    report_count(f"rtl (Icarus + cocotb): {total} values compared, 0 mismatches: " +
                 ", ".join(f"{k} {c['compared']}" for k, c in counts.items()))


def test_the_bench_reports_a_corrupted_vector(bench, tmp_path):
    """A single changed expected value must make the simulation fail: the bench compares."""
    corrupted = tmp_path / "arith_requantize"
    shutil.copytree(bench["requant"][0], corrupted)
    path = corrupted / "outputs" / "double.y.hex"
    lines = path.read_text().splitlines()
    lines[100] = f"{(int(lines[100], 16) + 1) & 0xFFFFFFFF:08x}"
    path.write_text("\n".join(lines) + "\n")
    status, counts, log = _run({"requant": [corrupted]}, tmp_path / "build")
    assert status != 0
    assert counts["requantize"]["mismatches"] == 1, log[-2000:]
