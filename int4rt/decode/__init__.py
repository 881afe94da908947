"""RNN-T search with integer scores and LM fusion (docs/DECODING.md).

``decode(model, features, options, lm=..., source_lm=...)`` runs greedy search, modified beam
search or ALSD with shallow or density-ratio fusion; DECODING.md's sections "Greedy search",
"Modified beam search", "ALSD" and "Fusion" specify them.
"""

from __future__ import annotations

import numpy as np

from int4rt.decode.alsd import alsd_search
from int4rt.decode.candidates import Expander
from int4rt.decode.evaluator import Evaluator
from int4rt.decode.greedy import greedy_search
from int4rt.decode.history import HistoryTable
from int4rt.decode.modified_beam import modified_beam_search
from int4rt.decode.options import DecodeOptions
from int4rt.decode.result import DecodeResult
from int4rt.decode.scoring import COMPONENTS, Scoring
from int4rt.model.chunked_encoder import encode_codes_bounded
from int4rt.model.lm import LmModel
from int4rt.model.rnnt import RnntModel

__all__ = ["COMPONENTS", "DecodeOptions", "DecodeResult", "decode", "decode_codes", "search"]


def decode(model: RnntModel, features: np.ndarray, options: DecodeOptions, *,
           lm: LmModel | None = None, source_lm: LmModel | None = None,
           backend: str = "numba") -> DecodeResult:
    """Search float ``features`` [T, F] (passed to ``model.encode``) with ``options``.

    ``lm`` is the external LM (weight ``options.lm_weight``), ``source_lm`` the source LM of
    density-ratio fusion (``options.source_lm_weight``); an LM passed is evaluated even at
    weight 0. The encoder projection is computed once; predictor and LM outputs once per
    label history (DECODING.md, "Label histories and batching").
    """
    return decode_codes(model, model.quantize_features(features), options, lm=lm,
                        source_lm=source_lm, backend=backend)


def decode_codes(model: RnntModel, codes: np.ndarray, options: DecodeOptions, *,
                 lm: LmModel | None = None, source_lm: LmModel | None = None,
                 backend: str = "numba") -> DecodeResult:
    """``decode`` from the encoder's input codes [T, F] (``model.quantize_features``' output;
    the streamed front end, ``int4rt.frontend.stream``, computes them in bounded memory).
    """
    options.validate()
    Scoring.build(model, options, lm, source_lm)  # bad options fail before the encoder runs
    enc, _ = encode_codes_bounded(model, codes, backend=backend)
    enc_proj = model.project_encoder(enc, backend=backend)
    return search(model, enc_proj, options, lm=lm, source_lm=source_lm, backend=backend)


def search(model: RnntModel, enc_proj: np.ndarray, options: DecodeOptions, *,
           lm: LmModel | None = None, source_lm: LmModel | None = None,
           backend: str = "numba") -> DecodeResult:
    """The search of ``decode`` over projected encoder outputs (``model.project_encoder``).

    ``decode`` is ``search`` after the encoder; ``int4rt sweep`` calls it once per grid point
    on one encoder output (DECODING.md, "`int4rt sweep`").
    """
    options.validate()
    scoring = Scoring.build(model, options, lm, source_lm)
    evaluator = Evaluator(model, [fusion.lm for fusion in scoring.fusions], backend)
    expander = Expander(HistoryTable(evaluator), scoring,
                        1 if options.method == "greedy" else options.beam)
    frames = enc_proj.shape[0]
    enc = np.asarray(enc_proj, dtype=np.int64)
    if options.method == "greedy":
        scoring.check_emissions(frames * (options.max_symbols_per_frame + 1))
        hyps = greedy_search(expander, enc, options.max_symbols_per_frame)
    elif options.method == "beam":
        scoring.check_emissions(frames)
        hyps = modified_beam_search(expander, enc)
    else:
        max_labels = frames if options.max_label_length is None else options.max_label_length
        scoring.check_emissions(frames + max_labels)
        hyps = alsd_search(expander, enc, max_labels)
    return DecodeResult.build(model, hyps, frames, options.nbest)
