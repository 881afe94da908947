"""Decoding a corpus one input at a time, each input isolated from the others.

DECODING.md, "`int4rt transcribe`" and "Limits". ``init_worker`` loads the model once per
process; ``decode_item`` turns one input into its output line and never raises for a bad
input: any exception becomes an ``error`` line naming the input and the cause. An executor
(``local_results`` here: in-process or a process pool) maps ``decode_item`` over the inputs;
another executor only has to call ``init_worker`` once per worker and ``decode_item`` per
input. ``json_line`` serializes a line so that it is always valid UTF-8 JSON.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from int4rt.errors import Int4rtError

if TYPE_CHECKING:
    from int4rt.decode import DecodeResult
    from int4rt.model.rnnt import RnntModel

_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Item:
    """One input: the audio path as given, the path to read, and an optional reference."""

    audio: str
    path: str
    reference: str | None = None


_WORKER: dict = {}


def init_worker(model_path: str, settings: dict) -> None:
    """Load the model and keep the search settings for ``decode_item`` in this process (once:
    a second call with the same arguments and an unchanged model file keeps what it loaded).
    """
    import int4rt

    try:
        info = os.stat(model_path)
        source = (model_path, info.st_ino, info.st_size, info.st_mtime_ns, settings)
    except (OSError, ValueError, TypeError):
        source = None  # int4rt.load reports the problem
    if source is not None and _WORKER.get("source") == source:
        return
    recognizer = int4rt.load(model_path)
    if not hasattr(recognizer, "transcribe"):
        raise Int4rtError(f"{model_path} is an LM file; transcribe needs an RNN-T model")
    _WORKER.update(recognizer=recognizer, settings=settings, source=source)


def worker_recognizer() -> object:
    """The recognizer ``init_worker`` loaded in this process."""
    return _WORKER["recognizer"]


def decode_item(item: Item) -> dict:
    """One input to its output line; any failure becomes an ``error`` line naming the input.

    DECODING.md, "`int4rt transcribe`". The audio is read and its features quantized in
    bounded memory (``int4rt.frontend.stream``).
    """
    from int4rt.decode import decode_codes
    from int4rt.frontend.stream import file_codes

    recognizer = _WORKER["recognizer"]
    start = time.perf_counter()
    line: dict = {"audio": item.audio}
    try:
        codes, count = file_codes(item.path, recognizer.model)
        options, lm, source_lm = recognizer.prepare(**_without_backend(_WORKER["settings"]))
        result = decode_codes(recognizer.model, codes, options, lm=lm, source_lm=source_lm,
                              backend=_WORKER["settings"].get("backend", "numba"))
        line.update(result_json(recognizer.model, result))
    except Exception as error:  # one bad input must never stop the corpus
        line["error"] = error_text(item, error)
        return line
    line["duration"] = round(count / recognizer.model.frontend.sample_rate, 4)
    line["decode_seconds"] = round(time.perf_counter() - start, 4)
    if item.reference is not None:
        line["reference"] = item.reference
    return line


def error_text(item: Item, error: BaseException) -> str:
    """The ``error`` field: the message, prefixed by the input unless it names it already."""
    if isinstance(error, MemoryError):
        message = "out of memory while decoding it; split it into shorter files"
    elif isinstance(error, Int4rtError):
        message = str(error)
    else:
        message = f"{type(error).__name__}: {error}"
    return message if message.startswith(item.path) else f"{item.audio}: {message}"


def _without_backend(settings: dict) -> dict:
    return {key: value for key, value in settings.items() if key != "backend"}


def result_json(model: RnntModel, result: DecodeResult) -> dict:
    """A result's JSON fields: token strings and ids, times in seconds and frames, scores.

    DECODING.md, "`int4rt transcribe`".
    """
    fields = result.to_json()
    for entry in (fields, *fields["nbest"]):
        entry["token_ids"] = entry["tokens"]
        entry["tokens"] = [model.vocab[token] for token in entry["token_ids"]]
        entry["frame_indices"] = entry["timestamps"]
        entry["timestamps"] = [round(seconds, 4) for seconds in entry.pop("times")]
    if len(fields["nbest"]) <= 1:
        del fields["nbest"]
    return fields


def json_line(line: dict) -> bytes:
    """``line`` as one line of UTF-8 JSON; a lone surrogate (from a file name or manifest text
    that is not valid Unicode) is written as its ``\\uXXXX`` escape, so the bytes are always
    valid UTF-8 and the JSON reads back to the same string.
    """
    text = json.dumps(line, ensure_ascii=False)
    text = _SURROGATE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
    return (text + "\n").encode("utf-8")


def local_results(items: list[Item], jobs: int, model_path: str,
                  settings: dict) -> Iterator[dict]:
    """``decode_item`` of each input, in input order: in this process (``jobs`` 1) or in a
    pool of ``jobs`` worker processes that ignore Ctrl-C (the parent handles it).
    """
    if jobs == 1:
        init_worker(model_path, settings)
        yield from map(decode_item, items)
        return
    context = multiprocessing.get_context("spawn")
    with _sigint_ignored():  # the workers inherit SIG_IGN: no worker tracebacks on Ctrl-C
        pool = context.Pool(jobs, initializer=init_worker, initargs=(model_path, settings))
    try:
        yield from pool.imap(decode_item, items)
        pool.close()
    finally:
        pool.terminate()
        pool.join()


@contextmanager
def _sigint_ignored() -> Iterator[None]:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def usable_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
