"""The golden ``lstm_tflm`` set is what tflite-micro itself computes: the set's TFLite-style
parameters (``params.tflite``, per-gate int8 weights, int32 biases) are built into an
UNIDIRECTIONAL_SEQUENCE_LSTM model and run on the tflite-micro interpreter; its output
sequence and final hidden and cell states equal the golden trace (docs/VERIFICATION.md §2)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tflite_micro")
pytest.importorskip("ai_edge_litert")

from oracle.tflite_builder import build_unidirectional_sequence_lstm
from test_golden import GOLDEN

from int4rt.golden.store import read_index, read_set

pytestmark = pytest.mark.oracle


def test_lstm_tflm_set_matches_tflite_micro():
    from tflite_micro import runtime

    entry = next(e for e in read_index(GOLDEN)["sets"] if e["name"] == "lstm_tflm")
    gset = read_set(GOLDEN, "lstm_tflm", entry["manifest_sha256"])
    tflite, cell = gset.params["tflite"], gset.params["cell"]
    x = gset["x"]
    steps, _ = x.shape
    model = build_unidirectional_sequence_lstm(
        input_weights=np.split(gset["input_fc.weight"], 4),
        recurrent_weights=np.split(gset["recurrent_fc.weight"], 4),
        biases=np.split(gset["input_fc.bias"], 4),
        input_weight_scales=tflite["input_weight_scales_ifgo"],
        recurrent_weight_scales=tflite["recurrent_weight_scales_ifgo"],
        time_steps=steps, x_scale=tflite["input_scale"], x_zero_point=tflite["input_zero_point"],
        h_scale=tflite["output_scale"], h_zero_point=tflite["output_zero_point"],
        cell_scale_log2=cell["cell_scale_log2"], cell_clip=tflite["cell_clip"], batch=1,
        time_major=False,
    )
    interp = runtime.Interpreter.from_bytes(
        model.buffer, arena_size=1 << 18,
        intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
    interp.set_input(np.ascontiguousarray(x[None]), 0)
    interp.invoke()
    np.testing.assert_array_equal(np.array(interp.get_output(0))[0], gset["lstm.fwd.hidden"])
    hidden = np.array(interp.GetTensor(model.hidden_state, 0)["tensor_data"])
    cell_state = np.array(interp.GetTensor(model.cell_state, 0)["tensor_data"])
    np.testing.assert_array_equal(hidden.ravel(), gset["lstm.fwd.hidden"][-1])
    np.testing.assert_array_equal(cell_state.ravel(), gset["lstm.fwd.cell"][-1])
