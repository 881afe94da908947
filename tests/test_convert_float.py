"""The converter's float NumPy forward against PyTorch nn.LSTM / nn.Linear / nn.Embedding."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from int4rt.model.config import parse_config
from int4rt_convert.float_model import FloatLm, FloatRnnt, Linear, Lstm, float_model
from int4rt_convert.layout import Tensors

torch = pytest.importorskip("torch")
nn = torch.nn
CONFIGS = Path(__file__).parents[1] / "configs"
TOL = 1e-5  # PyTorch computes in float32, the float model in float64


def _lstm_cells(module: nn.LSTM, layer: int) -> list[Lstm]:
    cells = []
    for suffix in ("", "_reverse")[:2 if module.bidirectional else 1]:
        w_ih, w_hh, b_ih, b_hh = (getattr(module, f"{name}_l{layer}{suffix}").detach().double()
                                  .numpy() for name in ("weight_ih", "weight_hh", "bias_ih",
                                                        "bias_hh"))
        cells.append(Lstm(w_ih, w_hh, b_ih + b_hh))
    return cells


@pytest.mark.parametrize("bidirectional", [False, True])
def test_lstm_matches_torch(bidirectional):
    torch.manual_seed(0)
    module = nn.LSTM(7, 5, num_layers=2, bidirectional=bidirectional, batch_first=True)
    x = torch.randn(1, 23, 7)
    with torch.no_grad():
        expected, (h_n, c_n) = module(x)
    values = x[0].double().numpy()
    finals = []
    for layer in range(2):
        outputs = []
        for direction, cell in enumerate(_lstm_cells(module, layer)):
            h, c = cell.run(values, reverse=direction == 1)
            outputs.append(h)
            last = -1 if direction == 0 else 0  # the backward direction ends at t = 0
            finals.append((h[last], c[last]))
        values = np.concatenate(outputs, axis=1)
    np.testing.assert_allclose(values, expected[0].double().numpy(), atol=TOL)
    np.testing.assert_allclose(np.stack([h for h, _ in finals]), h_n[:, 0].double().numpy(),
                               atol=TOL)
    np.testing.assert_allclose(np.stack([c for _, c in finals]), c_n[:, 0].double().numpy(),
                               atol=TOL)


def test_linear_matches_torch():
    torch.manual_seed(1)
    module = nn.Linear(9, 4)
    x = torch.randn(6, 9)
    with torch.no_grad():
        expected = module(x).double().numpy()
    layer = Linear(module.weight.detach().double().numpy(), module.bias.detach().double().numpy())
    np.testing.assert_allclose(layer(x.double().numpy()), expected, atol=TOL)


def _tensors(module: nn.Module, config) -> Tensors:
    return Tensors({name: (name, value.detach().double().numpy())
                    for name, value in module.state_dict().items()}, config)


@pytest.mark.parametrize("mode", ["additive", "multiplicative"])
def test_rnnt_forward_matches_torch(mode):
    data = json.loads((CONFIGS / "tiny.json").read_text())
    data["joint"]["mode"] = mode
    data["frontend"]["cmvn"] = False
    data["encoder"]["stack"] = [2, 3]  # stacking before a later layer too
    config = parse_config(data)
    torch.manual_seed(2)
    root = nn.Module()
    root.encoder = nn.Module()
    root.encoder.lstm = nn.LSTM(240, 16, num_layers=1, bidirectional=True, batch_first=True)
    layer1 = nn.LSTM(96, 16, bidirectional=True, batch_first=True)
    for name, value in layer1.named_parameters():
        root.encoder.lstm.register_parameter(name.replace("_l0", "_l1"), value)
    root.predictor = nn.Module()
    root.predictor.embedding = nn.Embedding(11, 8)
    root.predictor.lstm = nn.LSTM(8, 16, batch_first=True)
    root.joint = nn.Module()
    root.joint.enc, root.joint.pred, root.joint.out = (nn.Linear(32, 15), nn.Linear(16, 15),
                                                       nn.Linear(15, 11))
    model = float_model(config, _tensors(root, config), {}, None)
    assert isinstance(model, FloatRnnt)
    features = torch.randn(31, 120)
    labels = [3, 4, 7]
    with torch.no_grad():
        x = torch.cat([features, torch.zeros(1, 120)]).reshape(1, 16, 240)
        x, _ = root.encoder.lstm(x)
        x = torch.cat([x[0], torch.zeros(2, 32)]).reshape(1, 6, 96)
        enc, _ = layer1(x)
        pred, _ = root.predictor.lstm(root.predictor.embedding(torch.tensor([[0, *labels]])))
        e, p = root.joint.enc(enc[0]), root.joint.pred(pred[0])
        pre = e[:, None] + p[None] if mode == "additive" else e[:, None] * p[None]
        expected = torch.log_softmax(root.joint.out(torch.tanh(pre)), dim=-1)
    ours = model.joint(model.encode(features.double().numpy()), model.predict(labels))
    np.testing.assert_allclose(ours, expected.double().numpy(), atol=TOL)


def test_lm_forward_matches_torch():
    config = parse_config(json.loads((CONFIGS / "lm-tiny.json").read_text()))
    torch.manual_seed(3)
    root = nn.Module()
    root.embedding = nn.Embedding(11, 8)
    root.lstm = nn.LSTM(8, 13, num_layers=2, batch_first=True)
    root.out = nn.Linear(13, 11)
    model = float_model(config, _tensors(root, config), {}, None)
    assert isinstance(model, FloatLm)
    ids = [5, 3, 9, 1]
    with torch.no_grad():
        hidden, _ = root.lstm(root.embedding(torch.tensor([[0, *ids]])))
        expected = torch.log_softmax(root.out(hidden[0]), dim=-1).double().numpy()
    np.testing.assert_allclose(model.log_probs(ids), expected, atol=TOL)


def test_greedy_labels_follow_the_argmax():
    """A joint that always prefers label 3: ``max_symbols`` labels on every frame."""
    config = parse_config(json.loads((CONFIGS / "tiny.json").read_text()))
    rng = np.random.default_rng(0)
    zeros = np.zeros  # zero projections: every logit is the output bias
    cell = Lstm(zeros((64, 8)), zeros((64, 16)), None)
    out_bias = zeros(11)
    out_bias[3] = 1.0
    model = FloatRnnt(0, None, (), rng.standard_normal((11, 8)), (cell,),
                      Linear(zeros((15, 32)), None), Linear(zeros((15, 16)), None),
                      Linear(zeros((11, 15)), out_bias), config.joint.mode)
    assert model.greedy_labels(zeros((4, 32)), max_symbols=2) == [3] * 8
