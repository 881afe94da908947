"""Axis labels and roles of trace names (ARITHMETIC.md §8.7, docs/VERIFICATION.md §3).

Axis labels: ``t`` an encoder (or LSTM) time step, ``u`` a label step of the predictor,
``pair`` a frame-major (frame, label-state) pair of the joint (index t·(U+1) + u); the other
labels name the width (``4H`` gate rows in order i, f, g, o; ``H`` cells; ``F`` features;
``J`` joint units; ``V`` vocabulary).
"""

from __future__ import annotations

from int4rt.golden.store import Tensor
from int4rt.trace import Trace

LSTM_WIDTHS = {"input_proj": "4H", "gate_pre": "4H", "gate.i": "H", "gate.f": "H",
               "gate.g": "H", "gate.o": "H", "cell": "H", "hidden": "H"}
JOINT_WIDTHS = {"joint.pre": "J", "joint.tanh": "J", "joint.hidden": "J", "joint.logits": "V",
                "joint.log_probs": "V"}
FIXED = {"encoder.input": ("t", "F"), "predictor.embedding": ("u", "E"),
         "joint.enc_proj": ("t", "J"), "joint.pred_proj": ("u", "J")}


def trace_axes(name: str) -> tuple[str, ...]:
    """Axis labels of the trace tensor called ``name``."""
    if name in FIXED:
        return FIXED[name]
    if name in JOINT_WIDTHS:
        return ("pair", JOINT_WIDTHS[name])
    step = "u" if name.startswith("predictor.") else "t"
    if name.endswith(".stacked"):
        return (step, "nF")
    for suffix, width in LSTM_WIDTHS.items():
        if name.endswith(f".{suffix}"):
            return (step, width)
    raise KeyError(f"no axis labels for trace name {name!r}")


def trace_tensors(trace: Trace, outputs: tuple[str, ...]) -> list[Tensor]:
    """The recorded tensors in recording order: ``outputs`` as outputs, the rest intermediates."""
    return [Tensor(name, "output" if name in outputs else "intermediate", value,
                   trace_axes(name), "backward direction: computed from the last step to the "
                   "first, stored in input order" if ".bwd." in name else "")
            for name, value in trace.items()]
