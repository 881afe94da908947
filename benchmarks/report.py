"""The runner's results as Markdown tables (a marked section of docs/RESULTS.md) and a PNG."""

from __future__ import annotations

import platform
import re
import statistics
from pathlib import Path

BEGIN, END = "<!-- benchmarks:begin -->", "<!-- benchmarks:end -->"


def machine() -> str:
    """CPU model name, cores and the kernel path int4rt chose."""
    from int4rt.kernels.dispatch import ACTIVE_PATH

    name = platform.processor() or "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        found = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.M)
        name = found.group(1) if found else name
    import os

    return f"{name}, {os.cpu_count()} logical CPUs, int4rt kernel path `{ACTIVE_PATH}`"


def _med(times: list[float]) -> float:
    return statistics.median(times)


def encoder_table(encoder: dict[int, dict[str, list[float]]]) -> list[str]:
    """Rows: implementation; columns: median seconds per thread count and the ratio to ORT."""
    threads = sorted(encoder)
    head = "| implementation | " + " | ".join(
        f"{t} thread{'s' * (t > 1)} | ratio to ORT int8" for t in threads) + " |"
    lines = [head, "|---|" + "---|---|" * len(threads)]
    for name in encoder[threads[0]]:
        cells = []
        for t in threads:
            runs = encoder[t]
            peer = runs.get("ONNX Runtime int8 dynamic")
            value = _med(runs[name])
            ratio = f"{value / _med(peer):.2f}×" if peer else "—"
            cells.append(f"{value * 1e3:.0f} ms | {ratio}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def decode_table(grid: dict[str, list[float]], seconds: float) -> list[str]:
    """Rows: search × fusion; median seconds, RTF and ratio to greedy without LM."""
    base = grid.get("greedy / no LM")
    lines = ["| search / fusion | median | RTF | ratio to greedy, no LM |", "|---|---|---|---|"]
    for name, times in grid.items():
        value = _med(times)
        ratio = f"{value / _med(base):.2f}×" if base else "—"
        lines.append(f"| {name} | {value:.2f} s | {value / seconds:.3f} | {ratio} |")
    return lines


def markdown(results: dict, command: str) -> str:
    """The whole section, between the markers."""
    seconds = results["seconds"]
    lines = [BEGIN, "", "## Benchmark runner", "",
             f"`{command}` ({results['date']}; {machine()}; medians of {results['repeats']} "
             "alternating rounds after a warm-up, all runs of a table in one process):", "",
             f"### Encoder, {seconds:g} s of audio ({results['frames']} encoder frames)", ""]
    lines += encoder_table({int(k): v for k, v in results["encoder"].items()})
    rate = results["label_rate"]
    lines += ["", f"### Full decode, {seconds:g} s (encoder + search, one thread)", "",
              f"Random `{results['config']}` model with its blank bias raised so greedy search "
              f"emits {rate:.1f} labels/s; LMs: two random `{results['lm_config']}`. "
              "\"every frame\" is the untuned model (a label on every frame).", ""]
    lines += decode_table(results["decode"][1], seconds)
    for threads, grid in results["decode"].items():
        if threads != 1:
            lines += ["", f"{threads} threads:", "", *decode_table(grid, seconds)]
    stats = results.get("process")
    if stats:
        lines += ["", "### Process", "", "| measure | value | target |", "|---|---|---|",
                  f"| cold start (process start → greedy transcript, warm Numba cache) | "
                  f"{stats['cold']['cold_start_s']:.2f} s | ≤ 2 s |",
                  f"| peak RSS, beam 8 + density ratio | {stats['fused']['peak_rss_mib']:.0f} MiB"
                  f" | ≤ 2 × files + 300 = {stats['fused']['rss_limit_mib']:.0f} MiB |"]
    lines += ["", END]
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str) -> None:
    """Replace the marked section of ``path`` (or append it)."""
    text = path.read_text() if path.exists() else "# Results\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + section.rstrip("\n") + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def plot(results: dict, path: Path) -> None:
    """Decode time vs beam for each fusion (one thread), with the encoder peers as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = results["decode"][1]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for fusion in ("no LM", "shallow", "density ratio"):
        beams = [b for b in (4, 8, 16) if f"beam {b} / {fusion}" in grid]
        ax.plot(beams, [_med(grid[f"beam {b} / {fusion}"]) for b in beams], marker="o",
                label=f"int4rt modified beam, {fusion}")
    for name, times in results["encoder"][1].items():
        ax.axhline(_med(times), linestyle=":", linewidth=1, label=f"encoder only: {name}")
    ax.set_xlabel("beam")
    ax.set_ylabel(f"seconds for {results['seconds']:g} s of audio (1 thread)")
    ax.set_xscale("log", base=2)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
