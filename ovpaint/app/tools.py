"""Mask tools on the selected mask layer: prompt clicks and box (SAM2 click session), brush and
eraser, and the one-shot operations grow/shrink, feather, invert, clear.

Each finished action is one undo command. During a brush stroke the canvas shows a preview
array; the document changes once, on release, so a stroke is one step and a cancelled click
job changes nothing.
"""

from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtCore import QObject, QPointF, Qt, Signal

from ovpaint.app.canvas import Canvas
from ovpaint.app.commands import AddLayersCommand, MaskEditCommand
from ovpaint.app.context import EditorContext
from ovpaint.core import masks as mask_ops
from ovpaint.core.document import Document, MaskLayer

TOOLS = ("positive", "negative", "box", "brush", "eraser", "pan")
TOOL_TITLES = {"positive": "Positive click", "negative": "Negative click", "box": "Box",
               "brush": "Brush", "eraser": "Eraser", "pan": "Pan"}
TOOL_KEYS = {"positive": "A", "negative": "S", "box": "X", "brush": "B", "eraser": "E",
             "pan": "H"}


def interactive_available() -> bool:
    try:
        from ovpaint.pipelines.interactive import ClickSession  # noqa: F401
    except ImportError:
        return False
    return True


def click_job(click_session, points, labels, box, *, progress, cancel):
    """Worker-side: one SAM2 decoder call with every prompt so far."""
    return click_session.predict(points=points, labels=labels, box=box, progress=progress,
                                 cancel=cancel)


class ToolController(QObject):
    """Routes canvas pointer events to the active tool and commits results as commands."""

    tool_changed = Signal(str)
    brush_size_changed = Signal(int)

    def __init__(self, context: EditorContext, canvas: Canvas, parent=None) -> None:
        super().__init__(parent)
        self.context, self.canvas = context, canvas
        self.tool = "positive"
        self.brush_radius = 12
        self._stroke: tuple[MaskLayer, np.ndarray, tuple[int, int]] | None = None
        self._box_start: QPointF | None = None
        self._points: list[tuple[float, float, bool]] = []
        self._box: tuple[float, float, float, float] | None = None
        self._prompt_layer: MaskLayer | None = None
        self._click_session = None
        canvas.pressed.connect(self._pressed)
        canvas.moved.connect(self._moved)
        canvas.released.connect(self._released)
        canvas.hovered.connect(self._hovered)
        context.document_changed.connect(self._reset_prompts)

    @property
    def doc(self) -> Document | None:
        return self.context.document

    def set_tool(self, tool: str) -> None:
        if tool not in TOOLS:
            raise ValueError(tool)
        self.tool = tool
        if tool not in ("brush", "eraser"):
            self.canvas.set_brush_cursor(None)
        self.tool_changed.emit(tool)

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
            if button in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton):
                negative = (self.tool == "negative") != (button == Qt.MouseButton.RightButton
                                                          or bool(modifiers
                                                                  & Qt.KeyboardModifier.AltModifier))
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
                self.set_box(min(s.x(), pos.x()), min(s.y(), pos.y()),
                             max(s.x(), pos.x()), max(s.y(), pos.y()))
            else:
                self.canvas.set_box(self._box)

    def _hovered(self, pos: QPointF) -> None:
        if self.tool in ("brush", "eraser"):
            self.canvas.set_brush_cursor(pos, self.brush_radius)

    # ------------------------------------------------------------------ brush and eraser
    def begin_stroke(self, x: float, y: float) -> bool:
        layer = self.target_layer()
        if layer is None:
            layer = self._new_target_layer()
        if layer is None:
            return False
        working = layer.mask.copy()
        self._stroke = (layer, working, (int(round(x)), int(round(y))))
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
        region = (max(0, min(last[0], point[0]) - r - 1), max(0, min(last[1], point[1]) - r - 1),
                  min(w, max(last[0], point[0]) + r + 2), min(h, max(last[1], point[1]) + r + 2))
        self._stroke = (layer, working, point)
        self.canvas.preview_mask(layer, working, region)

    def end_stroke(self) -> None:
        if self._stroke is None:
            return
        layer, working, _ = self._stroke
        self._stroke = None
        command = MaskEditCommand(self.doc, layer, working,
                                  "Eraser stroke" if self.tool == "eraser" else "Brush stroke")
        if command.is_noop:
            self.canvas.end_preview(layer)
            return
        self.context.push(command)

    def _new_target_layer(self) -> MaskLayer | None:
        if self.doc is None:
            return None
        layer = self.doc.new_mask_layer(self.doc.unique_name("mask"))
        self.context.push(AddLayersCommand(self.doc, [layer], "New mask"))
        return layer

    # ------------------------------------------------------------------ mask operations
    def apply_op(self, op: str, amount: int = 5) -> bool:
        """grow / shrink / feather / invert / clear on the selected mask, one undo step."""
        layer = self.target_layer()
        if layer is None or self.doc is None:
            self.context.banner.show_message("Select a mask layer first.", "warning")
            return False
        mask = layer.mask
        if op == "grow":
            after = mask_ops.grow(layer.binary, amount)
        elif op == "shrink":
            after = mask_ops.shrink(layer.binary, amount)
        elif op == "feather":
            after = np.rint(mask_ops.feather(layer.binary, amount) * 255).astype(np.uint8)
        elif op == "invert":
            after = ~mask if mask.dtype == np.bool_ else (255 - mask).astype(np.uint8)
        elif op == "clear":
            after = np.zeros_like(mask)
        else:
            raise ValueError(op)
        command = MaskEditCommand(self.doc, layer, after, f"{op.capitalize()} {layer.name}")
        if command.is_noop:
            return False
        self.context.push(command)
        if op == "clear":
            self._reset_prompts()
        return True

    # ------------------------------------------------------------------ clicks and box
    def _reset_prompts(self, *args) -> None:
        self._points, self._box, self._prompt_layer = [], None, None
        self._click_session = None
        self.canvas.clear_prompts()

    def add_point(self, x: float, y: float, positive: bool) -> None:
        if self.doc is None:
            return
        if self._prompt_layer is not self.target_layer():
            self._reset_prompts()
        self._points.append((x, y, positive))
        self.canvas.set_points(self._points)  # instant feedback, before the model answers
        self._predict()

    def set_box(self, x0: float, y0: float, x1: float, y1: float) -> None:
        if self._prompt_layer is not self.target_layer():
            self._reset_prompts()
        self._box = (x0, y0, x1, y1)
        self.canvas.set_box(self._box)
        self._predict()

    def _predict(self) -> None:
        doc = self.doc
        if not interactive_available():
            self.context.banner.show_message(
                "Click correction needs the interactive engine, which is not installed in this "
                "build. Use the brush and eraser instead.", "warning")
            return
        layer = self.target_layer()
        self._prompt_layer = layer
        if self._click_session is None:
            self._click_session = self._make_click_session(doc, layer)
        points = np.array([[x, y] for x, y, _ in self._points], dtype=np.float32).reshape(-1, 2)
        labels = np.array([1 if p else 0 for _, _, p in self._points], dtype=np.int32)
        box = None if self._box is None else np.array(self._box, dtype=np.float32)
        session = self._click_session
        self.context.run_job(click_job, session, points, labels, box, title="Click correction",
                             on_done=lambda mask: self._apply_click(doc, layer, mask),
                             on_failed=self._drop_last_point)

    def _make_click_session(self, doc: Document, layer: MaskLayer | None):
        from ovpaint.pipelines.interactive import ClickSession

        return ClickSession(self.context.manager, lambda: self.context.image_session(doc),
                            initial_mask=None if layer is None else layer.binary)

    def _drop_last_point(self) -> None:
        if self._points:
            self._points.pop()
            self.canvas.set_points(self._points)

    def _apply_click(self, doc: Document, layer: MaskLayer | None, mask) -> None:
        mask = np.asarray(getattr(mask, "mask", mask)).astype(bool)
        if layer is None or not any(item is layer for item in doc.layers):
            layer = doc.new_mask_layer(doc.unique_name("object"), mask)
            self.context.push(AddLayersCommand(doc, [layer], "Click: new mask"))
            self._prompt_layer = layer
            return
        sign = "+" if self._points and self._points[-1][2] else "−"
        command = MaskEditCommand(doc, layer, mask if layer.mask.dtype == np.bool_
                                  else mask.astype(np.uint8) * 255, f"Click {sign}")
        if not command.is_noop:
            self.context.push(command)
