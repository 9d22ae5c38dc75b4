"""Undo commands: every change to the document goes through one of these.

Mask edits keep only the box that changed (before and after bytes), so a brush stroke on a
24-megapixel mask costs a few kilobytes of history, and undo puts back the exact bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtGui import QUndoCommand

from ovpaint.core.document import Document, Layer, MaskDiff, MaskLayer, Region, mask_diff

_MERGE_PROPERTY = 7301


class MaskEditCommand(QUndoCommand):
    """Replace a mask layer's pixels; stores just the changed box (a :class:`MaskDiff`, which a
    worker may have computed already), or both arrays when the dtype changes."""

    def __init__(
        self,
        doc: Document,
        layer: MaskLayer,
        after: np.ndarray,
        text: str,
        before: np.ndarray | None = None,
        diff: MaskDiff | None = None,
    ) -> None:
        super().__init__(text)
        self.doc, self.layer = doc, layer
        before = layer.mask if before is None else before
        self.full = before.dtype != after.dtype or before.shape != after.shape
        self.before = self.after = None
        self.diff: MaskDiff | None = None
        if self.full:
            self.before, self.after = before, after
        else:
            self.diff = diff if diff is not None else mask_diff(before, after)

    @property
    def region(self) -> Region | None:
        return None if self.diff is None else self.diff.region

    @property
    def is_noop(self) -> bool:
        return not self.full and self.diff is None

    def _apply(self, use_after: bool) -> None:
        if self.full:
            self.doc.set_mask(self.layer, self.after if use_after else self.before)
            return
        if self.diff is None:
            return
        x0, y0, x1, y1 = self.diff.region
        mask = self.layer.mask.copy()
        mask[y0:y1, x0:x1] = self.diff.after if use_after else self.diff.before
        self.doc.set_mask(self.layer, mask, self.diff.region)

    def redo(self) -> None:
        self._apply(True)

    def undo(self) -> None:
        self._apply(False)


def mask_edit(
    doc: Document,
    layer: MaskLayer,
    after: np.ndarray,
    text: str,
    diff: MaskDiff | None = None,
    diffed: bool = False,
) -> MaskEditCommand | None:
    """A :class:`MaskEditCommand`, or None when ``after`` equals the layer's mask (no step).
    With ``diffed``, ``diff`` is the comparison of the layer's current mask with ``after``
    made elsewhere (a worker), None meaning equal; else it is computed here."""
    full = layer.mask.dtype != after.dtype or layer.mask.shape != after.shape
    if not full:
        if not diffed:
            diff = mask_diff(layer.mask, after)
        if diff is None:
            return None
    return MaskEditCommand(doc, layer, after, text, diff=diff)


@dataclass(frozen=True)
class PreparedEdit:
    """A layer's new mask together with its comparison to the mask it replaces, both made on a
    worker: comparing two 24 MP masks takes longer than a UI frame, so the UI thread only
    swaps the result in. ``diff`` is ``before`` → ``mask`` (None: equal) when ``diffed``;
    masks of another dtype or shape are not compared (the edit replaces the mask whole)."""

    mask: np.ndarray
    before: np.ndarray | None  # the layer's mask the worker was given (None: a new layer)
    diff: MaskDiff | None = None
    diffed: bool = False

    def command(self, doc: Document, layer: MaskLayer, text: str) -> MaskEditCommand | None:
        """The undo step that puts ``mask`` into ``layer``, None when nothing changes. The
        worker's comparison is used while the layer still holds the mask it was made from;
        an edit made meanwhile (a brush stroke, undo) is compared again here."""
        known = self.diffed and self.before is layer.mask
        return mask_edit(doc, layer, self.mask, text, self.diff if known else None, known)


def prepare_edit(before: np.ndarray | None, after: np.ndarray) -> PreparedEdit:
    """Worker-side: ``after`` with its comparison to ``before``, the mask it will replace.
    Arrays are never edited in place, so ``before`` still identifies that mask later."""
    diffed = before is not None and before.dtype == after.dtype and before.shape == after.shape
    return PreparedEdit(after, before, mask_diff(before, after) if diffed else None, diffed)


class StepCommand(QUndoCommand):
    """Several commands as one undo step. The parts are kept and run here, in Python: Qt's own
    child commands would drop their Python ``redo``/``undo`` with their wrappers."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.parts: list[QUndoCommand] = []

    def add(self, command: QUndoCommand | None) -> QUndoCommand | None:
        if command is not None:
            self.parts.append(command)
        return command

    def redo(self) -> None:
        for part in self.parts:
            part.redo()

    def undo(self) -> None:
        for part in reversed(self.parts):
            part.undo()


class SelectCommand(QUndoCommand):
    """Select a layer as part of a larger step; undo gives the selection back."""

    def __init__(self, doc: Document, layer: Layer | None) -> None:
        super().__init__("Select")
        self.doc, self.layer = doc, layer
        self.previous: Layer | None = None

    def redo(self) -> None:
        self.previous = self.doc.layers.selected
        if self.layer is None or any(x is self.layer for x in self.doc.layers):
            self.doc.layers.select(self.layer)

    def undo(self) -> None:
        if self.previous is None or any(x is self.previous for x in self.doc.layers):
            self.doc.layers.select(self.previous)


class AddLayersCommand(QUndoCommand):
    """Insert layers (segmentation results, inpainting results, new or duplicated layers)."""

    def __init__(
        self,
        doc: Document,
        layers: list[Layer],
        text: str,
        index: int | None = None,
        select: Layer | None = None,
    ) -> None:
        super().__init__(text)
        self.doc, self.layers, self.index = doc, list(layers), index
        self.select = select if select is not None else (self.layers[-1] if self.layers else None)
        self._previous_selection: Layer | None = None

    def redo(self) -> None:
        self._previous_selection = self.doc.layers.selected
        start = len(self.doc.layers) if self.index is None else self.index
        for offset, layer in enumerate(self.layers):
            self.doc.layers.insert(start + offset, layer)
        if self.select is not None:
            self.doc.layers.select(self.select)

    def undo(self) -> None:
        for layer in reversed(self.layers):
            self.doc.layers.remove(layer)
        previous = self._previous_selection
        if previous is not None and any(item is previous for item in self.doc.layers):
            self.doc.layers.select(previous)


class RemoveLayersCommand(QUndoCommand):
    def __init__(self, doc: Document, layers: list[Layer], text: str) -> None:
        super().__init__(text)
        self.doc, self.layers = doc, list(layers)
        self._positions: list[tuple[int, Layer]] = []
        self._selected: Layer | None = None

    def redo(self) -> None:
        self._selected = self.doc.layers.selected
        self._positions = []
        for layer in self.layers:
            self._positions.append((self.doc.layers.remove(layer), layer))

    def undo(self) -> None:
        for index, layer in reversed(self._positions):
            self.doc.layers.insert(index, layer)
        if self._selected is not None and any(i is self._selected for i in self.doc.layers):
            self.doc.layers.select(self._selected)


class MoveLayerCommand(QUndoCommand):
    def __init__(self, doc: Document, layer: Layer, new_index: int) -> None:
        super().__init__(f"Move {layer.name}")
        self.doc, self.layer, self.new_index = doc, layer, new_index
        self.old_index = doc.layers.index(layer)

    def redo(self) -> None:
        self.doc.layers.move(self.layer, self.new_index)

    def undo(self) -> None:
        self.doc.layers.move(self.layer, self.old_index)


class SetLayerPropertyCommand(QUndoCommand):
    """Name, visibility, opacity, colour. Consecutive opacity drags merge into one step."""

    def __init__(
        self,
        doc: Document,
        layer: Layer,
        what: str,
        value: Any,
    ) -> None:
        super().__init__(f"Change {what} of {layer.name}")
        self.doc, self.layer, self.what, self.value = doc, layer, what, value
        self.old = getattr(layer, what)

    def id(self) -> int:  # noqa: A003 - Qt API
        return _MERGE_PROPERTY if self.what == "opacity" else -1

    def mergeWith(self, other: QUndoCommand) -> bool:  # noqa: N802
        if (
            not isinstance(other, SetLayerPropertyCommand)
            or other.layer is not self.layer
            or other.what != self.what
        ):
            return False
        self.value = other.value
        return True

    def redo(self) -> None:
        self.doc.set_property(self.layer, self.what, self.value)

    def undo(self) -> None:
        self.doc.set_property(self.layer, self.what, self.old)
