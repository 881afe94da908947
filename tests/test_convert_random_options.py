"""``convert --random`` honours the bit widths, overrides and cell clip of its command line
and rejects checkpoint-only options; ``inspect --json`` reports every cell and joint constant
(issue 12: both were silently ignored or omitted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from int4rt.cli import main
from int4rt.model.container import load_model

ROOT = Path(__file__).parents[1]
TINY = str(ROOT / "configs" / "tiny.json")


def _random(tmp_path: Path, name: str, *extra: str) -> tuple[int, Path]:
    out = tmp_path / f"{name}.safetensors"
    return main(["convert", "--random", "0", "--config", TINY, "-o", str(out), *extra]), out


def test_bit_widths_overrides_and_cell_clip_change_the_model(tmp_path):
    status, plain = _random(tmp_path, "plain")
    assert status == 0
    base = load_model(plain)
    assert base.encoder.layers[0].cells[0].input_fc.weight_bits == 4
    assert _random(tmp_path, "w8", "--weight-bits", "8")[0] == 0
    w8 = load_model(tmp_path / "w8.safetensors")
    assert {cell.input_fc.weight_bits for layer in w8.encoder.layers for cell in layer.cells} \
        == {8}
    assert w8.joint.out.weight_bits == 8
    assert _random(tmp_path, "a8", "--activation-bits", "8")[0] == 0
    a8 = load_model(tmp_path / "a8.safetensors")
    assert a8.encoder.layers[0].cells[0].hidden.bits == 8 and a8.joint.hidden.bits == 8
    assert _random(tmp_path, "ov", "--override", "encoder.layer1=w8,a8")[0] == 0
    ov = load_model(tmp_path / "ov.safetensors")
    assert ov.encoder.layers[1].cells[0].input_fc.weight_bits == 8
    assert ov.encoder.layers[0].cells[0].input_fc.weight_bits == 4
    assert ov.encoder.layers[1].cells[0].hidden.bits == 8
    assert _random(tmp_path, "clip", "--cell-clip", "2.5")[0] == 0
    clip = load_model(tmp_path / "clip.safetensors")
    # tiny.json: cell scale 2^-11, so 2.5 V is 2.5 * 2048 = 5120 codes
    assert {cell.cell_clip for layer in clip.encoder.layers for cell in layer.cells} == {5120}
    assert clip.predictor.layers[0].cell_clip == 5120 and base.predictor.layers[0].cell_clip == 0
    files = [tmp_path / f"{n}.safetensors" for n in ("plain", "w8", "a8", "ov", "clip")]
    assert len({f.read_bytes() for f in files}) == 5


def test_builtin_config_name_takes_the_same_options_as_its_file(tmp_path, monkeypatch):
    """``--config tiny`` (the packaged copy) with bit-width options writes the same bytes as
    the checkout's configs/tiny.json."""
    assert _random(tmp_path, "file", "--weight-bits", "8", "--cell-clip", "2.5")[0] == 0
    monkeypatch.chdir(tmp_path)  # no file called "tiny" here
    out = tmp_path / "named.safetensors"
    assert main(["convert", "--random", "0", "--config", "tiny", "-o", str(out),
                 "--weight-bits", "8", "--cell-clip", "2.5"]) == 0
    assert out.read_bytes() == (tmp_path / "file.safetensors").read_bytes()
    assert load_model(out).joint.out.weight_bits == 8


@pytest.mark.parametrize("extra, flag", [
    (["--granularity", "per_gate"], "--granularity"), (["--calib", "x"], "--calib"),
    (["--weight-scale", "max"], "--weight-scale"), (["--act-range", "minmax"], "--act-range"),
    (["--cell-scale", "config"], "--cell-scale"), (["--plot"], "--plot"),
])
def test_checkpoint_only_options_are_rejected(tmp_path, capsys, extra, flag):
    status, out = _random(tmp_path, "x", *extra)
    assert status == 2 and not out.exists()
    assert f"{flag} applies only to converting a trained CHECKPOINT" in capsys.readouterr().err


def test_a_cell_clip_below_one_cell_step_is_rejected(tmp_path, capsys):
    # 2^-11 = 0.000488...: 0.0004 truncates to 0 codes, which would mean "no clip"
    status, out = _random(tmp_path, "small", "--cell-clip", "0.0004")
    assert status == 2 and not out.exists()
    assert "smaller than one cell step" in capsys.readouterr().err
    assert _random(tmp_path, "one", "--cell-clip", "0.00049")[0] == 0
    assert load_model(tmp_path / "one.safetensors").predictor.layers[0].cell_clip == 1


def test_inspect_json_reports_cells_joint_and_stacking(tmp_path, capsys):
    status, path = _random(tmp_path, "m", "--cell-clip", "1")
    assert status == 0
    capsys.readouterr()
    assert main(["inspect", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    model = load_model(path)
    cells = {c["name"]: c for c in report["cells"]}
    assert set(cells) == {"encoder.layer0.fwd", "encoder.layer0.bwd", "encoder.layer1.fwd",
                          "encoder.layer1.bwd", "predictor.layer0"}
    cell = model.encoder.layers[1].cells[1]
    entry = cells["encoder.layer1.bwd"]
    assert (entry["hidden_multiplier"], entry["hidden_shift"]) == (cell.hidden_multiplier,
                                                                   cell.hidden_shift)
    assert entry["cell_scale_log2"] == -11 and entry["cell_scale"] == 2.0**-11
    assert entry["cell_clip"] == 2048 and entry["cell_clip_value"] == 1.0
    assert [e["stack"] for e in report["encoder_layers"]] == [2, 1]  # tiny.json "stack"
    joint = report["joint"]
    assert joint["mode"] == "multiplicative"
    assert (joint["combine_multiplier"], joint["combine_shift"]) == (
        model.joint.combine_multiplier, model.joint.combine_shift)
    assert (joint["hidden_multiplier"], joint["hidden_shift"]) == (
        model.joint.hidden_multiplier, model.joint.hidden_shift)
    assert main(["inspect", str(path)]) == 0
    text = capsys.readouterr().out
    assert "encoder stacking  layer0 x2, layer1 x1" in text and "(M_c, s_c)" in text
