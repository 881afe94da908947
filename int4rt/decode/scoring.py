"""Integer score arithmetic: fixed-point weights, fusion terms, emission increments
(docs/DECODING.md, "Scores").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from int4rt.decode.options import DecodeOptions
from int4rt.errors import Int4rtError
from int4rt.model.lm import LmModel
from int4rt.model.rnnt import RnntModel

COMPONENTS = ("am", "ext", "src", "length", "blank")
AM, EXT, SRC, LENGTH, BLANK = range(len(COMPONENTS))
WEIGHT_FRAC_BITS = 16
SCORE_BOUND = 1 << 62  # |score| and every |component| stay below (DECODING.md, "Score range")
LOG_PROB_BOUND = 1 << 31  # |log-probability| ≤ 2^31 (ARITHMETIC.md §10.4)


def fixed_point(value: float, frac_bits: int) -> int:
    """``round_half_up(value · 2^frac_bits)`` of the float's exact value.

    DECODING.md, "Fixed-point weights".
    """
    return math.floor(Fraction(value) * (1 << frac_bits) + Fraction(1, 2))


@dataclass(frozen=True, eq=False)
class Fusion:
    """One fused LM: the component it feeds, λ_q and the shift ``16 + F_lm − F``.

    DECODING.md, "Fusion".
    """

    lm: LmModel
    component: int
    weight_q: int
    shift: int

    @property
    def bound(self) -> int:
        """Largest |term| any log-probability can give."""
        return -(-self.weight_q * LOG_PROB_BOUND >> self.shift)


@dataclass(frozen=True, eq=False)
class Scoring:
    """The integer scoring for one model, options and pair of LMs (DECODING.md, "Scores")."""

    blank_id: int
    frac_bits: int
    length_reward_q: int
    blank_penalty_q: int
    fusions: tuple[Fusion, ...]

    @classmethod
    def build(cls, model: RnntModel, options: DecodeOptions, lm: LmModel | None,
              source_lm: LmModel | None) -> Scoring:
        """Fixed-point weights of ``options``; an LM passed is evaluated even at weight 0."""
        frac_bits = model.joint.logit_frac_bits
        fusions = []
        for name, component, model_lm, weight in (
                ("lm", EXT, lm, options.lm_weight),
                ("source_lm", SRC, source_lm, options.source_lm_weight)):
            if model_lm is None:
                if weight:
                    raise Int4rtError(f"{name}_weight is {weight} but no {name} was given")
                continue
            if tuple(model_lm.vocab) != tuple(model.vocab):
                raise Int4rtError(f"{name}: vocabulary differs from the RNN-T's (same symbols "
                                  "in the same order required)")
            fusions.append(Fusion(model_lm, component, fixed_point(weight, WEIGHT_FRAC_BITS),
                                  WEIGHT_FRAC_BITS + model_lm.logit_frac_bits - frac_bits))
        return cls(model.blank_id, frac_bits, fixed_point(options.length_reward, frac_bits),
                   fixed_point(options.blank_penalty, frac_bits), tuple(fusions))

    def fusion_table(self) -> np.ndarray:
        """int64 [L, 3]: (component, λ_q, shift) of each fused LM, in ``fusions`` order."""
        return np.array([(f.component, f.weight_q, f.shift) for f in self.fusions],
                        dtype=np.int64).reshape(-1, 3)

    def check_emissions(self, emissions: int) -> None:
        """Refuse a search whose ``emissions`` could push a score past ±2^62.

        DECODING.md, "Score range".
        """
        per_emission = (LOG_PROB_BOUND + sum(f.bound for f in self.fusions)
                        + max(abs(self.length_reward_q), abs(self.blank_penalty_q)))
        if emissions * per_emission >= SCORE_BOUND:
            raise Int4rtError(f"{emissions} emissions could overflow the int64 score; "
                              "decode a shorter utterance or use smaller weights")
