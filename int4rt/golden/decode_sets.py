"""Golden sets of RNN-T search: greedy, and modified beam search with density-ratio LM fusion
(docs/DECODING.md, docs/VERIFICATION.md §2).

Each set stores the model files it searched with (the tiny RNN-T, an external and a source
character LM with different logit scales), the float features, the options, and the result:
best tokens, timestamps, integer score and its components (am, ext, src, length, blank), and
the n-best list flattened into tensors (``nbest.lengths`` splits ``nbest.tokens`` and
``nbest.timestamps``). ``result.json`` is the result's ``to_json()`` for reading.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np

from int4rt.decode import COMPONENTS, DecodeOptions, DecodeResult, decode
from int4rt.golden.model_sets import model_file_bytes, tiny_config
from int4rt.golden.store import Computed, GoldenSet, Tensor
from int4rt.model.config import builtin_config_text, parse_config
from int4rt.model.container import load_model_bytes
from int4rt.model.random_model import random_model

MODEL_FILES = {"model": "model.safetensors", "lm": "lm.safetensors",
               "source_lm": "source_lm.safetensors"}
RESULT_FILE = "result.json"
SEED, FRAMES = 1, 20
# (seed, hidden size, logit_frac_bits) of the external and the source LM: F_lm ≠ F on purpose
LMS = {"lm": (11, 13, 12), "source_lm": (12, 9, 8)}
SETS: tuple[tuple[str, str, DecodeOptions, bool], ...] = (
    ("decode_greedy", "greedy search (at most 3 labels per frame), no LM",
     DecodeOptions("greedy", max_symbols_per_frame=3), False),
    ("decode_beam_fusion", "modified beam search, beam 4, 4-best, density-ratio fusion "
     "(external LM weight 0.3, source LM weight 0.2) with a length reward of 0.5 nats",
     DecodeOptions("beam", beam=4, lm_weight=0.3, source_lm_weight=0.2, length_reward=0.5,
                   nbest=4), True),
)


def _lm_bytes(seed: int, hidden: int, frac_bits: int) -> bytes:
    config = json.loads(builtin_config_text("lm-tiny"))
    config["lm"].update(hidden_size=hidden, logit_frac_bits=frac_bits)
    return model_file_bytes(random_model(parse_config(config), seed))


def result_tensors(result: DecodeResult) -> list[Tensor]:
    """The result as integer tensors (outputs), n-best flattened."""
    def ints(values: list[int]) -> np.ndarray:
        return np.array(values, dtype=np.int64)

    nbest = result.nbest
    return [
        Tensor("tokens", "output", ints(result.tokens), ("label",), "best hypothesis"),
        Tensor("timestamps", "output", ints(result.frame_indices), ("label",),
               "encoder frame of each label"),
        Tensor("score", "output", ints([result.score]), ("one",),
               f"units of 2^-{result.frac_bits}"),
        Tensor("components", "output", ints([result.components[c] for c in COMPONENTS]),
               ("component",), f"in order {', '.join(COMPONENTS)}; they sum to the score"),
        Tensor("nbest.lengths", "output", ints([len(e["tokens"]) for e in nbest]), ("rank",)),
        Tensor("nbest.tokens", "output", ints([t for e in nbest for t in e["tokens"]]),
               ("label",), "hypotheses back to back, best first; split by nbest.lengths"),
        Tensor("nbest.timestamps", "output",
               ints([t for e in nbest for t in e["frame_indices"]]), ("label",)),
        Tensor("nbest.scores", "output", ints([e["score"] for e in nbest]), ("rank",)),
        Tensor("nbest.components", "output",
               np.array([[e["components"][c] for c in COMPONENTS] for e in nbest],
                        dtype=np.int64).reshape(len(nbest), len(COMPONENTS)),
               ("rank", "component")),
    ]


def result_json_v1(result: DecodeResult) -> dict:
    """``result.to_json()`` under the field names of golden format version 1, which predate
    the unit-named fields: ``timestamps`` (encoder frames) and ``times`` (seconds).
    """
    def v1(entry: dict) -> dict:
        renamed = {"frame_indices": "timestamps", "times_s": "times"}
        return {renamed.get(key, key): value for key, value in entry.items()}

    fields = v1(result.to_json())
    fields["nbest"] = [v1(entry) for entry in fields["nbest"]]
    return fields


def _search(gset: GoldenSet, backend: str) -> DecodeResult:
    models = {key: load_model_bytes(gset.files[name]) for key, name in MODEL_FILES.items()
              if name in gset.files}
    options = DecodeOptions(**gset.params["options"])
    return decode(models["model"], gset["features"], options, lm=models.get("lm"),
                  source_lm=models.get("source_lm"), backend=backend)


def build_decode_sets() -> list[GoldenSet]:
    """The greedy and the fused beam-search sets."""
    model_data = model_file_bytes(random_model(parse_config(tiny_config({})), 0))
    lm_data = {key: _lm_bytes(*spec) for key, spec in LMS.items()}
    rng = np.random.default_rng(SEED)
    features = rng.standard_normal((FRAMES, load_model_bytes(model_data).frontend.feature_dim))
    sets = []
    for name, description, options, fused in SETS:
        files = {MODEL_FILES["model"]: model_data}
        if fused:
            files.update({MODEL_FILES[key]: data for key, data in lm_data.items()})
        params: dict[str, Any] = {
            "spec": "docs/DECODING.md", "options": dataclasses.asdict(options),
            "components": list(COMPONENTS),
            "made_from": "model: random_model(configs/tiny.json, seed 0); LMs: "
                         "random_model(configs/lm-tiny.json with hidden_size and "
                         f"logit_frac_bits, seed) for {json.dumps(LMS)}" if fused else
                         "model: random_model(configs/tiny.json, seed 0)",
            "files": {key: file for key, file in MODEL_FILES.items() if file in files}}
        gset = GoldenSet(name, "decode", f"{description}: a random tiny RNN-T on {FRAMES} "
                         "frames of random features", params,
                         [Tensor("features", "input", features.astype(np.float32), ("t", "F"))],
                         files)
        result = _search(gset, "numpy")
        gset.tensors += result_tensors(result)
        gset.files[RESULT_FILE] = (json.dumps(result_json_v1(result), indent=1,
                                              ensure_ascii=False) + "\n").encode("utf-8")
        sets.append(gset)
    return sets


def replay_decode(gset: GoldenSet, backend: str) -> list[Computed]:
    """Load the stored models and search again with one backend."""
    via = f"int4rt.decode.decode (backend {backend})"
    return [Computed(t.name, t.value, via) for t in result_tensors(_search(gset, backend))]
