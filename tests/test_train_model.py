"""The PyTorch training models against the converter's independent NumPy float model."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from int4rt.model.config import load_config  # noqa: E402
from int4rt_convert.float_model import float_model  # noqa: E402
from int4rt_convert.layout import expected_tensors  # noqa: E402
from int4rt_train.model import CharLm, Transducer  # noqa: E402


def _tensors(module: torch.nn.Module) -> dict[str, np.ndarray]:
    return {name: value.detach().numpy().copy() for name, value in module.state_dict().items()}


@pytest.mark.parametrize("mode", ["additive", "multiplicative"])
def test_transducer_matches_converter_float_model(mode: str) -> None:
    from dataclasses import replace
    config = load_config("configs/tiny.json")
    config = replace(config, joint=replace(config.joint, mode=mode))
    torch.manual_seed(1)
    model = Transducer(config).eval()
    dim = config.frontend.feature_dim
    model.frontend.cmvn_mean.copy_(torch.randn(dim))
    model.frontend.cmvn_std.copy_(torch.rand(dim) + 0.5)
    tensors = _tensors(model)
    specs = expected_tensors(config)
    assert set(tensors) == {name for name in specs if not name.endswith(("_clip", "_scale"))
                            and "act_clip_" not in name}
    for name, value in tensors.items():
        assert value.shape == specs[name].shape, name
    reference = float_model(config, tensors, {}, (tensors["frontend.cmvn_mean"],
                                                  tensors["frontend.cmvn_std"]))

    gen = torch.Generator().manual_seed(2)
    lengths = torch.tensor([13, 8])   # odd length: the stacked tail is zero-padded
    features = torch.randn(2, 13, dim, generator=gen) * 3
    labels = torch.tensor([[3, 5, 7], [4, 4, 0]])
    log_probs, enc_lengths = model(features, lengths, labels)
    assert enc_lengths.tolist() == [7, 4]
    for row, count in enumerate((3, 2)):
        frames = features[row, :lengths[row]].numpy()
        enc = reference.encode(frames)
        expect = reference.joint(enc, reference.predict(labels[row, :count].tolist()))
        got = log_probs[row, :enc_lengths[row], :count + 1].detach().numpy()
        np.testing.assert_allclose(got, expect, rtol=0, atol=2e-5)
        assert model.greedy(features[row:row + 1, :lengths[row]], lengths[row:row + 1],
                            max_symbols=3) == [reference.greedy_labels(enc, max_symbols=3)]


def test_char_lm_matches_converter_float_model() -> None:
    config = load_config("configs/lm-tiny.json")
    torch.manual_seed(3)
    model = CharLm(config).eval()
    tensors = _tensors(model)
    assert set(tensors) <= set(expected_tensors(config))
    ids = [3, 6, 1, 9, 4]
    logits = model(torch.tensor([[0, *ids]]))
    expect = float_model(config, tensors, {}, None).log_probs(ids)
    np.testing.assert_allclose(logits.log_softmax(-1)[0].detach().numpy(), expect,
                               rtol=0, atol=2e-5)
