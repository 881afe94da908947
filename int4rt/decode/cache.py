"""Predictor and LM outputs per label history, computed in batches across hypotheses
(docs/DECODING.md, "Label histories and batching").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np

from int4rt.decode.labels import NO_LABELS, Labels
from int4rt.model.lm import LmModel
from int4rt.model.lstm_stack import LstmState
from int4rt.model.parallel import run_all
from int4rt.model.rnnt import RnntModel

History = Labels


@dataclass(frozen=True, eq=False)
class _Node:
    """What a label history leads to: row ``row`` of one batched evaluation."""

    row: int
    pred_state: LstmState
    pred_proj: np.ndarray  # int16 [N, J]
    lm_states: tuple[LstmState, ...]
    lm_log_probs: tuple[np.ndarray, ...]  # int32 [N, V] each


class HistoryCache:
    """Outputs after each live label history y: the joint's predictor projection, the
    predictor state, and each LM's state and next-token log-probabilities.

    The empty history is the blank id fed to the initial states (the RNN-T's start symbol and
    the LMs' sentence start). ``extend`` evaluates every missing history of a step in one
    ``predictor_step``, one ``project_predictor`` and one ``step`` per LM, batched over the
    histories; each row is independent of the others.
    """

    def __init__(self, model: RnntModel, lms: Sequence[LmModel], backend: str) -> None:
        self._model = model
        self._lms = tuple(lms)
        self._backend = backend
        self._nodes: dict[History, _Node] = {}
        self._evaluate([NO_LABELS], [model.blank_id], model.predictor_initial_state(1),
                       [lm.initial_state(1) for lm in self._lms])

    def extend(self, histories: Iterable[History]) -> None:
        """Evaluate, in one batch, each history not cached yet; its prefix must be cached."""
        missing = list(dict.fromkeys(y for y in histories if y not in self._nodes))
        if not missing:
            return
        parents = [self._nodes[y[:-1]] for y in missing]
        rows = [node.row for node in parents]
        self._evaluate(missing, [y[-1] for y in missing],
                       _gather([node.pred_state for node in parents], rows),
                       [_gather([node.lm_states[index] for node in parents], rows)
                        for index in range(len(self._lms))])

    def retain(self, histories: Iterable[History]) -> None:
        """Forget every history but ``histories`` (those still live in the search)."""
        keep = set(histories)
        self._nodes = {y: node for y, node in self._nodes.items() if y in keep}

    def pred_proj(self, histories: Sequence[History]) -> np.ndarray:
        """Predictor projections int16 [N, J] of ``histories``."""
        nodes = [self._nodes[y] for y in histories]
        return np.stack([node.pred_proj[node.row] for node in nodes])

    def lm_log_probs(self, histories: Sequence[History]) -> list[np.ndarray]:
        """Per LM, next-token log-probabilities int32 [N, V] after ``histories``."""
        nodes = [self._nodes[y] for y in histories]
        return [np.stack([node.lm_log_probs[index][node.row] for node in nodes])
                for index in range(len(self._lms))]

    def _evaluate(self, histories: list[History], tokens: list[int],
                  pred_state: LstmState, lm_states: list[LstmState]) -> None:
        """Feed ``tokens`` to the batched states before ``histories`` (one row each)."""
        ids = np.array(tokens, dtype=np.int64)

        def predictor() -> tuple[np.ndarray, LstmState]:
            out, state = self._model.predictor_step(ids, pred_state, backend=self._backend)
            return self._model.project_predictor(out, backend=self._backend), state

        # The predictor and each LM are independent: on threads when Numba allows several.
        results = run_all([predictor] + [
            partial(lm.step, ids, state, backend=self._backend)
            for lm, state in zip(self._lms, lm_states, strict=True)])
        (pred_proj, pred_state), steps = results[0], results[1:]
        new_states = tuple(state for _, state in steps)
        log_probs = tuple(rows for rows, _ in steps)
        for row, history in enumerate(histories):
            self._nodes[history] = _Node(row, pred_state, pred_proj, new_states, log_probs)


def _gather(states: list[LstmState], rows: list[int]) -> LstmState:
    """One batched state whose row b is row ``rows[b]`` of ``states[b]``."""
    layers = range(len(states[0].h))
    return LstmState(tuple(np.stack([s.h[layer][r] for s, r in zip(states, rows, strict=True)])
                      for layer in layers),
                tuple(np.stack([s.c[layer][r] for s, r in zip(states, rows, strict=True)])
                      for layer in layers))
