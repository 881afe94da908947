"""The benchmark workload: a random paper-size RNN-T whose blank bias sets its label rate,
two random LMs, and float features for a given length of audio; and the trained default model
with its LMs and the features of its shipped clips (real, if synthetic, speech).

A random model emits a label on almost every frame; real character-level speech is about 15
labels per second. ``tune_label_rate`` raises the blank logit's bias (one int32, §9.2's output
layer) until greedy search emits about the wanted rate on the benchmark features, so the
label-history cache sees a realistic number of new histories.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import soundfile

from int4rt.decode import DecodeOptions, search
from int4rt.model.config import load_config
from int4rt.model.lm import LmModel
from int4rt.model.random_model import random_model
from int4rt.model.rnnt import RnntModel

CONFIGS = Path(__file__).parents[1] / "configs"
FRAME_SECONDS = 0.01  # feature hop of the configs (10 ms)


def features_for(model: RnntModel, seconds: float, seed: int = 0) -> np.ndarray:
    """Standard-normal float32 features [frames, F] for ``seconds`` of audio."""
    frames = round(seconds / FRAME_SECONDS)
    rng = np.random.default_rng(seed)
    return rng.standard_normal((frames, model.frontend.feature_dim)).astype(np.float32)


def with_blank_bias(model: RnntModel, offset: int) -> RnntModel:
    """``model`` with ``offset`` added to the joint output bias of the blank symbol."""
    out = model.joint.out
    bias = out.bias.astype(np.int64)
    bias[model.blank_id] += offset
    bias = np.clip(bias, -(2**30), 2**30).astype(np.int32)
    return replace(model, joint=replace(model.joint, out=replace(out, bias=bias)))


def greedy_label_rate(model: RnntModel, enc_proj: np.ndarray, seconds: float) -> float:
    """Labels per second that greedy search (one symbol per frame) emits on ``enc_proj``."""
    result = search(model, enc_proj, DecodeOptions(max_symbols_per_frame=1))
    return len(result.tokens) / seconds


def tune_label_rate(model: RnntModel, features: np.ndarray, seconds: float,
                    target: float) -> tuple[RnntModel, float]:
    """The model whose greedy label rate on ``features`` is nearest ``target``.

    The rate falls as the blank bias rises; bisection over offsets in [0, 2^14).
    """
    enc, _ = model.encode(features)
    enc_proj = model.project_encoder(enc)
    lo, hi = 0, 1 << 14
    best = (abs(greedy_label_rate(model, enc_proj, seconds) - target), 0)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        rate = greedy_label_rate(with_blank_bias(model, mid), enc_proj, seconds)
        best = min(best, (abs(rate - target), mid))
        if rate > target:
            lo = mid
        else:
            hi = mid
    tuned = with_blank_bias(model, best[1])
    return tuned, greedy_label_rate(tuned, enc_proj, seconds)


def trained() -> tuple[RnntModel, LmModel | None, LmModel | None, list[np.ndarray], float]:
    """The shipped default model (``int4rt.bundle``), its external and source LMs, the float
    features of each shipped clip, and the clips' total length in seconds.
    """
    from int4rt.bundle import load_bundle
    from int4rt.model.container import load_model
    from int4rt.recognizer import Recognizer

    bundle = load_bundle()
    recognizer = Recognizer(load_model(bundle.model_path))
    lms = [None if path is None else load_model(path)
           for path in (bundle.lm_path("lm"), bundle.lm_path("source_lm"))]
    features = [recognizer.features(clip.audio) for clip in bundle.clips]
    seconds = sum(soundfile.info(clip.audio).duration for clip in bundle.clips)
    return recognizer.model, *lms, features, seconds


def build(config: str, lm_config: str, seed: int = 0) -> tuple[RnntModel, LmModel, LmModel]:
    """The random RNN-T (seed) and the external and source LMs (seeds + 1, + 2)."""
    model = random_model(load_config(CONFIGS / config), seed=seed)
    ext = random_model(load_config(CONFIGS / lm_config), seed=seed + 1)
    src = random_model(load_config(CONFIGS / lm_config), seed=seed + 2)
    return model, ext, src
