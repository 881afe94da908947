#!/usr/bin/env python3
"""Compare a simulator's dump with exported int4rt golden vectors, bit for bit.

Stand-alone: Python 3.10+ and NumPy, no int4rt. It does what a test bench does with the
files of ``int4rt golden export SET --out GOLDEN`` (docs/VERIFICATION.md §3, §6):

    python compare_dump.py GOLDEN DUMP [--require-all] [--files PATTERN ...]

GOLDEN is the export directory (its ``manifest.json`` describes every file: shape, dtype,
width in bits, signedness, element order). DUMP holds the simulator's memories written with
``$writememh`` under the same relative paths (``intermediates/lstm.fwd.gate_pre.hex``,
``steps/lstm.fwd.hidden/t0003.hex``, ...), each value as a word of the stated width (two's
complement for signed tensors). Every dump file that the manifest lists is compared with
tolerance zero; for each differing file the first differing element is reported with its
index, the expected and the dumped value. Exit status 0 only if at least one file was
compared and nothing differs (and, with ``--require-all``, nothing is missing).

Readers accept what ``$readmemh`` accepts: hex words separated by white space, ``//`` and
``/* */`` comments, ``@address`` lines and ``_`` inside words; ``x``/``z`` digits are errors.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
import sys
from pathlib import Path

import numpy as np


class MemoryFileError(ValueError):
    """A memory file that cannot be read as the manifest describes it."""


def read_memory(path: Path, width_bits: int, signed: bool) -> list[int]:
    """The words of a ``$readmemh`` file in address order, as integers of the stated type."""
    text = re.sub(r"/\*.*?\*/", " ", path.read_text(encoding="ascii", errors="replace"),
                  flags=re.DOTALL)
    words: dict[int, int] = {}
    address = 0
    for line in text.splitlines():
        for token in line.split("//", 1)[0].split():
            if token.startswith("@"):
                address = int(token[1:], 16)
                continue
            word = token.replace("_", "")
            if re.search(r"[xXzZ]", word):
                raise MemoryFileError(f"{path}: undefined word {token!r} at address {address}")
            try:
                value = int(word, 16)
            except ValueError:
                raise MemoryFileError(f"{path}: {token!r} is not a hex word") from None
            if value >> width_bits:
                raise MemoryFileError(f"{path}: word {token!r} at address {address} does not fit "
                                      f"{width_bits} bits")
            if signed and value >> (width_bits - 1):
                value -= 1 << width_bits
            words[address] = value
            address += 1
    if sorted(words) != list(range(len(words))):
        raise MemoryFileError(f"{path}: addresses are not contiguous from 0")
    return [words[a] for a in range(len(words))]


def compare_file(golden: Path, dump: Path, entry: dict) -> tuple[int, str | None]:
    """(values compared, a mismatch report or None) for one manifest entry."""
    width, signed = entry["width_bits"], entry["signed"]
    expected = np.array(read_memory(golden / entry["file"], width, signed), dtype=object)
    got = np.array(read_memory(dump / entry["file"], width, signed), dtype=object)
    what = f"{entry['file']} (tensor {entry['tensor']}"
    if "step" in entry:
        what += f", {entry['step']['axis']} = {entry['step']['index']}"
    what += ")"
    if got.size != expected.size:
        return 0, f"MISMATCH {what}: {got.size} values, expected {expected.size}"
    diff = np.flatnonzero(expected != got)
    if not diff.size:
        return expected.size, None
    flat = int(diff[0])
    index = [int(i) for i in np.unravel_index(flat, entry["shape"])] if entry["shape"] else []
    return expected.size, (f"MISMATCH {what}: element {index} (value line {flat}): expected "
                           f"{expected[flat]}, got {got[flat]} ({diff.size} of {expected.size} "
                           "values differ)")


def main(argv: list[str] | None = None) -> int:
    """Compare DUMP against GOLDEN; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("golden", type=Path, help="directory written by int4rt golden export")
    parser.add_argument("dump", type=Path, help="directory of the simulator's memory dumps")
    parser.add_argument("--require-all", action="store_true",
                        help="fail if a selected manifest file is missing from the dump")
    parser.add_argument("--files", action="append", metavar="PATTERN",
                        help="compare only manifest files matching this glob (repeatable), "
                             "e.g. 'intermediates/*'")
    args = parser.parse_args(argv)
    manifest = json.loads((args.golden / "manifest.json").read_text(encoding="utf-8"))
    entries = [e for e in manifest["files"]
               if not args.files or any(fnmatch.fnmatch(e["file"], p) for p in args.files)]
    compared = values = failed = 0
    missing = []
    for entry in entries:
        if not (args.dump / entry["file"]).is_file():
            missing.append(entry["file"])
            continue
        try:
            count, problem = compare_file(args.golden, args.dump, entry)
        except MemoryFileError as error:
            count, problem = 0, f"MISMATCH {entry['file']}: {error}"
        compared += 1
        values += count
        if problem:
            failed += 1
            print(problem)
    known = {e["file"] for e in manifest["files"]}
    unknown = [str(p.relative_to(args.dump)) for p in sorted(args.dump.rglob("*.hex"))
               if str(p.relative_to(args.dump)) not in known]
    for name in unknown:
        print(f"note: {name} is not in the golden manifest; not compared")
    if args.require_all:
        for name in missing:
            print(f"MISSING {name}")
    print(f"set {manifest['set']}: compared {compared} files ({values} values), {failed} "
          f"mismatching, {len(missing)} of the selected files not in the dump; tolerance zero")
    ok = compared > 0 and failed == 0 and not (args.require_all and missing)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
