"""Suite-wide pytest hooks: oracle counts in the summary, and no silent oracle or RTL
simulation skips in CI."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

_oracle_lines: list[str] = []
_skipped_oracles: list[str] = []


@pytest.fixture
def report_count() -> Callable[[str], None]:
    """Record a line (e.g. how many outputs an oracle compared) for the end-of-run summary."""
    return _oracle_lines.append


def _is_oracle(report: pytest.CollectReport | pytest.TestReport) -> bool:
    """Oracle tests (tflite-micro) and RTL simulation tests (``rtl``) must run in CI."""
    keywords = getattr(report, "keywords", ())
    return "oracle" in keywords or "rtl" in keywords or "tests/oracle/" in report.nodeid


def pytest_collectreport(report: pytest.CollectReport) -> None:
    """A module-level skip (e.g. tflite-micro not importable) counts as a skipped oracle."""
    if report.skipped and _is_oracle(report):
        _skipped_oracles.append(report.nodeid)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Remember oracle tests that were skipped."""
    if report.skipped and _is_oracle(report):
        _skipped_oracles.append(report.nodeid)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the recorded oracle counts."""
    if _oracle_lines:
        terminalreporter.section("comparison counts (oracles and float checks)")
        for line in _oracle_lines:
            terminalreporter.write_line(line)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI an oracle or rtl test must run: a skip (its package or simulator missing) fails
    the session."""
    if os.environ.get("CI") and _skipped_oracles and exitstatus == 0:
        print(f"\nCI: {len(_skipped_oracles)} oracle or rtl tests were skipped "
              f"({', '.join(_skipped_oracles)}); failing the run.")
        session.exitstatus = 1
