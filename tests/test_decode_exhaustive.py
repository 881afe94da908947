"""Searches against an independent scorer (docs/DECODING.md §2): with a beam covering the whole
hypothesis space, modified beam search and ALSD return every label sequence with its best
alignment score, as exhaustive enumeration finds it; reported scores of a real beam equal
the independent rescoring of their alignments."""

from __future__ import annotations

import itertools
import json
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from int4rt.arith import INT32_MAX, INT32_MIN, fully_connected
from int4rt.decode import COMPONENTS, DecodeOptions, decode
from int4rt.model.config import parse_config
from int4rt.model.random_model import random_model
from int4rt.ops.log_softmax.reference import log_softmax
from int4rt.ops.lstm.numba import lstm_sequence

pytestmark = pytest.mark.thorough  # exhaustive searches: the full suite only

CONFIGS = Path(__file__).parents[1] / "configs"
VOCAB5 = ["<blk>", "a", "b", "c", "d"]
FUSION = {"lm_weight": 0.55, "source_lm_weight": 0.3, "length_reward": 0.45,
          "blank_penalty": 0.2}
WIDE = 2000  # more than (Σ_{u≤4} 4^u) · 5 candidates: nothing is ever pruned


def build(name, seed, vocab=None, **section):
    config = json.loads((CONFIGS / name).read_text())
    if vocab is not None:
        config["vocab"] = vocab
    key = "lm" if config["architecture"] == "lm" else "joint"
    config[key].update(section)
    return random_model(parse_config(config), seed)


def features(model, frames, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((frames, model.frontend.feature_dim)).astype(np.float32)


def rdbpot(x: int, e: int) -> int:
    """x / 2^e rounded half away from zero, in Python integers."""
    q, r = divmod(abs(x), 1 << e)
    q += 2 * r >= 1 << e
    return q if x >= 0 else -q


def lm_rows(lm, blank, labels):
    """LM log-probs [U + 1, V] after each prefix, each layer run over the whole sequence."""
    x = lm.embedding[np.array([blank, *labels])]
    for cell in lm.layers:
        x = lstm_sequence(cell, x, lm.sigmoid_table, lm.rounding)[0]
    out = lm.out
    logits = fully_connected(x, out.weight, out.bias, x_zero_point=lm.output.zero_point,
                             multiplier=out.multiplier, shift=out.shift, y_zero_point=0,
                             y_min=INT32_MIN, y_max=INT32_MAX, rounding=lm.rounding)
    return log_softmax(logits, lm.logit_frac_bits, lm.exp2_table, lm.ln_table)


class Reference:
    """Emission components of §2.1 for one utterance, from model.lattice and LM sequences."""

    def __init__(self, model, feats, options, lm=None, source_lm=None):
        self.model, self.feats = model, feats
        self.frac = model.joint.logit_frac_bits
        self.blank = model.blank_id
        self.reward = math.floor(Fraction(options.length_reward) * 2**self.frac + Fraction(1, 2))
        self.penalty = math.floor(Fraction(options.blank_penalty) * 2**self.frac
                                  + Fraction(1, 2))
        self.lms = [(lm_model, math.floor(Fraction(weight) * 2**16 + Fraction(1, 2)), sign)
                    for lm_model, weight, sign in ((lm, options.lm_weight, 1),
                                                   (source_lm, options.source_lm_weight, -1))
                    if lm_model is not None]

    def parts(self, labels):
        """(label parts [T, U, 5] for labels[u] at frame t, blank parts [T, U + 1, 5])."""
        lattice = self.model.lattice(self.feats, list(labels)).astype(np.int64)
        frames, count = lattice.shape[0], len(labels)
        label = np.zeros((frames, count, 5), dtype=np.int64)
        blank = np.zeros((frames, count + 1, 5), dtype=np.int64)
        blank[..., 0] = lattice[..., self.blank]
        blank[..., 4] = -self.penalty
        for u, token in enumerate(labels):
            label[:, u, 0] = lattice[:, u, token]
            label[:, u, 3] = self.reward
        for lm, weight, sign in self.lms:
            rows = lm_rows(lm, self.blank, labels)
            shift = 16 + lm.logit_frac_bits - self.frac
            for u, token in enumerate(labels):
                label[:, u, 1 if sign > 0 else 2] = sign * rdbpot(weight * int(rows[u, token]),
                                                                  shift)
        return label, blank

    def alignment(self, labels, frames_of_labels, blanks):
        """Components of labels[u] at frames_of_labels[u] and a blank at each (t, u) in
        ``blanks``."""
        label, blank = self.parts(labels)
        total = sum((label[t, u] for u, t in enumerate(frames_of_labels)), np.zeros(5, np.int64))
        return [int(v) for v in total + sum((blank[t, u] for t, u in blanks),
                                            np.zeros(5, np.int64))]


def best_modified(ref, frames, labels):
    """Max over alignments with at most one symbol per frame; a label takes its frame."""
    label, blank = ref.parts(labels)
    best = None
    for positions in itertools.combinations(range(frames), len(labels)):
        score, u = 0, 0
        for t in range(frames):
            if u < len(labels) and positions[u] == t:
                score += int(label[t, u].sum())
                u += 1
            else:
                score += int(blank[t, u].sum())
        best = score if best is None else max(best, score)
    return best


def best_alsd(ref, frames, labels):
    """Max over alignments with any number of labels per frame, each frame ending in blank."""
    label, blank = ref.parts(labels)
    best = None
    for positions in itertools.combinations_with_replacement(range(frames), len(labels)):
        score = sum(int(label[t, u].sum()) for u, t in enumerate(positions))
        score += sum(int(blank[t, sum(p <= t for p in positions)].sum()) for t in range(frames))
        best = score if best is None else max(best, score)
    return best


def sequences(max_length):
    return [labels for length in range(max_length + 1)
            for labels in itertools.product(range(1, len(VOCAB5)), repeat=length)]


@pytest.fixture(scope="module")
def small():
    """A 5-symbol RNN-T (4 encoder frames from 8 feature frames) and two 5-symbol LMs."""
    model = build("tiny.json", 3, VOCAB5)
    lms = build("lm-tiny.json", 4, VOCAB5, logit_frac_bits=11), build("lm-tiny.json", 5, VOCAB5)
    return model, features(model, 8, 6), lms


@pytest.mark.parametrize("fused", [False, True])
def test_modified_beam_equals_exhaustive_search(small, fused):
    model, feats, (lm, source_lm) = small
    options = DecodeOptions("beam", beam=WIDE, nbest=WIDE, **(FUSION if fused else {}))
    lms = {"lm": lm, "source_lm": source_lm} if fused else {}
    result = decode(model, feats, options, **lms)
    ref = Reference(model, feats, options, **lms)
    frames = result.frames
    assert frames == 4
    expected = {labels: best_modified(ref, frames, labels) for labels in sequences(frames)}
    found = {tuple(entry["tokens"]): entry["score"] for entry in result.nbest}
    assert found == expected
    assert result.score == max(expected.values())
    assert len(set(expected.values())) > len(expected) // 2  # scores actually discriminate


@pytest.mark.parametrize("fused", [False, True])
def test_alsd_equals_exhaustive_search(small, fused):
    model, feats, (lm, source_lm) = small
    options = DecodeOptions("alsd", beam=WIDE, nbest=WIDE, max_label_length=3,
                            **(FUSION if fused else {}))
    lms = {"lm": lm, "source_lm": source_lm} if fused else {}
    result = decode(model, feats, options, **lms)
    ref = Reference(model, feats, options, **lms)
    expected = {labels: best_alsd(ref, result.frames, labels) for labels in sequences(3)}
    found = {tuple(entry["tokens"]): entry["score"] for entry in result.nbest}
    assert found == expected
    assert result.score == max(expected.values())


@pytest.mark.parametrize("method", ["greedy", "beam", "alsd"])
def test_reported_components_equal_rescored_alignments(method):
    """Each n-best entry of a beam of 8 (fusion on) rescored alone along its alignment."""
    model = build("tiny.json", 7)
    lm, source_lm = build("lm-tiny.json", 8), build("lm-tiny.json", 9, hidden_size=7)
    feats = features(model, 16, 10)
    options = DecodeOptions(method, beam=8, nbest=1 if method == "greedy" else 8,
                            max_symbols_per_frame=2, **FUSION)
    result = decode(model, feats, options, lm=lm, source_lm=source_lm)
    ref = Reference(model, feats, options, lm, source_lm)
    for entry in result.nbest:
        labels, stamps = entry["tokens"], entry["frame_indices"]
        if method == "beam":  # a label takes its frame
            blanks = [(t, sum(s < t for s in stamps)) for t in range(result.frames)
                      if t not in stamps]
        elif method == "greedy":  # a frame left at the cap has no blank
            blanks = [(t, sum(s <= t for s in stamps)) for t in range(result.frames)
                      if stamps.count(t) < options.max_symbols_per_frame]
        else:
            blanks = [(t, sum(s <= t for s in stamps)) for t in range(result.frames)]
        assert dict(zip(COMPONENTS, ref.alignment(labels, stamps, blanks), strict=True)) == \
            entry["components"]
