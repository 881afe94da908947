"""Predictor, LM and joint outputs of label histories, held in rows of preallocated arrays
(docs/DECODING.md, "Label histories and batching").

A history's outputs live in one *slot*: row ``s`` of every pool array. ``evaluate`` feeds a
batch of tokens to the states of parent slots and writes the results into new slots: one
predictor step, one joint projection and one step per LM for the whole batch (on threads when
Numba allows several). With the Numba backend the kernels run without per-call checks: every
input is the search's own codes, the layers were validated at load and the tables once here.
With any other backend it calls only the model interface (``predictor_initial_state``,
``predictor_step``, ``project_predictor``, ``joint_log_probs``; per LM ``initial_state`` and
``step``), so a model that is not an :class:`RnntModel` (the accuracy runner's FP32 adapter,
``int4rt_train.float_search``) runs the same search.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import numpy as np

from int4rt.decode.slots import StackPlan, lm_slots, predictor_slots, stack_plan
from int4rt.model.lm import LmModel
from int4rt.model.lstm_stack import LstmState
from int4rt.model.parallel import run_all
from int4rt.model.rnnt import RnntModel
from int4rt.ops.gemv.weight_layout import stream_layout
from int4rt.ops.joint.numba import joint_logits_trusted
from int4rt.ops.log_softmax.numba import log_softmax_trusted
from int4rt.ops.log_softmax.tables import prepare_log_softmax
from int4rt.ops.requantize.scalar import rounding_code

TRUSTED_BACKEND = "numba"
"""The backend whose kernels the search calls without per-call checks."""


class _StatePool:
    """The LSTM states of one stack, one row per slot."""

    def __init__(self, state: LstmState, capacity: int) -> None:
        self.h = tuple(np.repeat(h, capacity, axis=0) for h in state.h)
        self.c = tuple(np.repeat(c, capacity, axis=0) for c in state.c)

    def gather(self, slots: np.ndarray) -> LstmState:
        return LstmState(tuple(h[slots] for h in self.h), tuple(c[slots] for c in self.c))

    def scatter(self, slots: np.ndarray, state: LstmState) -> None:
        for pool, rows in zip(self.h + self.c, state.h + state.c, strict=True):
            pool[slots] = rows

    def grow(self, capacity: int) -> None:
        self.h = tuple(_grown(h, capacity) for h in self.h)
        self.c = tuple(_grown(c, capacity) for c in self.c)


class Evaluator:
    """Pools ``pred_proj`` [S, J] (int16 on the Numba backend, int64 on the model interface)
    and ``lm_log_probs`` int32 [L, S, V] (one row per slot), the states behind them, and the
    joint of encoder and predictor rows.

    Slot 0 starts as the empty history: the blank id (the RNN-T's start symbol and the LMs'
    sentence start) fed to the initial states.
    """

    def __init__(self, model: RnntModel, lms: Sequence[LmModel], backend: str,
                 capacity: int = 16) -> None:
        self._model = model
        self._lms = tuple(lms)
        self._backend = backend
        self._trusted = backend == TRUSTED_BACKEND
        if self._trusted:
            pred_stack = model.predictor_stack
            self._pred_plan = stack_plan(
                pred_stack.step_plans, pred_stack.token_inputs(model.predictor.embedding),
                stream_layout(model.joint.pred_proj, model.predictor.output),
                rounding_code(model.rounding))
            self._lm_plans = [_lm_plan(lm) for lm in self._lms]
            self._joint_tables = prepare_log_softmax(
                np.zeros((1, 1), np.int32), model.joint.logit_frac_bits, model.exp2_table,
                model.ln_table)[2:]
            self._pred_states = self._pool(pred_stack.initial_state(1), capacity)
            self._lm_states = [self._pool(lm.initial_state(1), capacity) for lm in self._lms]
            self.pred_proj = np.zeros((capacity, model.joint.pred_proj.n_out), dtype=np.int16)
        else:  # only the model interface: any model with these methods can be searched
            self._pred_states = self._pool(model.predictor_initial_state(1), capacity)
            self._lm_states = [self._pool(lm.initial_state(1), capacity) for lm in self._lms]
            self.pred_proj = np.zeros((capacity, 0), dtype=np.int64)  # sized by the first step
        self.lm_log_probs = np.zeros((len(self._lms), capacity, len(model.vocab)),
                                     dtype=np.int32)
        self.evaluate(np.zeros(1, np.int64), np.array([model.blank_id]), np.zeros(1, np.int64))

    @property
    def capacity(self) -> int:
        """Slots the pools hold."""
        return self.pred_proj.shape[0]

    def grow(self, capacity: int) -> None:
        """Enlarge every pool to ``capacity`` slots, keeping the rows held."""
        self._pred_states.grow(capacity)
        for pool in self._lm_states:
            pool.grow(capacity)
        self.pred_proj = _grown(self.pred_proj, capacity)
        self.lm_log_probs = np.ascontiguousarray(
            _grown(self.lm_log_probs.swapaxes(0, 1), capacity).swapaxes(0, 1))

    def evaluate(self, parents: np.ndarray, tokens: np.ndarray, slots: np.ndarray) -> None:
        """Slot ``slots[b]`` := the outputs after token ``tokens[b]`` follows the history of
        slot ``parents[b]`` (a slot may be its own parent); rows are independent.
        """
        tasks: list[Callable[[], None]] = [partial(self._predictor, parents, tokens, slots)]
        tasks += [partial(self._lm, index, parents, tokens, slots)
                  for index in range(len(self._lms))]
        run_all(tasks)

    def joint(self, enc_rows: np.ndarray, slots: np.ndarray) -> np.ndarray:
        """RNN-T log-probabilities int32 [N, V] of encoder projections ``enc_rows`` int64
        [N, J] joined with the predictor projections of ``slots``.
        """
        model = self._model
        pred_rows = self.pred_proj[slots]
        if not self._trusted:
            return model.joint_log_probs(enc_rows, pred_rows, backend=self._backend)
        logits = joint_logits_trusted(model.joint, enc_rows, pred_rows, model.sigmoid_table,
                                      model.rounding)
        return log_softmax_trusted(logits, model.joint.logit_frac_bits, *self._joint_tables)

    def _pool(self, state: LstmState, capacity: int) -> _StatePool:
        if self._trusted:  # the trusted kernels keep h codes in int16
            state = LstmState(tuple(h.astype(np.int16) for h in state.h), state.c)
        return _StatePool(state, capacity)

    def _predictor(self, parents: np.ndarray, tokens: np.ndarray, slots: np.ndarray) -> None:
        pool = self._pred_states
        if self._trusted:
            predictor_slots(self._pred_plan, tokens, parents, slots, pool.h, pool.c,
                            self.pred_proj)
            return
        model = self._model
        out, state = model.predictor_step(tokens, pool.gather(parents), backend=self._backend)
        pool.scatter(slots, state)
        proj = model.project_predictor(out, backend=self._backend)
        if self.pred_proj.shape[1] != proj.shape[1] or self.pred_proj.dtype != proj.dtype:
            self.pred_proj = np.zeros((self.capacity, proj.shape[1]), dtype=proj.dtype)
        self.pred_proj[slots] = proj

    def _lm(self, index: int, parents: np.ndarray, tokens: np.ndarray,
            slots: np.ndarray) -> None:
        pool = self._lm_states[index]
        if self._trusted:
            lm_slots(self._lm_plans[index], tokens, parents, slots, pool.h, pool.c,
                     self.lm_log_probs[index])
            return
        log_probs, state = self._lms[index].step(tokens, pool.gather(parents),
                                                 backend=self._backend)
        pool.scatter(slots, state)
        self.lm_log_probs[index, slots] = log_probs


def _lm_plan(lm: LmModel) -> StackPlan:
    """The :class:`StackPlan` of ``lm``: its layers, output layer and log-softmax tables."""
    stack = lm.stack
    tables = prepare_log_softmax(np.zeros((1, 1), np.int32), lm.logit_frac_bits, lm.exp2_table,
                                 lm.ln_table)
    return stack_plan(stack.step_plans, stack.token_inputs(lm.embedding),
                      stream_layout(lm.out, lm.output), rounding_code(lm.rounding), *tables[1:])


def _grown(pool: np.ndarray, capacity: int) -> np.ndarray:
    grown = np.zeros((capacity, *pool.shape[1:]), dtype=pool.dtype)
    grown[:pool.shape[0]] = pool
    return grown
