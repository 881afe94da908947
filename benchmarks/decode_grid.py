"""Full decodes (encoder + search) of one utterance over searches × fusions.

Searches: greedy, modified beam 4/8/16, ALSD 8. Fusions: none, shallow (external LM,
λ 0.5), density ratio (external λ 0.5, source λ 0.3); fused runs add a length reward of 0.5.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np

from int4rt.decode import DecodeOptions, decode
from int4rt.model.lm import LmModel
from int4rt.model.rnnt import RnntModel

SEARCHES = {
    "greedy": {"method": "greedy"},
    "beam 4": {"method": "beam", "beam": 4},
    "beam 8": {"method": "beam", "beam": 8},
    "beam 16": {"method": "beam", "beam": 16},
    "ALSD 8": {"method": "alsd", "beam": 8},
}
FUSIONS = {
    "no LM": {},
    "shallow": {"lm_weight": 0.5, "length_reward": 0.5},
    "density ratio": {"lm_weight": 0.5, "source_lm_weight": 0.3, "length_reward": 0.5},
}
HEADLINE = ("beam 8", "density ratio")


def runs(model: RnntModel, features: np.ndarray, ext: LmModel, src: LmModel,
         searches: dict = SEARCHES) -> dict[tuple[str, str], Callable[[], object]]:
    """One decode callable per (search, fusion)."""
    out = {}
    for search, search_options in searches.items():
        for fusion, fusion_options in FUSIONS.items():
            options = DecodeOptions(**search_options, **fusion_options)
            lm = ext if "lm_weight" in fusion_options else None
            source = src if "source_lm_weight" in fusion_options else None
            out[search, fusion] = partial(decode, model, features, options, lm=lm,
                                          source_lm=source)
    return out


def runs_over_clips(model: RnntModel, clips: list[np.ndarray], ext: LmModel | None,
                    src: LmModel | None,
                    searches: dict = SEARCHES) -> dict[tuple[str, str], Callable[[], object]]:
    """:func:`runs` over several utterances: each callable decodes every one of ``clips``."""
    per_clip = [runs(model, features, ext, src, searches) for features in clips]
    return {key: partial(_each, [grid[key] for grid in per_clip]) for key in per_clip[0]}


def _each(calls: list[Callable[[], object]]) -> list[object]:
    return [call() for call in calls]
