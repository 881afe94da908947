"""One expansion step shared by the searches, as one Numba kernel: score every (hypothesis,
symbol) candidate, recombine equal label sequences, keep the best in the total order
(docs/DECODING.md, "Emission components" and "Candidate order, recombination and pruning").
"""

from __future__ import annotations

import numba as nb
import numpy as np

from int4rt.decode.scoring import AM, BLANK, COMPONENTS, EXT, LENGTH
from int4rt.ops.requantize.scalar import rounding_divide_by_pot

PARTS = len(COMPONENTS)


@nb.njit(cache=True, nogil=True)
def _increment(am, lm_log_probs, slot, h, k, blank, fusion, length_q, blank_q, out):
    """Components of symbol ``k`` after hypothesis ``h`` (DECODING.md, "Emission components"):
    a blank scores am and −blank_penalty_q only; a label am, each fusion term
    ``±RDBPOT(λ_q · lp, shift)`` and the length reward.
    """
    out[:] = 0
    out[AM] = am[h, k]
    if k == blank:
        out[BLANK] = -blank_q
        return
    for index in range(fusion.shape[0]):
        term = rounding_divide_by_pot(fusion[index, 1] * np.int64(lm_log_probs[index, slot, k]),
                                      fusion[index, 2])
        out[fusion[index, 0]] = term if fusion[index, 0] == EXT else -term
    out[LENGTH] = length_q


@nb.njit(cache=True, nogil=True)
def _before(score_a, h_a, k_a, score_b, h_b, k_b):
    """Candidate a precedes b in the total order (score desc, parent asc, symbol asc)."""
    if score_a != score_b:
        return score_a > score_b
    if h_a != h_b:
        return h_a < h_b
    return k_a < k_b


@nb.njit(cache=True, nogil=True)
def expand_select(am, lm_log_probs, slots, fusion, length_q, blank_q, blank, parts, prefix,
                  last, labels_allowed, beam, out_parent, out_symbol, out_parts, blank_parts):
    """Score, recombine and prune the candidates of H hypotheses; return how many survive.

    ``am`` int32 [H, V]: RNN-T log-probabilities; ``lm_log_probs`` int32 [L, S, V] and
    ``slots`` [H]: each hypothesis's LM rows; ``fusion`` int64 [L, 3]: (component, λ_q,
    shift) per LM; ``parts`` int64 [H, 5]: the hypotheses' components; ``prefix[h]``: the rank
    of the hypothesis holding y_h without its last label (−1: none or y_h empty) and
    ``last[h]`` that label; ``labels_allowed[h]``: whether h may emit a label (blank always
    may). The survivors, best first, go to ``out_parent``, ``out_symbol`` and ``out_parts``
    (cumulative components); ``blank_parts[h]`` receives every hypothesis's blank candidate.
    """
    rows, vocab = am.shape
    totals = np.empty((rows, vocab), dtype=np.int64)
    keep = np.empty((rows, vocab), dtype=np.bool_)
    term = np.empty(PARTS, dtype=np.int64)
    for h in range(rows):
        for k in range(vocab):
            _increment(am, lm_log_probs, slots[h], h, k, blank, fusion, length_q, blank_q,
                       term)
            total = np.int64(0)
            for c in range(PARTS):
                total += parts[h, c] + term[c]
                if k == blank:
                    blank_parts[h, c] = parts[h, c] + term[c]
            totals[h, k] = total
            keep[h, k] = labels_allowed[h] or k == blank
    # Recombination: blank after y meets label y[-1] after y[:-1]; the earlier survives.
    for h_blank in range(rows):
        h_label = prefix[h_blank]
        if h_label < 0:
            continue
        k = last[h_blank]
        if not keep[h_label, k] or not keep[h_blank, blank]:
            continue
        if _before(totals[h_label, k], h_label, k, totals[h_blank, blank], h_blank, blank):
            keep[h_blank, blank] = False
        else:
            keep[h_label, k] = False
    # Pruning: candidates come in (parent, symbol) order, so among equal scores the one
    # already kept precedes; a newcomer goes after every kept candidate with score ≥ its own.
    count = 0
    for h in range(rows):
        for k in range(vocab):
            if not keep[h, k]:
                continue
            total = totals[h, k]
            if count == beam and total <= totals[out_parent[count - 1], out_symbol[count - 1]]:
                continue
            place = min(count, beam - 1)
            while place > 0 and totals[out_parent[place - 1], out_symbol[place - 1]] < total:
                if place < beam:
                    out_parent[place] = out_parent[place - 1]
                    out_symbol[place] = out_symbol[place - 1]
                place -= 1
            out_parent[place] = h
            out_symbol[place] = k
            count = min(count + 1, beam)
    for rank in range(count):
        h, k = out_parent[rank], out_symbol[rank]
        _increment(am, lm_log_probs, slots[h], h, k, blank, fusion, length_q, blank_q, term)
        for c in range(PARTS):
            out_parts[rank, c] = parts[h, c] + term[c]
    return count
