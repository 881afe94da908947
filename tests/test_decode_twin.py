"""``int4rt.decode.search`` (history slots, one selection kernel per step) returns exactly what
its plain twin ``tests/naive_search.py`` returns: tokens, frame indices, scores and components
of every n-best entry, on random models, fusion settings, methods and both backends."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from naive_search import naive_search

from int4rt.decode import DecodeOptions, search
from int4rt.model.config import parse_config
from int4rt.model.random_model import random_model

CONFIGS = Path(__file__).parents[1] / "configs"
FUSIONS = {
    "none": {},
    "shallow": {"lm_weight": 0.6, "length_reward": 1.5},
    "density ratio": {"lm_weight": 0.6, "source_lm_weight": 0.35, "length_reward": 0.8,
                      "blank_penalty": 0.4},
    "penalties only": {"length_reward": 0.3, "blank_penalty": 0.5},
}
CASES = [  # (seed, joint mode, method, beam, extra options)
    (0, "multiplicative", "beam", 4, {}),
    (1, "additive", "beam", 8, {}),
    (2, "multiplicative", "beam", 20, {}),  # more live histories than the first pool holds
    (3, "multiplicative", "alsd", 4, {}),
    (4, "additive", "alsd", 6, {"max_label_length": 3}),
    (5, "multiplicative", "greedy", 1, {"max_symbols_per_frame": 3}),
    (6, "additive", "greedy", 1, {"max_symbols_per_frame": 1}),
]


def build(name, seed, **section):
    config = json.loads((CONFIGS / name).read_text())
    key = "lm" if config["architecture"] == "lm" else "joint"
    config[key].update(section)
    return random_model(parse_config(config), seed)


def encoder_rows(model, frames, seed):
    rng = np.random.default_rng(seed)
    feats = rng.standard_normal((frames, model.frontend.feature_dim)).astype(np.float32)
    return model.project_encoder(model.encode(feats)[0])


@pytest.fixture(scope="module")
def lms():
    """An external and a source LM with different logit scales (F_lm ≠ F)."""
    return (build("lm-tiny.json", 21, hidden_size=13, logit_frac_bits=12),
            build("lm-tiny.json", 22, hidden_size=9, logit_frac_bits=8))


def entries(result):
    return [(e["tokens"], e["frame_indices"], e["score"], e["components"])
            for e in result.nbest]


@pytest.mark.parametrize("fusion", sorted(FUSIONS))
@pytest.mark.parametrize(("seed", "mode", "method", "beam", "extra"), CASES)
def test_search_equals_its_plain_twin(seed, mode, method, beam, extra, fusion, lms):
    model = build("tiny.json", seed, mode=mode)
    enc_proj = encoder_rows(model, 40 + 6 * seed, seed)
    weights = FUSIONS[fusion]
    lm = lms[0] if "lm_weight" in weights else None
    source_lm = lms[1] if "source_lm_weight" in weights else None
    options = DecodeOptions(method, beam=beam, nbest=beam, **extra, **weights)
    expected = naive_search(model, enc_proj, options, lm=lm, source_lm=source_lm)
    assert any(entry["tokens"] for entry in expected.nbest), "the case should emit labels"
    for backend in ("numba", "numpy"):
        got = search(model, enc_proj, options, lm=lm, source_lm=source_lm, backend=backend)
        assert entries(got) == entries(expected), backend
        assert got.to_json() == expected.to_json()
