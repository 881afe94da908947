"""Threads change no integer: encoder directions and search steps on two threads (README)."""

from __future__ import annotations

import threading
import time

import numba
import numpy as np

from int4rt.decode import DecodeOptions, decode
from int4rt.model import parallel
from int4rt.model.config import load_config
from int4rt.model.random_model import random_model

CONFIGS = "configs/"


def _models():
    model = random_model(load_config(CONFIGS + "tiny.json"), seed=3)
    ext = random_model(load_config(CONFIGS + "lm-tiny.json"), seed=4)
    src = random_model(load_config(CONFIGS + "lm-tiny.json"), seed=5)
    return model, ext, src


def test_run_all_keeps_order_and_uses_threads(monkeypatch):
    monkeypatch.setattr(numba, "get_num_threads", lambda: 2)
    seen = []

    def task(i):
        seen.append(i)
        return i * i

    assert parallel.run_all([lambda i=i: task(i) for i in range(5)]) == [0, 1, 4, 9, 16]
    assert sorted(seen) == list(range(5))


def _thread_name() -> str:
    time.sleep(0.02)  # long enough for every thread to take a task
    return threading.current_thread().name


def test_run_all_keeps_its_workers_and_nested_calls_stay_on_one_thread(monkeypatch):
    monkeypatch.setattr(numba, "get_num_threads", lambda: 2)
    caller = threading.current_thread().name
    first = set(parallel.run_all([_thread_name] * 4))
    second = set(parallel.run_all([_thread_name] * 4))
    assert caller in first and len(first) == 2
    assert first == second  # the same worker, not a new pool per call
    nested = parallel.run_all([lambda: parallel.run_all([_thread_name] * 2)] * 2)
    worker = (first - {caller}).pop()
    assert [worker, worker] in nested  # the worker ran its inner tasks itself, in order


def test_two_threads_give_the_same_integers(monkeypatch):
    model, ext, src = _models()
    feats = np.random.default_rng(0).standard_normal((60, model.frontend.feature_dim))
    feats = feats.astype(np.float32)
    options = DecodeOptions(method="beam", beam=4, lm_weight=0.5, source_lm_weight=0.3)
    one_enc = model.encode(feats)[0]
    one = decode(model, feats, options, lm=ext, source_lm=src)
    monkeypatch.setattr(numba, "get_num_threads", lambda: 2)
    np.testing.assert_array_equal(model.encode(feats)[0], one_enc)
    two = decode(model, feats, options, lm=ext, source_lm=src)
    assert two.tokens == one.tokens and two.score == one.score
    assert two.components == one.components
