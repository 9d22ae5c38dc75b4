"""The inpaint panel through its widgets (tiny profile): Remove runs LaMa by default and says
so, the result layer is the pipeline's patch (the layer stack reproduces the pipeline's image
byte for byte), names come from the submitted prompt, and the engine list comes from the
registry in the panel and in the batch dialog."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt

from ovpaint.pipelines.inpainting.engines import ENGINES, engines_for
from ovpaint.pipelines.inpainting.inpaint import InpaintSettings, changed_region, inpaint
from tests.app.conftest import drag, open_in, wait_idle


def _brush_mask(window, doc, points):
    mask = window.layers.new_mask()
    window.tools.set_tool("brush")
    doc.layers.select(mask)
    drag(window.canvas, points)
    assert mask.binary.any()
    return mask


def test_remove_uses_lama_and_the_layer_is_the_pipelines_result(qtbot, window, image_file):
    doc = open_in(qtbot, window, image_file)
    mask = _brush_mask(window, doc, [(60, 60), (100, 70)])
    panel = window.inpaint
    assert panel.mode.currentText() == "remove" and panel.engine.currentData() == "auto"
    assert panel.grow.isEnabled() and panel.grow.value() == 6
    assert not panel.guidance.isEnabled()  # LaMa takes no prompt or diffusion settings
    qtbot.mouseClick(panel.button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, window, 120_000)
    results = [layer for layer in doc.layers if layer.kind == "image"]
    assert len(results) == 1, window.banner.text
    layer = results[0]
    assert layer.meta["engine"] == "lama" and layer.name == "inpaint: remove"
    assert "Removed with LaMa." in window.banner.text
    # the same call outside the app gives the same bytes as the layer stack
    expected = inpaint(
        doc.rgb,
        mask.binary,
        InpaintSettings(engine="auto", grow_px=6, seed=panel.seed.value()),
        manager=window.context.manager,
    ).image
    edited = doc.composite()
    assert np.array_equal(edited, expected)
    region = changed_region(mask.binary, InpaintSettings(grow_px=6))
    assert np.array_equal(edited[~region], doc.rgb[~region])
    assert set(np.unique(layer.alpha)) <= {0, 255}
    x0, y0, x1, y1 = layer.region
    assert (x1 - x0) * (y1 - y0) < doc.rgb.shape[0] * doc.rgb.shape[1] / 2


def test_grow_setting_and_telea_engine_from_the_panel(qtbot, window, image_file):
    doc = open_in(qtbot, window, image_file)
    mask = _brush_mask(window, doc, [(40, 50), (60, 52)])
    panel = window.inpaint
    panel.engine.setCurrentIndex(panel.engine.findData("telea"))
    panel.grow.setValue(0)
    panel.run()
    wait_idle(qtbot, window, 60_000)
    (layer,) = [x for x in doc.layers if x.kind == "image"]
    assert layer.meta["engine"] == "telea"
    region = changed_region(mask.binary, InpaintSettings(engine="telea", grow_px=0))
    edited = doc.composite()
    assert np.array_equal(edited[~region], doc.rgb[~region])


def test_layer_names_come_from_the_submitted_prompt(qtbot, window, image_file):
    doc = open_in(qtbot, window, image_file)
    _brush_mask(window, doc, [(60, 60), (100, 70)])
    panel = window.inpaint
    panel.mode.setCurrentText("replace")
    assert panel.engine.currentData() == "auto" and panel.guidance.isEnabled()
    panel.prompt.setText("a red ball")
    panel.steps.setValue(2)
    panel.seed.setValue(5)
    panel.run()
    panel.prompt.setText("typed while it ran")
    wait_idle(qtbot, window, 300_000)
    (layer,) = [x for x in doc.layers if x.kind == "image"]
    assert layer.name == "inpaint: a red ball #5" and layer.meta["engine"] == "sd"


def test_engine_lists_come_from_the_registry(qtbot, window):
    panel = window.inpaint
    for mode in ("remove", "replace"):
        panel.mode.setCurrentText(mode)
        names = [panel.engine.itemData(i) for i in range(panel.engine.count())]
        assert names == ["auto"] + [e.name for e in engines_for(mode)]
    panel.mode.setCurrentText("remove")
    assert panel.engine.itemText(panel.engine.findData("lama")) == ENGINES["lama"].title

    from ovpaint.app.batch_dialog import BatchDialog

    dialog = BatchDialog(window.context.manager, window)
    qtbot.addWidget(dialog)
    combo = dialog.inpaint_engine
    dialog.inpaint_mode.setCurrentText("remove")
    assert [combo.itemData(i) for i in range(combo.count())] == [
        "auto",
        "lama",
        "sd",
        "telea",
        "ns",
    ]
    dialog.inpaint_mode.setCurrentText("restyle")
    assert [combo.itemData(i) for i in range(combo.count())] == ["auto", "sd"]
