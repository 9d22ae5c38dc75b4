"""Atomic writes: an exception or a full disk leaves the target as it was and no temp file."""

from __future__ import annotations

import errno
import os
import stat

import pytest

from ovpaint.core import fileio
from ovpaint.core.errors import BadInput, DiskFull
from ovpaint.core.fileio import atomic_path, atomic_save, atomic_write_bytes, atomic_write_text


def test_write_creates_folders_and_replaces(tmp_path):
    target = tmp_path / "a" / "b" / "out.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert os.listdir(target.parent) == ["out.txt"]


def test_exception_leaves_target_unchanged(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"original")

    def writer(tmp):
        tmp.write_bytes(b"half")
        raise RuntimeError("crash while writing")

    with pytest.raises(RuntimeError):
        atomic_save(target, writer)
    assert target.read_bytes() == b"original"
    assert os.listdir(tmp_path) == ["out.bin"]
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"x")
            raise KeyboardInterrupt
    assert target.read_bytes() == b"original" and os.listdir(tmp_path) == ["out.bin"]


def test_disk_full_is_disk_full_and_leaves_nothing(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    target.write_bytes(b"original")

    def full(tmp):
        tmp.write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(DiskFull, match="nothing was written"):
        atomic_save(target, full)
    assert target.read_bytes() == b"original" and os.listdir(tmp_path) == ["out.png"]

    def replace_full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fileio.os, "replace", replace_full)
    with pytest.raises(DiskFull):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"original" and os.listdir(tmp_path) == ["out.png"]


def test_overwrite_false_and_permissions(tmp_path):
    target = tmp_path / "keep.txt"
    target.write_text("mine")
    with pytest.raises(BadInput, match="Refusing to overwrite"):
        atomic_write_text(target, "theirs", overwrite=False)
    assert target.read_text() == "mine"
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        try:
            with pytest.raises(BadInput, match="permission"):
                atomic_write_text(locked / "x.txt", "x")
        finally:
            locked.chmod(0o700)


def test_new_files_get_normal_permissions_and_replacements_keep_theirs(tmp_path):
    new = atomic_write_text(tmp_path / "new.txt", "x")
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(new.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600
    kept = tmp_path / "kept.txt"
    kept.write_text("a")
    kept.chmod(0o640)
    atomic_write_text(kept, "b")
    assert stat.S_IMODE(kept.stat().st_mode) == 0o640


def test_json_lines_append_and_disk_full(tmp_path, monkeypatch):
    import json
    from pathlib import Path

    state = tmp_path / "run.state.jsonl"
    fileio.append_json_line(state, {"id": "a", "path": Path("x")})
    fileio.append_json_line(state, {"id": "b"})
    assert [json.loads(x) for x in state.read_text().splitlines()] == [
        {"id": "a", "path": "x"},
        {"id": "b"},
    ]

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fileio.os, "fsync", full)
    with pytest.raises(DiskFull, match="Disk full while writing"):
        fileio.append_json_line(state, {"id": "c"})
