"""Modified beam search: at most one symbol per frame (docs/DECODING.md, "Modified beam search")."""

from __future__ import annotations

import numpy as np

from int4rt.decode.cache import HistoryCache
from int4rt.decode.candidates import expand, select
from int4rt.decode.hypothesis import Hypothesis
from int4rt.decode.scoring import Scoring
from int4rt.model.rnnt import RnntModel


def modified_beam_search(model: RnntModel, cache: HistoryCache, scoring: Scoring,
                         enc_proj: np.ndarray, beam: int, backend: str) -> list[Hypothesis]:
    """The final beam, best first: each frame, every hypothesis emits exactly one symbol
    (blank, or a label that takes the frame); candidates are recombined, then pruned to
    ``beam`` (DECODING.md, "Modified beam search").
    """
    frames = enc_proj.shape[0]
    scoring.check_emissions(frames)
    hyps = [Hypothesis()]
    for frame in range(frames):
        enc_rows = np.repeat(enc_proj[frame:frame + 1], len(hyps), axis=0)
        parts = expand(model, cache, scoring, hyps, enc_rows, backend)
        chosen = select([hyp.tokens for hyp in hyps], parts.sum(axis=2), beam, scoring.blank_id)
        hyps = [hyps[h].extend(None if k == scoring.blank_id else k, frame, parts[h, k])
                for h, k in chosen]
        cache.extend(hyp.tokens for hyp in hyps)
        cache.retain(hyp.tokens for hyp in hyps)
    return hyps
