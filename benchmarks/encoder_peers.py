"""Encoder peers with the architecture of an int4rt model: torch fp32 and int8 dynamic
``nn.LSTM``, and ONNX Runtime fp32 and int8 dynamic (``quantize_dynamic`` of the same network
exported with opset 17, whose LSTM becomes ``DynamicQuantizeLSTM``).

Weights are random: the peers' speed does not depend on the values. Each builder returns
``{name: callable}`` for one thread count, or ``{}`` when its package is missing.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np

from int4rt.model.rnnt import RnntModel


def _shape(model: RnntModel) -> tuple[int, int, int, bool]:
    first = model.encoder.layers[0]
    return (first.cells[0].input_size, first.cells[0].hidden_size, len(model.encoder.layers),
            first.bidirectional)


def available(package: str) -> bool:
    """Whether ``package`` can be imported (the ``peers`` extra installs them)."""
    return importlib.util.find_spec(package) is not None


def torch_runs(model: RnntModel, frames: int, threads: int) -> dict[str, Callable[[], object]]:
    """torch fp32 ``nn.LSTM`` and its ``quantize_dynamic`` int8 twin, ``threads`` threads."""
    if not available("torch"):
        return {}
    import torch

    torch.manual_seed(0)
    n_in, hidden, layers, bidirectional = _shape(model)
    lstm = torch.nn.LSTM(n_in, hidden, num_layers=layers, bidirectional=bidirectional).eval()
    int8 = torch.ao.quantization.quantize_dynamic(lstm, {torch.nn.LSTM}, dtype=torch.qint8)
    x = torch.randn(frames, 1, n_in)

    def runner(net: torch.nn.Module) -> Callable[[], object]:
        def run() -> object:
            torch.set_num_threads(threads)
            with torch.inference_mode():
                return net(x)
        return run

    return {"torch fp32 nn.LSTM": runner(lstm), "torch int8 dynamic": runner(int8)}


def export_onnx(model: RnntModel, frames: int, folder: Path) -> tuple[Path, Path] | None:
    """The encoder as fp32 ONNX (opset 17, native LSTM ops) and its int8 dynamic twin."""
    if not all(available(p) for p in ("torch", "onnx", "onnxruntime")):
        return None
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    torch.manual_seed(0)
    n_in, hidden, layers, bidirectional = _shape(model)
    lstm = torch.nn.LSTM(n_in, hidden, num_layers=layers, bidirectional=bidirectional).eval()
    fp32, int8 = folder / "encoder.onnx", folder / "encoder.int8.onnx"
    torch.onnx.export(lstm, (torch.randn(frames, 1, n_in),), str(fp32), dynamo=False,
                      opset_version=17, input_names=["x"], output_names=["y", "h", "c"])
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
    return fp32, int8


def ort_runs(onnx_files: tuple[Path, Path] | None, model: RnntModel, frames: int,
             threads: int) -> dict[str, Callable[[], object]]:
    """ONNX Runtime sessions of the exported encoder, ``threads`` intra-op threads."""
    if onnx_files is None:
        return {}
    import onnxruntime as ort

    x = np.random.default_rng(0).standard_normal((frames, 1, _shape(model)[0]))
    feed = {"x": x.astype(np.float32)}
    runs = {}
    for name, path in zip(("ONNX Runtime fp32", "ONNX Runtime int8 dynamic"), onnx_files,
                          strict=True):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        runs[name] = lambda s=session: s.run(None, feed)
    return runs
