"""Greedy search with a cap on labels per frame (docs/DECODING.md, "Greedy search")."""

from __future__ import annotations

import numpy as np

from int4rt.decode.cache import HistoryCache
from int4rt.decode.candidates import expand
from int4rt.decode.hypothesis import Hypothesis
from int4rt.decode.scoring import Scoring
from int4rt.model.rnnt import RnntModel


def greedy_search(model: RnntModel, cache: HistoryCache, scoring: Scoring,
                  enc_proj: np.ndarray, max_symbols: int, backend: str) -> list[Hypothesis]:
    """The one greedy hypothesis: per frame, take the symbol with the largest increment
    (ties: lowest id) until blank or ``max_symbols`` labels; a frame left at the cap adds no
    blank term (DECODING.md, "Greedy search").
    """
    scoring.check_emissions(enc_proj.shape[0] * (max_symbols + 1))
    hyp = Hypothesis()
    for frame in range(enc_proj.shape[0]):
        for _ in range(max_symbols):
            parts = expand(model, cache, scoring, [hyp], enc_proj[frame:frame + 1], backend)[0]
            symbol = int(np.argmax(parts.sum(axis=1)))  # first maximum: lowest id
            if symbol == scoring.blank_id:
                hyp = hyp.extend(None, frame, parts[symbol])
                break
            hyp = hyp.extend(symbol, frame, parts[symbol])
            cache.extend([hyp.tokens])
            cache.retain([hyp.tokens])
    return [hyp]
