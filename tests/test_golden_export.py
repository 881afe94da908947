"""``int4rt golden export``: $readmemh files read back give the golden integers, the manifest
describes every file, and the stand-alone test-bench script (examples/hardware_testbench)
accepts a faithful dump and reports a corrupted one (docs/VERIFICATION.md §3, §6)."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_golden import GOLDEN, golden

from int4rt.arith import pack_int4, unpack_int4
from int4rt.errors import Int4rtError
from int4rt.golden.hexfile import read_hex
from int4rt.golden.store import read_index, read_set

SCRIPT = Path(__file__).parents[1] / "examples" / "hardware_testbench" / "compare_dump.py"


def _set(name: str):
    entry = next(e for e in read_index(GOLDEN)["sets"] if e["name"] == name)
    return read_set(GOLDEN, name, entry["manifest_sha256"])


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("exports")
    out = {}
    for name in ("lstm_w4_a4u_double", "rnnt_tiny", "arith_requantize"):
        assert golden("export", name, "--dir", str(GOLDEN), "--out", str(root / name)) == 0
        out[name] = root / name
    return out


def _values(entry: dict, path: Path) -> np.ndarray:
    values = read_hex(path, entry["width_bits"], entry["signed"])
    assert values.size == entry["lines"] == int(np.prod(entry["shape"], dtype=np.int64))
    return values.reshape(entry["shape"])


@pytest.mark.parametrize("name", ["lstm_w4_a4u_double", "rnnt_tiny", "arith_requantize"])
def test_hex_files_read_back_as_the_golden_integers(exports, name):
    out = exports[name]
    manifest = json.loads((out / "manifest.json").read_text())
    listed = {entry["file"] for entry in manifest["files"]}
    on_disk = {str(p.relative_to(out)) for p in out.rglob("*.hex")}
    assert listed == on_disk
    gset = _set(name)
    names = {t.name for t in gset.tensors}
    for entry in manifest["files"]:
        assert entry["width_bits"] in (8, 16, 32, 64) and entry["shape"] is not None
        assert entry["width_bits"] == 8 * np.dtype(entry["dtype"]).itemsize
        assert entry["signed"] == (np.dtype(entry["dtype"]).kind == "i")
        lines = (out / entry["file"]).read_text().splitlines()
        assert lines[0].startswith("//")
        assert {len(line) for line in lines[1:]} == {entry["width_bits"] // 4}
        values = _values(entry, out / entry["file"])
        if entry["tensor"] not in names:
            continue  # a parameter expanded from the model file: checked below
        golden_value = gset[entry["tensor"]]
        if "step" in entry:
            golden_value = golden_value[entry["step"]["index"]]
        if golden_value.dtype == np.float32:
            golden_value = golden_value.view(np.uint32)
        np.testing.assert_array_equal(values, golden_value, err_msg=entry["file"])


def test_model_parameters_tables_and_steps(exports):
    out = exports["rnnt_tiny"]
    manifest = json.loads((out / "manifest.json").read_text())
    files = {entry["file"]: entry for entry in manifest["files"]}
    from int4rt.model.container import load_model_bytes

    model = load_model_bytes(_set("rnnt_tiny").files["model.safetensors"])
    layer = model.encoder.layers[0].cells[1].input_fc
    packed = _values(files["params/encoder.layer0.bwd.input_fc.weight_packed.hex"],
                     out / "params/encoder.layer0.bwd.input_fc.weight_packed.hex")
    np.testing.assert_array_equal(packed, pack_int4(layer.weight))
    np.testing.assert_array_equal(unpack_int4(packed.astype(np.uint8), layer.weight.size)
                                  .reshape(layer.weight.shape), layer.weight)
    for part in ("weight", "bias", "multiplier", "shift"):
        name = f"params/encoder.layer0.bwd.input_fc.{part}.hex"
        np.testing.assert_array_equal(_values(files[name], out / name), getattr(layer, part))
    for table, size in (("sigmoid", 256), ("exp2", 257), ("ln", 257)):
        entry = files[f"tables/{table}.hex"]
        assert entry["lines"] == size
        np.testing.assert_array_equal(_values(entry, out / entry["file"]),
                                      getattr(model, f"{table}_table"))
    assert "params/encoder.layer0.fwd.recurrent_fc.bias.hex" not in files
    steps = [e for e in manifest["files"]
             if e.get("step") and e["tensor"] == "predictor.layer0.cell"]
    assert [e["step"] for e in steps] == [{"axis": "u", "index": u} for u in range(5)]
    cell = manifest["models"]["model.safetensors"]["cells"]["encoder.layer0.fwd"]
    assert cell["derived"]["tanh_cell_scaling"] == [6, 0]
    assert manifest["compare"].startswith("tolerance zero")


def test_export_refuses_unknown_set_and_full_directory(exports, tmp_path):
    with pytest.raises(Int4rtError, match="no golden set"):
        golden("export", "nope", "--dir", str(GOLDEN), "--out", str(tmp_path / "x"))
    with pytest.raises(Int4rtError, match="not an empty directory"):
        golden("export", "rnnt_tiny", "--dir", str(GOLDEN), "--out",
               str(exports["rnnt_tiny"]))


def _simulator_dump(golden_dir: Path, dump: Path, patterns: tuple[str, ...]) -> list[Path]:
    """Copy golden files as a simulator would write them: $writememh header, @0, upper case."""
    written = []
    for pattern in patterns:
        for path in golden_dir.glob(pattern):
            target = dump / path.relative_to(golden_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            words = [line.upper() for line in path.read_text().splitlines()[1:]]
            target.write_text("// memory data file\n/* instance tb.dut */\n@0\n"
                              + "\n".join(words) + "\n")
            written.append(target)
    return written


def _script(*args: Path | str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True,
                          text=True, check=False)


def test_testbench_script_needs_no_int4rt():
    tree = ast.parse(SCRIPT.read_text())
    modules = {alias.name.split(".")[0] for node in ast.walk(tree)
               if isinstance(node, ast.Import) for alias in node.names}
    modules |= {node.module.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.module}
    assert "int4rt" not in modules and modules <= {"argparse", "fnmatch", "json", "re", "sys",
                                                   "pathlib", "numpy", "__future__"}


@pytest.mark.thorough
def test_testbench_accepts_a_faithful_dump(exports, tmp_path):
    out = exports["lstm_w4_a4u_double"]
    dump = tmp_path / "dump"
    _simulator_dump(out, dump, ("intermediates/*.hex", "outputs/*.hex", "steps/*/*.hex"))
    proc = _script(out, dump)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 mismatching" in proc.stdout and "PASS" in proc.stdout
    assert _script(out, dump, "--require-all").returncode == 1  # no params/inputs dumped
    selected = _script(out, dump, "--require-all", "--files", "outputs/*")
    assert selected.returncode == 0, selected.stdout


@pytest.mark.thorough
def test_testbench_reports_a_corrupted_dump(exports, tmp_path):
    out = exports["lstm_w4_a4u_double"]
    dump = tmp_path / "dump"
    _simulator_dump(out, dump, ("intermediates/*.hex", "outputs/*.hex"))
    target = dump / "intermediates" / "lstm.fwd.gate_pre.hex"
    lines = target.read_text().splitlines()
    words = lines[3:]
    expected = int(words[37], 16)
    expected -= (1 << 16) if expected >> 15 else 0
    got = expected + 1 if expected < 32767 else expected - 1
    words[37] = f"{got & 0xFFFF:04X}"
    target.write_text("\n".join(lines[:3] + words) + "\n")
    proc = _script(out, dump)
    assert proc.returncode == 1
    assert ("MISMATCH intermediates/lstm.fwd.gate_pre.hex (tensor lstm.fwd.gate_pre): element "
            f"[1, 5] (value line 37): expected {expected}, got {got} (1 of 384 values differ)"
            in proc.stdout), proc.stdout
    assert "FAIL" in proc.stdout


@pytest.mark.thorough
def test_testbench_rejects_bad_words(exports, tmp_path):
    out = exports["arith_requantize"]
    dump = tmp_path / "dump"
    (dump / "outputs").mkdir(parents=True)
    shutil.copy(out / "outputs" / "double.y.hex", dump / "outputs" / "double.y.hex")
    text = (out / "outputs" / "single.y.hex").read_text().replace("\n0000", "\nxxxx", 1)
    (dump / "outputs" / "single.y.hex").write_text(text)
    proc = _script(out, dump)
    assert proc.returncode == 1 and "undefined word" in proc.stdout
    assert "compared 2 files" in proc.stdout
