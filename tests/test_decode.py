"""Search properties: beam 1 ≡ greedy, zero fusion weights ≡ no LM, NumPy ≡ Numba, repeatable,
batch-invariant caches, well-formed results, option checks (docs/DECODING.md)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from int4rt import Int4rtError
from int4rt.decode import COMPONENTS, DecodeOptions, DecodeResult, decode
from int4rt.decode.evaluator import Evaluator
from int4rt.model.config import parse_config
from int4rt.model.random_model import random_model

CONFIGS = Path(__file__).parents[1] / "configs"
TINY = json.loads((CONFIGS / "tiny.json").read_text())
LM_TINY = json.loads((CONFIGS / "lm-tiny.json").read_text())
FUSION = {"lm_weight": 0.6, "source_lm_weight": 0.35, "length_reward": 0.8, "blank_penalty": 0.4}


def tiny_model(seed=0, mode="multiplicative"):
    config = json.loads(json.dumps(TINY))
    config["joint"]["mode"] = mode
    return random_model(parse_config(config), seed)


def tiny_lm(seed, hidden=13, frac_bits=10):
    config = json.loads(json.dumps(LM_TINY))
    config["lm"].update(hidden_size=hidden, logit_frac_bits=frac_bits)
    return random_model(parse_config(config), seed)


def features(model, frames=16, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((frames, model.frontend.feature_dim)).astype(np.float32)


def hypothesis(result: DecodeResult):
    return result.tokens, result.frame_indices, result.score, result.components


@pytest.fixture(scope="module")
def lms():
    """An external and a source LM with different logit scales (F_lm ≠ F)."""
    return tiny_lm(11, 13, 12), tiny_lm(12, 9, 8)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("fused", [False, True])
def test_beam_one_is_greedy_with_cap_one(seed, fused, lms):
    model = tiny_model(seed, "additive" if seed % 2 else "multiplicative")
    extra = FUSION if fused else {}
    lm, source_lm = lms if fused else (None, None)
    for utterance in range(2):
        feats = features(model, 12 + 4 * utterance, seed=10 * seed + utterance)
        greedy = decode(model, feats, DecodeOptions("greedy", max_symbols_per_frame=1, **extra),
                        lm=lm, source_lm=source_lm)
        beam = decode(model, feats, DecodeOptions("beam", beam=1, **extra), lm=lm,
                      source_lm=source_lm)
        assert hypothesis(greedy) == hypothesis(beam)
        assert greedy.tokens, "the case should emit labels"


@pytest.mark.parametrize("method", ["greedy", "beam", "alsd"])
def test_zero_weights_equal_no_lm(method, lms):
    model = tiny_model(3)
    feats = features(model, 14)
    options = DecodeOptions(method, beam=3, nbest=1 if method == "greedy" else 3,
                            length_reward=0.3, blank_penalty=0.2)
    plain = decode(model, feats, options)
    fused = decode(model, feats, options, lm=lms[0], source_lm=lms[1])
    assert fused.to_json() == plain.to_json()


@pytest.mark.parametrize("method", ["greedy", "beam", "alsd"])
def test_numpy_numba_and_reruns_identical(method, lms):
    model = tiny_model(4)
    feats = features(model, 14)
    options = DecodeOptions(method, beam=4, nbest=1 if method == "greedy" else 4, **FUSION)
    runs = [decode(model, feats, options, lm=lms[0], source_lm=lms[1], backend=backend).to_json()
            for backend in ("numpy", "numba", "numba")]
    assert runs[0] == runs[1] == runs[2]


@pytest.mark.parametrize("method", ["greedy", "beam", "alsd"])
@pytest.mark.parametrize("fused", [False, True])
def test_results_well_formed(method, fused, lms):
    model = tiny_model(5)
    feats = features(model, 18)
    nbest = 1 if method == "greedy" else 5
    options = DecodeOptions(method, beam=6, nbest=nbest, **(FUSION if fused else {}))
    lm, source_lm = lms if fused else (None, None)
    result = decode(model, feats, options, lm=lm, source_lm=source_lm)
    assert result.frames == 9  # 18 feature frames, stacking 2
    assert len(result.nbest) == nbest and result.nbest[0]["tokens"] == result.tokens
    assert len({tuple(entry["tokens"]) for entry in result.nbest}) == nbest
    scores = [entry["score"] for entry in result.nbest]
    assert scores == sorted(scores, reverse=True) and scores[0] == result.score
    for entry in result.nbest:
        assert list(entry["components"]) == list(COMPONENTS)
        assert sum(entry["components"].values()) == entry["score"]
        assert len(entry["frame_indices"]) == len(entry["tokens"])
        assert entry["frame_indices"] == sorted(entry["frame_indices"])
        assert all(0 <= frame < result.frames for frame in entry["frame_indices"])
        assert model.blank_id not in entry["tokens"]
        assert entry["text"] == "".join(model.vocab[token] for token in entry["tokens"])
        if not fused:
            assert entry["components"]["ext"] == entry["components"]["src"] == 0
    data = result.to_json()
    assert json.loads(json.dumps(data)) == data
    assert data["score_nats"] == result.score / 2**model.joint.logit_frac_bits
    assert result.frame_shift_seconds == pytest.approx(0.02)  # 10 ms × stacking 2
    assert data["times_s"] == result.times_s == [0.02 * f for f in result.frame_indices]
    assert "timestamps" not in data and "times" not in data


def test_greedy_cap_skips_the_blank_term():
    """A frame left at max_symbols_per_frame labels adds no blank term (§5)."""
    model = tiny_model(6)
    feats = features(model, 10)
    result = decode(model, feats, DecodeOptions(max_symbols_per_frame=2, length_reward=30.0,
                                                blank_penalty=1.0))
    assert result.frame_indices == [frame for frame in range(5) for _ in range(2)]
    assert result.components["blank"] == 0
    assert result.components["length"] == 10 * 30 * 2**model.joint.logit_frac_bits


def test_alsd_label_cap_and_empty_input():
    model = tiny_model(7)
    result = decode(model, features(model, 12), DecodeOptions("alsd", beam=4, nbest=4,
                                                              max_label_length=2,
                                                              length_reward=30.0))
    assert all(len(entry["tokens"]) <= 2 for entry in result.nbest)
    assert len(result.tokens) == 2
    for method in ("greedy", "beam", "alsd"):
        empty = decode(model, features(model, 0), DecodeOptions(method))
        assert (empty.tokens, empty.score, empty.frames) == ([], 0, 0)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_history_rows_do_not_depend_on_the_batch(backend, lms):
    model = tiny_model(8)
    together = Evaluator(model, lms, backend, capacity=8)
    alone = Evaluator(model, lms, backend, capacity=2)

    def evaluate(evaluator, parents, tokens, slots):
        evaluator.evaluate(np.array(parents), np.array(tokens), np.array(slots))

    # together: slots 1-4 hold (1), (2), (3), (4); slots 5-7 hold (2, 5), (1, 1), (3, 9)
    evaluate(together, [0, 0, 0, 0], [1, 2, 3, 4], [1, 2, 3, 4])
    evaluate(together, [2, 1, 3], [5, 1, 9], [5, 6, 7])
    evaluate(alone, [0], [2], [1])
    rows = {(): (0, 0), (2,): (2, 1)}
    for history, (row_together, row_alone) in rows.items():
        np.testing.assert_array_equal(together.pred_proj[row_together],
                                      alone.pred_proj[row_alone], err_msg=str(history))
        np.testing.assert_array_equal(together.lm_log_probs[:, row_together],
                                      alone.lm_log_probs[:, row_alone])
    evaluate(alone, [1], [5], [1])  # a row may be its own parent
    np.testing.assert_array_equal(together.pred_proj[5], alone.pred_proj[1])
    np.testing.assert_array_equal(together.lm_log_probs[:, 5], alone.lm_log_probs[:, 1])
    alone.grow(4)
    np.testing.assert_array_equal(together.pred_proj[5], alone.pred_proj[1])


@pytest.mark.parametrize(("changes", "message"), [
    ({"method": "viterbi"}, "method"),
    ({"beam": 0}, "beam"),
    ({"beam": 2.5}, "beam"),
    ({"beam": True}, "beam"),
    ({"max_symbols_per_frame": 0}, "max_symbols_per_frame"),
    ({"lm_weight": -0.1}, "lm_weight"),
    ({"lm_weight": 17.0}, "lm_weight"),
    ({"source_lm_weight": float("nan")}, "source_lm_weight"),
    ({"length_reward": 65.0}, "length_reward"),
    ({"blank_penalty": float("inf")}, "blank_penalty"),
    ({"nbest": 2}, "nbest"),
    ({"method": "beam", "beam": 3, "nbest": 4}, "nbest"),
    ({"method": "alsd", "max_label_length": 0}, "max_label_length"),
])
def test_options_rejected(changes, message):
    options = dataclasses.replace(DecodeOptions(), **changes)
    with pytest.raises(Int4rtError, match=message):
        options.validate()
    model = tiny_model()
    with pytest.raises(Int4rtError, match=message):
        decode(model, features(model, 4), options)


def test_lm_arguments_checked(lms):
    model = tiny_model()
    feats = features(model, 4)
    with pytest.raises(Int4rtError, match="lm_weight"):
        decode(model, feats, DecodeOptions(lm_weight=0.5))
    with pytest.raises(Int4rtError, match="source_lm_weight"):
        decode(model, feats, DecodeOptions(source_lm_weight=0.5), lm=lms[0])
    config = json.loads(json.dumps(LM_TINY))
    config["vocab"] = config["vocab"][::-1]
    other = random_model(parse_config(config), 0)
    with pytest.raises(Int4rtError, match="vocabulary"):
        decode(model, feats, DecodeOptions(lm_weight=0.5), lm=other)
