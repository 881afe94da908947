"""One expansion step shared by the searches: the joint of every hypothesis, then scoring,
recombination and pruning in one kernel (docs/DECODING.md, "Candidate order, recombination
and pruning").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from int4rt.decode.history import HistoryTable
from int4rt.decode.hypothesis import Hypothesis
from int4rt.decode.labels import NO_FRAMES, NO_LABELS, Chain, Labels
from int4rt.decode.scoring import COMPONENTS, Scoring
from int4rt.decode.selection import expand_select


@dataclass(frozen=True, eq=False)
class Beam:
    """H hypotheses, best first: label histories (distinct), label frames, and components
    int64 [H, 5] (DECODING.md, "Emission components")."""

    histories: list[Labels]
    frames: list[Chain]
    parts: np.ndarray

    @classmethod
    def start(cls) -> Beam:
        """The one empty hypothesis, score 0."""
        return cls([NO_LABELS], [NO_FRAMES], np.zeros((1, len(COMPONENTS)), dtype=np.int64))

    def hypothesis(self, h: int, parts: np.ndarray | None = None) -> Hypothesis:
        """Hypothesis ``h`` as a :class:`Hypothesis` (with ``parts`` instead of its own)."""
        own = self.parts[h] if parts is None else parts
        return Hypothesis(self.histories[h], self.frames[h], tuple(int(p) for p in own))


@dataclass(frozen=True, eq=False)
class Chosen:
    """The candidates that survived one step, best first: parent rank, symbol and cumulative
    components; ``blank_parts`` [H, 5] holds every parent's blank candidate."""

    parents: list[int]
    symbols: list[int]
    parts: np.ndarray
    blank_parts: np.ndarray


class Expander:
    """Runs steps for one search: its history table, scoring and beam width."""

    def __init__(self, table: HistoryTable, scoring: Scoring, beam: int) -> None:
        self.table = table
        self._scoring = scoring
        self._fusion = scoring.fusion_table()
        self._beam = beam
        self.blank_id = scoring.blank_id

    def step(self, hyps: Beam, enc_rows: np.ndarray,
             labels_allowed: np.ndarray | None = None) -> Chosen:
        """Score hypothesis h with every symbol at encoder projection ``enc_rows[h]`` (int64
        [H, J]), recombine and keep the best ``beam``; ``labels_allowed`` (bool [H]) lets
        only some hypotheses emit labels.
        """
        count = len(hyps.histories)
        slots = self.table.slots(hyps.histories)
        am = self.table.evaluator.joint(enc_rows, slots)
        rank = {y: h for h, y in enumerate(hyps.histories)}
        prefix = np.array([rank.get(y.parent, -1) for y in hyps.histories], dtype=np.int64)
        last = np.array([y.last for y in hyps.histories], dtype=np.int64)
        allowed = np.ones(count, np.bool_) if labels_allowed is None else labels_allowed
        scoring = self._scoring
        parents = np.empty(self._beam, dtype=np.int64)
        symbols = np.empty(self._beam, dtype=np.int64)
        parts = np.empty((self._beam, len(COMPONENTS)), dtype=np.int64)
        blank_parts = np.empty((count, len(COMPONENTS)), dtype=np.int64)
        kept = expand_select(am, self.table.evaluator.lm_log_probs, slots, self._fusion,
                             scoring.length_reward_q, scoring.blank_penalty_q, scoring.blank_id,
                             hyps.parts, prefix, last, allowed, self._beam, parents, symbols,
                             parts, blank_parts)
        return Chosen(parents[:kept].tolist(), symbols[:kept].tolist(), parts[:kept],
                      blank_parts)
