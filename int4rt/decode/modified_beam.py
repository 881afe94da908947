"""Modified beam search: at most one symbol per frame (docs/DECODING.md, "Modified beam search")."""

from __future__ import annotations

import numpy as np

from int4rt.decode.candidates import Beam, Expander
from int4rt.decode.hypothesis import Hypothesis


def modified_beam_search(expander: Expander, enc_proj: np.ndarray) -> list[Hypothesis]:
    """The final beam, best first: each frame, every hypothesis emits exactly one symbol
    (blank, or a label that takes the frame); candidates are recombined, then pruned to the
    expander's beam (DECODING.md, "Modified beam search"). ``enc_proj`` is int64 [T, J].
    """
    blank = expander.blank_id
    hyps = Beam.start()
    for frame in range(enc_proj.shape[0]):
        enc_rows = np.repeat(enc_proj[frame:frame + 1], len(hyps.histories), axis=0)
        chosen = expander.step(hyps, enc_rows)
        histories, frames = [], []
        for h, k in zip(chosen.parents, chosen.symbols, strict=True):
            if k == blank:
                histories.append(hyps.histories[h])
                frames.append(hyps.frames[h])
            else:
                histories.append(hyps.histories[h].append(k))
                frames.append(hyps.frames[h].append(frame))
        hyps = Beam(histories, frames, chosen.parts)
        expander.table.extend(histories)
        expander.table.retain(histories)
    return [hyps.hypothesis(h) for h in range(len(hyps.histories))]
