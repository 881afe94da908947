"""The encoder over a long input in memory proportional to its codes (DECODING.md, "Limits").

``RnntModel.encode_codes`` keeps every LSTM intermediate of every step (the trace's gate
pre-activations, gates and cells, int16) and the input projection of all steps at once: for
one hour that is several times the input codes. Without a trace none of that is needed, so
``encode_codes_bounded`` runs the encoder's :class:`~int4rt.model.lstm_stack.LstmStack` with
``chunk_steps=CHUNK_STEPS``: each direction runs that many steps at a time, carrying the state
(h, c) from chunk to chunk (a reverse direction goes through the chunks from the last to the
first), and keeps only each layer's output codes. Every step is the same integer step
(ARITHMETIC.md §8.2–§8.5), so the output is identical to ``encode_codes``.
"""

from __future__ import annotations

import numpy as np

from int4rt import trace_names as names
from int4rt.layers import ActQuant
from int4rt.model.rnnt import RnntModel

CHUNK_STEPS = 4096  # LSTM steps whose intermediates are held at a time


def encode_codes_bounded(model: RnntModel, codes: np.ndarray, *,
                         backend: str = "numba") -> tuple[np.ndarray, ActQuant]:
    """``model.encode_codes(codes)`` without a trace, in bounded memory (Numba backend; the
    NumPy reference backend holds every step, as ``encode_codes`` does).
    """
    x = model.encoder_stack.sequence(codes, backend=backend, prefix=names.ENCODER,
                                     chunk_steps=CHUNK_STEPS)
    return x, model.encoder.output
