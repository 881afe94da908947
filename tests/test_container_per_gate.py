"""Granularity ``per_gate`` (docs/FORMAT.md §2.4, §3.3, §7): one (multiplier, shift) per block
of rows in the file, expanded to per-row arrays at load time, so every engine integer equals
that of the per-row file holding the same pairs repeated.

The per-gate files here are written with the safetensors library from a per-row file, not by
``save_model``, so the format is checked independently of int4rt's writer.
"""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest

from int4rt import FormatError
from int4rt.cli import main
from int4rt.layers import QLinear
from int4rt.model.container import load_model, load_model_bytes, save_model
from int4rt.trace import Trace
from tests.test_container import (
    _bytes,
    _meta_edit,
    _model,
    _tensor_edit,
    assert_same,
    join_file,
    split_file,
)


def _layer_meta(meta: dict, prefix: str) -> dict:
    """The metadata object of the fully connected layer whose tensors are ``prefix.*``."""
    match = re.fullmatch(r"(encoder|predictor|lm)\.layer(\d+)\.(.+)", prefix)
    node = meta[match[1]]["layers"][int(match[2])] if match else meta
    for key in (match[3] if match else prefix).split("."):
        node = node[key]
    return node


def _prefixes(meta: dict) -> list[str]:
    """Tensor prefixes of every fully connected layer of a tiny RNN-T or LM."""
    if "lm" in meta:
        return [f"lm.layer{i}.{fc}" for i in range(len(meta["lm"]["layers"]))
                for fc in ("input_fc", "recurrent_fc")] + ["lm.out"]
    return ([f"encoder.layer{i}.{d}.{fc}" for i, layer in enumerate(meta["encoder"]["layers"])
             for d in ("fwd", "bwd") if d in layer for fc in ("input_fc", "recurrent_fc")]
            + [f"predictor.layer{i}.{fc}" for i in range(len(meta["predictor"]["layers"]))
               for fc in ("input_fc", "recurrent_fc")]
            + ["joint.enc_proj", "joint.pred_proj", "joint.out"])


def _blocks(prefix: str) -> int:
    return 1 if prefix.startswith("joint.") or prefix == "lm.out" else 4


def pair_of_files(data: bytes) -> tuple[bytes, bytes]:
    """(per-row file, per-gate file) holding the same pairs: every layer's block takes the
    (multiplier, shift) of the block's first row; 4 blocks for LSTM matrices, 1 otherwise.
    """
    meta, tensors = split_file(data)
    gate_meta, gate_tensors = json.loads(json.dumps(meta)), dict(tensors)
    for prefix in _prefixes(meta):
        blocks = _blocks(prefix)
        for part in ("multiplier", "shift"):
            rows = tensors[f"{prefix}.{part}"]
            firsts = rows[:: len(rows) // blocks].copy()
            tensors[f"{prefix}.{part}"] = np.repeat(firsts, len(rows) // blocks)
            gate_tensors[f"{prefix}.{part}"] = firsts
        layer = _layer_meta(gate_meta, prefix)
        items = list(layer.items())
        layer.clear()
        for key, value in items:
            layer[key] = "per_gate" if key == "granularity" else value
            if key == "granularity":
                layer["blocks"] = blocks
    gate_meta["format_version"] = 3
    return join_file(meta, tensors), join_file(gate_meta, gate_tensors)


@pytest.fixture(scope="module")
def rnnt_pair(tmp_path_factory) -> tuple[bytes, bytes]:
    return pair_of_files(_bytes(_model(), tmp_path_factory.mktemp("m")))


def _without_blocks(model):
    """``model`` with every QLinear's ``blocks`` set to 0 (per row), for comparisons."""
    if isinstance(model, QLinear):
        return dataclasses.replace(model, blocks=0)
    if dataclasses.is_dataclass(model):
        return dataclasses.replace(model, **{f.name: _without_blocks(getattr(model, f.name))
                                             for f in dataclasses.fields(model) if f.init})
    if isinstance(model, tuple):
        return tuple(_without_blocks(item) for item in model)
    return model


def test_per_gate_file_runs_exactly_as_the_per_row_file(rnnt_pair):
    per_row, per_gate = (load_model_bytes(data) for data in rnnt_pair)
    blocks = {name: layer.blocks for name, layer, _ in per_gate.linear_layers()}
    assert blocks["encoder.layer0.fwd.input_fc"] == 4 and blocks["joint.out"] == 1
    assert all(layer.blocks == 0 for _, layer, _ in per_row.linear_layers())
    gate_layer = dict((n, layer) for n, layer, _ in per_gate.linear_layers())
    expanded = gate_layer["encoder.layer1.bwd.recurrent_fc"].multiplier
    assert expanded.shape == (64,) and len(set(expanded[:16])) == 1
    assert_same(per_row, _without_blocks(per_gate))
    rng = np.random.default_rng(5)
    features = rng.normal(size=(23, 120)).astype(np.float32)
    runs = [(per_row, "numba"), (per_gate, "numba"), (per_gate, "numpy")]
    traces = [Trace() for _ in runs]
    outputs = [model.lattice(features, [3, 4, 1], backend=backend, trace=trace)
               for (model, backend), trace in zip(runs, traces, strict=True)]
    assert outputs[0].shape == (12, 4, 11)
    assert len(set(outputs[0].ravel().tolist())) > 100
    for output, trace in zip(outputs[1:], traces[1:], strict=True):
        np.testing.assert_array_equal(output, outputs[0])
        assert list(trace) == list(traces[0]) and len(trace) > 10
        for name, tensor in trace.items():
            np.testing.assert_array_equal(tensor, traces[0][name], err_msg=name)


def test_lm_per_gate_file_runs_exactly_as_the_per_row_file(tmp_path):
    per_row, per_gate = (load_model_bytes(data) for data in
                         pair_of_files(_bytes(_model("lm-tiny"), tmp_path)))
    assert per_gate.out.blocks == 1 and per_gate.layers[0].input_fc.blocks == 4
    ids = np.array([3, 5, 1, 7, 0, 9])
    traces = [Trace(), Trace()]
    outputs = [model.sequence(ids, trace=trace)
               for model, trace in zip((per_row, per_gate), traces, strict=True)]
    np.testing.assert_array_equal(outputs[0], outputs[1])
    for name, tensor in traces[1].items():
        np.testing.assert_array_equal(tensor, traces[0][name], err_msg=name)


def test_save_writes_per_gate_compactly_and_reads_it_back(tmp_path, rnnt_pair):
    model = load_model_bytes(rnnt_pair[1])
    path = tmp_path / "gate.safetensors"
    save_model(model, path)
    meta, tensors = split_file(path.read_bytes())
    assert meta["format_version"] == 3
    layer = meta["encoder"]["layers"][0]["fwd"]["recurrent_fc"]
    assert list(layer) == ["weight_bits", "granularity", "blocks", "shape", "bias"]
    assert (layer["granularity"], layer["blocks"]) == ("per_gate", 4)
    assert tensors["encoder.layer0.fwd.recurrent_fc.multiplier"].shape == (4,)
    assert tensors["joint.out.shift"].shape == (1,)
    np.testing.assert_array_equal(tensors["joint.out.multiplier"],
                                  split_file(rnnt_pair[1])[1]["joint.out.multiplier"])
    assert_same(model, load_model(path))
    per_row = tmp_path / "row.safetensors"
    save_model(load_model_bytes(rnnt_pair[0]), per_row)
    assert split_file(per_row.read_bytes())[0]["format_version"] == 1
    # 10 LSTM matrices of 64 rows (4 blocks), joint layers of 15, 15 and 11 rows (1 block)
    saved = 8 * (10 * 64 + 15 + 15 + 11) - 8 * (10 * 4 + 3)
    assert saved == 5104
    header_growth = saved - (per_row.stat().st_size - path.stat().st_size)
    assert 0 < header_growth <= 8 * 20  # "per_gate", "blocks": G in 17 layers, 8-byte padding


def test_save_refuses_pairs_that_differ_within_a_block(tmp_path):
    model = _model()
    layer = model.joint.enc_proj
    with pytest.raises(FormatError, match=r"joint\.enc_proj\.multiplier: differs within row "
                                          r"block 0 of 3; per_gate needs one value per block"):
        save_model(_replace_layer(model, dataclasses.replace(layer, blocks=3)),
                   tmp_path / "x.safetensors")
    with pytest.raises(FormatError, match=r"joint\.enc_proj\.blocks: 2 blocks do not divide "
                                          r"the 15 rows"):
        save_model(_replace_layer(model, dataclasses.replace(layer, blocks=2)),
                   tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()


def _replace_layer(model, enc_proj: QLinear):
    return dataclasses.replace(model, joint=dataclasses.replace(model.joint, enc_proj=enc_proj))


REC = "encoder.layer1.bwd.recurrent_fc"
DEFECTS = [
    ("per_gate in a version 1 file", _meta_edit(lambda m: m.update(format_version=1)),
     "metadata encoder.layers[0].fwd.input_fc.granularity: 'per_gate' needs format_version 3, "
     "the file has 1"),
    ("per_gate in a version 2 file", _meta_edit(lambda m: m.update(format_version=2)),
     "'per_gate' needs format_version 3, the file has 2"),
    ("version 4", _meta_edit(lambda m: m.update(format_version=4)),
     "metadata format_version: file has version 4, this int4rt reads versions 1, 2 and 3"),
    ("blocks missing", _meta_edit(lambda m: m["joint"]["out"].pop("blocks")),
     "metadata joint.out.blocks: missing"),
    ("blocks zero", _meta_edit(lambda m: m["joint"]["out"].update(blocks=0)),
     "metadata joint.out.blocks: expected an integer in [1, 2147483647], got 0"),
    ("blocks not an integer", _meta_edit(lambda m: m["joint"]["out"].update(blocks=1.0)),
     "metadata joint.out.blocks: expected an integer"),
    ("blocks do not divide the rows", _meta_edit(
        lambda m: m["encoder"]["layers"][1]["bwd"]["recurrent_fc"].update(blocks=5)),
     "metadata encoder.layers[1].bwd.recurrent_fc.blocks: 5 blocks do not divide the 64 rows"),
    ("blocks with per_row", _meta_edit(lambda m: m["joint"]["out"].update(granularity="per_row")),
     "metadata joint.out.blocks: unknown key"),
    ("unknown granularity",
     _meta_edit(lambda m: m["joint"]["out"].update(granularity="per_tensor")),
     'metadata joint.out.granularity: expected one of \'per_row\', \'per_gate\', got "per_tensor"'),
    ("per-row arrays in a per_gate layer", _tensor_edit(lambda t: t.update(
        {f"{REC}.multiplier": np.repeat(t[f"{REC}.multiplier"], 16)})),
     f"tensor '{REC}.multiplier' has shape [64], metadata says [4]"),
    ("blocks disagree with the arrays", _meta_edit(
        lambda m: m["encoder"]["layers"][1]["bwd"]["recurrent_fc"].update(blocks=2)),
     f"tensor '{REC}.multiplier' has shape [4], metadata says [2]"),
    ("shift shape", _tensor_edit(lambda t: t.update({f"{REC}.shift": t[f"{REC}.shift"][:3]})),
     f"tensor '{REC}.shift' has shape [3], metadata says [4]"),
    ("2-D pairs", _tensor_edit(lambda t: t.update(
        {f"{REC}.multiplier": t[f"{REC}.multiplier"].reshape(2, 2)})),
     f"tensor '{REC}.multiplier' has shape [2, 2], metadata says [4]"),
    ("pairs dtype", _tensor_edit(lambda t: t.update(
        {f"{REC}.shift": t[f"{REC}.shift"].astype(np.int64)})),
     f"tensor '{REC}.shift' has dtype I64, expected I32"),
    ("shift range", _tensor_edit(lambda t: t[f"{REC}.shift"].__setitem__(2, 31)),
     f"{REC}.shift: entry outside [-31, 30]"),
    ("negative multiplier", _tensor_edit(lambda t: t["joint.out.multiplier"].__setitem__(0, -1)),
     "joint.out.multiplier: negative entry"),
    ("missing shift", _tensor_edit(lambda t: t.pop("joint.out.shift")),
     "missing tensor 'joint.out.shift'"),
]


@pytest.mark.parametrize(("mutate", "message"), [d[1:] for d in DEFECTS],
                         ids=[d[0] for d in DEFECTS])
def test_per_gate_defect_is_one_format_error(rnnt_pair, mutate, message):
    with pytest.raises(FormatError) as info:
        load_model_bytes(mutate(rnnt_pair[1]))
    assert message in str(info.value)


def test_inspect_shows_granularity_and_bytes(tmp_path, rnnt_pair, capsys):
    paths = []
    for name, data in zip(("row", "gate"), rnnt_pair, strict=True):
        paths.append(tmp_path / f"{name}.safetensors")
        paths[-1].write_bytes(data)
    reports = []
    for path in paths:
        assert main(["inspect", str(path), "--json"]) == 0
        reports.append(json.loads(capsys.readouterr().out))
    row, gate = ({entry["name"]: entry for entry in report["layers"]} for report in reports)
    assert row[REC]["granularity"] == "per_row" and row[REC]["requant_pairs"] == 64
    assert gate[REC]["granularity"] == "per_gate" and gate[REC]["requant_pairs"] == 4
    assert (row[REC]["requant_bytes"], gate[REC]["requant_bytes"]) == (64 * 8, 4 * 8)
    assert row[REC]["stored_bytes"] - gate[REC]["stored_bytes"] == 60 * 8
    for report, path in zip(reports, paths, strict=True):
        kinds = report["bytes_by_kind"]
        assert report["header_bytes"] + sum(kinds.values()) == path.stat().st_size
        assert kinds["requant"] == sum(e["requant_bytes"] for e in report["layers"])
    assert reports[1]["bytes_by_kind"]["requant"] == 8 * (4 * 10 + 3)
    assert reports[0]["parameters"] == reports[1]["parameters"]
    assert main(["inspect", str(paths[1])]) == 0
    text = capsys.readouterr().out
    assert re.search(rf"{re.escape(REC)} +64x16 +4 +no +4 gate +", text)
    assert re.search(r"joint\.out +11x15 +4 +yes +1 gate +", text)
    assert "requant 344," in text
