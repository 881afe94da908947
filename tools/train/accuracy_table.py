"""WER/CER bookkeeping and the markdown of the accuracy table (docs/RESULTS.md, "Accuracy").

Rates are corpus rates (DECODING.md, "WER and CER"): per cell, Σ (S + D + I) over the set's
utterances divided by Σ reference words (characters), with int4rt's text normalization.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from int4rt.metrics import char_errors, word_errors

LM_MODES = ("none", "shallow", "density_ratio")
LM_LABELS = {"none": "none", "shallow": "shallow", "density_ratio": "density ratio"}
BEGIN = "<!-- accuracy:begin (written by python -m int4rt_train.accuracy) -->"
END = "<!-- accuracy:end -->"


@dataclass(frozen=True, order=True)
class Point:
    """One decoding configuration of one system: quantization, LM fusion mode, beam."""

    system: str
    lm: str
    beam: int


@dataclass
class Tally:
    """Summed word and character edit counts over utterances."""

    word_errors: int = 0
    words: int = 0
    char_errors: int = 0
    chars: int = 0
    utterances: int = 0

    def add(self, reference: str, hypothesis: str) -> None:
        """Count one utterance (normalized as DECODING.md, "Text normalization")."""
        words, chars = word_errors(reference, hypothesis), char_errors(reference, hypothesis)
        self.word_errors += words.errors
        self.words += words.ref_length
        self.char_errors += chars.errors
        self.chars += chars.ref_length
        self.utterances += 1

    @property
    def wer(self) -> float:
        """Σ word errors / Σ reference words (NaN without words)."""
        return self.word_errors / self.words if self.words else math.nan

    @property
    def cer(self) -> float:
        """Σ character errors / Σ reference characters (NaN without characters)."""
        return self.char_errors / self.chars if self.chars else math.nan


@dataclass
class Scoreboard:
    """Tallies by evaluation set and :class:`Point` (or peer name)."""

    tallies: dict[str, dict[Point | str, Tally]] = field(default_factory=dict)

    def add(self, set_name: str, key: Point | str, reference: str, hypothesis: str) -> None:
        """Count one decoded utterance of ``set_name`` under ``key``."""
        self.tallies.setdefault(set_name, {}).setdefault(key, Tally()).add(reference, hypothesis)

    def get(self, set_name: str, key: Point | str) -> Tally | None:
        """The tally, or None when nothing was decoded under ``key``."""
        return self.tallies.get(set_name, {}).get(key)


def percent(rate: float | None) -> str:
    """``12.34`` (percent, two decimals) or ``n/a``."""
    return "n/a" if rate is None or math.isnan(rate) else f"{100 * rate:.2f}"


def set_table(board: Scoreboard, set_name: str, systems: Sequence[str],
              beams: Sequence[int]) -> list[str]:
    """A markdown table (then a blank line): one row per (system, LM mode), WER then CER per
    beam."""
    head = (["system", "LM"] + [f"WER b{b}" for b in beams] + [f"CER b{b}" for b in beams])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for system in systems:
        for mode in LM_MODES:
            tallies = [board.get(set_name, Point(system, mode, beam)) for beam in beams]
            if all(t is None for t in tallies):
                continue
            cells = [percent(t.wer if t else None) for t in tallies]
            cells += [percent(t.cer if t else None) for t in tallies]
            lines.append(f"| {system} | {LM_LABELS[mode]} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def utterance_count(board: Scoreboard, set_name: str) -> int:
    """Utterances scored in ``set_name`` (the largest count of any cell)."""
    return max((t.utterances for t in board.tallies.get(set_name, {}).values()), default=0)


def replace_block(document: str, block: str, heading: str) -> str:
    """``document`` with the text between BEGIN and END replaced by ``block``; without the
    markers, ``heading``, the markers and the block are appended.
    """
    start, stop = document.find(BEGIN), document.find(END)
    if start >= 0 and stop > start:
        return document[:start + len(BEGIN)] + "\n" + block.rstrip("\n") + "\n" + document[stop:]
    return (document.rstrip("\n") + f"\n\n{heading}\n\n{BEGIN}\n" + block.rstrip("\n")
            + f"\n{END}\n")


def plot_wer(board: Scoreboard, sets: Sequence[str], systems: Sequence[str],
             beams: Sequence[int], path: Path) -> None:
    """PNG: one panel per set, WER against beam, a line per system and LM mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(3, len(sets))
    rows = -(-len(sets) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(5 * columns, 3.8 * rows), squeeze=False)
    styles = {"none": "-", "shallow": "--", "density_ratio": ":"}
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for axis, set_name in zip(axes.flat, sets, strict=False):
        for index, system in enumerate(systems):
            for mode in LM_MODES:
                values = [board.get(set_name, Point(system, mode, beam)) for beam in beams]
                if any(t is None for t in values):
                    continue
                axis.plot(beams, [100 * t.wer for t in values], styles[mode], marker="o",
                          color=colors[index % len(colors)],
                          label=f"{system}, {LM_LABELS[mode]}")
        axis.set_title(set_name)
        axis.set_xlabel("beam")
        axis.set_ylabel("WER %")
        axis.set_xticks(list(beams))
        axis.grid(True, alpha=0.3)
    for axis in list(axes.flat)[len(sets):]:
        axis.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=min(4, max(1, len(labels))),
                  fontsize="small")
    figure.tight_layout(rect=(0, 0.08 + 0.02 * (len(labels) // 4), 1, 1))
    figure.savefig(path, dpi=110)
    plt.close(figure)


def markdown_rows(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """A markdown table, then a blank line."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]
