"""Writing a file only where a regular file may be (re)placed (docs/FORMAT.md §4.1).

``write_file_atomically`` refuses to replace a symbolic link, FIFO, socket or device, writes
the bytes to a temporary file in the target's folder with the permissions an ordinary
``open(path, "w")`` would give (0666 less the umask) and renames it onto the target, so a
reader never sees half a file and an interrupted write leaves the old file in place.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from int4rt.errors import Int4rtError


def check_replaceable(target: Path, what: str) -> None:
    """``Int4rtError`` unless ``target`` is absent or a regular file in an existing folder."""
    if not target.parent.is_dir():
        raise Int4rtError(f"cannot write {what} {str(target)!r}: no directory "
                          f"{str(target.parent)!r}")
    try:
        info = os.lstat(target)
    except FileNotFoundError:
        return
    except OSError as error:
        raise Int4rtError(f"cannot write {what} {str(target)!r}: "
                          f"{error.strerror or error}") from None
    if stat.S_ISDIR(info.st_mode):
        raise Int4rtError(f"cannot write {what} {str(target)!r}: it is a directory")
    if stat.S_ISLNK(info.st_mode):
        raise Int4rtError(f"cannot write {what} {str(target)!r}: it is a symbolic link; give "
                          "the path it points to, or remove the link")
    if not stat.S_ISREG(info.st_mode):
        raise Int4rtError(f"cannot write {what} {str(target)!r}: not a regular file (a FIFO, "
                          "socket or device); choose a file path")


def new_file_mode() -> int:
    """0666 less the process umask: what ``open(path, "w")`` would create."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_file_atomically(target: Path, data: bytes, what: str) -> None:
    """Write ``data`` to ``target`` through a temporary file renamed into place."""
    check_replaceable(target, what)
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.chmod(name, new_file_mode())
        os.replace(name, target)
    except OSError as error:
        raise Int4rtError(f"cannot write {what} {str(target)!r}: "
                          f"{error.strerror or error}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
