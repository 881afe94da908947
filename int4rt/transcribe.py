"""``int4rt transcribe``: files or a manifest to JSON lines, resumable, in worker processes.

DECODING.md, "`int4rt transcribe`", describes the command; each output line is written whole
or not at all. Manifests are read by ``int4rt.manifests``; ``--dask`` sends shards through
``int4rt.executors`` (DECODING.md, "Dask"); the summary comes from ``int4rt.run_summary``.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import multiprocessing
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from int4rt.errors import Int4rtError
from int4rt.manifests import Item, read_manifest
from int4rt.options import BACKENDS, MANIFEST_FORMATS, METHODS
from int4rt.run_summary import report_summary

if TYPE_CHECKING:
    import numpy as np
    from tqdm import tqdm

    from int4rt.decode import DecodeResult
    from int4rt.model.rnnt import RnntModel
    from int4rt.recognizer import Recognizer


def add_parser(subcommands: argparse._SubParsersAction) -> None:
    """Register ``transcribe`` and its options."""
    p = subcommands.add_parser(
        "transcribe", help="decode audio files to JSON lines (beam search, LM fusion)",
        description="Decode audio with an int4rt RNN-T model. One JSON line per input.")
    p.add_argument("model", metavar="MODEL", help="RNN-T model file (.safetensors)")
    p.add_argument("audio", metavar="AUDIO", nargs="*", help="audio files (wav, flac, ogg)")
    p.add_argument("--manifest", metavar="M",
                   help='JSON lines {"audio": path, "text": optional reference}, a NeMo or '
                        "lhotse manifest, or a Kaldi data directory (DECODING.md, Manifests)")
    p.add_argument("--manifest-format", choices=MANIFEST_FORMATS, default="auto",
                   help="manifest format (default: detected)")
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
    p.add_argument("--dask", metavar="ADDRESS",
                   help="decode on a Dask cluster: a scheduler address (tcp://host:8786) or "
                        "local:N for N local worker processes (DECODING.md, Dask)")
    p.add_argument("--shard-size", type=int, default=8,
                   help="--dask: inputs per task sent to a worker (default 8)")
    p.add_argument("--summary", metavar="S.json",
                   help="also write the end-of-run summary (items, errors, hours, RTF, WER) here")
    p.add_argument("--backend", choices=BACKENDS, default="numba",
                   help="numba kernels (default) or the NumPy reference")
    p.add_argument("--output", metavar="OUT.jsonl",
                   help="append results here; inputs already in it are skipped (resume)")


def _items(args: argparse.Namespace) -> list[Item]:
    if bool(args.audio) == bool(args.manifest):
        raise Int4rtError("transcribe: give audio files or --manifest M.jsonl (one of the two)")
    if args.audio:
        return [Item(a, a) for a in args.audio]
    return read_manifest(args.manifest, args.manifest_format)


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
            done[entry.get("id", entry["audio"])] = entry
    return done


_WORKER: dict = {}


def load_recognizer(model_path: str) -> Recognizer:
    """The RNN-T model file at ``model_path`` as a recognizer; an LM file is an error."""
    import int4rt

    recognizer = int4rt.load(model_path)
    if not hasattr(recognizer, "transcribe"):
        raise Int4rtError(f"{model_path} is an LM file; transcribe needs an RNN-T model")
    return recognizer


def cached_recognizer(model_path: str) -> Recognizer:
    """The model at ``model_path``, loaded once per worker process (and again if the file
    changed: its size and modification time are part of the key). DECODING.md, "Dask".
    """
    from int4rt.executors import worker_state

    try:
        stat = os.stat(model_path)
    except OSError as error:
        raise Int4rtError(f"cannot read model file {model_path!r} on this worker: "
                          f"{error.strerror}") from None
    key = ("recognizer", model_path, stat.st_size, stat.st_mtime_ns)
    return worker_state(key, lambda: load_recognizer(model_path))


def _init_worker(model_path: str, settings: dict) -> None:
    _WORKER.update(recognizer=load_recognizer(model_path), settings=settings)


def decode_shard(model_path: str, settings: dict, items: list[Item]) -> list[dict]:
    """A shard's output lines; the model (and its LMs) loaded once per worker process.

    DECODING.md, "Dask".
    """
    _WORKER.update(recognizer=cached_recognizer(model_path), settings=settings)
    return [_decode_item(item) for item in items]


def _decode_item(item: Item) -> dict:
    """One input to its output line; a failure becomes an ``error`` line.

    DECODING.md, "`int4rt transcribe`".
    """
    from int4rt.frontend import compute_features

    recognizer = _WORKER["recognizer"]
    start = time.perf_counter()
    line: dict = {"audio": item.audio}
    if item.id is not None:
        line["id"] = item.id
    try:
        samples = item_samples(recognizer, item)
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


def item_samples(recognizer: Recognizer, item: Item) -> np.ndarray:
    """The item's samples: the whole file, or its segment (DECODING.md, Manifests)."""
    if not item.is_segment:
        return recognizer.samples(item.path)
    from int4rt.frontend import frame_geometry
    from int4rt.frontend.segment import load_segment

    frontend = recognizer.model.frontend
    return load_segment(item.path, frontend.sample_rate, offset=item.offset,
                        duration=item.duration, channel=item.channel,
                        min_samples=frame_geometry(frontend).window)


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

    started = time.perf_counter()
    if args.jobs < 1:
        raise Int4rtError(f"transcribe: --jobs must be >= 1, got {args.jobs}")
    if args.dask and args.jobs != 1:
        raise Int4rtError("transcribe: give --jobs N or --dask ADDRESS, not both")
    if args.shard_size < 1:
        raise Int4rtError(f"transcribe: --shard-size must be >= 1, got {args.shard_size}")
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
    todo = [item for item in items if item.key not in done]
    lines = {audio: line for audio, line in done.items()}
    handle = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644) if output else None
    try:
        bar = tqdm(total=len(todo), disable=len(items) <= 1, file=sys.stderr, unit="file")
        results = (_dask_results(todo, args, settings, bar) if args.dask else
                   _results(todo, min(args.jobs, max(len(todo), 1)), args.model, settings))
        for line in results:
            text = (json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8")
            if handle is None:
                sys.stdout.write(text.decode("utf-8"))
                sys.stdout.flush()
            else:
                os.write(handle, text)
            lines[line.get("id", line["audio"])] = line
            bar.update()
        bar.close()
    finally:
        if handle is not None:
            os.close(handle)
    _report_error_rates(items, lines)
    report_summary(items, lines, {item.key for item in todo}, time.perf_counter() - started,
                   args.summary)
    return 0


def _dask_results(todo: list[Item], args: argparse.Namespace, settings: dict,
                  bar: tqdm) -> Iterator[dict]:
    """Output lines in input order from shards decoded on Dask (DECODING.md, "Dask")."""
    from int4rt.executors import map_shards, split

    def shard_done(finished: int, total: int) -> None:
        bar.set_postfix_str(f"shards {finished}/{total}")

    task = functools.partial(decode_shard, args.model, settings)
    for _, lines in map_shards(task, split(todo, args.shard_size), dask=args.dask,
                               done=shard_done):
        yield from lines


def _report_error_rates(items: list[Item], lines: dict[str, dict]) -> None:
    from int4rt.metrics import cer, wer

    pairs = [(item.reference, lines[item.key].get("text"))
             for item in items if item.reference is not None and item.key in lines]
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
