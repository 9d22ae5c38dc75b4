"""What the panels share: the open document, its undo stack, its image session, the worker pool
and the job bar. Passing this one object keeps MainWindow small and the panels independent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QWidget,
)

from ovpaint.app.notify import NotificationArea
from ovpaint.app.workers import JobHandle, WorkerPool, error_details, error_message
from ovpaint.core.document import Document
from ovpaint.core.errors import Cancelled
from ovpaint.core.jobs import ProgressEvent
from ovpaint.core.settings import Settings

log = logging.getLogger(__name__)


class JobBar(QWidget):
    """Progress bar, stage text and Cancel for the job in flight (one document job at a time)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel()
        self.bar = QProgressBar()
        self.bar.setObjectName("progressBar")
        self.bar.setMinimumWidth(260)
        self.bar.setMaximumWidth(360)
        self.last_text = ""
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
        """Stage and count on the bar ("windows 5/9", "step 14/50 · 0:41 left"); busy only
        while a stage has no count."""
        text = event.describe()
        self.bar.setFormat(text.replace("%", "%%"))
        if event.fraction is None:
            self.bar.setRange(0, 0)
        else:
            self.bar.setRange(0, 1000)
            self.bar.setValue(int(event.fraction * 1000))
        self.bar.setToolTip(f"{text}\n{event.message}" if event.message else text)
        self.last_text = text

    def cancel(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.label.setText("Cancelling…")
            self.cancel_button.setEnabled(False)


def topic_of(title: str) -> str:
    """What a job's messages are about: its title's first word ("Segment (refined)" →
    "segment"), so a later success of the same kind clears its error."""
    words = title.split()
    return words[0].lower() if words else ""


class EditorContext(QObject):
    """The open document and the services every panel needs."""

    document_changed = Signal(object)  # Document or None
    busy_changed = Signal(bool)
    job_preview = Signal(object)  # a jobs.Preview of the running job's result, None at its end
    operation_finished = Signal(str, float)  # title, seconds

    def __init__(
        self,
        manager,
        settings: Settings,
        workers: WorkerPool,
        jobbar: JobBar,
        banner: NotificationArea,
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
        # set by the window: opens the model assistant (offered with "model missing" errors)
        self.get_models: Callable[[], None] | None = None

    def report(self, exc: BaseException, title: str = "", topic: str | None = None) -> None:
        """Show an error in the notification area, its details one click away and, for a
        missing model, the assistant that gets it."""
        from ovpaint.core.errors import ModelUnavailable

        text = error_message(exc)
        action = None
        if isinstance(exc, ModelUnavailable) and self.get_models is not None:
            action = ("Get Models…", self.get_models)
        self.banner.show_message(
            f"{title} failed: {text}" if title else text,
            "error",
            topic=topic,
            details=error_details(exc),
            action=action,
        )

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
        topic: str | None = None,
        **kwargs: Any,
    ) -> JobHandle | None:
        """Run a model job for the current document; its result is applied only if the same
        document is still open and the job was not cancelled."""
        if self.busy:
            self.banner.show_message(
                f"Busy with {self.current_job.name}; wait or press Cancel.", "warning"
            )
            return None
        topic = topic or topic_of(title)
        self.banner.clear(("info", "success"))  # the last job's notes; errors stay
        doc = self.document
        started = time.perf_counter()

        def finish() -> None:
            self.current_job = None
            self.jobbar.idle()
            self.job_preview.emit(None)
            self.busy_changed.emit(False)

        def progressed(event: ProgressEvent) -> None:
            self.jobbar.show_progress(event)
            if event.preview is not None:
                self.job_preview.emit(event.preview)

        def done(result: Any) -> None:
            finish()
            if doc is not self.document:
                return
            seconds = time.perf_counter() - started
            self.last_operation = (title, seconds)
            self.banner.succeeded(topic)  # before on_done, which may show its own notes
            try:
                on_done(result)
            except Exception as exc:  # noqa: BLE001 - a bad result must not lose the document
                log.exception("applying the result of %s failed", title)
                self.report(exc, title, topic)
                return
            self.operation_finished.emit(title, seconds)

        def failed(exc: BaseException) -> None:
            finish()
            if isinstance(exc, Cancelled):
                return
            self.report(exc, title, topic)
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
            on_progress=progressed,
            on_done=done,
            on_error=failed,
            on_cancelled=cancelled,
            **kwargs,
        )
        self.current_job = handle
        self.jobbar.start(handle, title)
        self.busy_changed.emit(True)
        return handle
