"""Fuzzing the model loader (docs/FORMAT.md §4): every mutated file either loads and then runs
with outputs inside their code formats, or raises ``FormatError``; nothing else escapes.

``INT4RT_FUZZ_CASES`` sets the number of cases (default 2000), e.g.
``INT4RT_FUZZ_CASES=100000 .venv/bin/pytest tests/test_container_fuzz.py``.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load, save

import int4rt.ops.lstm.numba as fast_lstm
from int4rt import FormatError
from int4rt.model.config import parse_config
from int4rt.model.container import load_model, load_model_bytes, save_model
from int4rt.model.lm import LmModel
from int4rt.model.random_model import random_model
from tests.test_container_per_gate import pair_of_files

pytestmark = [pytest.mark.filterwarnings("error"),  # the loader must not even warn
              pytest.mark.thorough]

CASES = int(os.environ.get("INT4RT_FUZZ_CASES", "2000"))
BATCH = 250
QUANT = {"profile": "int4rt", "rounding": "double", "weight_bits": 4, "activation_bits": 4,
         "activation_signed": False, "cell_scale_log2": -11, "cell_clip": 0, "overrides": {}}
RNNT = {
    "architecture": "rnnt", "vocab": ["<blk>", "a", "b"], "blank_id": 0,
    "frontend": {"sample_rate": 8000, "n_mels": 3, "frame_length_ms": 25.0,
                 "frame_shift_ms": 10.0, "deltas": 1, "cmvn": True},
    "encoder": {"num_layers": 2, "hidden_size": 3, "bidirectional": True, "stack": [2, 1]},
    "predictor": {"embedding_size": 2, "num_layers": 1, "hidden_size": 3},
    "joint": {"size": 3, "mode": "multiplicative", "logit_frac_bits": 10},
    "quantization": QUANT,
}
LM = {"architecture": "lm", "vocab": ["<blk>", "a", "b"],
      "lm": {"embedding_size": 2, "num_layers": 2, "hidden_size": 3, "logit_frac_bits": 10},
      "quantization": QUANT}
SPECIAL_VALUES = [None, True, False, 0, -1, 1, 2, 3, 4, 7, 8, 15, 16, 127, 255, 256, 2**31 - 1,
                  2**31, -(2**31) - 1, 10**30, 10**400, 0.5, -0.0, 1e-45, 3.4e38, 1e300, math.nan,
                  math.inf, "", "x", "int4rt", "tflm", "single", "additive", "per_row", "per_gate",
                  "U8",
                  [], [1, 2], [3, 3], {}, {"bits": 4}]
DTYPES = ["U8", "I8", "U16", "I16", "F16", "I32", "U32", "F32", "I64", "F64", "BOOL", "X"]


def _variant(base: dict, **changes) -> dict:
    data = json.loads(json.dumps(base))
    for key, value in changes.items():
        section, _, field = key.partition("__")
        data[section][field] = value
    return data


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> list[bytes]:
    """Small valid model files of several kinds (written through the file API), and one with
    granularity per_gate (FORMAT.md §2.4); five, so that every seed meets every mutation.
    """
    configs = [RNNT, _variant(RNNT, joint__mode="additive", quantization__weight_bits=8,
                              quantization__activation_bits=8,
                              quantization__activation_signed=True,
                              quantization__rounding="single"),
               LM, _variant(LM, quantization__cell_clip=500)]
    files = []
    for index, config in enumerate(configs):
        path = tmp_path_factory.mktemp("fuzz") / f"seed{index}.safetensors"
        save_model(random_model(parse_config(config), index), path)
        files.append(path.read_bytes())
    return [*files, pair_of_files(files[0])[1]]


def _split(data: bytes) -> tuple[dict, bytes]:
    length = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + length]), data[8 + length:]


def _join_header(header: dict, body: bytes) -> bytes:
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + body


def _tree_paths(node: object, path: tuple = ()) -> list[tuple]:
    paths = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            paths += _tree_paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            paths += _tree_paths(value, (*path, index))
    return paths


def _pick(rng: np.random.Generator, items: list) -> object:
    return items[int(rng.integers(len(items)))]


def _new_value(rng: np.random.Generator, old: object) -> object:
    if isinstance(old, int) and not isinstance(old, bool) and rng.random() < 0.5:
        return old + int(rng.integers(-3, 4)) if rng.random() < 0.7 else -old or 1
    if isinstance(old, float) and rng.random() < 0.5:
        return float(np.nextafter(old, np.inf)) if rng.random() < 0.5 else old * 2.0
    return _pick(rng, SPECIAL_VALUES)


def _edit_tree(rng: np.random.Generator, root: dict) -> None:
    """Change, remove or add one value somewhere in a JSON tree."""
    path = _pick(rng, _tree_paths(root)[1:])
    parent = root
    for key in path[:-1]:
        parent = parent[key]
    key, roll = path[-1], rng.random()
    if roll < 0.15:
        del parent[key]
    elif roll < 0.25 and isinstance(parent, dict):
        parent["extra" if rng.random() < 0.5 else str(key) + "_"] = parent[key]
    elif roll < 0.3 and isinstance(parent, list):
        parent.append(parent[key])
    else:
        parent[key] = _new_value(rng, parent[key])


def mutate_metadata(rng: np.random.Generator, data: bytes) -> bytes:
    header, body = _split(data)
    meta = json.loads(header["__metadata__"]["int4rt"])
    for _ in range(int(rng.integers(1, 3))):
        _edit_tree(rng, meta)
    header["__metadata__"]["int4rt"] = json.dumps(meta)
    return _join_header(header, body)


def mutate_header(rng: np.random.Generator, data: bytes) -> bytes:
    header, body = _split(data)
    names = [name for name in header if name != "__metadata__"]
    name, other = _pick(rng, names), _pick(rng, names)
    entry, roll = header[name], rng.random()
    if roll < 0.25:
        entry["dtype"] = _pick(rng, DTYPES)
    elif roll < 0.45:
        field = _pick(rng, ["dtype", "shape", "data_offsets"])
        entry[field], header[other][field] = header[other][field], entry[field]
    elif roll < 0.6:
        shape = entry["shape"]
        if shape and rng.random() < 0.6:
            shape[int(rng.integers(len(shape)))] += int(rng.integers(-2, 3))
        else:
            entry["shape"] = [*shape, 1] if rng.random() < 0.5 else shape[::-1]
    elif roll < 0.75:
        begin, end = entry["data_offsets"]
        delta = int(rng.integers(-8, 9))
        entry["data_offsets"] = [begin + delta, end + delta * int(rng.integers(0, 2))]
    elif roll < 0.85:
        header[name + ("x" if rng.random() < 0.5 else "")] = header.pop(name)
    else:
        _edit_tree(rng, header)
    return _join_header(header, body)


def mutate_tensor(rng: np.random.Generator, data: bytes) -> bytes:
    header, _ = _split(data)
    tensors = load(data)
    name = _pick(rng, sorted(tensors))
    array, roll = tensors[name], rng.random()
    if roll < 0.5 and array.size:
        array = array.copy()
        index = int(rng.integers(array.size))
        if array.dtype.kind in "iu":
            info = np.iinfo(array.dtype)
            value = _pick(rng, [info.min, info.max, 0, int(array.flat[index]) + 1,
                                int(array.flat[index]) - 1])
            array.flat[index] = np.clip(value, info.min, info.max)
        else:
            array.flat[index] = _pick(rng, [np.nan, np.inf, -1.0, 0.0, 1e30])
    elif roll < 0.7 and array.dtype.kind in "iu":
        info = np.iinfo(array.dtype)
        array = rng.integers(info.min, info.max, size=array.shape, endpoint=True,
                             dtype=array.dtype)
    elif roll < 0.85:
        array = array.astype(_pick(rng, [np.int8, np.uint8, np.int16, np.int32, np.int64,
                                         np.float32]))
    else:
        array = array.reshape(-1)[: max(array.size - 1, 0)] if rng.random() < 0.5 \
            else array.reshape(1, -1)
    tensors[name] = np.ascontiguousarray(array)
    return save(tensors, metadata=header["__metadata__"])


def flip_bits(rng: np.random.Generator, data: bytes, body_only: bool = False) -> bytes:
    buffer = bytearray(data)
    start = 8 + int.from_bytes(data[:8], "little") if body_only else 0
    for _ in range(int(rng.integers(1, 9))):
        position = int(rng.integers(start, len(buffer)))
        buffer[position] ^= 1 << int(rng.integers(8))
    return bytes(buffer)


def truncate_or_extend(rng: np.random.Generator, data: bytes) -> bytes:
    if rng.random() < 0.7:
        return data[: int(rng.integers(len(data)))]
    return data + rng.integers(0, 256, size=int(rng.integers(1, 16)), dtype=np.uint8).tobytes()


MUTATIONS = {
    "bits anywhere": flip_bits,
    "bits in tensors": lambda rng, data: flip_bits(rng, data, body_only=True),
    "length": truncate_or_extend,
    "metadata": mutate_metadata,
    "header": mutate_header,
    "tensor": mutate_tensor,
}


def run_model(model: object, rng: np.random.Generator) -> None:
    """Run a loaded model on a short input; every output code must lie in its format."""
    if isinstance(model, LmModel):
        x = model.embedding[np.array([0, len(model.vocab) - 1])]
        for cell in model.layers:
            h = np.full((2, cell.hidden_size), cell.hidden.zero_point, cell.hidden.dtype)
            x, _ = fast_lstm.lstm_step(cell, x, h, np.zeros(h.shape, np.int16),
                                       model.sigmoid_table, model.rounding)
            assert x.dtype == cell.hidden.dtype
            assert cell.hidden.qmin <= x.min() and x.max() <= cell.hidden.qmax
        return
    features = rng.standard_normal((5, model.frontend.feature_dim)).astype(np.float32)
    codes, fmt = model.encode(features)
    assert codes.dtype == fmt.dtype and fmt.qmin <= codes.min() and codes.max() <= fmt.qmax
    out, _ = model.predictor_step(np.array([model.blank_id, len(model.vocab) - 1]),
                                  model.predictor_initial_state(2))
    fmt = model.predictor.output
    assert out.dtype == fmt.dtype and fmt.qmin <= out.min() and out.max() <= fmt.qmax
    log_probs = model.lattice(features, [len(model.vocab) - 1])
    assert log_probs.dtype == np.int32 and log_probs.shape[1:] == (2, len(model.vocab))
    assert log_probs.max() <= 0


@pytest.mark.parametrize("batch", range(math.ceil(CASES / BATCH)))
def test_mutated_files_load_and_run_or_raise_format_error(seeds, tmp_path, batch):
    outcomes: Counter[str] = Counter()
    names = sorted(MUTATIONS)
    for case in range(batch * BATCH, min(CASES, (batch + 1) * BATCH)):
        rng = np.random.default_rng([case, 20240])
        kind = names[case % len(names)]
        data = MUTATIONS[kind](rng, seeds[case % len(seeds)])
        context = f"case {case} ({kind})"
        try:
            if case % 50 == 0:
                path = Path(tmp_path) / f"case{case}.safetensors"
                path.write_bytes(data)
                model = load_model(path)
            else:
                model = load_model_bytes(data)
        except FormatError as error:
            assert str(error) and "\n" not in str(error), context
            outcomes["FormatError"] += 1
            continue
        except Exception as error:  # the point: nothing else may escape
            pytest.fail(f"{context}: {type(error).__name__}: {error}")
        try:
            run_model(model, rng)
        except Exception as error:
            pytest.fail(f"{context}: loaded but failed to run: {type(error).__name__}: {error}")
        outcomes["loaded and ran"] += 1
    total = sum(outcomes.values())
    assert outcomes["FormatError"] > total // 4, outcomes
    assert outcomes["loaded and ran"] > total // 50, outcomes
