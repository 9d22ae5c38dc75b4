"""Real widgets, tiny profile: open, brush/eraser, mask ops, layer edits, undo, export,
projects, a corrupt file. The model-driven parts live in test_flow.py."""

from __future__ import annotations

import numpy as np
from PIL import Image

from ovpaint.core import project
from ovpaint.core.image_io import load_image
from tests.app.conftest import drag, open_in, scene_image, wait_idle


def _masks_bytes(doc):
    return [(layer.name, layer.mask.tobytes()) for layer in doc.layers.masks()]


def test_open_brush_erase_undo_restores_exact_bytes(qtbot, window, image_file):
    doc = open_in(qtbot, window, image_file)
    assert (doc.width, doc.height) == (160, 120)
    assert window.canvas.base_item is not None
    window.tools.set_tool("brush")
    window.tools.set_brush_radius(6)
    drag(window.canvas, [(20, 20), (40, 25), (60, 30)])
    assert len(doc.layers) == 1  # a stroke with no mask selected makes one
    layer = doc.layers[0]
    after_brush = layer.mask.copy()
    assert after_brush[25, 40] and after_brush[20, 20] and not after_brush[100, 150]
    window.tools.set_tool("eraser")
    drag(window.canvas, [(40, 10), (40, 40)])
    assert not layer.mask[25, 40] and layer.mask[20, 20]
    window.undo_action.trigger()
    assert np.array_equal(layer.mask, after_brush)
    window.undo_action.trigger()  # the brush stroke
    assert not layer.mask.any()
    window.redo_action.trigger()
    assert np.array_equal(layer.mask, after_brush)


def test_layer_panel_edits_go_through_undo(qtbot, window, image_file):
    doc = open_in(qtbot, window, image_file)
    a = window.layers.new_mask()
    b = window.layers.new_mask()
    model = window.layers.model
    view = window.findChild(type(window.layers.view), "layerList")
    assert view is window.layers.view and model.rowCount() == 2
    assert model.layer_at(0) is b  # top layer first
    from PySide6.QtCore import Qt

    model.setData(model.index(0), "dog")
    model.setData(model.index(1), Qt.CheckState.Unchecked.value, Qt.ItemDataRole.CheckStateRole)
    assert b.name == "dog" and not a.visible
    assert not window.canvas.layer_items[a.id].isVisible()
    window.layers.view.setCurrentIndex(model.index(1))
    assert doc.layers.selected is a
    opacity_before = a.opacity
    window.layers.opacity.setValue(20)
    assert abs(a.opacity - 0.2) < 1e-9 and opacity_before != a.opacity
    assert abs(window.canvas.layer_items[a.id].opacity() - 0.2) < 1e-9

    def state():
        return [(layer.name, layer.visible, round(layer.opacity, 6)) for layer in doc.layers]

    def current_row_follows_selection():
        return view.currentIndex().row() == model.row_of(doc.layers.selected)

    states = [state()]
    window.layers.move_up()
    assert doc.layers[1] is a and current_row_follows_selection()
    states.append(state())
    window.layers.duplicate()
    assert len(doc.layers) == 3 and doc.layers[2].name.endswith("copy")
    window.layers.delete()
    assert len(doc.layers) == 2
    stack = window.context.undo_stack
    stack.undo()
    stack.undo()
    assert state() == states[1]
    stack.undo()  # the move
    assert state() == states[0] and doc.layers[0] is a and current_row_follows_selection()
    stack.undo()  # opacity
    assert a.opacity == opacity_before
    while stack.canUndo():
        stack.undo()
    assert len(doc.layers) == 0


def test_export_and_project_round_trip(qtbot, window, image_file, tmp_path):
    doc = open_in(qtbot, window, image_file)
    window.tools.set_tool("brush")
    drag(window.canvas, [(30, 30), (90, 40)])
    window.layers.new_mask()
    drag(window.canvas, [(100, 90)])
    out = tmp_path / "edited.webp"
    window.files.export_image(out)
    wait_idle(qtbot, window)
    assert load_image(out).size == (160, 120)
    saved = tmp_path / "work.ovpaint"
    window.files.save_project(saved)
    wait_idle(qtbot, window)
    assert saved.exists() and not doc.dirty
    # an edit marks it unsaved; undoing back to the saved state clears the mark
    drag(window.canvas, [(20, 100), (40, 100)])
    assert doc.dirty and "*" in window.windowTitle()
    window.undo_action.trigger()
    assert not doc.dirty and "*" not in window.windowTitle()
    masks_dir = tmp_path / "masks"
    window.files.export_masks(masks_dir, "layers")
    wait_idle(qtbot, window)
    assert len(list(masks_dir.glob("photo.mask-0[12]-*.png"))) == 2
    assert len((masks_dir / "photo.classes.txt").read_text().splitlines()) == 3
    window.files.export_masks(masks_dir, "labels")
    wait_idle(qtbot, window)
    assert (masks_dir / "photo.labels.png").exists()
    expected = _masks_bytes(doc)
    again = open_in(qtbot, window, saved)
    qtbot.waitUntil(lambda: window.context.document is not doc, timeout=20_000)
    again = window.context.document
    assert _masks_bytes(again) == expected
    assert np.array_equal(again.rgb, doc.rgb)


def test_export_never_overwrites_the_original_silently(qtbot, window, image_file):
    open_in(qtbot, window, image_file)
    before = image_file.read_bytes()
    assert not window.files.export_image(image_file, confirm_overwrite_original=False)
    wait_idle(qtbot, window)
    assert image_file.read_bytes() == before


def test_corrupt_file_shows_a_message_and_keeps_the_document(qtbot, window, image_file, tmp_path):
    doc = open_in(qtbot, window, image_file)
    window.layers.new_mask()
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    window.open_path(str(bad))
    wait_idle(qtbot, window)
    assert window.context.document is doc and len(doc.layers) == 1
    assert "broken.jpg" in window.banner.text
    assert window.banner.isVisible()
    bad_project = tmp_path / "x.ovpaint"
    bad_project.write_bytes(b"nope")
    window.open_path(str(bad_project))
    wait_idle(qtbot, window)
    assert window.context.document is doc
    assert "not an ovpaint project" in window.banner.text


def test_autosave_writes_a_recoverable_project(qtbot, window, image_file):
    slot = window.files.recovery
    doc = open_in(qtbot, window, image_file)
    window.files.autosave()  # nothing changed yet: nothing written
    wait_idle(qtbot, window)
    window.workers.wait_for_done(10_000)
    qtbot.wait(50)
    assert not slot.path.exists()
    window.layers.new_mask()
    window.files.autosave()
    qtbot.waitUntil(lambda: window.files.last_autosave is not None, timeout=20_000)
    recovered = project.load_project(slot.path)
    assert [layer.name for layer in recovered.layers] == [layer.name for layer in doc.layers]
    assert slot.path not in project.find_recoveries()  # its window is alive: not offered
    # as after a crash: the owner is gone (its lock with it), the next start offers the copy
    # and opens it, still marked unsaved
    crashed = slot.path.with_name("autosave-crashed.ovpaint")
    slot.path.rename(crashed)
    assert crashed in project.find_recoveries()
    assert window.files.offer_recovery(ask=False)
    qtbot.waitUntil(lambda: window.context.document is not doc, timeout=20_000)
    wait_idle(qtbot, window)
    again = window.context.document
    assert again.dirty and [x.name for x in again.layers] == [x.name for x in doc.layers]
    assert "Recovered" in window.banner.text
    assert not crashed.exists() and slot.path.exists()  # taken over as this window's copy
    window.files.shutdown_clean()
    assert not slot.path.exists()


def test_large_image_draws_from_a_small_pyramid_level(qtbot, window, tmp_path):
    big = np.repeat(np.repeat(scene_image(200, 300), 20, axis=0), 20, axis=1)  # 6000×4000
    path = tmp_path / "big.png"
    Image.fromarray(big).save(path, compress_level=0)
    open_in(qtbot, window, path, timeout=60_000)
    item = window.canvas.base_item
    window.canvas.viewport().repaint()
    fitted = item.tiles_rendered
    # fitted into ~1000 px the 24 MP photo is drawn from a level of a few dozen tiles,
    # not from 400 full-resolution tiles
    assert 0 < fitted <= 40
    window.canvas.actual_size()
    window.canvas.viewport().repaint()
    assert item.tiles_rendered - fitted <= 40  # 100 %: only the visible tiles


def test_tiles_over_the_frame_budget_are_left_for_the_next_frames(qtbot, window, tmp_path):
    big = np.repeat(np.repeat(scene_image(200, 300), 8, axis=0), 8, axis=1)  # 2400×1600
    path = tmp_path / "big.png"
    Image.fromarray(big).save(path, compress_level=0)
    open_in(qtbot, window, path, timeout=60_000)
    canvas, item = window.canvas, window.canvas.base_item
    canvas.budget.seconds = 0.0  # no time to make any tile in a frame
    canvas.actual_size()  # a zoom level whose tiles were never made
    before = item.tiles_rendered
    canvas.viewport().repaint()
    assert canvas.rendering and item.tiles_rendered - before <= 1
    canvas.render_all()  # screenshots: every visible tile now, whatever it costs
    assert not canvas.rendering and item.tiles_rendered > before


def test_batch_action_opens_the_batch_dialog(qtbot, window):
    from PySide6.QtGui import QAction

    action = window.findChild(QAction, "batchAction")
    assert action is not None and action.text() == "Batch && Benchmark…"
    action.trigger()
    assert window._batch_dialog is not None and window._batch_dialog.isVisible()
    window._batch_dialog.close()


def test_stable_object_names(window):
    from PySide6.QtCore import QObject

    names = [
        "canvas",
        "layerList",
        "promptEdit",
        "methodCombo",
        "segmentButton",
        "inpaintPromptEdit",
        "inpaintButton",
        "cancelButton",
        "progressBar",
        "undoAction",
        "redoAction",
    ]
    missing = [n for n in names if window.findChild(QObject, n) is None]
    assert not missing


def test_folder_project_opened_by_its_manifest_saves_in_place(
    qtbot, window, image_file, tmp_path, monkeypatch
):
    """Opening a folder project through its project.json, then Save, writes back to that
    folder without asking (it used to ask for a new name, as for a plain image)."""
    from ovpaint.app import files

    open_in(qtbot, window, image_file)
    window.tools.set_tool("brush")
    drag(window.canvas, [(30, 30), (90, 40)])
    folder = tmp_path / "work"
    window.files.save_project(folder)
    wait_idle(qtbot, window)
    assert (folder / project.MANIFEST).exists()
    first = window.context.document
    window.files.project_path = None  # as after opening the folder's project.json cold
    window.open_path(str(folder / project.MANIFEST))
    qtbot.waitUntil(lambda: window.context.document is not first, timeout=20_000)
    doc = window.context.document
    assert window.files.project_path == folder

    def no_dialog(*args, **kwargs):
        raise AssertionError("Save asked for a file name")

    monkeypatch.setattr(files.QFileDialog, "getSaveFileName", no_dialog)
    drag(window.canvas, [(20, 100), (60, 100)])
    assert doc.dirty
    window.files.ask_save_project()
    wait_idle(qtbot, window)
    assert not doc.dirty
    assert _masks_bytes(project.load_project(folder)) == _masks_bytes(doc)


def test_export_blends_and_labels_off_the_ui_thread(
    qtbot, window, image_file, tmp_path, monkeypatch
):
    """The full-size composite and label map of an export are computed by the worker."""
    import threading

    from ovpaint.app import files

    threads = []

    def spy(fn):
        def wrapped(*args, **kwargs):
            threads.append(threading.current_thread() is threading.main_thread())
            return fn(*args, **kwargs)

        return wrapped

    monkeypatch.setattr(files, "composite", spy(files.composite))
    monkeypatch.setattr(files, "label_map", spy(files.label_map))
    open_in(qtbot, window, image_file)
    window.tools.set_tool("brush")
    drag(window.canvas, [(30, 30), (90, 40)])
    window.files.export_image(tmp_path / "out.png")
    wait_idle(qtbot, window)
    window.files.export_masks(tmp_path / "masks", "labels")
    wait_idle(qtbot, window)
    assert (tmp_path / "out.png").exists() and (tmp_path / "masks" / "photo.labels.png").exists()
    assert threads == [False, False]
