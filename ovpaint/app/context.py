"""What the panels share: the open document, its undo stack, its image session, the worker pool
and the job bar. Passing this one object keeps MainWindow small and the panels independent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QToolButton,
    QWidget,
)

from ovpaint.app.workers import JobHandle, WorkerPool, error_message
from ovpaint.core.document import Document
from ovpaint.core.errors import Cancelled
from ovpaint.core.jobs import ProgressEvent
from ovpaint.core.settings import Settings


class MessageBanner(QWidget):
    """A message strip inside the window: errors stay visible until dismissed."""

    STYLES = {
        "error": "background:#7a1f1f;color:white;",
        "warning": "background:#7a5a12;color:white;",
        "info": "background:#20456e;color:white;",
    }

    def __init__(self, parent: QWidget | None = None, object_name: str = "errorBanner") -> None:
        super().__init__(parent)
        self.setObjectName(object_name)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton()
        close.setText("✕")
        close.setToolTip("Dismiss")
        close.clicked.connect(self.hide)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(close)
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.hide()

    def show_message(self, text: str, kind: str = "error") -> None:
        self.setStyleSheet(self.STYLES.get(kind, ""))
        self.label.setText(text)
        self.kind = kind
        self.show()

    @property
    def text(self) -> str:
        return self.label.text() if self.isVisible() else ""


class JobBar(QWidget):
    """Progress bar, stage text and Cancel for the job in flight (one document job at a time)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel()
        self.bar = QProgressBar()
        self.bar.setObjectName("progressBar")
        self.bar.setMaximumWidth(220)
        self.bar.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("cancelButton")
        self.cancel_button.setToolTip("Stop the running job (Esc); nothing is changed")
        self.cancel_button.setEnabled(False)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label)
        layout.addWidget(self.bar)
        layout.addWidget(self.cancel_button)
        self.handle: JobHandle | None = None
        self.cancel_button.clicked.connect(self.cancel)
        self.idle()

    def idle(self) -> None:
        self.handle = None
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.bar.setFormat("")
        self.label.setText("")
        self.cancel_button.setEnabled(False)
        self.bar.setVisible(False)
        self.cancel_button.setVisible(False)

    def start(self, handle: JobHandle, title: str) -> None:
        self.handle = handle
        self.label.setText(title + "…")
        self.bar.setRange(0, 0)  # busy until the first measured progress
        self.cancel_button.setEnabled(True)
        self.bar.setVisible(True)
        self.cancel_button.setVisible(True)

    def show_progress(self, event: ProgressEvent) -> None:
        if event.fraction is None:
            self.bar.setRange(0, 0)
        else:
            self.bar.setRange(0, 1000)
            self.bar.setValue(int(event.fraction * 1000))
        self.bar.setFormat(f"{event.stage} %p%" if event.stage else "%p%")
        if event.message:
            self.label.setText(event.message)

    def cancel(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.label.setText("Cancelling…")
            self.cancel_button.setEnabled(False)


class EditorContext(QObject):
    """The open document and the services every panel needs."""

    document_changed = Signal(object)  # Document or None
    busy_changed = Signal(bool)
    operation_finished = Signal(str, float)  # title, seconds

    def __init__(
        self,
        manager,
        settings: Settings,
        workers: WorkerPool,
        jobbar: JobBar,
        banner: MessageBanner,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.manager = manager
        self.settings = settings
        self.workers = workers
        self.jobbar = jobbar
        self.banner = banner
        self.undo_stack = QUndoStack(self)
        self.undo_stack.setUndoLimit(200)
        # Unsaved means "not at the state last saved": undoing back to it clears the mark.
        self.undo_stack.cleanChanged.connect(self._clean_changed)
        self.document: Document | None = None
        self._session = None
        self._session_lock = threading.Lock()
        self.current_job: JobHandle | None = None
        self.last_operation: tuple[str, float] | None = None

    # ------------------------------------------------------------------ document
    def set_document(self, doc: Document | None) -> None:
        if self.current_job is not None:
            self.current_job.cancel()
        self.undo_stack.clear()
        self.document = doc
        with self._session_lock:
            self._session = None
        self.document_changed.emit(doc)

    def _clean_changed(self, clean: bool) -> None:
        if self.document is not None:
            self.document.dirty = not clean

    def image_session(self, doc: Document):
        """The ImageSession of ``doc`` (features cached across queries and clicks). Built on
        first use, from a worker thread: copying a 24 MP image must not stall the UI."""
        from ovpaint.pipelines.session import ImageSession

        with self._session_lock:
            if self._session is None or self._session.image is not doc.rgb:
                self._session = ImageSession(doc.rgb)
            return self._session

    def push(self, command) -> None:
        self.undo_stack.push(command)

    # ------------------------------------------------------------------ jobs
    @property
    def busy(self) -> bool:
        return self.current_job is not None

    def run_job(
        self,
        fn: Callable,
        *args: Any,
        title: str,
        on_done: Callable[[Any], None],
        on_failed: Callable[[], None] | None = None,
        **kwargs: Any,
    ) -> JobHandle | None:
        """Run a model job for the current document; its result is applied only if the same
        document is still open and the job was not cancelled."""
        if self.busy:
            self.banner.show_message(
                f"Busy with {self.current_job.name}; wait or press Cancel.", "warning"
            )
            return None
        if self.banner.isVisible() and getattr(self.banner, "kind", "") == "info":
            self.banner.hide()  # the last job's notes; errors and warnings stay until dismissed
        doc = self.document
        started = time.perf_counter()

        def finish() -> None:
            self.current_job = None
            self.jobbar.idle()
            self.busy_changed.emit(False)

        def done(result: Any) -> None:
            finish()
            if doc is not self.document:
                return
            seconds = time.perf_counter() - started
            self.last_operation = (title, seconds)
            try:
                on_done(result)
            except Exception as exc:  # noqa: BLE001 - a bad result must not lose the document
                self.banner.show_message(error_message(exc))
                return
            self.operation_finished.emit(title, seconds)

        def failed(exc: BaseException) -> None:
            finish()
            if isinstance(exc, Cancelled):
                return
            self.banner.show_message(f"{title} failed: {error_message(exc)}")
            if on_failed is not None:
                on_failed()

        def cancelled() -> None:
            finish()
            self.operation_finished.emit(f"{title} cancelled", time.perf_counter() - started)
            if on_failed is not None:
                on_failed()

        handle = self.workers.submit(
            fn,
            *args,
            name=title,
            on_progress=self.jobbar.show_progress,
            on_done=done,
            on_error=failed,
            on_cancelled=cancelled,
            **kwargs,
        )
        self.current_job = handle
        self.jobbar.start(handle, title)
        self.busy_changed.emit(True)
        return handle
