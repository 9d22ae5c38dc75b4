"""The main window: assembles the canvas, the panels and the menus; the work is delegated.

Files live in :mod:`files`, tools in :mod:`tools`, segmentation in :mod:`prompt_panel`,
inpainting in :mod:`inpaint_panel`, models in :mod:`model_dialog`. This class only wires them.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QSpinBox,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from ovpaint.app.canvas import Canvas
from ovpaint.app.context import EditorContext, JobBar, MessageBanner
from ovpaint.app.files import FileController
from ovpaint.app.inpaint_panel import InpaintPanel
from ovpaint.app.layer_panel import LayerPanel
from ovpaint.app.prompt_panel import PromptPanel
from ovpaint.app.tools import TOOL_KEYS, TOOL_TITLES, TOOLS, ToolController
from ovpaint.app.workers import WorkerPool
from ovpaint.core.document import Document
from ovpaint.core.settings import Settings


class MainWindow(QMainWindow):
    def __init__(self, manager, parent=None, settings: Settings | None = None) -> None:
        super().__init__(parent)
        self.manager = manager
        self.settings = settings or getattr(manager, "settings", None) or Settings.load()
        self.setWindowTitle("ovpaint")
        self.resize(1280, 800)
        self.setAcceptDrops(True)

        self.workers = WorkerPool(self)
        self.jobbar = JobBar()
        self.banner = MessageBanner()
        self.profile_banner = MessageBanner(object_name="profileBanner")
        self.context = EditorContext(
            manager, self.settings, self.workers, self.jobbar, self.banner, self
        )
        self.canvas = Canvas()
        self.tools = ToolController(self.context, self.canvas, self)
        self.layers = LayerPanel(self.context)
        self.prompt = PromptPanel(self.context)
        self.inpaint = InpaintPanel(self.context)
        self.files = FileController(self.context, self)

        central = QWidget()
        column = QVBoxLayout(central)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.profile_banner)
        column.addWidget(self.banner)
        column.addWidget(self.canvas, 1)
        self.setCentralWidget(central)
        self._dock("Segment", self.prompt, Qt.DockWidgetArea.RightDockWidgetArea)
        self._dock("Layers", self.layers, Qt.DockWidgetArea.RightDockWidgetArea)
        self._dock("Inpaint", self.inpaint, Qt.DockWidgetArea.RightDockWidgetArea)

        self.profile_label = QLabel(manager.banner())
        self.profile_label.setObjectName("profileLabel")
        self.op_label = QLabel("")
        self.op_label.setObjectName("lastOperationLabel")
        self.zoom_label = QLabel("")
        self.statusBar().addPermanentWidget(self.jobbar)
        self.statusBar().addPermanentWidget(self.zoom_label)
        self.statusBar().addPermanentWidget(self.op_label)
        self.statusBar().addPermanentWidget(self.profile_label)
        self.statusBar().showMessage("Open an image to begin (Ctrl+O, or drop a file here).")
        self._show_profile_banner()

        self._doc: Document | None = None
        self._batch_dialog = None
        self._build_menus()
        self.context.document_changed.connect(self._document_changed)
        self.context.operation_finished.connect(self._operation_finished)
        self.context.undo_stack.cleanChanged.connect(self._update_title)
        self.canvas.zoom_changed.connect(lambda z: self.zoom_label.setText(f"{z:.0%}"))
        self.files.recent_changed.connect(self._fill_recent)
        self.files.project_path_changed.connect(self._update_title)
        self._fill_recent(self.files.recent())

    # ------------------------------------------------------------------ construction
    def _dock(self, title: str, widget: QWidget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"{title.lower()}Dock")
        dock.setWidget(widget)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
        self.addDockWidget(area, dock)
        return dock

    def _show_profile_banner(self) -> None:
        notes = []
        if self.manager.is_tiny:
            notes.append("Tiny test models: random weights, results are meaningless.")
        if self.manager.device.type == "cpu":
            notes.append(
                "Running on the CPU: segmentation and removal with LaMa take seconds, "
                "Stable Diffusion inpainting minutes."
                + (
                    f" ({self.manager.choice.note})"
                    if getattr(self.manager.choice, "note", "")
                    else ""
                )
            )
        if notes:
            self.profile_banner.show_message(" ".join(notes), "warning")

    def _action(
        self, menu, text: str, slot, shortcut=None, name: str | None = None, tip: str = ""
    ) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if name:
            action.setObjectName(name)
        if tip:
            action.setStatusTip(tip)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        f = bar.addMenu("&File")
        self._action(f, "&Open…", self.files.ask_open, QKeySequence.StandardKey.Open, "openAction")
        self.recent_menu = f.addMenu("Open &Recent")
        f.addSeparator()
        self._action(
            f,
            "&Save Project",
            lambda: self.files.ask_save_project(),
            QKeySequence.StandardKey.Save,
            "saveAction",
        )
        self._action(
            f,
            "Save Project &As…",
            lambda: self.files.ask_save_project(True),
            QKeySequence.StandardKey.SaveAs,
        )
        f.addSeparator()
        self._action(
            f, "&Export Edited Image…", self.files.ask_export_image, "Ctrl+E", "exportAction"
        )
        self._action(
            f,
            "Export Masks (one PNG per layer)…",
            lambda: self.files.ask_export_masks("layers"),
            "Ctrl+Shift+E",
        )
        self._action(f, "Export Masks (label map)…", lambda: self.files.ask_export_masks("labels"))
        f.addSeparator()
        self._action(
            f, "Batch && Benchmark…", self.open_batch_dialog, "Ctrl+Shift+B", "batchAction"
        )
        f.addSeparator()
        self._action(f, "&Quit", self.close, QKeySequence.StandardKey.Quit)

        e = bar.addMenu("&Edit")
        undo = self.context.undo_stack.createUndoAction(self, "&Undo")
        undo.setShortcut(QKeySequence.StandardKey.Undo)
        undo.setObjectName("undoAction")
        redo = self.context.undo_stack.createRedoAction(self, "&Redo")
        redo.setShortcuts([QKeySequence.StandardKey.Redo, QKeySequence("Ctrl+Y")])
        redo.setObjectName("redoAction")
        e.addAction(undo)
        e.addAction(redo)
        self.undo_action, self.redo_action = undo, redo
        e.addSeparator()
        self._action(e, "Cancel Running Job", self.jobbar.cancel, "Esc", "cancelAction")

        v = bar.addMenu("&View")
        self._action(
            v, "Zoom &In", lambda: self.canvas.zoom_by(1.25), QKeySequence.StandardKey.ZoomIn
        )
        self._action(
            v, "Zoom &Out", lambda: self.canvas.zoom_by(0.8), QKeySequence.StandardKey.ZoomOut
        )
        self._action(v, "&Fit to Window", self.canvas.fit, "Ctrl+0", "fitAction")
        self._action(
            v, "&Actual Size (100 %)", self.canvas.actual_size, "Ctrl+1", "actualSizeAction"
        )

        layer = bar.addMenu("&Layer")
        self._action(layer, "New Mask", self.layers.new_mask, "Ctrl+Shift+N")
        self._action(layer, "Duplicate", self.layers.duplicate, "Ctrl+J")
        self._action(layer, "Delete", self.layers.delete, "Del")
        self._action(layer, "Move Up", self.layers.move_up, "Ctrl+]")
        self._action(layer, "Move Down", self.layers.move_down, "Ctrl+[")

        m = bar.addMenu("&Mask")
        self.tool_group = QActionGroup(self)
        toolbar = QToolBar("Tools", self)
        toolbar.setObjectName("toolBar")
        self.addToolBar(Qt.ToolBarArea.LeftToolBarArea, toolbar)
        self.tool_actions: dict[str, QAction] = {}
        for tool in TOOLS:
            action = self._action(
                m,
                TOOL_TITLES[tool],
                partial(self.tools.set_tool, tool),
                TOOL_KEYS[tool],
                f"tool_{tool}",
            )
            action.setCheckable(True)
            action.setChecked(tool == self.tools.tool)
            self.tool_group.addAction(action)
            toolbar.addAction(action)
            self.tool_actions[tool] = action
        self.brush_size = QSpinBox()
        self.brush_size.setObjectName("brushSize")
        self.brush_size.setRange(1, 500)
        self.brush_size.setValue(self.tools.brush_radius)
        self.brush_size.setSuffix(" px")
        self.brush_size.setToolTip("Brush radius ([ and ] change it)")
        self.brush_size.valueChanged.connect(self.tools.set_brush_radius)
        self.tools.brush_size_changed.connect(self.brush_size.setValue)
        toolbar.addWidget(self.brush_size)
        self._action(
            m,
            "Smaller Brush",
            lambda: self.tools.set_brush_radius(self.tools.brush_radius * 0.8),
            "[",
        )
        self._action(
            m,
            "Larger Brush",
            lambda: self.tools.set_brush_radius(self.tools.brush_radius * 1.25 + 1),
            "]",
        )
        m.addSeparator()
        self._action(m, "Grow", lambda: self.tools.apply_op("grow", 5), "Ctrl+Shift+=")
        self._action(m, "Shrink", lambda: self.tools.apply_op("shrink", 5), "Ctrl+Shift+-")
        self._action(m, "Feather", lambda: self.tools.apply_op("feather", 8), "Ctrl+Shift+F")
        self._action(m, "Invert", lambda: self.tools.apply_op("invert"), "Ctrl+I")
        self._action(m, "Clear", lambda: self.tools.apply_op("clear"), "Ctrl+Shift+Backspace")
        self._action(m, "Reset Click Prompts", self.tools.reset_prompts, "Ctrl+Shift+R")

        mm = bar.addMenu("M&odels")
        self._action(mm, "&Models and Device…", self.open_model_dialog, "Ctrl+M", "modelsAction")

        s = bar.addMenu("&Segment")
        self._action(s, "Type Classes", lambda: self.prompt.prompt.setFocus(), "Ctrl+L")
        self.segment_action = self._action(
            s, "Run Segmentation", self.prompt.segment, "Ctrl+Return"
        )
        self._action(s, "Inpaint Selected Mask", self.inpaint.run, "Ctrl+Shift+Return")

    # ------------------------------------------------------------------ behaviour
    def open_model_dialog(self) -> None:
        from ovpaint.app.model_dialog import ModelDialog

        ModelDialog(self.manager, self.settings, self.workers, self).exec()

    def open_batch_dialog(self) -> None:
        from ovpaint.app.batch_dialog import BatchDialog

        # modeless: the editor stays usable while a folder is processed
        if self._batch_dialog is None:
            self._batch_dialog = BatchDialog(self.manager, self, workers=self.workers)
        self._batch_dialog.show()
        self._batch_dialog.raise_()

    def open_path(self, path: str) -> None:
        self.files.open(path)

    def _fill_recent(self, paths: list[str]) -> None:
        self.recent_menu.clear()
        for path in paths:
            self.recent_menu.addAction(Path(path).name, partial(self.files.open, path))
        self.recent_menu.setEnabled(bool(paths))

    def _document_changed(self, doc: Document | None) -> None:
        if self._doc is not None:
            self._doc.modified.disconnect(self._update_title)
        self._doc = doc
        self.canvas.set_document(doc)
        self.banner.hide()
        if doc is not None:
            self.statusBar().showMessage(f"{doc.width}×{doc.height}")
            doc.modified.connect(self._update_title)
        self._update_title()

    def _update_title(self, *args) -> None:
        doc = self.context.document
        if doc is None:
            self.setWindowTitle("ovpaint")
            return
        name = (
            self.files.project_path.name
            if self.files.project_path
            else Path(doc.path).name
            if doc.path
            else "untitled"
        )
        self.setWindowTitle(f"{name}{' *' if doc.dirty else ''} — ovpaint")

    def _operation_finished(self, title: str, seconds: float) -> None:
        self.op_label.setText(f"{title}: {seconds:.2f} s")

    # drag and drop
    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        urls = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            self.files.open(urls[0])
            event.acceptProposedAction()

    def closeEvent(self, event) -> None:  # noqa: N802
        if not self.files.confirm_discard():
            event.ignore()
            return
        self.workers.cancel_all()
        self.workers.wait_for_done(10_000)
        self.files.shutdown_clean()
        self.settings.save()
        event.accept()
