"""Alignment-length synchronous decoding (Saon et al., ICASSP 2020; docs/DECODING.md, "ALSD")."""

from __future__ import annotations

import numpy as np

from int4rt.decode.cache import HistoryCache
from int4rt.decode.candidates import expand, select
from int4rt.decode.hypothesis import Hypothesis
from int4rt.decode.scoring import Scoring
from int4rt.model.rnnt import RnntModel


def alsd_search(model: RnntModel, cache: HistoryCache, scoring: Scoring, enc_proj: np.ndarray,
                beam: int, max_labels: int, backend: str) -> list[Hypothesis]:
    """Final hypotheses of ALSD, best first (DECODING.md, "ALSD").

    Step i holds hypotheses with ``t + |y| = i`` (t: the next frame to consume). Each emits a
    blank (t + 1) or, below ``max_labels`` labels, a label (t stays). A blank at the last
    frame is final: it is recorded whether or not it survives pruning, and it keeps the beam
    place it wins but is not expanded. The search ends when the beam holds no live hypothesis.
    """
    frames = enc_proj.shape[0]
    scoring.check_emissions(frames + max_labels)
    blank = scoring.blank_id
    hyps = [Hypothesis()] if frames else []
    finals: list[tuple[int, int, int, Hypothesis]] = []  # (-score, step, parent rank, hyp)
    for step in range(frames + max_labels):
        if not hyps:
            break
        lengths = np.array([len(hyp.tokens) for hyp in hyps])
        times = step - lengths
        parts = expand(model, cache, scoring, hyps, enc_proj[times], backend)
        totals = parts.sum(axis=2)
        allowed = np.repeat((lengths < max_labels)[:, None], totals.shape[1], axis=1)
        allowed[:, blank] = True
        for h in np.flatnonzero(times == frames - 1).tolist():
            final = hyps[h].extend(None, frames - 1, parts[h, blank])
            finals.append((-final.score, step, h, final))
        chosen = select([hyp.tokens for hyp in hyps], totals, beam, blank, allowed)
        hyps = [hyps[h].extend(None if k == blank else k, int(times[h]), parts[h, k])
                for h, k in chosen if k != blank or times[h] < frames - 1]
        cache.extend(hyp.tokens for hyp in hyps)
        cache.retain(hyp.tokens for hyp in hyps)
    finals.sort(key=lambda entry: entry[:3])
    return [entry[3] for entry in finals] or [Hypothesis()]
