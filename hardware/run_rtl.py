#!/usr/bin/env python3
"""Build the int4rt reference datapath (hardware/rtl) in Icarus Verilog and run the cocotb
bench (hardware/tb) on exported test-bench directories; prints the compare counts.

    python hardware/run_rtl.py --requant DIR --act DIR --fc DIR --lstm DIR [--lstm DIR ...]
                               [--build BUILD] [--report counts.json]

Each DIR is the output of ``int4rt golden export SET`` or ``int4rt trace``. Needs the PyPI
``cocotb`` package (2.x) and ``iverilog`` (11 or newer) on PATH. Exit status 0 only if every
test ran and every compared value was equal.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = ("int4rt_requant.sv", "int4rt_act_lane.sv", "int4rt_activation.sv",
           "int4rt_mac_row.sv", "int4rt_lstm_cell.sv", "int4rt_rtl_top.sv")
TOP = "int4rt_rtl_top"


def run(requant: list[Path], act: list[Path], fc: list[Path], lstm: list[Path], build: Path,
        report: Path) -> dict[str, dict[str, int]]:
    """Build and simulate; returns {test: {compared, mismatches}} (raises on a failure)."""
    from cocotb_tools.runner import get_results, get_runner

    if shutil.which("iverilog") is None:
        raise RuntimeError("iverilog not found on PATH (Debian: apt-get install -y iverilog)")
    runner = get_runner("icarus")
    runner.build(sources=[HERE / "rtl" / name for name in SOURCES], hdl_toplevel=TOP,
                 build_dir=build, build_args=["-g2012"], timescale=("1ns", "1ps"))
    join = os.pathsep.join
    env = {"INT4RT_TB_REQUANT": join(map(str, requant)), "INT4RT_TB_ACT": join(map(str, act)),
           "INT4RT_TB_FC": join(map(str, fc)), "INT4RT_TB_LSTM": join(map(str, lstm)),
           "INT4RT_TB_REPORT": str(report.resolve()),
           "PYTHONPATH": join([str(HERE / "tb"), os.environ.get("PYTHONPATH", "")])}
    if report.exists():
        report.unlink()
    sys.path.insert(0, str(HERE / "tb"))
    results = runner.test(test_module="test_datapath", hdl_toplevel=TOP, build_dir=build,
                          test_dir=build, extra_env=env, timescale=("1ns", "1ps"))
    tests, failed = get_results(results)
    counts = json.loads(report.read_text(encoding="utf-8")) if report.exists() else {}
    if failed or not tests:
        raise RuntimeError(f"{failed} of {tests} cocotb tests failed; counts {counts}")
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for flag in ("requant", "act", "fc", "lstm"):
        parser.add_argument(f"--{flag}", type=Path, action="append", default=[], metavar="DIR")
    parser.add_argument("--build", type=Path, default=Path("build/rtl"))
    parser.add_argument("--report", type=Path, default=Path("build/rtl/counts.json"))
    args = parser.parse_args(argv)
    args.build.mkdir(parents=True, exist_ok=True)
    try:
        counts = run(args.requant, args.act, args.fc, args.lstm, args.build, args.report)
    except RuntimeError as error:
        print(f"run_rtl: FAILED: {error}", file=sys.stderr)
        return 1
    total = sum(c["compared"] for c in counts.values())
    bad = sum(c["mismatches"] for c in counts.values())
    for name, c in counts.items():
        print(f"{name}: {c['compared']} compared, {c['mismatches']} mismatches")
    print(f"total: {total} compared, {bad} mismatches, tolerance zero")
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
