"""Writing outputs: checked before the work, written atomically, leftovers cleaned.

- :func:`check_output_file` / :func:`check_output_dir` run before any compute, so a folder
  given as ``--out``, a parent that is a file, a read-only disk or an existing file is one
  line and exit 2 at once, not a traceback after minutes of work;
- :func:`atomic_path` writes beside the target and renames: a crash, a cancel or a full disk
  never leaves a half-written output, and the same errors map to the same one-line messages;
- its temporary files carry the writer's process id and host, so the ones a killed process
  left are removed (:func:`clean_stale_temps`) when the next process first writes into that
  folder (a save, an export, a batch), never a user's file.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from ovpaint.core.errors import BadInput, DiskFull, OvpaintError
from ovpaint.core.locks import HOST, pid_alive

TEMP_SUFFIX = ".part"
_HOST_TAG = hashlib.sha1(HOST.encode()).hexdigest()[:6]
# ".<target name>.ovp<pid>@<host tag>-<random>.part" (and, from older versions, without the tag)
_TEMP_RE = re.compile(
    r"^\.(?P<target>.+)\.(?:ovp(?P<pid>\d+)@(?P<host>[0-9a-f]{6})-)?[a-z0-9_]{8}\.part$"
)
STALE_UNTAGGED_S = 3600  # a write never takes an hour: an untagged temporary older is a leftover
STALE_FOREIGN_S = 24 * 3600  # another machine's writer cannot be asked whether it still runs


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


# why a write failed, by errno, as the end of "Cannot write PATH: ..."
_WRITE_REASONS = {
    errno.EROFS: "the disk is read-only",
    errno.EISDIR: "it is a folder, not a file",
    errno.ENOTDIR: "part of the path is a file, not a folder",
    errno.EEXIST: "it already exists",
    errno.ENOENT: "its folder does not exist",
    errno.ENAMETOOLONG: "the name is too long",
}


def write_error(exc: OSError, path: str | os.PathLike, what: str = "") -> OvpaintError:
    """The one-line error for an OSError met while writing ``path`` (exit 2, or 5 when the
    disk is full). ``what`` names the option (``--out``) when there is one."""
    label = f"{what} {path}" if what else str(path)
    code = exc.errno
    if code == errno.ENOSPC or code == getattr(errno, "EDQUOT", -1):
        return DiskFull(f"Disk full while writing {path}; nothing was written.")
    if code in _WRITE_REASONS:
        return BadInput(f"Cannot write {label}: {_WRITE_REASONS[code]}.")
    if code in (errno.EACCES, errno.EPERM) or isinstance(exc, PermissionError):
        return BadInput(f"No permission to write {label}.")
    return BadInput(f"Cannot write {label}: {exc.strerror or exc}.")


def _temp_prefix(target: Path) -> str:
    return f".{target.name}.ovp{os.getpid()}@{_HOST_TAG}-"


def is_stale_temp(path: Path, now: float | None = None) -> bool:
    """Whether ``path`` is a temporary file of :func:`atomic_path` whose writer is gone: one
    of this machine's dead processes, or too old to be anybody's write in progress."""
    found = _TEMP_RE.match(path.name)
    if found is None:
        return False
    try:
        info = path.lstat()
    except OSError:
        return False
    if not stat.S_ISREG(info.st_mode):
        return False
    age = (now or time.time()) - info.st_mtime
    if found["pid"] is None:
        return age > STALE_UNTAGGED_S
    if found["host"] != _HOST_TAG:
        return age > STALE_FOREIGN_S
    return not pid_alive(int(found["pid"]))


def clean_stale_temps(folder: str | os.PathLike, target_name: str | None = None) -> int:
    """Remove the stale temporaries (see :func:`is_stale_temp`) in ``folder``, only those of
    ``target_name`` when given. Returns how many were removed; errors are ignored."""
    removed = 0
    prefix = f".{target_name}." if target_name is not None else "."
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        if not entry.name.startswith(prefix) or not entry.name.endswith(TEMP_SUFFIX):
            continue
        path = Path(entry.path)
        found = _TEMP_RE.match(entry.name)
        if found is None or (target_name is not None and found["target"] != target_name):
            continue
        if is_stale_temp(path):
            with suppress(OSError):
                path.unlink()
                removed += 1
    return removed


_CLEANED: set[str] = set()
_CLEANED_LOCK = threading.Lock()


def _clean_once(folder: Path) -> None:
    """:func:`clean_stale_temps` the first time this process writes into ``folder``: a batch
    writing thousands of outputs into one folder lists it once, not once per file."""
    key = os.path.abspath(folder)
    with _CLEANED_LOCK:
        if key in _CLEANED:
            return
        _CLEANED.add(key)
    clean_stale_temps(folder)


def _existing_ancestor(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            return candidate
    return Path(path.anchor or ".")


def file_id(path: str | os.PathLike) -> tuple[int, int] | None:
    """(device, inode) of an existing file, links followed; None when it does not exist."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def file_ids(paths: Iterable[str | os.PathLike]) -> set[tuple[int, int]]:
    """The identities of the existing ``paths``: looked up once, then any number of outputs
    is compared with them in constant time each."""
    return {fid for fid in (file_id(p) for p in paths) if fid is not None}


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name one file (links, hard links and ``..`` included)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def _check_folder_writable(folder: Path, what: str, label: Path) -> None:
    """``folder`` (or, when it does not exist yet, the folder that will hold it) can be
    written. Probes with a real file of one byte when the folder exists, so ACLs, read-only
    mounts and a disk without room are seen; leaves nothing behind."""
    base = _existing_ancestor(folder)
    if not base.is_dir():
        raise BadInput(f"Cannot write {what} {label}: {base} is a file, not a folder.")
    if base != folder:
        with suppress(OSError, AttributeError):
            if os.statvfs(base).f_flag & os.ST_RDONLY:
                raise write_error(OSError(errno.EROFS, "read-only"), label, what)
        if not os.access(base, os.W_OK | os.X_OK):
            raise BadInput(
                f"Cannot write {what} {label}: no permission to create folders in {base}."
            )
        return
    try:
        fd, probe = tempfile.mkstemp(prefix=".ovpaint-probe-", dir=folder)
    except OSError as exc:
        raise write_error(exc, label, what) from exc
    try:
        os.write(fd, b"\0")  # an empty file needs no room on the disk; a byte does
    except OSError as exc:
        raise write_error(exc, label, what) from exc
    finally:
        os.close(fd)
        with suppress(OSError):
            os.unlink(probe)


def check_output_file(
    path: str | os.PathLike,
    *,
    what: str = "",
    overwrite: bool = True,
    inputs: Iterable[str | os.PathLike] = (),
    exists_hint: str = "",
    probed: set[Path] | None = None,
) -> Path:
    """Check, before any work, that ``path`` can be written as a file: it is none of
    ``inputs``, not a folder or a special file, absent when ``overwrite`` is False, and its
    folder exists or can be created on a writable disk. Raises the one-line BadInput that
    writing would have raised at the end; creates nothing. ``probed``: folders already found
    writable by the caller's earlier checks (updated), so a set of files in one folder probes
    it once."""
    path = Path(path).expanduser()
    label = f"{what} {path}" if what else str(path)
    for source in inputs:
        if source is not None and os.path.lexists(path) and same_file(path, source):
            raise BadInput(
                f"{label} is the input {source}; choose another output "
                "(originals are never overwritten)."
            )
    if os.path.lexists(path):
        try:
            info = path.stat()
        except OSError as exc:
            raise write_error(exc, path, what) from exc
        if stat.S_ISDIR(info.st_mode):
            raise write_error(OSError(errno.EISDIR, "is a folder"), path, what)
        if not stat.S_ISREG(info.st_mode):
            raise BadInput(f"Cannot write {label}: it is a pipe or device, not a file.")
        if not overwrite:
            raise BadInput(f"{label} exists{'; ' + exists_hint if exists_hint else ''}.")
    if probed is None or path.parent not in probed:
        _check_folder_writable(path.parent, what, path)
        if probed is not None:
            probed.add(path.parent)
    return path


def check_output_dir(
    path: str | os.PathLike, *, what: str = "", inputs: Iterable[str | os.PathLike] = ()
) -> Path:
    """Check, before any work, that ``path`` is (or can be created as) a writable folder that
    is not one of ``inputs``. Creates nothing."""
    path = Path(path).expanduser()
    for source in inputs:
        if source is not None and os.path.lexists(path) and same_file(path, source):
            raise BadInput(f"{what or 'The output folder'} {path} is the input {source}.")
    if os.path.lexists(path) and not path.is_dir():
        raise BadInput(
            f"Cannot write {what} {path}: it is a file, not a folder.".replace("  ", " ")
        )
    _check_folder_writable(path, what, path)
    return path


@contextmanager
def atomic_path(target: str | os.PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it replaces ``target`` atomically.

    On any exception the temporary file is removed and ``target`` is left as it was. The
    temporaries killed writers left in the folder are removed first (once per process)."""
    target = Path(target)
    if not overwrite and target.exists():
        raise BadInput(f"Refusing to overwrite existing file: {target}")
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(exc, parent) from exc
    _clean_once(parent)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=_temp_prefix(target), suffix=TEMP_SUFFIX, dir=parent)
    except OSError as exc:
        raise write_error(exc, target) from exc
    os.close(fd)
    tmp = Path(tmp_name)
    _set_mode_like(tmp, target)
    try:
        yield tmp
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise write_error(exc, target) from exc
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
