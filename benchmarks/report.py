"""The runner's results as Markdown tables (a marked section of docs/RESULTS.md) and a PNG."""

from __future__ import annotations

import platform
import re
import statistics
from pathlib import Path


def markers(section: str) -> tuple[str, str]:
    """The comment lines around one runner section of a Markdown file."""
    return f"<!-- benchmarks:{section}:begin -->", f"<!-- benchmarks:{section}:end -->"


def machine() -> str:
    """CPU model name, cores and the kernel path int4rt chose."""
    from int4rt.ops.gemv.dispatch import ACTIVE_PATH

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
    """The tables that ran, between the markers of the section ``results["section"]``."""
    seconds = results["seconds"]
    begin, end = markers(results["section"])
    lines = [begin, "", f"`{command}` ({results['date']}; {machine()}; medians of "
             f"{results['repeats']} alternating rounds after a warm-up, all runs of a table in "
             "one process):"]
    if results["encoder"]:
        lines += ["", f"### Encoder, {seconds:g} s of audio ({results['frames']} encoder "
                  "frames)", ""]
        lines += encoder_table({int(k): v for k, v in results["encoder"].items()})
    if results["decode"]:
        lines += ["", f"### Full decode, {seconds:g} s (encoder + search, one thread)", "",
                  f"Random `{results['config']}` model with its blank bias raised so greedy "
                  f"search emits {results['label_rate']:.1f} labels/s; LMs: two random "
                  f"`{results['lm_config']}`. \"every frame\" is the untuned model (a label on "
                  "every frame).", ""]
        lines += decode_table(results["decode"][1], seconds)
        for threads, grid in results["decode"].items():
            if threads != 1:
                lines += ["", f"{threads} threads:", "", *decode_table(grid, seconds)]
    trained = results.get("trained")
    if trained:
        lines += ["", "### Full decode, trained default model (one thread)", "",
                  f"The shipped INT4 model and its two LMs (`int4rt/default_model`) on its "
                  f"{trained['clips']} clips ({trained['seconds']:.1f} s of synthetic speech; "
                  f"greedy search emits {trained['label_rate']:.1f} labels/s); each run decodes "
                  "every clip.", ""]
        lines += decode_table(trained["times"], trained["seconds"])
    stats = results.get("process")
    if stats:
        lines += ["", "### Process", "", "| measure | value | target |", "|---|---|---|",
                  f"| cold start (process start → greedy transcript, warm Numba cache) | "
                  f"{stats['cold']['cold_start_s']:.2f} s wall, "
                  f"{stats['cold']['cold_start_cpu_s']:.2f} s CPU | ≤ 2 s |",
                  f"| peak RSS, beam 8 + density ratio | {stats['fused']['peak_rss_mib']:.0f} MiB"
                  f" | ≤ 2 × files + 300 = {stats['fused']['rss_limit_mib']:.0f} MiB |"]
    sherpa = results.get("sherpa")
    if sherpa:
        times = sherpa["times"]
        peer = times["sherpa-onnx beam 8 + RNN-LM fusion"]
        lines += ["", f"### Full decode vs sherpa-onnx, {seconds:g} s, one thread", "",
                  f"sherpa-onnx {_sherpa_version()} streaming LSTM transducer of the same size "
                  f"(see `benchmarks/sherpa_peer.py`), tuned to {sherpa['label_rate']:.1f} "
                  "labels/s; LM: 2 × 1024 LSTM, scale 0.5.", "",
                  "| decoder | median | RTF | sherpa beam 8 + LM ÷ this |", "|---|---|---|---|"]
        for name, values in times.items():
            value = _med(values)
            lines.append(f"| {name} | {value:.2f} s | {value / seconds:.3f} | "
                         f"{_med(peer) / value:.2f}× |")
    lines += ["", end]
    return "\n".join(lines) + "\n"


def _sherpa_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sherpa-onnx")
    except PackageNotFoundError:
        return "?"


def write_section(path: Path, name: str, section: str) -> None:
    """Replace the section ``name`` of ``path`` (or append it)."""
    begin, end = markers(name)
    text = path.read_text() if path.exists() else "# Results\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + section.rstrip("\n") + rest.split(end, 1)[1]
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
