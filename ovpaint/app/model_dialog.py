"""The model assistant: what each model is for, its size and licence, whether it is here;
download with progress, cancel and resume, or point at files already on disk; device,
precision and GPU memory budget, and the precision measured fastest on this machine for each
workload (measured again on request). Opened at the first start while a model is missing, from
Models → Get Models…, and from any "model missing" message. Downloads, measurements and the
read of the stored measurement run on the worker pool.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from ovpaint.app.workers import JobHandle, WorkerPool, error_message
from ovpaint.core.options import DEVICES, DTYPES
from ovpaint.core.settings import Settings

APPLY_NOTE = "Device and precision changes apply at the next start."
PRECISION_COLUMNS = ("Workload", "Runs in", "Speed vs fp32 (measured here)")
COLUMNS = ("Used for", "Model", "Size", "Licence", "State", "Device", "Precision", "Memory")
STATE_TEXT = {
    "missing": "not installed",
    "installed": "installed",
    "loaded": "loaded",
    "tiny": "test model",
}


def _purpose(role: str) -> str:
    """What the role's model family is for, from its record."""
    from ovpaint.models.registry import FAMILIES

    family = FAMILIES.get(role)
    if family is None:
        return role
    return family.purpose or family.title


def _size(n: int | None) -> str:
    if not n:
        return ""
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


class ModelDialog(QDialog):
    compute_changed = Signal(object)  # a ComputeSummary read after a measurement or change

    def __init__(self, manager, settings: Settings, workers: WorkerPool, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.setObjectName("modelDialog")
        self.resize(980, 640)
        self.manager, self.settings, self.workers = manager, settings, workers
        self.job: JobHandle | None = None
        self.precision_read: JobHandle | None = None  # the stored measurement being read
        self._precision_request = 0
        self._queue: list = []
        self.intro = QLabel()
        self.intro.setObjectName("modelIntro")
        self.intro.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("modelTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.download_button = QPushButton("Download")
        self.download_button.setObjectName("downloadButton")
        self.download_button.setToolTip("Download the selected model (a stopped download resumes)")
        self.all_button = QPushButton("Download All Missing")
        self.all_button.setObjectName("downloadAllButton")
        self.file_button = QPushButton("Use Files on Disk…")
        self.file_button.setObjectName("useFileButton")
        self.file_button.setToolTip("Use a weights file you already have (.safetensors)")
        self.folder_button = QPushButton("Use Folder…")
        self.folder_button.setToolTip("Use a model folder you already have (diffusers layout)")
        self.cancel_button = QPushButton("Cancel Download")
        self.cancel_button.setObjectName("downloadCancelButton")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setObjectName("downloadProgress")
        self.status = QLabel()
        self.status.setObjectName("modelStatus")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.download_button.clicked.connect(self.download_selected)
        self.all_button.clicked.connect(self.download_missing)
        self.file_button.clicked.connect(lambda: self.choose_local(folder=False))
        self.folder_button.clicked.connect(lambda: self.choose_local(folder=True))
        self.cancel_button.clicked.connect(self.cancel_download)
        buttons = QHBoxLayout()
        for b in (
            self.download_button,
            self.all_button,
            self.file_button,
            self.folder_button,
            self.cancel_button,
        ):
            buttons.addWidget(b)
        buttons.addWidget(self.progress, 1)

        self.device = QComboBox()
        self.device.addItems(DEVICES)
        self.device.setCurrentText(settings["device"])
        self.dtype = QComboBox()
        self.dtype.addItems(DTYPES)
        self.dtype.setCurrentText(settings["dtype"])
        self.budget = QDoubleSpinBox()
        self.budget.setRange(0, 512)
        self.budget.setSuffix(" GB")
        self.budget.setSpecialValueText("automatic")
        self.budget.setValue(float(settings["gpu_memory_budget_gb"]))
        self.precision_table = QTableWidget(0, len(PRECISION_COLUMNS))
        self.precision_table.setObjectName("precisionTable")
        self.precision_table.setHorizontalHeaderLabels(PRECISION_COLUMNS)
        self.precision_table.horizontalHeader().setSectionResizeMode(
            2, QHeaderView.ResizeMode.Stretch
        )
        self.precision_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.precision_table.verticalHeader().setVisible(False)
        self.precision_table.setMaximumHeight(150)
        self.measure_button = QPushButton("Measure Again")
        self.measure_button.setObjectName("measurePrecisionButton")
        self.measure_button.setToolTip(
            "Time each workload in each precision on this machine (a few seconds) and use the "
            "fastest; done once automatically."
        )
        self.measure_button.clicked.connect(self.measure_precision)
        self.int8 = QCheckBox("Also try int8 for CLIP's ViT blocks (experimental)")
        self.int8.setObjectName("int8Check")
        self.int8.setChecked(bool(settings["int8_vit"]))
        self.int8.toggled.connect(self._int8_toggled)
        self.precision_note = QLabel()
        self.precision_note.setObjectName("precisionNote")
        self.precision_note.setWordWrap(True)
        measure_row = QHBoxLayout()
        measure_row.addWidget(self.measure_button)
        measure_row.addWidget(self.int8)
        measure_row.addStretch(1)
        self.at_start = QCheckBox("Show this window at start while a model is missing")
        self.at_start.setObjectName("assistantAtStart")
        self.at_start.setChecked(bool(settings["models_assistant_at_start"]))
        form = QFormLayout()
        form.addRow("Device", self.device)
        form.addRow("Precision", self.dtype)
        form.addRow("GPU memory budget", self.budget)
        self.now_note = QLabel(f"Now: {manager.compute_summary(stored=False).text()}. {APPLY_NOTE}")
        self.now_note.setObjectName("computeNow")
        self.now_note.setWordWrap(True)
        form.addRow(self.now_note)
        form.addRow(self.at_start)
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        box.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.intro)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        layout.addLayout(form)
        layout.addWidget(self.precision_note)
        layout.addWidget(self.precision_table)
        layout.addLayout(measure_row)
        layout.addWidget(box)
        self.refresh()
        self.refresh_precision()
        if self.table.rowCount():
            self.table.selectRow(self._first_missing_row())

    # ------------------------------------------------------------------ table
    def refresh(self) -> None:
        states = self.manager.states()
        self.table.setRowCount(len(states))
        self._states = states
        tiny = self.manager.is_tiny
        missing = []
        for row, st in enumerate(states):
            spec = None if tiny else self.manager.spec(st.role)
            size = _size(spec.approx_bytes) if spec is not None else ""
            memory = _size(st.nbytes)
            values = (
                _purpose(st.role),
                st.title,
                size,
                spec.license if spec is not None else "",
                STATE_TEXT.get(st.state, st.state) + (" (in use)" if st.in_use else ""),
                st.device or "",
                st.dtype or "",
                memory,
            )
            for col, value in enumerate(values):
                item = QTableWidgetItem(value)
                item.setData(Qt.ItemDataRole.UserRole, st.role)
                if col == 1 and spec is not None:
                    item.setToolTip(
                        f"{spec.id} from {spec.repo}" + (f"\n{spec.notes}" * bool(spec.notes))
                    )
                self.table.setItem(row, col, item)
            if st.state == "missing" and spec is not None:
                missing.append(spec)
        self._missing = missing
        busy = self.job is not None
        for b in (self.download_button, self.file_button, self.folder_button):
            b.setEnabled(not tiny and not busy)
        self.all_button.setEnabled(not tiny and not busy and bool(missing))
        if tiny:
            self.intro.setText(
                "This is the test profile: its tiny models are built in memory with random "
                "weights, so there is nothing to download and results mean nothing. Start "
                "ovpaint normally to use the real models."
            )
        elif missing:
            total = sum(spec.approx_bytes for spec in missing)
            self.intro.setText(
                f"{len(missing)} model(s) are not installed yet ({_size(total)} in all). "
                "Download them here (a stopped download resumes where it stopped), or point "
                "at files you already have. Each row says what the model is for."
            )
        else:
            self.intro.setText("Every model ovpaint needs is installed.")

    def _first_missing_row(self) -> int:
        for row, st in enumerate(self._states):
            if st.state == "missing":
                return row
        return 0

    def refresh_precision(self) -> None:
        """Read this machine's stored measurement on the worker pool (a file read, kept off
        the UI thread; nothing is measured) and show it when it arrives. A newer read
        supersedes one still running, so the table never shows an older answer."""
        from ovpaint.models.precision_summary import stored_precision

        manager = self.manager

        def read(progress, cancel):
            return stored_precision(manager.calibrator, manager.device), manager.compute_summary()

        self._precision_request += 1
        request = self._precision_request
        self.precision_read = self.workers.submit(
            read,
            name="Read precision",
            on_done=lambda found: self._show_precision(request, *found),
            on_error=lambda exc: self._precision_failed(request, exc),
            on_cancelled=lambda: self._precision_failed(request, None),
        )

    def _show_precision(self, request: int, stored, summary) -> None:
        if request != self._precision_request:
            return
        self.precision_read = None
        self.precision_table.setRowCount(len(stored.rows))
        for index, row in enumerate(stored.rows):
            if row.choice is None:
                values = (row.title, "not measured yet", "measured on first use")
            else:
                values = (row.title, row.choice, row.speed_text() or "nothing else to time")
            for col, value in enumerate(values):
                item = QTableWidgetItem(value)
                item.setToolTip(f"{row.name}: {value}")
                self.precision_table.setItem(index, col, item)
        self.precision_table.resizeColumnToContents(0)
        where = ""
        if stored.measured_in_s is not None:
            where = f" on {stored.where()} (measured in {stored.measured_in_s:.1f} s)"
        override = self.manager.requested_dtype
        note = f"Precision chosen per workload by measuring{where}."
        if override != "auto":
            note += f" The precision setting '{override}' overrides it."
        self.precision_note.setText(note)
        self.now_note.setText(f"Now: {summary.text()}. {APPLY_NOTE}")
        self.compute_changed.emit(summary)

    def _precision_failed(self, request: int, exc: BaseException | None) -> None:
        if request != self._precision_request:
            return
        self.precision_read = None
        if exc is not None:
            self.precision_note.setText(f"The stored measurement: {error_message(exc)}")

    def _int8_toggled(self, checked: bool) -> None:
        self.settings["int8_vit"] = checked
        self.manager.calibrator.allow_int8 = checked
        self.refresh_precision()

    def measure_precision(self) -> None:
        if self.job is not None:
            return

        def measure(progress, cancel):
            return self.manager.calibrator.calibrate(
                self.manager.device, force=True, progress=progress, cancel=cancel
            )

        self.measure_button.setEnabled(False)
        self.progress.setRange(0, 0)
        self.cancel_button.setEnabled(True)
        self.status.setText("Measuring each workload's precisions…")
        self.job = self.workers.submit(
            measure,
            name="Measure precision",
            on_progress=self._on_progress,
            on_done=self._on_measured,
            on_error=self._on_error,
            on_cancelled=lambda: self._finish("Measurement cancelled; the last one is kept."),
        )
        self.refresh()

    def _on_measured(self, calibration) -> None:
        self._finish(f"Measured in {calibration.seconds:.1f} s.")

    def _selected_spec(self):
        row = self.table.currentRow()
        if row < 0 or self.manager.is_tiny:
            return None
        return self.manager.spec(self._states[row].role)

    # ------------------------------------------------------------------ downloads
    def download_selected(self) -> None:
        spec = self._selected_spec()
        if spec is not None and self.job is None:
            self._queue = [spec]
            self._next_download()

    def download_missing(self) -> None:
        if self.job is None and self._missing:
            self._queue = list(self._missing)
            self._next_download()

    def _next_download(self) -> None:
        if not self._queue:
            return
        spec = self._queue.pop(0)
        from ovpaint.models.download import download

        self.progress.setRange(0, 0)
        self.cancel_button.setEnabled(True)
        self.status.setText(f"Downloading {spec.title} ({_size(spec.approx_bytes)})…")
        self.job = self.workers.submit(
            download,
            spec,
            self.manager.store,
            name=f"Download {spec.id}",
            on_progress=self._on_progress,
            on_done=self._on_done,
            on_error=self._on_error,
            on_cancelled=self._on_cancelled,
        )
        self.refresh()

    def _on_progress(self, event) -> None:
        if event.fraction is not None:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(event.fraction * 1000))
            self.progress.setFormat(f"{event.fraction:.0%}")
        if event.message:
            self.status.setText(event.message)

    def _finish(self, text: str) -> None:
        self.job = None
        self.cancel_button.setEnabled(False)
        self.measure_button.setEnabled(True)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("")
        self.status.setText(text)
        self.refresh()
        self.refresh_precision()

    def _on_done(self, result) -> None:
        self._finish(f"Installed {result.model_id} at {result.path}.")
        self._next_download()

    def _on_error(self, exc) -> None:
        self._queue = []
        self._finish(error_message(exc))

    def _on_cancelled(self) -> None:
        self._queue = []
        self._finish(
            "Download stopped. What was already fetched is kept: press Download to resume."
        )

    def cancel_download(self) -> None:
        if self.job is not None:
            self._queue = []
            self.job.cancel()

    # ------------------------------------------------------------------ local copies
    def choose_local(self, folder: bool) -> None:
        spec = self._selected_spec()
        if spec is None:
            return
        if folder:
            path = QFileDialog.getExistingDirectory(self, f"Folder with {spec.title}")
        else:
            path, _ = QFileDialog.getOpenFileName(
                self, f"Weights of {spec.title}", "", "Weights (*.safetensors *.pt)"
            )
        if path:
            self.use_local(spec, path)

    def use_local(self, spec, path: str) -> bool:
        try:
            chosen = self.manager.use_local_weights(spec, path, self.settings)
        except Exception as exc:  # noqa: BLE001 - shown, never raised into the event loop
            self.status.setText(error_message(exc))
            return False
        self.status.setText(f"{spec.title} will load from {chosen}.")
        self.refresh()
        return True

    def done(self, result: int) -> None:  # noqa: D401 - Qt API: save settings on close
        if self.job is not None:
            self._queue = []
            self.job.cancel()
        if self.precision_read is not None:
            self.precision_read.cancel()
        self.settings["device"] = self.device.currentText()
        self.settings["dtype"] = self.dtype.currentText()
        self.settings["gpu_memory_budget_gb"] = self.budget.value()
        self.settings["int8_vit"] = self.int8.isChecked()
        self.settings["models_assistant_at_start"] = self.at_start.isChecked()
        self.settings.save()
        super().done(result)


def missing_models(manager) -> list:
    """The specs of the models the current settings need that are not installed."""
    if manager.is_tiny:
        return []
    return [manager.spec(st.role) for st in manager.states() if st.state == "missing"]
