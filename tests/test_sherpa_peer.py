"""The sherpa-onnx peer decodes at the label rate it is tuned to (benchmarks/sherpa_peer.py).

Needs the `peers` extra (torch, onnx, sherpa-onnx); marked slow (about a minute), so CI skips it.
"""

import numpy as np
import pytest

from benchmarks import sherpa_peer

pytestmark = pytest.mark.slow

VOCAB = ["<blk>", " ", "'", *(chr(c) for c in range(ord("a"), ord("z") + 1))]
SECONDS = 4.0


@pytest.fixture(scope="module")
def noise() -> np.ndarray:
    for package in ("sherpa_onnx", "torch", "onnx"):
        pytest.importorskip(package)
    rng = np.random.default_rng(0)
    return (rng.standard_normal(int(SECONDS * 16000)) * 0.1).astype(np.float32)


def test_tuned_peer_emits_the_target_rate_with_many_labels(tmp_path, noise):
    paths, rate = sherpa_peer.tuned_paths(tmp_path, VOCAB, noise, SECONDS, 13.8)
    assert abs(rate - 13.8) <= sherpa_peer.RATE_TOLERANCE * 13.8
    tokens = sherpa_peer.transcribe(sherpa_peer.recognizer(paths, 1, 1, None), noise)
    assert len(tokens) == pytest.approx(rate * SECONDS, abs=0.5)
    assert len(set(tokens)) >= 8, tokens


def test_a_peer_that_cannot_reach_the_rate_is_an_error(tmp_path, noise, monkeypatch):
    monkeypatch.setattr(sherpa_peer, "ENC_GAIN", 1.0)
    monkeypatch.setattr(sherpa_peer, "JOINER_ENC_GAIN", 1.0)
    with pytest.raises(RuntimeError, match="no blank bias"):
        sherpa_peer.tuned_paths(tmp_path, VOCAB, noise, SECONDS, 13.8)
