"""``$readmemh`` files: one value per line, fixed-width hex (docs/VERIFICATION.md §3).

Signed integers are written as the two's complement of their width (int16 −2 → ``fffe``),
unsigned ones as they are, float32 as its IEEE-754 bit pattern. Lines beginning with ``//``
are comments, which ``$readmemh`` skips.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class HexEncoding:
    """How the values of one dtype are written: width in bits, signedness, encoding name."""

    width_bits: int
    signed: bool
    encoding: str

    @property
    def digits(self) -> int:
        """Hex digits per line."""
        return self.width_bits // 4


def encoding_of(dtype: np.dtype) -> HexEncoding:
    """The hex encoding of ``dtype``: integer types at their own width, float32 as bits."""
    dtype = np.dtype(dtype)
    if dtype == np.float32:
        return HexEncoding(32, False, "ieee754_binary32")
    if not np.issubdtype(dtype, np.integer):
        raise ValueError(f"no hex encoding for dtype {dtype}")
    signed = np.issubdtype(dtype, np.signedinteger)
    return HexEncoding(dtype.itemsize * 8, signed, "twos_complement" if signed else "unsigned")


def hex_lines(values: np.ndarray) -> list[str]:
    """One fixed-width hex string per element of ``values``, row-major."""
    enc = encoding_of(values.dtype)
    flat = values.ravel()
    if enc.encoding == "ieee754_binary32":
        flat = flat.view(np.uint32)
    mask = (1 << enc.width_bits) - 1
    return [f"{v & mask:0{enc.digits}x}" for v in flat.tolist()]


def write_hex(path: Path, values: np.ndarray, comment: str) -> int:
    """Write ``values`` to ``path`` after one ``//`` comment line; returns the value count."""
    lines = hex_lines(np.ascontiguousarray(values))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"// {comment}\n" + "".join(f"{line}\n" for line in lines), encoding="ascii")
    return len(lines)


def read_hex(path: Path, width_bits: int, signed: bool) -> np.ndarray:
    """The integers of a file :func:`write_hex` wrote (float32 files give their bit patterns)."""
    values = []
    for line in path.read_text(encoding="ascii").splitlines():
        text = line.split("//", 1)[0].strip()
        if text:
            value = int(text, 16)
            if signed and value >> (width_bits - 1):
                value -= 1 << width_bits
            values.append(value)
    return np.array(values, dtype=np.int64)  # every golden dtype fits (no uint64 tensors)
