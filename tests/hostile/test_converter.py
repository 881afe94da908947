"""Issue 14 §6, §7: the converter checks tensors before materializing them, and writes only
regular files with the usual permissions.
"""

from __future__ import annotations

import io
import os
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest

from int4rt.cli import main

CONFIGS = Path(__file__).parents[2] / "configs"
torch = pytest.importorskip("torch")


def _read(path: Path) -> dict:
    from int4rt_convert import ConvertError  # noqa: F401 (the installed converter)
    from int4rt_convert.checkpoint import read_checkpoint

    return read_checkpoint(path)


@pytest.mark.parametrize("elements", [1 << 28, 1 << 40])
def test_a_stride_0_view_fails_fast(tmp_path, elements):
    from int4rt_convert import ConvertError

    path = tmp_path / "view.pt"
    torch.save({"w": torch.zeros(1).expand(elements), "b": torch.zeros(3)}, path)
    assert path.stat().st_size < 10_000
    with pytest.raises(ConvertError, match=r"'w'.*(stride|limit)"):
        _read(path)


def test_a_stride_0_view_within_the_limits_is_refused_as_a_view(tmp_path):
    from int4rt_convert import ConvertError

    path = tmp_path / "view.pt"
    torch.save({"w": torch.zeros(1).expand(4, 5)}, path)
    with pytest.raises(ConvertError, match=r"'w' is a view with stride \[0, 0\]"):
        _read(path)


def test_ordinary_tensors_still_read(tmp_path):
    path = tmp_path / "ok.pt"
    torch.save({"w": torch.arange(6.0).reshape(2, 3).t(), "i": torch.arange(4)}, path)
    tensors = _read(path)
    np.testing.assert_array_equal(tensors["w"], np.arange(6.0).reshape(2, 3).T)
    assert tensors["i"].dtype == np.float64


def test_a_non_string_key_is_named(tmp_path):
    from int4rt_convert import ConvertError

    path = tmp_path / "keys.pt"
    torch.save({"a": torch.zeros(2), 1: torch.zeros(2)}, path)
    with pytest.raises(ConvertError, match=r"a key is a int \(1\), not a string"):
        _read(path)


def test_an_npz_member_declaring_a_huge_shape_fails_from_its_header(tmp_path):
    from int4rt_convert import ConvertError

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": "<f8", "fortran_order": False, "shape": (1 << 30,)})
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("w.npy", buffer.getvalue() + bytes(64))
    with pytest.raises(ConvertError, match=r"'w' of shape \[1073741824\].*limit"):
        _read(path)


def _convert_random(target: Path) -> int:
    return main(["convert", "--random", "0", "--config", str(CONFIGS / "tiny.json"),
                 "-o", str(target)])


def test_output_must_be_a_regular_file(tmp_path, capsys):
    real = tmp_path / "real.safetensors"
    real.write_bytes(b"keep")
    link = tmp_path / "link.safetensors"
    link.symlink_to(real)
    fifo = tmp_path / "fifo.safetensors"
    os.mkfifo(fifo)
    assert _convert_random(link) == 2
    assert "symbolic link" in capsys.readouterr().err
    assert link.is_symlink() and real.read_bytes() == b"keep"
    assert _convert_random(fifo) == 2
    assert "not a regular file" in capsys.readouterr().err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    checkpoint = tmp_path / "c.npz"
    np.savez(checkpoint, w=np.zeros(2))
    assert main(["convert", str(checkpoint), "--config", str(CONFIGS / "tiny.json"),
                 "-o", str(link)]) == 2
    assert "symbolic link" in capsys.readouterr().err and link.is_symlink()


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/dev/full").exists(),
                    reason="replacing a device needs root to be a real risk")
def test_a_device_is_never_replaced(capsys):
    assert _convert_random(Path("/dev/full")) == 2
    assert "not a regular file" in capsys.readouterr().err
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_output_mode_follows_the_umask(tmp_path, capsys, umask):
    target = tmp_path / "m.safetensors"
    previous = os.umask(umask)
    try:
        assert _convert_random(target) == 0
    finally:
        os.umask(previous)
    capsys.readouterr()
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
