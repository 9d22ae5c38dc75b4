"""Atomic file writes: a crash, a cancel or a full disk never leaves a half-written output."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ovpaint.core.errors import BadInput, DiskFull


def _set_mode_like(tmp: Path, target: Path) -> None:
    """mkstemp makes 0600 files; give the output the permissions of the file it replaces,
    or what the user's umask gives a new file, so exports are readable as usual."""
    try:
        mode = target.stat().st_mode & 0o7777 if target.exists() else 0o666 & ~_umask()
        os.chmod(tmp, mode)
    except OSError:
        pass


_UMASK: int | None = None


def _umask() -> int:
    global _UMASK
    if _UMASK is None:
        current = os.umask(0o022)  # reading the umask means setting it; put it back at once
        os.umask(current)
        _UMASK = current
    return _UMASK


@contextmanager
def atomic_path(target: str | os.PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it replaces ``target`` atomically.

    On any exception the temporary file is removed and ``target`` is left as it was.
    """
    target = Path(target)
    if not overwrite and target.exists():
        raise BadInput(f"Refusing to overwrite existing file: {target}")
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except PermissionError as exc:
        raise BadInput(f"No permission to create folder {parent}") from exc
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=parent)
    except PermissionError as exc:
        raise BadInput(f"No permission to write in {parent}") from exc
    os.close(fd)
    tmp = Path(tmp_name)
    _set_mode_like(tmp, target)
    try:
        yield tmp
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno == errno.ENOSPC:
            raise DiskFull(f"Disk full while writing {target}; nothing was written.") from exc
        if isinstance(exc, PermissionError):
            raise BadInput(f"No permission to write {target}") from exc
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(target: str | os.PathLike, data: bytes, *, overwrite: bool = True) -> Path:
    with atomic_path(target, overwrite=overwrite) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def atomic_write_text(target: str | os.PathLike, text: str, *, overwrite: bool = True) -> Path:
    return atomic_write_bytes(target, text.encode("utf-8"), overwrite=overwrite)


def atomic_save(
    target: str | os.PathLike, writer: Callable[[Path], None], *, overwrite: bool = True
) -> Path:
    """Call ``writer(tmp_path)`` and move the result into place atomically."""
    with atomic_path(target, overwrite=overwrite) as tmp:
        writer(tmp)
    return Path(target)


def append_json_line(path: str | os.PathLike, record: dict) -> None:
    """Append one JSON line and make it durable (resume state of batch and benchmark runs: a
    crash tears at most the last line). A full disk is DiskFull."""
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, default=str) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise DiskFull(f"Disk full while writing {path}.") from exc
        raise
