"""Integer RNN-T joint network, NumPy reference (docs/ARITHMETIC.md §9)."""

from __future__ import annotations

import numpy as np

from int4rt.layers import ActQuant, Joint, check_joint_inputs
from int4rt.ops.activations.reference import tanh16
from int4rt.ops.gemv.reference import linear
from int4rt.ops.requantize.reference import requantize
from int4rt.trace import Trace
from int4rt.trace_names import JOINT, JOINT_RECORDS, name

INT16_MIN, INT16_MAX = -32768, 32767


def project_encoder(
    joint: Joint, enc_codes: np.ndarray, enc_format: ActQuant, rounding: str
) -> np.ndarray:
    """Encoder projection ``E`` int16 [T, J] of encoder codes [T, E], once per utterance (§9.1)."""
    return linear(enc_codes, joint.enc_proj, enc_format, rounding, np.int16)


def project_predictor(
    joint: Joint, pred_codes: np.ndarray, pred_format: ActQuant, rounding: str
) -> np.ndarray:
    """Predictor projection ``P`` int16 [N, J] of predictor codes [N, H] (§9.1)."""
    return linear(pred_codes, joint.pred_proj, pred_format, rounding, np.int16)


def joint_logits(
    joint: Joint,
    enc_proj: np.ndarray,
    pred_proj: np.ndarray,
    table: np.ndarray,
    rounding: str,
    trace: Trace | None = None,
    prefix: str = JOINT,
) -> np.ndarray:
    """Logits int32 [N, V] of N (frame, label-state) pairs of projections int16 [N, J] (§9.2).

    Combine (saturating sum, or product requantized to Q3.12), tanh to Q0.15, requantize to
    the ``joint.hidden`` codes, then the output layer. With ``trace``, records
    ``{prefix}.pre``, ``.tanh``, ``.hidden`` and ``.logits`` in that order.
    """
    e, p = check_joint_inputs(joint, enc_proj, pred_proj, rounding)
    if joint.mode == "additive":
        pre = e + p
    else:
        pre = requantize(e * p, joint.combine_multiplier, joint.combine_shift, rounding)
    pre = np.clip(pre, INT16_MIN, INT16_MAX).astype(np.int16)
    act = tanh16(pre, table)
    hid = requantize(act.astype(np.int64), joint.hidden_multiplier, joint.hidden_shift, rounding)
    fmt = joint.hidden
    hid = np.clip(hid + fmt.zero_point, fmt.qmin, fmt.qmax).astype(fmt.dtype)
    logits = linear(hid, joint.out, fmt, rounding, np.int32)
    if trace is not None:
        for key, tensor in zip(JOINT_RECORDS, (pre, act, hid, logits), strict=True):
            trace.record(name(prefix, key), tensor)
    return logits
