"""The prompt box: classes as text, a method, Segment. Each class has one mask layer, reused
when it is segmented again."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ovpaint.app.commands import (
    AddLayersCommand,
    SelectCommand,
    SetLayerPropertyCommand,
    StepCommand,
    mask_edit,
)
from ovpaint.app.context import EditorContext
from ovpaint.core.document import Document, MaskDiff, MaskLayer, class_key, mask_diff
from ovpaint.core.errors import BadInput, ModelUnavailable
from ovpaint.core.prompt import parse_prompt


def fill_method_combo(combo: QComboBox, default: str | None = None) -> None:
    """One item per registered method (its name), its description as the tooltip, ``default``
    (the registry's default method when None) selected."""
    from ovpaint.pipelines.segmentation.methods import DEFAULT_METHOD, METHODS, method_names

    for name in method_names():
        combo.addItem(name, name)
        method = METHODS[name]
        tip = f"{method.title}: {method.describe()}"
        combo.setItemData(combo.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
    index = combo.findData(default or DEFAULT_METHOD)
    combo.setCurrentIndex(max(index, 0))


@dataclass
class ClassMask:
    """One class of a segmentation run, ready for the UI thread: its mask, whether anything
    was found, and its difference from the class's previous mask (computed in the worker)."""

    name: str
    mask: np.ndarray
    found: bool
    previous: np.ndarray | None = None  # the class layer's mask when the job was submitted
    diff: MaskDiff | None = None  # previous → mask (None: equal), when ``diffed``
    diffed: bool = False  # previous and mask were compared (both boolean)


def segment_job(
    rgb, text: str, method: str, manager, session_of, previous=None, *, progress, cancel
):
    """Worker-side: the same pipeline entry the CLI uses, then everything full-size the result
    needs (one mask per class, its difference from the class's previous mask), so applying it
    on the UI thread costs little even on a 24 MP image."""
    from ovpaint.pipelines.segmentation.segment import segment

    session = session_of()
    result = segment(
        rgb,
        text,
        method=method,
        manager=manager,
        session=session,
        settings=None,
        progress=progress,
        cancel=cancel,
    )
    previous = previous or {}
    classes = []
    for index, name in enumerate(result.classes[1:], start=1):
        cancel.check()
        mask = result.labels == index
        before = previous.get(class_key(name))
        diffed = before is not None and before.dtype == mask.dtype and before.shape == mask.shape
        diff = mask_diff(before, mask) if diffed else None
        classes.append(ClassMask(name, mask, bool(mask.any()), before, diff, diffed))
    return result, classes


def class_layer(doc: Document, name: str) -> MaskLayer | None:
    """The mask layer that holds class ``name`` (its "class" tag, or for layers without one,
    its name), topmost first: a class segmented again reuses it."""
    key = class_key(name)
    for layer in reversed(doc.layers.masks()):
        tagged = layer.meta.get("class")
        if class_key(tagged if isinstance(tagged, str) else layer.name) == key:
            return layer
    return None


class PromptPanel(QWidget):
    def __init__(self, context: EditorContext, parent=None) -> None:
        super().__init__(parent)
        self.context = context
        self.prompt = QLineEdit()
        self.prompt.setObjectName("promptEdit")
        self.prompt.setPlaceholderText("classes, e.g.  sky, dog, person in red")
        self.prompt.setToolTip("Commas separate classes; '|' separates synonyms of one class")
        self.prompt.setClearButtonEnabled(True)
        self.method = QComboBox()
        self.method.setObjectName("methodCombo")
        fill_method_combo(self.method)
        self.button = QPushButton("Segment")
        self.button.setObjectName("segmentButton")
        self.button.setToolTip("Find every class in the image (Ctrl+Return)")
        self.button.setDefault(True)
        self.button.clicked.connect(self.segment)
        self.prompt.returnPressed.connect(self.segment)
        form = QFormLayout()
        form.addRow("Classes", self.prompt)
        row = QHBoxLayout()
        row.addWidget(self.method, 1)
        row.addWidget(self.button)
        form.addRow("Method", row)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(form)
        context.document_changed.connect(lambda doc: self._refresh())
        context.busy_changed.connect(lambda busy: self._refresh())
        self._refresh()

    def _refresh(self) -> None:
        ready = self.method.count() > 0
        self.button.setEnabled(
            ready and self.context.document is not None and not self.context.busy
        )
        if not ready:
            self.button.setToolTip("The segmentation engine is not installed in this build.")

    def segment(self) -> None:
        doc = self.context.document
        if doc is None or self.context.busy:
            return
        text = self.prompt.text()
        try:
            classes = parse_prompt(text)
            method = self.method.currentData()
            if not method:
                raise ModelUnavailable("No segmentation method is available in this build.")
            from ovpaint.pipelines.segmentation.segment import check_models

            check_models(method, self.context.manager)
        except (BadInput, ModelUnavailable) as exc:
            self.context.report(exc, topic="segment")
            return
        previous = {}
        for query in classes:
            layer = class_layer(doc, query.name)
            if layer is not None:  # arrays are never edited in place: the worker may read it
                previous[class_key(query.name)] = layer.mask
        self.context.run_job(
            segment_job,
            doc.rgb,
            text,
            method,
            self.context.manager,
            lambda: self.context.image_session(doc),
            previous,
            title=f"Segment ({method})",
            on_done=lambda out: self.apply(doc, *out, text),
        )

    def apply(self, doc: Document, result, classes: list[ClassMask], text: str) -> None:
        """One layer per class: a class seen before gets its new mask in its own layer (the
        old mask stays one undo away), a new class a new layer in its fixed colour, a class
        not found no layer at all. The whole run is one undo step."""
        step = StepCommand(f"Segment “{text.strip()}”")
        new_layers: list[MaskLayer] = []
        touched: list[MaskLayer] = []
        missing: list[str] = []
        for item in classes:
            layer = class_layer(doc, item.name)
            if not item.found:
                missing.append(item.name + (" (its earlier mask is kept)" if layer else ""))
                continue
            meta = {"class": item.name, "method": result.method, "prompt": text}
            if layer is None:
                taken = [x.color for x in new_layers]
                new_layers.append(
                    doc.new_mask_layer(
                        doc.unique_name(item.name), item.mask, None, tuple(taken), **meta
                    )
                )
                continue
            known = item.diffed and item.previous is layer.mask
            label = f"Segment {layer.name}"
            step.add(mask_edit(doc, layer, item.mask, label, item.diff if known else None, known))
            if {k: layer.meta.get(k) for k in meta} != meta:
                step.add(SetLayerPropertyCommand(doc, layer, "meta", {**layer.meta, **meta}))
            touched.append(layer)
        if new_layers:
            step.add(AddLayersCommand(doc, new_layers, "New class layers"))
        first = next((x for x in [*touched, *new_layers]), None)
        if first is not None:
            step.add(SelectCommand(doc, first))
        if step.parts:
            self.context.push(step)
        notes = ["Not found: " + ", ".join(missing) + "."] if missing else []
        notes += list(getattr(result, "messages", []) or [])
        if notes:
            kind = "warning" if missing and not (touched or new_layers) else "info"
            self.context.banner.show_message(" ".join(notes), kind, topic="segment")
