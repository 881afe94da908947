"""The evaluator's kernels (int4rt.decode.slots) against their NumPy twins: the reference
stack step of §8.2–§8.5, the output layer (§7.1) and, for an LM, the log-softmax (§10), each
row written to its slot (docs/DECODING.md, "Label histories and batching")."""

from __future__ import annotations

import numpy as np
import pytest
from test_lstm import STACK_PARENTS, STACK_SLOTS, STACK_TOKENS, stack_case

import int4rt.ops.lstm.numba as fast
import int4rt.ops.lstm.reference as ref
from int4rt.arith import get_profile
from int4rt.decode.slots import lm_slots, predictor_slots, stack_plan
from int4rt.model.random_model import random_linear
from int4rt.ops.gemv.dispatch import layouts_on_path, supported_paths
from int4rt.ops.gemv.reference import linear
from int4rt.ops.gemv.weight_layout import stream_layout
from int4rt.ops.log_softmax.reference import log_softmax
from int4rt.ops.log_softmax.tables import exp2_table, ln_table
from int4rt.ops.requantize.scalar import rounding_code

TABLE = get_profile("int4rt").table
SLOTS = 6


def _case(weight_bits: int, act_bits: int, fill: str, out_scale: float):
    """``test_lstm.stack_case`` with an output layer of 11 units over its last layer; a tiny
    ``out_scale`` saturates every output (the int16 clamp, logits far apart)."""
    cells, h_fmt, embedding, h_pools, c_pools = stack_case(weight_bits, act_bits, False, fill)
    head = random_linear(np.random.default_rng(act_bits), 11, cells[-1].hidden_size,
                         weight_bits, h_fmt, out_scale)
    return cells, head, h_fmt, embedding, h_pools, c_pools


def _reference_rows(cells, head, h_fmt, embedding, h_pools, c_pools, rounding, out_dtype):
    """The twin: reference stack step, output layer, the pools it leaves."""
    h_ref = tuple(h_pool.astype(h_fmt.dtype) for h_pool in h_pools)
    c_ref = tuple(c_pool.copy() for c_pool in c_pools)
    out = ref.stack_step_slots(cells, embedding, STACK_TOKENS, STACK_PARENTS, STACK_SLOTS,
                               h_ref, c_ref, TABLE, rounding)
    return linear(out, head, h_fmt, rounding, out_dtype), h_ref, c_ref


def _plan(path, cells, head, h_fmt, embedding, rounding, *tables):
    with layouts_on_path(path):
        steps = tuple(fast.step_plan(cell, rounding, TABLE) for cell in cells)
        first_inputs = fast.token_inputs(cells[0], rounding, embedding)
        return stack_plan(steps, first_inputs, stream_layout(head, h_fmt),
                          rounding_code(rounding), *tables)


def _check_pools(got_pools, want_pools):
    for got_pool, want_pool in zip(got_pools, want_pools, strict=True):
        np.testing.assert_array_equal(got_pool, want_pool)


@pytest.mark.parametrize("path", supported_paths())
@pytest.mark.parametrize(("weight_bits", "act_bits"), [(4, 4), (4, 8), (8, 4)])
@pytest.mark.parametrize("rounding", ["double", "single"])
@pytest.mark.parametrize("fill", ["random", "max", "min"])
@pytest.mark.parametrize("out_scale", [0.02, 1e-6])
def test_predictor_slots_equals_reference(path, weight_bits, act_bits, rounding, fill,
                                          out_scale):
    cells, head, h_fmt, embedding, h_pools, c_pools = _case(weight_bits, act_bits, fill,
                                                            out_scale)
    want, h_ref, c_ref = _reference_rows(cells, head, h_fmt, embedding, h_pools, c_pools,
                                         rounding, np.int16)
    if out_scale < 1e-3:  # the case meant to saturate does
        assert want.min() == -32768 and want.max() == 32767
    plan = _plan(path, cells, head, h_fmt, embedding, rounding)
    pred_proj = np.full((SLOTS, head.n_out), -7, dtype=np.int16)
    predictor_slots(plan, STACK_TOKENS, STACK_PARENTS, STACK_SLOTS, h_pools, c_pools, pred_proj)
    np.testing.assert_array_equal(pred_proj[STACK_SLOTS], want)
    untouched = np.setdiff1d(np.arange(SLOTS), STACK_SLOTS)
    assert (pred_proj[untouched] == -7).all()
    _check_pools(h_pools, h_ref)
    _check_pools(c_pools, c_ref)


@pytest.mark.parametrize("path", supported_paths())
@pytest.mark.parametrize(("weight_bits", "act_bits"), [(4, 4), (4, 8), (8, 4)])
@pytest.mark.parametrize("rounding", ["double", "single"])
@pytest.mark.parametrize("fill", ["random", "max", "min"])
@pytest.mark.parametrize(("out_scale", "frac_bits"), [(2.0 ** -10, 10), (1e-6, 16),
                                                      (2.0 ** -4, 4)])
def test_lm_slots_equals_reference(path, weight_bits, act_bits, rounding, fill, out_scale,
                                   frac_bits):
    cells, head, h_fmt, embedding, h_pools, c_pools = _case(weight_bits, act_bits, fill,
                                                            out_scale)
    logits, h_ref, c_ref = _reference_rows(cells, head, h_fmt, embedding, h_pools, c_pools,
                                           rounding, np.int32)
    want = log_softmax(logits, frac_bits, exp2_table(), ln_table())
    plan = _plan(path, cells, head, h_fmt, embedding, rounding, frac_bits,
                 exp2_table().astype(np.int64), ln_table().astype(np.int64))
    log_probs = np.full((SLOTS, head.n_out), 7, dtype=np.int32)
    lm_slots(plan, STACK_TOKENS, STACK_PARENTS, STACK_SLOTS, h_pools, c_pools, log_probs)
    np.testing.assert_array_equal(log_probs[STACK_SLOTS], want)
    untouched = np.setdiff1d(np.arange(SLOTS), STACK_SLOTS)
    assert (log_probs[untouched] == 7).all()
    _check_pools(h_pools, h_ref)
    _check_pools(c_pools, c_ref)
