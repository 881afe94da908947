"""Capture of intermediate integer tensors under stable names (docs/ARITHMETIC.md §8.7)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


class Trace:
    """An ordered map from trace name to a copy of the integer tensor recorded under it.

    Names are dotted paths, e.g. ``encoder.layer0.bwd.gate.f`` (shape [T, H], time in input
    order). Recording the same name twice is an error: names identify tensors uniquely.
    """

    def __init__(self) -> None:
        self._tensors: dict[str, np.ndarray] = {}

    def record(self, name: str, tensor: np.ndarray) -> None:
        """Store a copy of ``tensor`` under ``name``."""
        if name in self._tensors:
            raise KeyError(f"trace name {name!r} recorded twice")
        self._tensors[name] = np.array(tensor, copy=True)

    def __getitem__(self, name: str) -> np.ndarray:
        return self._tensors[name]

    def __contains__(self, name: object) -> bool:
        return name in self._tensors

    def __iter__(self) -> Iterator[str]:
        return iter(self._tensors)

    def __len__(self) -> int:
        return len(self._tensors)

    def items(self) -> Iterator[tuple[str, np.ndarray]]:
        """(name, tensor) pairs in recording order."""
        return iter(self._tensors.items())
