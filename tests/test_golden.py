"""The committed golden vectors (tests/golden, docs/VERIFICATION.md): ``int4rt golden check``
passes on both paths; corruption, edits and version changes fail naming what changed;
``make`` reproduces the committed bytes and refuses to overwrite without --force."""

from __future__ import annotations

import argparse
import json
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from int4rt.errors import Int4rtError
from int4rt.golden import command as cli
from int4rt.golden.store import (
    GOLDEN_FORMAT_VERSION,
    INDEX_FILE,
    MANIFEST_FILE,
    TENSORS_FILE,
    read_index,
    read_set,
    write_index,
    write_set,
)

GOLDEN = Path(__file__).parent / "golden"
EXPECTED_SETS = {
    "arith_requantize", "arith_activations", "arith_activations_worked", "arith_pack_int4",
    "arith_fully_connected", "lstm_tflm", "rnnt_tiny", "rnnt_tiny_mixed", "decode_greedy",
    "decode_beam_fusion",
    *(f"lstm_w{w}_a{a}{'s' if r == 'single' else 'u'}_{r}" for w in (4, 8) for a in (4, 8)
      for r in ("double", "single")),
}


def golden(*argv: str) -> int:
    """``int4rt golden ARGV`` through the module the main CLI wires in."""
    parser = argparse.ArgumentParser(prog="int4rt")
    cli.add_parser(parser.add_subparsers(dest="command"))
    return cli.run(parser.parse_args(["golden", *argv]))


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A private copy of the committed golden data."""
    target = tmp_path / "golden"
    shutil.copytree(GOLDEN, target)
    return target


def test_committed_sets_and_size():
    index = read_index(GOLDEN)
    names = {entry["name"] for entry in index["sets"]}
    assert EXPECTED_SETS <= names
    assert index["golden_format_version"] == GOLDEN_FORMAT_VERSION
    assert index["command"] == "int4rt golden make --out tests/golden --force"
    size = sum(p.stat().st_size for p in GOLDEN.rglob("*") if p.is_file())
    assert size < 3_000_000, f"golden data is {size} bytes"


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_check_passes_on_committed_data(backend, capsys):
    assert golden("check", "--dir", str(GOLDEN), "--backend", backend) == 0
    out = capsys.readouterr().out
    assert "golden check passed" in out
    assert out.count(f" {backend} ") == len(read_index(GOLDEN)["sets"])


def test_golden_files_are_not_git_ignored():
    """The repository ignores *.safetensors; tests/golden/.gitignore must undo that."""
    if shutil.which("git") is None or not (GOLDEN.parents[1] / ".git").exists():
        pytest.skip("not a git checkout")
    files = [str(p.relative_to(GOLDEN.parents[1])) for p in GOLDEN.rglob("*") if p.is_file()]
    proc = subprocess.run(["git", "check-ignore", "--no-index", *files], cwd=GOLDEN.parents[1],
                          capture_output=True, text=True, check=False)
    assert proc.stdout == "", f"git ignores golden files:\n{proc.stdout}"


def _tensor_offset(path: Path, name: str) -> int:
    """File offset of the first data byte of tensor ``name`` in a safetensors file."""
    data = path.read_bytes()
    header_len = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + header_len])
    return 8 + header_len + header[name]["data_offsets"][0]


@pytest.mark.parametrize(("set_name", "tensor"), [
    ("lstm_w4_a4u_double", "lstm.fwd.cell"),
    ("lstm_w4_a4u_double", "input_fc.weight_packed"),
    ("rnnt_tiny", "joint.log_probs"),
    ("arith_requantize", "acc"),
])
def test_flipped_byte_names_the_tensor(copy, capsys, set_name, tensor):
    path = copy / set_name / TENSORS_FILE
    data = bytearray(path.read_bytes())
    data[_tensor_offset(path, tensor) + 1] ^= 0x01
    path.write_bytes(bytes(data))
    assert golden("check", "--dir", str(copy), "--backend", "numpy") == 1
    err = capsys.readouterr().err
    assert f"set {set_name!r}" in err and f"tensor {tensor!r}" in err, err


def test_flipped_model_byte_names_the_file(copy, capsys):
    path = copy / "rnnt_tiny" / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x10
    path.write_bytes(bytes(data))
    assert golden("check", "--dir", str(copy), "--set", "rnnt_tiny") == 1
    assert "model.safetensors does not match its manifest checksum" in capsys.readouterr().err


def _rewrite(root: Path, set_name: str, tensor: str, flat: int, delta: int) -> tuple[int, int]:
    """Change one golden value and re-sign the set, as a bad regeneration would."""
    index = read_index(root)
    entry = next(e for e in index["sets"] if e["name"] == set_name)
    gset = read_set(root, set_name, entry["manifest_sha256"])
    value = gset[tensor].copy()
    original = int(value.flat[flat])
    value.flat[flat] = original + delta
    gset.entry(tensor).value = value
    shutil.rmtree(root / set_name)
    entry["manifest_sha256"] = write_set(root, gset, index["command"])
    write_index(root, index["sets"], index["command"])
    return original + delta, original


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_changed_value_reports_set_tensor_index_expected_got(copy, capsys, backend):
    expected, got = _rewrite(copy, "lstm_w8_a4s_single", "lstm.bwd.gate.f", 13, 1)
    assert golden("check", "--dir", str(copy), "--backend", backend) == 1
    err = capsys.readouterr().err
    assert (f"set 'lstm_w8_a4s_single', backend {backend}" in err
            and "tensor 'lstm.bwd.gate.f' flat index 13 (index [1, 5])" in err
            and f"expected {expected}, got {got}" in err), err


def test_check_stops_at_the_first_mismatch(copy, capsys):
    _rewrite(copy, "arith_activations", "tanh16.tflm", 40000, -1)
    _rewrite(copy, "rnnt_tiny", "joint.logits", 0, 1)
    assert golden("check", "--dir", str(copy)) == 1
    captured = capsys.readouterr()
    assert "tanh16.tflm" in captured.err and "rnnt_tiny" not in captured.out + captured.err


def test_hand_edited_manifest_fails(copy, capsys):
    path = copy / "arith_pack_int4" / MANIFEST_FILE
    path.write_text(path.read_text().replace('"int4rt_version": "', '"int4rt_version": "x'))
    assert golden("check", "--dir", str(copy)) == 1
    assert "manifest.json does not match its checksum" in capsys.readouterr().err


def test_other_format_version_fails(copy, capsys):
    index = json.loads((copy / INDEX_FILE).read_text())
    index["golden_format_version"] = GOLDEN_FORMAT_VERSION + 1
    (copy / INDEX_FILE).write_text(json.dumps(index))
    assert golden("check", "--dir", str(copy)) == 1
    assert f"golden format version {GOLDEN_FORMAT_VERSION + 1}" in capsys.readouterr().err


def test_unexpected_file_fails(copy, capsys):
    (copy / "lstm_tflm" / "notes.txt").write_text("x")
    assert golden("check", "--dir", str(copy), "--set", "lstm_tflm") == 1
    assert "unexpected file notes.txt" in capsys.readouterr().err


def test_check_errors(tmp_path, monkeypatch):
    with pytest.raises(Int4rtError, match="no golden data"):
        golden("check", "--dir", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # outside a checkout, --dir is required
    with pytest.raises(Int4rtError, match=r"no golden data at \./tests/golden: .*pass --dir"):
        golden("check")
    with pytest.raises(Int4rtError, match="no golden set 'nope'"):
        golden("check", "--dir", str(GOLDEN), "--set", "nope")


@pytest.mark.thorough
def test_make_reproduces_committed_data(tmp_path, capsys):
    """A fresh make gives the committed bytes (manifests differ only in the command).

    If this fails while ``check`` passes, generation changed (e.g. random_model): regenerate
    with the documented command and bump the golden format version (VERIFICATION.md §7).
    """
    out = tmp_path / "fresh"
    assert golden("make", "--out", str(out)) == 0
    assert "made" in capsys.readouterr().out
    committed = sorted(p.relative_to(GOLDEN) for p in GOLDEN.rglob("*") if p.is_file())
    assert sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file()) == committed
    for relative in committed:
        fresh, old = (out / relative).read_bytes(), (GOLDEN / relative).read_bytes()
        if relative.name in (MANIFEST_FILE, INDEX_FILE):
            fresh_json, old_json = json.loads(fresh), json.loads(old)
            assert fresh_json.pop("command") == f"int4rt golden make --out {out}"
            old_json.pop("command")
            if relative.name == INDEX_FILE:
                for entry in (*fresh_json["sets"], *old_json["sets"]):
                    entry.pop("manifest_sha256")
            assert fresh_json == old_json, relative
        else:
            assert fresh == old, relative


@pytest.mark.thorough
def test_make_refuses_to_overwrite_without_force(copy):
    with pytest.raises(Int4rtError, match="pass --force"):
        golden("make", "--out", str(copy))
    (copy / "stale_set").mkdir()
    (copy / "stale_set" / MANIFEST_FILE).write_text("{}")
    index = json.loads((copy / INDEX_FILE).read_text())
    index["sets"].append({"name": "stale_set", "kind": "lstm", "manifest_sha256": ""})
    (copy / INDEX_FILE).write_text(json.dumps(index))
    (copy / "unrelated.txt").write_text("kept")
    assert golden("make", "--out", str(copy), "--force") == 0
    assert not (copy / "stale_set").exists() and (copy / "unrelated.txt").exists()
    assert golden("check", "--dir", str(copy), "--backend", "numpy") == 0


@pytest.mark.thorough
def test_make_refuses_a_foreign_directory(tmp_path):
    (tmp_path / "rnnt_tiny").mkdir()
    (tmp_path / "rnnt_tiny" / "mine.txt").write_text("not golden")
    with pytest.raises(Int4rtError, match="not a golden set"):
        golden("make", "--out", str(tmp_path), "--force")
    assert (tmp_path / "rnnt_tiny" / "mine.txt").exists()


def test_sets_cover_the_issue():
    """What each set holds: traces by name, roles, every combination, the tflm table."""
    index = read_index(GOLDEN)
    sets = {e["name"]: read_set(GOLDEN, e["name"], e["manifest_sha256"]) for e in index["sets"]}
    lattice = sets["rnnt_tiny"]
    names = [t.name for t in lattice.tensors]
    for name in ("encoder.input", "encoder.layer0.stacked", "encoder.layer1.bwd.gate.g",
                 "predictor.layer0.cell", "joint.enc_proj", "joint.tanh", "joint.log_probs"):
        assert name in names
    assert lattice.entry("joint.log_probs").role == "output"
    assert "model.safetensors" in lattice.files
    tflm = sets["lstm_tflm"]
    assert tflm.params["profile"] == "tflm" and tflm.params["cell"]["input"]["zero_point"] == -128
    from int4rt.arith import TFLM_SIGMOID_TABLE

    np.testing.assert_array_equal(tflm["tables.sigmoid"], TFLM_SIGMOID_TABLE)
    requant = sets["arith_requantize"]
    assert set(np.unique(requant["shift"])) == set(range(-31, 31))
    assert (requant["acc"] == -(1 << 31)).any() and (requant["multiplier"] == -(1 << 31)).any()
    assert sets["arith_activations"]["x"].size == 65536
    beam = sets["decode_beam_fusion"]
    options = beam.params["options"]
    assert options["lm_weight"] > 0 and options["source_lm_weight"] > 0
    assert {"lm.safetensors", "source_lm.safetensors", "result.json"} <= set(beam.files)
    assert beam["components"].sum() == beam["score"][0] == beam["nbest.scores"][0]
    assert sets["decode_greedy"]["tokens"].size > 0
    for gset in sets.values():
        roles = {t.role for t in gset.tensors}
        assert "output" in roles and "input" in roles, gset.name
