"""Drag and drop of images and projects onto the window, and File → Open Recent."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from tests.app.conftest import open_in, wait_idle


class _Enter:
    """What dragEnterEvent reads of a QDragEnterEvent (whose constructor is deprecated)."""

    def __init__(self, mime) -> None:
        self.mime, self.accepted = mime, False

    def mimeData(self):  # noqa: N802 - Qt's name
        return self.mime

    def acceptProposedAction(self) -> None:  # noqa: N802 - Qt's name
        self.accepted = True


def _drop(window, *paths):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    enter = _Enter(mime)
    window.dragEnterEvent(enter)
    accepted = enter.accepted
    drop = QDropEvent(
        QPointF(50, 50),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    window.dropEvent(drop)
    return accepted


def test_drop_a_project_opens_its_layers(qtbot, window, image_file, tmp_path):
    doc = open_in(qtbot, window, image_file)
    layer = window.layers.new_mask()
    doc.set_mask(layer, np.pad(np.ones((10, 10), bool), ((5, 105), (5, 145))))
    saved = tmp_path / "work.ovpaint"
    window.files.save_project(saved)
    wait_idle(qtbot, window)
    window.context.set_document(None)
    assert _drop(window, saved)
    qtbot.waitUntil(lambda: window.context.document is not None, timeout=20_000)
    wait_idle(qtbot, window)
    again = window.context.document
    assert [x.name for x in again.layers] == [layer.name]
    assert again.layers[0].mask.tobytes() == layer.mask.tobytes()
    assert window.files.project_path == saved and window.files.recent()[0] == str(saved)


def test_drop_of_something_else_says_so(qtbot, window, image_file, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    _drop(window, notes)
    assert window.context.document is None
    assert "notes.txt: not an image or an ovpaint project" in window.banner.text
    _drop(window, notes, image_file)  # the usable one is opened, the count is said
    qtbot.waitUntil(lambda: window.context.document is not None, timeout=20_000)
    assert window.context.document.path == str(image_file)
    assert "1 more dropped" in window.banner.text


def test_open_recent_lists_reopens_and_forgets_missing_files(qtbot, window, image_file, tmp_path):
    from PIL import Image

    other = tmp_path / "other.png"
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(other)
    open_in(qtbot, window, image_file)
    open_in(qtbot, window, other)
    actions = window.recent_menu.actions()
    assert [a.text() for a in actions[:2]] == ["&1 other.png", "&2 photo.png"]
    assert actions[1].toolTip() == str(image_file)
    actions[1].trigger()
    qtbot.waitUntil(lambda: window.context.document.path == str(image_file), timeout=20_000)
    wait_idle(qtbot, window)
    assert window.files.recent()[:2] == [str(image_file), str(other)]
    other.unlink()
    next(a for a in window.recent_menu.actions() if a.text().endswith("other.png")).trigger()
    assert "no longer there" in window.banner.text
    assert str(other) not in window.files.recent()
    clear = next(a for a in window.recent_menu.actions() if a.text() == "Clear Recent Files")
    clear.trigger()
    assert window.files.recent() == [] and not window.recent_menu.isEnabled()
