"""The safetensors framing of model files: bytes <-> metadata and raw tensors (FORMAT.md §1).

``read_container`` checks every byte of the framing (header length, JSON, the tensor table,
offsets that tile the data area) before anything is trusted; ``write_container`` writes with
``safetensors.numpy`` so other tools can read the files. What the metadata and tensors mean
is ``int4rt.model.container``'s job; nothing here unpickles anything.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import save_file

from int4rt.errors import FormatError, Int4rtError
from int4rt.model.config import strict_json

METADATA_KEY = "int4rt"
HEADER_LIMIT = 100_000_000  # bytes of JSON header accepted (safetensors' limit; FORMAT.md §1)

# safetensors dtype names and their element sizes (FORMAT.md §1)
DTYPE_SIZES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2,
    "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8,
}
NUMPY_DTYPES = {  # the dtypes int4rt reads (FORMAT.md §3), little-endian on disk
    "U8": np.dtype("<u1"), "I8": np.dtype("<i1"), "U16": np.dtype("<u2"),
    "I32": np.dtype("<i4"), "F32": np.dtype("<f4"),
}


@dataclass(frozen=True)
class RawTensor:
    """One tensor of a checked safetensors file: dtype name, shape and its bytes."""

    dtype: str
    shape: tuple[int, ...]
    data: memoryview


def read_container(data: bytes) -> tuple[dict[str, Any], dict[str, RawTensor]]:
    """The ``int4rt`` metadata object and the raw tensors of a model file's bytes.

    Checks the framing only (FORMAT.md §1): header length, JSON (FORMAT.md §2.1), the tensor
    table (dtype names, shapes, offsets that tile the data area, alignment); the model itself
    is checked later.
    """
    view = memoryview(data).cast("B")
    size = len(view)
    if size < 8:
        raise FormatError(f"file is {size} bytes, too short for the 8-byte header length")
    length = int.from_bytes(view[:8], "little")
    if length > HEADER_LIMIT:
        raise FormatError(f"header length {length} exceeds the limit of {HEADER_LIMIT} bytes")
    if 8 + length > size:
        raise FormatError(f"header length {length} runs past the end of the file "
                          f"({size} bytes)")
    if length == 0 or length % 8:
        raise FormatError(f"header length {length} is not a positive multiple of 8")
    try:
        text = bytes(view[8:8 + length]).decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError("header is not UTF-8 text") from None
    if not text.startswith("{") or not text.rstrip(" ").endswith("}"):
        raise FormatError("header must be a JSON object padded with trailing spaces only")
    header = strict_json(text, "header", FormatError)
    if not isinstance(header, dict):
        raise FormatError("header must be a JSON object")
    metadata = header.pop("__metadata__", None)
    if not isinstance(metadata, dict) or list(metadata) != [METADATA_KEY] \
            or not isinstance(metadata[METADATA_KEY], str):
        raise FormatError(f"header __metadata__ must hold exactly one entry {METADATA_KEY!r} "
                          "whose value is a JSON string")
    buffer = view[8 + length:]
    tensors = {name: _tensor_entry(name, entry, buffer) for name, entry in header.items()}
    _check_tiling(tensors, len(buffer))
    meta = strict_json(metadata[METADATA_KEY], "metadata", FormatError)
    if not isinstance(meta, dict):
        raise FormatError("metadata must be a JSON object")
    return meta, {name: tensor for name, (tensor, _) in tensors.items()}


def _tensor_entry(name: str, entry: object,
                  buffer: memoryview) -> tuple[RawTensor, tuple[int, int]]:
    where = f"header entry {name!r}"
    if not name:
        raise FormatError("header has a tensor with an empty name")
    if not isinstance(entry, dict) or sorted(entry) != ["data_offsets", "dtype", "shape"]:
        raise FormatError(f"{where}: expected exactly the keys dtype, shape, data_offsets")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPE_SIZES:
        raise FormatError(f"{where}: unknown dtype {short(dtype)}")
    if not isinstance(shape, list) or len(shape) > 8 or not all(is_count(d) for d in shape):
        raise FormatError(f"{where}: shape must be a list of at most 8 non-negative integers")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(map(is_count, offsets)) \
            or not offsets[0] <= offsets[1] <= len(buffer):
        raise FormatError(f"{where}: data_offsets must be [begin, end] with 0 <= begin <= end "
                          f"<= {len(buffer)} (the data size)")
    begin, end = offsets
    itemsize = DTYPE_SIZES[dtype]
    if end - begin != math.prod(shape) * itemsize:
        raise FormatError(f"{where}: shape {dims(shape)} of {dtype} needs "
                          f"{math.prod(shape) * itemsize} bytes, data_offsets span {end - begin}")
    if begin % itemsize:
        raise FormatError(f"{where}: data offset {begin} is not a multiple of the {dtype} "
                          f"element size {itemsize}")
    return RawTensor(dtype, tuple(shape), buffer[begin:end]), (begin, end)


def is_count(value: object) -> bool:
    """A non-negative int (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_tiling(tensors: dict[str, tuple[RawTensor, tuple[int, int]]], size: int) -> None:
    """The tensors' byte ranges tile the data area: no gap, no overlap (FORMAT.md §1)."""
    cursor = 0
    for name, (_, (begin, end)) in sorted(tensors.items(), key=lambda item: item[1][1]):
        if begin != cursor:
            problem = "overlaps the tensor before it" if begin < cursor else "leaves a gap"
            raise FormatError(f"tensor {name!r} starts at data byte {begin}, expected {cursor}: "
                              f"it {problem}")
        cursor = end
    if cursor != size:
        raise FormatError(f"{size - cursor} bytes after the last tensor belong to no tensor")


def write_container(path: str | Path, metadata: dict[str, Any],
                    tensors: dict[str, np.ndarray]) -> None:
    """Write ``tensors`` and the ``int4rt`` metadata object to ``path`` (FORMAT.md §1)."""
    target = Path(path)
    if target.is_dir() or not target.parent.is_dir():
        raise Int4rtError(f"cannot write model file {str(target)!r}: "
                          + ("it is a directory" if target.is_dir() else
                             f"no directory {str(target.parent)!r}"))
    try:
        save_file(tensors, os.fspath(path),
                  metadata={METADATA_KEY: json.dumps(metadata, separators=(",", ":"))})
    except (OSError, SafetensorError) as error:
        raise Int4rtError(f"cannot write model file {os.fspath(path)!r}: {error}") from None


def read_file(path: str | Path) -> bytes:
    """The bytes of the file at ``path``; a ``FormatError`` saying why it cannot be read."""
    try:
        with open(os.fspath(path), "rb") as handle:
            return handle.read()
    except TypeError:
        raise FormatError(f"model path must be a string or path, got {type(path).__name__}") \
            from None
    except OSError as error:
        raise FormatError(f"cannot read model file {os.fsdecode(path)!r}: "
                          f"{error.strerror or error}") from None


def dims(shape: tuple[int, ...] | list[int]) -> str:
    """A shape as ``[a, b]`` for messages."""
    return "[" + ", ".join(map(str, shape)) + "]"


def short(value: object) -> str:
    """``repr(value)``, cut to 40 characters for messages."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
