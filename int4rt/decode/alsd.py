"""Alignment-length synchronous decoding (Saon et al., ICASSP 2020; docs/DECODING.md, "ALSD")."""

from __future__ import annotations

import numpy as np

from int4rt.decode.candidates import Beam, Expander
from int4rt.decode.hypothesis import Hypothesis


def alsd_search(expander: Expander, enc_proj: np.ndarray, max_labels: int) -> list[Hypothesis]:
    """Final hypotheses of ALSD, best first (DECODING.md, "ALSD"); ``enc_proj`` int64 [T, J].

    Step i holds hypotheses with ``t + |y| = i`` (t: the next frame to consume). Each emits a
    blank (t + 1) or, below ``max_labels`` labels, a label (t stays). A blank at the last
    frame is final: it is recorded whether or not it survives pruning, and it keeps the beam
    place it wins but is not expanded. The search ends when the beam holds no live hypothesis.
    """
    frames = enc_proj.shape[0]
    blank = expander.blank_id
    hyps = Beam.start() if frames else None
    finals: list[tuple[int, int, int, Hypothesis]] = []  # (-score, step, parent rank, hyp)
    for step in range(frames + max_labels):
        if hyps is None:
            break
        lengths = np.array([len(y) for y in hyps.histories])
        times = step - lengths
        chosen = expander.step(hyps, enc_proj[times], lengths < max_labels)
        for h in np.flatnonzero(times == frames - 1).tolist():
            final = hyps.hypothesis(h, chosen.blank_parts[h])
            finals.append((-final.score, step, h, final))
        histories, label_frames, rows = [], [], []
        for rank, (h, k) in enumerate(zip(chosen.parents, chosen.symbols, strict=True)):
            if k == blank and times[h] == frames - 1:
                continue
            rows.append(rank)
            if k == blank:
                histories.append(hyps.histories[h])
                label_frames.append(hyps.frames[h])
            else:
                histories.append(hyps.histories[h].append(k))
                label_frames.append(hyps.frames[h].append(int(times[h])))
        hyps = Beam(histories, label_frames, chosen.parts[rows]) if rows else None
        expander.table.extend(histories)
        expander.table.retain(histories)
    finals.sort(key=lambda entry: entry[:3])
    return [entry[3] for entry in finals] or [Hypothesis()]
