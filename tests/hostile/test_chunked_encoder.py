"""The bounded-memory encoder equals ``encode_codes`` exactly (issue 14 §3)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from int4rt.model import chunked_encoder
from int4rt.model.config import load_config
from int4rt.model.random_model import random_model

CONFIGS = Path(__file__).parents[2] / "configs"


@pytest.mark.parametrize(("seed", "steps", "chunk"), [(0, 1, 3), (1, 37, 5), (2, 64, 8),
                                                      (3, 200, 4096), (4, 333, 1)])
def test_chunked_encoder_equals_encode_codes(monkeypatch, seed, steps, chunk):
    model = random_model(load_config(CONFIGS / "tiny.json"), seed)
    rng = np.random.default_rng(seed)
    features = rng.standard_normal((steps, model.frontend.feature_dim)).astype(np.float32)
    codes = model.quantize_features(features)
    monkeypatch.setattr(chunked_encoder, "CHUNK_STEPS", chunk)
    got, fmt = chunked_encoder.encode_codes_bounded(model, codes)
    want, want_fmt = model.encode_codes(codes)
    assert fmt == want_fmt and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    numpy_got, _ = chunked_encoder.encode_codes_bounded(model, codes, backend="numpy")
    np.testing.assert_array_equal(numpy_got, want)
