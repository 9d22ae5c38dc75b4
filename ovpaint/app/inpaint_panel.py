"""The inpainting panel: mode, prompt with its expansion and negative prompt (visible and
editable), steps, guidance, strength, seed with a dice, variants. Each variant arrives as an
image layer holding only the pixels it changed; variants can be compared and one kept.
"""

from __future__ import annotations

import dataclasses
import random

import numpy as np
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ovpaint.app.commands import AddLayersCommand, RemoveLayersCommand, SetLayerPropertyCommand
from ovpaint.app.context import EditorContext
from ovpaint.app.workers import error_message
from ovpaint.core.document import Document, ImageLayer, MaskLayer
from ovpaint.core.errors import BadInput, ModelUnavailable
from ovpaint.core.masks import bbox
from ovpaint.pipelines.inpainting.inpaint import DEFAULT_STRENGTH, MODES, InpaintSettings, inpaint


def build_settings(values: dict):
    """An ``InpaintSettings`` from the panel's values, passing only the fields it declares."""
    names = {f.name for f in dataclasses.fields(InpaintSettings)}
    return InpaintSettings(**{k: v for k, v in values.items() if k in names})


Patch = tuple[np.ndarray, np.ndarray, int, int]  # rgb, alpha, x, y of the changed pixels


def changed_patch(rgb: np.ndarray, out: np.ndarray) -> Patch | None:
    """Only the changed pixels of ``out``, over their bounding box (alpha 255 where changed)."""
    changed = (out != rgb).any(axis=2)
    box = bbox(changed)
    if box is None:
        return None
    x0, y0, x1, y1 = box
    alpha = changed[y0:y1, x0:x1].astype(np.uint8) * 255
    return np.ascontiguousarray(out[y0:y1, x0:x1]), alpha, x0, y0


def inpaint_job(
    rgb, mask, values: dict, variants: int, manager, fast: bool, *, progress, cancel
) -> tuple[list[tuple[int, Patch | None]], list[str]]:
    """Worker-side: one pipeline call for all variants (the instant fill has one); returns
    [(seed, changed patch)] and the pipeline's messages (fallbacks, memory retries)."""
    settings = build_settings(
        {**values, "variants": 1 if fast else variants, "engine": "telea" if fast else "sd"}
    )
    result = inpaint(rgb, mask, settings, manager=manager, progress=progress, cancel=cancel)
    return (
        [
            (seed, changed_patch(rgb, out))
            for seed, out in zip(result.seeds, result.images, strict=True)
        ],
        result.messages,
    )


class InpaintPanel(QWidget):
    def __init__(self, context: EditorContext, parent=None) -> None:
        super().__init__(parent)
        self.context = context
        self.mode = QComboBox()
        self.mode.setObjectName("inpaintModeCombo")
        self.mode.addItems(MODES)
        self.prompt = QLineEdit()
        self.prompt.setObjectName("inpaintPromptEdit")
        self.prompt.setPlaceholderText("what should be there, e.g. a red sports car")
        self.expanded = QPlainTextEdit()
        self.expanded.setObjectName("expandedPromptEdit")
        self.expanded.setToolTip("The prompt sent to the model; edit it freely")
        self.expanded.setMaximumHeight(60)
        self.negative = QPlainTextEdit()
        self.negative.setObjectName("negativePromptEdit")
        self.negative.setMaximumHeight(48)
        self.steps = QSpinBox()
        self.steps.setObjectName("stepsSpin")
        self.steps.setRange(1, 200)
        self.steps.setValue(50)
        self.guidance = QDoubleSpinBox()
        self.guidance.setRange(0.0, 30.0)
        self.guidance.setSingleStep(0.5)
        self.guidance.setValue(7.5)
        self.strength = QDoubleSpinBox()
        self.strength.setRange(0.05, 1.0)
        self.strength.setSingleStep(0.05)
        self.strength.setValue(1.0)
        self.seed = QSpinBox()
        self.seed.setObjectName("seedSpin")
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setValue(random.randrange(2**31))
        dice = QToolButton()
        dice.setText("Random")
        dice.setObjectName("diceButton")
        dice.setToolTip("New random seed")
        dice.clicked.connect(lambda: self.seed.setValue(random.randrange(2**31)))
        self.variants = QSpinBox()
        self.variants.setRange(1, 8)
        self.variants.setValue(1)
        self.fast = QCheckBox("Instant fallback (no model)")
        self.fast.setObjectName("fallbackCheck")
        self.button = QPushButton("Inpaint")
        self.button.setObjectName("inpaintButton")
        self.button.setToolTip("Inpaint inside the selected mask (Ctrl+Shift+Return)")
        self.button.clicked.connect(self.run)
        self.variant_combo = QComboBox()
        self.variant_combo.setObjectName("variantCombo")
        self.variant_combo.setToolTip("Show one variant at a time to compare them")
        self.variant_combo.currentIndexChanged.connect(self.show_variant)
        self.keep_button = QPushButton("Keep")
        self.keep_button.setObjectName("keepVariantButton")
        self.keep_button.setToolTip("Keep the shown variant and delete the others")
        self.keep_button.clicked.connect(self.keep_variant)
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(dice)
        variant_row = QHBoxLayout()
        variant_row.addWidget(self.variant_combo, 1)
        variant_row.addWidget(self.keep_button)
        form = QFormLayout()
        form.addRow("Mode", self.mode)
        form.addRow("Prompt", self.prompt)
        form.addRow("Full prompt", self.expanded)
        form.addRow("Negative", self.negative)
        form.addRow("Steps", self.steps)
        form.addRow("Guidance", self.guidance)
        form.addRow("Strength", self.strength)
        form.addRow("Seed", seed_row)
        form.addRow("Variants", self.variants)
        form.addRow(self.fast)
        form.addRow(self.button)
        form.addRow("Compare", variant_row)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(form)
        layout.addStretch(1)
        self._variant_layers: list[ImageLayer] = []
        self._expanded_by_user = False
        self.prompt.textChanged.connect(self._update_expansion)
        self.mode.currentTextChanged.connect(self._mode_changed)
        self.expanded.textChanged.connect(self._expanded_edited)
        context.document_changed.connect(lambda doc: self._refresh())
        context.busy_changed.connect(lambda busy: self._refresh())
        self._mode_changed(self.mode.currentText())
        self._refresh()

    def _refresh(self) -> None:
        self.button.setEnabled(self.context.document is not None and not self.context.busy)
        live = [
            v
            for v in self._variant_layers
            if self.context.document is not None
            and any(v is layer for layer in self.context.document.layers)
        ]
        self.keep_button.setEnabled(len(live) > 1)

    def _mode_changed(self, mode: str) -> None:
        self.strength.setValue(DEFAULT_STRENGTH.get(mode, 1.0))
        self.prompt.setEnabled(mode != "remove")
        self._expanded_by_user = False
        self._update_expansion()

    def _expanded_edited(self) -> None:
        if not self._setting_expansion:
            self._expanded_by_user = True

    _setting_expansion = False

    def _removed_class(self) -> str | None:
        doc = self.context.document
        layer = doc.layers.selected if doc is not None else None
        return layer.name if isinstance(layer, MaskLayer) else None

    def _update_expansion(self, *args) -> None:
        if self._expanded_by_user:
            return
        from ovpaint.pipelines.inpainting.inpaint import expand_prompt

        try:
            positive, negative = expand_prompt(
                self.mode.currentText(), self.prompt.text(), self._removed_class()
            )
        except BadInput:
            return
        self._setting_expansion = True
        self.expanded.setPlainText(positive)
        self.negative.setPlainText(negative)
        self._setting_expansion = False

    def values(self) -> dict:
        return {
            "mode": self.mode.currentText(),
            "prompt": self.expanded.toPlainText().strip(),
            "negative_prompt": self.negative.toPlainText().strip(),
            "steps": self.steps.value(),
            "guidance": self.guidance.value(),
            "strength": self.strength.value(),
            "seed": self.seed.value(),
        }

    def run(self) -> None:
        doc = self.context.document
        if doc is None or self.context.busy:
            return
        layer = doc.layers.selected
        try:
            if not isinstance(layer, MaskLayer) or not layer.binary.any():
                raise BadInput("Select a mask layer that covers what to inpaint.")
            if not self.fast.isChecked():
                self.context.manager.check_available("inpaint")
        except (BadInput, ModelUnavailable) as exc:
            self.context.banner.show_message(error_message(exc))
            return
        self._update_expansion()
        values = self.values()
        mask = layer.binary
        self.context.run_job(
            inpaint_job,
            doc.rgb,
            mask,
            values,
            self.variants.value(),
            self.context.manager,
            self.fast.isChecked(),
            title="Inpaint",
            on_done=lambda done: self.apply(doc, layer, values, *done),
        )

    def apply(
        self, doc: Document, mask_layer: MaskLayer, values: dict, outputs, messages: list[str]
    ) -> None:
        label = (
            values["mode"]
            if values["mode"] == "remove" or not self.prompt.text()
            else self.prompt.text().strip()
        )
        layers = []
        for i, (seed, patch) in enumerate(outputs):
            if patch is None:
                continue
            meta = {
                k: values[k]
                for k in ("mode", "prompt", "negative_prompt", "steps", "guidance", "strength")
            }
            meta.update(seed=seed, mask=mask_layer.name)
            name = doc.unique_name(f"inpaint: {label} #{seed}")
            rgb, alpha, x, y = patch
            layer = ImageLayer(
                name=name, rgb=rgb, alpha=alpha, x=x, y=y, role="inpaint", meta=meta, visible=i == 0
            )
            layers.append(layer)
        if messages:  # e.g. "Out of memory: retrying with attention slicing."
            self.context.banner.show_message(" ".join(messages), "info")
        if not layers:
            self.context.banner.show_message("Inpainting changed no pixels.", "info")
            return
        # results sit directly above the topmost image layer, below the masks
        index = max((doc.layers.index(x) + 1 for x in doc.layers.images()), default=0)
        self.context.push(
            AddLayersCommand(doc, layers, f"Inpaint ({label})", index=index, select=mask_layer)
        )
        self._variant_layers = layers
        self.variant_combo.blockSignals(True)
        self.variant_combo.clear()
        for layer in layers:
            self.variant_combo.addItem(f"seed {layer.meta['seed']}")
        self.variant_combo.blockSignals(False)
        self._refresh()

    def show_variant(self, index: int) -> None:
        doc = self.context.document
        if doc is None or not 0 <= index < len(self._variant_layers):
            return
        stack = self.context.undo_stack
        stack.beginMacro("Compare variants")
        for i, layer in enumerate(self._variant_layers):
            if any(layer is x for x in doc.layers) and layer.visible != (i == index):
                stack.push(SetLayerPropertyCommand(doc, layer, "visible", i == index))
        stack.endMacro()

    def keep_variant(self) -> None:
        doc = self.context.document
        index = self.variant_combo.currentIndex()
        if doc is None or not 0 <= index < len(self._variant_layers):
            return
        others = [
            x
            for i, x in enumerate(self._variant_layers)
            if i != index and any(x is y for y in doc.layers)
        ]
        if others:
            self.show_variant(index)
            self.context.push(RemoveLayersCommand(doc, others, "Keep one variant"))
        self._variant_layers = [self._variant_layers[index]]
        self.variant_combo.clear()
        self._refresh()
