"""The end-of-run summary of ``int4rt transcribe``: items, errors, audio hours, RTF, WER.

DECODING.md, "Summary": one line on stderr and, with ``--summary S.json``, the same numbers as
a JSON object.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from int4rt.errors import Int4rtError
from int4rt.manifests import Item
from int4rt.metrics import cer, wer


def summarize(items: Sequence[Item], lines: dict[str, dict], decoded: set[str],
              wall_seconds: float) -> dict:
    """The summary of a run over ``items`` whose output lines are ``lines`` (by key).

    ``decoded``: the keys decoded by this run (the others were resumed from the output).
    RTF is this run's wall time over the audio seconds it decoded; ``decode_rtf`` the sum of
    the per-input ``decode_seconds`` over the same audio (one worker's view).
    """
    present = [lines[item.key] for item in items if item.key in lines]
    this_run = [lines[key] for key in decoded if key in lines]
    run_audio = sum(line.get("duration", 0.0) for line in this_run)
    pairs = [(item.reference, lines[item.key]["text"]) for item in items
             if item.reference is not None and "text" in lines.get(item.key, {})]
    refs, hyps = [ref for ref, _ in pairs], [hyp for _, hyp in pairs]
    return {
        "items": len(items),
        "decoded": len(this_run),
        "resumed": len(present) - len(this_run),
        "errors": sum("error" in line for line in present),
        "audio_hours": round(sum(line.get("duration", 0.0) for line in present) / 3600, 6),
        "wall_seconds": round(wall_seconds, 3),
        "rtf": round(wall_seconds / run_audio, 6) if run_audio else None,
        "decode_rtf": round(sum(line.get("decode_seconds", 0.0) for line in this_run)
                            / run_audio, 6) if run_audio else None,
        "references": len(pairs),
        "wer": _rate(wer, refs, hyps),
        "cer": _rate(cer, refs, hyps),
    }


def _rate(metric: Callable[[list[str], list[str]], float], refs: list[str],
          hyps: list[str]) -> float | None:
    if not refs:
        return None
    value = metric(refs, hyps)
    return None if math.isnan(value) else round(value, 6)


def summary_line(summary: dict) -> str:
    """``summary: N items (D decoded, R resumed), E errors, H audio hours, RTF x, WER y%``."""
    def show(value: float | None, fmt: str) -> str:
        return "n/a" if value is None else format(value, fmt)

    wer_text = "n/a" if summary["wer"] is None else f"{100 * summary['wer']:.2f}%"
    return (f"summary: {summary['items']} items ({summary['decoded']} decoded, "
            f"{summary['resumed']} resumed), {summary['errors']} errors, "
            f"{summary['audio_hours']:.4f} audio hours, RTF {show(summary['rtf'], '.3f')} "
            f"(decode {show(summary['decode_rtf'], '.3f')}), WER {wer_text}")


def report_summary(items: Sequence[Item], lines: dict[str, dict], decoded: set[str],
                   wall_seconds: float, path: str | None) -> dict:
    """Print the summary line on stderr and write the JSON file when ``path`` is given."""
    summary = summarize(items, lines, decoded, wall_seconds)
    print(summary_line(summary), file=sys.stderr)
    if path:
        try:
            Path(path).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        except OSError as error:
            raise Int4rtError(f"cannot write --summary {path}: {error}") from None
    return summary
