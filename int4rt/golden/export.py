"""``int4rt golden export SET --out DIR``: a golden set as test-bench files
(docs/VERIFICATION.md §3).

Layout of DIR (every file listed, with shape, dtype, width and signedness, in
``manifest.json``):

- ``tables/`` the sigmoid, EXP2 and LN tables (ROM contents, ARITHMETIC.md §6.2, §10.1);
- ``params/`` weight codes, packed int4 weight memories, biases, multipliers, shifts and
  embedding codes (model files of model-level sets are expanded here; an LM's under
  ``params/<file stem>/``);
- ``inputs/``, ``intermediates/``, ``outputs/`` the set's tensors by role;
- ``steps/<tensor>/t0003.hex`` one file per time (``t``) or label (``u``) step of every
  step-major integer tensor (the traces of ARITHMETIC.md §8.7, the input codes).

Files are verified (:func:`read_set`) before anything is written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from int4rt.errors import Int4rtError
from int4rt.golden.hexfile import encoding_of, write_hex
from int4rt.golden.layer_tensors import model_cells, model_tensors
from int4rt.golden.store import (
    GOLDEN_FORMAT_VERSION,
    MANIFEST_FILE,
    GoldenSet,
    Tensor,
    read_index,
    read_set,
)
from int4rt.model.container import load_model_bytes
from int4rt.model.framing import read_container

ROLE_DIRS = {"table": "tables", "param": "params", "input": "inputs",
             "intermediate": "intermediates", "output": "outputs"}
ROLE_ORDER = ("table", "param", "input", "intermediate", "output")
STEP_AXES = ("t", "u")
ELEMENT_ORDER = ("row-major (C order): the last index varies fastest; line i (comments "
                 "excluded) holds flat element i")
HEX_FORMAT = ("$readmemh text: one value per line as exactly width_bits / 4 lower-case hex "
              "digits, no prefix; signed types in two's complement of width_bits; float32 as "
              "its IEEE-754 bit pattern; the first line is a // comment")


def _model_parts(gset: GoldenSet) -> tuple[list[tuple[str, Tensor]], dict[str, Any]]:
    """(directory prefix, tensor) of every model file's parameters, and their scalars."""
    parts, scalars = [], {}
    for file_name, data in gset.files.items():
        if not file_name.endswith(".safetensors"):
            continue
        stem = file_name.removesuffix(".safetensors")
        prefix = "" if stem == "model" else f"{stem}/"
        model = load_model_bytes(data)
        parts += [(prefix, tensor) for tensor in model_tensors(model)]
        scalars[file_name] = {"metadata": read_container(data)[0], "cells": model_cells(model)}
    return parts, scalars


def _entry(relative: str, tensor: Tensor, lines: int) -> dict[str, Any]:
    enc = encoding_of(tensor.value.dtype)
    entry = {"file": relative, "tensor": tensor.name, "role": tensor.role,
             "dtype": str(tensor.value.dtype), "shape": list(tensor.value.shape),
             "width_bits": enc.width_bits, "signed": enc.signed, "encoding": enc.encoding,
             "lines": lines, "axes": list(tensor.axes)}
    if tensor.note:
        entry["note"] = tensor.note
    return entry


def export_set(root: Path, name: str, out: Path) -> Path:
    """Write the test-bench files of set ``name`` to ``out``; returns the manifest path."""
    index = read_index(root)
    entries = {entry["name"]: entry for entry in index["sets"]}
    if name not in entries:
        raise Int4rtError(f"no golden set {name!r} in {root}; sets: {', '.join(entries)}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise Int4rtError(f"--out {str(out)!r} exists and is not an empty directory")
    gset = read_set(root, name, entries[name]["manifest_sha256"])
    model_parts, model_scalars = _model_parts(gset)
    placed = [(f"{ROLE_DIRS[t.role]}/{prefix}", t) for prefix, t in model_parts]
    placed += [(f"{ROLE_DIRS[t.role]}/", t) for t in gset.tensors]
    placed.sort(key=lambda item: ROLE_ORDER.index(item[1].role))  # stable: trace order kept
    files = []
    for directory, tensor in placed:
        stem = tensor.name.removeprefix("tables.") if tensor.role == "table" else tensor.name
        relative = f"{directory}{stem}.hex"
        lines = write_hex(out / relative, tensor.value, _comment(gset, tensor))
        files.append(_entry(relative, tensor, lines))
    for _, tensor in placed:
        if (tensor.axes[:1] and tensor.axes[0] in STEP_AXES and tensor.value.ndim >= 2
                and tensor.value.dtype.kind in "iu"):
            files += _step_files(gset, tensor, out)
    manifest = {
        "golden_format_version": GOLDEN_FORMAT_VERSION,
        "set": gset.name, "kind": gset.kind, "description": gset.description,
        "source": {"golden_dir": str(root), "manifest_sha256": entries[name]["manifest_sha256"],
                   "index_command": index["command"], "int4rt_version": index["int4rt_version"]},
        "hex_format": HEX_FORMAT, "element_order": ELEMENT_ORDER,
        "compare": "tolerance zero: every value of every compared file must be equal",
        "params": gset.params, "models": model_scalars, "files": files,
    }
    path = out / MANIFEST_FILE
    path.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def _comment(gset: GoldenSet, tensor: Tensor, step: str = "") -> str:
    enc = encoding_of(tensor.value.dtype)
    return (f"int4rt golden {gset.name} {tensor.name}{step}: {tensor.value.dtype} "
            f"{list(tensor.value.shape)}, {enc.width_bits}-bit {enc.encoding}, row-major")


def _step_files(gset: GoldenSet, tensor: Tensor, out: Path) -> list[dict[str, Any]]:
    """One file per step along the first axis, in input order (``t0000``, ``t0001``, …)."""
    axis = tensor.axes[0]
    entries = []
    for index, row in enumerate(tensor.value):
        step = Tensor(tensor.name, tensor.role, row, tensor.axes[1:], tensor.note)
        relative = f"steps/{tensor.name}/{axis}{index:04d}.hex"
        lines = write_hex(out / relative, row, _comment(gset, step, f"[{axis}={index}]"))
        entry = _entry(relative, step, lines)
        entry["step"] = {"axis": axis, "index": index}
        entries.append(entry)
    return entries

