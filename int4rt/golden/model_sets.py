"""Golden sets of whole tiny RNN-Ts: quantized features to log-probabilities
(ARITHMETIC.md §8.6–§10, docs/VERIFICATION.md §2).

Each set stores the model file (docs/FORMAT.md) it ran, the float features and labels, and
the full trace of ``RnntModel.lattice``: feature codes, every LSTM intermediate of every
layer and direction, the joint projections, the joint's pre-activations, tanh, hidden codes
and logits for every (frame, label prefix) pair, and the log-probabilities.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from int4rt.golden.store import Computed, GoldenSet, Tensor
from int4rt.golden.traces import trace_tensors
from int4rt.model.config import builtin_config_text, parse_config
from int4rt.model.container import load_model_bytes, save_model
from int4rt.model.lm import LmModel
from int4rt.model.random_model import random_model
from int4rt.model.rnnt import RnntModel
from int4rt.trace import Trace

MODEL_FILE = "model.safetensors"
SEED = 0
FRAMES = 14
LABELS = (3, 5, 4, 10)
VARIANTS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("rnnt_tiny", "configs/tiny.json as shipped: bidirectional 4-bit encoder, multiplicative "
     "joint, unsigned 4-bit activations, double rounding", {}),
    ("rnnt_tiny_mixed", "configs/tiny.json varied: unidirectional encoder, additive joint, "
     "single rounding, signed activations, 8-bit feature codes and 8-bit weights in encoder "
     "layer 0 and the joint output (FORMAT.md §6.2 overrides)",
     {"encoder": {"bidirectional": False}, "joint": {"mode": "additive"},
      "quantization": {"rounding": "single", "activation_signed": True,
                       "overrides": {"encoder.input": {"activation_bits": 8},
                                     "encoder.layer0": {"weight_bits": 8},
                                     "joint.out": {"weight_bits": 8}}}}),
)


def tiny_config(changes: dict[str, Any]) -> dict[str, Any]:
    """configs/tiny.json with the sections in ``changes`` updated key by key."""
    config = json.loads(builtin_config_text("tiny"))
    for section, values in changes.items():
        config[section].update(values)
    return config


def model_file_bytes(model: RnntModel | LmModel) -> bytes:
    """The bytes ``save_model`` writes for ``model`` (FORMAT.md)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / MODEL_FILE
        save_model(model, path)
        return path.read_bytes()


def lattice_trace(model: RnntModel, features: np.ndarray, labels: np.ndarray,
                  backend: str) -> Trace:
    """The trace of ``model.lattice`` (ARITHMETIC.md §8.7) on one backend."""
    trace = Trace()
    model.lattice(features, labels, backend=backend, trace=trace)
    return trace


def build_rnnt_sets() -> list[GoldenSet]:
    """One lattice set per variant of the tiny configuration."""
    sets = []
    for name, description, changes in VARIANTS:
        data = model_file_bytes(random_model(parse_config(tiny_config(changes)), SEED))
        model = load_model_bytes(data)
        rng = np.random.default_rng(SEED + 1)
        features = rng.standard_normal((FRAMES, model.frontend.feature_dim)).astype(np.float32)
        labels = np.array(LABELS, dtype=np.int64)
        trace = lattice_trace(model, features, labels, "numpy")
        tensors = [Tensor("features", "input", features, ("t", "F"),
                          "float32 features; CMVN and quantization (§8.6) give encoder.input"),
                   Tensor("labels", "input", labels, ("u",), "label ids after the leading blank"),
                   *trace_tensors(trace, ("joint.log_probs",))]
        sets.append(GoldenSet(
            name, "rnnt_lattice",
            f"a random tiny RNN-T ({description}) from quantized features to log-probabilities "
            "of every (frame, label prefix) pair, with every intermediate",
            {"spec": "ARITHMETIC.md §8-§10, FORMAT.md", "model_file": MODEL_FILE,
             "made_from": f"random_model(configs/tiny.json with {json.dumps(changes)}, "
                          f"seed {SEED})",
             "frames": FRAMES, "labels": list(LABELS),
             "pairs": "joint.* row n is frame n // (U+1) with label prefix n % (U+1)"},
            tensors, {MODEL_FILE: data}))
    return sets


def replay_rnnt(gset: GoldenSet, backend: str) -> list[Computed]:
    """Load the stored model file and rerun the lattice with one backend."""
    model = load_model_bytes(gset.files[MODEL_FILE])
    trace = lattice_trace(model, gset["features"], gset["labels"], backend)
    return [Computed(name, value, f"RnntModel.lattice (backend {backend})")
            for name, value in trace.items()]
