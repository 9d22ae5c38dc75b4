"""Canvas behaviour: zoom (wheel, fit, 100 %), pan (middle button, space-drag), partial redraw,
prompt markers, drag and drop onto the window."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QWheelEvent
from PySide6.QtWidgets import QApplication

from ovpaint.core.document import Document
from tests.app.conftest import drag, open_in, scene_image


def _wheel(canvas, steps):
    vp = canvas.viewport()
    pos = QPointF(vp.width() / 2, vp.height() / 2)
    event = QWheelEvent(
        pos,
        QPointF(vp.mapToGlobal(pos.toPoint())),
        QPoint(0, 0),
        QPoint(0, 120 * steps),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(vp, event)


def test_zoom_and_pan(qtbot, window, image_file):
    open_in(qtbot, window, image_file)
    canvas = window.canvas
    fitted = canvas.zoom
    assert fitted > 1  # 160×120 fitted into ~700 px
    _wheel(canvas, 2)
    assert abs(canvas.zoom - fitted * 1.25**2) < 1e-6
    canvas.actual_size()
    assert canvas.zoom == 1.0
    canvas.set_zoom(8)
    h = canvas.horizontalScrollBar()
    before = h.value()
    drag(canvas, [(80, 60), (70, 60)], button=Qt.MouseButton.MiddleButton)
    assert h.value() != before  # panned, and no stroke was painted
    assert len(window.context.document.layers) == 0
    QApplication.sendEvent(canvas, _key(QEvent.Type.KeyPress, Qt.Key.Key_Space))
    window.tools.set_tool("brush")
    before = h.value()
    drag(canvas, [(80, 60), (75, 60)])
    QApplication.sendEvent(canvas, _key(QEvent.Type.KeyRelease, Qt.Key.Key_Space))
    assert h.value() != before and len(window.context.document.layers) == 0
    window.findChild(type(window.undo_action), "fitAction").trigger()
    assert abs(canvas.zoom - fitted) < 1e-6


def _key(kind, key):
    from PySide6.QtGui import QKeyEvent

    return QKeyEvent(kind, key, Qt.KeyboardModifier.NoModifier)


def test_brush_on_a_24_megapixel_mask_rerenders_only_nearby_tiles(qtbot, window):
    rgb = np.repeat(np.repeat(scene_image(200, 300), 20, axis=0), 20, axis=1)
    doc = Document(rgb)
    window.context.set_document(doc)
    layer = window.layers.new_mask()
    canvas = window.canvas
    canvas.set_zoom(1.0)
    canvas.centerOn(3000, 2000)
    canvas.viewport().repaint()
    item = canvas.layer_items[layer.id]
    drawn = item.tiles_rendered
    window.tools.set_tool("brush")
    window.tools.set_brush_radius(20)
    drag(canvas, [(2990, 1990), (3010, 2010)])
    canvas.viewport().repaint()
    assert layer.mask[2000, 3000] and layer.mask.sum() < 10_000
    assert 0 < item.tiles_rendered - drawn <= 4  # the stroke touched one or a few tiles


def test_prompt_markers_follow_clicks(qtbot, window, image_file):
    open_in(qtbot, window, image_file)
    window.canvas.set_points([(10, 10, True), (20, 20, False)])
    assert [m.positive for m in window.canvas._markers] == [True, False]
    window.canvas.set_box((5, 5, 50, 40))
    assert window.canvas._box.isVisible()
    window.canvas.clear_prompts()
    assert not window.canvas._markers and not window.canvas._box.isVisible()


def test_drop_a_file_opens_it(qtbot, window, image_file):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(image_file))])
    event = QDropEvent(
        QPointF(100, 100),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    window.dropEvent(event)
    qtbot.waitUntil(lambda: window.context.document is not None, timeout=20_000)
    assert window.context.document.path == str(image_file)
    assert window.files.recent()[0] == str(image_file)
    assert window.recent_menu.actions()[0].text() == "&1 " + image_file.name


def test_tool_shortcuts_do_not_steal_typing(qtbot, window, image_file):
    open_in(qtbot, window, image_file)
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_B)
    assert window.tools.tool == "brush"
    qtbot.keyClick(window.canvas, Qt.Key.Key_X)
    assert window.tools.tool == "box"
    edit = window.prompt.prompt
    edit.setFocus()
    qtbot.keyClicks(edit, "sky, bass")
    assert edit.text() == "sky, bass" and window.tools.tool == "box"
