"""Click correction through the real canvas on the tiny SAM2: a click makes or edits a mask as
one undo step, a cancelled click changes nothing, a click outside the image is a message."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt

from tests.app.conftest import click, open_in, wait_idle


def negative_click_that_changes(qtbot, window, layer, candidates):
    """Random weights decide what SAM2 does; try points inside the mask until one edits it.
    Returns (point, mask before) or fails the test if no click ever changes the mask."""
    for x, y in candidates:
        if not layer.binary[int(y), int(x)]:
            continue
        before = layer.mask.copy()
        click(window.canvas, x, y, Qt.MouseButton.RightButton)
        wait_idle(qtbot, window)
        assert window.banner.text == "" or "failed" not in window.banner.text
        if not np.array_equal(layer.mask, before):
            return (x, y), before
    raise AssertionError("no negative click changed the mask")


CANDIDATES = [(x, y) for y in range(10, 120, 25) for x in range(10, 160, 30)]


def test_clicks_make_and_edit_a_mask_with_exact_undo(qtbot, window, image_file):
    doc = open_in(qtbot, window, image_file)
    window.tools.set_tool("positive")
    click(window.canvas, 80, 84)
    assert [m.positive for m in window.canvas._markers] == [True]  # shown before the model ran
    wait_idle(qtbot, window)
    assert [layer.name for layer in doc.layers] == ["object"]
    layer = doc.layers[0]
    assert layer.mask.any() and doc.layers.selected is layer
    assert window.op_label.text().startswith("Click correction")
    _, before = negative_click_that_changes(qtbot, window, layer, CANDIDATES)
    assert not window.canvas._markers[-1].positive
    window.undo_action.trigger()
    assert np.array_equal(layer.mask, before)
    assert window.canvas._markers == []  # undo restarted the click session from the mask


def test_cancelled_click_changes_nothing(qtbot, window, image_file):
    doc = open_in(qtbot, window, image_file)
    window.tools.set_tool("positive")
    click(window.canvas, 80, 84)
    window.jobbar.cancel_button.click()
    wait_idle(qtbot, window)
    assert len(doc.layers) == 0
    assert window.context.undo_stack.count() == 0
    assert window.canvas._markers == []


def test_box_then_click_outside_the_image(qtbot, window, image_file):
    doc = open_in(qtbot, window, image_file)
    window.tools.set_tool("box")
    from tests.app.conftest import drag

    drag(window.canvas, [(40, 50), (120, 110)])
    wait_idle(qtbot, window)
    assert len(doc.layers) == 1
    mask = doc.layers[0].mask
    assert not mask[:45, :].any() and not mask[:, :35].any()  # a box bounds the object
    window.tools.set_tool("positive")
    window.canvas.fit()
    vp = window.canvas.viewport().rect()
    edges = [
        window.canvas.mapToScene(2, vp.height() // 2),
        window.canvas.mapToScene(vp.width() // 2, 2),
    ]
    grey = [p for p in edges if p.x() < 0 or p.y() < 0]
    assert grey  # a fitted view shows grey beside or above the image
    click(window.canvas, grey[0].x(), grey[0].y())
    wait_idle(qtbot, window)
    assert "outside" in window.banner.text
    assert np.array_equal(doc.layers[0].mask, mask) and len(doc.layers) == 1
    window.tools.add_point(500.0, 20.0, True)  # the engine refuses it too (scripts, CLI)
    wait_idle(qtbot, window)
    assert "outside" in window.banner.text
    assert np.array_equal(doc.layers[0].mask, mask)
