"""The worker pool delivers callbacks on the UI thread, drops cancelled results, reports errors."""

from __future__ import annotations

import threading
import time

import pytest

from ovpaint.core.errors import BadInput

pytest.importorskip("PySide6")

from PySide6.QtCore import QThread  # noqa: E402

from ovpaint.app.workers import WorkerPool, error_message  # noqa: E402


def _count(n, *, progress, cancel, delay=0.0):
    progress.stage("count", total=n)
    for i in range(n):
        cancel.check()
        time.sleep(delay)
        progress.update(i + 1, n)
    return {"n": n, "thread": threading.get_ident()}


def test_result_and_progress_arrive_on_ui_thread(qtbot):
    pool = WorkerPool()
    seen = {}
    ui_thread = QThread.currentThread()

    def on_done(result):
        seen["result"] = result
        seen["on_ui"] = QThread.currentThread() is ui_thread or (
            QThread.currentThread() == ui_thread
        )

    events = []
    handle = pool.submit(_count, 5, on_done=on_done, on_progress=events.append)
    qtbot.waitUntil(lambda: handle.is_finished, timeout=5000)
    assert handle.state == "done"
    assert seen["result"]["n"] == 5
    assert seen["result"]["thread"] != threading.get_ident()  # ran off the UI thread
    assert seen["on_ui"]
    assert events and events[-1].done == 5


def test_cancel_drops_the_result(qtbot):
    pool = WorkerPool()
    calls = []
    handle = pool.submit(
        _count,
        200,
        delay=0.01,
        on_done=lambda r: calls.append("done"),
        on_cancelled=lambda: calls.append("cancelled"),
    )
    qtbot.waitUntil(lambda: handle.state == "running", timeout=5000)
    handle.cancel()
    qtbot.waitUntil(lambda: handle.is_finished, timeout=5000)
    assert calls == ["cancelled"]
    assert handle.result is None


def test_typed_error_becomes_a_clear_message(qtbot):
    pool = WorkerPool()

    def boom(*, progress, cancel):
        raise BadInput("That file is not an image.")

    errors = []
    handle = pool.submit(boom, on_error=errors.append)
    qtbot.waitUntil(lambda: handle.is_finished, timeout=5000)
    assert handle.state == "failed"
    assert error_message(errors[0]) == "That file is not an image."
    assert "ZeroDivisionError" in error_message(ZeroDivisionError("x"))
