"""Search options and their allowed ranges (docs/DECODING.md, "Search options")."""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real

from int4rt.errors import Int4rtError
from int4rt.options import METHODS, Method

BEAM_MAX = 65536
SYMBOLS_PER_FRAME_MAX = 100
LABEL_LENGTH_MAX = 1 << 20
LM_WEIGHT_MAX = 16.0  # λ_q = round_half_up(λ · 2^16) ≤ 2^20
NATS_MAX = 64.0  # |length_reward|, |blank_penalty| in nats


@dataclass(frozen=True)
class DecodeOptions:
    """What to search and how to score it (DECODING.md, "Search options").

    ``method``: "greedy", "beam" (modified beam search) or "alsd".
    ``beam``: hypotheses kept per step (beam and alsd). ``max_symbols_per_frame``: greedy's
    cap on labels per frame. ``lm_weight`` / ``source_lm_weight``: λ_ext / λ_src of
    density-ratio fusion. ``length_reward`` and ``blank_penalty`` in nats per label /
    per blank. ``nbest``: hypotheses reported (≤ beam; 1 for greedy). ``max_label_length``:
    ALSD's u_max, the most labels a hypothesis may hold; None means the number of encoder
    frames T.
    """

    method: Method = "greedy"
    beam: int = 4
    max_symbols_per_frame: int = 3
    lm_weight: float = 0.0
    source_lm_weight: float = 0.0
    length_reward: float = 0.0
    blank_penalty: float = 0.0
    nbest: int = 1
    max_label_length: int | None = None

    def validate(self) -> None:
        """Raise :class:`Int4rtError` naming the first option outside its range."""
        if self.method not in METHODS:
            raise Int4rtError(f"method must be one of {', '.join(METHODS)}; got {self.method!r}")
        _integer("beam", self.beam, 1, BEAM_MAX)
        _integer("max_symbols_per_frame", self.max_symbols_per_frame, 1, SYMBOLS_PER_FRAME_MAX)
        _real("lm_weight", self.lm_weight, 0.0, LM_WEIGHT_MAX)
        _real("source_lm_weight", self.source_lm_weight, 0.0, LM_WEIGHT_MAX)
        _real("length_reward", self.length_reward, -NATS_MAX, NATS_MAX)
        _real("blank_penalty", self.blank_penalty, -NATS_MAX, NATS_MAX)
        if self.method == "greedy":
            _integer("nbest", self.nbest, 1, 1, " for method 'greedy'")
        else:
            _integer("nbest", self.nbest, 1, self.beam, " (at most beam)")
        if self.max_label_length is not None:
            _integer("max_label_length", self.max_label_length, 1, LABEL_LENGTH_MAX)


def _integer(name: str, value: object, lo: int, hi: int, why: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, Integral) or not lo <= value <= hi:
        raise Int4rtError(f"{name} must be an integer in [{lo}, {hi}]{why}; got {value!r}")


def _real(name: str, value: object, lo: float, hi: float) -> None:
    if (isinstance(value, bool) or not isinstance(value, Real)
            or not math.isfinite(value) or not lo <= value <= hi):
        raise Int4rtError(f"{name} must be a number in [{lo:g}, {hi:g}]; got {value!r}")
