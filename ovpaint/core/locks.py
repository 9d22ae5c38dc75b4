"""Which process owns what: a lock file that says who holds it, and whether a process lives.

:class:`OwnerLock` is an OS lock (``flock`` / ``LockFileEx`` through ``msvcrt``) on a small
file that also records the holder (process id, host, start time, command). The OS drops the
lock when the holder dies, however it dies, so a lock left by a killed process is free again
at once and nobody has to guess from process ids whether it is stale; the record is only there
to tell the user who is in the way.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from ovpaint.core.errors import BadInput

HOST = socket.gethostname()


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (an unsure answer is yes)."""
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    if sys.platform == "win32":  # os.kill(pid, 0) would send CTRL_C_EVENT there
        import ctypes

        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return kernel32.GetLastError() == 5  # access denied: it exists
        code = ctypes.c_ulong()
        kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        kernel32.CloseHandle(handle)
        return code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def _try_lock(fd: int) -> bool:
    if sys.platform == "win32":
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


def _unlock(fd: int) -> None:
    with contextlib.suppress(OSError):
        if sys.platform == "win32":
            import msvcrt

            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_UN)


class OwnerLock:
    """An exclusive, non-blocking lock on ``path`` that records its holder.

    ``acquire()`` returns False when another process (or another lock object in this one)
    holds it; :meth:`holder` then says who. ``release()`` removes the file."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, **details: Any) -> bool:
        if self._fd is not None:
            return True
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
        for _ in range(5):
            try:
                fd = os.open(self.path, flags, 0o644)
            except OSError as exc:
                raise BadInput(f"Cannot create the lock file {self.path}: {exc.strerror}.") from exc
            if not _try_lock(fd):
                os.close(fd)
                return False
            # the file may have been removed by its last holder between our open and lock:
            # then we hold a lock on a name nobody sees; open the current file again
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except OSError:
                same = False
            if same:
                self._fd = fd
                self._write_record(details)
                return True
            _unlock(fd)
            os.close(fd)
        return False

    def _write_record(self, details: dict) -> None:
        record = {
            "pid": os.getpid(),
            "host": HOST,
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": " ".join(sys.argv)[:300],
            **details,
        }
        data = json.dumps(record).encode()
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
            # byte 0 is the locked byte on Windows: write the record after a newline
            os.lseek(self._fd, 0, os.SEEK_SET)
            os.write(self._fd, b"\n" + data)

    def holder(self) -> dict:
        """What the holder wrote about itself ({} when unreadable)."""
        from ovpaint.core.safeio import load_json, read_regular

        try:
            data = load_json(read_regular(self.path, 4096, "lock file").strip(), "lock file")
        except (OSError, BadInput):
            return {}
        return data if isinstance(data, dict) else {}

    def describe_holder(self) -> str:
        info = self.holder()
        pid, host = info.get("pid"), info.get("host")
        if not isinstance(pid, int):
            return "another process"
        where = "" if host == HOST else f" on {str(host)[:60]}"
        since = f", since {info['started']}" if isinstance(info.get("started"), str) else ""
        return f"process {pid}{where}{since}"

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            self.path.unlink()
        _unlock(fd)
        os.close(fd)

    def __enter__(self) -> OwnerLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self) -> None:  # a lock object dropped without release (a window torn down)
        with contextlib.suppress(Exception):
            self.release()


def is_held(path: str | os.PathLike) -> bool:
    """Whether someone holds the lock at ``path`` now (a missing file is not held)."""
    if not Path(path).exists():
        return False
    probe = OwnerLock(path)
    flags = os.O_RDWR | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(probe.path, flags)
    except OSError:
        return False
    try:
        if _try_lock(fd):
            _unlock(fd)
            return False
        return True
    finally:
        os.close(fd)
