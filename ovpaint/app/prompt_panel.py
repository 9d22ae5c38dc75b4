"""The prompt box: classes as text, a method, Segment. Each class becomes a mask layer."""

from __future__ import annotations

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

from ovpaint.app.commands import AddLayersCommand
from ovpaint.app.context import EditorContext
from ovpaint.app.workers import error_message
from ovpaint.core.document import Document
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


def segment_job(rgb, text: str, method: str, manager, session_of, *, progress, cancel):
    """Worker-side: the same pipeline entry the CLI uses."""
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
    # the per-class masks here, not on the UI thread (a full-size pass over the labels each)
    masks = [result.labels == index for index in range(1, len(result.classes))]
    return result, masks, [bool(mask.any()) for mask in masks]


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
            self.context.banner.show_message(error_message(exc))
            return
        del classes
        self.context.run_job(
            segment_job,
            doc.rgb,
            text,
            method,
            self.context.manager,
            lambda: self.context.image_session(doc),
            title=f"Segment ({method})",
            on_done=lambda out: self.apply(doc, *out, text),
        )

    def apply(self, doc: Document, result, masks: list, found: list, text: str) -> None:
        """One mask layer per class (``masks``: class 1, 2, ..., made in the worker), named
        after it, added as one undo step."""
        layers, colors, empty = [], [], []
        for name, mask, any_pixel in zip(result.classes[1:], masks, found, strict=True):
            layer = doc.new_mask_layer(
                doc.unique_name(name),
                mask,
                also_used=tuple(colors),
                method=result.method,
                prompt=text,
            )
            colors.append(layer.color)
            layers.append(layer)
            if not any_pixel:
                empty.append(layer.name)
        if layers:
            self.context.push(
                AddLayersCommand(doc, layers, f"Segment “{text.strip()}”", select=layers[0])
            )
        notes = list(getattr(result, "messages", []) or [])
        if empty:
            notes.append("Nothing found for: " + ", ".join(empty))
        if notes:
            self.context.banner.show_message(" ".join(notes), "info")
