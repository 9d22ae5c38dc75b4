"""Tools a person can see and messages that behave: the default tool starts no model job,
a click selects the mask under it, brush and eraser act on the selected mask (and say what
they do when none is), a new mask becomes selected, one notification area where a success
clears the error it supersedes and an error keeps its details one click away."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QToolButton

from ovpaint.app.tools import TOOL_KEYS, TOOLS
from tests.app import scripted
from tests.app.conftest import click, drag, open_in, wait_idle


def test_default_tool_pans_and_selects_without_a_model_job(qtbot, window, image_file):
    doc = open_in(qtbot, window, image_file)
    assert window.tools.tool == "pan" and window.tool_actions["pan"].isChecked()
    started = []
    window.workers.job_started.connect(started.append)
    click(window.canvas, 80, 60)  # a click to focus the window
    assert started == [] and len(doc.layers) == 0 and not window.context.busy
    a = window.layers.new_mask()
    b = window.layers.new_mask()
    doc.set_mask(a, np.pad(np.ones((20, 20), bool), ((10, 90), (10, 130))))
    assert doc.layers.selected is b  # a new mask becomes the selected one
    click(window.canvas, 15, 15)
    assert doc.layers.selected is a and started == []
    click(window.canvas, 150, 110)  # nothing there: the selection stays
    assert doc.layers.selected is a


def test_toolbar_icons_tooltips_and_legend(qtbot, window, image_file):
    open_in(qtbot, window, image_file)
    for tool in TOOLS:
        action = window.tool_actions[tool]
        assert not action.icon().isNull(), tool
        assert f"({TOOL_KEYS[tool]})" in action.toolTip()
    window.tools.set_tool("brush")
    assert "paint into the mask" in window.legend.text()
    assert "a new mask will be made" in window.legend.text()
    layer = window.layers.new_mask()
    assert f"“{layer.name}”" in window.legend.text()
    window.tools.set_tool("eraser")
    window.context.document.layers.select(None)
    assert "select one to erase from" in window.legend.text()
    buttons = [b for b in window.layers.findChildren(QToolButton) if b.objectName()]
    assert all(not b.icon().isNull() and "(" in b.toolTip() for b in buttons)


def test_brush_and_eraser_target_the_selected_mask(qtbot, window, image_file):
    doc = open_in(qtbot, window, image_file)
    window.tools.set_tool("eraser")
    drag(window.canvas, [(20, 20), (40, 20)])
    assert len(doc.layers) == 0 and "nothing to erase" in window.banner.text
    window.tools.set_tool("brush")
    window.tools.set_brush_radius(4)
    drag(window.canvas, [(20, 20), (40, 20)])
    assert [x.name for x in doc.layers] == ["mask"]
    assert "painting into a new mask “mask”" in window.banner.text
    first = doc.layers[0]
    assert doc.layers.selected is first
    drag(window.canvas, [(20, 60), (40, 60)])  # the next stroke lands in the same mask
    assert len(doc.layers) == 1 and first.mask[60, 30] and first.mask[20, 30]


def test_a_mask_made_by_a_click_is_selected_and_brushed(qtbot, window, image_file):
    doc = open_in(qtbot, window, image_file)
    window.tools.set_tool("positive")
    click(window.canvas, 80, 84)
    wait_idle(qtbot, window)
    assert [x.name for x in doc.layers] == ["object"]
    made = doc.layers[0]
    assert doc.layers.selected is made
    window.tools.set_tool("brush")
    window.tools.set_brush_radius(3)
    drag(window.canvas, [(5, 5), (15, 5)])
    assert len(doc.layers) == 1 and made.mask[5, 10]


def test_a_success_clears_the_error_it_supersedes(qtbot, window, image_file, monkeypatch):
    open_in(qtbot, window, image_file)
    scripted.install(monkeypatch, window)
    window.prompt.prompt.setText("boom")
    qtbot.mouseClick(window.prompt.button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, window)
    banner = window.banner
    assert banner.kind == "error" and "refuses 'boom'" in banner.text
    # the details are one click away: the traceback, for a bug report
    assert banner.details_button.isVisible() and not banner.details.isVisible()
    qtbot.mouseClick(banner.details_button, Qt.MouseButton.LeftButton)
    assert banner.details.isVisible() and "Traceback" in banner.details.toPlainText()
    # a note of another topic does not hide it (it goes to the status bar)
    banner.show_message("Exported x.png", "success", topic="export")
    assert "refuses" in banner.text and window.statusBar().currentMessage() == "Exported x.png"
    window.prompt.prompt.setText("sky")
    qtbot.mouseClick(window.prompt.button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, window)
    assert "refuses" not in banner.text  # the segmentation that worked superseded it
    assert window.findChild(type(banner), "notificationArea") is banner  # one area


def test_one_message_at_a_time(qtbot, window):
    banner = window.banner
    banner.show_message("first", "error", topic="open")
    banner.show_message("second", "error", topic="export")
    assert banner.text == "second" and banner.isVisible()
    banner.succeeded("open")  # not the error on screen: it stays
    assert banner.text == "second"
    banner.succeeded("export")
    assert banner.text == "" and not banner.isVisible()
    assert [n.text for n in banner.history][-2:] == ["first", "second"]
