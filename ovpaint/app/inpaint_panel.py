"""The inpainting panel: mode, engine (from the engine registry), prompt with its expansion and
negative prompt (visible and editable), steps, guidance, strength, seed with a dice, variants,
and for remove how much the mask grows and an optional Stable Diffusion refinement. Each variant
arrives as an image layer holding only the pixels it changed; variants can be compared and one
kept.
"""

from __future__ import annotations

import dataclasses
import random

from PySide6.QtWidgets import (
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
from ovpaint.pipelines.inpainting import settings as defaults
from ovpaint.pipelines.inpainting.engines import ENGINES, choose_engine, engines_for
from ovpaint.pipelines.inpainting.geometry import Patch
from ovpaint.pipelines.inpainting.inpaint import inpaint
from ovpaint.pipelines.inpainting.settings import (
    AUTO_ENGINE,
    DEFAULT_STRENGTH,
    MODES,
    InpaintSettings,
)

AUTO_HELP = (
    "The best installed engine for the mode: LaMa for remove when installed, else Stable "
    "Diffusion, else the instant OpenCV fill. The message after the run says which ran."
)


def fill_engine_combo(combo: QComboBox, mode: str) -> None:
    """Auto plus the registered engines that can do ``mode``, keeping the choice when it
    still applies."""
    current = combo.currentData() or AUTO_ENGINE
    combo.blockSignals(True)
    combo.clear()
    combo.addItem("Auto", AUTO_ENGINE)
    combo.setItemData(0, AUTO_HELP, 3)  # Qt.ToolTipRole
    for engine in engines_for(mode):
        combo.addItem(engine.title, engine.name)
        combo.setItemData(combo.count() - 1, engine.help, 3)
    index = combo.findData(current)
    combo.setCurrentIndex(max(0, index))
    combo.blockSignals(False)


def build_settings(values: dict) -> InpaintSettings:
    """An ``InpaintSettings`` from the panel's values, passing only the fields it declares."""
    names = {f.name for f in dataclasses.fields(InpaintSettings)}
    return InpaintSettings(**{k: v for k, v in values.items() if k in names})


def inpaint_job(
    rgb, mask, values: dict, manager, *, progress, cancel
) -> tuple[list[tuple[int, Patch | None]], list[str], str]:
    """Worker-side: one pipeline call for all variants; returns [(seed, the variant's pixels
    as one patch)], the pipeline's messages (which engine ran, fallbacks, memory retries) and
    the engine that ran."""
    result = inpaint(
        rgb, mask, build_settings(values), manager=manager, progress=progress, cancel=cancel
    )
    patches = result.layer_patches()
    return list(zip(result.seeds, patches, strict=True)), result.messages, result.engine


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
        self.engine = QComboBox()
        self.engine.setObjectName("inpaintEngineCombo")
        self.engine.setToolTip(AUTO_HELP)
        self.steps = QSpinBox()
        self.steps.setObjectName("stepsSpin")
        self.steps.setRange(1, 200)
        on_cpu = (
            getattr(context.manager, "device", None) is None or context.manager.device.type == "cpu"
        )
        self.steps.setValue(defaults.CPU_STEPS if on_cpu else defaults.GPU_STEPS)
        self.steps.setToolTip(
            f"Stable Diffusion steps: {defaults.CPU_STEPS} with DPM-Solver++ on a CPU, "
            f"{defaults.GPU_STEPS} with the model's own scheduler on a GPU"
        )
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
        self.grow = QSpinBox()
        self.grow.setObjectName("removeGrowSpin")
        self.grow.setRange(0, 100)
        self.grow.setSuffix(" px")
        self.grow.setValue(defaults.REMOVE_GROW_PX)
        self.grow.setToolTip(
            "Remove: grow the mask by this much before filling, so the object's rim and "
            "shadow go too"
        )
        self.refine = QDoubleSpinBox()
        self.refine.setObjectName("refineStrengthSpin")
        self.refine.setRange(0.0, 1.0)
        self.refine.setSingleStep(0.05)
        self.refine.setSpecialValueText("off")
        self.refine.setToolTip(
            "Remove with LaMa, then let Stable Diffusion refine its fill at this strength "
            "(about 0.3 adds texture; needs the inpainting model, slow on a CPU)"
        )
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
        form.addRow("Engine", self.engine)
        form.addRow("Grow (remove)", self.grow)
        form.addRow("SD refine", self.refine)
        form.addRow("Prompt", self.prompt)
        form.addRow("Full prompt", self.expanded)
        form.addRow("Negative", self.negative)
        form.addRow("Steps", self.steps)
        form.addRow("Guidance", self.guidance)
        form.addRow("Strength", self.strength)
        form.addRow("Seed", seed_row)
        form.addRow("Variants", self.variants)
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
        self.engine.currentIndexChanged.connect(lambda index: self._engine_changed())
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
        fill_engine_combo(self.engine, mode)
        self._expanded_by_user = False
        self._update_expansion()
        self._engine_changed()

    def _engine_changed(self) -> None:
        """Show the controls the chosen engine uses: prompts and diffusion settings for
        Stable Diffusion (and for auto where it is what runs), grow and refine for remove."""
        mode, name = self.mode.currentText(), self.engine.currentData() or AUTO_ENGINE
        engine = ENGINES.get(name)
        diffusion = engine.uses_prompt if engine is not None else mode != "remove"
        removing = mode == "remove"
        for widget in (self.expanded, self.negative, self.guidance, self.strength, self.seed):
            widget.setEnabled(diffusion)
        self.steps.setEnabled(diffusion or self.refine.value() > 0)
        self.variants.setEnabled(diffusion or self.refine.value() > 0)
        self.grow.setEnabled(removing)
        self.refine.setEnabled(removing and name in (AUTO_ENGINE, "lama"))
        self.engine.setToolTip(engine.help if engine is not None else AUTO_HELP)

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
            "variants": self.variants.value(),
            "engine": self.engine.currentData() or AUTO_ENGINE,
            "grow_px": self.grow.value(),
            "refine_strength": self.refine.value(),
            "user_prompt": self.prompt.text().strip(),
        }

    def run(self) -> None:
        doc = self.context.document
        if doc is None or self.context.busy:
            return
        layer = doc.layers.selected
        self._update_expansion()
        values = self.values()
        try:
            if not isinstance(layer, MaskLayer) or not layer.binary.any():
                raise BadInput("Select a mask layer that covers what to inpaint.")
            # bad settings and a missing model are said now, before any work
            choose_engine(build_settings(values).validated(), self.context.manager)
        except (BadInput, ModelUnavailable) as exc:
            self.context.banner.show_message(error_message(exc))
            return
        mask = layer.binary
        self.context.run_job(
            inpaint_job,
            doc.rgb,
            mask,
            values,
            self.context.manager,
            title="Inpaint",
            on_done=lambda done: self.apply(doc, layer, values, *done),
        )

    def apply(
        self,
        doc: Document,
        mask_layer: MaskLayer,
        values: dict,
        outputs,
        messages: list[str],
        engine: str,
    ) -> None:
        """Add each variant's patch as an image layer, named from the prompt that was
        submitted (the prompt box may have changed while the job ran)."""
        label = values["user_prompt"] if values["mode"] != "remove" else ""
        label = label or values["mode"]
        layers = []
        for i, (seed, patch) in enumerate(outputs):
            if patch is None:
                continue
            meta = {
                k: values[k]
                for k in ("mode", "prompt", "negative_prompt", "steps", "guidance", "strength")
            }
            meta.update(seed=seed, mask=mask_layer.name, engine=engine)
            ran = ENGINES.get(engine)
            seeded = (ran is not None and ran.uses_prompt) or values["refine_strength"] > 0
            name = doc.unique_name(f"inpaint: {label}" + (f" #{seed}" if seeded else ""))
            layer = ImageLayer(
                name=name,
                rgb=patch.rgb,
                alpha=patch.alpha,
                x=patch.x,
                y=patch.y,
                role="inpaint",
                meta=meta,
                visible=i == 0,
            )
            layers.append(layer)
        if messages:  # which engine ran; fallbacks; "Out of memory: retrying with …"
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
            self.variant_combo.addItem(layer.name)
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
