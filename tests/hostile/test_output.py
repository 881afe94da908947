"""Issue 14 §4: ``--output`` records what produced it, refuses what it must not touch and
never leaves a partial line; Ctrl-C and a closed pipe end the run with one line, no traceback.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from int4rt import corpus
from int4rt.output_file import RECORD_SUFFIX

from .conftest import run_transcribe, write_manifest


def _audios(files: dict[str, Path]) -> list[Path]:
    return [files["good0"], files["good1"], files["good2"]]


def test_output_equal_to_the_manifest_is_refused(hostile_files, tmp_path, capsys):
    manifest = write_manifest(tmp_path / "m.jsonl", [{"audio": str(hostile_files["good0"])}])
    before = manifest.read_bytes()
    status, _, err = run_transcribe([hostile_files["model"], "--manifest", manifest,
                                     "--output", manifest], capsys)
    assert status == 2 and "is the input" in err and "WER" not in err
    assert manifest.read_bytes() == before


def test_output_equal_to_an_audio_input_or_the_model_is_refused(hostile_files, tmp_path, capsys):
    status, _, err = run_transcribe([hostile_files["model"], hostile_files["good0"],
                                     "--output", hostile_files["model"]], capsys)
    assert status == 2 and "is the input" in err


def test_foreign_jsonl_without_a_record_is_refused(hostile_files, tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    out.write_text(json.dumps({"audio": str(hostile_files["good0"]), "text": "x"}) + "\n")
    status, _, err = run_transcribe([hostile_files["model"], hostile_files["good0"],
                                     "--output", out], capsys)
    assert status == 2 and "was not written by int4rt transcribe" in err


def test_resuming_with_other_settings_is_refused(hostile_files, tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    audios = _audios(hostile_files)
    assert run_transcribe([hostile_files["model"], *audios[:1], "--output", out], capsys)[0] == 0
    record = json.loads(Path(str(out) + RECORD_SUFFIX).read_text())
    assert len(record["model_sha256"]) == 64 and record["options"]["method"] == "greedy"
    status, _, err = run_transcribe([hostile_files["model"], *audios, "--output", out,
                                     "--method", "beam"], capsys)
    assert status == 2 and "options differ" in err
    status, _, err = run_transcribe([hostile_files["model"], *audios, "--output", out,
                                     "--lm", hostile_files["lm"]], capsys)
    assert status == 2 and "lm_sha256" in err
    status, _, _ = run_transcribe([hostile_files["model"], *audios, "--output", out], capsys)
    assert status == 0 and len(out.read_text().splitlines()) == 3


@pytest.mark.parametrize(("target", "message"), [
    ("missing/out.jsonl", "create it first"),
    (".", "is a folder"),
])
def test_bad_output_paths_stop_before_any_input(hostile_files, tmp_path, capsys, target,
                                                message):
    status, _, err = run_transcribe([hostile_files["model"], hostile_files["good0"],
                                     "--output", tmp_path / target], capsys)
    assert status == 2 and message in err and "Traceback" not in err


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_disk_full_ends_the_run_cleanly(hostile_files, capsys):
    status, _, err = run_transcribe([hostile_files["model"], hostile_files["good0"],
                                     "--output", "/dev/full"], capsys)
    assert status == 2 and "No space left on device" in err and "Traceback" not in err


def test_a_failed_write_removes_the_partial_line(hostile_files, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out.jsonl"
    audios = _audios(hostile_files)
    assert run_transcribe([hostile_files["model"], audios[0], "--output", out], capsys)[0] == 0
    first = out.read_bytes()
    real_write = os.write

    def half_then_eio(fd, data):
        if len(data) > 100:
            real_write(fd, bytes(data)[:50])
            raise OSError(errno.EIO, "Input/output error")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", half_then_eio)
    status, _, err = run_transcribe([hostile_files["model"], *audios, "--output", out], capsys)
    assert status == 2 and "Input/output error" in err and "partial line was removed" in err
    assert out.read_bytes() == first
    monkeypatch.undo()
    assert run_transcribe([hostile_files["model"], *audios, "--output", out], capsys)[0] == 0
    assert [json.loads(line)["audio"] for line in out.read_text().splitlines()] == \
        [str(a) for a in audios]


def test_a_pipe_as_output_is_written_not_read(hostile_files, tmp_path, capsys):
    read_end, write_end = os.pipe()
    try:
        status, _, err = run_transcribe([hostile_files["model"], hostile_files["good0"],
                                         "--output", f"/proc/self/fd/{write_end}"], capsys)
        os.close(write_end)
        data = os.read(read_end, 1 << 20)
    finally:
        os.close(read_end)
    assert status == 0, err
    assert json.loads(data)["audio"] == str(hostile_files["good0"])


def test_ctrl_c_prints_one_line_and_exits_130(hostile_files, capsys, monkeypatch):
    def interrupted(item):
        raise KeyboardInterrupt

    monkeypatch.setattr(corpus, "decode_item", interrupted)
    status, lines, err = run_transcribe([hostile_files["model"], *_audios(hostile_files)],
                                        capsys)
    assert status == 130 and not lines
    assert err.strip().splitlines()[-1] == ("int4rt: interrupted; rerun the same command "
                                            "with --output to resume")
    assert err.count("int4rt:") == 1 and "Traceback" not in err


def test_a_closed_pipe_gives_no_traceback(hostile_files):
    """``int4rt transcribe ... | head -n 1``: the reader leaves after the first line."""
    command = [sys.executable, "-m", "int4rt.cli", "transcribe", str(hostile_files["model"]),
               *map(str, _audios(hostile_files) * 4)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    first = process.stdout.readline()
    process.stdout.close()  # like `head -n 1` exiting
    err = process.stderr.read().decode()
    process.wait(timeout=120)
    assert json.loads(first)["audio"] == str(hostile_files["good0"])
    assert "Traceback" not in err and "BrokenPipeError" not in err
    assert process.returncode == 141
