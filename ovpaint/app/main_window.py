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
    QFrame,
    QLabel,
    QMainWindow,
    QScrollArea,
    QSpinBox,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from ovpaint.app.canvas import Canvas
from ovpaint.app.context import EditorContext, JobBar
from ovpaint.app.files import FileController
from ovpaint.app.icons import icon
from ovpaint.app.inpaint_panel import InpaintPanel
from ovpaint.app.layer_panel import LayerPanel
from ovpaint.app.mask_panel import MaskPanel
from ovpaint.app.notify import NotificationArea
from ovpaint.app.prompt_panel import PromptPanel
from ovpaint.app.tools import TOOL_KEYS, TOOL_LEGEND, TOOL_TITLES, TOOLS, ToolController
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
        self.banner = NotificationArea(status_bar=self.statusBar())
        self.context = EditorContext(
            manager, self.settings, self.workers, self.jobbar, self.banner, self
        )
        self.canvas = Canvas()
        self.tools = ToolController(self.context, self.canvas, self)
        self.layers = LayerPanel(self.context)
        self.prompt = PromptPanel(self.context)
        self.mask_panel = MaskPanel(self.context, self.canvas)
        self.inpaint = InpaintPanel(self.context)
        self.files = FileController(self.context, self)

        central = QWidget()
        column = QVBoxLayout(central)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.banner)
        column.addWidget(self.canvas, 1)
        self.setCentralWidget(central)
        self._dock("Segment", self.prompt, Qt.DockWidgetArea.RightDockWidgetArea)
        self._dock("Layers", self.layers, Qt.DockWidgetArea.RightDockWidgetArea)
        self.mask_dock = self._dock("Mask", self.mask_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        self.inpaint_dock = self._dock(
            "Inpaint", self.inpaint, Qt.DockWidgetArea.RightDockWidgetArea
        )
        # the two tools for a selected mask share one place (tabs), so a 800 px tall window
        # still shows the layer list whole
        self.tabifyDockWidget(self.mask_dock, self.inpaint_dock)
        self.mask_dock.raise_()

        self.profile_label = QLabel()
        self.profile_label.setObjectName("profileLabel")
        self.show_compute(manager.compute_summary(stored=False))
        self.op_label = QLabel("")
        self.op_label.setObjectName("lastOperationLabel")
        self.zoom_label = QLabel("")
        self.legend = QLabel(self.tools.legend())
        self.legend.setObjectName("toolLegend")
        self.tools.legend_changed.connect(self.legend.setText)
        self.statusBar().addWidget(self.legend, 1)
        self.statusBar().addPermanentWidget(self.jobbar)
        self.statusBar().addPermanentWidget(self.zoom_label)
        self.statusBar().addPermanentWidget(self.op_label)
        self.statusBar().addPermanentWidget(self.profile_label)
        self.statusBar().showMessage("Open an image to begin (Ctrl+O, or drop a file here).")
        if self.profile_note():
            self.banner.show_message(self.profile_note(), "warning", topic="profile")

        self._doc: Document | None = None
        self._batch_dialog = None
        self._model_dialog = None
        self._build_menus()
        self.context.get_models = self.open_model_dialog
        self.context.job_preview.connect(self.canvas.show_job_preview)
        self.context.document_changed.connect(self._document_changed)
        self.context.operation_finished.connect(self._operation_finished)
        # while a job runs its bar takes the place of the last job's time
        self.context.busy_changed.connect(lambda busy: self.op_label.setVisible(not busy))
        self.context.undo_stack.cleanChanged.connect(self._update_title)
        self.canvas.zoom_changed.connect(self._show_zoom)
        # a passing message takes the legend's place instead of being drawn over it
        self.statusBar().messageChanged.connect(lambda text: self.legend.setVisible(not text))
        self.files.recent_changed.connect(self._fill_recent)
        self.files.project_path_changed.connect(self._update_title)
        self._fill_recent(self.files.recent())
        self._read_compute()

    # ------------------------------------------------------------------ construction
    def _dock(self, title: str, widget: QWidget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"{title.lower()}Dock")
        # a panel taller than the space left scrolls, instead of making the window taller
        # than a 1200×800 screen
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(widget)
        dock.setWidget(scroll)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
        self.addDockWidget(area, dock)
        return dock

    def profile_note(self) -> str:
        """What a user must know about the models and device (also the status label's tip)."""
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
        return " ".join(notes)

    def show_compute(self, summary) -> None:
        """The status bar's device and each workload's precision (a ``ComputeSummary``)."""
        self._compute = summary
        self.profile_label.setText(summary.short_text())
        self.profile_label.setToolTip(
            "\n".join(filter(None, (self.profile_note(), summary.text())))
        )

    def _read_compute(self) -> None:
        """The precisions stored for this machine, read on the worker pool (a file read): until
        they arrive, and until a workload runs, the status bar names none."""
        if self.manager.requested_dtype != "auto":
            return  # the setting decides every workload: nothing to read
        manager = self.manager
        self.workers.submit(
            lambda progress, cancel: manager.compute_summary(),
            name="Read precision",
            on_done=self.show_compute,
        )

    def _action(
        self,
        menu,
        text: str,
        slot,
        shortcut=None,
        name: str | None = None,
        tip: str = "",
        icon_name: str = "",
    ) -> QAction:
        action = QAction(text, self)
        if icon_name:
            action.setIcon(icon(icon_name))
        plain = text.replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip("…")
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
            action.setToolTip(f"{tip or plain} ({keys})" if keys else tip or plain)
        elif tip:
            action.setToolTip(tip)
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
        top = QToolBar("File and history", self)
        top.setObjectName("mainToolBar")
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, top)
        self.main_toolbar = top
        top.addAction(
            self._action(
                f,
                "&Open…",
                self.files.ask_open,
                QKeySequence.StandardKey.Open,
                "openAction",
                icon_name="open",
            )
        )
        self.recent_menu = f.addMenu("Open &Recent")
        f.addSeparator()
        self._action(
            f,
            "&Save Project",
            lambda: self.files.ask_save_project(),
            QKeySequence.StandardKey.Save,
            "saveAction",
            icon_name="save",
        )
        top.addAction(self.findChild(QAction, "saveAction"))
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
        undo.setIcon(icon("undo"))
        redo.setIcon(icon("redo"))
        top.addSeparator()
        top.addAction(undo)
        top.addAction(redo)
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
                icon_name=tool,
            )
            action.setToolTip(
                f"<b>{TOOL_TITLES[tool]}</b> ({TOOL_KEYS[tool]})<br>{TOOL_LEGEND[tool]}"
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
        panel = self.mask_panel
        self._action(
            m,
            "Grow / Shrink…",
            lambda: panel.focus_slider("grow"),
            "Ctrl+Shift+=",
            icon_name="grow",
        )
        self._action(
            m,
            "Feather…",
            lambda: panel.focus_slider("feather"),
            "Ctrl+Shift+F",
            icon_name="feather",
        )
        self._action(m, "Invert", lambda: panel.one_shot("invert"), "Ctrl+I", icon_name="invert")
        self._action(
            m, "Clear", lambda: panel.one_shot("clear"), "Ctrl+Shift+Backspace", icon_name="clear"
        )
        self._action(m, "Reset Click Prompts", self.tools.reset_prompts, "Ctrl+Shift+R")

        mm = bar.addMenu("M&odels")
        top.addSeparator()
        top.addAction(
            self._action(
                mm,
                "Get &Models…",
                self.open_model_dialog,
                "Ctrl+M",
                "modelsAction",
                icon_name="models",
            )
        )

        s = bar.addMenu("&Segment")
        self._action(s, "Type Classes", lambda: self.prompt.prompt.setFocus(), "Ctrl+L")
        self.segment_action = self._action(
            s, "Run Segmentation", self.prompt.segment, "Ctrl+Return", icon_name="segment"
        )
        self._action(
            s, "Inpaint Selected Mask", self.inpaint.run, "Ctrl+Shift+Return", icon_name="inpaint"
        )

        h = bar.addMenu("&Help")
        self._action(h, "Open &Log Folder", self.open_log_folder, name="logFolderAction")

    # ------------------------------------------------------------------ behaviour
    def open_model_dialog(self):
        """The model assistant, not blocking the window (a download can run meanwhile)."""
        from ovpaint.app.model_dialog import ModelDialog

        if self._model_dialog is None or not self._model_dialog.isVisible():
            self._model_dialog = ModelDialog(self.manager, self.settings, self.workers, self)
            self._model_dialog.compute_changed.connect(self.show_compute)
            self._model_dialog.setModal(False)
        self._model_dialog.show()
        self._model_dialog.raise_()
        return self._model_dialog

    def offer_models(self):
        """At start: the assistant when a model is missing (unless the user turned it off)."""
        from ovpaint.app.model_dialog import missing_models

        if not self.settings["models_assistant_at_start"] or not missing_models(self.manager):
            return None
        return self.open_model_dialog()

    def open_log_folder(self) -> None:
        from ovpaint.app.crash import open_folder
        from ovpaint.core.logs import log_dir, log_path

        path = log_path()
        open_folder(path.parent if path is not None else log_dir())

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
        for i, path in enumerate(paths, start=1):
            prefix = f"&{i} " if i < 10 else ""
            action = self.recent_menu.addAction(
                prefix + Path(path).name.replace("&", "&&"), partial(self.files.open, path)
            )
            action.setToolTip(path)
            action.setStatusTip(path)
        if paths:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear Recent Files", self.files.clear_recent)
        self.recent_menu.setEnabled(bool(paths))

    def _document_changed(self, doc: Document | None) -> None:
        if self._doc is not None:
            self._doc.modified.disconnect(self._update_title)
        self._doc = doc
        self.canvas.set_document(doc)
        self.banner.clear(("info", "success", "warning"))
        if doc is not None:
            self.statusBar().clearMessage()
            self._show_zoom(self.canvas.zoom)
            doc.modified.connect(self._update_title)
        self._update_title()

    def _show_zoom(self, zoom: float) -> None:
        doc = self.context.document
        size = f"{doc.width}×{doc.height} · " if doc is not None else ""
        self.zoom_label.setText(f"{size}{zoom:.0%}")

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
        # the precisions the operation ran in (held by the manager: no file is read)
        self.show_compute(
            self._compute.with_precisions(self.manager.known_precisions(stored=False))
        )

    # drag and drop
    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            self.files.open_dropped(paths)
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
