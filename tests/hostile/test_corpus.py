"""Issue 14 §1, §7: one bad input never stops a corpus run; lines are always valid UTF-8 JSON."""

from __future__ import annotations

import json
import os
import struct

import pytest

from int4rt import corpus
from int4rt.corpus import Item, json_line

from .conftest import run_transcribe, write_manifest


def _wav_header_with_rate(rate: int, frames: int = 4000) -> bytes:
    """A 16-bit mono PCM WAV declaring ``rate`` Hz (the header only says so)."""
    data = bytes(2 * frames)
    fmt = struct.pack("<HHIIHH", 1, 1, rate, 2 * rate % 2**32, 2, 16)
    return (b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " + struct.pack("<I", 16)
            + fmt + b"data" + struct.pack("<I", len(data)) + data)


def test_every_bad_input_becomes_an_error_line_and_the_run_goes_on(hostile_files, tmp_path,
                                                                   capsys, monkeypatch):
    huge_rate = tmp_path / "huge_rate.wav"
    huge_rate.write_bytes(_wav_header_with_rate(2**31 - 1))
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "a.wav").write_bytes(b"RIFF")
    loop = tmp_path / "loop.wav"
    os.symlink(loop, loop)
    entries = [
        {"audio": str(hostile_files["good0"]), "text": "ok"},
        {"audio": "x" * 300 + ".wav"},                          # OSError: File name too long
        {"audio": str(locked / "a.wav")},                       # PermissionError (simulated)
        {"audio": "bad\ud800.wav"},                             # not encodable as a file name
        {"audio": str(hostile_files["good1"]), "text": "bad\udc00text"},  # lone surrogate
        {"audio": str(huge_rate)},                              # 2^31 - 1 Hz
        {"audio": str(loop)},                                   # symlink loop
        {"audio": "a\0b.wav"},                                  # NUL in the name
        {"audio": str(hostile_files["good2"])},
    ]
    manifest = write_manifest(tmp_path / "m.jsonl", entries)
    real_stat = os.stat

    def stat(path, *args, **kwargs):  # root ignores permissions: simulate an unreadable folder
        if str(path).startswith(str(locked)):
            raise PermissionError(13, "Permission denied", str(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)
    out = tmp_path / "out.jsonl"
    status, _, err = run_transcribe([hostile_files["model"], "--manifest", manifest,
                                     "--output", out], capsys)
    assert status == 0, err
    raw = out.read_bytes()
    raw.decode("utf-8")  # valid UTF-8 throughout
    lines = [json.loads(line) for line in raw.decode("utf-8").splitlines()]
    assert [line["audio"] for line in lines] == [e["audio"] for e in entries]
    good = [lines[0], lines[4], lines[8]]
    assert all("error" not in line and "text" in line for line in good)
    assert lines[4]["reference"] == "bad\udc00text"  # read back to the same string
    errors = {index: lines[index]["error"] for index in (1, 2, 3, 5, 6, 7)}
    assert "file name too long" in errors[1]
    assert "permission denied" in errors[2]
    assert "bad\ud800.wav" in errors[3]
    assert "sample rate 2147483647 Hz is outside" in errors[5]
    assert "loop of symbolic links" in errors[6]
    assert "a\0b.wav" in errors[7]
    # the rerun skips every input, the failed ones included
    status, _, _ = run_transcribe([hostile_files["model"], "--manifest", manifest,
                                   "--output", out], capsys)
    assert status == 0 and out.read_bytes() == raw


@pytest.mark.parametrize("failure", [RuntimeError("kernel bug"), MemoryError()])
def test_an_unexpected_exception_is_the_inputs_error_line(hostile_files, capsys, monkeypatch,
                                                          failure):
    import int4rt.frontend.stream as stream

    real = stream.file_codes

    def flaky(path, model):
        if str(path).endswith("good1.wav"):
            raise failure
        return real(path, model)

    monkeypatch.setattr(stream, "file_codes", flaky)
    status, lines, _ = run_transcribe([hostile_files["model"], hostile_files["good0"],
                                       hostile_files["good1"], hostile_files["good2"]], capsys)
    parsed = [json.loads(line) for line in lines]
    assert status == 0 and len(parsed) == 3
    assert "error" not in parsed[0] and "error" not in parsed[2]
    want = "RuntimeError: kernel bug" if isinstance(failure, RuntimeError) else "out of memory"
    assert parsed[1]["error"].startswith(str(hostile_files["good1"])) and want in parsed[1]["error"]


def test_json_line_escapes_lone_surrogates_and_keeps_text():
    line = {"audio": "a\ud800b", "text": "héllo \U0001f600", "pair": "\ud83d\ude00"}
    data = json_line(line)
    text = data.decode("utf-8")  # valid UTF-8
    assert "\\ud800" in text and "héllo" in text and text.endswith("\n")
    back = json.loads(text)
    assert back["audio"] == "a\ud800b" and back["text"] == line["text"]
    assert back["pair"] == "\U0001f600"  # a surrogate pair reads back as the character


def test_error_text_names_the_input_once():
    item = Item("a.wav", "/data/a.wav")
    assert corpus.error_text(item, ValueError("boom")) == "a.wav: ValueError: boom"
    from int4rt.frontend import AudioError

    assert corpus.error_text(item, AudioError("/data/a.wav: empty")) == "/data/a.wav: empty"
