"""Trace names come from one module: the converter's float model and the integer model emit
the same names for the same architecture, and every LSTM name parses back into its parts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from int4rt import trace_names as names
from int4rt.model.config import parse_config
from int4rt.model.random_model import random_model
from int4rt.trace import Trace
from int4rt_convert.float_model import float_model
from int4rt_convert.layout import SCALAR, SCALE_SUFFIX, Tensors, expected_tensors

CONFIGS = Path(__file__).parents[1] / "configs"
LABELS = [3, 4, 7]


def _config(name: str, **changes):
    data = json.loads((CONFIGS / f"{name}.json").read_text())
    for section, values in changes.items():
        data[section].update(values)
    return parse_config(data)


def _float_model(config):
    rng = np.random.default_rng(0)
    tensors = {name: (name, rng.standard_normal(spec.shape) * 0.1)
               for name, spec in expected_tensors(config).items()
               if spec.shape != SCALAR and not name.endswith(SCALE_SUFFIX)}
    return float_model(config, Tensors(tensors, config), {}, None)


@pytest.mark.parametrize("encoder", [{"bidirectional": True, "stack": [2, 1]},
                                     {"bidirectional": False, "stack": [1, 1]}])
def test_float_and_integer_rnnt_emit_the_same_names(encoder):
    config = _config("tiny", encoder=encoder, frontend={"cmvn": False})
    features = np.random.default_rng(1).standard_normal((9, config.frontend.feature_dim))
    floats: dict[str, np.ndarray] = {}
    reference = _float_model(config)
    reference.joint(reference.encode(features, floats.__setitem__),
                    reference.predict(LABELS, floats.__setitem__), floats.__setitem__)
    trace = Trace()
    random_model(config, 0).lattice(features.astype(np.float32), LABELS, trace=trace)
    assert set(floats) <= set(trace), sorted(set(floats) - set(trace))
    layers = len(config.encoder.stack)
    directions = 2 if encoder["bidirectional"] else 1
    hidden = [n for n in trace if names.parse_lstm_record(n) is not None
              and names.parse_lstm_record(n).record == "hidden"]
    assert len(hidden) == layers * directions + config.predictor.num_layers
    assert "encoder.layer0.fwd.gate.f" in trace and names.JOINT_LOG_PROBS in trace


def test_float_and_integer_lm_emit_the_same_names():
    config = _config("lm-tiny")
    floats: dict[str, np.ndarray] = {}
    _float_model(config).log_probs(LABELS, floats.__setitem__)
    trace = Trace()
    random_model(config, 0).sequence(np.array([0, *LABELS]), trace=trace)
    assert set(floats) <= set(trace), sorted(set(floats) - set(trace))
    assert list(floats) == ["lm.embedding", "lm.layer0.hidden", "lm.layer0.cell",
                            "lm.layer1.hidden", "lm.layer1.cell", "lm.logits", "lm.log_probs"]


def test_lstm_names_parse_into_their_parts():
    record = names.parse_lstm_record("encoder.layer12.bwd.gate.f")
    assert record == names.LstmRecord("encoder.layer12", "bwd", "gate.f")
    assert names.parse_lstm_record("predictor.layer0.hidden") == names.LstmRecord(
        "predictor.layer0", None, "hidden")
    assert names.parse_lstm_record("lm.layer1.cell") == names.LstmRecord("lm.layer1", None, "cell")
    for bad in ("joint.hidden", "encoder.layer01.fwd.hidden", "encoder.layerx.fwd.cell",
                "predictor.layer0.fwd.hidden", "lm.layer0.stacked", "encoder.input"):
        assert names.parse_lstm_record(bad) is None, bad
    assert names.encoder_cell(3, 1) == "encoder.layer3.bwd"
    assert names.name(names.stack_layer(names.LM, 2), "gate.o") == "lm.layer2.gate.o"
