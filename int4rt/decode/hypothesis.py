"""A search hypothesis: labels, their frames, score components (DECODING.md, "Scores")."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Parts = tuple[int, int, int, int, int]


@dataclass(frozen=True)
class Hypothesis:
    """Labels ``tokens`` (blank-free), the encoder frame of each, and the five components
    (am, ext, src, length, blank) whose sum is the score (DECODING.md, "Emission components").
    """

    tokens: tuple[int, ...] = ()
    frame_indices: tuple[int, ...] = ()
    parts: Parts = (0, 0, 0, 0, 0)

    @property
    def score(self) -> int:
        """The total score, units 2^-F."""
        return sum(self.parts)

    def extend(self, token: int | None, frame: int, parts: np.ndarray) -> Hypothesis:
        """This hypothesis after one emission: a label ``token`` at ``frame``, or a blank
        (None); ``parts`` are the new cumulative components.
        """
        new_parts = tuple(int(p) for p in parts)
        if token is None:
            return Hypothesis(self.tokens, self.frame_indices, new_parts)
        return Hypothesis((*self.tokens, token), (*self.frame_indices, frame), new_parts)
