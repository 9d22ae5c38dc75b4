"""Segmentation results through the real widgets: one layer per class, reused when the class
is segmented again (one undo step restores the exact bytes), nothing for classes not found
but one message naming them, fixed colours per class, readable progress."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt

from ovpaint.core.document import class_color
from tests.app import scripted
from tests.app.conftest import open_in, wait_idle


def _segment(qtbot, window, text):
    window.prompt.prompt.setText(text)
    qtbot.mouseClick(window.prompt.button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, window)


def _state(doc):
    return [(x.name, x.mask.dtype.str, x.mask.tobytes(), x.color) for x in doc.layers]


def test_one_layer_per_class_reused_and_undone_exactly(qtbot, window, image_file, monkeypatch):
    doc = open_in(qtbot, window, image_file)
    scripted.install(monkeypatch, window)
    stack = window.context.undo_stack
    _segment(qtbot, window, "sky, dog, cat")
    assert [x.name for x in doc.layers] == ["sky", "dog"]  # no layer for "cat"
    assert window.banner.text.startswith("Not found: cat. ")
    sky, dog = doc.layers
    assert doc.layers.selected is sky  # the result is what the next tool acts on
    assert sky.color == class_color("sky", []) and dog.color != sky.color
    assert stack.count() == 1
    first = _state(doc)

    monkeypatch.setitem(scripted.STATE, "sky_rows", 40)
    _segment(qtbot, window, "sky, cat, Dog")
    assert list(doc.layers) == [sky, dog]  # the same layers, no "sky (2)"
    assert sky.meta["prompt"] == "sky, cat, Dog" and sky.meta["class"] == "sky"
    assert sky.mask[:40].all() and not sky.mask[40:].any()
    # "Dog" is the dog layer's class (case aside); not found this time, its mask stays
    assert window.banner.text.startswith("Not found: cat, Dog (its earlier mask is kept). ")
    assert dog.mask.tobytes() == first[1][2]
    assert stack.count() == 2 and window.layers.model.rowCount() == 2
    second = _state(doc)

    window.undo_action.trigger()  # the earlier masks, byte for byte
    assert _state(doc) == first
    window.undo_action.trigger()
    assert len(doc.layers) == 0
    window.redo_action.trigger()
    window.redo_action.trigger()
    assert _state(doc) == second and list(doc.layers) == [sky, dog]
    monkeypatch.setitem(scripted.STATE, "sky_rows", 45)
    _segment(qtbot, window, "dog, sky")  # two classes reused in one run: each tagged alike
    assert [x.meta["prompt"] for x in doc.layers] == ["dog, sky", "dog, sky"]


def test_an_edited_soft_mask_is_one_undo_away(qtbot, window, image_file, monkeypatch):
    doc = open_in(qtbot, window, image_file)
    scripted.install(monkeypatch, window)
    _segment(qtbot, window, "sky")
    sky = doc.layers[0]
    panel = window.mask_panel
    panel.feather.setValue(5)
    qtbot.waitUntil(lambda: panel.preview is not None, timeout=10_000)
    panel.apply()
    feathered = sky.mask.copy()
    assert feathered.dtype == np.uint8
    doc.set_property(sky, "name", "my sky")  # renamed: still the class's layer
    _segment(qtbot, window, "sky")
    assert [x.name for x in doc.layers] == ["my sky"] and sky.mask.dtype == np.bool_
    window.undo_action.trigger()
    assert sky.mask.dtype == np.uint8 and sky.mask.tobytes() == feathered.tobytes()


def test_nothing_found_makes_no_layer_and_says_so_once(qtbot, window, image_file, monkeypatch):
    doc = open_in(qtbot, window, image_file)
    scripted.install(monkeypatch, window)
    _segment(qtbot, window, "cat, tree")
    assert len(doc.layers) == 0 and window.context.undo_stack.count() == 0
    assert window.banner.text.startswith("Not found: cat, tree. ")
    assert window.banner.kind == "warning"


def test_class_colours_are_fixed_and_follow_colour_words(qtbot, window, image_file, monkeypatch):
    doc = open_in(qtbot, window, image_file)
    scripted.install(monkeypatch, window)
    _segment(qtbot, window, "red car, blue sky, dog")
    colors = {x.name: x.color for x in doc.layers}
    assert colors["red car"] == (230, 25, 75) and colors["blue sky"] == (0, 130, 200)
    assert len(set(colors.values())) == 3
    open_in(qtbot, window, image_file)  # another document, another run: the same colours
    _segment(qtbot, window, "dog, red car, blue sky")
    assert {x.name: x.color for x in window.context.document.layers} == colors


def test_progress_shows_stage_and_increasing_counts(qtbot, window, image_file, monkeypatch):
    open_in(qtbot, window, image_file)
    scripted.install(monkeypatch, window)
    monkeypatch.setitem(scripted.STATE, "delay", 0.08)  # slower than the 20 Hz event thinning
    seen = []
    bar = window.jobbar.bar
    bar.valueChanged.connect(lambda v: window.context.busy and seen.append((v, bar.format())))
    _segment(qtbot, window, "sky, dog, cat, tree")
    texts = [text for _, text in seen]
    values = [v for v, _ in seen]
    assert values == sorted(values) and len(values) >= 3
    assert "text 4/4 names" in texts and any(t.startswith("text 1/4") for t in texts)
    assert bar.maximum() == 1  # idle again
