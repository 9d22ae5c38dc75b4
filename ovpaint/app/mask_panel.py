"""The Mask panel: grow/shrink and feather the selected mask with sliders, seen live on the
canvas before Apply makes it one undo step; Invert and Clear beside them.

The preview is computed on the worker pool (feathering a 24 MP mask takes longer than a UI
frame), the newest slider position wins, and Apply reuses the preview it already shows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QDockWidget,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ovpaint.app.canvas import Canvas
from ovpaint.app.commands import PreparedEdit, mask_edit, prepare_edit
from ovpaint.app.context import EditorContext
from ovpaint.app.icons import icon, tip
from ovpaint.app.workers import JobHandle
from ovpaint.core import masks as mask_ops
from ovpaint.core.document import Document, MaskLayer

MAX_GROW = 200
MAX_FEATHER = 200
PREVIEW_DELAY_MS = 40


@dataclass
class Adjusted:
    """A mask adjusted off the UI thread: the slider values and the edit from the layer's mask
    it was computed from."""

    params: tuple[int, int]  # grow, feather
    edit: PreparedEdit

    def is_for(self, layer: MaskLayer, params: tuple[int, int]) -> bool:
        return self.edit.before is layer.mask and self.params == params


def adjust_job(source: np.ndarray, grow_px: int, feather_px: int, *, progress, cancel):
    progress.stage("adjust mask")
    after = mask_ops.adjust(source, grow_px, feather_px)
    cancel.check()
    return Adjusted((grow_px, feather_px), prepare_edit(source, after))


def _slider_row(maximum: int, minimum: int, name: str, tooltip: str):
    slider = QSlider(Qt.Orientation.Horizontal)
    slider.setObjectName(f"{name}Slider")
    slider.setRange(minimum, maximum)
    slider.setToolTip(tooltip)
    spin = QSpinBox()
    spin.setObjectName(f"{name}Spin")
    spin.setRange(minimum, maximum)
    spin.setSuffix(" px")
    spin.setToolTip(tooltip)
    slider.valueChanged.connect(spin.setValue)
    spin.valueChanged.connect(slider.setValue)
    row = QHBoxLayout()
    row.addWidget(slider, 1)
    row.addWidget(spin)
    return slider, spin, row


class MaskPanel(QWidget):
    def __init__(self, context: EditorContext, canvas: Canvas, parent=None) -> None:
        super().__init__(parent)
        self.context, self.canvas = context, canvas
        self.target = QLabel()
        self.target.setObjectName("maskTarget")
        self.target.setWordWrap(True)
        self.grow, self.grow_spin, grow_row = _slider_row(
            MAX_GROW,
            -MAX_GROW,
            "grow",
            "Grow (right) or shrink (left) the selected mask by this many pixels",
        )
        self.feather, self.feather_spin, feather_row = _slider_row(
            MAX_FEATHER, 0, "feather", "Soften the mask's edge over this many pixels inside it"
        )
        self.apply_button = QPushButton(icon("grow"), "Apply")
        self.apply_button.setObjectName("maskApplyButton")
        self.apply_button.setToolTip(tip("Apply the previewed change as one undo step", "Return"))
        self.apply_button.clicked.connect(self.apply)
        self.reset_button = QPushButton("Reset")
        self.reset_button.setObjectName("maskResetButton")
        self.reset_button.setToolTip("Put the sliders back to 0 and drop the preview")
        self.reset_button.clicked.connect(self.reset)
        self.invert_button = QToolButton()
        self.invert_button.setIcon(icon("invert"))
        self.invert_button.setObjectName("maskInvertButton")
        self.invert_button.setToolTip(tip("Invert the selected mask", "Ctrl+I"))
        self.invert_button.clicked.connect(lambda: self.one_shot("invert"))
        self.clear_button = QToolButton()
        self.clear_button.setIcon(icon("clear"))
        self.clear_button.setObjectName("maskClearButton")
        self.clear_button.setToolTip(tip("Clear the selected mask", "Ctrl+Shift+Backspace"))
        self.clear_button.clicked.connect(lambda: self.one_shot("clear"))
        buttons = QHBoxLayout()
        buttons.addWidget(self.apply_button)
        buttons.addWidget(self.reset_button)
        buttons.addStretch(1)
        buttons.addWidget(self.invert_button)
        buttons.addWidget(self.clear_button)
        form = QFormLayout()
        form.addRow(self.target)
        form.addRow("Grow / shrink", grow_row)
        form.addRow("Feather", feather_row)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addStretch(1)

        self.layer: MaskLayer | None = None
        self.preview: Adjusted | None = None
        self._job: JobHandle | None = None
        self._pending_apply = False
        self._committing = False
        self._watched: Document | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(PREVIEW_DELAY_MS)
        self._timer.timeout.connect(self._compute)
        self.grow.valueChanged.connect(self._params_changed)
        self.feather.valueChanged.connect(self._params_changed)
        context.document_changed.connect(self._document_changed)
        self._document_changed(context.document)

    # ------------------------------------------------------------------ state
    @property
    def params(self) -> tuple[int, int]:
        return self.grow.value(), self.feather.value()

    def _document_changed(self, doc: Document | None) -> None:
        if self._watched is not None:
            self._watched.layers.selection_changed.disconnect(self._selection_changed)
            self._watched.layers.changed.disconnect(self._layer_changed)
        self._watched = doc
        if doc is not None:
            doc.layers.selection_changed.connect(self._selection_changed)
            doc.layers.changed.connect(self._layer_changed)
        self._selection_changed(doc.layers.selected if doc is not None else None)

    def _selection_changed(self, layer) -> None:
        self._drop_preview()
        self.layer = layer if isinstance(layer, MaskLayer) else None
        self._set_sliders(0, 0)
        self._refresh()

    def _layer_changed(self, layer, what: str, region) -> None:
        if layer is self.layer and what == "pixels" and not self._committing:
            self._drop_preview()  # edited elsewhere (brush, undo): start again from it
            self._set_sliders(0, 0)
        if layer is self.layer:
            self._refresh()

    def _set_sliders(self, grow_px: int, feather_px: int) -> None:
        for slider, value in ((self.grow, grow_px), (self.feather, feather_px)):
            slider.blockSignals(True)
            slider.setValue(value)
            slider.blockSignals(False)
        self.grow_spin.setValue(grow_px)
        self.feather_spin.setValue(feather_px)

    def _refresh(self) -> None:
        has = self.layer is not None
        if not has:
            text = "Select a mask layer to grow, shrink or feather it."
        elif self.preview is not None:
            text = (
                f"Mask: <b>{self.layer.name}</b> — the canvas shows the change; "
                "Apply keeps it, Reset drops it."
            )
        else:
            text = f"Mask: <b>{self.layer.name}</b>"
        self.target.setText(text)
        for widget in (self.grow, self.grow_spin, self.feather, self.feather_spin):
            widget.setEnabled(has)
        self.invert_button.setEnabled(has)
        self.clear_button.setEnabled(has)
        self.reset_button.setEnabled(has and self.params != (0, 0))
        self.apply_button.setEnabled(has and self.params != (0, 0))

    # ------------------------------------------------------------------ preview
    def _params_changed(self, *args) -> None:
        self._refresh()
        if self.layer is None:
            return
        if self.params == (0, 0):
            self._drop_preview()
            return
        self._timer.start()

    def _compute(self) -> None:
        layer = self.layer
        if layer is None or self.params == (0, 0):
            return
        if self._job is not None and not self._job.is_finished:
            self._job.cancel()  # the newest slider position wins
        source, (grow_px, feather_px) = layer.mask, self.params
        self._job = self.context.workers.submit(
            adjust_job,
            source,
            grow_px,
            feather_px,
            name="Mask preview",
            on_done=self._preview_ready,
            on_error=lambda exc: self.context.report(exc, "Mask preview", "mask"),
        )

    def _preview_ready(self, adjusted: Adjusted) -> None:
        layer = self.layer
        if layer is None or not adjusted.is_for(layer, self.params):
            return  # stale: the slider or the mask moved on
        self.preview = adjusted
        self.canvas.preview_mask(layer, adjusted.edit.mask, None)
        self._refresh()
        if self._pending_apply:
            self._pending_apply = False
            self.apply()

    def _drop_preview(self) -> None:
        self._timer.stop()
        self._pending_apply = False
        if self._job is not None and not self._job.is_finished:
            self._job.cancel()
        if self.preview is not None and self.layer is not None:
            self.canvas.end_preview(self.layer)
        self.preview = None

    # ------------------------------------------------------------------ actions
    def focus_slider(self, which: str) -> None:
        """The Mask menu's Grow / Shrink / Feather: show this panel with that slider."""
        dock = self.parentWidget()
        while dock is not None and not isinstance(dock, QDockWidget):
            dock = dock.parentWidget()
        if dock is not None:  # its dock may be a tab behind Inpaint
            dock.show()
            dock.raise_()
        slider = self.feather if which == "feather" else self.grow
        slider.setFocus()
        if self.layer is None:
            self.context.banner.show_message("Select a mask layer first.", "warning", topic="mask")

    def apply(self) -> bool:
        layer, doc = self.layer, self.context.document
        if layer is None or doc is None or self.params == (0, 0):
            return False
        ready = self.preview
        if ready is None or not ready.is_for(layer, self.params):
            self._pending_apply = True  # apply as soon as the preview for these values lands
            self._timer.stop()
            self._compute()
            return False
        grow_px, feather_px = ready.params
        words = [f"grow {grow_px:+d} px"] if grow_px else []
        words += [f"feather {feather_px} px"] if feather_px else []
        command = ready.edit.command(doc, layer, f"{', '.join(words)}: {layer.name}")
        self._committing = True
        try:
            if command is not None:
                self.context.push(command)
            else:
                self.canvas.end_preview(layer)
        finally:
            self._committing = False
        self.preview = None
        self._set_sliders(0, 0)
        self._refresh()
        return command is not None

    def reset(self) -> None:
        self._drop_preview()
        self._set_sliders(0, 0)
        self._refresh()

    def one_shot(self, op: str) -> bool:
        layer, doc = self.layer, self.context.document
        if layer is None or doc is None:
            self.context.banner.show_message("Select a mask layer first.", "warning", topic="mask")
            return False
        self.reset()
        mask = layer.mask
        if op == "invert":
            after = mask_ops.invert(mask)
        elif op == "clear":
            after = np.zeros_like(mask)
        else:
            raise ValueError(op)
        command = mask_edit(doc, layer, after, f"{op.capitalize()} {layer.name}")
        if command is None:
            return False
        self.context.push(command)
        return True
