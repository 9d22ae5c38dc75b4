"""Exports and project saves are checked when their dialog closes: an output that cannot be
written is said at once in the banner, and no job starts (the blend of a large image, the mask
set, the compression of every layer)."""

from __future__ import annotations

import errno
import os

import pytest
from PySide6.QtGui import QAction

from ovpaint.app import files
from ovpaint.core import fileio, project
from tests.app.conftest import drag, open_in, wait_idle


@pytest.fixture
def edited(qtbot, window, image_file, monkeypatch):
    """The window with the photo open, one stroke and one mask layer; records started jobs."""
    open_in(qtbot, window, image_file)
    window.tools.set_tool("brush")
    drag(window.canvas, [(30, 30), (90, 40)])
    window.layers.new_mask()
    drag(window.canvas, [(100, 90)])
    wait_idle(qtbot, window)
    jobs = []
    run_job = window.context.run_job

    def recording(fn, *args, title, **kwargs):
        jobs.append(title)
        return run_job(fn, *args, title=title, **kwargs)

    monkeypatch.setattr(window.context, "run_job", recording)
    return window, jobs


def _answer(monkeypatch, method, value):
    """The file dialog ``method`` returns ``value`` as if the user had chosen it."""
    monkeypatch.setattr(files.QFileDialog, method, staticmethod(lambda *a, **k: value))


def _trigger(window, text):
    action = next(a for a in window.findChildren(QAction) if a.text() == text)
    action.trigger()


def test_an_export_that_cannot_be_written_is_said_when_the_dialog_closes(
    qtbot, edited, tmp_path, monkeypatch
):
    window, jobs = edited
    folder = tmp_path / "taken.png"
    folder.mkdir()
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    for target, said in [
        (folder, "it is a folder"),
        (a_file / "out.png", "is a file"),
    ]:
        _answer(monkeypatch, "getSaveFileName", (str(target), "PNG (*.png)"))
        _trigger(window, "&Export Edited Image…")
        assert jobs == [], target
        assert said in window.banner.text and str(target) in window.banner.text
    assert a_file.read_text() == "mine" and not list(folder.iterdir())
    # a usable name still exports
    good = tmp_path / "out.png"
    _answer(monkeypatch, "getSaveFileName", (str(good), "PNG (*.png)"))
    _trigger(window, "&Export Edited Image…")
    wait_idle(qtbot, window)
    assert jobs == ["Export image"] and good.exists()


def test_a_mask_set_that_cannot_be_written_is_said_before_the_job(
    qtbot, edited, tmp_path, monkeypatch
):
    window, jobs = edited
    a_file = tmp_path / "masks.txt"
    a_file.write_text("mine")
    _answer(monkeypatch, "getExistingDirectory", str(a_file))
    _trigger(window, "Export Masks (one PNG per layer)…")
    assert jobs == [] and "is a file, not a folder" in window.banner.text
    # one file of the set is in the way: the class file here, a folder of that name
    out = tmp_path / "out"
    (out / "photo.classes.txt").mkdir(parents=True)
    _answer(monkeypatch, "getExistingDirectory", str(out))
    for text in ("Export Masks (one PNG per layer)…", "Export Masks (label map)…"):
        _trigger(window, text)
        assert jobs == [] and "photo.classes.txt" in window.banner.text
    assert sorted(p.name for p in out.iterdir()) == ["photo.classes.txt"]
    # a usable folder still exports
    _answer(monkeypatch, "getExistingDirectory", str(tmp_path / "fine"))
    _trigger(window, "Export Masks (label map)…")
    wait_idle(qtbot, window)
    assert jobs == ["Export masks"] and (tmp_path / "fine" / "photo.labels.png").exists()


def _files(folder):
    """Every file under ``folder`` with its bytes."""
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _refuse(monkeypatch, module, name, code):
    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(module, name, refuse)


@pytest.mark.parametrize(
    "case, said",
    [
        ("folder cannot be made", "is a file, not a folder"),
        ("name is a folder of other files", "not an ovpaint project"),
        ("read-only disk", "the disk is read-only"),
        ("no permission", "No permission to write"),
        ("disk full", "Disk full"),
    ],
)
def test_a_project_location_that_cannot_be_written_is_said_when_the_dialog_closes(
    qtbot, edited, tmp_path, monkeypatch, case, said
):
    window, jobs = edited
    doc = window.context.document
    target = tmp_path / "work" / "p.ovpaint"
    target.parent.mkdir()
    if case == "folder cannot be made":  # its folder does not exist and cannot be created
        (tmp_path / "notes.txt").write_text("mine")
        target = tmp_path / "notes.txt" / "new" / "p.ovpaint"
    elif case == "name is a folder of other files":
        target.mkdir()
        (target / "mine.txt").write_text("mine")
    before = _files(tmp_path)
    _answer(monkeypatch, "getSaveFileName", (str(target), files.PROJECT_FILTER))
    with monkeypatch.context() as disk:
        if case == "read-only disk":
            _refuse(disk, fileio.tempfile, "mkstemp", errno.EROFS)
        elif case == "no permission":
            _refuse(disk, fileio.tempfile, "mkstemp", errno.EACCES)
        elif case == "disk full":  # an empty file still fits; its first byte does not
            _refuse(disk, fileio.os, "write", errno.ENOSPC)
        _trigger(window, "Save Project &As…")
    assert jobs == []
    assert said in window.banner.text and str(target) in window.banner.text
    assert doc.dirty and window.files.project_path is None
    assert _files(tmp_path) == before  # nothing written, nothing of the user's touched
    # the same document saves at a usable location; a missing folder is made, as for exports
    good = tmp_path / "new folder" / "p"
    _answer(monkeypatch, "getSaveFileName", (str(good), files.PROJECT_FILTER))
    _trigger(window, "Save Project &As…")
    wait_idle(qtbot, window)
    saved = good.with_suffix(project.SUFFIX)
    assert jobs == ["Save project"] and not doc.dirty
    assert window.files.project_path == saved and said not in window.banner.text
    assert project.load_project(saved).width == doc.width


def test_a_folder_project_that_cannot_be_saved_is_said_before_the_job(
    qtbot, edited, tmp_path, monkeypatch
):
    """Save of a project opened from a folder writes back there without a dialog: a folder
    that became unusable is said before the job too."""
    window, jobs = edited
    folder = tmp_path / "work"
    (folder / "layers").mkdir(parents=True)
    (folder / "layers" / "mine.txt").write_text("mine")  # not a project: refused, kept
    window.files.project_path = folder
    _trigger(window, "&Save Project")
    assert jobs == [] and "not an ovpaint project" in window.banner.text
    assert [p.name for p in folder.rglob("*")] == ["layers", "mine.txt"]
