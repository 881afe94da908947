"""Read int4rt test-bench exports (``int4rt golden export``, ``int4rt trace``) for cocotb.

Stand-alone: NumPy only, no int4rt import, so the bench consumes the files exactly as a
hardware team's would. A directory holds ``manifest.json`` whose ``files`` entries give each
``.hex`` file's tensor name, shape, width and signedness (docs/VERIFICATION.md §3).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def read_hex(path: Path, width_bits: int, signed: bool) -> np.ndarray:
    """The words of a ``$readmemh`` file (one per line, ``//`` comments) as int64."""
    values = []
    for line in path.read_text(encoding="ascii").splitlines():
        text = line.split("//", 1)[0].strip()
        if text:
            value = int(text, 16)
            if signed and value >> (width_bits - 1):
                value -= 1 << width_bits
            values.append(value)
    return np.array(values, dtype=np.int64)


class Export:
    """One export directory: whole-tensor files by tensor name, plus the manifest."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.manifest = json.loads((self.root / "manifest.json").read_text(encoding="utf-8"))
        self._entries: dict[str, dict] = {}
        for entry in self.manifest["files"]:
            if "step" not in entry:
                self._entries.setdefault(entry["tensor"], entry)

    def names(self) -> list[str]:
        """Tensor names with a whole-tensor file, in manifest order."""
        return list(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __getitem__(self, name: str) -> np.ndarray:
        entry = self._entries[name]
        if entry["encoding"] == "ieee754_binary32":
            raise KeyError(f"{name} is a float tensor; the bench reads integer files only")
        values = read_hex(self.root / entry["file"], entry["width_bits"], entry["signed"])
        if values.size != int(np.prod(entry["shape"], dtype=np.int64)):
            raise ValueError(f"{entry['file']}: {values.size} values for shape {entry['shape']}")
        return values.reshape(entry["shape"])

    def entry(self, name: str) -> dict:
        """The manifest entry of tensor ``name``'s whole-tensor file."""
        return self._entries[name]
