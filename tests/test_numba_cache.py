"""The Numba cache folder follows the kernel sources (int4rt/numba_cache.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from int4rt.numba_cache import PACKAGE, cache_folder, kernel_sources, source_digest


def _tree(root: Path) -> None:
    (root / "ops" / "gemv").mkdir(parents=True)
    (root / "ops" / "gemv" / "numba.py").write_text("def kernel():\n    return 1\n")
    (root / "ops" / "gemv" / "tables.py").write_text("LIMIT = 7\n")
    (root / "decode").mkdir()
    (root / "decode" / "selection.py").write_text("import numba\n")
    (root / "cli.py").write_text("print('no kernels here')\n")


def test_every_kernel_source_changes_the_folder_and_nothing_else_does(tmp_path):
    _tree(tmp_path)
    names = {p.relative_to(tmp_path).as_posix() for p in kernel_sources(tmp_path)}
    assert names == {"ops/gemv/numba.py", "ops/gemv/tables.py", "decode/selection.py"}
    first = source_digest(tmp_path)
    (tmp_path / "cli.py").write_text("print('still no kernels')\n")
    assert source_digest(tmp_path) == first
    for name in sorted(names):
        path = tmp_path / name
        before = path.read_text()
        path.write_text(before + "# changed\n")
        assert source_digest(tmp_path) != first, name
        path.write_text(before)
    assert source_digest(tmp_path) == first
    assert cache_folder(tmp_path) == tmp_path / "__pycache__" / f"numba-{first}"
    assert cache_folder(tmp_path, base=Path("/x")) == Path("/x") / f"int4rt-{first}"


def _numba_cache_dir(env: dict[str, str]) -> str:
    code = "import int4rt, numba.core.config as c; print(c.CACHE_DIR)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    return out.stdout.strip()


def test_numba_uses_the_versioned_folder_and_workers_inherit_it(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_CACHE_DIR", "INT4RT_NUMBA_CACHE")}
    digest = source_digest(PACKAGE)
    own = _numba_cache_dir(env)
    assert own.endswith(f"numba-{digest}")
    inherited = dict(env, NUMBA_CACHE_DIR=own, INT4RT_NUMBA_CACHE=own)
    assert _numba_cache_dir(inherited) == own
    user = dict(env, NUMBA_CACHE_DIR=str(tmp_path))
    assert _numba_cache_dir(user) == str(tmp_path / f"int4rt-{digest}")
