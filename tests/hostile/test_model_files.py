"""Issue 14 §5: the loader checks before it reads, and a file that loads can run."""

from __future__ import annotations

import json
import os
import tracemalloc

import pytest

from int4rt.errors import FormatError
from int4rt.model.container import load_model
from int4rt.model.file_limits import MAX_HEADER_BYTES, MAX_TENSORS


def _file(header: dict, data: bytes = b"") -> bytes:
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + data


def test_fifo_and_devices_are_refused_by_stat(tmp_path):
    fifo = tmp_path / "m.safetensors"
    os.mkfifo(fifo)
    with pytest.raises(FormatError, match="not a regular file"):
        load_model(fifo)
    with pytest.raises(FormatError, match="not a regular file"):
        load_model("/dev/zero")


def test_a_sparse_2_gib_file_fails_without_being_read(tmp_path):
    path = tmp_path / "big.safetensors"
    path.write_bytes(_file({"__metadata__": {"int4rt": "{}"},
                            "t": {"dtype": "U8", "shape": [8], "data_offsets": [0, 8]}}))
    with open(path, "r+b") as handle:
        handle.truncate(2 << 30)
    tracemalloc.start()
    with pytest.raises(FormatError, match="bytes after the last tensor belong to no tensor"):
        load_model(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 10_000_000


def test_random_2_gib_file_fails_on_the_header_length(tmp_path):
    path = tmp_path / "random.safetensors"
    path.write_bytes(os.urandom(64))
    with open(path, "r+b") as handle:
        handle.truncate(2 << 30)
    tracemalloc.start()
    with pytest.raises(FormatError, match="header length"):
        load_model(path)
    assert tracemalloc.get_traced_memory()[1] < 10_000_000
    tracemalloc.stop()


def test_header_size_and_tensor_count_limits(tmp_path):
    path = tmp_path / "h.safetensors"
    path.write_bytes((MAX_HEADER_BYTES + 8).to_bytes(8, "little") + b" " * 64)
    with pytest.raises(FormatError, match="exceeds the limit"):
        load_model(path)
    many = {f"t{i}": {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]}
            for i in range(MAX_TENSORS + 1)}
    path.write_bytes(_file({"__metadata__": {"int4rt": "{}"}, **many}))
    with pytest.raises(FormatError, match=f"lists {MAX_TENSORS + 1} tensors, more than"):
        load_model(path)


def test_names_the_os_cannot_open_are_format_errors(tmp_path):
    with pytest.raises(FormatError, match="NUL character"):
        load_model("a\0b")
    loop = tmp_path / "loop.safetensors"
    os.symlink(loop, loop)
    with pytest.raises(FormatError, match="a loop of symbolic links"):
        load_model(loop)


def _edited(hostile_files, tmp_path, edit) -> os.PathLike:
    """The tiny model with its metadata JSON edited (and re-framed)."""
    data = hostile_files["model"].read_bytes()
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + length])
    meta = json.loads(header["__metadata__"]["int4rt"])
    edit(meta)
    header["__metadata__"]["int4rt"] = json.dumps(meta)
    path = tmp_path / "edited.safetensors"
    path.write_bytes(_file(header, data[8 + length:]))
    return path


def test_vocab_with_a_lone_surrogate_is_refused(hostile_files, tmp_path):
    def edit(meta):
        meta["vocab"][3] = "\ud800"

    with pytest.raises(FormatError, match=r"vocab\[3\].*lone surrogate"):
        load_model(_edited(hostile_files, tmp_path, edit))


@pytest.mark.parametrize("value", [1e-9, 1e300, 0.5, 2000.0])
def test_front_end_numbers_out_of_range_are_refused(hostile_files, tmp_path, value):
    def edit(meta):
        meta["frontend"]["frame_length_ms"] = value

    with pytest.raises(FormatError, match=r"frontend\.frame_length_ms"):
        load_model(_edited(hostile_files, tmp_path, edit))


def test_a_model_that_loads_runs_and_exit_2_for_a_bad_one(hostile_files, tmp_path, capsys):
    from int4rt.cli import main

    def edit(meta):
        meta["frontend"]["frame_shift_ms"] = 1e-9

    bad = _edited(hostile_files, tmp_path, edit)
    assert main(["transcribe", str(bad), str(hostile_files["good0"])]) == 2
    assert "frame_shift_ms" in capsys.readouterr().err


@pytest.mark.parametrize(("layer_edit", "message"), [
    ({"granularity": "per_gate", "blocks": 2**31 - 1},
     r"joint\.out\.blocks: 2147483647 blocks do not divide the 11 rows"),
    ({"granularity": "per_gate", "blocks": 11, "shape": [2**31 - 1, 15]},
     r"joint\.out\.blocks: 11 blocks do not divide the 2147483647 rows"),
    ({"granularity": "per_gate", "blocks": 1}, r"tensor 'joint\.out\.multiplier' has shape "
                                               r"\[11\], metadata says \[1\]"),
    ({"granularity": "per_gate", "blocks": -4}, r"joint\.out\.blocks: expected an integer"),
    ({"granularity": "per_gate", "blocks": "4"}, r"joint\.out\.blocks: expected an integer"),
])
def test_hostile_per_gate_declarations_are_refused_before_allocating(hostile_files, tmp_path,
                                                                     layer_edit, message):
    """FORMAT.md §2.4: ``blocks`` is checked against the rows before any tensor is expanded."""
    def edit(meta):
        meta["format_version"] = 3
        meta["joint"]["out"].update(layer_edit)

    path = _edited(hostile_files, tmp_path, edit)
    tracemalloc.start()
    with pytest.raises(FormatError, match=message):
        load_model(path)
    assert tracemalloc.get_traced_memory()[1] < 10_000_000
    tracemalloc.stop()
