"""Live label histories and their slots in the :class:`~int4rt.decode.evaluator.Evaluator`
pools (docs/DECODING.md, "Label histories and batching").

A history is an interned :class:`~int4rt.decode.labels.Labels` sequence, so equal label
sequences reached by different hypotheses are one key and share one evaluation. A history no
hypothesis holds any more gives its slot back.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from int4rt.decode.evaluator import Evaluator
from int4rt.decode.labels import NO_LABELS, Labels

History = Labels


class HistoryTable:
    """The slot of every live history; the empty history starts in slot 0."""

    def __init__(self, evaluator: Evaluator) -> None:
        self.evaluator = evaluator
        self._slot: dict[History, int] = {NO_LABELS: 0}
        self._free = list(range(evaluator.capacity - 1, 0, -1))

    def slots(self, histories: Sequence[History]) -> np.ndarray:
        """The pool rows of ``histories``."""
        slot = self._slot
        return np.array([slot[y] for y in histories], dtype=np.int64)

    def extend(self, histories: Iterable[History]) -> None:
        """Evaluate, in one batch, each history not held yet; its prefix must be held."""
        parents, tokens, slots = [], [], []
        for y in histories:
            if y not in self._slot:
                parents.append(self._slot[y[:-1]])
                tokens.append(y[-1])
                slots.append(self._slot.setdefault(y, self._take()))
        if slots:
            self.evaluator.evaluate(np.array(parents, dtype=np.int64),
                                    np.array(tokens, dtype=np.int64),
                                    np.array(slots, dtype=np.int64))

    def retain(self, histories: Iterable[History]) -> None:
        """Forget every history but ``histories`` (those still live in the search)."""
        keep = set(histories)
        for y in [y for y in self._slot if y not in keep]:
            self._free.append(self._slot.pop(y))

    def _take(self) -> int:
        if not self._free:
            old = self.evaluator.capacity
            self.evaluator.grow(2 * old)
            self._free = list(range(2 * old - 1, old - 1, -1))
        return self._free.pop()
