"""Layer and trace names (ARITHMETIC.md §8.7): the one module that spells them.

A trace name is a dotted path: a layer name (``encoder.layer0.bwd``, ``predictor.layer1``,
``lm.layer0``, ``joint``) and what was recorded there (``hidden``, ``gate.f``, ``logits``).
The integer operators and models (``int4rt.ops``, ``int4rt.model``), the converter's float
model and its calibration and report (``tools/convert``) all build and read names here.
"""

from __future__ import annotations

from dataclasses import dataclass

ENCODER = "encoder"
PREDICTOR = "predictor"
LM = "lm"
JOINT = "joint"
STACKS = (ENCODER, PREDICTOR, LM)  # the LSTM stacks, whose layers are ``{stack}.layer{l}``
DIRECTIONS = ("fwd", "bwd")  # an encoder layer's cells, in order (§8.5)

GATES = ("i", "f", "g", "o")  # rows of the gate FCs, in this order (§8.1)
# What one LSTM direction records over T steps, in this order (§8.7)
LSTM_RECORDS = ("input_proj", "gate_pre", *(f"gate.{gate}" for gate in GATES), "cell", "hidden")
# What the joint records (§9.2); the model adds the projections and log-probabilities
JOINT_RECORDS = ("pre", "tanh", "hidden", "logits")

ENCODER_INPUT = f"{ENCODER}.input"
ENCODER_OUTPUT = f"{ENCODER}.output"  # both directions of the last layer, side by side
JOINT_ENC_PROJ = f"{JOINT}.enc_proj"
JOINT_PRED_PROJ = f"{JOINT}.pred_proj"
JOINT_LOG_PROBS = f"{JOINT}.log_probs"
LM_LOGITS = f"{LM}.logits"
LM_LOG_PROBS = f"{LM}.log_probs"


def name(prefix: str, record: str) -> str:
    """``{prefix}.{record}``: what ``record`` is called under layer ``prefix``."""
    return f"{prefix}.{record}"


def stack_layer(stack: str, index: int) -> str:
    """Layer ``index`` of an LSTM stack: ``{stack}.layer{index}``."""
    return f"{stack}.layer{index}"


def encoder_cell(index: int, direction: int) -> str:
    """Direction ``direction`` (0 forward, 1 backward) of encoder layer ``index``."""
    return f"{stack_layer(ENCODER, index)}.{DIRECTIONS[direction]}"


def lstm_cell(stack: str, index: int, direction: int) -> str:
    """Cell ``direction`` of layer ``index`` of an LSTM stack: the encoder names its directions
    (``encoder_cell``), the predictor's and LMs' one-cell layers are the layer itself."""
    return encoder_cell(index, direction) if stack == ENCODER else stack_layer(stack, index)


def embedding(stack: str) -> str:
    """The embedding codes that feed the predictor or an LM."""
    return f"{stack}.embedding"


def stacked(index: int, stack: str = ENCODER) -> str:
    """Layer ``index``'s input after frame stacking (§8.5); only encoder layers stack frames."""
    return f"{stack_layer(stack, index)}.stacked"


@dataclass(frozen=True)
class LstmRecord:
    """A parsed LSTM trace name: its layer, direction (encoder only) and record."""

    layer: str  # e.g. "encoder.layer0", "predictor.layer1", "lm.layer0"
    direction: str | None  # "fwd", "bwd" or None
    record: str  # one of LSTM_RECORDS


def parse_lstm_record(trace_name: str) -> LstmRecord | None:
    """The parts of an LSTM trace name such as ``encoder.layer0.bwd.hidden``; None otherwise."""
    stack, _, rest = trace_name.partition(".")
    layer, _, rest = rest.partition(".")
    if stack not in STACKS or not layer.startswith("layer") or not layer[5:].isdigit() \
            or layer[5:] != str(int(layer[5:])):
        return None
    direction, _, record = rest.partition(".")
    if stack == ENCODER and direction in DIRECTIONS:
        rest = record
    else:
        direction = None
    if rest not in LSTM_RECORDS:
        return None
    return LstmRecord(f"{stack}.{layer}", direction, rest)
