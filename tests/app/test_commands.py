"""A mask edit prepared on a worker: applied as one undo step that restores the exact bytes,
no step when nothing changed, and no full-size comparison when it is applied unless the layer
was edited after the worker compared."""

from __future__ import annotations

import numpy as np
import pytest

from ovpaint.app import commands
from ovpaint.app.commands import prepare_edit
from ovpaint.core.document import Document


def _doc_with_mask(dtype=bool):
    doc = Document(np.zeros((40, 50, 3), np.uint8))
    rng = np.random.default_rng(5)
    mask = rng.random((40, 50)) > 0.5
    if dtype is not bool:
        mask = mask.astype(np.uint8) * np.uint8(255)
    layer = doc.new_mask_layer("m", mask)
    doc.layers.insert(0, layer)
    return doc, layer


@pytest.fixture
def no_compare(monkeypatch):
    """Applying must not compare the masks again: any comparison fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("the masks were compared when the edit was applied")

    def switch_off():
        monkeypatch.setattr(commands, "mask_diff", refuse)

    return switch_off


@pytest.mark.parametrize("dtype", [bool, np.uint8])
def test_a_prepared_edit_is_one_step_and_undo_restores_the_exact_bytes(dtype, no_compare):
    doc, layer = _doc_with_mask(dtype)
    original = layer.mask.copy()
    after = layer.mask.copy()
    after[10:20, 5:9] = 0
    after[30, 40] = ~after[30, 40] if dtype is bool else 255 - after[30, 40]
    edit = prepare_edit(layer.mask, after)  # on the worker
    assert edit.diffed and edit.diff is not None and edit.diff.region == (5, 10, 41, 31)
    no_compare()
    command = edit.command(doc, layer, "edit")
    assert command is not None and command.diff is edit.diff
    command.redo()
    assert layer.mask.tobytes() == after.tobytes() and layer.mask.dtype == original.dtype
    command.undo()
    assert layer.mask.tobytes() == original.tobytes()


def test_an_unchanged_mask_makes_no_step(no_compare):
    doc, layer = _doc_with_mask()
    edit = prepare_edit(layer.mask, layer.mask.copy())
    assert edit.diffed and edit.diff is None
    no_compare()
    assert edit.command(doc, layer, "nothing") is None


def test_a_layer_edited_meanwhile_is_compared_again():
    doc, layer = _doc_with_mask()
    after = layer.mask.copy()
    after[0:5, 0:5] = True
    edit = prepare_edit(layer.mask, after)
    brushed = layer.mask.copy()
    brushed[35:40, 45:50] = ~brushed[35:40, 45:50]  # a stroke lands before the result
    doc.set_mask(layer, brushed)
    command = edit.command(doc, layer, "edit")
    assert command is not None and command.diff is not edit.diff
    command.redo()
    assert np.array_equal(layer.mask, after)
    command.undo()
    assert layer.mask.tobytes() == brushed.tobytes()  # the stroke, not the worker's before


def test_another_dtype_or_no_mask_is_not_compared_and_replaces_the_mask_whole():
    doc, layer = _doc_with_mask(np.uint8)
    original = layer.mask.copy()
    after = layer.mask >= 128
    edit = prepare_edit(layer.mask, after)
    assert not edit.diffed and edit.diff is None
    command = edit.command(doc, layer, "to bool")
    assert command is not None and command.full
    command.redo()
    assert layer.mask.dtype == np.bool_ and np.array_equal(layer.mask, after)
    command.undo()
    assert layer.mask.tobytes() == original.tobytes() and layer.mask.dtype == np.uint8
    fresh = prepare_edit(None, after)  # a class or click with no layer yet
    assert not fresh.diffed and fresh.diff is None and fresh.mask is after
