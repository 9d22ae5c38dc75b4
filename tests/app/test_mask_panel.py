"""The Mask panel through its widgets: sliders preview on the canvas before anything changes,
Apply is one undo step with exact undo, a new selection resets it, Invert and Clear."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt

from ovpaint.core import masks as mask_ops
from tests.app.conftest import drag, open_in


def _painted(qtbot, window, image_file):
    doc = open_in(qtbot, window, image_file)
    layer = window.layers.new_mask()
    window.tools.set_tool("brush")
    window.tools.set_brush_radius(10)
    drag(window.canvas, [(80, 60), (90, 64)])
    return doc, layer


def _shown(window, layer):
    return window.canvas.layer_items[layer.id].provider.mask


def test_sliders_preview_then_apply_is_one_exact_undo_step(qtbot, window, image_file):
    doc, layer = _painted(qtbot, window, image_file)
    panel = window.mask_panel
    before = layer.mask.copy()
    steps = window.context.undo_stack.count()
    assert not panel.apply_button.isEnabled()  # nothing to apply at 0 / 0
    panel.grow_spin.setValue(4)
    panel.feather.setValue(3)  # the slider and its box move together
    assert panel.feather_spin.value() == 3
    expected = mask_ops.adjust(before, 4, 3)
    qtbot.waitUntil(lambda: panel.preview is not None, timeout=10_000)
    assert np.array_equal(_shown(window, layer), expected)  # the canvas shows the result…
    assert np.array_equal(layer.mask, before)  # …the document does not have it yet
    assert window.context.undo_stack.count() == steps
    qtbot.mouseClick(panel.apply_button, Qt.MouseButton.LeftButton)
    assert layer.mask.dtype == np.uint8 and np.array_equal(layer.mask, expected)
    assert window.context.undo_stack.count() == steps + 1
    assert (panel.grow.value(), panel.feather.value()) == (0, 0)
    window.undo_action.trigger()
    assert layer.mask.dtype == before.dtype and layer.mask.tobytes() == before.tobytes()
    assert _shown(window, layer) is layer.mask


def test_shrink_applied_before_its_preview_arrives(qtbot, window, image_file):
    doc, layer = _painted(qtbot, window, image_file)
    panel = window.mask_panel
    before = layer.mask.copy()
    panel.grow.setValue(-3)
    panel.apply()  # at once: applied when the worker's result lands
    qtbot.waitUntil(lambda: not np.array_equal(layer.mask, before), timeout=10_000)
    assert np.array_equal(layer.mask, mask_ops.shrink(before, 3))


def test_reset_and_a_new_selection_drop_the_preview(qtbot, window, image_file):
    doc, layer = _painted(qtbot, window, image_file)
    panel = window.mask_panel
    before = layer.mask.copy()
    panel.grow.setValue(6)
    qtbot.waitUntil(lambda: panel.preview is not None, timeout=10_000)
    qtbot.mouseClick(panel.reset_button, Qt.MouseButton.LeftButton)
    assert panel.grow.value() == 0 and _shown(window, layer) is layer.mask
    panel.grow.setValue(6)
    qtbot.waitUntil(lambda: panel.preview is not None, timeout=10_000)
    other = window.layers.new_mask()  # a new mask becomes the selected one
    assert doc.layers.selected is other and panel.layer is other
    assert panel.grow.value() == 0 and _shown(window, layer) is layer.mask
    assert np.array_equal(layer.mask, before)
    assert "other" not in panel.target.text() and other.name in panel.target.text()


def test_invert_clear_and_the_menu_without_a_mask(qtbot, window, image_file):
    doc, layer = _painted(qtbot, window, image_file)
    panel = window.mask_panel
    before = layer.mask.copy()
    qtbot.mouseClick(panel.invert_button, Qt.MouseButton.LeftButton)
    assert np.array_equal(layer.mask, ~before)
    qtbot.mouseClick(panel.clear_button, Qt.MouseButton.LeftButton)
    assert not layer.mask.any()
    window.undo_action.trigger()
    window.undo_action.trigger()
    assert layer.mask.tobytes() == before.tobytes()
    doc.layers.select(None)
    assert not panel.grow.isEnabled() and "Select a mask" in panel.target.text()
    feather = next(
        a for a in window.findChildren(type(window.undo_action)) if a.text() == "Feather…"
    )
    feather.trigger()
    assert "Select a mask layer first" in window.banner.text
