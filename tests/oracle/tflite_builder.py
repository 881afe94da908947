"""Author tiny .tflite models in pure Python and run them on the tflite-micro interpreter.

Models are built with the flatbuffer object API of ``ai_edge_litert.schema_py_generated``
(no TensorFlow). The :class:`ModelBuilder` keeps buffers, tensors, operator codes and
operators of a single subgraph; ``build_*`` functions assemble one-operator models from it.
``build_unidirectional_sequence_lstm`` authors the 8x8_16 integer LSTM.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

TFLITE_SCHEMA_VERSION = 3
TFLITE_FILE_IDENTIFIER = b"TFL3"

BuiltinOperator = schema.BuiltinOperator
TensorType = schema.TensorType
ActivationFunctionType = schema.ActivationFunctionType

_NUMPY_TENSOR_TYPES: dict[int, type[np.generic]] = {
    TensorType.INT8: np.int8,
    TensorType.INT16: np.int16,
    TensorType.INT32: np.int32,
    TensorType.INT64: np.int64,
    TensorType.FLOAT32: np.float32,
}


def pack_int4(codes: np.ndarray) -> bytes:
    """Pack int4 codes (-8..7) two per byte: element 2i in the low nibble, 2i+1 in the high.

    Packing runs over the flattened (row-major) tensor; an odd element count leaves the
    final high nibble zero. This is TFLite's dense int4 layout (``UnpackDenseInt4IntoInt8``).
    """
    flat = np.asarray(codes, dtype=np.int64).reshape(-1)
    if flat.size and (flat.min() < -8 or flat.max() > 7):
        raise ValueError("int4 codes must lie in -8..7")
    nibbles = (flat & 0xF).astype(np.uint8)
    if nibbles.size % 2:
        nibbles = np.concatenate([nibbles, np.zeros(1, dtype=np.uint8)])
    packed = nibbles[0::2] | (nibbles[1::2] << 4)
    return packed.astype(np.uint8).tobytes()


def quantization(
    scales: Sequence[float], zero_points: Sequence[int], quantized_dimension: int = 0
) -> Any:
    """Affine quantization parameters (one entry per tensor, or one per channel)."""
    q = schema.QuantizationParametersT()
    q.scale = [float(np.float32(s)) for s in scales]
    q.zeroPoint = [int(z) for z in zero_points]
    q.quantizedDimension = quantized_dimension
    return q


class ModelBuilder:
    """Accumulates one subgraph of a TFLite model and serialises it to flatbuffer bytes."""

    def __init__(self) -> None:
        empty = schema.BufferT()
        self.buffers: list[Any] = [empty]  # buffer 0 must be the empty sentinel
        self.tensors: list[Any] = []
        self.operators: list[Any] = []
        self.opcodes: list[Any] = []
        self._opcode_index: dict[int, int] = {}

    def add_buffer(self, data: bytes) -> int:
        """Add a constant data buffer; return its index."""
        buf = schema.BufferT()
        buf.data = np.frombuffer(data, dtype=np.uint8).copy()
        self.buffers.append(buf)
        return len(self.buffers) - 1

    def add_tensor(
        self,
        name: str,
        shape: Sequence[int],
        tensor_type: int,
        quant: Any = None,
        data: bytes | None = None,
        is_variable: bool = False,
    ) -> int:
        """Add a tensor (constant when ``data`` is given); return its index."""
        t = schema.TensorT()
        t.name = name
        t.shape = np.asarray(list(shape), dtype=np.int32)
        t.type = tensor_type
        t.buffer = 0 if data is None else self.add_buffer(data)
        t.quantization = quant
        t.isVariable = is_variable
        self.tensors.append(t)
        return len(self.tensors) - 1

    def add_const(self, name: str, values: np.ndarray, tensor_type: int, quant: Any = None) -> int:
        """Add a constant tensor holding ``values`` cast to the numpy type of ``tensor_type``."""
        arr = np.ascontiguousarray(values, dtype=_NUMPY_TENSOR_TYPES[tensor_type])
        return self.add_tensor(name, arr.shape, tensor_type, quant, data=arr.tobytes())

    def opcode(self, builtin: int) -> int:
        """Index of the operator code for ``builtin``, registering it on first use."""
        if builtin not in self._opcode_index:
            code = schema.OperatorCodeT()
            code.builtinCode = builtin
            code.deprecatedBuiltinCode = min(builtin, 127)
            code.version = 1
            self._opcode_index[builtin] = len(self.opcodes)
            self.opcodes.append(code)
        return self._opcode_index[builtin]

    def add_operator(
        self,
        builtin: int,
        inputs: Sequence[int],
        outputs: Sequence[int],
        options_type: int = 0,
        options: Any = None,
    ) -> None:
        """Append an operator; ``-1`` in ``inputs`` marks an omitted optional input."""
        op = schema.OperatorT()
        op.opcodeIndex = self.opcode(builtin)
        op.inputs = np.asarray(list(inputs), dtype=np.int32)
        op.outputs = np.asarray(list(outputs), dtype=np.int32)
        op.builtinOptionsType = options_type
        op.builtinOptions = options
        self.operators.append(op)

    def finish(self, inputs: Sequence[int], outputs: Sequence[int]) -> bytes:
        """Serialise the model with the given subgraph input and output tensor indices."""
        sub = schema.SubGraphT()
        sub.tensors = self.tensors
        sub.operators = self.operators
        sub.inputs = np.asarray(list(inputs), dtype=np.int32)
        sub.outputs = np.asarray(list(outputs), dtype=np.int32)
        sub.name = "main"
        model = schema.ModelT()
        model.version = TFLITE_SCHEMA_VERSION
        model.description = "int4rt oracle test model"
        model.operatorCodes = self.opcodes
        model.subgraphs = [sub]
        model.buffers = self.buffers
        fbb = flatbuffers.Builder(1024)
        fbb.Finish(model.Pack(fbb), file_identifier=TFLITE_FILE_IDENTIFIER)
        return bytes(fbb.Output())


def build_fully_connected(
    *,
    weights: np.ndarray,
    batch: int,
    x_scale: float,
    x_zero_point: int,
    w_scales: Sequence[float],
    y_scale: float,
    y_zero_point: int,
    bias: np.ndarray | None = None,
    int4_weights: bool = False,
    activation: int = ActivationFunctionType.NONE,
) -> bytes:
    """One int8 FULLY_CONNECTED: input [batch, K], weights [N, K], optional int32 bias [N].

    ``w_scales`` holds one scale (per-tensor) or N scales (per-channel, axis 0); weight zero
    points are 0. With ``int4_weights`` the weight tensor is INT4, packed two codes per byte.
    The bias is quantized with scale ``x_scale * w_scales[c]`` (float32) and zero point 0.
    """
    w = np.asarray(weights)
    n_out, depth = w.shape
    w_scales32 = [np.float32(s) for s in w_scales]
    mb = ModelBuilder()
    x = mb.add_tensor(
        "input", (batch, depth), TensorType.INT8, quantization([x_scale], [x_zero_point])
    )
    w_quant = quantization(w_scales32, [0] * len(w_scales32))
    if int4_weights:
        w_idx = mb.add_tensor("weights", w.shape, TensorType.INT4, w_quant, data=pack_int4(w))
    else:
        w_idx = mb.add_const("weights", w, TensorType.INT8, w_quant)
    inputs = [x, w_idx]
    if bias is not None:
        b_scales = [np.float32(x_scale) * s for s in w_scales32]
        b_quant = quantization(b_scales, [0] * len(b_scales))
        inputs.append(mb.add_const("bias", np.asarray(bias), TensorType.INT32, b_quant))
    else:
        inputs.append(-1)
    y = mb.add_tensor(
        "output", (batch, n_out), TensorType.INT8, quantization([y_scale], [y_zero_point])
    )
    opts = schema.FullyConnectedOptionsT()
    opts.fusedActivationFunction = activation
    mb.add_operator(
        BuiltinOperator.FULLY_CONNECTED,
        inputs,
        [y],
        schema.BuiltinOptions.FullyConnectedOptions,
        opts,
    )
    return mb.finish([x], [y])


def build_unary_int16(op: int, in_scale: float, size: int = 65536) -> bytes:
    """One int16 LOGISTIC or TANH over a [size] vector: zero points 0, output scale 2^-15."""
    mb = ModelBuilder()
    x = mb.add_tensor("input", (size,), TensorType.INT16, quantization([in_scale], [0]))
    y = mb.add_tensor("output", (size,), TensorType.INT16, quantization([2.0**-15], [0]))
    mb.add_operator(op, [x], [y])
    return mb.finish([x], [y])


def run(model: bytes, inputs: Sequence[np.ndarray], arena_size: int = 1 << 20) -> list[np.ndarray]:
    """Invoke ``model`` once on tflite-micro with ``inputs``; return copies of all outputs."""
    from tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(
        model,
        arena_size=arena_size,
        intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors,
    )
    for i, arr in enumerate(inputs):
        interp.set_input(np.ascontiguousarray(arr), i)
    interp.invoke()
    n_outputs = schema.Model.GetRootAs(model, 0).Subgraphs(0).OutputsLength()
    return [np.array(interp.get_output(i), copy=True) for i in range(n_outputs)]


LSTM_GATES = ("i", "f", "g", "o")  # gate order of TFLite's LSTM inputs (input, forget, cell, out)


@dataclass(frozen=True)
class LstmModel:
    """A one-operator UNIDIRECTIONAL_SEQUENCE_LSTM model and the indices of its state tensors."""

    buffer: bytes
    hidden_state: int  # variable int8 tensor [batch, H] (operator input 18)
    cell_state: int  # variable int16 tensor [batch, H] (operator input 19)


def build_unidirectional_sequence_lstm(
    *,
    input_weights: Sequence[np.ndarray],
    recurrent_weights: Sequence[np.ndarray],
    biases: Sequence[np.ndarray],
    input_weight_scales: Sequence[float],
    recurrent_weight_scales: Sequence[float],
    time_steps: int,
    x_scale: float,
    x_zero_point: int,
    h_scale: float,
    h_zero_point: int,
    cell_scale_log2: int,
    cell_clip: float = 0.0,
    batch: int = 1,
    time_major: bool = False,
) -> LstmModel:
    """An 8x8_16 integer UNIDIRECTIONAL_SEQUENCE_LSTM (int8 weights/activations, int16 cell).

    Per-gate arguments come in gate order i, f, g, o: input weights int8 [H, I], recurrent
    weights int8 [H, H], int32 biases [H] (scale ``x_scale * w_scale``), one per-tensor weight
    scale each. The input is [batch, T, I] (or [T, batch, I] with ``time_major``); the output,
    hidden state and input share int8 activations; the cell state is int16 with scale
    ``2^cell_scale_log2``. No peephole, projection or layer norm (those inputs are -1).
    """
    h_size, i_size = np.asarray(input_weights[0]).shape
    mb = ModelBuilder()
    seq_shape = (time_steps, batch) if time_major else (batch, time_steps)
    x = mb.add_tensor(
        "input", (*seq_shape, i_size), TensorType.INT8, quantization([x_scale], [x_zero_point])
    )
    w_in = [
        mb.add_const(f"input_to_{g}_w", w, TensorType.INT8, quantization([s], [0]))
        for g, w, s in zip(LSTM_GATES, input_weights, input_weight_scales, strict=True)
    ]
    w_rec = [
        mb.add_const(f"recurrent_to_{g}_w", w, TensorType.INT8, quantization([s], [0]))
        for g, w, s in zip(LSTM_GATES, recurrent_weights, recurrent_weight_scales, strict=True)
    ]
    b = [
        mb.add_const(
            f"{g}_bias", bias, TensorType.INT32,
            quantization([np.float32(x_scale) * np.float32(s)], [0]),
        )
        for g, bias, s in zip(LSTM_GATES, biases, input_weight_scales, strict=True)
    ]
    h_quant = quantization([h_scale], [h_zero_point])
    h_state = mb.add_tensor("hidden_state", (batch, h_size), TensorType.INT8, h_quant,
                            is_variable=True)
    c_state = mb.add_tensor("cell_state", (batch, h_size), TensorType.INT16,
                            quantization([2.0**cell_scale_log2], [0]), is_variable=True)
    y = mb.add_tensor("output", (*seq_shape, h_size), TensorType.INT8,
                      quantization([h_scale], [h_zero_point]))
    inputs = [x, *w_in, *w_rec, -1, -1, -1, *b, -1, -1, h_state, c_state, -1, -1, -1, -1]
    opts = schema.UnidirectionalSequenceLSTMOptionsT()
    opts.fusedActivationFunction = ActivationFunctionType.TANH
    opts.cellClip = float(np.float32(cell_clip))
    opts.projClip = 0.0
    opts.timeMajor = time_major
    opts.asymmetricQuantizeInputs = False
    opts.diagonalRecurrentTensors = False
    mb.add_operator(
        BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM,
        inputs,
        [y],
        schema.BuiltinOptions.UnidirectionalSequenceLSTMOptions,
        opts,
    )
    return LstmModel(mb.finish([x], [y]), hidden_state=h_state, cell_state=c_state)
