"""Integer RNN-T joint network, Numba kernels (docs/ARITHMETIC.md §9)."""

from __future__ import annotations

import weakref
from typing import NamedTuple

import numba as nb
import numpy as np

from int4rt.layers import ActQuant, Joint, check_joint_inputs
from int4rt.ops.activations.numba import tanh16_one
from int4rt.ops.activations.tables import check_sigmoid_table
from int4rt.ops.gemv.numba import linear, linear_rows
from int4rt.ops.gemv.weight_layout import stream_layout
from int4rt.ops.requantize.scalar import requantize_one, rounding_code
from int4rt.trace import Trace
from int4rt.trace_names import JOINT, JOINT_RECORDS, name

INT16_MIN, INT16_MAX = -32768, 32767
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def project_encoder(
    joint: Joint, enc_codes: np.ndarray, enc_format: ActQuant, rounding: str
) -> np.ndarray:
    """Numba twin of :func:`int4rt.ops.joint.reference.project_encoder` (§9.1)."""
    return linear(enc_codes, joint.enc_proj, enc_format, rounding, np.int16)


def project_predictor(
    joint: Joint, pred_codes: np.ndarray, pred_format: ActQuant, rounding: str
) -> np.ndarray:
    """Numba twin of :func:`int4rt.ops.joint.reference.project_predictor` (§9.1)."""
    return linear(pred_codes, joint.pred_proj, pred_format, rounding, np.int16)


class HiddenParams(NamedTuple):
    """The integers of the joint's combine, tanh and hidden requantization (§9.2), by name."""

    multiplicative: bool
    combine_multiplier: int
    combine_shift: int
    hidden_multiplier: int
    hidden_shift: int
    zero_point: int  # hidden format
    qmin: int
    qmax: int
    rounding: int  # DOUBLE_ROUNDING or SINGLE_ROUNDING


def hidden_params(joint: Joint, rounding: str) -> HiddenParams:
    """The :class:`HiddenParams` of a validated ``joint`` under ``rounding``."""
    fmt = joint.hidden
    return HiddenParams(
        multiplicative=joint.mode == "multiplicative",
        combine_multiplier=int(joint.combine_multiplier), combine_shift=int(joint.combine_shift),
        hidden_multiplier=int(joint.hidden_multiplier), hidden_shift=int(joint.hidden_shift),
        zero_point=int(fmt.zero_point), qmin=int(fmt.qmin), qmax=int(fmt.qmax),
        rounding=rounding_code(rounding),
    )


@nb.njit(cache=True)
def _hidden_rows(e, p, params, table, pre_out, tanh_out, hidden_out):
    """Combine, tanh and requantize to hidden codes, element by element (§9.2)."""
    rounding = params.rounding
    for n in range(e.shape[0]):
        for j in range(e.shape[1]):
            if params.multiplicative:
                v = requantize_one(e[n, j] * p[n, j], params.combine_multiplier,
                                   params.combine_shift, rounding)
            else:
                v = e[n, j] + p[n, j]
            v = min(max(v, INT16_MIN), INT16_MAX)
            a = tanh16_one(v, table, 3, 0)
            h = requantize_one(a, params.hidden_multiplier, params.hidden_shift,
                               rounding) + params.zero_point
            pre_out[n, j] = v
            tanh_out[n, j] = a
            hidden_out[n, j] = min(max(h, params.qmin), params.qmax)


def joint_logits(
    joint: Joint,
    enc_proj: np.ndarray,
    pred_proj: np.ndarray,
    table: np.ndarray,
    rounding: str,
    trace: Trace | None = None,
    prefix: str = JOINT,
) -> np.ndarray:
    """Numba twin of :func:`int4rt.ops.joint.reference.joint_logits` (§9.2)."""
    e, p = check_joint_inputs(joint, enc_proj, pred_proj, rounding)
    table = check_sigmoid_table(table)
    fmt = joint.hidden
    pre = np.empty(e.shape, dtype=np.int16)
    act = np.empty(e.shape, dtype=np.int16)
    hid = np.empty(e.shape, dtype=fmt.dtype)
    _hidden_rows(np.ascontiguousarray(e), np.ascontiguousarray(p),
                 hidden_params(joint, rounding), table, pre, act, hid)
    logits = linear(hid, joint.out, fmt, rounding, np.int32)
    if trace is not None:
        for key, tensor in zip(JOINT_RECORDS, (pre, act, hid, logits), strict=True):
            trace.record(name(prefix, key), tensor)
    return logits


def joint_logits_trusted(joint: Joint, enc_proj: np.ndarray, pred_proj: np.ndarray,
                         table: np.ndarray, rounding: str) -> np.ndarray:
    """:func:`joint_logits` of int64 projections [N, J] the caller guarantees valid (the
    search's own), with a validated joint and table: no checks on the hot path.
    """
    params = _HIDDEN.get(joint)
    if params is None or params[0] != rounding:
        params = _HIDDEN[joint] = (rounding, hidden_params(joint, rounding))
    logits = np.empty((enc_proj.shape[0], joint.out.n_out), dtype=np.int32)
    _logits_rows(enc_proj, pred_proj, params[1], table, stream_layout(joint.out, joint.hidden),
                 logits)
    return logits


_HIDDEN: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@nb.njit(cache=True, nogil=True)
def _logits_rows(e, p, params, table, out_layout, logits):
    """§9.2 in one kernel: combine, tanh, hidden codes, then the output layer to int32."""
    pre = np.empty(e.shape, dtype=np.int16)
    act = np.empty(e.shape, dtype=np.int16)
    hid = np.empty(e.shape, dtype=np.int16)
    _hidden_rows(e, p, params, table, pre, act, hid)
    linear_rows(hid, out_layout, params.rounding, INT32_MIN, INT32_MAX, logits)
