"""A search hypothesis: labels, their frames, score components (DECODING.md, "Scores")."""

from __future__ import annotations

from dataclasses import dataclass

from int4rt.decode.labels import NO_FRAMES, NO_LABELS, Chain, Labels

Parts = tuple[int, int, int, int, int]


@dataclass(frozen=True)
class Hypothesis:
    """Labels ``tokens`` (blank-free), the encoder frame of each, and the five components
    (am, ext, src, length, blank) whose sum is the score (DECODING.md, "Emission components").
    Both sequences grow in O(1) per label (``int4rt.decode.labels``).
    """

    tokens: Labels = NO_LABELS
    frame_indices: Chain = NO_FRAMES
    parts: Parts = (0, 0, 0, 0, 0)

    @property
    def score(self) -> int:
        """The total score, units 2^-F."""
        return sum(self.parts)
