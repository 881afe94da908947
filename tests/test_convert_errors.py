"""Bad checkpoints: one clear error each, through the API and the CLI, and no file left behind."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import int4rt_convert.pipeline
from int4rt import Int4rtError
from int4rt.cli import main
from int4rt_convert import ConvertError, ConvertOptions, convert

torch = pytest.importorskip("torch")
from test_convert import TINY, TinyRnnt  # noqa: E402  (needs torch)


class NotATensor:
    """A custom object: a checkpoint holding it can only be read by arbitrary unpickling."""

    def __init__(self) -> None:
        self.weight = torch.zeros(3)


@pytest.fixture(scope="module")
def good() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return TinyRnnt().state_dict()


def _with(state: dict, **changes: object) -> dict:
    out = dict(state)
    for name, value in changes.items():
        name = name.replace("__", ".")
        if value is None:
            del out[name]
        else:
            out[name] = value
    return out


def _nan(state: dict, name: str, value: float) -> dict:
    tensor = state[name].clone()
    tensor.view(-1)[5] = value
    return {**state, name: tensor}


CASES = {
    "missing": (lambda s: _with(s, encoder__lstm__weight_hh_l1_reverse=None),
                "missing tensor 'encoder.lstm.weight_hh_l1_reverse'"),
    "shape": (lambda s: _with(s, joint__out__weight=torch.zeros(12, 15)),
              "tensor 'joint.out.weight' has shape [12, 15] in the checkpoint; the config "
              "expects [11, 15]"),
    "nan": (lambda s: _nan(s, "predictor.lstm.weight_ih_l0", float("nan")),
            "tensor 'predictor.lstm.weight_ih_l0' has 1 non-finite values (NaN or inf)"),
    "inf": (lambda s: _nan(s, "joint.enc.bias", float("-inf")),
            "tensor 'joint.enc.bias' has 1 non-finite values"),
    "unknown": (lambda s: _with(s, encoder__extra__weight=torch.zeros(2)),
                "unknown tensor 'encoder.extra.weight'"),
    "pickle": (lambda s: {**s, "custom": NotATensor()},
               "can only be read by unpickling arbitrary Python objects (it holds "
               "test_convert_errors.NotATensor)"),
}


def _write(tmp_path: Path, case: str, good: dict) -> Path:
    path = tmp_path / "in" / f"{case}.pt"
    path.parent.mkdir()
    torch.save(CASES[case][0](good), path)
    return path


@pytest.mark.parametrize("case", list(CASES))
def test_bad_checkpoint_api(tmp_path, good, case):
    checkpoint = _write(tmp_path, case, good)
    out = tmp_path / "out" / "m.safetensors"
    out.parent.mkdir()
    with pytest.raises(ConvertError) as caught:
        convert(ConvertOptions(checkpoint, TINY, out))
    assert isinstance(caught.value, Int4rtError)
    assert CASES[case][1] in str(caught.value)
    assert os.listdir(out.parent) == []


@pytest.mark.parametrize("case", list(CASES))
def test_bad_checkpoint_cli(tmp_path, capsys, good, case):
    checkpoint = _write(tmp_path, case, good)
    out = tmp_path / "m.safetensors"
    assert main(["convert", str(checkpoint), "--config", str(TINY), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("int4rt: error: ") and err.count("\n") == 1
    assert CASES[case][1] in err
    assert not out.exists() and not (tmp_path / "m.report.json").exists()


def test_renamed_tensor_errors_name_both_names(tmp_path, good):
    state = dict(good)
    state["dec.emb"] = state.pop("predictor.embedding.weight")[:, :5]
    torch.save(state, tmp_path / "c.pt")
    (tmp_path / "map.json").write_text(json.dumps({
        "int4rt_mapping": 1, "rename": [{"from": "dec.emb", "to": "predictor.embedding.weight"}]}))
    with pytest.raises(ConvertError, match=r"tensor 'predictor.embedding.weight' \(checkpoint "
                                           r"name 'dec.emb'\) has shape \[11, 5\]"):
        convert(ConvertOptions(tmp_path / "c.pt", TINY, tmp_path / "m.safetensors",
                               mapping=tmp_path / "map.json"))


@pytest.mark.parametrize(("content", "message"), [
    (b"not a checkpoint", "cannot read checkpoint"),
    (None, "no such file"),
])
def test_unreadable_files(tmp_path, content, message):
    path = tmp_path / "c.pt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConvertError, match=message):
        convert(ConvertOptions(path, TINY, tmp_path / "m.safetensors"))
    assert sorted(os.listdir(tmp_path)) == (["c.pt"] if content else [])


def test_npz_with_objects_and_unknown_suffix(tmp_path):
    np.savez(tmp_path / "c.npz", w=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ConvertError, match="can only be read by unpickling"):
        convert(ConvertOptions(tmp_path / "c.npz", TINY, tmp_path / "m.safetensors"))
    (tmp_path / "c.ckpt").write_bytes(b"x")
    with pytest.raises(ConvertError, match=r"unknown file type '\.ckpt'"):
        convert(ConvertOptions(tmp_path / "c.ckpt", TINY, tmp_path / "m.safetensors"))


def test_failure_after_writing_started_leaves_nothing(tmp_path, good, monkeypatch):
    torch.save(good, tmp_path / "c.pt")
    np.save(tmp_path / "x.npy", np.zeros((10, 120), np.float32))

    def fail(*_args: object) -> None:
        raise ConvertError("disk full (simulated)")

    monkeypatch.setattr(int4rt_convert.pipeline, "write_report", fail)
    with pytest.raises(ConvertError, match="simulated"):
        convert(ConvertOptions(tmp_path / "c.pt", TINY, tmp_path / "m.safetensors",
                               calibration=tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["c.pt", "x.npy"]


def test_output_must_not_be_the_checkpoint(tmp_path, good):
    torch.save(good, tmp_path / "c.pt")
    with pytest.raises(ConvertError, match="is the checkpoint"):
        convert(ConvertOptions(tmp_path / "c.pt", TINY, tmp_path / "c.pt"))
    with pytest.raises(ConvertError, match="no folder"):
        convert(ConvertOptions(tmp_path / "c.pt", TINY, tmp_path / "nope" / "m.safetensors"))


def test_cli_argument_errors(tmp_path, capsys):
    for argv, message in (
            (["convert", "--config", "c.json", "-o", "m"], "give a CHECKPOINT to convert"),
            (["convert", "c.pt", "-o", "m"], "CHECKPOINT needs --config CONFIG and -o MODEL"),
            (["convert", "c.pt", "--random", "1", "--config", "c", "-o", "m"], "not both")):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("int4rt: error: ") and message in err and err.count("\n") == 1
