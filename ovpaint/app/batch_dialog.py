"""The Batch & Benchmark dialog: process a whole folder by text, or score a public benchmark.

``BatchDialog(manager, parent)`` — open it non-modally (``dialog.show()``) from a menu action:
the work runs on the app's worker pool (the parent's ``workers`` when it has one), so the main
window stays usable while a folder or a benchmark runs. One dialog, two tabs:

- **Batch**: input and output folders, prompt, method, optional inpainting, overwrite; a live
  table of files (status, classes found, seconds) while it runs.
- **Benchmark**: dataset type, root folder, one or more methods, limit, report file; the
  running mIoU while it runs, and at the end the per-class table, the IoU bar chart and the
  confusion matrix. With several methods they run one after the other over the same images
  and the results come side by side: a comparison table and chart (mIoU, pixel accuracy,
  mean F1, boundary F1, seconds per image) and a per-class IoU column and heat map per method.

Both show progress with rate and ETA, can be cancelled (a cancelled run resumes next time),
and end with buttons that open the output folder and the report.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ovpaint.app.inpaint_panel import fill_engine_combo
from ovpaint.app.prompt_panel import fill_method_combo
from ovpaint.app.workers import JobHandle, WorkerPool, error_message
from ovpaint.core.jobs import ProgressEvent
from ovpaint.eval.datasets import DATASETS
from ovpaint.pipelines.inpainting.settings import CPU_STEPS as INPAINT_CPU_STEPS
from ovpaint.pipelines.inpainting.settings import GPU_STEPS as INPAINT_GPU_STEPS
from ovpaint.pipelines.inpainting.settings import MODES as INPAINT_MODES
from ovpaint.pipelines.segmentation.methods import DEFAULT_BENCHMARK_METHOD, METHODS, method_names

FILE_COLUMNS = ("File", "Status", "Classes found", "Seconds", "Error")
CLASS_COLUMNS = ("Class", "IoU %", "F1 %", "Boundary F1 %", "GT pixels")
COMPARISON_COLUMNS = ("Method", "mIoU %", "Pixel acc. %", "Mean F1 %", "Boundary F1 %", "s / image")


def _fmt_eta(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _pct(x) -> str:
    return "" if x is None else f"{x * 100:.2f}"


def _folder_row(edit: QLineEdit, parent: QWidget, title: str, file: bool = False) -> QWidget:
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(edit, 1)
    browse = QPushButton("Browse…")

    def pick() -> None:
        if file:
            path, _ = QFileDialog.getSaveFileName(parent, title, edit.text(), "JSON (*.json)")
        else:
            path = QFileDialog.getExistingDirectory(parent, title, edit.text())
        if path:
            edit.setText(path)

    browse.clicked.connect(pick)
    layout.addWidget(browse)
    return row


class FitImage(QLabel):
    """An image scaled to the label's size, aspect kept (a chart that fits its tab)."""

    def __init__(self) -> None:
        super().__init__()
        self._original = QPixmap()
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(200, 120)

    def set_image(self, pixmap: QPixmap) -> None:
        self._original = pixmap
        self._rescale()

    def image(self) -> QPixmap:
        return self._original

    def _rescale(self) -> None:
        if self._original.isNull():
            self.clear()
            return
        self.setPixmap(
            self._original.scaled(
                self.size(),
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        )

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._rescale()


def _benchmark_job(
    dataset: str,
    root: str,
    method: str,
    manager,
    *,
    limit,
    seed,
    out_path: str,
    segment_fn,
    progress=None,
    cancel=None,
):
    """Runner + report files, both off the UI thread (charts take a moment to render)."""
    from ovpaint.eval.report import write_report
    from ovpaint.eval.runner import run_benchmark

    result = run_benchmark(
        dataset,
        root,
        method,
        manager,
        limit=limit,
        seed=seed,
        out_path=out_path,
        progress=progress,
        cancel=cancel,
        segment_fn=segment_fn,
    )
    paths = write_report(result, out_path, manager=manager)
    return result, paths


def _comparison_job(
    dataset: str,
    root: str,
    methods: list[str],
    manager,
    *,
    limit,
    seed,
    out_path: str,
    segment_fn,
    progress=None,
    cancel=None,
):
    """Every method over the same images, then the reports, off the UI thread."""
    from ovpaint.eval.compare import run_comparison, write_comparison

    comparison = run_comparison(
        dataset,
        root,
        methods,
        manager,
        out_path=out_path,
        segment_fns=None if segment_fn is None else {m: segment_fn for m in methods},
        progress=progress,
        cancel=cancel,
        limit=limit,
        seed=seed,
    )
    paths = write_comparison(comparison, out_path, manager=manager)
    return comparison, paths


class BatchDialog(QDialog):
    """Batch folder processing and benchmark evaluation; see the module docstring.

    ``segment_fn`` replaces the product's segmentation (tests inject known segmenters); by
    default both tabs use ``ovpaint.pipelines.segmentation.segment.segment`` with ``manager``.
    """

    file_finished = Signal(object)  # FileRecord, emitted from the worker thread

    def __init__(
        self,
        manager,
        parent: QWidget | None = None,
        *,
        workers: WorkerPool | None = None,
        segment_fn=None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Batch & Benchmark")
        self.setObjectName("batchDialog")
        self.setModal(False)
        self.resize(900, 680)
        self.manager = manager
        self.segment_fn = segment_fn
        self.workers = workers or getattr(parent, "workers", None) or WorkerPool(self)
        self.job: JobHandle | None = None
        self.last_result = None  # BatchReport or (BenchmarkResult, paths)
        self.output_folder: Path | None = None
        self.report_file: Path | None = None

        self.tabs = QTabWidget()
        self.tabs.setObjectName("batchTabs")
        self.tabs.addTab(self._build_batch_tab(), "Batch")
        self.tabs.addTab(self._build_benchmark_tab(), "Benchmark")

        self.progress = QProgressBar()
        self.progress.setObjectName("batchProgress")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status = QLabel("Choose what to run, then press Start.")
        self.status.setObjectName("batchStatus")
        self.status.setWordWrap(True)
        self.start_button = QPushButton("Start")
        self.start_button.setObjectName("startButton")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("batchCancelButton")
        self.cancel_button.setEnabled(False)
        self.open_folder_button = QPushButton("Open Output Folder")
        self.open_folder_button.setObjectName("openFolderButton")
        self.open_report_button = QPushButton("Open Report")
        self.open_report_button.setObjectName("openReportButton")
        self.close_button = QPushButton("Close")
        for b in (self.open_folder_button, self.open_report_button):
            b.setEnabled(False)

        self.results = QTabWidget()
        self.results.setObjectName("resultTabs")
        self.table = QTableWidget(0, len(FILE_COLUMNS))
        self.table.setObjectName("liveTable")
        self._setup_table(self.table, FILE_COLUMNS)
        self.class_table = QTableWidget(0, len(CLASS_COLUMNS))
        self.class_table.setObjectName("classTable")
        self._setup_table(self.class_table, CLASS_COLUMNS)
        self.iou_chart = QLabel()
        self.iou_chart.setObjectName("iouChart")
        self.confusion_chart = QLabel()
        self.confusion_chart.setObjectName("confusionChart")
        self.comparison_table = QTableWidget(0, len(COMPARISON_COLUMNS))
        self.comparison_table.setObjectName("comparisonTable")
        self._setup_table(self.comparison_table, COMPARISON_COLUMNS)
        self.comparison_chart = FitImage()
        self.comparison_chart.setObjectName("comparisonChart")
        self.comparison_tab = QWidget()
        compare_layout = QVBoxLayout(self.comparison_tab)
        compare_layout.setContentsMargins(0, 0, 0, 0)
        compare_layout.addWidget(self.comparison_table)
        compare_layout.addWidget(self.comparison_chart, 1)
        self.results.addTab(self.table, "Files")
        self.results.addTab(self.comparison_tab, "Comparison")
        self.results.addTab(self.class_table, "Per class")
        self.results.addTab(self._scroll(self.iou_chart), "IoU chart")
        self.results.addTab(self._scroll(self.confusion_chart), "Confusion matrix")

        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        buttons.addWidget(self.open_folder_button)
        buttons.addWidget(self.open_report_button)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.results, 1)
        layout.addLayout(buttons)

        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button.clicked.connect(self.close)
        self.open_folder_button.clicked.connect(self.open_output_folder)
        self.open_report_button.clicked.connect(self.open_report)
        self.file_finished.connect(self._add_file_row)

    # ------------------------------------------------------------------ construction
    @staticmethod
    def _setup_table(table: QTableWidget, columns) -> None:
        table.setHorizontalHeaderLabels(columns)
        table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        table.verticalHeader().setVisible(False)

    @staticmethod
    def _scroll(widget: QWidget) -> QScrollArea:
        area = QScrollArea()
        area.setWidget(widget)
        area.setWidgetResizable(True)
        return area

    def _method_combo(self, name: str, default: str | None = None) -> QComboBox:
        combo = QComboBox()
        combo.setObjectName(name)
        fill_method_combo(combo, default)
        return combo

    def _build_batch_tab(self) -> QWidget:
        tab = QWidget()
        form = QFormLayout(tab)
        self.input_edit = QLineEdit()
        self.input_edit.setObjectName("inputFolder")
        self.output_edit = QLineEdit()
        self.output_edit.setObjectName("outputFolder")
        self.prompt_edit = QLineEdit()
        self.prompt_edit.setObjectName("batchPrompt")
        self.prompt_edit.setPlaceholderText("e.g. sky, dog, person | man")
        self.batch_method = self._method_combo("batchMethod")
        self.recursive_check = QCheckBox("Include sub-folders")
        self.recursive_check.setChecked(True)
        self.overwrite_check = QCheckBox("Redo files finished by an earlier run")
        self.overwrite_check.setObjectName("overwriteCheck")
        self.inpaint_group = QGroupBox("Inpaint what is found")
        self.inpaint_group.setObjectName("inpaintGroup")
        self.inpaint_group.setCheckable(True)
        self.inpaint_group.setChecked(False)
        inpaint_form = QFormLayout(self.inpaint_group)
        self.inpaint_prompt = QLineEdit()
        self.inpaint_prompt.setPlaceholderText("e.g. a sunset sky (empty for remove)")
        self.inpaint_mode = QComboBox()
        self.inpaint_mode.addItems(INPAINT_MODES)
        self.inpaint_engine = QComboBox()
        self.inpaint_engine.setObjectName("batchEngineCombo")
        fill_engine_combo(self.inpaint_engine, self.inpaint_mode.currentText())
        self.inpaint_mode.currentTextChanged.connect(
            lambda mode: fill_engine_combo(self.inpaint_engine, mode)
        )
        self.inpaint_steps = QSpinBox()
        self.inpaint_steps.setRange(1, 200)
        self.inpaint_steps.setValue(
            INPAINT_CPU_STEPS if self.manager.device.type == "cpu" else INPAINT_GPU_STEPS
        )
        inpaint_form.addRow("Prompt", self.inpaint_prompt)
        inpaint_form.addRow("Mode", self.inpaint_mode)
        inpaint_form.addRow("Engine", self.inpaint_engine)
        inpaint_form.addRow("Steps", self.inpaint_steps)
        form.addRow("Input folder", _folder_row(self.input_edit, self, "Input folder"))
        form.addRow("Output folder", _folder_row(self.output_edit, self, "Output folder"))
        form.addRow("Prompt", self.prompt_edit)
        form.addRow("Method", self.batch_method)
        form.addRow("", self.recursive_check)
        form.addRow("", self.overwrite_check)
        form.addRow(self.inpaint_group)
        return tab

    def _build_benchmark_tab(self) -> QWidget:
        tab = QWidget()
        form = QFormLayout(tab)
        self.dataset_combo = QComboBox()
        self.dataset_combo.setObjectName("datasetCombo")
        for spec in DATASETS.values():
            self.dataset_combo.addItem(spec.label, spec.key)
        self.root_edit = QLineEdit()
        self.root_edit.setObjectName("datasetRoot")
        self.bench_methods = QListWidget()
        self.bench_methods.setObjectName("benchmarkMethods")
        self.bench_methods.setToolTip(
            "Tick one method, or several to compare them on the same images"
        )
        for name in method_names():
            item = QListWidgetItem(name)
            item.setData(Qt.ItemDataRole.UserRole, name)
            item.setToolTip(f"{METHODS[name].title}: {METHODS[name].describe()}")
            item.setCheckState(Qt.CheckState.Unchecked)
            self.bench_methods.addItem(item)
        self.set_benchmark_methods([DEFAULT_BENCHMARK_METHOD])
        rows = min(self.bench_methods.count(), 6)
        self.bench_methods.setMaximumHeight(rows * self.bench_methods.sizeHintForRow(0) + 6)
        self.limit_spin = QSpinBox()
        self.limit_spin.setObjectName("limitSpin")
        self.limit_spin.setRange(0, 100_000)
        self.limit_spin.setSpecialValueText("all images")
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.report_edit = QLineEdit()
        self.report_edit.setObjectName("reportPath")
        self.report_edit.setPlaceholderText("report .json (default: beside the dataset)")
        form.addRow("Dataset", self.dataset_combo)
        form.addRow("Root folder", _folder_row(self.root_edit, self, "Dataset folder"))
        form.addRow("Methods", self.bench_methods)
        form.addRow("Limit", self.limit_spin)
        form.addRow("Seed", self.seed_spin)
        form.addRow("Report", _folder_row(self.report_edit, self, "Report file", file=True))
        return tab

    def benchmark_methods(self) -> list[str]:
        """The ticked methods, in list order."""
        items = (self.bench_methods.item(i) for i in range(self.bench_methods.count()))
        return [
            item.data(Qt.ItemDataRole.UserRole)
            for item in items
            if item.checkState() == Qt.CheckState.Checked
        ]

    def set_benchmark_methods(self, names) -> None:
        for i in range(self.bench_methods.count()):
            item = self.bench_methods.item(i)
            checked = item.data(Qt.ItemDataRole.UserRole) in set(names)
            item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)

    # ------------------------------------------------------------------ running
    @property
    def running(self) -> bool:
        return self.job is not None

    def start(self) -> None:
        if self.running:
            return
        if self.tabs.currentIndex() == 0:
            self.start_batch()
        else:
            self.start_benchmark()

    def _begin(self, handle: JobHandle, title: str) -> None:
        self.job = handle
        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.tabs.setEnabled(False)
        self.open_folder_button.setEnabled(False)
        self.open_report_button.setEnabled(False)
        self.progress.setRange(0, 0)
        self.status.setText(title + "…")

    def _end(self, text: str) -> None:
        self.job = None
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.tabs.setEnabled(True)
        self.status.setText(text)
        self.open_folder_button.setEnabled(bool(self.output_folder and self.output_folder.exists()))
        self.open_report_button.setEnabled(bool(self.report_file and self.report_file.exists()))

    def start_batch(self) -> None:
        from ovpaint.batch import InpaintOptions, run_batch

        inp, out = self.input_edit.text().strip(), self.output_edit.text().strip()
        if not inp or not out or not self.prompt_edit.text().strip():
            self.status.setText("Choose an input folder, an output folder and a prompt.")
            return
        inpaint = None
        if self.inpaint_group.isChecked():
            inpaint = InpaintOptions(
                self.inpaint_prompt.text().strip(),
                self.inpaint_mode.currentText(),
                {"steps": self.inpaint_steps.value(), "engine": self.inpaint_engine.currentData()},
            )
        self.table.setRowCount(0)
        self.results.setCurrentWidget(self.table)
        self.output_folder = Path(out)
        self.report_file = Path(out) / "batch_report.json"
        handle = self.workers.submit(
            run_batch,
            inp,
            out,
            self.prompt_edit.text(),
            self.batch_method.currentData(),
            self.manager,
            recursive=self.recursive_check.isChecked(),
            inpaint=inpaint,
            overwrite=self.overwrite_check.isChecked(),
            segment_fn=self.segment_fn,
            on_file=self.file_finished.emit,
            on_progress=self._on_progress,
            on_done=self._batch_done,
            on_error=self._on_error,
            on_cancelled=self._on_cancelled,
            name="batch",
        )
        self._begin(handle, "Processing folder")

    def start_benchmark(self) -> None:
        root = self.root_edit.text().strip()
        if not root:
            self.status.setText("Choose the dataset's root folder.")
            return
        dataset = self.dataset_combo.currentData()
        report = self.report_edit.text().strip() or str(
            Path(root).expanduser().resolve().parent / f"ovpaint-benchmark-{dataset}.json"
        )
        self.report_edit.setText(report)
        methods = self.benchmark_methods()
        if not methods:
            self.status.setText("Tick at least one method.")
            return
        self.report_file = Path(report)
        self.output_folder = Path(report).parent
        self.class_table.setRowCount(0)
        self.comparison_table.setRowCount(0)
        several = len(methods) > 1
        handle = self.workers.submit(
            _comparison_job if several else _benchmark_job,
            dataset,
            root,
            methods if several else methods[0],
            self.manager,
            limit=self.limit_spin.value() or None,
            seed=self.seed_spin.value(),
            out_path=report,
            segment_fn=self.segment_fn,
            on_progress=self._on_progress,
            on_done=self._comparison_done if several else self._benchmark_done,
            on_error=self._on_error,
            on_cancelled=self._on_cancelled,
            name="benchmark",
        )
        self._begin(handle, f"Comparing {len(methods)} methods" if several else "Running benchmark")

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.cancel_button.setEnabled(False)
            self.status.setText("Cancelling after the current image…")

    # ------------------------------------------------------------------ callbacks (UI thread)
    def _on_progress(self, event: ProgressEvent) -> None:
        if event.total:
            self.progress.setRange(0, int(event.total))
            self.progress.setValue(int(event.done))
        rate = event.rate
        text = f"{int(event.done)}/{int(event.total or 0)}"
        if rate:
            text += f" · {rate:.2f} images/s · ETA {_fmt_eta(event.eta)}"
        if event.message:
            text += f" · {event.message}"
        self.status.setText(text)

    def _add_file_row(self, record) -> None:
        row = self.table.rowCount()
        self.table.insertRow(row)
        values = (
            record.path,
            record.status,
            ", ".join(record.classes_found),
            f"{record.seconds:.2f}",
            record.error,
        )
        for col, value in enumerate(values):
            self.table.setItem(row, col, QTableWidgetItem(value))
        self.table.scrollToBottom()

    def _batch_done(self, report) -> None:
        self.last_result = report
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        extra = (" " + " ".join(report.messages)) if report.messages else ""
        self._end(f"Finished: {report.summary()}.{extra}")

    @staticmethod
    def _fill(table: QTableWidget, columns, rows) -> None:
        table.setColumnCount(len(columns))
        table.setHorizontalHeaderLabels(list(columns))
        table.setRowCount(0)
        for values in rows:
            row = table.rowCount()
            table.insertRow(row)
            for col, value in enumerate(values):
                table.setItem(row, col, QTableWidgetItem(value))

    def _benchmark_done(self, outcome) -> None:
        result, paths = outcome
        s = result.scores
        self._fill(
            self.class_table,
            CLASS_COLUMNS,
            [
                (
                    c["name"],
                    _pct(c["iou"]),
                    _pct(c["f1"]),
                    _pct(c["boundary_f1"]),
                    str(c["gt_pixels"]),
                )
                for c in s.as_dict()["per_class"]
                if c["iou"] is not None
            ],
        )
        self.iou_chart.setPixmap(QPixmap(str(paths["iou"])))
        self.confusion_chart.setPixmap(QPixmap(str(paths["confusion"])))
        spi = result.seconds_per_image.get("total")
        self._finished(
            outcome,
            self.class_table,
            f"{result.dataset_title} · {result.method} · {s.images} images: mIoU "
            f"{s.miou * 100:.2f}, pixel accuracy {s.pixel_accuracy * 100:.2f}"
            + (f", {spi:.2f} s per image" if spi is not None else ""),
        )

    def _finished(self, outcome, shown: QWidget, text: str) -> None:
        """A benchmark or comparison is done: its report is the one to open."""
        self.last_result = outcome
        self.report_file = outcome[1]["json"]
        self.results.setCurrentWidget(shown)
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self._end(f"{text}. Report: {self.report_file}")

    def _comparison_done(self, outcome) -> None:
        from ovpaint.eval.compare import comparison_dict, method_out_path
        from ovpaint.eval.report import report_paths

        comparison, paths = outcome
        data = comparison_dict(comparison)
        methods = data["methods"]

        def seconds(row) -> str:
            return "" if row["seconds_per_image"] is None else f"{row['seconds_per_image']:.2f}"

        self._fill(
            self.comparison_table,
            COMPARISON_COLUMNS,
            [
                (
                    row["method"],
                    _pct(row["mIoU"]),
                    _pct(row["pixel_accuracy"]),
                    _pct(row["mean_f1"]),
                    _pct(row["mean_boundary_f1"]),
                    seconds(row),
                )
                for row in data["summary"]
            ],
        )
        self._fill(
            self.class_table,
            ["Class"] + [f"{m} IoU %" for m in methods],
            [[c["name"]] + [_pct(c["iou"][m]) for m in methods] for c in data["per_class"]],
        )
        table = self.comparison_table
        table.resizeColumnsToContents()
        table.resizeRowsToContents()
        table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        rows_height = sum(table.rowHeight(r) for r in range(table.rowCount()))
        table.setFixedHeight(
            table.horizontalHeader().height() + rows_height + 2 * table.frameWidth()
        )
        self.comparison_chart.set_image(QPixmap(str(paths["chart"])))
        self.iou_chart.setPixmap(QPixmap(str(paths["per_class"])))
        first = report_paths(method_out_path(paths["json"], methods[0]))
        self.confusion_chart.setPixmap(QPixmap(str(first["confusion"])))
        best = max(data["summary"], key=lambda r: -1.0 if r["mIoU"] is None else r["mIoU"])
        self._finished(
            outcome,
            self.comparison_tab,
            f"{data['dataset_title']} · {len(methods)} methods · {data['images']} images: "
            f"best mIoU {best['method']} {_pct(best['mIoU'])}",
        )

    def _on_error(self, exc: BaseException) -> None:
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self._end("Stopped: " + error_message(exc))

    def _on_cancelled(self) -> None:
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self._end("Cancelled. Finished images are kept; start again to resume.")

    # ------------------------------------------------------------------ buttons
    def open_output_folder(self) -> None:
        if self.output_folder is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.output_folder)))

    def open_report(self) -> None:
        if self.report_file is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.report_file)))

    def closeEvent(self, event) -> None:  # noqa: N802
        if self.job is not None:
            self.job.cancel()  # stops after the current image; the next run resumes
        super().closeEvent(event)
