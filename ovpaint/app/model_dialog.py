"""Models and device: each model's state, download with progress and cancel, local copies,
device / precision / GPU memory budget, and the precision measured fastest on this machine for
each workload (measured again on request). Downloads and measurements run on the worker
pool."""

from __future__ import annotations

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

COLUMNS = ("Role", "Model", "State", "Device", "Precision", "Memory")
PRECISION_COLUMNS = ("Workload", "Runs in", "Speed vs fp32 (measured here)")


def _size(n: int | None) -> str:
    if not n:
        return ""
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


class ModelDialog(QDialog):
    def __init__(self, manager, settings: Settings, workers: WorkerPool, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Models and device")
        self.setObjectName("modelDialog")
        self.resize(820, 580)
        self.manager, self.settings, self.workers = manager, settings, workers
        self.job: JobHandle | None = None
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("modelTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.download_button = QPushButton("Download")
        self.download_button.setObjectName("downloadButton")
        self.file_button = QPushButton("Use Local File…")
        self.folder_button = QPushButton("Use Local Folder…")
        self.cancel_button = QPushButton("Cancel Download")
        self.cancel_button.setObjectName("downloadCancelButton")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setObjectName("downloadProgress")
        self.status = QLabel()
        self.status.setObjectName("modelStatus")
        self.status.setWordWrap(True)
        self.download_button.clicked.connect(self.download_selected)
        self.file_button.clicked.connect(lambda: self.choose_local(folder=False))
        self.folder_button.clicked.connect(lambda: self.choose_local(folder=True))
        self.cancel_button.clicked.connect(self.cancel_download)
        buttons = QHBoxLayout()
        for b in (self.download_button, self.file_button, self.folder_button, self.cancel_button):
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
        form = QFormLayout()
        form.addRow("Device", self.device)
        form.addRow("Precision", self.dtype)
        form.addRow("GPU memory budget", self.budget)
        note = QLabel(
            f"Now: {manager.banner()}. Device and precision changes apply at the next start."
        )
        note.setWordWrap(True)
        form.addRow(note)
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        box.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
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
            self.table.selectRow(0)

    def refresh(self) -> None:
        states = self.manager.states()
        self.table.setRowCount(len(states))
        self._states = states
        for row, st in enumerate(states):
            memory = _size(st.nbytes)
            if not memory and not self.manager.is_tiny:
                spec = self.manager.spec(st.role)
                memory = f"~{_size(spec.approx_bytes)} on disk" if spec is not None else ""
            values = (
                st.role,
                st.title,
                st.state + (" (in use)" if st.in_use else ""),
                st.device or "",
                st.dtype or "",
                memory,
            )
            for col, value in enumerate(values):
                self.table.setItem(row, col, QTableWidgetItem(value))
        tiny = self.manager.is_tiny
        for b in (self.download_button, self.file_button, self.folder_button):
            b.setEnabled(not tiny and self.job is None)
        if tiny:
            self.status.setText(
                "The tiny test profile builds its models in memory; nothing to "
                "download. Start without --models tiny to use real weights."
            )

    def refresh_precision(self) -> None:
        """The stored measurement of this machine (nothing is measured here)."""
        from ovpaint.models.calibration import workloads

        calibrator = self.manager.calibrator
        calibration = calibrator.stored(self.manager.device)
        rows = sorted(workloads().items())
        self.precision_table.setRowCount(len(rows))
        for row, (name, workload) in enumerate(rows):
            result = calibrator.valid_result(calibration, workload, self.manager.device)
            if result is None:
                values = (workload.title, "not measured yet", "measured on first use")
            else:
                ratios = ", ".join(f"{p} {r:.2f}×" for p, r in result.ratios().items())
                values = (workload.title, result.choice, ratios or "nothing else to time")
            for col, value in enumerate(values):
                item = QTableWidgetItem(value)
                item.setToolTip(f"{name}: {value}")
                self.precision_table.setItem(row, col, item)
        self.precision_table.resizeColumnToContents(0)
        signature = calibration.signature if calibration else None
        where = ""
        if signature:
            where = signature.get("gpu") or (f"{signature['cpu']}, {signature['threads']} threads")
            where = f" on {where} (measured in {calibration.seconds:.1f} s)"
        override = self.manager.requested_dtype
        note = f"Precision chosen per workload by measuring{where}."
        if override != "auto":
            note += f" The precision setting '{override}' overrides it."
        self.precision_note.setText(note)

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

    def download_selected(self) -> None:
        spec = self._selected_spec()
        if spec is None or self.job is not None:
            return
        from ovpaint.models.download import download

        self.progress.setRange(0, 0)
        self.cancel_button.setEnabled(True)
        self.status.setText(f"Downloading {spec.title}…")
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
        if event.message:
            self.status.setText(event.message)

    def _finish(self, text: str) -> None:
        self.job = None
        self.cancel_button.setEnabled(False)
        self.measure_button.setEnabled(True)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.refresh()
        self.refresh_precision()
        self.status.setText(text)

    def _on_done(self, result) -> None:
        self._finish(f"Installed {result.model_id} at {result.path}.")

    def _on_error(self, exc) -> None:
        self._finish(error_message(exc))

    def _on_cancelled(self) -> None:
        self._finish("Download cancelled; the part already fetched is kept for a resume.")

    def cancel_download(self) -> None:
        if self.job is not None:
            self.job.cancel()

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
            self.job.cancel()
        self.settings["device"] = self.device.currentText()
        self.settings["dtype"] = self.dtype.currentText()
        self.settings["gpu_memory_budget_gb"] = self.budget.value()
        self.settings["int8_vit"] = self.int8.isChecked()
        self.settings.save()
        super().done(result)
