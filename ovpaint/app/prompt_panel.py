"""The prompt box: classes as text, a method, Segment. Each class has one mask layer, reused
when it is segmented again."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ovpaint.app.commands import (
    AddLayersCommand,
    PreparedEdit,
    SelectCommand,
    SetLayerPropertyCommand,
    StepCommand,
    prepare_edit,
)
from ovpaint.app.context import EditorContext
from ovpaint.core.document import Document, MaskLayer, class_key
from ovpaint.core.errors import BadInput, ModelUnavailable
from ovpaint.core.prompt import parse_prompt
from ovpaint.pipelines.segmentation.settings import CPU_GRID, THESIS_GRID


def fill_method_combo(
    combo: QComboBox, default: str | None = None, seconds: dict | None = None, grid: int = 0
) -> None:
    """One item per registered method (its name and, with ``seconds``, the time to expect on
    this machine), its description as the tooltip, ``default`` (the registry's default method
    when None) selected."""
    from ovpaint.pipelines.segmentation.methods import DEFAULT_METHOD, METHODS, method_names

    chosen = combo.currentData() or default or DEFAULT_METHOD
    combo.blockSignals(True)
    combo.clear()
    for name in method_names():
        method = METHODS[name]
        tip = f"{method.title}: {method.describe()}"
        text = name
        if seconds is not None:
            guess = expected_seconds(name, run_key(name, grid), seconds)
            if guess is not None:
                text = f"{name}  —  ~{short_time(guess[0])}"
                tip += f"\nExpected on this machine: about {short_time(guess[0])} ({guess[1]})."
            else:
                tip += "\nExpected time on this machine: known after its first run."
        combo.addItem(text, name)
        combo.setItemData(combo.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
    combo.setCurrentIndex(max(combo.findData(chosen), 0))
    combo.blockSignals(False)


def uses_proposals(name: str) -> bool:
    from ovpaint.pipelines.segmentation.methods import METHODS

    method = METHODS.get(name)
    return method is not None and "proposal" in method.settings


def run_key(name: str, grid: int) -> str:
    """What a run's time is recorded under: the method, and the grid where it matters."""
    return f"{name}@{grid}" if grid and uses_proposals(name) else name


def expected_seconds(name: str, key: str, seconds: dict) -> tuple[float, str] | None:
    """(seconds, where the figure comes from): the method's last run here, else another
    method's last run scaled by the methods' cost hints, else None."""
    from ovpaint.pipelines.segmentation.methods import METHODS

    value = seconds.get(key)
    if isinstance(value, (int, float)) and value > 0:
        return float(value), "its last run here"
    for other_key, other_seconds in seconds.items():
        other = METHODS.get(str(other_key).split("@")[0])
        if other is None or not isinstance(other_seconds, (int, float)) or other_seconds <= 0:
            continue
        if other.name == name:
            continue
        ratio = METHODS[name].cost / other.cost if other.cost > 0 else 1.0
        return float(other_seconds) * ratio, f"estimated from {other.name}'s last run"
    return None


def short_time(seconds: float) -> str:
    if seconds < 1:
        return "1 s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"


@dataclass
class ClassMask:
    """One class of a segmentation run, ready for the UI thread: whether anything was found,
    and its mask as an edit of the class layer's mask when the job was submitted."""

    name: str
    found: bool
    edit: PreparedEdit

    @property
    def mask(self) -> np.ndarray:
        return self.edit.mask


@dataclass
class SegmentRun:
    """A segmentation as the worker hands it to the UI thread: the result, its classes ready
    to apply, and the seconds spent loading models before it (once per session)."""

    result: Any
    classes: list[ClassMask]
    loading_seconds: float = 0.0


def load_models(method: str, manager, *, progress, cancel) -> float:
    """Load the models ``method`` needs that are not loaded yet, as a stage of its own, and
    return the seconds it took: the job bar says why the first run waits, and the time to
    expect from the method leaves this once-only cost out."""
    from ovpaint.pipelines.segmentation.methods import get_method

    missing = [role for role in get_method(method).roles if manager.device_of(role) is None]
    if not missing:
        return 0.0
    started = time.perf_counter()
    progress.stage("loading models", len(missing))
    for done, role in enumerate(missing, start=1):
        cancel.check()
        manager.get(role)
        progress.update(done, message=manager.model_id(role))
    return time.perf_counter() - started


def segment_job(
    rgb,
    text: str,
    method: str,
    manager,
    session_of,
    previous=None,
    settings=None,
    *,
    progress,
    cancel,
):
    """Worker-side: the models first, then the same pipeline entry the CLI uses, then
    everything full-size the result needs (one mask per class, its difference from the class's
    previous mask), so applying it on the UI thread costs little even on a 24 MP image."""
    from ovpaint.pipelines.segmentation.segment import segment

    loading = load_models(method, manager, progress=progress, cancel=cancel)
    session = session_of()
    result = segment(
        rgb,
        text,
        method=method,
        manager=manager,
        session=session,
        settings=settings,
        progress=progress,
        cancel=cancel,
    )
    previous = previous or {}
    classes = []
    for index, name in enumerate(result.classes[1:], start=1):
        cancel.check()
        mask = result.labels == index
        edit = prepare_edit(previous.get(class_key(name)), mask)
        classes.append(ClassMask(name, bool(mask.any()), edit))
    return SegmentRun(result, classes, loading)


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
        self.method.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.grid = QComboBox()
        self.grid.setObjectName("gridCombo")
        self.grid.addItem(f"{CPU_GRID}×{CPU_GRID} points (faster)", CPU_GRID)
        self.grid.addItem(f"{THESIS_GRID}×{THESIS_GRID} points (as the benchmark)", THESIS_GRID)
        on_cpu = getattr(context.manager.device, "type", "cpu") == "cpu"
        self.grid.setCurrentIndex(0 if on_cpu else 1)
        self.grid.setToolTip(
            f"Where SAM2 is asked for objects. On this CPU the default is {CPU_GRID}×{CPU_GRID}"
            f": about 4× faster than the {THESIS_GRID}×{THESIS_GRID} the benchmark keeps for "
            "comparison with the thesis."
            if on_cpu
            else f"Where SAM2 is asked for objects: {THESIS_GRID}×{THESIS_GRID} as in the thesis."
        )
        self.grid_label = QLabel("Proposal grid")
        self._fill_methods()
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
        form.addRow(self.grid_label, self.grid)
        self.method.currentIndexChanged.connect(lambda index: self._method_changed())
        self.grid.currentIndexChanged.connect(lambda index: self._fill_methods())
        self._method_changed()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(form)
        context.document_changed.connect(lambda doc: self._refresh())
        context.busy_changed.connect(lambda busy: self._refresh())
        self._refresh()

    def _fill_methods(self) -> None:
        seconds = self.context.settings["method_seconds"]
        fill_method_combo(self.method, seconds=seconds, grid=self.grid.currentData() or 0)

    def _method_changed(self) -> None:
        shown = uses_proposals(self.method.currentData() or "")
        self.grid.setVisible(shown)
        self.grid_label.setVisible(shown)

    def method_settings(self, method: str) -> dict | None:
        """The settings this panel sets for ``method``: the proposal grid where it matters."""
        if uses_proposals(method):
            return {"proposal": {"points_per_side": int(self.grid.currentData())}}
        return None

    def record_time(self, method: str, seconds: float) -> None:
        """Keep how long ``method`` took here, its models already loaded: the method list shows
        it as the time to expect."""
        grid = self.grid.currentData() if uses_proposals(method) else 0
        times = dict(self.context.settings["method_seconds"] or {})
        times[run_key(method, grid or 0)] = round(float(seconds), 2)
        self.context.settings["method_seconds"] = times
        self.context.settings.save()
        self._fill_methods()

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
            self.method_settings(method),
            title=f"Segment ({method})",
            on_done=lambda out: self._done(doc, method, out, text),
        )

    def _done(self, doc: Document, method: str, run: SegmentRun, text: str) -> None:
        if self.context.last_operation is not None:
            seconds = self.context.last_operation[1] - run.loading_seconds
            self.record_time(method, max(seconds, 0.0))
        self.apply(doc, run.result, run.classes, text)

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
            step.add(item.edit.command(doc, layer, f"Segment {layer.name}"))
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
