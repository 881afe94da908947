"""The whole RNN-T, features to log-probabilities: NumPy and Numba paths agree bit for bit."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from int4rt import Int4rtError
from int4rt.model.config import parse_config
from int4rt.model.random_model import random_model
from int4rt.trace import Trace

TINY = json.loads((Path(__file__).parents[1] / "configs" / "tiny.json").read_text())
LABELS = [3, 5, 4, 10]
COMBOS = list(itertools.product([4, 8], [4, 8], [False, True], ["additive", "multiplicative"],
                                ["double", "single"]))


def tiny_model(weight_bits=4, act_bits=4, bidirectional=True, mode="multiplicative",
               rounding="double", seed=0):
    """A random model of configs/tiny.json with the given variations."""
    config = json.loads(json.dumps(TINY))
    config["encoder"]["bidirectional"] = bidirectional
    config["joint"]["mode"] = mode
    config["quantization"].update(weight_bits=weight_bits, activation_bits=act_bits,
                                  rounding=rounding)
    return random_model(parse_config(config), seed)


def features(model, frames: int = 14, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((frames, model.frontend.feature_dim)).astype(np.float32)


@pytest.mark.parametrize(("weight_bits", "act_bits", "bidirectional", "mode", "rounding"), COMBOS)
def test_numpy_and_numba_lattices_identical(weight_bits, act_bits, bidirectional, mode, rounding):
    model = tiny_model(weight_bits, act_bits, bidirectional, mode, rounding)
    feats = features(model)
    traces = Trace(), Trace()
    lattices = [model.lattice(feats, LABELS, backend=backend, trace=trace)
                for backend, trace in zip(("numpy", "numba"), traces, strict=True)]
    np.testing.assert_array_equal(lattices[0], lattices[1])
    assert list(traces[0]) == list(traces[1])
    for name in traces[0]:
        assert traces[0][name].dtype == traces[1][name].dtype, name
        np.testing.assert_array_equal(traces[0][name], traces[1][name], err_msg=name)
    frames = -(-feats.shape[0] // model.encoder.layers[0].stack)
    assert lattices[0].shape == (frames, len(LABELS) + 1, len(model.vocab))
    assert lattices[0].dtype == np.int32
    directions = ("fwd", "bwd") if bidirectional else ("fwd",)
    for layer, direction in itertools.product(range(len(model.encoder.layers)), directions):
        assert f"encoder.layer{layer}.{direction}.gate.f" in traces[0]
    assert "encoder.layer0.stacked" in traces[0] and "joint.log_probs" in traces[0]


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_probabilities_normalize_and_vary(backend):
    model = tiny_model()
    lattice = model.lattice(features(model), LABELS, backend=backend)
    probs = np.exp(lattice / 2.0**model.joint.logit_frac_bits)
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=2e-3)
    assert np.unique(lattice.argmax(axis=-1)).size > 1 or np.ptp(lattice) > 0


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_stepwise_search_path_equals_lattice(backend):
    """predictor_step + joint_log_probs (what a search does) reproduce the lattice entries."""
    model = tiny_model(8, 4, mode="additive")
    feats = features(model)
    lattice = model.lattice(feats, LABELS, backend=backend)
    enc, fmt = model.encode(feats, backend=backend)
    assert fmt == model.encoder.output and enc.dtype == fmt.dtype
    enc_proj = model.project_encoder(enc, backend=backend)
    state = model.predictor_initial_state(2)
    tokens = np.array([model.blank_id] * 2)
    for u in range(len(LABELS) + 1):
        pred, state = model.predictor_step(tokens, state, backend=backend)
        pred_proj = model.project_predictor(pred, backend=backend)
        for t in (0, enc.shape[0] - 1):
            rows = model.joint_log_probs(np.repeat(enc_proj[t:t + 1], 2, axis=0), pred_proj,
                                         backend=backend)
            np.testing.assert_array_equal(rows[0], lattice[t, u])
            np.testing.assert_array_equal(rows[1], lattice[t, u])
        if u < len(LABELS):
            tokens = np.array([LABELS[u]] * 2)


def test_encode_quantizes_features_at_the_input():
    model = tiny_model()
    trace = Trace()
    feats = features(model)
    model.encode(feats, trace=trace)
    fmt = model.encoder.input
    want = np.clip(np.floor(feats.astype(np.float64) / np.float32(fmt.scale) + 0.5)
                   + fmt.zero_point, fmt.qmin, fmt.qmax)
    np.testing.assert_array_equal(trace["encoder.input"], want)


@pytest.mark.parametrize(
    ("feats", "message"),
    [(np.zeros((5, 7), np.float32), r"shape \[frames, 120\]"),
     (np.full((5, 120), np.nan, np.float32), "finite"),
     (np.zeros((5, 120), np.int16), "finite floating-point")],
)
def test_bad_features_are_one_clear_error(feats, message):
    with pytest.raises(Int4rtError, match=message):
        tiny_model().encode(feats)


def test_bad_backend_and_tokens():
    model = tiny_model()
    with pytest.raises(Int4rtError, match="unknown backend 'cuda'"):
        model.encode(features(model), backend="cuda")
    with pytest.raises(Int4rtError, match=r"ids in \[0, 11\)"):
        model.predictor_step(np.array([11]), model.predictor_initial_state(1))


def test_encoder_stack_is_each_direction_by_hand():
    """The encoder's ``LstmStack`` against a by-hand twin: frames stacked by reshape, the
    backward cell as the forward recurrence over the time-reversed input, outputs side by side
    (§8.5); and ``step``, for one-cell layers only, refuses it."""
    from int4rt.ops.lstm.reference import lstm_sequence

    model = tiny_model()
    codes = model.quantize_features(features(model, frames=14))
    x = codes
    for layer in model.encoder.layers:
        x = x.reshape(x.shape[0] // layer.stack, -1)  # 14 frames: 14 / 2 needs no padding
        fwd, bwd = layer.cells
        ahead = lstm_sequence(fwd, x, model.sigmoid_table, model.rounding)[0]
        back = lstm_sequence(bwd, x[::-1], model.sigmoid_table, model.rounding)[0][::-1]
        x = np.concatenate([ahead, back], axis=1)
    for backend in ("numpy", "numba"):
        got = model.encoder_stack.sequence(codes, backend=backend, prefix="encoder")
        np.testing.assert_array_equal(got, x)
    with pytest.raises(Int4rtError, match="one forward cell per layer"):
        model.encoder_stack.initial_state(1)
