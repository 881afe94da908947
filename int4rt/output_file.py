"""The ``--output`` file of ``int4rt transcribe``: checked, resumable, written line by line.

DECODING.md, "`int4rt transcribe`" (Resuming, Output safety). A regular output file has a
side file ``OUT.run.json`` recording what produced it (model and LM hashes, search options,
manifest); a rerun resumes only with the same record. Each line is written whole or not at
all: a failed write (disk full, I/O error) is undone by truncating the file back. A FIFO or
device (``/dev/stdout``, ``/dev/null``, ``/dev/full``) is written to, never read.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
from pathlib import Path

from int4rt.errors import Int4rtError

RECORD_SUFFIX = ".run.json"
RECORD_VERSION = 1


class OutputError(Int4rtError):
    """The output cannot be used or written; the message says why and what to do."""


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


class OutputFile:
    """An open ``--output`` target: the results already in it and ``write`` for new lines."""

    def __init__(self, path: Path, record: dict, inputs: list[str]) -> None:
        """Check ``path`` against ``inputs`` (files it must not be) and ``record`` (what this
        run is), read the finished results of a regular file and open it for appending.
        """
        self.path = path
        self.done: dict[str, dict] = {}  # by the item's key: id, else audio
        info = _stat_target(path)
        if info is not None:
            for name in inputs:
                try:
                    same = _same_file(info, os.stat(name))
                except (OSError, ValueError):
                    continue
                if same:
                    raise OutputError(f"--output {path} is the input {name}; choose another "
                                      "output file")
        self.regular = info is None or stat.S_ISREG(info.st_mode)
        if self.regular:
            self.done = self._resume(info, record)
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if self.regular else 0)
        try:
            self._fd = os.open(path, flags, 0o666)
        except OSError as error:
            raise OutputError(f"cannot open --output {path}: {error.strerror or error}") from None

    def _resume(self, info: os.stat_result | None, record: dict) -> dict[str, dict]:
        record_path = Path(str(self.path) + RECORD_SUFFIX)
        if info is None or info.st_size == 0:
            _write_record(record_path, record)
            return {}
        try:
            previous = json.loads(record_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise OutputError(
                f"--output {self.path} exists but has no {record_path.name} recording what "
                "produced it, so it was not written by int4rt transcribe (or the record was "
                "deleted); choose another output file or delete it") from None
        except (OSError, ValueError) as error:
            raise OutputError(f"cannot read {record_path}: {error}; delete it and "
                              f"{self.path} to start over") from None
        changed = [key for key in sorted(set(record) | set(previous))
                   if record.get(key) != previous.get(key)]
        if changed:
            raise OutputError(
                f"--output {self.path} was produced with other settings ({', '.join(changed)} "
                f"differ, see {record_path.name}); resuming would mix results. Use the same "
                "settings, another output file, or delete it")
        return _finished_lines(self.path)

    def write(self, data: bytes) -> None:
        """Append one complete line; on failure truncate back and raise ``OutputError``."""
        size = os.lseek(self._fd, 0, os.SEEK_END) if self.regular else 0
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view):]
        except OSError as error:
            if self.regular:
                try:
                    os.ftruncate(self._fd, size)
                except OSError:
                    pass
            raise OutputError(f"cannot write --output {self.path}: "
                              f"{error.strerror or error}; the partial line was removed, "
                              "rerun the same command to resume") from None

    def close(self) -> None:
        """Close the file."""
        os.close(self._fd)


def _stat_target(path: Path) -> os.stat_result | None:
    """``stat`` of the output (None if it does not exist yet) after checking its folder."""
    try:
        parent = os.stat(path.parent if str(path.parent) else ".")
    except OSError as error:
        raise OutputError(f"--output {path}: its folder {path.parent} cannot be used "
                          f"({error.strerror or error}); create it first") from None
    except ValueError as error:
        raise OutputError(f"--output {path!r}: not a usable file name ({error})") from None
    if not stat.S_ISDIR(parent.st_mode):
        raise OutputError(f"--output {path}: {path.parent} is not a folder")
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise OutputError(f"--output {path}: a loop of symbolic links") from None
        raise OutputError(f"--output {path}: {error.strerror or error}") from None
    if stat.S_ISDIR(info.st_mode):
        raise OutputError(f"--output {path} is a folder; give a file name")
    return info


def _write_record(path: Path, record: dict) -> None:
    """Write the record file whole (a temporary file renamed over it)."""
    temporary = path.with_name(path.name + ".tmp")
    try:
        temporary.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n",
                             encoding="utf-8")
        os.replace(temporary, path)
    except OSError as error:
        raise OutputError(f"cannot write {path}: {error.strerror or error}") from None


def _finished_lines(path: Path) -> dict[str, dict]:
    """Results already in ``path``, by ``id`` (a segment's) else ``audio``; a partial last line
    (a crash) is cut off.
    """
    data = path.read_bytes()
    complete = data[:data.rfind(b"\n") + 1]
    if len(complete) != len(data):
        with path.open("r+b") as handle:
            handle.truncate(len(complete))
    done = {}
    for line in complete.decode("utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("audio"), str):
            key = entry.get("id", entry["audio"])
            if isinstance(key, str):
                done[key] = entry
    return done
