"""``int4rt golden check``: recompute every golden tensor and compare bit for bit
(docs/VERIFICATION.md §4).

Order: the index's golden format version, then per set its manifest version and checksums
(:func:`int4rt.golden.store.read_set`), then each backend's recomputation in trace order. The
first difference raises :class:`GoldenError` naming the set, backend, code path, tensor,
flat index (and its multi-index), the expected (golden) and the recomputed value. Tolerance
is zero.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from int4rt.errors import Int4rtError
from int4rt.golden.registry import REPLAYS
from int4rt.golden.store import Computed, GoldenError, GoldenSet, read_index, read_set

# The reference must recompute every intermediate and output; the kernels recompute what
# they expose (all of it for layers and models, the outputs of most primitives).
REQUIRED_ROLES = ("intermediate", "output")


@dataclass(frozen=True)
class SetResult:
    """What one backend's check of one set covered."""

    name: str
    backend: str
    tensors: int
    values: int


def first_difference(expected: np.ndarray, got: np.ndarray) -> tuple[int, int] | None:
    """(flat index of the first difference, count of differences), or None if equal."""
    diff = np.flatnonzero(expected.astype(np.int64).ravel() != got.astype(np.int64).ravel())
    return (int(diff[0]), int(diff.size)) if diff.size else None


def compare(gset: GoldenSet, computed: list[Computed], backend: str) -> SetResult:
    """Compare recomputed tensors with the golden ones; raise at the first difference."""
    where = f"set {gset.name!r}, backend {backend}"
    checked: set[str] = set()
    values = 0
    for item in computed:
        try:
            expected = gset[item.name]
        except KeyError:
            raise GoldenError(f"{where}: {item.via} produced tensor {item.name!r}, which the "
                              "set does not hold") from None
        got = np.asarray(item.value)
        if got.shape != expected.shape:
            raise GoldenError(f"MISMATCH {where} ({item.via}): tensor {item.name!r} has shape "
                              f"{list(got.shape)}, golden {list(expected.shape)}")
        found = first_difference(expected, got)
        if found is not None:
            flat, count = found
            index = [int(i) for i in np.unravel_index(flat, expected.shape)]
            raise GoldenError(
                f"MISMATCH {where} ({item.via}): tensor {item.name!r} flat index {flat} "
                f"(index {index}): expected {expected.ravel()[flat]}, got {got.ravel()[flat]} "
                f"({count} of {expected.size} values differ)")
        checked.add(item.name)
        values += expected.size
    required = REQUIRED_ROLES if backend == "numpy" else ()
    for tensor in gset.tensors:
        if tensor.role in required and tensor.name not in checked:
            raise GoldenError(f"{where}: tensor {tensor.name!r} was not recomputed")
    if not checked:
        raise GoldenError(f"{where}: nothing was recomputed")
    return SetResult(gset.name, backend, len(checked), values)


def check_golden(root: Path, backends: tuple[str, ...], names: list[str] | None = None,
                 log: Callable[[str], None] = print) -> list[SetResult]:
    """Verify the sets under ``root`` (all, or ``names``) on ``backends``; raise on failure."""
    index = read_index(root)
    entries = {entry["name"]: entry for entry in index["sets"]}
    unknown = [name for name in names or () if name not in entries]
    if unknown:
        raise Int4rtError(f"no golden set {unknown[0]!r} in {root}; sets: {', '.join(entries)}")
    results = []
    for name in names or list(entries):
        gset = read_set(root, name, entries[name]["manifest_sha256"])
        replay = REPLAYS.get(gset.kind)
        if replay is None:
            raise GoldenError(f"set {name!r}: unknown kind {gset.kind!r}")
        for backend in backends:
            result = compare(gset, replay(gset, backend), backend)
            log(f"ok  {name:<28} {backend:<5}  {result.tensors:>3} tensors, "
                f"{result.values:>7} values bit-exact")
            results.append(result)
    return results
