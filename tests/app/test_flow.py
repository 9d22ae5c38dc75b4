"""The whole flow through the real widgets on the tiny profile:
open → segment "sky, dog" → two mask layers → negative click → mask changes → brush stroke →
undo twice restores the exact bytes → inpaint → result layer → export → save → reopen →
identical layers. Plus cancel mid-segmentation and mid-inpaint (nothing changes)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt

from ovpaint.core.image_io import load_image
from tests.app.conftest import GapMeter, click, drag, open_in, wait_idle
from tests.app.test_click import CANDIDATES, negative_click_that_changes


def _layers_state(doc):
    out = []
    for layer in doc.layers:
        pixels = (
            layer.mask.tobytes()
            if layer.kind == "mask"
            else (
                layer.rgb.tobytes(),
                None if layer.alpha is None else layer.alpha.tobytes(),
                layer.x,
                layer.y,
            )
        )
        out.append((layer.kind, layer.name, layer.visible, round(layer.opacity, 6), pixels))
    return out


def _segment(qtbot, window, text, method=None):
    window.prompt.prompt.setText(text)
    if method is not None:
        index = window.prompt.method.findData(method)
        assert index >= 0, method
        window.prompt.method.setCurrentIndex(index)
    qtbot.mouseClick(window.prompt.button, Qt.MouseButton.LeftButton)


def test_full_flow(qtbot, window, image_file, tmp_path):
    doc = open_in(qtbot, window, image_file)
    methods = [window.prompt.method.itemData(i) for i in range(window.prompt.method.count())]
    assert "dense" in methods and "refined" in methods

    with GapMeter() as meter:
        _segment(qtbot, window, "sky, dog", "refined")
        assert window.prompt.button.isEnabled() is False  # one job at a time
        wait_idle(qtbot, window, 180_000)
    print(f"\nsegmentation: max event-loop gap {meter.max_gap * 1000:.0f} ms")
    assert window.banner.kind != "error" or not window.banner.isVisible(), window.banner.text
    # random weights decide what is found: one layer per class found, the rest named once
    found = [layer.name for layer in doc.layers]
    assert found in ([], ["sky"], ["dog"], ["sky", "dog"])
    for layer in doc.layers:
        assert layer.mask.any() and layer.meta["method"] == "refined"
        assert layer.meta["class"] == layer.name
    missing = [name for name in ("sky", "dog") if name not in found]
    if missing:
        assert "Not found: " + ", ".join(missing) in window.banner.text
    assert window.layers.model.rowCount() == len(found)
    assert window.op_label.text().startswith("Segment (refined)")

    # clicks on the selected mask: where the text query found nothing, a positive click
    # first makes a mask to correct (and selects it)
    if not found:
        window.tools.set_tool("positive")
        click(window.canvas, 80, 84)
        wait_idle(qtbot, window)
        assert [layer.name for layer in doc.layers] == ["object"]
    covered = doc.layers.selected
    assert covered is not None and covered.mask.any()
    window.tools.set_tool("negative")
    _, before_click = negative_click_that_changes(qtbot, window, covered, CANDIDATES)
    after_click = covered.mask.copy()
    assert not np.array_equal(after_click, before_click)

    # a brush stroke, then two undos: back to the exact bytes before the click
    window.tools.set_tool("brush")
    window.tools.set_brush_radius(5)
    drag(window.canvas, [(10, 100), (60, 110)])
    assert not np.array_equal(covered.mask, after_click)
    window.undo_action.trigger()
    assert covered.mask.tobytes() == after_click.tobytes()
    window.undo_action.trigger()
    assert covered.mask.tobytes() == before_click.tobytes()
    window.redo_action.trigger()
    assert covered.mask.tobytes() == after_click.tobytes()

    # inpaint inside a mask: a new layer that changes only masked pixels
    target = covered
    doc.layers.select(target)
    panel = window.inpaint
    panel.mode.setCurrentText("replace")
    panel.prompt.setText("a red ball")
    assert panel.expanded.toPlainText()  # the expanded prompt is shown
    panel.steps.setValue(2)
    panel.seed.setValue(7)
    qtbot.mouseClick(
        window.findChild(type(panel.button), "inpaintButton"), Qt.MouseButton.LeftButton
    )
    wait_idle(qtbot, window, 300_000)
    results = [layer for layer in doc.layers if layer.kind == "image"]
    assert len(results) == 1, window.banner.text
    result = results[0]
    assert result.role == "inpaint" and result.meta["seed"] == 7
    edited = doc.composite()
    assert not np.array_equal(edited, doc.rgb)
    assert np.array_equal(
        edited[~_dilated(target.binary, 40)], doc.rgb[~_dilated(target.binary, 40)]
    )

    # export at the original size, save the project, reopen it: identical layers
    out = tmp_path / "edited.png"
    assert window.files.export_image(out)
    wait_idle(qtbot, window)
    assert np.array_equal(load_image(out).rgb, edited)
    saved = tmp_path / "flow.ovpaint"
    window.files.save_project(saved)
    wait_idle(qtbot, window)
    expected = _layers_state(doc)
    window.open_path(str(saved))
    qtbot.waitUntil(lambda: window.context.document is not doc, timeout=30_000)
    wait_idle(qtbot, window)
    again = window.context.document
    assert _layers_state(again) == expected
    assert np.array_equal(again.composite(), edited)


def _dilated(mask, r):
    from ovpaint.core.masks import grow

    return grow(mask, r)


def test_cancel_mid_segmentation_changes_nothing(qtbot, window, image_file):
    doc = open_in(qtbot, window, image_file)
    _segment(qtbot, window, "sky, dog, tree, road, person")
    qtbot.waitUntil(lambda: window.jobbar.cancel_button.isEnabled(), timeout=5_000)
    qtbot.mouseClick(window.jobbar.cancel_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, window, 120_000)
    assert len(doc.layers) == 0
    assert window.context.undo_stack.count() == 0
    assert "cancelled" in window.op_label.text()


def test_cancel_mid_inpaint_changes_nothing(qtbot, window, image_file):
    doc = open_in(qtbot, window, image_file)
    window.tools.set_tool("brush")
    drag(window.canvas, [(60, 80), (100, 90)])
    state = _layers_state(doc)
    steps = window.context.undo_stack.count()
    events = []
    window.jobbar.bar.valueChanged.connect(events.append)
    panel = window.inpaint
    panel.engine.setCurrentIndex(panel.engine.findData("sd"))  # many steps to cancel within
    panel.steps.setValue(50)
    panel.run()
    qtbot.waitUntil(lambda: len(events) > 1, timeout=120_000)  # it is denoising
    window.jobbar.cancel()
    wait_idle(qtbot, window, 120_000)
    assert _layers_state(doc) == state
    assert window.context.undo_stack.count() == steps


def test_missing_model_is_a_clear_message(qtbot, image_file, monkeypatch, tmp_path):
    """Real profile without weights: Segment says how to get the model; nothing is lost."""
    from PySide6.QtWidgets import QMessageBox, QPushButton

    from ovpaint.app.main_window import MainWindow
    from ovpaint.core.settings import Settings
    from ovpaint.models.manager import ModelManager

    monkeypatch.setenv("OVPAINT_MODEL_DIR", str(tmp_path / "no-models"))
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Discard)
    manager = ModelManager(profile="real", device="cpu", settings=Settings())
    window = MainWindow(manager, settings=Settings())
    qtbot.addWidget(window)
    window.show()
    doc = open_in(qtbot, window, image_file)
    window.layers.new_mask()
    _segment(qtbot, window, "sky")
    wait_idle(qtbot, window)
    assert "not installed" in window.banner.text
    assert window.findChild(QPushButton, "notificationAction").text() == "Get Models…"
    assert window.context.document is doc and len(doc.layers) == 1
    assert "Running on the CPU" in window.profile_label.toolTip()


def test_inpaint_variants_and_the_instant_fill(qtbot, window, image_file):
    doc = open_in(qtbot, window, image_file)
    mask = window.layers.new_mask()
    window.tools.set_tool("brush")
    doc.layers.select(mask)
    drag(window.canvas, [(60, 60), (100, 70)])
    assert mask.binary.any()
    panel = window.inpaint
    panel.mode.setCurrentText("replace")
    panel.prompt.setText("a red ball")
    panel.steps.setValue(2)
    panel.seed.setValue(11)
    panel.variants.setValue(2)
    panel.run()
    wait_idle(qtbot, window, 300_000)
    results = [layer for layer in doc.layers if layer.kind == "image"]
    assert [r.meta["seed"] for r in results] == [11, 12], window.banner.text
    assert [r.visible for r in results] == [True, False]  # the first shown, others to compare
    assert panel.variant_combo.count() == 2
    # the instant fill is deterministic: several "variants" would be copies, so it makes one
    panel.mode.setCurrentText("remove")
    panel.engine.setCurrentIndex(panel.engine.findData("telea"))
    panel.run()
    wait_idle(qtbot, window, 60_000)
    assert len([layer for layer in doc.layers if layer.kind == "image"]) == 3
