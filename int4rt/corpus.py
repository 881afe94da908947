"""Decoding a corpus one input at a time, each input isolated from the others.

DECODING.md, "`int4rt transcribe`", "Limits" and "Dask". ``decode_item`` turns one input (a
file or a manifest segment) into its output line and never raises for a bad input: any
exception becomes an ``error`` line naming the input and the cause. ``decode_shard`` is the
task an executor (``int4rt.executors.map_shards``: this process, ``--jobs`` worker processes
or a Dask cluster) runs on a shard of inputs; the model is loaded once per worker process
(``cached_recognizer``). ``json_line`` serializes a line so that it is always valid UTF-8 JSON.
"""

from __future__ import annotations

import json
import os
import re
import time
from typing import TYPE_CHECKING

from int4rt.errors import Int4rtError
from int4rt.manifests import Item

if TYPE_CHECKING:
    import numpy as np

    from int4rt.decode import DecodeResult
    from int4rt.model.rnnt import RnntModel
    from int4rt.recognizer import Recognizer

__all__ = ["Item", "cached_recognizer", "decode_item", "decode_shard", "error_text",
           "init_worker", "item_codes", "item_samples", "json_line", "load_recognizer",
           "result_json", "usable_cores", "worker_recognizer"]

_SURROGATE = re.compile("[\ud800-\udfff]")
_WORKER: dict = {}


def load_recognizer(model_path: str) -> Recognizer:
    """The RNN-T model file at ``model_path`` as a recognizer; an LM file is an error."""
    import int4rt

    recognizer = int4rt.load(model_path)
    if not hasattr(recognizer, "transcribe"):
        raise Int4rtError(f"{model_path} is an LM file; transcribe needs an RNN-T model")
    return recognizer


def cached_recognizer(model_path: str) -> Recognizer:
    """The model at ``model_path``, loaded once per worker process, and again if the file
    changed (its inode, size and modification time are part of the key). DECODING.md, "Dask".
    """
    from int4rt.executors import worker_state

    try:
        info = os.stat(model_path)
    except (OSError, ValueError, TypeError):
        return load_recognizer(model_path)  # int4rt.load reports the problem
    key = ("recognizer", model_path, info.st_ino, info.st_size, info.st_mtime_ns)
    return worker_state(key, lambda: load_recognizer(model_path))


def init_worker(model_path: str, settings: dict) -> None:
    """Load the model (once per process, ``cached_recognizer``) and keep the search settings
    for ``decode_item`` in this process.
    """
    _WORKER.update(recognizer=cached_recognizer(model_path), settings=settings)


def worker_recognizer() -> Recognizer:
    """The recognizer ``init_worker`` loaded in this process."""
    return _WORKER["recognizer"]


def decode_shard(model_path: str, settings: dict, items: list[Item]) -> list[dict]:
    """A shard's output lines, in order (``decode_item`` of each input). DECODING.md, "Dask"."""
    init_worker(model_path, settings)
    return [decode_item(item) for item in items]


def decode_item(item: Item) -> dict:
    """One input to its output line; any failure becomes an ``error`` line naming the input.

    DECODING.md, "`int4rt transcribe`". The audio is read and its features quantized in
    bounded memory (``item_codes``).
    """
    from int4rt.decode import decode_codes

    recognizer = _WORKER["recognizer"]
    start = time.perf_counter()
    line: dict = {"audio": item.audio}
    if item.id is not None:
        line["id"] = item.id
    try:
        codes, count = item_codes(item, recognizer.model)
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


def item_codes(item: Item, model: RnntModel) -> tuple[np.ndarray, int]:
    """The encoder input codes of an item and its sample count at the model's rate: the whole
    file, or its segment (DECODING.md, Manifests), read by ``int4rt.frontend.stream``.
    """
    from int4rt.frontend import stream

    if item.is_segment:
        return stream.segment_codes(item.path, model, item.offset, item.duration, item.channel)
    return stream.file_codes(item.path, model)


def item_samples(recognizer: Recognizer, item: Item) -> np.ndarray:
    """The item's samples held whole (``int4rt sweep``): the file, or its segment (DECODING.md,
    Manifests); ``transcribe`` streams them instead (``item_codes``).
    """
    if not item.is_segment:
        return recognizer.samples(item.path)
    from int4rt.frontend import frame_geometry
    from int4rt.frontend.segment import load_segment

    frontend = recognizer.model.frontend
    return load_segment(item.path, frontend.sample_rate, offset=item.offset,
                        duration=item.duration, channel=item.channel,
                        min_samples=frame_geometry(frontend).window)


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
        entry["times_s"] = [round(seconds, 4) for seconds in entry["times_s"]]
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


def usable_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
