"""Mask tools on the selected mask layer: pan and select (the default: a plain click starts no
model job), prompt clicks and box (SAM2 click session), brush and eraser. Grow, shrink, feather,
invert and clear live in the Mask panel (``mask_panel.py``).

Each finished action is one undo command. During a brush stroke the canvas shows a preview
array; the document changes once, on release, so a stroke is one step and a cancelled click
job changes nothing.
"""

from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtCore import QObject, QPointF, Qt, Signal

from ovpaint.app.canvas import Canvas
from ovpaint.app.commands import (
    AddLayersCommand,
    MaskEditCommand,
    PreparedEdit,
    mask_edit,
    prepare_edit,
)
from ovpaint.app.context import EditorContext
from ovpaint.core.document import Document, MaskLayer, mask_diff, region_union

# Pan is the default: a click to focus the window or to pick a layer never starts a model job.
TOOLS = ("pan", "positive", "negative", "box", "brush", "eraser")
DEFAULT_TOOL = "pan"
TOOL_TITLES = {
    "pan": "Pan and select",
    "positive": "Add by clicking (SAM2)",
    "negative": "Remove by clicking (SAM2)",
    "box": "Box (SAM2)",
    "brush": "Brush",
    "eraser": "Eraser",
}
TOOL_KEYS = {"pan": "H", "positive": "A", "negative": "S", "box": "X", "brush": "B", "eraser": "E"}
# What the mouse does with each tool: the status bar's legend and the tooltips.
TOOL_LEGEND = {
    "pan": "Drag: move the view · Click: select the mask under the pointer · Wheel: zoom",
    "positive": "Left click: add the object to the mask · Right click or Alt+click: remove",
    "negative": "Left click: remove from the mask · Right click or Alt+click: add",
    "box": "Drag a box around one object: SAM2 fills the mask with it",
    "brush": "Drag: paint into the mask · [ and ]: brush size · Space+drag: move the view",
    "eraser": "Drag: erase from the mask · [ and ]: brush size · Space+drag: move the view",
}


class _ClickHolder:
    """The click session of one mask, built lazily on a worker (it needs the SAM2 model)."""

    def __init__(self, doc: Document, layer: MaskLayer | None, make_session) -> None:
        self.doc, self.layer = doc, layer
        self.make_session = make_session
        self.session = None


def click_job(holder: _ClickHolder, op: str, args: tuple, before, *, progress, cancel):
    """Worker-side: one SAM2 decoder call on the cached embedding (the first click of an image
    also computes the embedding), and the full-size work on its mask (dtype, difference from
    ``before``) so the UI thread only swaps it in. A cancelled click is taken back."""
    progress.stage("click correction")
    if holder.session is None:
        holder.session = holder.make_session()
    cancel.check()
    mask = np.asarray(getattr(holder.session, op)(*args)).astype(bool, copy=False)
    if cancel.cancelled:
        holder.session.undo()
        cancel.check()
    if before is not None and before.dtype != np.bool_:
        mask = mask.astype(np.uint8) * np.uint8(255)  # in the dtype of the mask it edits
    return prepare_edit(before, mask)


class ToolController(QObject):
    """Routes canvas pointer events to the active tool and commits results as commands."""

    tool_changed = Signal(str)
    brush_size_changed = Signal(int)
    legend_changed = Signal(str)

    def __init__(self, context: EditorContext, canvas: Canvas, parent=None) -> None:
        super().__init__(parent)
        self.context, self.canvas = context, canvas
        self.tool = DEFAULT_TOOL
        self.brush_radius = 12
        self._stroke: tuple[MaskLayer, np.ndarray, tuple[int, int]] | None = None
        self._stroke_box: tuple[int, int, int, int] | None = None
        self._box_start: QPointF | None = None
        self._points: list[tuple[float, float, bool]] = []
        self._box: tuple[float, float, float, float] | None = None
        self._click: _ClickHolder | None = None
        self._applying_click = False
        self._watched: Document | None = None
        canvas.pressed.connect(self._pressed)
        canvas.moved.connect(self._moved)
        canvas.released.connect(self._released)
        canvas.hovered.connect(self._hovered)
        canvas.clicked.connect(self.select_at)
        canvas.set_left_pans(self.tool == "pan")
        context.document_changed.connect(self._reset_prompts)
        context.document_changed.connect(self._watch)
        context.undo_stack.indexChanged.connect(self._undo_moved)

    @property
    def doc(self) -> Document | None:
        return self.context.document

    def _undo_moved(self, index: int) -> None:
        # undo/redo moved the document away from the click session's last step
        if not self._applying_click and self._click is not None:
            self._reset_prompts()

    def set_tool(self, tool: str) -> None:
        if tool not in TOOLS:
            raise ValueError(tool)
        self.tool = tool
        if tool not in ("brush", "eraser"):
            self.canvas.set_brush_cursor(None)
        self.canvas.set_left_pans(tool == "pan")
        self.tool_changed.emit(tool)
        self.legend_changed.emit(self.legend())

    def legend(self) -> str:
        """The status bar's line for the active tool, with the mask it will act on."""
        text = TOOL_LEGEND[self.tool]
        if self.doc is None or self.tool == "pan":
            return text
        layer = self.target_layer()
        if layer is not None:
            return f"{text}  →  mask “{layer.name}”"
        if self.tool == "eraser":
            return f"{text}  →  no mask selected: select one to erase from"
        return f"{text}  →  no mask selected: a new mask will be made"

    def select_at(self, pos: QPointF) -> MaskLayer | None:
        """Select the topmost visible mask under ``pos`` (the Pan tool's click)."""
        doc = self.doc
        if doc is None:
            return None
        x, y = int(pos.x()), int(pos.y())
        if not (0 <= x < doc.width and 0 <= y < doc.height):
            return None
        for layer in reversed(doc.layers.masks()):
            if layer.visible and layer.binary[y, x]:
                doc.layers.select(layer)
                return layer
        return None

    def set_brush_radius(self, radius: int) -> None:
        self.brush_radius = max(1, min(500, int(radius)))
        self.brush_size_changed.emit(self.brush_radius)

    def target_layer(self) -> MaskLayer | None:
        layer = self.doc.layers.selected if self.doc is not None else None
        return layer if isinstance(layer, MaskLayer) else None

    # ------------------------------------------------------------------ pointer routing
    def _pressed(self, pos: QPointF, button, modifiers) -> None:
        if self.doc is None or self.tool == "pan":
            return
        if self.tool in ("positive", "negative"):
            if not (0 <= pos.x() < self.doc.width and 0 <= pos.y() < self.doc.height):
                # a click on the grey around the image is no prompt; say so, not silence
                self.context.banner.show_message(
                    "That click is outside the image: click on the image to add a point.",
                    "info",
                    topic="click",
                )
                return
            if button in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton):
                negative = (self.tool == "negative") != (
                    button == Qt.MouseButton.RightButton
                    or bool(modifiers & Qt.KeyboardModifier.AltModifier)
                )
                self.add_point(pos.x(), pos.y(), not negative)
        elif self.tool == "box" and button == Qt.MouseButton.LeftButton:
            self._box_start = pos
        elif self.tool in ("brush", "eraser") and button == Qt.MouseButton.LeftButton:
            self.begin_stroke(pos.x(), pos.y())

    def _moved(self, pos: QPointF, buttons, modifiers) -> None:
        if self._stroke is not None:
            self.continue_stroke(pos.x(), pos.y())
            self.canvas.set_brush_cursor(pos, self.brush_radius)
        elif self._box_start is not None:
            s = self._box_start
            self.canvas.set_box((s.x(), s.y(), pos.x(), pos.y()))

    def _released(self, pos: QPointF, button, modifiers) -> None:
        if self._stroke is not None:
            self.continue_stroke(pos.x(), pos.y())
            self.end_stroke()
        elif self._box_start is not None:
            s = self._box_start
            self._box_start = None
            if abs(pos.x() - s.x()) >= 3 and abs(pos.y() - s.y()) >= 3:
                self.set_box(
                    min(s.x(), pos.x()),
                    min(s.y(), pos.y()),
                    max(s.x(), pos.x()),
                    max(s.y(), pos.y()),
                )
            else:
                self.canvas.set_box(self._box)

    def _hovered(self, pos: QPointF) -> None:
        if self.tool in ("brush", "eraser"):
            self.canvas.set_brush_cursor(pos, self.brush_radius)

    # ------------------------------------------------------------------ brush and eraser
    def begin_stroke(self, x: float, y: float) -> bool:
        layer = self.target_layer()
        if layer is None and self.tool == "eraser":
            self.context.banner.show_message(
                "No mask is selected, so there is nothing to erase: select a mask layer first.",
                "warning",
                topic="mask",
            )
            return False
        if layer is None:
            layer = self._new_target_layer()
            if layer is not None:
                self.context.banner.show_message(
                    f"No mask was selected: painting into a new mask “{layer.name}”.",
                    "info",
                    topic="mask",
                )
        if layer is None:
            return False
        working = layer.mask.copy()
        self._stroke = (layer, working, (int(round(x)), int(round(y))))
        self._stroke_box = None
        self.continue_stroke(x, y)
        return True

    def continue_stroke(self, x: float, y: float) -> None:
        if self._stroke is None:
            return
        layer, working, last = self._stroke
        point = (int(round(x)), int(round(y)))
        r = self.brush_radius
        value = 0 if self.tool == "eraser" else (1 if working.dtype == np.bool_ else 255)
        canvas8 = working.view(np.uint8)
        cv2.line(canvas8, last, point, int(value), thickness=2 * r + 1, lineType=cv2.LINE_8)
        cv2.circle(canvas8, point, r, int(value), thickness=-1)
        h, w = working.shape
        region = (
            max(0, min(last[0], point[0]) - r - 1),
            max(0, min(last[1], point[1]) - r - 1),
            min(w, max(last[0], point[0]) + r + 2),
            min(h, max(last[1], point[1]) + r + 2),
        )
        self._stroke = (layer, working, point)
        self._stroke_box = (
            region if self._stroke_box is None else region_union(self._stroke_box, region)
        )
        self.canvas.preview_mask(layer, working, region)

    def end_stroke(self) -> None:
        if self._stroke is None:
            return
        layer, working, _ = self._stroke
        self._stroke = None
        # only the stroke's box can differ: no full-size compare of a 24 MP mask
        diff = mask_diff(layer.mask, working, self._stroke_box)
        if diff is None:
            self.canvas.end_preview(layer)
            return
        text = "Eraser stroke" if self.tool == "eraser" else "Brush stroke"
        self.context.push(MaskEditCommand(self.doc, layer, working, text, diff=diff))

    def _new_target_layer(self) -> MaskLayer | None:
        if self.doc is None:
            return None
        layer = self.doc.new_mask_layer(self.doc.unique_name("mask"))
        self.context.push(AddLayersCommand(self.doc, [layer], "New mask"))
        return layer

    # ------------------------------------------------------------------ clicks and box
    def reset_prompts(self, *args) -> None:
        """Forget the click points and box; the next click starts from the mask as it is."""
        self._reset_prompts()

    def _reset_prompts(self, *args) -> None:
        self._points, self._box = [], None
        self._click: _ClickHolder | None = None
        self.canvas.clear_prompts()

    def _layer_changed(self, layer, what: str, region) -> None:
        """A mask edited by anything but the click session itself invalidates the session:
        the next click starts again from the mask as it now is."""
        if what == "name" and layer is self.target_layer():
            self.legend_changed.emit(self.legend())
        if (
            self._click is not None
            and layer is self._click.layer
            and what == "pixels"
            and not self._applying_click
        ):
            self._reset_prompts()

    def _watch(self, doc: Document | None) -> None:
        if self._watched is not None:
            self._watched.layers.changed.disconnect(self._layer_changed)
            self._watched.layers.selection_changed.disconnect(self._selection_changed)
        self._watched = doc
        if doc is not None:
            doc.layers.changed.connect(self._layer_changed)
            doc.layers.selection_changed.connect(self._selection_changed)
        self.legend_changed.emit(self.legend())

    def _selection_changed(self, layer) -> None:
        self.legend_changed.emit(self.legend())

    def _click_holder(self) -> _ClickHolder | None:
        doc = self.doc
        if doc is None:
            return None
        layer = self.target_layer()
        if self._click is None or self._click.layer is not layer or self._click.doc is not doc:
            self._reset_prompts()
            initial = None if layer is None else layer.binary
            context = self.context

            def make():
                from ovpaint.pipelines.segmentation.interactive import ClickSession

                return ClickSession(
                    context.image_session(doc), context.manager, initial_mask=initial
                )

            self._click = _ClickHolder(doc, layer, make)
        return self._click

    def add_point(self, x: float, y: float, positive: bool) -> None:
        if self.doc is None:
            return
        holder = self._click_holder()
        self._points.append((x, y, positive))
        self.canvas.set_points(self._points)  # instant feedback, before the model answers
        self._predict(holder, "add_point", (x, y, positive), f"Click {'+' if positive else '−'}")

    def set_box(self, x0: float, y0: float, x1: float, y1: float) -> None:
        if self.doc is None:
            return
        holder = self._click_holder()
        self._box = (x0, y0, x1, y1)
        self.canvas.set_box(self._box)
        self._predict(holder, "set_box", (x0, y0, x1, y1), "Box")

    def _predict(self, holder: _ClickHolder, op: str, args: tuple, text: str) -> None:
        before = holder.layer.mask if holder.layer is not None else None
        handle = self.context.run_job(
            click_job,
            holder,
            op,
            args,
            before,
            title="Click correction",
            on_done=lambda result: self._apply_click(holder, result, text),
            on_failed=lambda: self._click_failed(holder),
        )
        if handle is None:  # busy: the click was not taken
            self._click_failed(holder)

    def _click_failed(self, holder: _ClickHolder) -> None:
        # the session may hold a step the document does not: start again from the mask
        if self._click is holder:
            self._reset_prompts()

    def _apply_click(self, holder: _ClickHolder, result: PreparedEdit, text: str) -> None:
        doc = holder.doc
        layer = holder.layer
        self._applying_click = True
        try:
            if layer is None or not any(item is layer for item in doc.layers):
                mask = result.mask if result.mask.dtype == np.bool_ else result.mask >= 128
                layer = doc.new_mask_layer(doc.unique_name("object"), mask)
                self.context.push(AddLayersCommand(doc, [layer], f"{text}: new mask"))
                holder.layer = layer
                return
            if result.mask.dtype == layer.mask.dtype:
                command = result.command(doc, layer, text)
            else:  # the layer changed type meanwhile
                after = result.mask
                after = after >= 128 if layer.mask.dtype == np.bool_ else after.view(np.uint8) * 255
                command = mask_edit(doc, layer, after, text)
            if command is not None:
                self.context.push(command)
        finally:
            self._applying_click = False
