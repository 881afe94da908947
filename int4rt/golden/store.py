"""Golden sets on disk: tensors, manifests, checksums (docs/VERIFICATION.md §2).

A set is a directory ``<root>/<name>/`` holding ``manifest.json``, ``tensors.safetensors``
(every tensor of the set, little-endian, row-major) and the extra files the set needs to
rerun (model files, a decoding result). The manifest records the golden format version, the
command that made the set, the int4rt version, the rerun parameters, a SHA-256 per file and,
in order, every tensor with its role, dtype, shape, axes and own SHA-256. ``<root>/index.json``
lists the sets with the SHA-256 of each manifest. Reading verifies all of it; the first
problem raises :class:`GoldenError` naming the set and the file or tensor.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load, save

from int4rt import __version__
from int4rt.errors import Int4rtError

GOLDEN_FORMAT_VERSION = 1
ROLES = ("input", "param", "table", "intermediate", "output")
INDEX_FILE = "index.json"
MANIFEST_FILE = "manifest.json"
TENSORS_FILE = "tensors.safetensors"


class GoldenError(Int4rtError):
    """Golden data failed verification: a checksum, a version, or a value differs."""


@dataclass
class Tensor:
    """One golden tensor: its trace (or set-local) name, role, value and axis labels.

    ``axes`` labels each dimension (``t`` time step, ``u`` label step, ``pair`` a
    frame-major (frame, label-state) pair, or a size such as ``4H``); the export splits
    tensors whose first axis is ``t`` or ``u`` into one file per step.
    """

    name: str
    role: str
    value: np.ndarray
    axes: tuple[str, ...] = ()
    note: str = ""


@dataclass
class GoldenSet:
    """A set in memory: what its builder made, or what :func:`read_set` verified."""

    name: str
    kind: str
    description: str
    params: dict[str, Any]
    tensors: list[Tensor]
    files: dict[str, bytes] = field(default_factory=dict)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.entry(name).value

    def entry(self, name: str) -> Tensor:
        """The :class:`Tensor` called ``name``."""
        for tensor in self.tensors:
            if tensor.name == name:
                return tensor
        raise KeyError(f"set {self.name!r} has no tensor {name!r}")


def sha256(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def tensor_bytes(value: np.ndarray) -> bytes:
    """The little-endian, row-major bytes of ``value`` (what a tensor checksum covers)."""
    return np.ascontiguousarray(value, dtype=value.dtype.newbyteorder("<")).tobytes()


def _json_bytes(value: dict[str, Any]) -> bytes:
    """JSON with one line per top-level key and per entry of a top-level list of objects."""
    lines = []
    for key, item in value.items():
        if isinstance(item, list) and item and all(isinstance(e, dict) for e in item):
            body = ",\n".join(f"  {json.dumps(e, ensure_ascii=False)}" for e in item)
            text = f"[\n{body}\n ]"
        else:
            text = json.dumps(item, indent=1, ensure_ascii=False).replace("\n", "\n ")
        lines.append(f" {json.dumps(key)}: {text}")
    return ("{\n" + ",\n".join(lines) + "\n}\n").encode("utf-8")


def write_set(root: Path, gset: GoldenSet, command: str) -> str:
    """Write ``gset`` under ``root/<name>/``; returns the SHA-256 of its manifest."""
    for tensor in gset.tensors:
        if tensor.role not in ROLES:
            raise ValueError(f"{gset.name}: tensor {tensor.name!r} has unknown role {tensor.role}")
    directory = root / gset.name
    directory.mkdir(parents=True)
    data = save({t.name: np.ascontiguousarray(t.value) for t in gset.tensors})
    files = {TENSORS_FILE: data, **gset.files}
    for file_name, content in files.items():
        (directory / file_name).write_bytes(content)
    manifest = {
        "golden_format_version": GOLDEN_FORMAT_VERSION,
        "set": gset.name,
        "kind": gset.kind,
        "description": gset.description,
        "command": command,
        "int4rt_version": __version__,
        "params": gset.params,
        "files": [{"file": name, "sha256": sha256(content)} for name, content in files.items()],
        "tensors": [{"name": t.name, "role": t.role, "dtype": str(t.value.dtype),
                     "shape": list(t.value.shape), "axes": list(t.axes),
                     "sha256": sha256(tensor_bytes(t.value)), "note": t.note}
                    for t in gset.tensors],
    }
    manifest_bytes = _json_bytes(manifest)
    (directory / MANIFEST_FILE).write_bytes(manifest_bytes)
    return sha256(manifest_bytes)


def write_index(root: Path, entries: list[dict[str, str]], command: str) -> None:
    """Write ``root/index.json``: the version, the command, and (name, kind, manifest SHA)."""
    index = {"golden_format_version": GOLDEN_FORMAT_VERSION, "command": command,
             "int4rt_version": __version__, "sets": entries}
    (root / INDEX_FILE).write_bytes(_json_bytes(index))


def _read_json(path: Path, what: str) -> tuple[dict[str, Any], bytes]:
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise GoldenError(f"{what}: cannot read {path}: {error.strerror or error}") from None
    try:
        value = json.loads(raw)
    except ValueError as error:
        raise GoldenError(f"{what}: {path.name} is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise GoldenError(f"{what}: {path.name} must hold a JSON object")
    return value, raw


def _check_version(value: dict[str, Any], what: str) -> None:
    version = value.get("golden_format_version")
    if version != GOLDEN_FORMAT_VERSION:
        raise GoldenError(f"{what}: golden format version {version!r}, this int4rt checks "
                          f"version {GOLDEN_FORMAT_VERSION} (docs/VERIFICATION.md §7)")


def read_index(root: Path) -> dict[str, Any]:
    """``root/index.json`` after checking its golden format version."""
    if not (root / INDEX_FILE).is_file():
        raise Int4rtError(f"no golden data at {str(root)!r} ({INDEX_FILE} missing); "
                          "pass --dir or run 'int4rt golden make'")
    index, _ = _read_json(root / INDEX_FILE, "golden index")
    _check_version(index, f"golden index {root / INDEX_FILE}")
    sets = index.get("sets")
    if not isinstance(sets, list) or not all(
            isinstance(e, dict) and _plain_name(e.get("name"))
            and isinstance(e.get("manifest_sha256"), str) for e in sets):
        raise GoldenError(f"golden index {root / INDEX_FILE}: 'sets' must list objects with a "
                          "plain 'name' and a 'manifest_sha256'")
    return index


def read_set(root: Path, name: str, manifest_sha256: str | None = None) -> GoldenSet:
    """Read and verify set ``name``: version, manifest and file checksums, tensor list."""
    what = f"set {name!r}"
    if not _plain_name(name):
        raise GoldenError(f"{what}: a set name must be a plain directory name")
    directory = root / name
    manifest, raw = _read_json(directory / MANIFEST_FILE, what)
    if manifest_sha256 is not None and sha256(raw) != manifest_sha256:
        raise GoldenError(f"{what}: {MANIFEST_FILE} does not match its checksum in "
                          f"{INDEX_FILE} (edited by hand?)")
    _check_version(manifest, what)
    if manifest.get("set") != name:
        raise GoldenError(f"{what}: {MANIFEST_FILE} describes set {manifest.get('set')!r}")
    try:
        return _read_listed(directory, what, manifest)
    except (KeyError, TypeError, AttributeError) as error:
        raise GoldenError(f"{what}: malformed {MANIFEST_FILE} ({error!r})") from None


def _plain_name(name: object) -> bool:
    return isinstance(name, str) and Path(name).name == name and name not in ("", ".", "..")


def _read_listed(directory: Path, what: str, manifest: dict[str, Any]) -> GoldenSet:
    """The files and tensors ``manifest`` lists, each checked against its checksum."""
    contents: dict[str, bytes] = {}
    for entry in manifest["files"]:
        if not _plain_name(entry["file"]):
            raise GoldenError(f"{what}: file name {entry['file']!r} is not a plain name")
        path = directory / entry["file"]
        try:
            contents[entry["file"]] = path.read_bytes()
        except OSError as error:
            raise GoldenError(f"{what}: cannot read {entry['file']}: "
                              f"{error.strerror or error}") from None
        if sha256(contents[entry["file"]]) != entry["sha256"]:
            if entry["file"] == TENSORS_FILE:
                _name_corrupt_tensor(what, manifest, contents[TENSORS_FILE])
            raise GoldenError(f"{what}: file {entry['file']} does not match its manifest "
                              "checksum (modified or corrupted)")
    listed = {MANIFEST_FILE, *contents}
    extra = sorted(p.name for p in directory.iterdir() if p.name not in listed)
    if extra:
        raise GoldenError(f"{what}: unexpected file {extra[0]} (not in the manifest)")
    stored = load(contents.pop(TENSORS_FILE))
    tensors = []
    for entry in manifest["tensors"]:
        value = stored.pop(entry["name"], None)
        if value is None:
            raise GoldenError(f"{what}: tensor {entry['name']!r} missing from {TENSORS_FILE}")
        tensors.append(Tensor(entry["name"], entry["role"], value, tuple(entry["axes"]),
                              entry["note"]))
    if stored:
        raise GoldenError(f"{what}: tensor {next(iter(stored))!r} is not in the manifest")
    return GoldenSet(manifest["set"], manifest["kind"], manifest["description"],
                     manifest["params"], tensors, contents)


def _name_corrupt_tensor(what: str, manifest: dict[str, Any], data: bytes) -> None:
    """Raise naming the first tensor whose bytes differ from its manifest checksum."""
    try:
        stored = load(data)
    except (SafetensorError, ValueError) as error:
        raise GoldenError(f"{what}: {TENSORS_FILE} does not match its manifest checksum "
                          f"and cannot be read ({error})") from None
    for entry in manifest["tensors"]:
        value = stored.get(entry["name"])
        if value is None or sha256(tensor_bytes(value)) != entry["sha256"]:
            raise GoldenError(f"{what}: tensor {entry['name']!r} in {TENSORS_FILE} does not "
                              "match its manifest checksum (modified or corrupted)")


@dataclass(frozen=True)
class Computed:
    """A tensor recomputed while checking a set: its name, value, and the code path (``via``)."""

    name: str
    value: np.ndarray
    via: str
