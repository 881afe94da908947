"""``int4rt transcribe``: files or a manifest to JSON lines, resumable, in worker processes.

DECODING.md, "`int4rt transcribe`", describes the command; each output line is written whole
or not at all.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from int4rt.errors import Int4rtError
from int4rt.options import BACKENDS, METHODS

if TYPE_CHECKING:
    from int4rt.decode import DecodeResult
    from int4rt.model.rnnt import RnntModel



@dataclass(frozen=True)
class Item:
    """One input: the audio path as given, the path to read, and an optional reference."""

    audio: str
    path: str
    reference: str | None = None


def add_parser(subcommands: argparse._SubParsersAction) -> None:
    """Register ``transcribe`` and its options."""
    p = subcommands.add_parser(
        "transcribe", help="decode audio files to JSON lines (beam search, LM fusion)",
        description="Decode audio with an int4rt RNN-T model. One JSON line per input.")
    p.add_argument("model", metavar="MODEL", help="RNN-T model file (.safetensors)")
    p.add_argument("audio", metavar="AUDIO", nargs="*", help="audio files (wav, flac, ogg)")
    p.add_argument("--manifest", metavar="M.jsonl",
                   help='JSON lines {"audio": path, "text": optional reference}')
    p.add_argument("--method", choices=METHODS, default="greedy", help="search (default greedy)")
    p.add_argument("--beam", type=int, default=4, help="beam width (default 4)")
    p.add_argument("--max-symbols-per-frame", type=int, default=3,
                   help="greedy: labels per frame at most (default 3)")
    p.add_argument("--lm", metavar="LM", help="external LM file (shallow or density-ratio fusion)")
    p.add_argument("--lm-weight", type=float, default=0.0, help="external LM weight")
    p.add_argument("--source-lm", metavar="LM", help="source-domain LM file (density ratio)")
    p.add_argument("--source-lm-weight", type=float, default=0.0, help="source LM weight")
    p.add_argument("--length-reward", type=float, default=0.0, help="reward per label (nats)")
    p.add_argument("--blank-penalty", type=float, default=0.0, help="penalty per blank (nats)")
    p.add_argument("--nbest", type=int, default=1, help="hypotheses to report (default 1)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--backend", choices=BACKENDS, default="numba",
                   help="numba kernels (default) or the NumPy reference")
    p.add_argument("--output", metavar="OUT.jsonl",
                   help="append results here; inputs already in it are skipped (resume)")


def _items(args: argparse.Namespace) -> list[Item]:
    if bool(args.audio) == bool(args.manifest):
        raise Int4rtError("transcribe: give audio files or --manifest M.jsonl (one of the two)")
    if args.audio:
        return [Item(a, a) for a in args.audio]
    manifest = Path(args.manifest)
    try:
        lines = manifest.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise Int4rtError(f"cannot read manifest {manifest}: {error}") from None
    items = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as error:
            raise Int4rtError(f"{manifest}:{number}: not JSON ({error.msg})") from None
        if not isinstance(entry, dict) or not isinstance(entry.get("audio"), str):
            raise Int4rtError(f'{manifest}:{number}: needs an "audio" string')
        reference = entry.get("text")
        if reference is not None and not isinstance(reference, str):
            raise Int4rtError(f'{manifest}:{number}: "text" must be a string')
        path = Path(entry["audio"])
        resolved = path if path.is_absolute() else manifest.parent / path
        items.append(Item(entry["audio"], str(resolved), reference))
    return items


def _done(output: Path) -> dict[str, dict]:
    """Results already in ``output``, by audio; a partial last line (a crash) is cut off."""
    if not output.exists():
        return {}
    data = output.read_bytes()
    complete = data[:data.rfind(b"\n") + 1]
    if len(complete) != len(data):
        with output.open("r+b") as handle:
            handle.truncate(len(complete))
    done = {}
    for line in complete.decode("utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("audio"), str):
            done[entry["audio"]] = entry
    return done


_WORKER: dict = {}


def _init_worker(model_path: str, settings: dict) -> None:
    import int4rt

    recognizer = int4rt.load(model_path)
    if not hasattr(recognizer, "transcribe"):
        raise Int4rtError(f"{model_path} is an LM file; transcribe needs an RNN-T model")
    _WORKER.update(recognizer=recognizer, settings=settings)


def _decode_item(item: Item) -> dict:
    """One input to its output line; a failure becomes an ``error`` line.

    DECODING.md, "`int4rt transcribe`".
    """
    from int4rt.frontend import compute_features

    recognizer = _WORKER["recognizer"]
    start = time.perf_counter()
    line: dict = {"audio": item.audio}
    try:
        samples = recognizer.samples(item.path)
        features = compute_features(samples, recognizer.model.frontend)
        result = recognizer.decode_features(features, **_WORKER["settings"])
    except Int4rtError as error:
        line["error"] = str(error)
        return line
    line.update(result_json(recognizer.model, result))
    line["duration"] = round(samples.size / recognizer.model.frontend.sample_rate, 4)
    line["decode_seconds"] = round(time.perf_counter() - start, 4)
    if item.reference is not None:
        line["reference"] = item.reference
    return line


def result_json(model: RnntModel, result: DecodeResult) -> dict:
    """A result's JSON fields: token strings and ids, times in seconds and frames, scores.

    DECODING.md, "`int4rt transcribe`".
    """
    fields = result.to_json()
    for entry in (fields, *fields["nbest"]):
        entry["token_ids"] = entry["tokens"]
        entry["tokens"] = [model.vocab[token] for token in entry["token_ids"]]
        entry["times_s"] = [round(seconds, 4) for seconds in entry["times_s"]]
    if len(fields["nbest"]) <= 1:
        del fields["nbest"]
    return fields


def _results(items: list[Item], jobs: int, model_path: str, settings: dict) -> Iterator[dict]:
    if jobs == 1:
        _init_worker(model_path, settings)
        yield from map(_decode_item, items)
        return
    context = multiprocessing.get_context("spawn")
    with context.Pool(jobs, initializer=_init_worker, initargs=(model_path, settings)) as pool:
        yield from pool.imap(_decode_item, items)


def run(args: argparse.Namespace) -> int:
    """``int4rt transcribe``; returns the exit status (0 even when some inputs failed)."""
    from tqdm import tqdm

    if args.jobs < 1:
        raise Int4rtError(f"transcribe: --jobs must be >= 1, got {args.jobs}")
    items = _items(args)
    settings = dict(
        method=args.method, beam=args.beam, max_symbols_per_frame=args.max_symbols_per_frame,
        lm=args.lm, lm_weight=args.lm_weight, source_lm=args.source_lm,
        source_lm_weight=args.source_lm_weight, length_reward=args.length_reward,
        blank_penalty=args.blank_penalty, nbest=args.nbest, backend=args.backend)
    _init_worker(args.model, settings)  # a bad model, LM or option fails before any input
    _WORKER["recognizer"].prepare(**{k: v for k, v in settings.items() if k != "backend"})
    output = Path(args.output) if args.output else None
    done = _done(output) if output else {}
    todo = [item for item in items if item.audio not in done]
    lines = {audio: line for audio, line in done.items()}
    handle = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644) if output else None
    try:
        bar = tqdm(total=len(todo), disable=len(items) <= 1, file=sys.stderr, unit="file")
        for line in _results(todo, min(args.jobs, max(len(todo), 1)), args.model, settings):
            text = (json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8")
            if handle is None:
                sys.stdout.write(text.decode("utf-8"))
                sys.stdout.flush()
            else:
                os.write(handle, text)
            lines[line["audio"]] = line
            bar.update()
        bar.close()
    finally:
        if handle is not None:
            os.close(handle)
    _report_error_rates(items, lines)
    return 0


def _report_error_rates(items: list[Item], lines: dict[str, dict]) -> None:
    from int4rt.metrics import cer, wer

    pairs = [(item.reference, lines[item.audio].get("text"))
             for item in items if item.reference is not None and item.audio in lines]
    scored = [(ref, hyp) for ref, hyp in pairs if hyp is not None]
    if not scored:
        return
    refs, hyps = zip(*scored, strict=True)
    word, char = wer(list(refs), list(hyps)), cer(list(refs), list(hyps))
    failed = len(pairs) - len(scored)
    note = f" ({failed} inputs failed and are not counted)" if failed else ""
    print(f"WER {_percent(word)}  CER {_percent(char)} over {len(scored)} references{note}",
          file=sys.stderr)


def _percent(rate: float) -> str:
    return "n/a" if math.isnan(rate) else f"{100 * rate:.2f}%"
