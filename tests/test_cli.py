"""The ``int4rt`` command line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from int4rt import __version__
from int4rt.cli import main
from int4rt.ops.gemv.gemm_blocked import GEMM_PATHS
from int4rt.ops.gemv.lane_rows import LANE_PATHS
from int4rt.ops.gemv.packed_gemv import PACKED_PATHS


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"int4rt {__version__}"


def test_help_lists_subcommands(capsys):
    assert main([]) == 0
    assert "selftest" in capsys.readouterr().out


def test_selftest_reports_agreement(capsys):
    assert main(["selftest", "--count", "1000"]) == 0
    out = capsys.readouterr().out
    assert "MISMATCH" not in out
    # 2 requantize, 2 int4, 4 activations, 4 gemv + 3 weight/code widths on every
    # dot-product path of this CPU (§7.4) + 1 on each offset-nibble path (§7.5) and lane-row
    # path (§7.6), 2 lstm, 4 joint, 1 log-softmax
    assert out.count("identical") == 19 + 3 * len(GEMM_PATHS) + len(PACKED_PATHS) + len(
        LANE_PATHS)
    for op in ("requantize", "int4", "activations", "gemv", "lstm", "joint", "log_softmax"):
        assert f"  {op} §" in out
    for path in (*GEMM_PATHS, *PACKED_PATHS, *LANE_PATHS):
        assert f"{path} path, 4-bit weights x 4-bit codes" in out
    assert "all operators agree bit for bit" in out


def test_bad_flag_is_one_clear_error():
    proc = subprocess.run(
        [sys.executable, "-m", "int4rt.cli", "selftest", "--count", "two"],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 2
    assert "argument --count: expected an integer, got 'two'" in proc.stderr
    assert "Traceback" not in proc.stderr
