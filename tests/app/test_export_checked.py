"""Exports are checked when their dialog closes: an output that cannot be written is said at
once in the banner, and no job starts (the blend of a large image, the mask set)."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QAction

from ovpaint.app import files
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
