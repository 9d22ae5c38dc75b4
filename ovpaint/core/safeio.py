"""Reading files that someone else may have prepared: project files, state files, settings.

Three rules, one implementation each, used by every reader of such files:

- a path read from a file is a relative name checked by :func:`under_root`: resolved (links
  followed) it must stay inside the folder it belongs to;
- a file is read through :func:`open_regular` / :func:`zip_member`: only regular files (no
  FIFO that blocks forever, no device such as ``/dev/zero``), at most a byte cap, checked
  against the declared size (``stat``, the zip directory) *and* while reading, so a lying size
  cannot make a reader swallow more;
- JSON is parsed by :func:`load_json`: a size cap, a nesting limit, no NaN/Infinity, no
  numbers that overflow a float;
- a folder someone else filled is listed by :func:`list_names`: read lazily and refused past
  a number of entries, so a folder of millions of files is not taken in whole.
"""

from __future__ import annotations

import io
import json
import math
import os
import stat
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO, Any

from ovpaint.core.errors import BadInput

MAX_JSON_BYTES = 16 << 20
MAX_JSON_DEPTH = 32
CHUNK = 1 << 20


def _fmt_bytes(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} bytes"


def too_large(what: str, cap: int) -> BadInput:
    return BadInput(f"{what} is larger than {_fmt_bytes(cap)}; refusing to read it.")


# --------------------------------------------------------------------------- names and roots
def safe_name(name: Any, what: str) -> PurePosixPath:
    """A relative name from a file (``layers/001-mask.png``): a string without a drive, a
    leading ``/`` or ``\\``, a ``..`` part or a NUL. Anything else is a BadInput."""
    if not isinstance(name, str) or not name or len(name) > 1024:
        raise BadInput(f"{what} names a file in an unusable way: {name!r:.80}")
    parts = PurePosixPath(name).parts
    if (
        "\\" in name
        or "\0" in name
        or name.startswith("/")
        or ":" in name
        or any(p in ("..", "") for p in parts)
    ):
        raise BadInput(f"{what} refers to an unsafe path: {name:.200}")
    return PurePosixPath(name)


def within(path: str | os.PathLike, root: str | os.PathLike) -> bool:
    """Whether ``path`` lies in ``root`` (or is it), both taken as they are."""
    try:
        Path(path).relative_to(root)
        return True
    except ValueError:
        return False


def under_root(root: str | os.PathLike, name: Any, what: str) -> Path:
    """``root / name`` resolved, links included, after checking it stays inside ``root``
    (resolved too). ``name`` is checked with :func:`safe_name` first."""
    rel = safe_name(name, what)
    real_root = Path(os.path.realpath(root))
    real = Path(os.path.realpath(real_root.joinpath(*rel.parts)))
    if not within(real, real_root):
        raise BadInput(f"{what}: {name} leads outside its folder ({real_root}); refusing it.")
    return real


# --------------------------------------------------------------------------- bounded streams
class BoundedReader(io.RawIOBase):
    """A read-only view of a stream that refuses to deliver more than ``cap`` bytes."""

    def __init__(self, raw: IO[bytes], cap: int, what: str) -> None:
        super().__init__()
        self._raw, self._cap, self._what = raw, cap, what
        self._count = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return bool(getattr(self._raw, "seekable", lambda: False)())

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def readinto(self, buffer) -> int:
        view = memoryview(buffer)
        room = self._cap + 1 - self._position()
        if room <= 0:
            raise too_large(self._what, self._cap)
        data = self._raw.read(min(len(view), room, CHUNK))
        n = len(data)
        view[:n] = data
        self._count += n
        if self._position() > self._cap:
            raise too_large(self._what, self._cap)
        return n

    def _position(self) -> int:
        """Bytes from the start up to here (after a seek, the position, not what was read)."""
        if self.seekable():
            return self._raw.tell()
        return self._count

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            super().close()


def read_all(stream: IO[bytes], cap: int, what: str) -> bytes:
    """Every byte of ``stream`` in chunks, refusing more than ``cap``."""
    chunks, total = [], 0
    while True:
        chunk = stream.read(min(CHUNK, cap + 1 - total))
        if not chunk:
            break
        total += len(chunk)
        if total > cap:
            raise too_large(what, cap)
        chunks.append(chunk)
    return b"".join(chunks)


@contextmanager
def open_regular(path: str | os.PathLike, cap: int, what: str) -> Iterator[IO[bytes]]:
    """Open a regular file for reading, at most ``cap`` bytes of it.

    Opened without blocking (a FIFO would wait for a writer forever) and checked on the open
    descriptor, so what is read is what was checked: a FIFO, a device or a folder is refused,
    as is a file whose size is over ``cap``; the stream stops at ``cap`` should it grow."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise  # the caller says what is missing, in its own words
    except IsADirectoryError as exc:
        raise BadInput(f"{what} is a folder, not a file.") from exc
    except OSError as exc:
        raise BadInput(f"Cannot read {what}: {exc.strerror or exc}.") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = (
                "a folder"
                if stat.S_ISDIR(info.st_mode)
                else "a pipe"
                if stat.S_ISFIFO(info.st_mode)
                else "a device or special file"
            )
            raise BadInput(f"{what} is {kind}, not a regular file; refusing to read it.")
        if info.st_size > cap:
            raise too_large(what, cap)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        raw = os.fdopen(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise
    reader = BoundedReader(raw, cap, what)
    with io.BufferedReader(reader, CHUNK) as stream:
        yield stream


def read_regular(path: str | os.PathLike, cap: int, what: str) -> bytes:
    with open_regular(path, cap, what) as stream:
        return read_all(stream, cap, what)


@contextmanager
def zip_member(zf: zipfile.ZipFile, name: str, cap: int, what: str) -> Iterator[IO[bytes]]:
    """A member of a zip, refused when its declared size is over ``cap`` and stopped at
    ``cap`` bytes whatever the compressed stream expands to."""
    info = zf.getinfo(name)  # KeyError when missing: the caller names what is missing
    if info.is_dir():
        raise BadInput(f"{what} is a folder in the archive, not a file.")
    if info.file_size > cap:
        raise too_large(what, cap)
    raw = zf.open(info)
    reader = BoundedReader(raw, min(cap, info.file_size), what)
    with io.BufferedReader(reader, CHUNK) as stream:
        yield stream


# --------------------------------------------------------------------------- folders
def list_names(folder: str | os.PathLike, max_entries: int, what: str) -> list[str]:
    """The names of the entries in ``folder``, sorted. The listing is read lazily and stops
    at the entry after ``max_entries``: a folder holding more is one BadInput naming
    ``what``, the folder and the limit (a part of it, which part depending on the disk's
    order, would not be the same set from one run to the next)."""
    names: list[str] = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if len(names) == max_entries:
                    raise BadInput(
                        f"{what} {folder} holds more than {max_entries:,} entries; "
                        f"refusing to list it (at most {max_entries:,} are read)."
                    )
                names.append(entry.name)
    except OSError as exc:
        raise BadInput(f"Cannot list {what} {folder}: {exc.strerror or exc}.") from exc
    return sorted(names)


# --------------------------------------------------------------------------- JSON
def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:20]} is out of range")
    return value


def depth(value: Any) -> int:
    """Nesting depth of parsed JSON (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            deepest = max(deepest, level)
            continue
        deepest = max(deepest, level + 1)
        stack.extend((child, level + 1) for child in children)
    return deepest


def load_json(
    data: bytes | str,
    what: str,
    *,
    max_bytes: int = MAX_JSON_BYTES,
    max_depth: int = MAX_JSON_DEPTH,
) -> Any:
    """Parse JSON from outside: at most ``max_bytes``, nested at most ``max_depth`` deep, no
    NaN or Infinity, no float that overflows (``1e999``). Damage is one BadInput."""
    if len(data) > max_bytes:
        raise too_large(what, max_bytes)
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise BadInput(f"{what} is nested too deeply.") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadInput(f"{what} is not valid JSON: {str(exc)[:200]}") from None
    if depth(value) > max_depth:
        raise BadInput(f"{what} is nested more than {max_depth} levels deep.")
    return value


def read_json_file(path: str | os.PathLike, what: str, *, max_bytes: int = MAX_JSON_BYTES) -> Any:
    return load_json(read_regular(path, max_bytes, what), what, max_bytes=max_bytes)
