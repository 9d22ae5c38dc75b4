"""The app's worker pool: every model call runs here, never on the UI thread.

A job is a plain function from the engine, ``fn(*args, progress=..., cancel=..., **kwargs)``
(``ovpaint.core.jobs``). :meth:`WorkerPool.submit` runs it on a ``QThreadPool`` and returns a
:class:`JobHandle`; the callbacks given to ``submit`` are called on the UI thread, because the
worker only emits signals that are queued to the handle, a QObject living on the UI thread.

A cancelled job changes nothing: when the user cancels, the job's result is dropped even if
the function happened to finish, and ``on_cancelled`` is called instead of ``on_done``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

from ovpaint.core.errors import Cancelled, OutOfMemory, OvpaintError
from ovpaint.core.jobs import CancelToken, Progress, ProgressEvent

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.05  # progress events are thinned to at most ~20 per second
PREVIEW_INTERVAL_S = 0.25  # and those carrying a preview image to 4 per second


def error_message(exc: BaseException) -> str:
    """A message fit for a dialog or status bar: our typed errors speak for themselves; anything
    else is named plainly (the traceback goes to the log, not to the user)."""
    if isinstance(exc, OvpaintError):
        return exc.app_message or str(exc)  # menus, not terminal commands
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return str(
            OutOfMemory(
                "Out of memory. Close other programs, use a smaller image or "
                "a smaller model, or choose the CPU in Models → Device."
            )
        )
    text = str(exc) or type(exc).__name__
    return f"Unexpected error ({type(exc).__name__}): {text}"


def error_details(exc: BaseException) -> str:
    """What a bug report needs: the exception's traceback and where the log file is."""
    from ovpaint.core.logs import log_path

    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    where = log_path()
    tail = f"\nLog file: {where}" if where is not None else ""
    return "".join(lines).rstrip() + tail


class _Emitter(QObject):
    """Created on the UI thread; the worker emits through it, so every signal is queued."""

    progressed = Signal(object)
    succeeded = Signal(object)
    failed = Signal(object)
    cancelled = Signal()


class JobHandle(QObject):
    """A submitted job as the UI sees it: its state, its cancel button, its callbacks."""

    finished = Signal(object)  # the handle itself, after whichever callback ran

    QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"

    def __init__(self, name: str, token: CancelToken, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.token = token
        self.state = self.QUEUED
        self.result: Any = None
        self.error: BaseException | None = None
        self.last_progress: ProgressEvent | None = None
        self.started_at: float | None = None
        self.elapsed: float | None = None
        self._callbacks: dict[str, Callable | None] = {}
        self.emitter = _Emitter()
        self.emitter.progressed.connect(self._on_progress)
        self.emitter.succeeded.connect(self._on_succeeded)
        self.emitter.failed.connect(self._on_failed)
        self.emitter.cancelled.connect(self._on_cancelled)

    @property
    def is_finished(self) -> bool:
        return self.state in (self.DONE, self.FAILED, self.CANCELLED)

    def cancel(self) -> None:
        """Ask the job to stop at its next safe point; its result will be dropped."""
        self.token.cancel()

    # ---------------------------------------------------------------- UI-thread slots
    def _call(self, key: str, *args: Any) -> None:
        callback = self._callbacks.get(key)
        if callback is None:
            return
        try:
            callback(*args)
        except Exception:  # noqa: BLE001 - a faulty callback must not kill the event loop
            log.exception("callback %s of job %s failed", key, self.name)

    @Slot(object)
    def _on_progress(self, event: ProgressEvent) -> None:
        if self.is_finished:
            return
        self.state = self.RUNNING
        self.last_progress = event
        self._call("on_progress", event)

    @Slot(object)
    def _on_succeeded(self, result: Any) -> None:
        if self.token.cancelled:  # cancelled after the last safe point: drop the result
            self._on_cancelled()
            return
        self.state, self.result = self.DONE, result
        self._call("on_done", result)
        self.finished.emit(self)

    @Slot(object)
    def _on_failed(self, exc: BaseException) -> None:
        self.state, self.error = self.FAILED, exc
        if self._callbacks.get("on_error") is None:
            log.error("job %s failed: %s", self.name, error_message(exc))
        self._call("on_error", exc)
        self.finished.emit(self)

    @Slot()
    def _on_cancelled(self) -> None:
        if self.is_finished:
            return
        self.state = self.CANCELLED
        self._call("on_cancelled")
        self.finished.emit(self)


class _Runnable(QRunnable):
    def __init__(self, handle: JobHandle, fn: Callable, args: tuple, kwargs: dict) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self.emitter = handle.emitter
        self.handle = handle
        self.token = handle.token
        self.fn, self.args, self.kwargs = fn, args, kwargs

    def run(self) -> None:  # on a worker thread
        handle, emitter = self.handle, self.emitter
        handle.started_at = time.perf_counter()
        if self.token.cancelled:
            handle.elapsed = 0.0
            emitter.cancelled.emit()
            return
        last = [0.0, "", -PREVIEW_INTERVAL_S]

        def forward(event: ProgressEvent) -> None:
            now = time.perf_counter()
            if event.preview is not None and now - last[2] >= PREVIEW_INTERVAL_S:
                last[0], last[1], last[2] = now, event.stage, now
                emitter.progressed.emit(event)
            elif (
                event.stage != last[1]
                or now - last[0] >= PROGRESS_INTERVAL_S
                or (event.total is not None and event.done >= event.total)
            ):
                last[0], last[1] = now, event.stage
                if event.preview is not None:  # a preview too soon after the last: text only
                    event = dataclasses.replace(event, preview=None)
                emitter.progressed.emit(event)

        progress = Progress()
        progress.subscribe(forward)
        try:
            result = self.fn(*self.args, progress=progress, cancel=self.token, **self.kwargs)
        except Cancelled:
            handle.elapsed = time.perf_counter() - handle.started_at
            emitter.cancelled.emit()
            return
        except BaseException as exc:  # noqa: BLE001 - every failure is reported, none is lost
            handle.elapsed = time.perf_counter() - handle.started_at
            if not isinstance(exc, OvpaintError):
                log.error("job %s raised:\n%s", handle.name, traceback.format_exc())
            if self.token.cancelled:
                emitter.cancelled.emit()
            else:
                emitter.failed.emit(exc)
            return
        handle.elapsed = time.perf_counter() - handle.started_at
        emitter.succeeded.emit(result)


class WorkerPool(QObject):
    """Runs job functions off the UI thread; keeps every live handle so none is collected."""

    job_started = Signal(object)  # JobHandle
    job_finished = Signal(object)  # JobHandle

    def __init__(self, parent: QObject | None = None, max_threads: int = 2) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max(1, max_threads))
        self._handles: list[JobHandle] = []

    def submit(
        self,
        fn: Callable,
        *args: Any,
        on_progress: Callable[[ProgressEvent], None] | None = None,
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        on_cancelled: Callable[[], None] | None = None,
        name: str = "",
        **kwargs: Any,
    ) -> JobHandle:
        """Run ``fn(*args, progress=, cancel=, **kwargs)`` on a worker thread.

        Callbacks run on the UI thread: ``on_progress(event)``, then exactly one of
        ``on_done(result)``, ``on_error(exception)`` or ``on_cancelled()``.
        """
        handle = JobHandle(name or getattr(fn, "__name__", "job"), CancelToken())
        handle._callbacks = {
            "on_progress": on_progress,
            "on_done": on_done,
            "on_error": on_error,
            "on_cancelled": on_cancelled,
        }
        handle.finished.connect(self._forget)
        self._handles.append(handle)
        self.job_started.emit(handle)
        self.pool.start(_Runnable(handle, fn, args, kwargs))
        return handle

    @property
    def active(self) -> list[JobHandle]:
        return [h for h in self._handles if not h.is_finished]

    def cancel_all(self) -> None:
        for handle in self.active:
            handle.cancel()

    def wait_for_done(self, msecs: int = -1) -> bool:
        """Block until the threads are idle (used at shutdown and in tests)."""
        return self.pool.waitForDone(msecs)

    @Slot(object)
    def _forget(self, handle: JobHandle) -> None:
        if handle in self._handles:
            self._handles.remove(handle)
        self.job_finished.emit(handle)
