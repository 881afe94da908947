"""Limits on model files, checked before and after reading them (docs/FORMAT.md §4, §4.1).

``read_model_file`` refuses what is not a regular file by ``stat`` before ``open`` (a FIFO
would block, ``/dev/zero`` never ends), checks the header length and the tensor count and
the size the header declares against the file's size before the data area is read, and
reads no more than the file's size. ``check_runnable`` holds the metadata to what every
input can run with: vocabulary strings that encode as UTF-8, front-end windows of a sane
length.
"""

from __future__ import annotations

import errno
import json
import math
import os
import stat
from fractions import Fraction
from typing import Any

from int4rt.errors import FormatError

MAX_HEADER_BYTES = 16 << 20  # JSON header of a model file (FORMAT.md §1)
MAX_TENSORS = 4096  # tensor entries in a header (an int4rt model has a few hundred at most)
MAX_FILE_BYTES = 8 << 30  # a model file larger than this is refused before it is read
FRAME_MS_RANGE = (1.0, 1000.0)  # frame_length_ms and frame_shift_ms (FORMAT.md §2.6)
MAX_WINDOW_SAMPLES = 1 << 16  # analysis window at the model's rate

_REASONS = {
    errno.ENOENT: "No such file or directory",
    errno.ELOOP: "a loop of symbolic links",
    errno.ENAMETOOLONG: "file name too long",
    errno.EACCES: "permission denied",
}


def read_model_file(path: str | os.PathLike[str]) -> bytes:
    """The bytes of the model file at ``path``, after the checks of FORMAT.md §4 step 1."""
    if not isinstance(path, (str, os.PathLike)):
        raise FormatError(f"model path must be a string or path, got {type(path).__name__}")
    name = os.fsdecode(path)
    if "\0" in name:
        raise FormatError(f"cannot read model file {name!r}: the name contains a NUL character")
    try:
        info = os.stat(path)
    except OSError as error:
        reason = _REASONS.get(error.errno, error.strerror or str(error))
        raise FormatError(f"cannot read model file {name!r}: {reason}") from None
    except ValueError as error:
        raise FormatError(f"cannot read model file {name!r}: {error}") from None
    if stat.S_ISDIR(info.st_mode):
        raise FormatError(f"cannot read model file {name!r}: Is a directory")
    if not stat.S_ISREG(info.st_mode):
        raise FormatError(f"cannot read model file {name!r}: not a regular file (a FIFO, socket "
                          "or device); copy the model to a file")
    if info.st_size > MAX_FILE_BYTES:
        raise FormatError(f"model file {name!r} is {info.st_size} bytes, more than the limit of "
                          f"{MAX_FILE_BYTES}")
    try:
        with open(path, "rb") as handle:
            return _read_checked(handle, info.st_size)
    except OSError as error:
        raise FormatError(f"cannot read model file {name!r}: {error.strerror or error}") from None


def _read_checked(handle: Any, size: int) -> bytes:
    """The file's bytes; the header length, tensor count and declared data size are checked
    against the file size after reading at most the header.
    """
    head = handle.read(8)
    if len(head) < 8:
        return head  # read_container reports the short file
    length = int.from_bytes(head, "little")
    if length > MAX_HEADER_BYTES:
        raise FormatError(f"header length {length} exceeds the limit of {MAX_HEADER_BYTES} bytes")
    if 8 + length > size:
        raise FormatError(f"header length {length} runs past the end of the file "
                          f"({size} bytes)")
    header = handle.read(length)
    _check_declared_size(header, size - 8 - length)
    rest = handle.read(size - 8 - length + 1)  # one byte more: a file that grew is caught
    return head + header + rest


def _check_declared_size(header: bytes, data_size: int) -> None:
    """The tensor count, and data the header's tensors do not account for (FORMAT.md §1).

    Only a well-formed header is checked here; read_container reports every other problem.
    """
    try:
        table = json.loads(header.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return
    if not isinstance(table, dict):
        return
    check_tensor_count(len(table) - ("__metadata__" in table))
    ends = [entry.get("data_offsets") for key, entry in table.items()
            if key != "__metadata__" and isinstance(entry, dict)]
    if len(ends) != len(table) - ("__metadata__" in table) or not all(
            isinstance(pair, list) and len(pair) == 2 and all(type(v) is int for v in pair)
            for pair in ends):
        return
    end = max((pair[1] for pair in ends), default=0)
    if end < data_size:
        raise FormatError(f"{data_size - end} bytes after the last tensor belong to no tensor")


def check_tensor_count(count: int) -> None:
    """``FormatError`` if a header lists more than ``MAX_TENSORS`` tensors."""
    if count > MAX_TENSORS:
        raise FormatError(f"header lists {count} tensors, more than the limit of {MAX_TENSORS}")


def check_runnable(vocab: tuple[str, ...], frontend: Any | None) -> None:
    """Metadata every input can run with (FORMAT.md §4.1): vocabulary strings that encode as
    UTF-8 (output lines are UTF-8), and a front end whose window and hop are sane.
    """
    for index, token in enumerate(vocab):
        try:
            token.encode("utf-8")
        except UnicodeEncodeError:
            raise FormatError(f"metadata vocab[{index}]: {token!r} is not valid Unicode (a lone "
                              "surrogate); it cannot be written as UTF-8") from None
    if frontend is None:
        return
    low, high = FRAME_MS_RANGE
    for key in ("frame_length_ms", "frame_shift_ms"):
        value = getattr(frontend, key)
        if not (math.isfinite(value) and low <= value <= high):
            raise FormatError(f"metadata frontend.{key}: expected a number in [{low:g}, "
                              f"{high:g}] ms, got {value!r}")
    window = _samples(frontend.sample_rate, frontend.frame_length_ms)
    hop = _samples(frontend.sample_rate, frontend.frame_shift_ms)
    if not (1 <= hop and 1 <= window <= MAX_WINDOW_SAMPLES):
        raise FormatError(f"metadata frontend: a window of {window} and a hop of {hop} samples "
                          f"at {frontend.sample_rate} Hz; the window must be 1 to "
                          f"{MAX_WINDOW_SAMPLES} samples and the hop at least 1")


def _samples(rate: int, ms: float) -> int:
    """round(rate · ms / 1000) half up, exactly (DECODING.md, Framing)."""
    return math.floor(Fraction(rate) * Fraction(ms) / 1000 + Fraction(1, 2))

