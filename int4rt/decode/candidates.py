"""One expansion step shared by the beam searches: score every (hypothesis, symbol)
candidate, recombine equal label sequences, keep the best in the total order
(docs/DECODING.md, "Candidate order, recombination and pruning").
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from int4rt.decode.cache import History, HistoryCache
from int4rt.decode.hypothesis import Hypothesis
from int4rt.decode.scoring import Scoring
from int4rt.model.rnnt import RnntModel


def expand(model: RnntModel, cache: HistoryCache, scoring: Scoring, hyps: Sequence[Hypothesis],
           enc_rows: np.ndarray, backend: str) -> np.ndarray:
    """Cumulative components int64 [H, V, 5] of each hypothesis followed by each symbol.

    ``enc_rows`` int16 [H, J]: the encoder projection of each hypothesis's current frame;
    all H joint rows are one ``joint_log_probs`` call.
    """
    histories = [hyp.tokens for hyp in hyps]
    am = model.joint_log_probs(enc_rows, cache.pred_proj(histories), backend=backend)
    terms = scoring.terms(am, cache.lm_log_probs(histories))
    parents = np.array([hyp.parts for hyp in hyps], dtype=np.int64)
    return parents[:, None, :] + terms


def select(histories: Sequence[History], totals: np.ndarray, beam: int, blank_id: int,
           allowed: np.ndarray | None = None) -> list[tuple[int, int]]:
    """The best ``beam`` candidates (parent rank, symbol), best first.

    ``histories`` are the distinct label sequences of the parents, in rank order; ``totals``
    int64 [H, V] the candidates' scores; ``allowed`` (bool [H, V]) masks candidates out.
    Candidate (h, k) continues ``histories[h]`` with blank (k = blank_id) or label k. Two
    candidates with the same label sequence — blank after y, and label y[-1] after y[:-1] —
    are recombined first: the earlier in the total order survives. Then the candidates are
    ordered by (score descending, parent rank ascending, symbol ascending) and cut to ``beam``.
    """
    keep = np.ones(totals.shape, dtype=bool) if allowed is None else allowed.copy()
    rank = {y: h for h, y in enumerate(histories)}
    for h_blank, y in enumerate(histories):
        h_label = rank.get(y[:-1]) if y else None
        if h_label is None or not keep[h_label, y[-1]] or not keep[h_blank, blank_id]:
            continue
        label, blank = (h_label, y[-1]), (h_blank, blank_id)
        label_first = (-totals[label], h_label, y[-1]) < (-totals[blank], h_blank, blank_id)
        keep[blank if label_first else label] = False
    parent, symbol = np.nonzero(keep)
    scores = totals[parent, symbol]
    order = np.lexsort((symbol, parent, -scores))[:beam]
    return list(zip(parent[order].tolist(), symbol[order].tolist(), strict=True))
