"""The rules of ARITHMETIC.md §8.5/§8.6 that an outside implementation found unstated
(issue 12): CMVN first, a true division by the scale, clamping before the integer
conversion, non-finite features rejected, the order of frames in a stacked frame, and
blank ids in a lattice's labels."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from int4rt.errors import Int4rtError
from int4rt.layers import ActQuant, stack_frames
from int4rt.model.config import load_config
from int4rt.model.random_model import random_model


@pytest.fixture(scope="module")
def model():
    return random_model(load_config("configs/tiny.json"), 0)


def test_features_at_plus_minus_3e38_clamp_to_the_code_range(model):
    fmt = model.encoder.input
    features = np.zeros((3, model.frontend.feature_dim), np.float32)
    features[0] = 3e38
    features[1] = -3e38
    features[2, ::2], features[2, 1::2] = np.float32(3.4028235e38), np.float32(-3.4028235e38)
    codes = model.quantize_features(features)
    assert (codes[0] == fmt.qmax).all() and (codes[1] == fmt.qmin).all()
    assert (codes[2, ::2] == fmt.qmax).all() and (codes[2, 1::2] == fmt.qmin).all()
    lattice = model.lattice(features, [3], backend="numpy")
    assert lattice.shape == (2, 2, len(model.vocab))  # ceil(3 / 2) frames after stacking


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_features_are_an_error(model, bad):
    features = np.zeros((4, model.frontend.feature_dim), np.float32)
    features[2, 5] = bad
    with pytest.raises(Int4rtError, match="finite"):
        model.quantize_features(features)


def test_cmvn_comes_first_in_float64():
    """q = clamp(floor(((x − mean) / std) / s + 1/2) + zp): a hand evaluation agrees."""
    model = random_model(load_config("configs/tiny.json"), 1)
    rng = np.random.default_rng(3)
    dim = model.frontend.feature_dim
    frontend = dataclasses.replace(
        model.frontend, cmvn_mean=rng.uniform(-3, 3, dim).astype(np.float32),
        cmvn_std=rng.uniform(0.3, 3, dim).astype(np.float32))
    model = dataclasses.replace(model, frontend=frontend)
    mean = frontend.cmvn_mean.astype(np.float64)
    std = frontend.cmvn_std.astype(np.float64)
    fmt = model.encoder.input
    x = np.random.default_rng(2).standard_normal((5, model.frontend.feature_dim)) * 4
    x = x.astype(np.float32)
    normalized = (x.astype(np.float64) - mean) / std
    want = np.clip(np.floor(normalized / np.float64(fmt.scale) + 0.5) + fmt.zero_point,
                   fmt.qmin, fmt.qmax)
    assert np.array_equal(model.quantize_features(x), want)
    assert not np.array_equal(want, np.clip(np.floor(x / np.float64(fmt.scale) + 0.5)
                                            + fmt.zero_point, fmt.qmin, fmt.qmax))


def test_the_scale_divides_it_is_not_a_reciprocal_multiply():
    # x / s = 0.4999999999999999 (exactly below 1/2: code 0); x · (1/s) rounds to 0.5 (code 1)
    scale = np.float32(1.2775537967681885)
    x = 0.6387768983840941
    assert np.floor(x * (1 / np.float64(scale)) + 0.5) == 1
    assert ActQuant(8, True, 0, scale).quantize(np.array([x]))[0] == 0


def test_stacked_frames_keep_time_order_and_pad_with_the_zero_point():
    x = np.array([[1, 2], [3, 4], [5, 6]], np.uint8)  # T = 3 frames of width F = 2
    stacked = stack_frames(x, 2, 7)
    assert stacked.tolist() == [[1, 2, 3, 4], [5, 6, 7, 7]]  # ceil(3/2) = 2 frames of n·F


def test_a_blank_in_lattice_labels_is_an_error(model):
    features = np.zeros((4, model.frontend.feature_dim), np.float32)
    with pytest.raises(Int4rtError, match="non-blank"):
        model.lattice(features, [3, model.blank_id, 4])
