"""The integer LSTM LM step: NumPy and Numba identical, batch-invariant, equal to a sequence
evaluation, normalized."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from int4rt import Int4rtError
from int4rt.arith import INT32_MAX, INT32_MIN, fully_connected
from int4rt.model.config import parse_config
from int4rt.model.random_model import random_model
from int4rt.model.validation import check_model
from int4rt.ops.log_softmax.reference import log_softmax
from int4rt.ops.lstm.reference import lstm_sequence

LM_TINY = json.loads((Path(__file__).parents[1] / "configs" / "lm-tiny.json").read_text())
HISTORY = [0, 3, 5, 4, 10, 1, 6]


def tiny_lm(seed=0, weight_bits=4, act_bits=4):
    config = json.loads(json.dumps(LM_TINY))
    config["quantization"].update(weight_bits=weight_bits, activation_bits=act_bits)
    return random_model(parse_config(config), seed)


def step_all(lm, tokens, backend):
    """Log-probs [len(tokens), V] of one history fed token by token."""
    state, rows = lm.initial_state(1), []
    for token in tokens:
        log_probs, state = lm.step(np.array([token]), state, backend=backend)
        rows.append(log_probs[0])
    return np.stack(rows)


def sequence_log_probs(lm, tokens):
    """Independent evaluation: each layer over the whole sequence, then out and log-softmax."""
    x = lm.embedding[np.array(tokens)]
    for cell in lm.layers:
        x = lstm_sequence(cell, x, lm.sigmoid_table, lm.rounding)[0]
    fmt, out = lm.output, lm.out
    logits = fully_connected(x, out.weight, out.bias, x_zero_point=fmt.zero_point,
                             multiplier=out.multiplier, shift=out.shift, y_zero_point=0,
                             y_min=INT32_MIN, y_max=INT32_MAX, rounding=lm.rounding)
    return log_softmax(logits, lm.logit_frac_bits, lm.exp2_table, lm.ln_table)


@pytest.mark.parametrize(("weight_bits", "act_bits"), [(4, 4), (8, 8), (4, 8)])
def test_numpy_numba_and_sequence_agree(weight_bits, act_bits):
    lm = tiny_lm(1, weight_bits, act_bits)
    numpy_rows = step_all(lm, HISTORY, "numpy")
    assert numpy_rows.dtype == np.int32 and numpy_rows.shape == (len(HISTORY), len(lm.vocab))
    np.testing.assert_array_equal(numpy_rows, step_all(lm, HISTORY, "numba"))
    np.testing.assert_array_equal(numpy_rows, sequence_log_probs(lm, HISTORY))
    probs = np.exp(numpy_rows / 2.0**lm.logit_frac_bits)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=2e-3)
    assert np.all(numpy_rows <= 0)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_rows_do_not_depend_on_the_batch(backend):
    lm = tiny_lm(2)
    histories = [[0, 3, 4], [0, 7, 7], [0, 1, 9], [0, 3, 4]]
    state = lm.initial_state(len(histories))
    for position in range(3):
        tokens = np.array([history[position] for history in histories])
        batched, state = lm.step(tokens, state, backend=backend)
    for row, history in enumerate(histories):
        np.testing.assert_array_equal(batched[row], step_all(lm, history, backend)[-1])
    np.testing.assert_array_equal(batched[0], batched[3])


def test_bad_tokens_rejected():
    lm = tiny_lm()
    for tokens in (np.array([len(lm.vocab)]), np.array([-1]), np.array([[0]]), np.array([0.0])):
        with pytest.raises(Int4rtError, match="tokens"):
            lm.step(tokens, lm.initial_state(1))


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_traced_sequence_equals_the_steps(backend):
    from int4rt.trace import Trace

    lm = tiny_lm(3)
    trace = Trace()
    log_probs = lm.sequence(np.array(HISTORY), backend=backend, trace=trace)
    np.testing.assert_array_equal(log_probs, step_all(lm, HISTORY, "numpy"))
    np.testing.assert_array_equal(trace["lm.log_probs"], log_probs)
    names = list(trace)
    assert names[0] == "lm.embedding" and names[-2:] == ["lm.logits", "lm.log_probs"]
    assert {f"lm.layer{i}.hidden" for i in range(len(lm.layers))} <= set(names)


def test_validation_names_the_lm_embedding():
    lm = tiny_lm()
    bad = type(lm)(**{**lm.__dict__, "embedding": lm.embedding[:, :-1]})
    with pytest.raises(Int4rtError, match=r"lm\.embedding width"):
        check_model(bad)
