"""Greedy search with a cap on labels per frame (docs/DECODING.md, "Greedy search")."""

from __future__ import annotations

import numpy as np

from int4rt.decode.candidates import Beam, Expander
from int4rt.decode.hypothesis import Hypothesis


def greedy_search(expander: Expander, enc_proj: np.ndarray,
                  max_symbols: int) -> list[Hypothesis]:
    """The one greedy hypothesis: per frame, take the symbol with the largest increment
    (ties: lowest id) until blank or ``max_symbols`` labels; a frame left at the cap adds no
    blank term (DECODING.md, "Greedy search"). The expander's beam is 1; ``enc_proj`` is
    int64 [T, J].
    """
    hyp = Beam.start()
    for frame in range(enc_proj.shape[0]):
        for _ in range(max_symbols):
            chosen = expander.step(hyp, enc_proj[frame:frame + 1])
            symbol = chosen.symbols[0]
            if symbol == expander.blank_id:
                hyp = Beam(hyp.histories, hyp.frames, chosen.parts)
                break
            hyp = Beam([hyp.histories[0].append(symbol)], [hyp.frames[0].append(frame)],
                       chosen.parts)
            expander.table.extend(hyp.histories)
            expander.table.retain(hyp.histories)
    return [hyp.hypothesis(0)]
