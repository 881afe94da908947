"""Model files (docs/FORMAT.md): round trips, every rejected defect, the CLI, compression."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load, save

import int4rt
from int4rt import FormatError
from int4rt.arith import TFLM_SIGMOID_TABLE
from int4rt.cli import main
from int4rt.model.config import parse_config
from int4rt.model.container import load_model, load_model_bytes, save_model
from int4rt.model.lm import LmModel
from int4rt.model.random_model import random_model
from int4rt.model.rnnt import RnntModel

CONFIGS = Path(__file__).parents[1] / "configs"
FORMAT_DOC = (Path(__file__).parents[1] / "docs" / "FORMAT.md").read_text()
VARIANTS = {  # profile, weight bits, activation bits, signed, rounding
    "int4": ("int4rt", 4, 4, False, "double"),
    "int8-single": ("int4rt", 8, 8, True, "single"),
    "w4a8": ("int4rt", 4, 8, False, "single"),
    "tflm": ("tflm", 8, 8, True, "double"),
}


def _model(name: str = "tiny", variant: str = "int4", mode: str | None = None, seed: int = 0):
    data = json.loads((CONFIGS / f"{name}.json").read_text())
    profile, wb, ab, signed, rounding = VARIANTS[variant]
    data["quantization"].update(profile=profile, weight_bits=wb, activation_bits=ab,
                                activation_signed=signed, rounding=rounding)
    if mode:
        data["joint"]["mode"] = mode
    return random_model(parse_config(data), seed)


def _spaced(number: int) -> str:
    return f"{number:,}".replace(",", " ")


def _bytes(model, tmp_path: Path) -> bytes:
    path = tmp_path / "m.safetensors"
    save_model(model, path)
    return path.read_bytes()


def split_file(data: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    """(int4rt metadata, tensors) of a model file, read with the safetensors library."""
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + length])
    return json.loads(header["__metadata__"]["int4rt"]), load(data)


def join_file(meta: dict, tensors: dict[str, np.ndarray]) -> bytes:
    """A model file from metadata and tensors, written by the safetensors library."""
    return save(tensors, metadata={"int4rt": json.dumps(meta)})


def edit_header(data: bytes, edit: Callable[[dict], object]) -> bytes:
    """``data`` with its raw safetensors header edited in place (tensor bytes unchanged)."""
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + length])
    edit(header)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + data[8 + length:]


def assert_same(a, b, path: str = "model") -> None:
    """Every field, array (dtype, shape, values) and scalar (type, value) identical."""
    assert type(a) is type(b), f"{path}: {type(a).__name__} vs {type(b).__name__}"
    if dataclasses.is_dataclass(a):
        for field in dataclasses.fields(a):
            assert_same(getattr(a, field.name), getattr(b, field.name), f"{path}.{field.name}")
    elif isinstance(a, np.ndarray):
        assert (a.dtype, a.shape) == (b.dtype, b.shape), path
        np.testing.assert_array_equal(a, b, err_msg=path)
    elif isinstance(a, tuple):
        assert len(a) == len(b), path
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{path}[{index}]")
    else:
        assert a == b, f"{path}: {a!r} vs {b!r}"


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize(("name", "mode"), [("tiny", "multiplicative"), ("tiny", "additive"),
                                            ("lm-tiny", None)])
def test_round_trip(tmp_path, name, mode, variant):
    model = _model(name, variant, mode)
    path = tmp_path / "m.safetensors"
    save_model(model, path)
    loaded = load_model(path)
    assert_same(model, loaded)
    via_api = int4rt.load(str(path))
    assert_same(model, via_api.model if name == "tiny" else via_api)
    save_model(loaded, tmp_path / "again.safetensors")
    assert (tmp_path / "again.safetensors").read_bytes() == path.read_bytes()


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_loaded_model_runs(tmp_path, variant):
    model = load_model_bytes(_bytes(_model("tiny", variant), tmp_path))
    assert isinstance(model, RnntModel)
    codes, fmt = model.encode(np.zeros((20, 120), np.float32))
    assert codes.shape == (10, 32) and codes.dtype == fmt.dtype
    assert fmt.qmin <= codes.min() and codes.max() <= fmt.qmax
    reference, _ = model.encode(np.zeros((20, 120), np.float32), backend="numpy")
    np.testing.assert_array_equal(codes, reference)
    out, _ = model.predictor_step(np.array([0, 3]), model.predictor_initial_state(2))
    assert out.shape == (2, 16)
    log_probs = model.lattice(np.ones((8, 120), np.float32), [3, 4])
    assert log_probs.shape == (4, 3, 11) and log_probs.dtype == np.int32


def test_file_is_standard_safetensors(tmp_path):
    data = _bytes(_model(), tmp_path)
    meta, tensors = split_file(data)
    assert meta["format"] == "int4rt" and meta["format_version"] == 1
    assert tensors["joint.out.weight"].dtype == np.uint8
    assert tensors["joint.out.weight"].shape == ((11 * 15 + 1) // 2,)
    assert tensors["tables.sigmoid"].dtype == np.uint16
    assert "encoder.layer0.fwd.recurrent_fc.bias" not in tensors  # zero bias: not stored
    assert load_model_bytes(join_file(meta, tensors)).vocab == tuple(meta["vocab"])


# --- every defect is one FormatError naming the field -------------------------------------


def _meta_edit(edit: Callable[[dict], object]) -> Callable[[bytes], bytes]:
    def apply(data: bytes) -> bytes:
        meta, tensors = split_file(data)
        edit(meta)
        return join_file(meta, tensors)
    return apply


def _tensor_edit(edit: Callable[[dict], object]) -> Callable[[bytes], bytes]:
    def apply(data: bytes) -> bytes:
        meta, tensors = split_file(data)
        edit(tensors)
        return join_file(meta, tensors)
    return apply


def _set(tensors: dict, name: str, index: tuple | int, value: int) -> None:
    array = tensors[name].copy()
    array[index] = value
    tensors[name] = array


def _first_offsets(header: dict) -> None:
    entry = next(v for k, v in header.items() if k != "__metadata__" and v["data_offsets"][0])
    entry["data_offsets"] = [entry["data_offsets"][0] - 4, entry["data_offsets"][1] - 4]


def _misalign(header: dict) -> None:
    entry = header["joint.out.bias"]
    entry["data_offsets"] = [entry["data_offsets"][0] + 1, entry["data_offsets"][1] + 1]


DEFECTS = [
    ("truncated by one byte", lambda d: d[:-1], "data_offsets must be [begin, end]"),
    ("truncated to 5 bytes", lambda d: d[:5], "too short for the 8-byte header length"),
    ("truncated in the header", lambda d: d[:200], "runs past the end of the file"),
    ("header length past EOF",
     lambda d: (len(d)).to_bytes(8, "little") + d[8:], "runs past the end of the file"),
    ("huge header length", lambda d: (2**63).to_bytes(8, "little") + d[8:], "exceeds the limit"),
    ("header not JSON", lambda d: d[:8] + b"{" + b"x" * 7 + d[16:], "header is not valid JSON"),
    ("no __metadata__", lambda d: edit_header(d, lambda h: h.pop("__metadata__")),
     "__metadata__ must hold exactly one entry"),
    ("metadata not JSON",
     lambda d: edit_header(d, lambda h: h["__metadata__"].update(int4rt="{oops")),
     "metadata is not valid JSON"),
    ("duplicate metadata key",
     lambda d: edit_header(d, lambda h: h["__metadata__"].update(
         int4rt=h["__metadata__"]["int4rt"][:-1] + ',"profile":"int4rt"}')),
     "duplicate key 'profile'"),
    ("unknown dtype", lambda d: edit_header(d, lambda h: h["tables.ln"].update(dtype="Q7")),
     "header entry 'tables.ln': unknown dtype 'Q7'"),
    ("shape vs bytes", lambda d: edit_header(d, lambda h: h["tables.ln"].update(shape=[258])),
     "header entry 'tables.ln': shape [258] of I32 needs 1032 bytes"),
    ("overlap", lambda d: edit_header(d, _first_offsets), "overlaps the tensor before it"),
    ("misaligned", lambda d: edit_header(d, _misalign), "is not a multiple of the I32"),
    ("trailing bytes", lambda d: d + b"\0" * 4, "4 bytes after the last tensor"),
    ("wrong format", _meta_edit(lambda m: m.update(format="onnx")), "metadata format"),
    ("wrong format_version", _meta_edit(lambda m: m.update(format_version=4)),
     "metadata format_version: file has version 4, this int4rt reads versions 1, 2 and 3"),
    ("float format_version", _meta_edit(lambda m: m.update(format_version=1.0)),
     "metadata format_version"),
    ("unknown architecture", _meta_edit(lambda m: m.update(architecture="ctc")),
     "metadata architecture"),
    ("unknown key", _meta_edit(lambda m: m["encoder"]["layers"][0]["fwd"].update(foo=1)),
     "metadata encoder.layers[0].fwd.foo: unknown key"),
    ("missing key", _meta_edit(lambda m: m["joint"].pop("hidden_shift")),
     "metadata joint.hidden_shift: missing"),
    ("wrong type", _meta_edit(lambda m: m["encoder"]["layers"][1]["bwd"].update(cell_clip="0")),
     "metadata encoder.layers[1].bwd.cell_clip: expected an integer in [0, 32767]"),
    ("bool as int", _meta_edit(lambda m: m["joint"].update(logit_frac_bits=True)),
     "metadata joint.logit_frac_bits"),
    ("zero point range",
     _meta_edit(lambda m: m["encoder"]["layers"][0]["hidden"].update(zero_point=16)),
     "metadata encoder.layers[0].hidden.zero_point: expected an integer in [0, 15]"),
    ("scale not float32",
     _meta_edit(lambda m: m["predictor"]["layers"][0]["hidden"].update(scale=0.1)),
     "metadata predictor.layers[0].hidden.scale: 0.1 is not a float32 value"),
    ("negative scale", _meta_edit(lambda m: m["joint"]["hidden"].update(scale=-1.0)),
     "metadata joint.hidden.scale: expected a finite positive number"),
    ("weight bits 6",
     _meta_edit(lambda m: m["joint"]["out"].update(weight_bits=6)),
     "metadata joint.out.weight_bits: expected 4 or 8, got 6"),
    ("granularity", _meta_edit(lambda m: m["joint"]["out"].update(granularity="per_tensor")),
     "metadata joint.out.granularity"),
    ("format chain",
     _meta_edit(lambda m: m["encoder"]["layers"][1]["input"].update(zero_point=6)),
     "encoder.layer1.fwd.input: format differs from encoder.layer0.hidden"),
    ("vocab duplicate", _meta_edit(lambda m: m["vocab"].__setitem__(2, "a")),
     "metadata vocab[3]: 'a' appears twice"),
    ("blank id", _meta_edit(lambda m: m.update(blank_id=11)), "metadata blank_id"),
    ("profile forbids 4 bits", _meta_edit(lambda m: m.update(profile="tflm")),
     "4-bit weights not allowed by profile 'tflm'"),
    ("rounding", _meta_edit(lambda m: m.update(rounding="even")), "metadata rounding"),
    ("additive with combine", _meta_edit(lambda m: m["joint"].update(mode="additive")),
     "joint.combine: must be (0, 0) for an additive joint"),
    ("stacking vs input size", _meta_edit(lambda m: m["encoder"]["layers"][0].update(stack=3)),
     "encoder.layer0.fwd.input_fc: 240 inputs, expected 120 x stack 3 = 360"),
    ("missing tensor", _tensor_edit(lambda t: t.pop("joint.out.multiplier")),
     "missing tensor 'joint.out.multiplier'"),
    ("extra tensor",
     _tensor_edit(lambda t: t.update({"joint.out.scale": np.zeros(11, np.float32)})),
     "unexpected tensor 'joint.out.scale'"),
    ("wrong shape", _tensor_edit(lambda t: t.update({"joint.out.bias": np.zeros(12, np.int32)})),
     "tensor 'joint.out.bias' has shape [12], metadata says [11]"),
    ("wrong dtype", _tensor_edit(lambda t: t.update({"joint.out.bias": np.ones(11, np.int64)})),
     "tensor 'joint.out.bias' has dtype I64, expected I32"),
    ("int8 weights in a 4-bit layer", _tensor_edit(lambda t: t.update(
        {"joint.out.weight": np.full((11, 15), -128, np.int8)})),
     "tensor 'joint.out.weight' has dtype I8, expected U8"),
    ("packed size", _tensor_edit(lambda t: t.update(
        {"joint.out.weight": np.zeros(82, np.uint8)})),
     "tensor 'joint.out.weight' has shape [82], 11x15 int4 codes pack to [83]"),
    ("padding nibble", _tensor_edit(lambda t: _set(t, "joint.out.weight", -1, 0x13)),
     "tensor 'joint.out.weight': padding nibble after 165 int4 codes must be 0, got 1"),
    ("embedding code", _tensor_edit(lambda t: _set(t, "predictor.embedding", (4, 2), 16)),
     "predictor.embedding: codes outside [0, 15]"),
    ("shift range", _tensor_edit(
        lambda t: _set(t, "encoder.layer1.bwd.recurrent_fc.shift", 3, 31)),
     "encoder.layer1.bwd.recurrent_fc.shift: entry outside [-31, 30]"),
    ("negative multiplier", _tensor_edit(lambda t: _set(t, "joint.enc_proj.multiplier", 0, -5)),
     "joint.enc_proj.multiplier: negative entry"),
    ("accumulator bound", _tensor_edit(lambda t: _set(t, "joint.out.bias", 0, 2**31 - 1)),
     "joint.out: accumulator bound"),
    ("sigmoid table entry 0", _tensor_edit(lambda t: _set(t, "tables.sigmoid", 0, 0)),
     "tables.sigmoid: sigmoid table entry 0 must be 32768"),
    ("sigmoid table of another profile", _tensor_edit(
        lambda t: t.update({"tables.sigmoid": TFLM_SIGMOID_TABLE.copy()})),
     "tables.sigmoid: entry 4 differs from the table of profile 'int4rt'"),
    ("exp2 table", _tensor_edit(lambda t: _set(t, "tables.exp2", 0, 0)), "tables.exp2: EXP2"),
    ("ln table size", _tensor_edit(lambda t: t.update({"tables.ln": np.zeros(256, np.int32)})),
     "tensor 'tables.ln' has shape [256], expected [257]"),
    ("cmvn", _tensor_edit(lambda t: _set(t, "frontend.cmvn_std", 7, np.nan)),
     "frontend.cmvn_std: non-finite entry"),
]


@pytest.mark.parametrize(("mutate", "message"), [d[1:] for d in DEFECTS],
                         ids=[d[0] for d in DEFECTS])
def test_defect_is_one_format_error(tmp_path, mutate, message):
    data = mutate(_bytes(_model(), tmp_path))
    with pytest.raises(FormatError) as info:
        load_model_bytes(data)
    assert message in str(info.value)
    path = tmp_path / "bad.safetensors"
    path.write_bytes(data)
    with pytest.raises(FormatError) as info:
        load_model(path)
    assert message in str(info.value)


LM_DEFECTS = [
    (lambda t: t.pop("lm.out.weight"), "missing tensor 'lm.out.weight'"),
    (lambda t: _set(t, "lm.embedding", (0, 0), 200), "lm.embedding: codes outside [0, 15]"),
    (lambda t: t.update({"lm.embedding": t["lm.embedding"][:10]}),
     "tensor 'lm.embedding' has shape [10, 8], expected [vocabulary, input size] [11, 8]"),
]


@pytest.mark.parametrize(("edit", "message"), LM_DEFECTS)
def test_lm_defect_is_one_format_error(tmp_path, edit, message):
    with pytest.raises(FormatError) as info:
        load_model_bytes(_tensor_edit(edit)(_bytes(_model("lm-tiny"), tmp_path)))
    assert message in str(info.value)


def test_not_a_file(tmp_path):
    with pytest.raises(FormatError, match=r"cannot read model file .*: Is a directory"):
        load_model(tmp_path)
    with pytest.raises(FormatError, match=r"cannot read model file .*No such file"):
        load_model(tmp_path / "missing.safetensors")
    with pytest.raises(FormatError, match="model path must be a string or path"):
        load_model(42)


def test_save_rejects_an_invalid_model(tmp_path):
    model = _model()
    bad = dataclasses.replace(model, blank_id=99)
    with pytest.raises(FormatError, match="blank_id 99 outside the vocabulary"):
        save_model(bad, tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()
    with pytest.raises(int4rt.Int4rtError, match="no directory"):
        save_model(model, tmp_path / "missing" / "x.safetensors")


# --- the command line ------------------------------------------------------------------------


def test_cli_convert_and_inspect(tmp_path, capsys):
    path = tmp_path / "tiny.safetensors"
    assert main(["convert", "--random", "3", "--config", str(CONFIGS / "tiny.json"),
                 "-o", str(path)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert isinstance(load_model(path), RnntModel)
    assert main(["inspect", str(path)]) == 0
    text = capsys.readouterr().out
    assert "compression" in text and "encoder.layer1.bwd.recurrent_fc" in text
    assert main(["inspect", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["architecture"] == "rnnt" and report["file_bytes"] == path.stat().st_size
    assert report["fp32_bytes"] == 4 * report["parameters"]
    assert {t["entries"] for t in report["tables"].values()} == {256, 257}
    layer = report["layers"][0]
    assert layer["name"] == "encoder.layer0.fwd.input_fc" and layer["weight_bits"] == 4
    assert layer["granularity"] == "per_row" and layer["input"]["zero_point"] == 7
    lm_path = tmp_path / "lm.safetensors"
    assert main(["convert", "--random", "0", "--config", str(CONFIGS / "lm-tiny.json"),
                 "-o", str(lm_path)]) == 0
    assert isinstance(load_model(lm_path), LmModel)
    assert main(["inspect", str(lm_path), "--json"]) == 0
    assert '"architecture": "lm"' in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "message"), [
    (["convert", "--config", "c.json", "-o", "m"], "give a CHECKPOINT to convert"),
    (["convert", "--random", "1", "-o", "m"], "--random needs --config CONFIG and -o MODEL"),
    (["convert", "--random", "-1", "--config", "c", "-o", "m"], "must be >= 0"),
    (["convert", "--random", "1", "--config", "missing.json", "-o", "m"], "cannot read config"),
    (["inspect", "missing.safetensors"], "cannot read model file"),
])
def test_cli_errors_are_one_line(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("int4rt: error: ") and message in err and err.count("\n") == 1


def test_cli_inspect_bad_file(tmp_path, capsys):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(b"\x10" + b"\0" * 7 + b"{}")
    assert main(["inspect", str(path)]) == 2
    assert "runs past the end of the file" in capsys.readouterr().err


@pytest.mark.thorough
def test_paper_model_compression(tmp_path, capsys):
    """The paper-size model: ≥ 7.6x smaller than fp32, everything counted (paper A)."""
    path = tmp_path / "p.safetensors"
    assert main(["convert", "--random", "0", "--config", str(CONFIGS / "paper.json"),
                 "-o", str(path)]) == 0
    assert main(["inspect", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert 57_000_000 <= report["parameters"] <= 58_000_000
    assert report["file_bytes"] == path.stat().st_size
    assert report["compression_ratio"] >= 7.6
    stated = f"{_spaced(report['parameters'])} parameters, {_spaced(report['file_bytes'])} file"
    assert stated in FORMAT_DOC, "update the numbers of docs/FORMAT.md §5"


# --- docs/FORMAT.md states what the code produces --------------------------------------------


def test_format_doc_hex_dump_matches_a_real_file(tmp_path):
    """§8's hex lines are bytes of ``convert --random 0 --config configs/tiny.json``."""
    path = tmp_path / "tiny.safetensors"
    assert main(["convert", "--random", "0", "--config", str(CONFIGS / "tiny.json"),
                 "-o", str(path)]) == 0
    data = path.read_bytes()
    section = FORMAT_DOC[FORMAT_DOC.index("## §8"):]
    assert f"writes {_spaced(len(data))} bytes" in section
    lines = re.findall(r"^([0-9a-f]{8}): ((?:[0-9a-f]{4} ){7}[0-9a-f]{4})", section, re.M)
    assert len(lines) >= 10
    for offset, words in lines:
        start = int(offset, 16)
        assert data[start:start + 16].hex() == words.replace(" ", ""), offset
