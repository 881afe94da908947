"""Accumulator analysis (int4rt.accumulator_command, docs/VERIFICATION.md §5): static bounds from
actual weights, observed ranges, and emulated narrow accumulators that wrap or saturate."""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from int4rt import accumulator_command as acc_cli
from int4rt.arith import fully_connected, signed_bits
from int4rt.errors import Int4rtError
from int4rt.golden import accumulator_widths as accumulators
from int4rt.layers import ActQuant, QLinear
from int4rt.model.config import load_config
from int4rt.model.container import save_model
from int4rt.model.random_model import random_model
from int4rt.ops.gemv.reference import _accumulator_hook, accumulator_hook

CONFIGS = Path(__file__).parents[1] / "configs"


def inspect(*argv: str) -> int:
    """``int4rt inspect MODEL --accumulators ...`` through the options the main CLI adds."""
    parser = argparse.ArgumentParser(prog="int4rt inspect")
    parser.add_argument("model")
    parser.add_argument("--json", action="store_true")
    acc_cli.add_inspect_options(parser)
    return acc_cli.run(parser.parse_args(list(argv)))


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("acc") / "tiny.safetensors"
    save_model(random_model(load_config(CONFIGS / "tiny.json"), 0), path)
    return path


def test_static_bound_and_exact_reach():
    """Exhaustive over every input code: bound ≥ every |acc|, reach = the exact range."""
    weight = np.array([[3, -8, 0, 7], [-1, 2, -3, 4]], dtype=np.int8)
    bias = np.array([-40, 25], dtype=np.int32)
    fmt = ActQuant(4, False, 3, 0.1)  # uint4 codes 0..15 around zero point 3
    layer = QLinear(weight, 4, bias, np.full(2, 1 << 30, np.int32), np.zeros(2, np.int32))
    bounds = accumulators.row_bounds(layer, fmt)
    np.testing.assert_array_equal(bounds, [18 * 12 + 40, 10 * 12 + 25])
    accs = np.array([(np.array(codes) - fmt.zero_point) @ weight.T.astype(np.int64) + bias
                     for codes in itertools.product(range(fmt.qmin, fmt.qmax + 1), repeat=4)])
    assert (np.abs(accs).max(axis=0) <= bounds).all()
    low, high = accumulators.row_reach(layer, fmt)
    np.testing.assert_array_equal(low, accs.min(axis=0))
    np.testing.assert_array_equal(high, accs.max(axis=0))
    assert accumulators.range_bits(-129, 127) == 9 and accumulators.range_bits(-128, 127) == 8


@pytest.mark.thorough
def test_paper_report_lists_every_layer_with_bound_and_width():
    model = random_model(load_config(CONFIGS / "paper.json"), 0)
    report = accumulators.static_report(model)
    names = [name for name, _, _ in model.linear_layers()]
    assert [entry.name for entry in report.layers] == names and len(names) == 29
    for entry in report.layers:
        assert -entry.bound <= entry.reach_min < entry.reach_max <= entry.bound
        assert 0 < entry.bound <= entry.generic_bound and entry.reach_bits <= entry.bits
        assert entry.bits == signed_bits(entry.bound) and entry.observed_min is None
    assert report.min_safe_bits == max(entry.bits for entry in report.layers) <= 32
    text = accumulators.format_report(report)
    assert all(name in text for name in names)
    assert f"minimum safe accumulator width for every layer: {report.min_safe_bits} bits" in text


def test_observed_ranges_within_static_bounds(tiny_file, capsys):
    assert inspect(str(tiny_file), "--accumulators", "--json", "--frames", "12") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["observed_on"].startswith("random features (seed 0), 12 frames")
    for entry in report["layers"]:
        assert (entry["reach_min"] <= entry["observed_min"] <= entry["observed_max"]
                <= entry["reach_max"])
        assert entry["count"] > 0 and entry["overflowed"] is None


def test_full_width_changes_nothing(tiny_file, capsys):
    assert inspect(str(tiny_file), "--accumulators", "--acc-bits", "32") == 0
    text = capsys.readouterr().out
    assert "overflowed on this input (accumulators changed): none" in text
    assert "encoder output codes changed: 0 of" in text


@pytest.mark.parametrize("mode", acc_cli.OVERFLOW_MODES)
def test_narrow_accumulators_overflow_and_change_outputs(tiny_file, tmp_path, capsys, mode):
    rng = np.random.default_rng(3)
    features = tmp_path / "feats.npy"
    np.save(features, (3 * rng.standard_normal((10, 120))).astype(np.float32))
    assert inspect(str(tiny_file), "--accumulators", "--acc-bits", "9", "--overflow", mode,
                   "--input", str(features), "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["acc_bits"] == 9 and report["overflow"] == mode
    assert report["observed_on"].startswith(f"{features}, 10 frames")
    overflowed = {e["name"]: e["overflowed"] for e in report["layers"]}
    assert overflowed["encoder.layer0.fwd.input_fc"] > 0
    out = report["outputs"]
    assert 0 < out["encoder_codes_changed"] <= out["encoder_codes"]
    assert out["log_probs_changed"] > 0 and out["max_log_prob_change_nats"] > 0
    assert out["first_changed_trace"] == "encoder.layer0.fwd.input_proj"


def test_wrap_and_saturate_semantics():
    np.testing.assert_array_equal(accumulators.wrap(np.array([127, 128, -129, 300]), 8),
                                  [127, -128, 127, 44])
    x = np.array([[10, 10, -10]], dtype=np.int16)
    w = np.array([[10, 10, 10]], dtype=np.int8)
    exact = x.astype(np.int64) @ w.T.astype(np.int64) + 20  # 20 + 100 + 100 - 100 = 120
    # bias first, then k in order: 20, 120, 127 (clamped), 27
    assert accumulators.saturate(x, w, np.array([20]), exact, 8).tolist() == [[27]]
    assert accumulators.saturate(x, w, np.array([20]), exact, 9).tolist() == [[120]]


def test_hook_is_off_by_default_and_restored():
    x = np.array([[1, -2, 3]], dtype=np.int8)
    w = np.array([[4, 5, -6], [7, -8, 1]], dtype=np.int8)
    kw = dict(x_zero_point=0, multiplier=1 << 30, shift=1, y_zero_point=0, y_min=-1000,
              y_max=1000)
    plain = fully_connected(x, w, None, **kw)
    assert not _accumulator_hook
    with accumulator_hook(lambda xs, ws, b, acc: acc + 1):
        np.testing.assert_array_equal(fully_connected(x, w, None, **kw), plain + 1)
    assert not _accumulator_hook
    np.testing.assert_array_equal(fully_connected(x, w, None, **kw), plain)


def test_errors(tiny_file, tmp_path):
    with pytest.raises(Int4rtError, match="--acc-bits must be in"):
        inspect(str(tiny_file), "--accumulators", "--acc-bits", "40")
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((3, 5), np.float32))
    with pytest.raises(Int4rtError, match=r"must be float \[frames, 120\]"):
        inspect(str(tiny_file), "--accumulators", "--input", str(bad))
    lm = tmp_path / "lm.safetensors"
    save_model(random_model(load_config(CONFIGS / "lm-tiny.json"), 0), lm)
    with pytest.raises(Int4rtError, match="need an RNN-T"):
        inspect(str(lm), "--accumulators")
    assert inspect(str(lm), "--accumulators", "--static-only") == 0
