"""Numba's on-disk cache, kept per version of int4rt's kernel sources.

Numba's cache checks only the timestamp of the file that defines a cached function, not of the
functions and constants it uses from other files; after an update of int4rt in place (a ``git
pull``, a reinstall) an old cached kernel could keep running old arithmetic. So the cache
lives in a folder named by a digest of every source that Numba compiles from (all of
``int4rt/ops/`` and every other int4rt module that imports Numba): any change to them starts a
fresh cache, and old entries are never reused.

The folder is ``$NUMBA_CACHE_DIR/int4rt-<digest>`` when that variable is set, else
``int4rt/__pycache__/numba-<digest>`` next to the package, else (read-only installs)
``~/.cache/int4rt/numba-<digest>``.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
DIGEST_CHARS = 16


def kernel_sources(root: Path = PACKAGE) -> list[Path]:
    """The sources Numba compiles from: every ``ops/`` module and every module importing Numba."""
    sources = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if relative.parts[0] == "ops" or "numba" in path.read_text(encoding="utf-8"):
            sources.append(path)
    return sources


def source_digest(root: Path = PACKAGE) -> str:
    """Hex digest of the kernel sources' names and bytes."""
    digest = hashlib.sha256()
    for path in kernel_sources(root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:DIGEST_CHARS]


def cache_folder(root: Path = PACKAGE, base: Path | None = None) -> Path:
    """Where this version's Numba cache lives: under ``base`` if given (module docstring)."""
    digest = source_digest(root)
    if base is not None:
        return base / f"int4rt-{digest}"
    local = root / "__pycache__"
    if os.access(local if local.exists() else root, os.W_OK):
        return local / f"numba-{digest}"
    return Path.home() / ".cache" / "int4rt" / f"numba-{digest}"


def use_versioned_cache() -> None:
    """Point Numba's cache at :func:`cache_folder` (before int4rt defines a cached kernel).

    A ``NUMBA_CACHE_DIR`` set by the user is the base; the one int4rt set itself (inherited by
    a worker process, recorded in ``INT4RT_NUMBA_CACHE``) is kept as it is.
    """
    given = os.environ.get("NUMBA_CACHE_DIR")
    if given and given == os.environ.get("INT4RT_NUMBA_CACHE"):
        folder = given
    else:
        folder = str(cache_folder(base=Path(given) if given else None))
    os.environ["NUMBA_CACHE_DIR"] = os.environ["INT4RT_NUMBA_CACHE"] = folder
    if "numba" in sys.modules:
        from numba.core import config

        config.CACHE_DIR = folder
