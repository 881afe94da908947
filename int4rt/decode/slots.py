"""The evaluator's kernels: one Numba call per stack and evaluate call, output layer included
(docs/DECODING.md, "Label histories and batching").

A :class:`StackPlan` holds what a stack's call needs (every layer's step plan, the first
layer's input product per token, the output layer and, for an LM, its log-softmax tables) in
one Numba structure, so a call passes one object instead of some thirty arrays (Numba types
and unboxes every array of an argument on each call).
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba.core import types
from numba.experimental import structref

from int4rt.ops.gemv.numba import linear_rows
from int4rt.ops.gemv.weight_layout import StreamLayout
from int4rt.ops.log_softmax.numba import _log_softmax_rows
from int4rt.ops.lstm.numba import StepPlan, stack_step_slots

INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


@structref.register
class StackPlanType(types.StructRef):
    """Numba type of :class:`StackPlan`."""

    def preprocess_fields(self, fields):
        return tuple((name, types.unliteral(kind)) for name, kind in fields)


class StackPlan(structref.StructRefProxy):
    """One stack's constants for :func:`predictor_slots` / :func:`lm_slots`: ``steps`` (one
    :class:`~int4rt.ops.lstm.numba.StepPlan` per layer), ``first_inputs`` int16 [V, 4H] (the
    first layer's input product of every token, ``LstmStack.token_inputs``), ``head`` (the
    output layer's :class:`~int4rt.ops.gemv.weight_layout.StreamLayout`), ``rounding`` (a
    rounding code), and for an LM's log-softmax (§10) ``frac_bits`` and the int64 tables
    ``exp2`` and ``ln`` (unused by the predictor). Made by a cached kernel: Numba's own
    constructor compiles anew in every process (seconds per stack type).
    """

    def __new__(cls, steps, first_inputs, head, rounding, frac_bits, exp2, ln):
        return _new_stack_plan(steps, first_inputs, head, rounding, frac_bits, exp2, ln)


structref.define_proxy(StackPlan, StackPlanType,
                       ["steps", "first_inputs", "head", "rounding", "frac_bits", "exp2", "ln"])


@nb.njit(cache=True)
def _new_stack_plan(steps, first_inputs, head, rounding, frac_bits, exp2, ln):
    return StackPlan(steps, first_inputs, head, rounding, frac_bits, exp2, ln)


def stack_plan(steps: tuple[StepPlan, ...], first_inputs: np.ndarray, head: StreamLayout,
               rounding: int, frac_bits: int = 0, exp2: np.ndarray | None = None,
               ln: np.ndarray | None = None) -> StackPlan:
    """A :class:`StackPlan`; the predictor's has no log-softmax (``frac_bits`` 0, empty
    tables)."""
    empty = np.zeros(0, dtype=np.int64)
    return StackPlan(steps, first_inputs, head, rounding, frac_bits,
                     empty if exp2 is None else exp2, empty if ln is None else ln)


@nb.njit(cache=True, nogil=True)
def _stack_out(plan, tokens, parents, slots, h_pools, c_pools):
    out = np.empty((tokens.shape[0], h_pools[-1].shape[1]), dtype=np.int16)
    stack_step_slots(plan.steps, plan.first_inputs, tokens, parents, slots, h_pools, c_pools,
                     out)
    return out


@nb.njit(cache=True, nogil=True)
def predictor_slots(plan, tokens, parents, slots, h_pools, c_pools, pred_proj):
    """The predictor's stack one step for ``tokens`` [B] from slots ``parents`` to ``slots``
    (:func:`~int4rt.ops.lstm.numba.stack_step_slots`, §8.2–§8.5), then its joint projection
    (§9.1: §7.1 to int16) into row ``slots[b]`` of ``pred_proj`` int16 [S, J].
    """
    out = _stack_out(plan, tokens, parents, slots, h_pools, c_pools)
    proj = np.empty((out.shape[0], plan.head.weight.shape[0]), dtype=np.int16)
    linear_rows(out, plan.head, plan.rounding, INT16_MIN, INT16_MAX, proj)
    for b in range(slots.shape[0]):
        pred_proj[slots[b]] = proj[b]


@nb.njit(cache=True, nogil=True)
def lm_slots(plan, tokens, parents, slots, h_pools, c_pools, log_probs):
    """An LM's stack one step for ``tokens`` [B] from slots ``parents`` to ``slots``
    (§8.2–§8.5), its output layer to int32 logits (§7.1, clamped to int32) and the integer
    log-softmax (§10) into row ``slots[b]`` of ``log_probs`` int32 [S, V].
    """
    out = _stack_out(plan, tokens, parents, slots, h_pools, c_pools)
    logits = np.empty((out.shape[0], plan.head.weight.shape[0]), dtype=np.int32)
    linear_rows(out, plan.head, plan.rounding, INT32_MIN, INT32_MAX, logits)
    rows = np.empty(logits.shape, dtype=np.int32)
    _log_softmax_rows(logits, plan.frac_bits, plan.exp2, plan.ln, rows)
    for b in range(slots.shape[0]):
        log_probs[slots[b]] = rows[b]
